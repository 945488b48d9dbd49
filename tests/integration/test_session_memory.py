"""F5 with the sessions held in memory: sessions as a restart leaves them
(rows in the store only) are read on their first message, each on a
connection of its own; the ServiceResponses are checked with an AES-GCM
of Python's, so the wire is the protocol's whatever tspd keeps in memory;
a session whose connection closed is read again and continues; replays
are dropped; the rows hold the sequence numbers the batch stored, with
tx_seq as a ceiling above every cloud->vehicle seq used."""

from harness import testbed, wait_until
from session_client import Vehicle as SessionVehicle, populate as plant, vin as vin_of

TSP = "tsp-a"
N = 200
PREFIX = "LMEM0000000"


def vin(i):
    return vin_of(PREFIX, i)


def populate(tb):
    plant(tb, TSP, PREFIX, N)


def Vehicle(tb, i, tx=1):
    return SessionVehicle(tb, TSP, PREFIX, i, tx)


def rows(tb):
    return dict((v, (rx, tx)) for v, rx, tx in tb.query(
        TSP, "SELECT vehicle_id, rx_seq, tx_seq FROM sessions"))


def check_rows(tb, vs, rx):
    """Every row has rx_seq rx (or rx[vid]) and a ceiling at or above
    every seq its vehicle was sent."""
    for v in vs:
        got_rx, ceiling = rows(tb)[v.vid]
        assert got_rx == rx.get(v.vid, rx[None]), (v.vid, got_rx)
        assert ceiling >= v.tx, (v.vid, ceiling, v.tx)


@testbed(tsps=[TSP])
def test_sessions_read_on_first_message_and_again_after_reconnecting(tb):
    tb.start_tsp(TSP)
    tb.stop(TSP)
    populate(tb)
    tb.start_tsp(TSP)
    vs = [Vehicle(tb, i) for i in range(N)]
    for v in vs:
        v.send(1)
    for v in vs:
        v.read_ack(1)
    check_rows(tb, vs, {None: 1})

    # Half the vehicles reconnect (their sessions leave memory and are
    # read again), the others go on; two messages each, pipelined.
    for i in range(0, N, 2):
        vs[i].close()
        vs[i] = Vehicle(tb, i, vs[i].tx)
    for v in vs:
        v.send(2, 3)
    for v in vs:
        v.read_ack(2)
        v.read_ack(3)

    # A replay is dropped without an answer; the next message is served.
    mark = tb.log_mark(TSP)
    vs[1].send(3)
    wait_until(lambda: "seq=3 reason=replay" in tb.log_since(TSP, mark),
               what="tspd to drop the replay")
    vs[1].send(4)
    vs[1].read_ack(4)
    for v in vs:
        v.wait_stored(4 if v.i == 1 else 3)
        v.close()
    check_rows(tb, vs, {None: 3, vin(1): 4})
    assert tb.count(TSP, "telemetry", "seq > 0") == 3 * N + 1

    # After a restart the sessions go on from the stored numbers.
    # No cloud->vehicle seq is used twice: the session continues above
    # the ceiling its row holds.
    ceiling = rows(tb)[vin(0)][1]
    tb.kill(TSP)
    tb.start(TSP)
    v = Vehicle(tb, 0, ceiling)
    v.send(4)
    v.read_ack(4)
    v.close()
    tb.assert_running(TSP)


@testbed(tsps=[TSP])
def test_pipelined_messages_wait_in_order_for_their_session(tb):
    """Sessions not in memory are read from the store while the messages
    of their connection wait: many pipelined at once are all served, in
    the order they came, none taken for a replay; a connection that
    closes while its messages wait leaves nothing half done."""
    tb.start_tsp(TSP)
    tb.stop(TSP)
    n = 40
    plant(tb, TSP, PREFIX, n)
    tb.start_tsp(TSP)
    mark = tb.log_mark(TSP)
    vs = [Vehicle(tb, i) for i in range(n)]
    for v in vs:
        v.send(*range(1, 21))
    for v in vs:
        for seq in range(1, 21):
            v.read_ack(seq)
    assert "reason=replay" not in tb.log_since(TSP, mark)
    for v in vs:
        v.wait_stored(20)
        v.close()
    check_rows(tb, vs, {None: 20})

    # Gone before the store answered: the vehicle goes on where the
    # store says its session is.
    quick = [Vehicle(tb, i, vs[i].tx) for i in range(n)]
    for v in quick:
        v.send(*range(21, 31))
        v.close()
    tb.assert_running(TSP)
    for i, old in enumerate(quick):
        v = Vehicle(tb, i, old.tx)
        v.send(31)
        v.read_ack(31)
        v.close()
    tb.assert_running(TSP)
