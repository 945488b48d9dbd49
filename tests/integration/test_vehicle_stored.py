"""vehicled's side of service-first telemetry (PROTOCOL F5) against a
scripted TSP that decides when to report records stored (`stored_seq`):
every record carries a record id, strictly increasing also across a
restart; what no stored_seq covered goes out again in the next session,
same record id, new seq, before new telemetry, also at the next TSP after
a handover; the M3's answer covers its data; a stored_seq alone, repeating an acknowledged seq, counts; one above
the vehicle's last seq does not; a full queue drops its oldest record,
counted and logged; and against the real tspd, records a killed TSP had
answered but not stored go again after the reconnect and are stored
once."""

import re
import struct
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from faketsp import AUTH_REQUIRED, FakeTsp, _double, _str, tsp_info
from harness import testbed, vin, wait_until
from test_drive import ROUTE_AB, crossings, drive_opts, stdout_line
from test_vehicle_handover import M5Script
from wire import MT, frame, pb_decode, pb_encode


class StoringTsp(FakeTsp):
    """A FakeTsp for one region whose telemetry acknowledgements carry the
    stored_seq policy(tsp, vid, seq) returns (None: none).  It notes every
    record: ("rec", vid, (session number, seq, record_id), conn) with seq 0
    for an M3's data, and goes on decoding a session it ended with Bye
    (`end_session`), noting those records as well but answering nothing."""

    def __init__(self, tb, tsp_id, policy=None, on_record=None, on_telemetry=None,
                 on_m6=None):
        self.policy = policy
        self.on_record = on_record
        self.nsessions = 0
        self.ended = {}			# vid -> the session ended by us
        super().__init__(tb, tsp_id, on_telemetry=on_telemetry, on_m6=on_m6)

    def records_of(self, vid, session=None):
        """[(session, seq, record_id)] of vid, in arrival order."""
        return [r[3] for r in self.seen("rec", vid)
                if session is None or r[3][0] == session]

    def _m3(self, conn, cid, m3, reqid):
        """FakeTsp's M3, noting the record id of its data."""
        vid = _str(m3, 1)
        index = m3.get(2, [None])[0]
        code = _str(m3, 3) if 3 in m3 else None
        with self.lock:
            allowed = vid in self.authed or vid in self.context
        self.note("m3", vid, index, cid)
        if not allowed:
            conn.sendall(frame(MT["MT_STATUS"], pb_encode([(1, AUTH_REQUIRED)]), reqid))
            return
        pfk = self._chip_key(vid, index, code)
        k1 = AESGCM(pfk).decrypt(m3[4][0], m3[5][0],
                                 ("qroam/1|M3-CEK|%s|%s" % (vid, self.id)).encode())
        d1 = pb_decode(AESGCM(k1).decrypt(m3[6][0], m3[7][0], (
            "qroam/1|M3-DATA|%s|%s" % (vid, self.id)).encode()))
        with self.lock:
            self.nsessions += 1
            self.sessions[vid] = {"k1": k1, "rx": 0, "tx": 0, "n": self.nsessions}
            n = self.nsessions
        self.note("rec", vid, (n, 0, d1.get(8, [None])[0]), cid)
        self.send_inner(conn, vid, pb_encode([(2, pb_encode([(1, 0), (2, self.id)]))]),
                        reqid)

    def end_session(self, conn, vid):
        """Bye to vid: its session ends here, without a stored_seq for
        what was not covered yet."""
        self.send_inner(conn, vid, pb_encode([(3, pb_encode([(1, "test ends it")]))]))
        with self.lock:
            self.ended[vid] = self.sessions.pop(vid)

    def send_response(self, conn, vid, ack, stored=None):
        fields = [(1, ack)] + ([(4, stored)] if stored is not None else [])
        self.send_inner(conn, vid, pb_encode([(2, pb_encode(fields))]))

    def _session(self, conn, cid, sm, reqid):
        vid, seq = _str(sm, 1), sm[2][0]
        with self.lock:
            s = self.sessions.get(vid)
            late = s is None
            if late:
                s = self.ended.get(vid)
        if s is None or seq <= s["rx"]:
            self.note("session_refused", vid, seq, cid)
            return
        aad = ("qroam/1|DATA|%s|%s|%d" % (vid, self.id, seq)).encode()
        inner = pb_decode(AESGCM(s["k1"]).decrypt(struct.pack(">IQ", 1, seq),
                                                   sm[3][0], aad))
        s["rx"] = seq
        if 5 in inner and not late:
            m6 = pb_decode(inner[5][0])
            choice = (bool(m6[1][0]), _str(m6, 2) if 2 in m6 else None)
            self.note("m6", vid, choice, cid)
            if self.on_m6:
                self.on_m6(self, conn, vid, choice)
            return
        if 1 not in inner:
            self.note("bye" if 3 in inner else "other", vid, None, cid)
            return
        t = pb_decode(inner[1][0])
        pos = (_double(t, 2), _double(t, 3))
        self.note("telemetry", vid, pos, cid)
        self.note("rec", vid, (s["n"], seq, t.get(8, [None])[0]), cid)
        if late:
            return
        stored = self.policy(self, vid, seq) if self.policy else None
        self.send_response(conn, vid, seq, stored)
        if self.on_record:
            self.on_record(self, conn, vid, seq)
        if self.on_telemetry:
            self.on_telemetry(self, conn, vid, pos)


def slow(**extra):
    opts = dict(fill_m=16, telemetry_interval="100ms", retransmit="500ms",
                session_rekey=0)
    opts.update(extra)
    return opts


def start(tb, **kw):
    tb.start_filler()
    tb.start_registrar()
    return StoringTsp(tb, "tsp-a", **kw)


@testbed(tsps=["tsp-a"])
def test_uncovered_records_go_again_in_the_next_session(tb):
    """stored_seq lags two seqs behind; after the sixth telemetry the TSP
    ends the session.  The next session sends exactly the records no
    stored_seq covered, oldest first with the same record ids and new
    seqs, before any new record; covered records and the first M3's data
    never go again."""
    def on_record(tsp, conn, vid, seq):
        if seq == 6 and tsp.nsessions == 1:
            tsp.end_session(conn, vid)

    fa = start(tb, policy=lambda tsp, vid, seq: seq - 2 if seq > 2 else None,
               on_record=on_record)
    v = vin(970)
    try:
        tb.start_vehicle(v, "tsp-a", **slow())
        wait_until(lambda: len(fa.records_of(v, 2)) >= 12, what="a second session")
        tb.stop(v)
    finally:
        fa.close()
    first, second = fa.records_of(v, 1), fa.records_of(v, 2)
    # Session 1: D1, then telemetry; stored_seq 4 was the last sent.
    assert first[0][1] == 0 and [r[1] for r in first[1:]] == \
        list(range(1, len(first))), first
    uncovered = [r[2] for r in first if r[1] > 4]
    assert len(uncovered) >= 2, first
    # Session 2: its D1 (a new record), then the uncovered ones again.
    assert second[0][1] == 0 and second[0][2] > max(r[2] for r in first), second
    again = [r[2] for r in second[1:1 + len(uncovered)]]
    assert again == uncovered, (again, uncovered)
    assert [r[1] for r in second[1:1 + len(uncovered)]] == \
        list(range(1, 1 + len(uncovered)))
    new = [r[2] for r in second[1 + len(uncovered):]]
    assert new and new == sorted(new) and new[0] > second[0][2], second
    # Record ids rise over the vehicle's life, resends apart.
    ids = [r[2] for r in first] + [second[0][2]] + new
    assert all(b > a for a, b in zip(ids, ids[1:])), ids
    st = stdout_line(tb, v, "STATS")
    assert st["telemetry_resent"] == len(uncovered), (st, uncovered)
    assert st["telemetry_dropped"] == 0 and st["errors"] == 0, st
    # Covered: the two D1 and what stored_seq reported.
    assert st["telemetry_stored"] >= 2 + 4, st
    assert tb.scalar(v, "SELECT value FROM counters WHERE name='telemetry_resent'") == \
        len(uncovered)
    assert "telemetry records not yet stored go to tsp-a again" in tb.log(v)


@testbed(tsps=["tsp-a"])
def test_stored_seq_alone_and_out_of_range(tb):
    """Acknowledgements without stored_seq; every fifth seq a separate
    ServiceResponse repeats the ack with stored_seq (it counts); seq 3's
    claims stored_seq 1000, beyond what the vehicle sent (ignored,
    logged)."""
    def on_record(tsp, conn, vid, seq):
        if seq == 3:
            tsp.send_response(conn, vid, seq, 1000)
        elif seq % 5 == 0:
            tsp.send_response(conn, vid, seq, seq)

    fa = start(tb, on_record=on_record)
    v = vin(971)
    try:
        tb.start_vehicle(v, "tsp-a", **slow())
        wait_until(lambda: len(fa.records_of(v)) >= 22, what="telemetry of %s" % v)
        tb.stop(v)
    finally:
        fa.close()
    st = stdout_line(tb, v, "STATS")
    # The D1, and the records up to a multiple of five (the last such
    # answer may still have been under way at the stop); the rest held.
    covered = st["telemetry_stored"] - 1
    assert covered >= 15 and covered % 5 == 0, st
    assert st["unstored"] == st["telemetry_sent"] - covered, st
    assert st["telemetry_resent"] == 0 and st["errors"] == 1, st
    assert re.search(r"stored_seq 1000 from tsp-a is above our last seq \d+; "
                     r"ignored", tb.log(v))


@testbed(tsps=["tsp-a"])
def test_full_queue_drops_and_ids_rise_across_restarts(tb):
    """A TSP that never reports anything stored and unstored_max 5: the
    oldest records go, counted and logged once; after a restart of
    vehicled the record ids go on above every earlier one."""
    fa = start(tb)
    v = vin(972)
    try:
        tb.start_vehicle(v, "tsp-a", **slow(unstored_max=5))
        wait_until(lambda: len(fa.records_of(v)) >= 13, what="telemetry of %s" % v)
        tb.stop(v)
        before = [r[2] for r in fa.records_of(v)]
        st = stdout_line(tb, v, "STATS")
        sent = st["telemetry_sent"]
        assert st["unstored"] == 5 and st["telemetry_dropped"] == sent - 5, st
        assert st["telemetry_stored"] == 1, st
        assert tb.scalar(v, "SELECT value FROM counters WHERE "
                            "name='telemetry_dropped'") == sent - 5
        assert tb.log(v).count("unstored telemetry full (5 records, unstored_max)") == 1
        mark = tb.scalar(v, "SELECT value FROM counters WHERE name='record_id_mark'")
        assert mark >= max(before), (mark, before)
        tb.start(v)
        wait_until(lambda: len(fa.records_of(v)) >= len(before) + 3,
                   what="telemetry after the restart")
        tb.stop(v)
    finally:
        fa.close()
    after = [r[2] for r in fa.records_of(v)][len(before):]
    assert min(after) > max(before) and min(after) > mark, (before, after, mark)
    assert all(b > a for a, b in zip(before, before[1:])), before


@testbed(tsps=["tsp-a", "tsp-b"])
def test_records_uncovered_at_the_crossing_go_to_the_next_tsp(tb):
    """tsp-a's stored_seq lags three seqs behind; after the handover the
    session opened ahead at tsp-b carries, right after the crossing, the
    records tsp-a had not reported stored, then new ones."""
    tb.start_filler()
    tb.start_registrar()
    fb = StoringTsp(tb, "tsp-b", policy=lambda tsp, vid, seq: seq)
    script = M5Script([tsp_info(tb, "tsp-b")], min_lon=120.075, ready=fb)
    fa = StoringTsp(tb, "tsp-a", policy=lambda tsp, vid, seq: seq - 3 if seq > 3 else None,
                    on_telemetry=script.on_telemetry, on_m6=script.on_m6)
    v = vin(973)
    try:
        tb.start_vehicle(v, route=ROUTE_AB, **drive_opts())
        wait_until(lambda: crossings(tb, v), what="the crossing of %s" % v)
        wait_until(lambda: len(fb.records_of(v)) >= 8, what="records at tsp-b")
        tb.stop(v)
    finally:
        fa.close()
        fb.close()
    at_a = [r for r in fa.records_of(v) if r[1] > 0]
    last = max(r[1] for r in at_a)
    # What tsp-a reported stored at most: all but the last three.
    surely = [r[2] for r in at_a if r[1] > last - 3]
    at_b = sorted(fb.records_of(v), key=lambda r: r[1])
    assert at_b[0][1] == 0, at_b
    ids_a = [r[2] for r in at_a]
    again = []
    for r in at_b[1:]:
        if r[2] not in ids_a:
            break
        again.append(r[2])
    # A tail of tsp-a's records, oldest first, ending with its last.
    assert len(again) >= len(surely) and again == ids_a[-len(again):], (again, ids_a)
    new = [r[2] for r in at_b[1 + len(again):]]
    assert new and min(new) > max(ids_a), (new, ids_a)
    st = stdout_line(tb, v, "STATS")
    assert st["telemetry_resent"] >= len(surely) and st["crossings"] == 1, st


@testbed(tsps=["tsp-a"])
def test_records_lost_with_a_killed_tsp_go_again(tb):
    """The real tspd with a group commit of one second: the vehicle holds
    the records answered but not yet stored; tspd killed and restarted,
    the vehicle reconnects to its session and sends them again.  Every
    record the vehicle counted stored is in the store, each once."""
    tb.start_tsp("tsp-a", commit_delay="1s")
    tb.start_filler()
    tb.start_registrar()
    v = vin(974)

    def rows(distinct=False):
        return tb.scalar("tsp-a", "SELECT count(%s) FROM telemetry WHERE "
                         "vehicle_id=?" % ("DISTINCT record_id" if distinct else "*"),
                         (v,))

    tb.start_vehicle(v, "tsp-a", **slow())
    wait_until(lambda: rows() >= 10, what="telemetry of %s stored" % v)
    wait_until(lambda: tb.status(v)["unstored"] >= 4,
               what="records answered but not yet stored")
    held = tb.status(v)["unstored"]
    tb.kill("tsp-a")
    time.sleep(0.3)
    tb.start("tsp-a")
    tb.wait_log(v, r"session: reconnected to tsp-a; \d+ telemetry records not yet "
                r"stored go again")
    wait_until(lambda: tb.status(v)["telemetry_resent"] >= 1,
               what="records sent again")
    n = rows()
    wait_until(lambda: rows() >= n + 15, what="telemetry after the restart")
    tb.stop(v)
    st = stdout_line(tb, v, "STATS")
    assert st["telemetry_resent"] >= 1 and st["telemetry_dropped"] == 0, (st, held)
    # Nothing covered is missing, nothing is stored twice; what was still
    # held at the power-off may be stored or not.
    assert rows() == rows(distinct=True), (rows(), rows(distinct=True))
    assert st["telemetry_stored"] <= rows() <= st["telemetry_stored"] + st["unstored"], st
    assert tb.count("tsp-a", "telemetry", "vehicle_id=? AND record_id IS NULL", (v,)) == 0
