"""Key positions across handovers (PROTOCOL F4, F6, F8, section 8
invariant 1) with real daemons on loopback: a power cycle inside region B
starts again with F3 at TSPB and the key index resynchronises; keys drawn
out of sequence travel in RD1; a handover back to A returns its
authentication; a fleet drives through three regions at once.  The
helpers and the other handover tests are in test_handover.py.
"""

import re
import signal

from harness import enrolled_probe, testbed, vin, wait_until
from test_drive import ROUTE_AB, ROUTE_ABC, crossings, drive_opts, events, stdout_line
from test_handover import (EAST_EDGE_A, assert_key_positions, auth_via, ho_rows,
                           no_f3, offer, opened_keys, probe_session, sched_rows,
                           start_clouds)


# ---- power cycle inside region B -------------------------------------------

@testbed(tsps=["tsp-a", "tsp-b"])
def test_power_cycle_inside_b(tb):
    """vehicled hands over to B and crosses; a power cycle (SIGUSR1) there
    starts again with F3 at TSPB, and the next M3 continues the key
    sequence where the handover and the session at B left it."""
    start_clouds(tb)
    v = vin(962)
    tb.start_vehicle(v, route=ROUTE_AB, **drive_opts(session_rekey=0))
    wait_until(lambda: crossings(tb, v), timeout=90, what="the crossing of %s" % v)
    wait_until(lambda: events(tb, v, "session_open", "tsp-b") >= 1,
               what="the session of %s at tsp-b" % v)
    assert auth_via(tb, "tsp-b", v) == [("handover",)]
    tb.signal(v, signal.SIGUSR1)
    wait_until(lambda: events(tb, v, "session_open", "tsp-b") >= 2,
               what="a session with tsp-b after the power cycle")
    assert auth_via(tb, "tsp-b", v) == [("f3",)]
    tb.stop(v)

    assert [c[:2] + c[3:] for c in crossings(tb, v)] == [("tsp-a", "tsp-b", 0)]
    assert events(tb, v, "power_on") == 2
    last_on = tb.scalar(v, "SELECT max(id) FROM events WHERE kind='power_on'")
    assert tb.query(v, "SELECT tsp_id FROM events WHERE kind='auth_ok' ORDER BY id") == \
        [("tsp-a",), ("tsp-b",)]
    assert tb.count(v, "events", "kind='auth_ok' AND tsp_id='tsp-b' AND id>?",
                    (last_on,)) == 1
    keys = [int(re.match(r"key (\d+)", d).group(1)) for (d,) in tb.query(
        v, "SELECT detail FROM events WHERE kind='session_open' ORDER BY id")]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) == 3, keys
    opened = assert_key_positions(tb, v, v, tb.tsps, last="tsp-b")
    assert sorted(opened) == keys, (opened, keys)


@testbed(tsps=["tsp-a", "tsp-b"])
def test_power_on_in_b_resynchronises_key_index(tb):
    """After a handover to B the chip destroys a key whose M3 never reached
    TSPB (it was down).  At the next power-on the vehicle runs F3 with
    TSPB, and its M3 with the following key_index is accepted: TSPB
    burns the key it skipped, and that key stays refused."""
    start_clouds(tb)
    p = enrolled_probe(tb, ["tsp-a", "tsp-b"], m=16)
    first = probe_session(tb, "tsp-a", p)
    r = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b")
    assert r["ready"] == "tsp-b", r
    second = probe_session(tb, "tsp-b", p, f3=False)
    chip = p.chip_id
    assert tb.scalar("tsp-b", "SELECT next_index FROM keypos WHERE chip_id=?",
                     (chip,)) == second + 1
    # Power off in B; the M3 of the next power-on is lost.
    tb.stop("tsp-b")
    late = tb.path("frames", "lost-m3")
    r = p.m3("tsp-b", wait_ms=1000, save=late)
    assert r.status == "NO_REPLY", r
    lost = int(r["index"])
    tb.start("tsp-b")
    r = p.auth("tsp-b")
    assert r.status == "OK", r
    assert auth_via(tb, "tsp-b", p.vin) == [("f3",)]
    third = probe_session(tb, "tsp-b", p, f3=False)
    assert first < second < lost < third, (first, second, lost, third)
    used = dict(tb.query("tsp-b", "SELECT idx, how FROM used_keys WHERE chip_id=?",
                         (chip,)))
    assert used[lost] == "burned" and used[third] == "m3", used
    assert tb.scalar("tsp-b", "SELECT key_index FROM sessions WHERE vehicle_id=?",
                     (p.vin,)) == third
    assert_key_positions(tb, p.store, p.vin, tb.tsps, last="tsp-b")
    # The lost M3 arriving late is refused: its key was burned.
    before = tb.dump("tsp-b")
    r = p.send("tsp-b", late)
    assert r.status == "KEY_REUSED", r
    tb.assert_same_dump(before, tb.dump("tsp-b"), "tsp-b store after the burned key")


# ---- arbitrary draws ---------------------------------------------------------

@testbed(tsps=["tsp-a", "tsp-b"])
def test_arbitrary_keys_move_with_the_context(tb):
    """Keys drawn out of sequence (arbitrary mode, by code) at A travel in
    RD1: B refuses an M3 under any of them, even one the chip kept, and
    accepts the keys nobody used, by code and in sequence."""
    start_clouds(tb)
    p = enrolled_probe(tb, m=16)
    assert p.auth("tsp-a").status == "OK"
    # Key 5 stays on the chip (--keep-key), as a replaying chip would have it.
    for idx, keep in ((5, True), (9, False)):
        r = p.m3("tsp-a", mode="arb", index=idx, keep_key=keep)
        assert r.status == "OK" and r["index"] == str(idx), r
    r = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b")
    assert r["ready"] == "tsp-b", r
    chip = p.chip_id
    used_b = dict(tb.query("tsp-b", "SELECT idx, how FROM used_keys WHERE chip_id=?",
                           (chip,)))
    assert {5, 9} <= set(used_b), used_b
    before = tb.dump("tsp-b")
    mark = tb.log_mark("tsp-b")
    r = p.m3("tsp-b", mode="arb", index=5, keep_key=True)
    assert r.status == "KEY_REUSED", r
    tb.wait_log("tsp-b", r"m3 refused vehicle=%s .*reason=KEY_REUSED" % p.vin, since=mark)
    tb.assert_same_dump(before, tb.dump("tsp-b"), "tsp-b store after key 5 again")
    for kw in (dict(mode="arb", index=7), dict(mode="seq")):
        r = p.m3("tsp-b", **kw)
        assert r.status == "OK", (kw, r)
    opened_b = opened_keys(tb, "tsp-b", p.vin)
    assert opened_b[0] == 7 and opened_b[1] not in (5, 7, 9), opened_b
    opened_a = opened_keys(tb, "tsp-a", p.vin)
    assert opened_a == [5, 9] and not set(opened_a) & set(opened_b), (opened_a, opened_b)
    assert auth_via(tb, "tsp-b", p.vin) == [("handover",)]


# ---- back again, and a fleet -------------------------------------------------

@testbed(tsps=["tsp-a", "tsp-b"])
def test_handover_back_to_a(tb):
    """A -> B -> A: the second handover gives A back the authentication it
    gave away, and A's key position follows the keys used at B."""
    start_clouds(tb)
    p = enrolled_probe(tb, m=16)
    first = probe_session(tb, "tsp-a", p)
    r = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b")
    assert r["ready"] == "tsp-b", r
    probe_session(tb, "tsp-b", p, f3=False)
    probe_session(tb, "tsp-b", p, f3=False)
    assert auth_via(tb, "tsp-a", p.vin) == []
    r = offer(p, "tsp-b", "30.05,120.101", 270, "tsp-a")
    assert (r["m5"], r["ready"]) == ("tsp-a", "tsp-a"), r
    assert auth_via(tb, "tsp-a", p.vin) == [("handover",)]
    assert auth_via(tb, "tsp-b", p.vin) == []
    back = probe_session(tb, "tsp-a", p, f3=False)
    assert back == first + 3, (first, back)
    hids = [r[4] for r in ho_rows(tb, "tsp-a", p.vin)]
    assert [r[:3] for r in ho_rows(tb, "tsp-a", p.vin)] == [("out", "tsp-b", "done"),
                                                           ("in", "tsp-b", "done")]
    assert [r[:3] for r in ho_rows(tb, "tsp-b", p.vin)] == [("in", "tsp-a", "done"),
                                                           ("out", "tsp-a", "done")]
    assert [r[4] for r in ho_rows(tb, "tsp-b", p.vin)] == hids
    assert [r[:3] + (r[4],) for r in sched_rows(tb)] == [
        ("tsp-a", "tsp-b", "done", hids[0]), ("tsp-b", "tsp-a", "done", hids[1])]
    no_f3(tb, "tsp-b", p.vin)
    assert tb.count("tsp-a", "auth_nonces", "vehicle_id=?", (p.vin,)) == 1
    assert_key_positions(tb, p.store, p.vin, tb.tsps, last="tsp-a")


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_fleet_through_three_regions(tb):
    """fleet 4: four vehicles on the same route at once, each with its own
    chip: eight handovers, all completed, no re-authentication, and key
    positions consistent for every chip."""
    start_clouds(tb)
    base = vin(970)
    tb.start_vehicle(base, route=ROUTE_ABC, fleet=4, fleet_spacing="300ms",
                     **drive_opts(session_rekey=0))
    vins, stores = map(list, zip(*tb.fleet(base, 4)))
    for s in stores:
        wait_until(lambda s=s: len(crossings(tb, s)) >= 2, timeout=120,
                   what="two crossings in %s" % s)
    tb.stop(base)
    for v, s in zip(vins, stores):
        assert [c[:2] + c[3:] for c in crossings(tb, s)] == \
            [("tsp-a", "tsp-b", 0), ("tsp-b", "tsp-c", 0)], (v, crossings(tb, s))
        assert events(tb, s, "auth_ok") == 1, v
        assert_key_positions(tb, s, v, tb.tsps, last="tsp-c")
    assert sorted(r[:3] for r in sched_rows(tb)) == \
        [("tsp-a", "tsp-b", "done")] * 4 + [("tsp-b", "tsp-c", "done")] * 4
    st = stdout_line(tb, base, "FLEET")
    assert st["vehicles"] == 4 and st["handovers"] == 8, st
    assert st["reauth_after_handover"] == 0 and st["handover_failures"] == 0, st
