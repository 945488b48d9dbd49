#!/usr/bin/env python3
"""How many authenticated sessions one tspd holds, and what each costs it
in resident memory.

Plants N authenticated vehicles with a session each in a stopped tspd's
store (rows written directly, K1 known to this script), starts that tspd
(build/bin, not sanitized) with RLIMIT_NOFILE at the hard limit, and
opens C connections to its vehicle listener, bound round-robin to the
loopback addresses 127.0.0.2, 127.0.0.3, ... (one source address has
only the ephemeral ports for its connections to one listener).  On every
connection it then sends, for each vehicle it carries, one telemetry
SessionMsg sealed under the vehicle's K1 and waits for the
ServiceResponse that acknowledges it (further ServiceResponses, such as a
later stored_seq with ack_seq 0, are read and passed over).  The sessions
enter tspd's memory as after a restart, from their rows on the first
message, and stay there while their connection is open.

C is N when both processes may open N descriptors and more; otherwise it
is what the lower of the two descriptor limits leaves, and vehicle i
speaks on connection i mod C (a connection may carry several vehicles;
each session is held until the connection it last spoke on closes).

tspd's VmRSS is read after start; with C/2 and with C idle connections;
once the vehicles of the first C/2 connections and once those of all C
have sent their message (a vehicle per connection); and, when N > C,
with N/2 and N sessions held.  What one more of each costs is the growth
from half to all, divided by the other half, which leaves out what the
first ones pay once (start-up, the store's page cache, the heap's
high-water mark under a burst of answers in flight):

  per connection      an idle connection (C/2 to C connections)
  per first message   a vehicle's session on a connection of its own, the
                      connection now in use (C/2 to C messages)
  per vehicle         the two added: a connected vehicle with a session,
                      the figure `make bench` holds against its goal
  per shared session  a session on a connection in use by others (N > C
                      only: from N/2, or C if more, to N sessions)

usage: python3 scripts/session_rss.py [N]      (default 100000)

`make bench` runs measure() once per run for its "concurrent sessions per
tspd" figure.
"""

import errno
import os
import resource
import selectors
import shutil
import socket
import sqlite3
import struct
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from qroamlib import layout  # noqa: E402
from qroamlib.proc import Process  # noqa: E402
from wire import MT, frame, pb_decode, pb_encode, split_frames, status_name  # noqa: E402

BIN = os.environ.get("QROAM_BIN", os.path.join(ROOT, "build", "bin"))
TSP = "tsp-a"
CHIP = "ab" * 32
REGION = [(30.00, 120.00), (30.00, 120.10), (30.10, 120.10), (30.10, 120.00)]
GOAL = 100000           # sessions the goal asks one tspd to hold
WANT_NOFILE = 1048576   # what tspd's units set (LimitNOFILE=)
RESERVE = 256           # descriptors left to tspd's files and to this script's
PER_SOURCE = 10000      # connections per client address (of ~28,000 ephemeral ports)
WINDOW = 100            # connects in flight (tspd listens with a backlog of 128)
BURST = 1000            # messages sent at once, each burst answered before the next
SETTLE = 0.5            # seconds between the last answer and an RSS reading
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, TCP_LISTEN = 4, 20, 10
NLM_F_REQUEST, NLM_F_DUMP, NLMSG_ERROR, NLMSG_DONE = 1, 0x300, 2, 3
MT_SESSION = MT["MT_SESSION_MSG"]
MT_STATUS = MT["MT_STATUS"]


class Failed(Exception):
    """The measurement could not be made (tspd refused or died, a
    connection failed, answers did not come)."""


def vin(i):
    return "LRSS%013d" % i


def vin_index(vid):
    i = int(vid[4:])
    if vin(i) != vid:
        raise ValueError(vid)
    return i


def k1(i):
    return (b"%032d" % i)[:32]


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Failed("no VmRSS for pid %d" % pid)


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def nofile_limit():
    """Raise this process's RLIMIT_NOFILE as far as allowed (tspd gets the
    same): the hard limit to WANT_NOFILE where the kernel lets us, the soft
    limit to the hard.  (limit, whether the hard limit stopped short)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    short = False
    if hard != resource.RLIM_INFINITY and hard < WANT_NOFILE:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (WANT_NOFILE, WANT_NOFILE))
            hard = WANT_NOFILE
        except (ValueError, OSError):
            short = True
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return (WANT_NOFILE if hard == resource.RLIM_INFINITY else hard), short


def plan(n):
    """(connections, why fewer than n or None) for n vehicles: one each
    where the descriptor limit of tspd and of this process allows."""
    limit, short = nofile_limit()
    c = min(n, limit - RESERVE)
    if c < 1:
        raise Failed("RLIMIT_NOFILE %d leaves no connections" % limit)
    if c == n:
        return c, None
    return c, "RLIMIT_NOFILE is %d%s" % (
        limit, ", a hard limit that may not be raised here" if short else "")


# ---- the vehicles on the wire -------------------------------------------

def _aad(vid, seq):
    return ("qroam/1|DATA|%s|%s|%d" % (vid, TSP, seq)).encode()


def _nonce(direction, seq):
    return direction.to_bytes(4, "big") + seq.to_bytes(8, "big")


def session_frame(i, seq=1):
    """The frame of SessionMsg{vid, seq, AEAD_K1(SessionInner{telemetry})}
    of vehicle i, as the vehicle sends it (PROTOCOL section 4: nonce
    dir || seq, AAD qroam/1|DATA|vid|tsp|seq)."""
    vid = vin(i)
    tele = pb_encode([(1, int(time.time() * 1000)), (2, 30.05), (3, 120.05),
                      (4, 10.0), (5, 90.0)])
    ct = AESGCM(k1(i)).encrypt(_nonce(1, seq), pb_encode([(1, tele)]), _aad(vid, seq))
    return frame(MT_SESSION, pb_encode([(1, vid), (2, seq), (3, ct)]), request_id=i + 1)


def ack_of(payload):
    """(vehicle index, ack_seq) of a SessionMsg from tspd carrying a
    ServiceResponse; Failed for anything else."""
    try:
        sm = pb_decode(payload)
        vid = sm[1][0].decode()
        seq = sm[2][0]
        i = vin_index(vid)
        pt = AESGCM(k1(i)).decrypt(_nonce(2, seq), sm[3][0], _aad(vid, seq))
        resp = pb_decode(pb_decode(pt)[2][0])
        return i, resp.get(1, [0])[0]
    except Exception as e:
        raise Failed("an answer that is no ServiceResponse: %r (%s)" % (payload[:64], e))


def accept_queue(port):
    """Connections waiting in the accept queue of the TCP listener on
    port (NETLINK_SOCK_DIAG: a listener's idiag_rqueue); 0 if unknown."""
    req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0,
                      1 << TCP_LISTEN) + struct.pack(">HH", port, 0) + bytes(32) + \
        struct.pack("=III", 0, 0xffffffff, 0xffffffff)
    hdr = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                      NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    queued = 0
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.sendto(hdr + req, (0, 0))
        while True:
            data, off = nl.recv(65536), 0
            while off + 16 <= len(data):
                length, mtype = struct.unpack_from("=IH", data, off)
                if mtype in (NLMSG_DONE, NLMSG_ERROR) or length < 16:
                    return queued
                # inet_diag_msg: 4 bytes, the socket id (sport first), expires, rqueue
                (sport,) = struct.unpack_from(">H", data, off + 20)
                if sport == port:
                    (queued,) = struct.unpack_from("=I", data, off + 72)
                off += (length + 3) & ~3


class Client:
    """C connections to one listener and the vehicles they carry, on one
    epoll selector."""

    def __init__(self, port, tspd):
        self.port = port
        self.tspd = tspd
        self.sel = selectors.DefaultSelector()
        self.socks = []
        self.connecting = set()
        self.inbuf = {}
        self.outbuf = {}
        self.acked = set()
        self.expect = set()

    def close(self):
        for s in self.socks:
            s.close()
        self.sel.close()

    def _alive(self):
        if self.tspd.poll() is not None:
            raise Failed("tspd exited with status %s" % self.tspd.returncode)

    def connect(self, upto):
        """Open connections until there are upto, with at most WINDOW in
        the handshake or waiting in tspd's accept queue: beyond its backlog
        the kernel would drop handshakes and leave them to retransmission."""
        while len(self.socks) < upto or self.connecting:
            room = WINDOW - len(self.connecting) - accept_queue(self.port)
            for _ in range(max(0, min(room, upto - len(self.socks)))):
                self._open()
            for key, ev in self.sel.select(0.05):
                if key.data in self.connecting:
                    err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise Failed("connection %d: %s" % (key.data, os.strerror(err)))
                    self.connecting.discard(key.data)
                    self.sel.modify(key.fileobj, selectors.EVENT_READ, key.data)
                else:
                    self._event(key, ev)
            self._alive()

    def _open(self):
        """Start connection j from source address 127.0.0.(2 + j / PER_SOURCE)."""
        j = len(self.socks)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socks.append(s)
        # The port is chosen at connect, for the whole 4-tuple.
        s.setsockopt(socket.SOL_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
        s.bind(("127.0.0.%d" % (2 + j // PER_SOURCE), 0))
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = s.connect_ex(("127.0.0.1", self.port))
        if rc not in (0, errno.EINPROGRESS):
            raise Failed("connection %d: %s" % (j, os.strerror(rc)))
        self.sel.register(s, selectors.EVENT_WRITE, j)
        self.connecting.add(j)

    def _event(self, key, ev):
        j, s = key.data, key.fileobj
        if ev & selectors.EVENT_WRITE and j in self.outbuf:
            n = s.send(self.outbuf[j])
            self.outbuf[j] = self.outbuf[j][n:]
            if not self.outbuf[j]:
                del self.outbuf[j]
                self.sel.modify(s, selectors.EVENT_READ, j)
        if not ev & selectors.EVENT_READ:
            return
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return
        if not data:
            raise Failed("tspd closed connection %d" % j)
        frames, self.inbuf[j] = split_frames(self.inbuf.get(j, b"") + data)
        for mtype, payload, _ in frames:
            if mtype == MT_STATUS:
                raise Failed("tspd answered on connection %d with status %s" % (
                    j, status_name(payload)))
            if mtype != MT_SESSION:
                raise Failed("tspd sent message type %s on connection %d" % (mtype, j))
            i, ack = ack_of(payload)
            if ack == 1 and i in self.expect:
                self.acked.add(i)
            elif ack != 0:
                raise Failed("vehicle %s: ack_seq %d" % (vin(i), ack))
        if not self.inbuf[j]:
            del self.inbuf[j]

    def send(self, first, last):
        """One telemetry message of each vehicle in [first, last), vehicle i
        on connection i mod C, each connection's in one write."""
        c = len(self.socks)
        out = {}
        for i in range(first, last):
            out.setdefault(i % c, []).append(session_frame(i))
            self.expect.add(i)
        for j, frames in out.items():
            data = b"".join(frames)
            s = self.socks[j]
            try:
                n = s.send(data)
            except BlockingIOError:
                n = 0
            if n < len(data):
                self.outbuf[j] = data[n:]
                self.sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE, j)

    def wait_acks(self, timeout):
        """Read until every vehicle sent to is acknowledged."""
        deadline = time.monotonic() + timeout
        while len(self.acked) < len(self.expect):
            if time.monotonic() > deadline:
                raise Failed("%d of %d messages acknowledged in %.0f s" % (
                    len(self.acked), len(self.expect), timeout))
            for key, ev in self.sel.select(1.0):
                self._event(key, ev)
            self._alive()

    def drain(self, seconds):
        """Read (and pass over) what arrives for seconds."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for key, ev in self.sel.select(left):
                self._event(key, ev)


# ---- the tspd ------------------------------------------------------------

def write_bed(d):
    """PKI, topology and tspd's configuration in d; (conf, store, port)."""
    layout.mkpki(os.path.join(d, "pki"), ["%s:tsp" % TSP])
    port, prov = layout.free_port(), layout.free_port()
    topo = os.path.join(d, "topo.conf")
    layout.write_file(topo, layout.topology_text(
        {TSP: port, TSP + "/provision": prov}, [TSP], {TSP: REGION},
        "one TSP holding sessions"))
    store = os.path.join(d, TSP + ".db")
    conf = os.path.join(d, TSP + ".conf")
    layout.write_file(conf, layout.conf_text(layout.cloud_directives(
        TSP, topo, store, os.path.join(d, "pki"), TSP)))
    return conf, store, (port, prov)


def start_tspd(d, conf, ports, nofile):
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    p = Process(TSP, [os.path.join(BIN, "tspd"), "-f", conf], os.path.join(d, TSP + ".log"),
                capture=True, append=True, preexec=limit)
    if not p.wait_listening(ports, 15):
        p.stop()
        raise Failed("tspd did not start (status %s); see %s" % (
            p.returncode, os.path.join(d, TSP + ".log")))
    return p


def stop_tspd(p):
    rc = p.stop(30)
    if rc != 0 or p.problems:
        raise Failed("tspd: %s" % ("; ".join(p.problems) or "exit status %s" % rc))


def populate(store, n):
    """n vehicles authenticated at the TSP, each with a session under its K1."""
    now = int(time.time() * 1000)
    db = sqlite3.connect(store)
    with db:
        db.executemany("INSERT INTO auth(vehicle_id, chip_id, authed_ms, via)"
                       " VALUES(?, ?, ?, 'm4')", ((vin(i), CHIP, now) for i in range(n)))
        db.executemany("INSERT INTO sessions(vehicle_id, chip_id, k1, key_index,"
                       " rx_seq, tx_seq, opened_ms, sequential)"
                       " VALUES(?, ?, ?, ?, 0, 1, ?, 1)",
                       ((vin(i), CHIP, k1(i), i, now) for i in range(n)))
    db.close()


def remove_store(store):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(store + suffix):
            os.remove(store + suffix)


def wait_fds(pid, n, timeout=30):
    """Wait until tspd holds n descriptors (it accepted what was opened)."""
    deadline = time.monotonic() + timeout
    while open_fds(pid) < n:
        if time.monotonic() > deadline:
            raise Failed("tspd holds %d descriptors, not %d, after %d s" % (
                open_fds(pid), n, timeout))
        time.sleep(0.05)


# ---- the measurement ------------------------------------------------------

def steps(n, c):
    """[(RSS reading, first vehicle, last vehicle + 1)] of the messages:
    the vehicles of the first half of the connections, one each, then of
    the second half, then (when the connections are fewer than the
    vehicles) those that share a connection, up to N/2 and up to N."""
    out = [("used_half", 0, c // 2), ("used_all", c // 2, c)]
    if n > c:
        mid = max(c, n // 2)
        if mid > c:
            out.append(("more_half", c, mid))
        out.append(("more_all", mid, n))
    return out


def growth(rss, a, b, units):
    """Bytes of RSS per unit from reading a to reading b."""
    return (rss[b] - rss[a]) * 1024 / units


def measure(n=GOAL, workdir=None, say=lambda text: None):
    """Hold n sessions in one tspd; {figure: value} (see the docstring).
    The bed goes to workdir, or to a temporary directory when None, which
    is removed after a measurement that worked; in workdir only the store
    is removed then (the configuration and tspd's log stay)."""
    if n < 2:
        raise Failed("n must be at least 2")
    t0 = time.monotonic()
    c, why = plan(n)
    d = workdir or tempfile.mkdtemp(prefix="qroam-sessions-")
    os.makedirs(d, exist_ok=True)
    conf, store, ports = write_bed(d)
    try:
        say("%d sessions on %d connections%s" % (n, c, " (%s)" % why if why else ""))
        rss, times = hold(d, conf, store, ports, n, c)
    except Failed as e:
        raise Failed("%s (the bed is in %s)" % (e, d))
    finally:
        for p in ports:
            layout.release_port(p)
    if workdir is None:
        shutil.rmtree(d, ignore_errors=True)
    else:
        remove_store(store)
    idle = growth(rss, "conn_half", "conn_all", c - c // 2)
    used = growth(rss, "used_half", "used_all", c - c // 2)
    more = None
    if n > c:
        mid = max(c, n // 2)
        more = growth(rss, "more_half" if mid > c else "used_all", "more_all", n - mid)
    return {
        "sessions": n, "connections": c, "sources": (c - 1) // PER_SOURCE + 1,
        "limited_by": why,
        "rss_kib": rss,
        "bytes_per_connection": idle,
        "bytes_per_first_message": used,
        "bytes_per_vehicle": idle + used,
        "bytes_per_shared_session": more,
        "bytes_per_session_from_start": (rss["more_all" if n > c else "used_all"] -
                                         rss["start"]) * 1024 / n,
        "seconds": time.monotonic() - t0,
        "seconds_connect": times[0],
        "seconds_messages": times[1],
    }


def hold(d, conf, store, ports, n, c):
    """Plant n sessions, start tspd and hold them on c connections; its
    RSS readings {name: KiB} and (seconds connecting, seconds of the
    messages)."""
    remove_store(store)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    stop_tspd(start_tspd(d, conf, ports, nofile))
    populate(store, n)
    tspd = start_tspd(d, conf, ports, nofile)
    client = Client(ports[0], tspd)
    try:
        time.sleep(SETTLE)
        base_fds = open_fds(tspd.pid)
        rss = {"start": rss_kib(tspd.pid)}
        t0 = time.monotonic()
        for tag, upto in (("conn_half", c // 2), ("conn_all", c)):
            client.connect(upto)
            wait_fds(tspd.pid, base_fds + upto)
            client.drain(SETTLE)
            rss[tag] = rss_kib(tspd.pid)
        t1 = time.monotonic()
        for tag, first, last in steps(n, c):
            for i in range(first, last, BURST):
                client.send(i, min(i + BURST, last))
                client.wait_acks(60)
            client.drain(SETTLE)
            rss[tag] = rss_kib(tspd.pid)
        t2 = time.monotonic()
    finally:
        client.close()
        stop_tspd(tspd)
    return rss, (t1 - t0, t2 - t1)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else GOAL
    try:
        r = measure(n, say=lambda text: print(text, flush=True))
    except Failed as e:
        print("session_rss: %s" % e, file=sys.stderr)
        return 1
    print("tspd VmRSS, kB: %s" % ", ".join("%s %d" % kv for kv in r["rss_kib"].items()))
    shared = r["bytes_per_shared_session"]
    print("per connection %.2f KiB, per first message %.2f KiB, per vehicle %.2f KiB%s; "
          "all from start, per session %.2f KiB" % (
              r["bytes_per_connection"] / 1024, r["bytes_per_first_message"] / 1024,
              r["bytes_per_vehicle"] / 1024,
              ", per shared session %.2f KiB" % (shared / 1024) if shared else "",
              r["bytes_per_session_from_start"] / 1024))
    print("%d sessions held on %d connections from %d addresses%s; %.0f s (connecting "
          "%.0f s, messages %.0f s)" % (
              r["sessions"], r["connections"], r["sources"],
              " (%s)" % r["limited_by"] if r["limited_by"] else "", r["seconds"],
              r["seconds_connect"], r["seconds_messages"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
