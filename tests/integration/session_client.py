"""A vehicle's side of F5 written from PROTOCOL.md alone, for tests that
drive tspd's session path directly: sessions planted in a stopped TSP's
store (authenticated, K1 known here), telemetry sealed and answers opened
with Python's AES-GCM, and the service-first rules of F5 checked on every
answer: cloud->vehicle seqs strictly increase, ServiceResponses carry the
ack of the message they answer, stored_seq is cumulative and may come
alone (ack_seq 0)."""

import socket
import sqlite3
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import MT, frame, pb_decode, pb_encode, split_frames

CHIP = "cd" * 32
V2C, C2V = 1, 2


def vin(prefix, i):
    return "%s%06d" % (prefix, i)


def k1(i):
    return (b"k1-%029d" % i)[:32]


def nonce(direction, seq):
    return direction.to_bytes(4, "big") + seq.to_bytes(8, "big")


def aad(vid, tsp, seq):
    return ("qroam/1|DATA|%s|%s|%d" % (vid, tsp, seq)).encode()


def populate(tb, tsp, prefix, n):
    """n authenticated vehicles with a session each, rx_seq 0, tx_seq 1,
    planted in the (stopped) TSP's store."""
    now = int(time.time() * 1000)
    db = sqlite3.connect(tb.store(tsp))
    with db:
        db.executemany("INSERT INTO auth(vehicle_id, chip_id, authed_ms, via)"
                       " VALUES(?, ?, ?, 'f3')", [(vin(prefix, i), CHIP, now) for i in range(n)])
        db.executemany("INSERT INTO sessions(vehicle_id, chip_id, k1, key_index, rx_seq,"
                       " tx_seq, opened_ms, sequential) VALUES(?, ?, ?, ?, 0, 1, ?, 1)",
                       [(vin(prefix, i), CHIP, k1(i), i, now) for i in range(n)])
    db.close()


class Vehicle:
    """One connection of planted vehicle i of prefix at tsp."""

    def __init__(self, tb, tsp, prefix, i, tx=1):
        self.tsp = tsp
        self.i = i
        self.vid = vin(prefix, i)
        self.tx = tx            # the last cloud->vehicle seq seen
        self.stored = 0         # the highest stored_seq seen
        self.sock = socket.create_connection(("127.0.0.1", tb.port[tsp]), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.frames = []

    def telemetry(self, seq, record_id=None):
        fields = [(1, 1700000000000 + seq), (2, 30.05), (3, 120.05), (4, 12.5),
                  (5, 180.0)]
        if record_id is not None:
            fields.append((8, record_id))
        ct = AESGCM(k1(self.i)).encrypt(nonce(V2C, seq), pb_encode([(1, pb_encode(fields))]),
                                        aad(self.vid, self.tsp, seq))
        return frame(MT["MT_SESSION_MSG"], pb_encode([(1, self.vid), (2, seq), (3, ct)]),
                     request_id=seq)

    def send(self, *seqs, records=None):
        """Telemetry under seqs; records: their record ids, in order."""
        rec = records if records is not None else [None] * len(seqs)
        self.sock.sendall(b"".join(self.telemetry(q, r) for q, r in zip(seqs, rec)))

    def next_response(self, timeout=10):
        """The next ServiceResponse as {field: [values]}, checked: sealed
        under K1 as message self.tx + something, above every seq before."""
        self.sock.settimeout(timeout)
        while not self.frames:
            data = self.sock.recv(65536)
            assert data, "tspd closed the connection of %s" % self.vid
            frames, self.buf = split_frames(self.buf + data)
            self.frames += frames
        mtype, payload, _ = self.frames.pop(0)
        assert mtype == MT["MT_SESSION_MSG"], (mtype, payload)
        m = pb_decode(payload)
        seq = m[2][0]
        assert m[1][0].decode() == self.vid and seq > self.tx, (m, self.tx)
        inner = pb_decode(AESGCM(k1(self.i)).decrypt(nonce(C2V, seq), m[3][0],
                                                     aad(self.vid, self.tsp, seq)))
        self.tx = seq
        resp = pb_decode(inner[2][0])
        assert resp[2][0].decode() == self.tsp, resp
        if 4 in resp:
            assert resp[4][0] >= self.stored, (resp, self.stored)
            self.stored = resp[4][0]
        return resp

    def read_ack(self, ack_seq, timeout=10):
        """Read up to the answer to message ack_seq (stored_seq notices on
        the way are taken in)."""
        while True:
            resp = self.next_response(timeout)
            if resp[1][0] == 0:
                assert 4 in resp, resp
                continue
            assert resp[1][0] == ack_seq, (resp, ack_seq)
            return resp

    def wait_stored(self, seq, timeout=10):
        """Read answers and notices until a stored_seq covers seq."""
        deadline = time.time() + timeout
        while self.stored < seq:
            left = deadline - time.time()
            assert left > 0, "no stored_seq covered %d (last %d)" % (seq, self.stored)
            self.next_response(left)

    def close(self):
        self.sock.close()
