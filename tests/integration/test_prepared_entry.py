"""Prepared entry (PROTOCOL F6 step 8, F7) with the real daemons: tspd
with its look-ahead, schedd and qkdd hand the vehicle's context over, and
vehicled opens its session with the next TSP on HandoverReady while the
old one still serves it; with `entry on_crossing` it sends that M3 on the
crossing instead; and a vehicle that turns away before the boundary ends
the session opened ahead with Bye and stays with the old TSP."""

from harness import testbed, vin, wait_until
from qroamlib import stores
from test_drive import (ROUTE_AB, assert_keys_consistent, counter, crossings, drive_opts,
                        events, handover_ready, stdout_line)

# East towards the boundary with tsp-b at lon 120.1, turning back 150 m
# before it, then west out of region A.
ROUTE_TURN = ["30.0500,120.0750", "30.0500,120.0985", "30.0500,119.9800"]


def start_clouds(tb):
    handover_ready(tb)
    tb.start_qkd()
    tb.start_sched()
    for t in tb.tsps:
        tb.start_tsp(t, look_ahead="10s")
    tb.start_filler()
    tb.start_registrar()


def entries(tb, v):
    return [c[4] for c in stores.crossings(tb.daemons[v].store, with_entry=True)]


def d1_lon(tb, tsp, v):
    """Longitudes of the M3 data (seq 0) tsp stored from v."""
    return [r[0] for r in tb.query(tsp, "SELECT lon FROM telemetry WHERE vehicle_id=? "
                                        "AND tsp_id=? AND seq=0", (v, tsp))]


@testbed(tsps=["tsp-a", "tsp-b"])
def test_prepared_and_on_crossing_entry(tb):
    """Two vehicles cross A -> B, one with prepared entry (the default),
    one with entry on_crossing.  Both are served by tsp-b without F3.  The
    prepared one's M3 reached tsp-b from inside region A, before its Bye
    to tsp-a, and its first message after the crossing was telemetry
    answered by tsp-b on that session; the other's M3 followed the Bye."""
    start_clouds(tb)
    prep, patent = vin(960), vin(961)
    tb.start_vehicle(prep, route=ROUTE_AB, **drive_opts(session_rekey=0))
    tb.start_vehicle(patent, route=ROUTE_AB, entry="on_crossing",
                     **drive_opts(session_rekey=0))
    for v in (prep, patent):
        wait_until(lambda v=v: crossings(tb, v), timeout=60,
                   what="the crossing of %s" % v)
        wait_until(lambda v=v: tb.count("tsp-b", "telemetry", "vehicle_id=? AND "
                                        "tsp_id='tsp-b' AND seq>0", (v,)) >= 3,
                   what="telemetry of %s at tsp-b" % v)
    for v in (prep, patent):
        tb.stop(v)
    for v in (prep, patent):
        assert [c[:2] + c[3:] for c in crossings(tb, v)] == [("tsp-a", "tsp-b", 0)], v
        assert events(tb, v, "auth_ok") == 1, v
        assert events(tb, v, "handover_ready", "tsp-b") == 1, v
        assert counter(tb, v, "handovers") == 1, v
        assert crossings(tb, v)[0][2] > 0, v
        assert_keys_consistent(tb, v, ["tsp-a", "tsp-b"])
        st = stdout_line(tb, v, "FLEET")
        assert st["handovers"] == 1 and st["reauth_after_handover"] == 0, st
        assert st["turned_back"] == 0, st
    assert entries(tb, prep) == ["prepared"]
    assert entries(tb, patent) == ["on_crossing"]

    # Prepared: the M3's data was taken in region A, the session opened
    # before the crossing, and the Bye to tsp-a did not end its
    # authentication there (that ended with the handover).
    assert [lon < 120.1 for lon in d1_lon(tb, "tsp-b", prep)] == [True]
    log = tb.log(prep)
    assert log.index("entry: session with tsp-b open ahead of the crossing") < \
        log.index("session: Bye sent to tsp-a (region change)") < \
        log.index("crossing tsp-a -> tsp-b: prepared entry")
    assert "M3 sent to tsp-b with chip key" not in log
    assert "crossing tsp-a -> tsp-b: served after" in log and \
        "on the session opened ahead" in log
    first = tb.scalar(prep, "SELECT min(id) FROM events WHERE kind='session_open' "
                            "AND tsp_id='tsp-b'")
    cross = tb.scalar(prep, "SELECT id FROM events WHERE kind='crossing'")
    assert first < cross
    assert stdout_line(tb, prep, "FLEET")["prepared_entries"] == 1
    assert tb.count("tsp-a", "telemetry", "vehicle_id=? AND tsp_id='tsp-a' AND seq>0",
                    (prep,)) > 0

    # On the crossing: the M3 (data from region B) after the Bye.
    assert [lon > 120.1 for lon in d1_lon(tb, "tsp-b", patent)] == [True]
    log = tb.log(patent)
    assert log.index("session: Bye sent to tsp-a (region change)") < \
        log.index("session: M3 sent to tsp-b") < log.index("served after")
    assert "entry: M3 sent" not in log
    assert stdout_line(tb, patent, "FLEET")["prepared_entries"] == 0


@testbed(tsps=["tsp-a", "tsp-b"])
def test_turning_back_ends_the_prepared_session(tb):
    """HandoverReady arrives as the vehicle heads for tsp-b; it opens its
    session there, then turns back: it says Bye to tsp-b (one chip key
    spent, nothing else) and tsp-a goes on serving it on its session."""
    start_clouds(tb)
    v = vin(962)
    tb.start_vehicle(v, route=ROUTE_TURN, **drive_opts(speed=50, time_factor=5,
                                                       session_rekey=0))
    wait_until(lambda: events(tb, v, "turned_back") >= 1, timeout=60,
               what="%s to turn back" % v)
    wait_until(lambda: tb.count("tsp-b", "sessions", "vehicle_id=?", (v,)) == 0,
               what="the Bye to end the session at tsp-b")
    n = tb.count("tsp-a", "telemetry", "vehicle_id=? AND tsp_id='tsp-a'", (v,))
    wait_until(lambda: tb.count("tsp-a", "telemetry", "vehicle_id=? AND "
                                "tsp_id='tsp-a'", (v,)) >= n + 5,
               what="tsp-a to go on serving %s" % v)
    assert tb.scalar(v, "SELECT count(*) FROM events WHERE kind='power_off'") == 0
    tb.stop(v)
    assert crossings(tb, v) == []
    assert events(tb, v, "auth_ok") == 1
    assert events(tb, v, "handover_ready", "tsp-b") == 1
    assert tb.query(v, "SELECT detail FROM events WHERE kind='session_open' AND "
                       "tsp_id='tsp-b'") == [("key 1, prepared entry",)]
    # tsp-b used exactly the one key of the prepared M3 and stored its data.
    chip = tb.scalar(v, "SELECT chip_id FROM chip")
    assert tb.query("tsp-b", "SELECT idx FROM used_keys WHERE chip_id=? AND how='m3'",
                    (chip,)) == [(1,)]
    assert tb.count("tsp-b", "telemetry", "vehicle_id=? AND tsp_id='tsp-b'", (v,)) == 1
    assert "session closed vehicle=%s reason=bye" % v in tb.log("tsp-b")
    assert_keys_consistent(tb, v, ["tsp-a", "tsp-b"])
    log = tb.log(v)
    assert "handover: turned away from the region of tsp-b" in log
    assert "entry: Bye sent to tsp-b on the prepared session (turned back)" in log
    # No session with tsp-a was renewed: the one of power-on went on.
    assert events(tb, v, "session_open", "tsp-a") == 1
    st = stdout_line(tb, v, "FLEET")
    assert st["turned_back"] == 1 and st["prepared_entries"] == 1, st
    assert st["crossings"] == 0 and st["errors"] == 0, st
