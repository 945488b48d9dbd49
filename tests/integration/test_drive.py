"""vehicled drives across region boundaries (PROTOCOL F6, F7, F8).

Without the handover machinery (schedd, qkdd, the TSPs' M5-M8) a crossing
degrades to re-authentication: Bye to the old TSP, M3 to the new one,
AUTH_REQUIRED, then F3 + F4 there.  These tests check that this path
works and is measured; the test of the full handover runs once the
scheduler and the QKD emulator are built and the test bed can start them.
"""

import json
import os
import re
import signal
import subprocess

from harness import (BIN, ROOT, Skip, parse_crossing, start_provisioning, testbed, vin,
                     wait_until)

# Regions of the test bed: 0.1 x 0.1 degree squares side by side from
# longitude 120.0, so this route starts in tsp-a and ends in tsp-b
# (about 9.6 km, the boundary after 3.9 km).
ROUTE_AB = ["30.0500,120.0600", "30.0500,120.1600"]
# Through three regions; each stretch is about 9.6 km.
ROUTE_ABC = ["30.0500,120.0500", "30.0500,120.2500"]

def events(tb, v, kind, tsp=None):
    if tsp is None:
        return tb.count(v, "events", "kind=?", (kind,))
    return tb.count(v, "events", "kind=? AND tsp_id=?", (kind, tsp))


def counter(tb, v, name):
    return tb.scalar(v, "SELECT value FROM counters WHERE name=?", (name,)) or 0


def crossings(tb, v):
    """[(from, to, gap_ms, reauth)] of the vehicle's crossing events."""
    out = []
    for (detail,) in tb.query(v, "SELECT detail FROM events WHERE kind='crossing' "
                                 "ORDER BY id"):
        c = parse_crossing(detail)
        assert c, "malformed crossing event %r" % detail
        out.append(c)
    return out


def stdout_line(tb, v, tag):
    """The JSON of the last `TAG {...}` line vehicled printed."""
    lines = [l for l in tb.log(v).splitlines() if l.startswith(tag + " ")]
    assert lines, "no %s line in the log of %s" % (tag, v)
    return json.loads(lines[-1][len(tag) + 1:])


def assert_keys_consistent(tb, store, tsps):
    """No key is used twice across the TSPs, each used key is destroyed on
    the chip, and no destroyed key keeps its material."""
    chip = tb.scalar(store, "SELECT chip_id FROM chip")
    seen = {}
    for t in tsps:
        for (idx,) in tb.query(t, "SELECT idx FROM used_keys WHERE chip_id=? "
                                  "AND how='m3'", (chip,)):
            assert idx not in seen, "key %d used at %s and %s" % (idx, seen[idx], t)
            seen[idx] = t
    destroyed = {r[0] for r in tb.query(store, "SELECT idx FROM chip_keys "
                                               "WHERE destroyed=1")}
    assert set(seen) <= destroyed, (sorted(seen), sorted(destroyed))
    assert tb.scalar(store, "SELECT count(*) FROM chip_keys WHERE destroyed=1 "
                            "AND key IS NOT NULL") == 0
    return seen


def drive_opts(**extra):
    opts = dict(fill_m=32, speed=100, time_factor=10, telemetry_interval="100ms",
                retransmit="500ms")
    opts.update(extra)
    return opts


@testbed(tsps=["tsp-a", "tsp-b"])
def test_crossing_reauthenticates_without_handover(tb):
    """A -> B with TSPs that never prepare a handover: one F3 per region,
    telemetry stored at both, the crossing logged with reauth=1."""
    start_provisioning(tb)
    v = vin(920)
    tb.start_vehicle(v, route=ROUTE_AB, **drive_opts())
    wait_until(lambda: crossings(tb, v), what="the crossing of %s" % v)
    wait_until(lambda: tb.count("tsp-b", "telemetry", "vehicle_id=? AND seq>0",
                                (v,)) >= 3, what="telemetry of %s at tsp-b" % v)
    assert tb.query("tsp-b", "SELECT via FROM auth WHERE vehicle_id=?", (v,)) == [("f3",)]
    tb.stop(v)
    # Its power-off Bye ended the authentication at tsp-b.
    wait_until(lambda: tb.count("tsp-b", "auth", "vehicle_id=?", (v,)) == 0,
               what="the power-off to end %s's authentication" % v)

    assert crossings(tb, v)[0][:2] == ("tsp-a", "tsp-b")
    assert [c[3] for c in crossings(tb, v)] == [1]
    assert crossings(tb, v)[0][2] > 0
    # Exactly two F3: at power-on in A, and at B after AUTH_REQUIRED.
    assert events(tb, v, "auth_ok") == 2
    assert events(tb, v, "auth_ok", "tsp-a") == 1
    assert events(tb, v, "auth_ok", "tsp-b") == 1
    assert counter(tb, v, "reauth_after_handover") == 1
    assert counter(tb, v, "handovers") == 0
    for t in ("tsp-a", "tsp-b"):
        assert tb.count(t, "telemetry", "vehicle_id=? AND seq>0 AND tsp_id=?",
                        (v, t)) > 0, "no telemetry stored at %s" % t
    used = assert_keys_consistent(tb, v, ["tsp-a", "tsp-b"])
    # Sequential draws: tsp-b's keys come after tsp-a's.
    a = [i for i, t in used.items() if t == "tsp-a"]
    b = [i for i, t in used.items() if t == "tsp-b"]
    assert a and b and max(a) < min(b), used
    # A Bye left for tsp-a before the M3 to tsp-b.
    log = tb.log(v)
    assert log.index("Bye sent to tsp-a") < log.index("M3 sent to tsp-b")
    assert re.search(r"crossing tsp-a -> tsp-b: served after \d+\.\d ms "
                     r"\(re-authenticated\)", log), log[-2000:]
    st = stdout_line(tb, v, "FLEET")
    assert st["vehicles"] == 1 and st["crossings"] == 1, st
    assert st["handovers"] == 0 and st["reauth_after_handover"] == 1, st
    assert st["handover_failures"] == 1 and st["gap_ms_p50"] > 0, st
    assert st["telemetry_acked"] > 0, st


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_three_regions_without_handover(tb):
    """A -> B -> C with today's TSPs: the serving TSP follows the position,
    two crossings each re-authenticate, keys stay consistent."""
    start_provisioning(tb)
    v = vin(923)
    tb.start_vehicle(v, route=ROUTE_ABC, **drive_opts(speed=200))
    wait_until(lambda: len(crossings(tb, v)) >= 2, what="two crossings of %s" % v)
    tb.stop(v)
    assert [c[:2] + c[3:] for c in crossings(tb, v)] == \
        [("tsp-a", "tsp-b", 1), ("tsp-b", "tsp-c", 1)]
    assert [events(tb, v, "auth_ok", t) for t in tb.tsps] == [1, 1, 1]
    for t in tb.tsps:
        assert tb.count(t, "telemetry", "vehicle_id=? AND tsp_id=?", (v, t)) > 0, t
    used = assert_keys_consistent(tb, v, tb.tsps)
    by_tsp = [[i for i, u in used.items() if u == t] for t in tb.tsps]
    assert max(by_tsp[0]) < min(by_tsp[1]) and max(by_tsp[1]) < min(by_tsp[2]), used
    st = stdout_line(tb, v, "FLEET")
    assert st["crossings"] == 2 and st["reauth_after_handover"] == 2, st


@testbed(tsps=["tsp-a", "tsp-b"])
def test_power_cycle_in_the_next_region(tb):
    """Power cycle after the crossing: F3 with tsp-b, and the next key
    index follows the keys used before."""
    start_provisioning(tb)
    v = vin(921)
    # The boundary comes after about 3.9 s of trip time x 10.
    tb.start_vehicle(v, route=ROUTE_AB, power_cycle_at="70s", **drive_opts())
    wait_until(lambda: events(tb, v, "power_on") >= 2, what="the power cycle")
    wait_until(lambda: events(tb, v, "session_open", "tsp-b") >= 2,
               what="a session with tsp-b after the power cycle")
    tb.stop(v)
    assert crossings(tb, v)[0][:2] == ("tsp-a", "tsp-b")
    # Power-on inside B authenticates with B.
    assert events(tb, v, "auth_ok", "tsp-b") == 2
    last_on = tb.scalar(v, "SELECT max(id) FROM events WHERE kind='power_on'")
    assert tb.count(v, "events", "kind='auth_ok' AND tsp_id='tsp-b' AND id>?",
                    (last_on,)) == 1
    used = assert_keys_consistent(tb, v, ["tsp-a", "tsp-b"])
    order = [r[0] for r in tb.query("tsp-b", "SELECT idx FROM used_keys WHERE "
                                             "how='m3' ORDER BY used_ms, idx")]
    assert order == sorted(order) and len(order) >= 2, order
    assert counter(tb, v, "reauth_after_handover") == 1


@testbed(tsps=["tsp-a", "tsp-b"])
def test_fleet_drives_with_own_chips(tb):
    """fleet 3: three VINs, three chip stores, each vehicle crosses once."""
    start_provisioning(tb)
    base = vin(930)
    tb.start_vehicle(base, route=ROUTE_AB, fleet=3, fleet_spacing="1s",
                     **drive_opts())
    vins, stores = map(list, zip(*tb.fleet(base, 3)))
    for s in stores:
        wait_until(lambda s=s: crossings(tb, s), what="the crossing in %s" % s)
    tb.stop(base)
    for v, s in zip(vins, stores):
        assert tb.query(s, "SELECT vehicle_id FROM registration") == [(v,)]
        assert tb.count("registrar", "registrations", "vehicle_id=?", (v,)) == 1
        assert crossings(tb, s)[0][:2] == ("tsp-a", "tsp-b")
        assert_keys_consistent(tb, s, ["tsp-a", "tsp-b"])
    chips = {tb.scalar(s, "SELECT chip_id FROM chip") for s in stores}
    assert len(chips) == 3
    st = stdout_line(tb, base, "FLEET")
    assert st["vehicles"] == 3 and st["crossings"] == 3, st
    assert st["reauth_after_handover"] == 3 and st["handovers"] == 0, st
    assert st["gap_ms_max"] >= st["gap_ms_p50"] > 0, st
    stats = [json.loads(l[6:]) for l in tb.log(base).splitlines()
             if l.startswith("STATS ")]
    assert sorted(s["vehicle_id"] for s in stats) == vins
    assert sum(s["telemetry_acked"] for s in stats) == st["telemetry_acked"]


def tspd_hands_over(tb):
    """True if the tspd under test knows the handover settings (-n)."""
    conf = tb.path("conf", "handover-check.conf")
    with open(conf, "w") as f:
        f.write("id tsp-a\ntopology %s\nstore %s\nca %s\ncert %s\nkey %s\n"
                "look_ahead 10s\n" % (tb.topology, tb.path("stores", "check.db"),
                                      tb.ca, tb.cert("tsp-a"), tb.key("tsp-a")))
    r = subprocess.run([os.path.join(BIN, "tspd"), "-n", "-f", conf],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def handover_ready(tb):
    """Skip unless the scheduler, the QKD emulator, a tspd that hands
    over and the test bed's means of starting them exist."""
    missing = [p for p in ("schedd", "qkdd")
               if not os.path.exists(os.path.join(ROOT, "build", "bin", p))
               or not os.path.exists(os.path.join(BIN, p))]
    if missing:
        raise Skip("needs %s (not built yet)" % " and ".join(missing))
    for fn in ("start_sched", "start_qkd"):
        if not hasattr(tb, fn):
            raise Skip("the test bed has no %s yet" % fn)
    if not tspd_hands_over(tb):
        raise Skip("tspd does not hand over yet (no look_ahead setting)")


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_handover_across_three_regions(tb):
    """A -> B -> C with the full handover: one F3 at power-on, two
    crossings served by M3 alone, the history at C holding telemetry sent
    in A and B, and key positions consistent in every store."""
    handover_ready(tb)
    tb.start_qkd()
    tb.start_sched()
    for t in tb.tsps:
        tb.start_tsp(t, look_ahead="10s")
    tb.start_filler()
    tb.start_registrar()
    v = vin(940)
    tb.start_vehicle(v, route=ROUTE_ABC, **drive_opts(session_rekey=0))
    wait_until(lambda: len(crossings(tb, v)) >= 2, timeout=60,
               what="two crossings of %s" % v)
    tb.stop(v)
    assert [c[:2] for c in crossings(tb, v)] == [("tsp-a", "tsp-b"), ("tsp-b", "tsp-c")]
    assert [c[3] for c in crossings(tb, v)] == [0, 0]
    assert events(tb, v, "auth_ok") == 1
    assert events(tb, v, "handover_ready") == 2
    assert counter(tb, v, "handovers") == 2
    assert counter(tb, v, "reauth_after_handover") == 0
    for t in ("tsp-b", "tsp-c"):
        assert tb.query(t, "SELECT via FROM auth WHERE vehicle_id=?", (v,)) \
            in ([("handover",)], []), t
    origins = {r[0] for r in tb.query("tsp-c", "SELECT DISTINCT tsp_id FROM telemetry "
                                               "WHERE vehicle_id=?", (v,))}
    assert {"tsp-a", "tsp-b", "tsp-c"} <= origins, origins
    assert_keys_consistent(tb, v, ["tsp-c"])
    st = stdout_line(tb, v, "FLEET")
    assert st["handovers"] == 2 and st["reauth_after_handover"] == 0, st


@testbed(tsps=["tsp-a", "tsp-b"])
def test_sigusr1_power_cycle_after_crossing(tb):
    """SIGUSR1 inside B: power off with Bye, then F3 with tsp-b."""
    start_provisioning(tb)
    v = vin(922)
    tb.start_vehicle(v, route=ROUTE_AB, **drive_opts())
    wait_until(lambda: crossings(tb, v), what="the crossing of %s" % v)
    tb.signal(v, signal.SIGUSR1)
    wait_until(lambda: events(tb, v, "auth_ok", "tsp-b") >= 2,
               what="F3 with tsp-b after the power cycle")
    wait_until(lambda: events(tb, v, "session_open", "tsp-b") >= 2,
               what="a session with tsp-b after the power cycle")
    tb.stop(v)
    assert len(crossings(tb, v)) == 1
    assert_keys_consistent(tb, v, ["tsp-a", "tsp-b"])
