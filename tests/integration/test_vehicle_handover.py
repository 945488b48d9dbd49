"""vehicled's side of the handover against scripted TSPs (faketsp.py):
the answer to M5 from the route, the second connection after
HandoverReady with the session opened on it ahead of the boundary
(prepared entry) or the M3 sent on the crossing (entry on_crossing), and
declining at the end of a trip."""

import re

from faketsp import FakeTsp, tsp_info
from harness import testbed, vin, wait_until
from qroamlib import stores
from test_drive import (ROUTE_AB, counter, crossings, drive_opts, events,
                        stdout_line)


class M5Script:
    """Send M5 with the given candidates on a vehicle's telemetry from
    longitude min_lon on, again in every new session until M6 came, and
    HandoverReady to `ready` (a FakeTsp) when M6 names it."""

    def __init__(self, candidates, min_lon=0.0, ready=None):
        self.candidates = candidates
        self.min_lon = min_lon
        self.ready = ready
        self.asked = {}		# vid -> the session M5 went out in
        self.answered = set()

    def on_telemetry(self, tsp, conn, vid, pos):
        session = tsp.sessions.get(vid)
        if vid in self.answered or pos[1] < self.min_lon or \
                self.asked.get(vid) is session:
            return
        self.asked[vid] = session
        tsp.send_m5(conn, vid, self.candidates, (pos[0], pos[1] + 0.01))

    def on_m6(self, tsp, conn, vid, choice):
        self.answered.add(vid)
        if self.ready is not None and choice == (True, self.ready.id):
            tsp.send_ready(conn, vid, self.ready)


def fakes(tb, script, *ids):
    return [FakeTsp(tb, t, on_telemetry=script.on_telemetry, on_m6=script.on_m6)
            if i == 0 else FakeTsp(tb, t) for i, t in enumerate(ids)]


def prepared(tb, min_lon):
    """fillerd, registrard and scripted tsp-a and tsp-b: tsp-a offers tsp-b
    in M5 from longitude min_lon on and sends HandoverReady from tsp-b when
    M6 names it.  (tsp-a, tsp-b)."""
    tb.start_filler()
    tb.start_registrar()
    fb = FakeTsp(tb, "tsp-b")
    script = M5Script([tsp_info(tb, "tsp-b")], min_lon=min_lon, ready=fb)
    return FakeTsp(tb, "tsp-a", on_telemetry=script.on_telemetry, on_m6=script.on_m6), fb


def drive_across(tb, fa, fb, v, **opts):
    """Drive v from tsp-a into tsp-b (scripted) until tsp-b has three
    telemetry messages, then stop it."""
    try:
        tb.start_vehicle(v, route=ROUTE_AB, **drive_opts(session_rekey=3, **opts))
        wait_until(lambda: crossings(tb, v), what="the crossing of %s" % v)
        wait_until(lambda: len(fb.seen("telemetry", v)) >= 3,
                   what="telemetry at tsp-b")
        tb.stop(v)
    finally:
        fa.close()
        fb.close()


def assert_handover_without_f3(tb, fa, fb, v, entry):
    """One crossing tsp-a -> tsp-b served without F3 anywhere but at
    power-on, after M6 named tsp-b, with one M3 at tsp-b on the connection
    opened after HandoverReady; no new session with tsp-a once tsp-b took
    over, although session_rekey 3 would have renewed it."""
    assert [c[:2] + c[3:] for c in crossings(tb, v)] == [("tsp-a", "tsp-b", 0)]
    assert [c[4] for c in stores.crossings(tb.daemons[v].store, with_entry=True)] \
        == [entry]
    assert events(tb, v, "auth_ok") == 1
    assert counter(tb, v, "handovers") == 1
    assert counter(tb, v, "reauth_after_handover") == 0
    assert [r[3] for r in fa.seen("m6", v)] == [(True, "tsp-b")]
    assert fb.seen("m4", v) == []
    ready_ms = fa.seen("ready", v)[0][0]
    bye_ms = fa.seen("bye", v)[0][0]
    m3 = fb.seen("m3", v)
    assert len(m3) == 1, m3
    assert ready_ms < fb.conns[m3[0][4]] < bye_ms, (ready_ms, fb.conns, bye_ms)
    assert all(r[0] < ready_ms for r in fa.seen("m3", v))
    assert len([r for r in fa.seen("telemetry", v) if r[0] > ready_ms]) >= 3
    assert tb.query(v, "SELECT detail FROM events WHERE kind='m6'") == \
        [("continue=1 next=tsp-b",)]
    assert events(tb, v, "handover_ready", "tsp-b") == 1
    assert re.search(r"crossing tsp-a -> tsp-b: served after \d+\.\d ms "
                     r"\(handover, no F3\)", tb.log(v)), tb.log(v)[-2000:]
    st = stdout_line(tb, v, "FLEET")
    assert st["handovers"] == 1 and st["reauth_after_handover"] == 0, st
    assert st["handover_failures"] == 0 and st["gap_ms_p50"] > 0, st
    return ready_ms, bye_ms, m3[0]


@testbed(tsps=["tsp-a", "tsp-b"])
def test_prepared_entry_opens_the_session_ahead(tb):
    """Prepared entry (the default): on HandoverReady the vehicle connects
    to tsp-b and sends its M3 at once, while tsp-a still serves it; on the
    crossing it says Bye (not a power-off) to tsp-a and its first message
    in region B is telemetry on that session, answered by tsp-b."""
    fa, fb = prepared(tb, 120.075)
    v = vin(950)
    drive_across(tb, fa, fb, v)
    ready_ms, bye_ms, m3 = assert_handover_without_f3(tb, fa, fb, v, "prepared")
    # The M3 itself went out before the crossing, with telemetry to tsp-a
    # after it; tsp-b saw telemetry only from the crossing (the Bye to
    # tsp-a) on, on the M3's connection.
    assert m3[0] < bye_ms, (m3, bye_ms)
    log = tb.log(v)
    assert log.index("entry: M3 sent to tsp-b ahead of the crossing") < \
        log.index("Bye sent to tsp-a (region change)")
    assert any(m3[0] < r[0] < bye_ms for r in fa.seen("telemetry", v))
    tel_b = fb.seen("telemetry", v)
    # (The two fakes note arrivals in threads of their own: a few ms.)
    assert tel_b and tel_b[0][0] > bye_ms - 20 and tel_b[0][4] == m3[4], \
        (tel_b, bye_ms)
    assert "crossing tsp-a -> tsp-b: prepared entry, telemetry on the session " \
        "opened ahead" in log
    assert "on the session opened ahead" in log
    assert events(tb, v, "session_open", "tsp-b") == 1
    assert tb.query(v, "SELECT detail FROM events WHERE kind='session_open' "
                       "AND tsp_id='tsp-b'") == [("key %d, prepared entry" % m3[3],)]
    st = stdout_line(tb, v, "FLEET")
    assert st["prepared_entries"] == 1 and st["turned_back"] == 0, st


@testbed(tsps=["tsp-a", "tsp-b"])
def test_entry_on_crossing_sends_m3_on_the_crossing(tb):
    """entry on_crossing (the patent's order): the connection to tsp-b
    waits from HandoverReady on, the M3 goes out after the Bye to tsp-a,
    and its answer is the crossing's first."""
    fa, fb = prepared(tb, 120.075)
    v = vin(956)
    drive_across(tb, fa, fb, v, entry="on_crossing")
    ready_ms, bye_ms, m3 = assert_handover_without_f3(tb, fa, fb, v, "on_crossing")
    log = tb.log(v)
    assert log.index("Bye sent to tsp-a") < log.index("M3 sent to tsp-b") < \
        log.index("served after")
    assert "handover prepared, M3 only" in log
    assert "entry on_crossing: M3 on the crossing" in log
    assert "on the session opened ahead" not in log
    st = stdout_line(tb, v, "FLEET")
    assert st["prepared_entries"] == 0, st


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_m6_names_the_candidate_the_route_enters(tb):
    """Candidates tsp-c (first, with its region) and tsp-b (without a
    region: the vehicle's own list has it): the route goes into tsp-b."""
    tb.start_filler()
    tb.start_registrar()
    script = M5Script([tsp_info(tb, "tsp-c"), tsp_info(tb, "tsp-b", with_region=False)])
    fa, fb = fakes(tb, script, "tsp-a", "tsp-b")
    v = vin(951)
    try:
        tb.start_vehicle(v, route=ROUTE_AB, **drive_opts(speed=10))
        wait_until(lambda: fa.seen("m6", v), what="M6 from %s" % v)
        tb.stop(v)
    finally:
        fa.close()
        fb.close()
    assert [r[3] for r in fa.seen("m6", v)] == [(True, "tsp-b")]
    assert tb.query(v, "SELECT detail FROM events WHERE kind='m5'") == \
        [("candidates=tsp-c,tsp-b",)]


@testbed(tsps=["tsp-a", "tsp-b"])
def test_m6_declines_at_the_end_of_the_trip(tb):
    """The route ends inside tsp-a: continue=false and no more service
    there.  A route leaving every region: declined with decline_at_end,
    otherwise continued with the TSP's first candidate."""
    tb.start_filler()
    tb.start_registrar()
    script = M5Script([tsp_info(tb, "tsp-b")])
    fa, fb = fakes(tb, script, "tsp-a", "tsp-b")
    ends_in_a, declines, goes_on = vin(952), vin(953), vin(954)
    west = ["30.0500,120.0500", "30.0500,119.9000"]
    slow = dict(speed=1, time_factor=1, telemetry_interval="100ms", fill_m=16)
    try:
        tb.start_vehicle(ends_in_a, **slow)
        tb.start_vehicle(declines, route=west, decline_at_end=True, **slow)
        tb.start_vehicle(goes_on, route=west, **slow)
        for v in (ends_in_a, declines, goes_on):
            wait_until(lambda v=v: fa.seen("m6", v), what="M6 from %s" % v)
        for v in (ends_in_a, declines):
            wait_until(lambda v=v: tb.log(v).count("service declined") >= 1,
                       what="%s to leave the session" % v)
        after = {v: len(fa.seen("telemetry", v)) for v in (ends_in_a, declines)}
        n = len(fa.seen("telemetry", goes_on))
        wait_until(lambda: len(fa.seen("telemetry", goes_on)) >= n + 5,
                   what="service going on for %s" % goes_on)
        for v in (ends_in_a, declines, goes_on):
            tb.stop(v)
    finally:
        fa.close()
        fb.close()
    assert [r[3] for r in fa.seen("m6", ends_in_a)] == [(False, None)]
    assert [r[3] for r in fa.seen("m6", declines)] == [(False, None)]
    assert [r[3] for r in fa.seen("m6", goes_on)] == [(True, "tsp-b")]
    for v in (ends_in_a, declines):
        # Declining ends the session: no telemetry, M4 or M3 after it.
        assert len(fa.seen("telemetry", v)) == after[v], v
        m6_ms = fa.seen("m6", v)[0][0]
        assert all(r[0] < m6_ms for r in fa.seen("m4", v) + fa.seen("m3", v)), v
        assert fa.seen("bye", v) == [], v
        assert events(tb, v, "auth_ok") == 1
    assert "the trip ends in the region of tsp-a" in tb.log(ends_in_a)
    assert "tsp-a is the last region of the route" in tb.log(declines)
    assert "no candidate region lies on the route" in tb.log(goes_on)


@testbed(tsps=["tsp-a", "tsp-b"])
def test_probe_answers_m5(tb):
    """qprobe's telemetry places its samples, reports M5, answers M6 and
    waits for HandoverReady; its M3 then needs no F3 at the new TSP."""
    fa, fb = prepared(tb, 120.08)
    try:
        p = tb.probe()
        p.fill(m=8)
        assert p.register().status == "OK"
        assert p.auth("tsp-a").status == "OK"
        assert p.m3("tsp-a").status == "OK"
        r = p.telemetry("tsp-a", 2, at="30.05,120.02", heading=90, speed=30)
        assert (r.status, r.get("m5")) == ("OK", None), r
        r = p.telemetry("tsp-a", 3, at="30.05,120.09", heading=90, speed=30,
                        m6="tsp-b")
        assert r.status == "OK" and r["acked"] == "3", r
        assert (r["m5"], r["m6"], r["ready"]) == ("tsp-b", "tsp-b", "tsp-b"), r
        assert r["ready_addr"] == "127.0.0.1:%d" % tb.port["tsp-b"], r
        assert [x[3] for x in fa.seen("m6", p.vin)] == [(True, "tsp-b")]
        assert fa.seen("telemetry", p.vin)[-1][3] == (30.05, 120.09)
        assert p.m3("tsp-b").status == "OK"
        assert fb.seen("m4", p.vin) == []
    finally:
        fa.close()
        fb.close()


@testbed(tsps=["tsp-a", "tsp-b"])
def test_reauth_on_entry_baseline(tb):
    """reauth_on_entry: the same drive and prepared handover, but F3 + F4
    at the new TSP, measured as a crossing with reauth=1."""
    fa, fb = prepared(tb, 120.075)
    v = vin(955)
    try:
        tb.start_vehicle(v, route=ROUTE_AB, reauth_on_entry=True, **drive_opts())
        wait_until(lambda: crossings(tb, v), what="the crossing of %s" % v)
        tb.stop(v)
    finally:
        fa.close()
        fb.close()
    assert [c[:2] + c[3:] for c in crossings(tb, v)] == [("tsp-a", "tsp-b", 1)]
    assert len(fb.seen("m4", v)) == 1 and len(fb.seen("m3", v)) == 1
    # The M4 went out on the pre-connection, before the Bye reached tsp-a.
    assert fb.conns[fb.seen("m4", v)[0][4]] < fa.seen("bye", v)[0][0]
    assert events(tb, v, "auth_ok") == 2
    assert counter(tb, v, "reauth_after_handover") == 1
    assert "authenticating again (reauth_on_entry)" in tb.log(v)
