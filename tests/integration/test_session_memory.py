"""F5 with the sessions held in memory: sessions as a restart leaves them
(rows in the store only) are read on their first message, each on a
connection of its own; the ServiceResponses are checked here with an
AES-GCM of Python's, so the wire is the protocol's whatever tspd keeps in
memory; a session whose connection closed is read again and continues;
replays are dropped; the rows hold the sequence numbers the batch stored."""

import socket
import sqlite3
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import MT, frame, pb_decode, pb_encode, split_frames, testbed, wait_until

TSP = "tsp-a"
N = 200
CHIP = "cd" * 32
V2C, C2V = 1, 2


def vin(i):
    return "LMEM0000000%06d" % i


def k1(i):
    return (b"k1-%029d" % i)[:32]


def nonce(direction, seq):
    return direction.to_bytes(4, "big") + seq.to_bytes(8, "big")


def aad(vid, seq):
    return ("qroam/1|DATA|%s|%s|%d" % (vid, TSP, seq)).encode()


def telemetry_msg(i, seq):
    tele = pb_encode([(1, 1700000000000 + seq), (2, 30.05), (3, 120.05), (4, 12.5),
                      (5, 180.0)])
    ct = AESGCM(k1(i)).encrypt(nonce(V2C, seq), pb_encode([(1, tele)]), aad(vin(i), seq))
    return frame(MT["MT_SESSION_MSG"], pb_encode([(1, vin(i)), (2, seq), (3, ct)]),
                 request_id=seq)


def populate(tb):
    """N authenticated vehicles with a session each, rx_seq 0, tx_seq 1."""
    now = int(time.time() * 1000)
    db = sqlite3.connect(tb.store(TSP))
    with db:
        db.executemany("INSERT INTO auth(vehicle_id, chip_id, authed_ms, via)"
                       " VALUES(?, ?, ?, 'f3')", [(vin(i), CHIP, now) for i in range(N)])
        db.executemany("INSERT INTO sessions(vehicle_id, chip_id, k1, key_index, rx_seq,"
                       " tx_seq, opened_ms, sequential) VALUES(?, ?, ?, ?, 0, 1, ?, 1)",
                       [(vin(i), CHIP, k1(i), i, now) for i in range(N)])
    db.close()


class Vehicle:
    """One connection of vehicle i; frames received but not yet read."""

    def __init__(self, tb, i):
        self.i = i
        self.sock = socket.create_connection(("127.0.0.1", tb.port[TSP]), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.frames = []

    def send(self, *seqs):
        self.sock.sendall(b"".join(telemetry_msg(self.i, q) for q in seqs))

    def read_ack(self, tx_seq, ack_seq):
        """One ServiceResponse: message tx_seq acknowledging ack_seq, opened
        with K1 under the cloud->vehicle nonce and AAD."""
        while not self.frames:
            data = self.sock.recv(65536)
            assert data, "tspd closed the connection of %s" % vin(self.i)
            frames, self.buf = split_frames(self.buf + data)
            self.frames += frames
        mtype, payload, _ = self.frames.pop(0)
        assert mtype == MT["MT_SESSION_MSG"], (mtype, payload)
        m = pb_decode(payload)
        assert m[1][0].decode() == vin(self.i) and m[2][0] == tx_seq, m
        inner = pb_decode(AESGCM(k1(self.i)).decrypt(nonce(C2V, tx_seq), m[3][0],
                                                     aad(vin(self.i), tx_seq)))
        resp = pb_decode(inner[2][0])
        assert resp[1][0] == ack_seq and resp[2][0].decode() == TSP, resp

    def close(self):
        self.sock.close()


def rows(tb):
    return dict((v, (rx, tx)) for v, rx, tx in tb.query(
        TSP, "SELECT vehicle_id, rx_seq, tx_seq FROM sessions"))


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
        v.read_ack(2, 1)
    assert set(rows(tb).values()) == {(1, 2)}

    # Half the vehicles reconnect (their sessions leave memory and are
    # read again), the others go on; two messages each, pipelined.
    for i in range(0, N, 2):
        vs[i].close()
        vs[i] = Vehicle(tb, i)
    for v in vs:
        v.send(2, 3)
    for v in vs:
        v.read_ack(3, 2)
        v.read_ack(4, 3)

    # A replay is dropped without an answer; the next message is served.
    mark = tb.log_mark(TSP)
    vs[1].send(3)
    wait_until(lambda: "seq=3 reason=replay" in tb.log_since(TSP, mark),
               what="tspd to drop the replay")
    vs[1].send(4)
    vs[1].read_ack(5, 4)
    for v in vs:
        v.close()
    stored = rows(tb)
    assert stored.pop(vin(1)) == (4, 5)
    assert set(stored.values()) == {(3, 4)}
    assert tb.count(TSP, "telemetry", "seq > 0") == 3 * N + 1

    # After a restart the sessions go on from the stored numbers.
    tb.kill(TSP)
    tb.start(TSP)
    v = Vehicle(tb, 0)
    v.send(4)
    v.read_ack(5, 4)
    v.close()
    tb.assert_running(TSP)
