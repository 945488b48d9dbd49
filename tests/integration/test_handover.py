"""The cross-cloud handover end to end (PROTOCOL F6-F8, section 7) with
real daemons on loopback: qkdd, schedd, fillerd, registrard, tspd per
region, and vehicled or qprobe as the vehicle.  Every test reads the
SQLite stores of the clouds and of the chip.

- A vehicle drives A -> B -> C: one F3 at power-on, two handovers, M3
  alone at B and C, the history at C holding telemetry sent in A and B,
  and key positions consistent in every store.
- A boundary point touching two regions: M5 lists both, and the handover
  goes to the candidate the vehicle named.
- An eavesdropper on the link between the scheduler and TSPB: the
  handover fails with its reason and the vehicle re-authenticates at B.
- schedd killed in the middle of a handover: it degrades to
  re-authentication; after a restart the next handover succeeds.

A power cycle inside region B and other key-position checks are in
test_handover_keys.py; forged and replayed handover messages in
test_handover_forgery.py.
"""

import re
import signal

from harness import enrolled_probe, testbed, vin, wait_until
from test_drive import (ROUTE_AB, ROUTE_ABC, counter, crossings, drive_opts,
                        events, stdout_line)
from test_schedd import keys_stored, kme, need_qkd

# The look-ahead of every TSP: at the drives' 100 m/s this projects 9 km,
# so a region's M5 goes out several kilometres (seconds of accelerated
# trip) before its boundary and the handover is ready long before the
# crossing even on a slow machine.
LOOK_AHEAD = "90s"
# A probe's telemetry just inside the east edge of tsp-a's region, heading
# east: its look-ahead leaves the region.
EAST_EDGE_A = "30.05,120.099"


# ---- the clouds ------------------------------------------------------------

def start_clouds(tb, tsps=None, sched_opts=None, **tsp_opts):
    """qkdd with keys for every TSP, schedd (with sched_opts), the TSPs
    (all of the bed's unless tsps names some) with handovers on, fillerd
    and registrard.  Timeouts are far above what a slow machine needs."""
    need_qkd()
    tb.start_qkd()
    tb.start_sched(handover_timeout="30s", **(sched_opts or {}))
    for t in tb.tsps:
        keys_stored(tb, t)
    tsp_opts.setdefault("look_ahead", LOOK_AHEAD)
    tsp_opts.setdefault("handover_timeout", "30s")
    for t in tsps or tb.tsps:
        tb.start_tsp(t, **tsp_opts)
    tb.start_filler()
    tb.start_registrar()


def ho_rows(tb, tsp, vid=None):
    """[(role, peer, state, reason, handover_id)] of a TSP's handovers,
    oldest first, for one vehicle if vid is given."""
    sql = "SELECT role, peer, state, reason, handover_id FROM handovers"
    args = ()
    if vid is not None:
        sql += " WHERE vehicle_id=? OR vehicle_id IS NULL"
        args = (vid,)
    return tb.query(tsp, sql + " ORDER BY created_ms, rowid", args)


def sched_rows(tb):
    """[(initiator, target, state, reason, handover_id)] of schedd."""
    return tb.query("sched", "SELECT initiator, target, state, reason, handover_id "
                    "FROM handovers ORDER BY created_ms, rowid")


def auth_via(tb, tsp, vid):
    return tb.query(tsp, "SELECT via FROM auth WHERE vehicle_id=?", (vid,))


def opened_keys(tb, tsp, vid):
    """Key indexes of the sessions tsp opened for vid, from its log."""
    rx = re.compile(r"session open vehicle=%s key_index=(\d+)" % vid)
    return [int(m.group(1)) for m in rx.finditer(tb.log(tsp))]


def assert_key_positions(tb, chip_store, vid, tsps, last=None):
    """Key positions consistent in every store: no key index opened a
    session at two TSPs or twice; each TSP's used keys are exactly the
    positions below its next_index (used by an M3 there, or burned), with
    'm3' only for the keys of its own sessions; every used key is
    destroyed on the chip, without its material.  last: the TSP holding
    the latest context, whose next position follows every key used.
    Returns {index: tsp}."""
    chip = tb.scalar(chip_store, "SELECT chip_id FROM chip")
    opened = {}
    for t in tsps:
        for idx in opened_keys(tb, t, vid):
            assert idx not in opened, "key %d opened sessions at %s and %s" % (
                idx, opened[idx], t)
            opened[idx] = t
    for t in tsps:
        used = dict(tb.query(t, "SELECT idx, how FROM used_keys WHERE chip_id=?", (chip,)))
        nxt = tb.scalar(t, "SELECT next_index FROM keypos WHERE chip_id=?", (chip,))
        mine = sorted(i for i, u in opened.items() if u == t)
        if nxt is None:
            assert not used and not mine, (t, used, mine)
            continue
        assert sorted(used) == list(range(nxt)), (t, nxt, sorted(used))
        assert sorted(i for i, how in used.items() if how == "m3") == mine, (t, used, mine)
    destroyed = {r[0] for r in tb.query(chip_store, "SELECT idx FROM chip_keys "
                                                    "WHERE destroyed=1")}
    assert set(opened) <= destroyed, (sorted(opened), sorted(destroyed))
    assert tb.scalar(chip_store, "SELECT count(*) FROM chip_keys WHERE "
                                 "destroyed=1 AND key IS NOT NULL") == 0
    if last is not None:
        assert tb.scalar(last, "SELECT next_index FROM keypos WHERE chip_id=?",
                         (chip,)) == max(opened) + 1, (last, opened)
    return opened


def probe_session(tb, tsp, p, f3=True):
    """F3 (unless f3 is false) and F4 of probe p with tsp."""
    if f3:
        r = p.auth(tsp)
        assert r.status == "OK", r
    r = p.m3(tsp)
    assert r.status == "OK", r
    return int(r["index"])


def offer(p, tsp, at, heading, choice, wait_ms=20000):
    """Telemetry of probe p at `at` with heading; the TSP's M5 is answered
    with M6 naming choice.  qprobe waits up to wait_ms for HandoverReady."""
    r = p.telemetry(tsp, 2, at=at, heading=heading, speed=30, m6=choice,
                    wait_ms=wait_ms)
    assert r.status == "OK" and r["acked"] == "2", r
    return r


def no_f3(tb, tsp, vid):
    """tsp never saw an M4 of vid: no nonce, no F3 in its log."""
    assert tb.count(tsp, "auth_nonces", "vehicle_id=?", (vid,)) == 0, tsp
    log = tb.log(tsp)
    assert "auth ok vehicle=%s" % vid not in log, tsp
    assert "auth refused vehicle=%s" % vid not in log, tsp


# ---- A -> B -> C -----------------------------------------------------------

@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_drive_through_three_regions(tb):
    """vehicled drives A -> B -> C: exactly one F3 (at power-on with A),
    two handovers recorded alike by schedd and both TSPs of each, M3 alone
    accepted at B and C, the history at C holding telemetry first stored
    in A and B, and key positions consistent in every store."""
    start_clouds(tb)
    v = vin(960)
    tb.start_vehicle(v, route=ROUTE_ABC, **drive_opts(session_rekey=0))
    wait_until(lambda: len(crossings(tb, v)) >= 2, timeout=90,
               what="two crossings of %s" % v)
    wait_until(lambda: tb.count("tsp-c", "telemetry", "vehicle_id=? AND "
                                "tsp_id='tsp-c' AND seq>0", (v,)) >= 3,
               what="telemetry of %s at tsp-c" % v)
    # C holds the authentication it received in the handover; A and B
    # gave theirs away with the context.
    assert auth_via(tb, "tsp-c", v) == [("handover",)]
    assert auth_via(tb, "tsp-a", v) == [] and auth_via(tb, "tsp-b", v) == []
    tb.stop(v)

    assert [c[:2] + c[3:] for c in crossings(tb, v)] == \
        [("tsp-a", "tsp-b", 0), ("tsp-b", "tsp-c", 0)]
    # One F3, at power-on in A; no M4 ever reached B or C.
    assert events(tb, v, "auth_ok") == 1 and events(tb, v, "auth_ok", "tsp-a") == 1
    assert tb.count(v, "events", "kind='auth_sent' AND tsp_id<>'tsp-a'") == 0
    assert events(tb, v, "session_refused") == 0
    for t in ("tsp-b", "tsp-c"):
        no_f3(tb, t, v)
        assert "m3 refused vehicle=%s" % v not in tb.log(t), t
    assert [events(tb, v, "session_open", t) for t in tb.tsps] == [1, 1, 1]
    assert [events(tb, v, "handover_ready", t) for t in tb.tsps] == [0, 1, 1]
    assert counter(tb, v, "handovers") == 2
    assert counter(tb, v, "reauth_after_handover") == 0

    # The same two handovers in schedd and at both ends.
    sched = sched_rows(tb)
    assert [r[:3] for r in sched] == [("tsp-a", "tsp-b", "done"),
                                      ("tsp-b", "tsp-c", "done")], sched
    ab, bc = sched[0][4], sched[1][4]
    assert ho_rows(tb, "tsp-a", v) == [("out", "tsp-b", "done", None, ab)]
    assert ho_rows(tb, "tsp-b", v) == [("in", "tsp-a", "done", None, ab),
                                       ("out", "tsp-c", "done", None, bc)]
    assert ho_rows(tb, "tsp-c", v) == [("in", "tsp-b", "done", None, bc)]
    for t in tb.tsps:
        assert tb.count(t, "ck2_bindings") == 0, t

    # The history moved along: C holds rows first stored in A and in B,
    # each one as its origin stored it.
    def rows(tsp, origin):
        return set(tb.query(tsp, "SELECT seq, unix_ms, lat, lon FROM telemetry "
                            "WHERE vehicle_id=? AND tsp_id=?", (v, origin)))
    for origin in ("tsp-a", "tsp-b"):
        at_c = rows("tsp-c", origin)
        assert at_c, "no telemetry of %s at tsp-c" % origin
        assert at_c <= rows(origin, origin), origin
    assert rows("tsp-b", "tsp-a") and rows("tsp-b", "tsp-a") <= rows("tsp-a", "tsp-a")

    opened = assert_key_positions(tb, v, v, tb.tsps, last="tsp-c")
    order = [opened[i] for i in sorted(opened)]
    assert order == ["tsp-a", "tsp-b", "tsp-c"], opened
    st = stdout_line(tb, v, "FLEET")
    assert st["handovers"] == 2 and st["reauth_after_handover"] == 0, st
    assert st["handover_failures"] == 0, st


# ---- a boundary point of two neighbours ------------------------------------

# tsp-a west of longitude 120.1; east of it tsp-b (south of latitude 30.05)
# and tsp-c (north of it), so the point 30.05,120.1 of A's edge touches both.
CORNER = {
    "tsp-a": [(30.0, 120.0), (30.0, 120.1), (30.1, 120.1), (30.1, 120.0)],
    "tsp-b": [(30.0, 120.1), (30.0, 120.2), (30.05, 120.2), (30.05, 120.1)],
    "tsp-c": [(30.05, 120.1), (30.05, 120.2), (30.1, 120.2), (30.1, 120.1)],
}


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_boundary_point_lists_both_and_honours_the_choice(tb):
    """Heading east at latitude 30.05 the look-ahead leaves A through the
    point where B and C meet: M5 lists both.  One vehicle names tsp-c, one
    tsp-b, one tsp-a (not a candidate): each handover goes where the
    vehicle said, or nowhere."""
    tb.region = lambda t: CORNER[t]
    tb._write_topology()
    start_clouds(tb)
    to_c, to_b, to_a = (enrolled_probe(tb, m=16) for _ in range(3))
    for p, choice in ((to_c, "tsp-c"), (to_b, "tsp-b")):
        probe_session(tb, "tsp-a", p)
        r = offer(p, "tsp-a", "30.05,120.099", 90, choice)
        assert sorted(r["m5"].split(",")) == ["tsp-b", "tsp-c"], r
        assert (r["m6"], r["ready"]) == (choice, choice), r
        other = "tsp-b" if choice == "tsp-c" else "tsp-c"
        assert auth_via(tb, choice, p.vin) == [("handover",)]
        assert auth_via(tb, other, p.vin) == []
        assert auth_via(tb, "tsp-a", p.vin) == []
        hid = ho_rows(tb, "tsp-a", p.vin)[-1][4]
        assert ho_rows(tb, "tsp-a", p.vin) == [("out", choice, "done", None, hid)]
        assert ho_rows(tb, choice, p.vin) == [("in", "tsp-a", "done", None, hid)]
        assert ho_rows(tb, other, p.vin) == []
        assert ("tsp-a", choice, "done", None, hid) in sched_rows(tb)
        tb.wait_log("tsp-a", r"handover offer vehicle=%s .*candidates=tsp-b,tsp-c" % p.vin)
        # Served by the chosen TSP after M3 alone; the other one asks for F3.
        probe_session(tb, choice, p, f3=False)
        r = p.m3(other)
        assert r.status == "AUTH_REQUIRED", r
        no_f3(tb, choice, p.vin)
    # A TSP that was not offered is refused; nothing starts.
    probe_session(tb, "tsp-a", to_a)
    mark = tb.log_mark("tsp-a")
    r = offer(to_a, "tsp-a", "30.05,120.099", 90, "tsp-a", wait_ms=3000)
    assert sorted(r["m5"].split(",")) == ["tsp-b", "tsp-c"], r
    assert r["ready"] == "none", r
    tb.wait_log("tsp-a", r"m6 refused vehicle=%s next=tsp-a reason=next_tsp_id is "
                r"not one of the candidates" % to_a.vin, since=mark)
    assert ho_rows(tb, "tsp-a", to_a.vin) == []
    assert auth_via(tb, "tsp-a", to_a.vin) == [("f3",)]
    assert len(sched_rows(tb)) == 2
    for p in (to_c, to_b, to_a):
        assert_key_positions(tb, p.store, p.vin, tb.tsps)


# ---- an eavesdropper on TSPB's quantum link --------------------------------

def link(tb, a, b):
    st, js = kme(tb, "operator", "GET", "/admin/v1/links/%s/%s" % (a, b))
    assert st == 200, (st, js)
    return js


@testbed(tsps=["tsp-a", "tsp-b"])
def test_eavesdropper_on_tspb_link_falls_back_to_f3(tb):
    """An operator switches intercept-resend on for the sched-tsp-b link:
    its QBER aborts it, CK2 cannot be had, and the handover fails with that
    reason at schedd and both TSPs.  The vehicle gets AUTH_REQUIRED at B,
    runs F3 + F4 there and is served; no key is used twice.  schedd holds
    no keys ahead here (key_reserve 0): keys held from before the attack
    would carry handovers until spent, as test_key_reserve.py shows."""
    start_clouds(tb, sched_opts={"key_reserve": 0})
    st, js = kme(tb, "operator", "POST", "/admin/v1/links/sched/tsp-b",
                 {"eavesdropper": 1.0})
    assert st == 200 and js["eavesdropper"] == 1.0, js
    wait_until(lambda: link(tb, "sched", "tsp-b")["aborted"], what="the link to abort")
    assert not link(tb, "sched", "tsp-a")["aborted"]
    v = vin(961)
    tb.start_vehicle(v, route=ROUTE_AB, **drive_opts(session_rekey=0))
    wait_until(lambda: crossings(tb, v), timeout=90, what="the crossing of %s" % v)
    wait_until(lambda: tb.count("tsp-b", "telemetry", "vehicle_id=? AND seq>0",
                                (v,)) >= 3, what="telemetry of %s at tsp-b" % v)
    assert auth_via(tb, "tsp-b", v) == [("f3",)]
    tb.stop(v)

    # The failure, with its reason, in every store and log (TSPA may
    # offer the handover again; each attempt fails alike).
    sched = sched_rows(tb)
    assert sched and {r[:3] for r in sched} == {("tsp-a", "tsp-b", "failed")}, sched
    hid = sched[0][4]
    for r in sched:
        assert "503" in r[3] and "QBER" in r[3], r
    a_rows = ho_rows(tb, "tsp-a", v)
    assert [r[4] for r in a_rows] == [r[4] for r in sched], (a_rows, sched)
    for r in a_rows:
        assert r[:3] == ("out", "tsp-b", "failed"), r
        assert "UNAVAILABLE" in r[3] and "QBER" in r[3], r
    b_rows = [r for r in ho_rows(tb, "tsp-b") if r[4] == hid]
    assert [r[:3] for r in b_rows] == [("in", "tsp-a", "failed")], b_rows
    assert "QBER" in b_rows[0][3], b_rows
    tb.wait_log("tsp-a", r"handover failed id=%s vehicle=%s to=tsp-b .*reason=.*QBER"
                % (hid, v))
    tb.wait_log("sched", r"handover %s: \S+ -> failed: .*503.*QBER" % hid)
    assert tb.count("tsp-b", "ck2_bindings") == 0

    # Degraded, never broken: AUTH_REQUIRED at B, then F3 + F4 there.
    assert [c[:2] + c[3:] for c in crossings(tb, v)] == [("tsp-a", "tsp-b", 1)]
    assert events(tb, v, "handover_ready") == 0
    assert tb.query(v, "SELECT tsp_id, detail FROM events WHERE kind='session_refused'") \
        == [("tsp-b", "AUTH_REQUIRED")]
    assert (events(tb, v, "auth_ok", "tsp-a"), events(tb, v, "auth_ok", "tsp-b")) == (1, 1)
    log = tb.log("tsp-b")
    refused = log.index("m3 refused vehicle=%s" % v)
    assert "reason=AUTH_REQUIRED" in log[refused:log.index("\n", refused)]
    assert refused < log.index("auth ok vehicle=%s" % v) < \
        log.index("session open vehicle=%s" % v)
    opened = assert_key_positions(tb, v, v, tb.tsps, last="tsp-b")
    assert [opened[i] for i in sorted(opened)] == ["tsp-a", "tsp-b"], opened
    assert counter(tb, v, "reauth_after_handover") == 1
    st = stdout_line(tb, v, "FLEET")
    assert st["handovers"] == 0 and st["handover_failures"] == 1, st


# ---- schedd killed mid-handover --------------------------------------------

@testbed(tsps=["tsp-a", "tsp-b"])
def test_sched_killed_mid_handover(tb):
    """TSPB is frozen (SIGSTOP) so that the scheduler holds the handover
    after A2; schedd is then killed with SIGKILL.  TSPA fails the
    handover, the vehicle gets AUTH_REQUIRED at B and runs F3 + F4.  After
    schedd restarts it marks the handover failed, and the next handover
    (another vehicle, A -> B) completes without F3 at B."""
    start_clouds(tb)
    p1, p2 = enrolled_probe(tb, m=16), enrolled_probe(tb, m=16)
    probe_session(tb, "tsp-a", p1)
    tb.signal("tsp-b", signal.SIGSTOP)
    try:
        r = offer(p1, "tsp-a", EAST_EDGE_A, 90, "tsp-b", wait_ms=4000)
        assert (r["m5"], r["m6"]) == ("tsp-b", "tsp-b"), r
        (row,) = wait_until(lambda: [x for x in sched_rows(tb) if x[2] == "a2"],
                            what="schedd to hold the handover after A2")
        hid = row[4]
        tb.kill("sched")
        wait_until(lambda: ho_rows(tb, "tsp-a", p1.vin) and
                   ho_rows(tb, "tsp-a", p1.vin)[-1][2] == "failed",
                   what="tsp-a to fail the handover")
    finally:
        tb.signal("tsp-b", signal.SIGCONT)
    a_rows = ho_rows(tb, "tsp-a", p1.vin)
    assert a_rows[0][:3] == ("out", "tsp-b", "failed") and a_rows[0][4] == hid, a_rows
    assert "scheduler" in a_rows[0][3], a_rows
    assert {r[2] for r in a_rows} == {"failed"}, a_rows
    tb.wait_log("tsp-a", r"handover failed id=%s vehicle=%s to=tsp-b state=A2 reason="
                % (hid, p1.vin))
    assert auth_via(tb, "tsp-a", p1.vin) == [("f3",)]

    # The vehicle is served at B after re-authenticating.
    r = p1.m3("tsp-b")
    assert r.status == "AUTH_REQUIRED", r
    probe_session(tb, "tsp-b", p1)
    r = p1.telemetry("tsp-b", 3)
    assert r.status == "OK" and r["acked"] == "3", r
    assert auth_via(tb, "tsp-b", p1.vin) == [("f3",)]
    assert tb.count("tsp-b", "ck2_bindings") == 0

    tb.start("sched")
    assert [r[2:5] for r in sched_rows(tb)] == [("failed", "scheduler restarted", hid)]
    tb.wait_log("sched", r"1 unfinished handover failed: scheduler restarted")
    keys_stored(tb, "tsp-a")
    keys_stored(tb, "tsp-b")
    probe_session(tb, "tsp-a", p2)
    r = offer(p2, "tsp-a", EAST_EDGE_A, 90, "tsp-b")
    assert r["ready"] == "tsp-b", r
    probe_session(tb, "tsp-b", p2, f3=False)
    assert auth_via(tb, "tsp-b", p2.vin) == [("handover",)]
    no_f3(tb, "tsp-b", p2.vin)
    sched = sched_rows(tb)
    assert [r[:3] for r in sched] == [("tsp-a", "tsp-b", "failed"),
                                      ("tsp-a", "tsp-b", "done")], sched
    assert auth_via(tb, "tsp-a", p2.vin) == []
    for p in (p1, p2):
        assert_key_positions(tb, p.store, p.vin, tb.tsps, last="tsp-b")

