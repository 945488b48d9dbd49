#!/usr/bin/env python3
"""What an idle vehicle connection and its session cost in tspd's memory.

Starts one tspd (build/bin, not sanitized, RLIMIT_NOFILE raised to the
hard limit) on a store holding N authenticated vehicles with a session
each (rows written directly, K1 known to this script), then opens N TCP
connections to the vehicle listener, and on each sends one telemetry
SessionMsg sealed under the vehicle's K1 and waits for its
ServiceResponse.  tspd's VmRSS is read after start, with the N idle
connections open, and once every session is held in memory; the
differences divided by N are printed.  The sessions enter memory as after
a restart, from their rows on the first message.

usage: python3 scripts/session_rss.py [N]      (default 10000; this
process needs N + 100 descriptors too: raise `ulimit -n` first)
"""

import os
import resource
import select
import socket
import sqlite3
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("QROAM_BIN", os.path.join(ROOT, "build", "bin"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

import harness  # noqa: E402
from wire import MT, frame, pb_encode, split_frames  # noqa: E402

TSP = "tsp-a"
CHIP = "ab" * 32


def vin(i):
    return "LRSS0000000%06d" % i


def k1(i):
    return (b"%032d" % i)[:32]


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def session_msg(vid, key, seq, tsp):
    """SessionMsg{vid, seq, AEAD_K1(SessionInner{telemetry})} as the
    vehicle sends it (PROTOCOL section 4: nonce dir || seq, AAD
    qroam/1|DATA|vid|tsp|seq)."""
    tele = pb_encode([(1, int(time.time() * 1000)), (2, 30.05), (3, 120.05),
                      (4, 10.0), (5, 90.0)])
    inner = pb_encode([(1, tele)])
    nonce = (1).to_bytes(4, "big") + seq.to_bytes(8, "big")
    aad = ("qroam/1|DATA|%s|%s|%d" % (vid, tsp, seq)).encode()
    ct = AESGCM(key).encrypt(nonce, inner, aad)
    return pb_encode([(1, vid), (2, seq), (3, ct)])


def populate(tb, n):
    now = int(time.time() * 1000)
    db = sqlite3.connect(tb.store(TSP))
    with db:
        db.executemany("INSERT INTO auth(vehicle_id, chip_id, authed_ms, via)"
                       " VALUES(?, ?, ?, 'm4')", [(vin(i), CHIP, now) for i in range(n)])
        db.executemany("INSERT INTO sessions(vehicle_id, chip_id, k1, key_index,"
                       " rx_seq, tx_seq, opened_ms, sequential)"
                       " VALUES(?, ?, ?, ?, 0, 1, ?, 1)",
                       [(vin(i), CHIP, k1(i), i, now) for i in range(n)])
    db.close()


def wait_acks(socks, n_expected, timeout=120):
    """Read until every socket got one ServiceResponse (a SessionMsg)."""
    pending = {s.fileno(): (s, b"") for s in socks}
    poll = select.poll()
    for s in socks:
        poll.register(s, select.POLLIN)
    deadline = time.monotonic() + timeout
    got = 0
    while pending and time.monotonic() < deadline:
        for fd, _ in poll.poll(1000):
            s, buf = pending[fd]
            data = s.recv(65536)
            if not data:
                raise SystemExit("tspd closed a connection")
            frames, rest = split_frames(buf + data)
            if any(t == MT["MT_SESSION_MSG"] for t, _, _ in frames):
                got += 1
                poll.unregister(fd)
                del pending[fd]
            elif frames:
                raise SystemExit("unexpected answer: %r" % (frames,))
            else:
                pending[fd] = (s, rest)
    if got != n_expected:
        raise SystemExit("%d of %d acknowledged" % (got, n_expected))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 100:
        raise SystemExit("the hard descriptor limit %d is below %d" % (hard, n + 100))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    nofile = hard if hard != resource.RLIM_INFINITY else 1048576
    # Only tspd runs here; the bed's check wants every program of a build.
    harness.check_build = lambda: None
    with harness.Testbed(name="rss", tsps=(TSP,)) as tb:
        tb.start_tsp(TSP, nofile=nofile)
        tb.stop(TSP)
        populate(tb, n)
        d = tb.start_tsp(TSP, nofile=nofile)
        pid = d.proc.pid
        time.sleep(1.0)
        base = rss_kb(pid)
        socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", tb.port[TSP]))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        time.sleep(2.0)
        conns = rss_kb(pid)
        for i, s in enumerate(socks):
            s.sendall(frame(MT["MT_SESSION_MSG"], session_msg(vin(i), k1(i), 1, TSP),
                            request_id=i + 1))
        wait_acks(socks, n)
        time.sleep(1.0)
        full = rss_kb(pid)
        print("tspd VmRSS: %d kB at start, %d kB with %d idle connections, "
              "%d kB with a session in memory on each" % (base, conns, n, full))
        print("per connection: %.2f kB; per session on top: %.2f kB; "
              "connection + session: %.2f kB"
              % ((conns - base) / n, (full - conns) / n, (full - base) / n))
        for s in socks:
            s.close()
        tb.assert_running(TSP)


if __name__ == "__main__":
    main()
