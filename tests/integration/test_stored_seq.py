"""F5 service first (PROTOCOL section 6): tspd answers telemetry at once,
before its record is durable, and tells the vehicle with stored_seq which
records are; a stored_seq never covers a record the store does not hold;
a record sent again under the same record id is stored once; and a TSP
killed between its answers and their commit has stored none of them, so
the vehicle sends them again and each ends up stored exactly once."""

from harness import testbed
from session_client import Vehicle, populate

TSP = "tsp-a"
PREFIX = "LSTR0000000"
N = 20


def stored_rows(tb, vid):
    return tb.scalar(TSP, "SELECT count(*) FROM telemetry WHERE vehicle_id = ? AND seq > 0",
                     (vid,))


def record_ids(tb, vid):
    return sorted(r for r, in tb.query(
        TSP, "SELECT record_id FROM telemetry WHERE vehicle_id = ? AND seq > 0", (vid,)))


def planted(tb, **opts):
    tb.start_tsp(TSP, **opts)
    tb.stop(TSP)
    populate(tb, TSP, PREFIX, N)
    tb.start_tsp(TSP)


def warm_up(v, record_id):
    """Message 1 of a session read from its row: its answer waits until a
    new seq ceiling is durable (no cloud->vehicle seq is ever sealed
    twice, across restarts too); later answers leave at once."""
    v.send(1, records=[record_id])
    v.read_ack(1)
    v.wait_stored(1)


@testbed(tsps=[TSP])
def test_answered_at_once_and_covered_when_durable(tb):
    # A long group commit makes "answered before stored" visible.
    planted(tb, commit_delay="1500ms")
    v = Vehicle(tb, TSP, PREFIX, 0)
    warm_up(v, 5000)
    v.send(*range(2, 12), records=list(range(5001, 5011)))
    for seq in range(2, 12):
        resp = v.read_ack(seq, timeout=1.0)
        # No answer within the group's delay can cover its own record.
        assert 4 not in resp or resp[4][0] == 1, resp
    assert stored_rows(tb, v.vid) == 1
    assert v.stored == 1
    # Then the group commits and stored_seq comes alone (ack_seq 0).
    v.wait_stored(11, timeout=10)
    assert record_ids(tb, v.vid) == list(range(5000, 5011))
    # Sent again under the same record ids (new seqs): answered, stored
    # once, covered again.
    v.send(*range(12, 22), records=list(range(5001, 5011)))
    for seq in range(12, 22):
        v.read_ack(seq)
    v.wait_stored(21)
    assert record_ids(tb, v.vid) == list(range(5000, 5011))
    v.close()
    tb.assert_running(TSP)


@testbed(tsps=[TSP])
def test_stored_seq_never_ahead_of_the_store(tb):
    """Many vehicles pipelining telemetry at the default group commit: at
    every stored_seq a vehicle receives, the store holds every record up
    to it; in the end every record is covered."""
    planted(tb)
    vs = [Vehicle(tb, TSP, PREFIX, i) for i in range(N)]
    for rnd in range(5):
        for v in vs:
            first = rnd * 20 + 1
            v.send(*range(first, first + 20),
                   records=[v.i * 1000 + q for q in range(first, first + 20)])
        for v in vs:
            for seq in range(rnd * 20 + 1, rnd * 20 + 21):
                v.read_ack(seq)
                assert stored_rows(tb, v.vid) >= v.stored, (v.vid, v.stored)
    for v in vs:
        v.wait_stored(100)
        assert stored_rows(tb, v.vid) == 100
        v.close()


@testbed(tsps=[TSP])
def test_kill_between_answer_and_commit(tb):
    planted(tb, commit_delay="3s")
    vs = [Vehicle(tb, TSP, PREFIX, i) for i in range(4)]
    for v in vs:
        warm_up(v, v.i * 1000)
    for v in vs:
        v.send(*range(2, 27), records=[v.i * 1000 + q for q in range(1, 26)])
    for v in vs:
        for seq in range(2, 27):
            v.read_ack(seq, timeout=2.0)
        assert v.stored == 1
    # Answered, not yet committed: a SIGKILL now loses the group.
    tb.kill(TSP)
    for v in vs:
        v.close()
        assert stored_rows(tb, v.vid) == 1
    tb.start_tsp(TSP, commit_delay="0")
    # The vehicles send every uncovered record again, same record ids,
    # new seqs; two of them send some twice (a resend interrupted and
    # started over).
    again = []
    for v in vs:
        nv = Vehicle(tb, TSP, PREFIX, v.i, v.tx)
        recs = [v.i * 1000 + q for q in range(1, 26)]
        if v.i < 2:
            recs = recs[:10] + recs
        nv.send(*range(101, 101 + len(recs)), records=recs)
        for seq in range(101, 101 + len(recs)):
            nv.read_ack(seq)
        nv.wait_stored(100 + len(recs))
        again.append(nv)
    for v in again:
        assert record_ids(tb, v.vid) == [v.i * 1000 + q for q in range(0, 26)]
        v.close()
    tb.assert_running(TSP)
