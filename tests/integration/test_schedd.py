"""schedd, the scheduler of the handover (PROTOCOL F6 steps 3-6), driven
with raw frames over mutual TLS: the tests play TSPA and TSPB (their
certificates, their ETSI GS QKD 014 calls to qkdd, and TSPB's provisioning
listener) against a real schedd and qkdd.

Checks: A1/A2/A3 give KeyReplies whose key_IDs fetch CK1 and CK2 from the
KME, and M7 decrypts under CK1 to CK2 and TSPB's address; only TSP
certificates of the topology may speak; malformed, unexpected and
out-of-order requests get BAD_REQUEST and change nothing; a KME that is
down or answers 503, a TSPB that is down or refuses, a TSPA that leaves and
a handover that times out all fail the handover with the reason; a
scheduler killed mid-handover marks it failed on restart and serves the
next one; the store and the logs never hold a key.
"""

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import (BIN, MKPKI, MT, STATUS, Skip, frame, pb_decode,
                     pb_encode, recv_chunks, split_frames, status_name, testbed,
                     wait_until)

MT_KEY_REPLY = MT["MT_KEY_REPLY"]
MT_M7 = MT["MT_M7"]


# ---- messages --------------------------------------------------------------

def key_request(frm, hid, initiator=None, mtype=1):
    fields = [(1, mtype), (2, frm), (3, hid)]
    if initiator is not None:
        fields.append((4, initiator))
    return pb_encode(fields)


def access_request(target, initiator, hid, mtype=2):
    return pb_encode([(1, mtype), (2, target), (3, initiator), (4, hid)])


def text(fields, num):
    return fields[num][0].decode()


def new_hid():
    return os.urandom(16).hex()


def status_of(reply):
    """(name, detail) of a Status frame; fails on anything else."""
    assert reply is not None, "no answer"
    mtype, payload, _ = reply
    assert mtype == MT["MT_STATUS"], reply
    f = pb_decode(payload)
    return status_name(payload), f.get(2, [b""])[0].decode()


# ---- the TSP side ----------------------------------------------------------

class Tsp:
    """One TSP's mutual-TLS connection to schedd, frames in and out."""

    def __init__(self, tb, cert):
        self.sock = tb.connect(tb.port["sched"], cert)
        self.buf = b""
        self.pending = []

    def send(self, mtype, payload, rid):
        self.sock.sendall(frame(mtype, payload, rid))

    def recv(self, timeout=10.0):
        """The next frame (type, payload, request_id); None if the peer
        closed or nothing came within timeout."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                b = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                return None
            if not b:
                return None
            self.pending, self.buf = split_frames(self.buf + b)
        return self.pending.pop(0)

    def call(self, mtype, payload, rid, timeout=10.0):
        self.send(mtype, payload, rid)
        return self.recv(timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class TlsServer:
    """A listener of the test on one of the bed's ports, speaking mutual
    TLS as the party of cert (only peers with certificates of the bed's CA
    get through the handshake).  Each connection is served in a thread of
    its own by session(sock, subject of the peer's certificate)."""

    def __init__(self, tb, cert, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tb.cert(cert), tb.key(cert))
        ctx.load_verify_locations(tb.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx = ctx
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.stopping = False
        self.sessions = []		# open TLS sockets, shut down by close()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                sock, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._handshake, args=(sock,), daemon=True).start()

    def _handshake(self, sock):
        try:
            s = self.ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError):
            sock.close()
            return
        self.sessions.append(s)
        with s:
            self.session(s, dict(x[0] for x in s.getpeercert()["subject"]))

    def read_frames(self, s, timeout):
        """The frames (type, payload, request_id) the peer sends on s, until
        it closes, nothing comes for timeout seconds, or the server stops.
        Pings of a long-lived channel are answered here, as the daemons'
        I/O layer answers them, and not passed on."""
        buf = b""
        for b in recv_chunks(s, timeout):
            if self.stopping:
                return
            frames, buf = split_frames(buf + b)
            for mtype, payload, rid in frames:
                if mtype == MT["MT_PING"]:
                    s.sendall(frame(MT["MT_PONG"], b"", rid or 0))
                else:
                    yield mtype, payload, rid

    def session(self, s, subject):
        raise NotImplementedError

    def close(self):
        """Stop as a daemon does: no more accepts, and the connections
        open now (schedd keeps one to each TSP) are closed."""
        self.stopping = True
        self.thread.join(5)
        self.lsock.close()
        for s in self.sessions:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Provision(TlsServer):
    """TSPB's provisioning listener: takes the forwarded A2 from schedd
    (which must present the `sched` certificate) and answers each frame
    with a Status of the given code."""

    def __init__(self, tb, tsp, code="OK"):
        self.code = code
        self.frames = []		# (type, payload, request_id, peer CN, peer OU)
        super().__init__(tb, tsp, tb.port[tsp + "/provision"])

    def session(self, s, subject):
        for mtype, payload, rid in self.read_frames(s, 5):
            self.frames.append((mtype, payload, rid, subject.get("commonName"),
                                     subject.get("organizationalUnitName")))
            s.sendall(frame(MT["MT_STATUS"], pb_encode([(1, STATUS.index(self.code))]), rid))


def kme(tb, cert, method, path, body=None):
    """One ETSI GS QKD 014 call to qkdd as the SAE of cert: (status, JSON)."""
    c = http.client.HTTPSConnection("127.0.0.1", tb.port["qkd"],
                                    context=tb.client_tls(cert), timeout=10)
    try:
        c.request(method, path, body=None if body is None else json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


def dec_key(tb, sae, master, key_id):
    """The key key_id that master shared with sae, fetched as sae does."""
    st, js = kme(tb, sae, "POST", "/api/v1/keys/%s/dec_keys" % master,
                 {"key_IDs": [{"key_ID": key_id}]})
    assert st == 200, (st, js)
    assert js["keys"][0]["key_ID"] == key_id, js
    key = base64.b64decode(js["keys"][0]["key"])
    assert len(key) == 32
    tb.secrets.add(key, "CK for %s" % sae)
    return key


# ---- the test bed ----------------------------------------------------------

def need_qkd():
    if not os.path.exists(os.path.join(BIN, "qkdd")):
        raise Skip("qkdd is not built yet")


def keys_stored(tb, slave, n=2):
    """Wait until qkdd holds n keys for (sched, slave)."""
    def enough():
        st, js = kme(tb, "sched", "GET", "/api/v1/keys/%s/status" % slave)
        return st == 200 and js["stored_key_count"] >= n
    wait_until(enough, what="QKD keys between sched and %s" % slave)


def start(tb, qkd=True, links=None, **opts):
    """qkdd (unless qkd is false) with keys ready, then schedd with a
    handover_timeout that a slow machine never reaches."""
    opts.setdefault("handover_timeout", "20s")
    if qkd:
        need_qkd()
        tb.start_qkd(links=links)
    tb.start_sched(**opts)
    if qkd and links is None:
        for t in tb.tsps:
            keys_stored(tb, t)


def a1(tb, tspa, hid, rid=1):
    """A1 as tspa; returns the KeyReply fields."""
    reply = tspa.call(MT["MT_KEY_REQUEST"], key_request("tsp-a", hid), rid)
    assert reply is not None and reply[0] == MT_KEY_REPLY, \
        (reply, status_of(reply) if reply and reply[0] == MT["MT_STATUS"] else None)
    assert reply[2] == rid
    f = pb_decode(reply[1])
    assert text(f, 1) == hid and text(f, 3) == "sched", f
    return f


def row(tb, hid):
    rows = tb.query("sched", "SELECT state, initiator, target, ck1_key_id, ck2_key_id, "
                    "reason FROM handovers WHERE handover_id=?", (hid,))
    return rows[0] if rows else None


def audit_events(tb, hid):
    return [r[0] for r in tb.query("sched", "SELECT event FROM audit WHERE handover_id=? "
                                   "ORDER BY id", (hid,))]


def assert_no_keys_in_store(tb, keys):
    """Neither table holds a key, raw, in hex or in base64."""
    for t in ("handovers", "audit"):
        for r in tb.query("sched", 'SELECT * FROM "%s"' % t):
            for v in r:
                for k in keys:
                    if isinstance(v, bytes):
                        assert k not in v, (t, r)
                    elif isinstance(v, str):
                        assert k.hex() not in v.lower(), (t, r)
                        assert base64.b64encode(k).decode() not in v, (t, r)


def handover(tb, hid, prov):
    """A whole handover, checked step by step; returns (CK1, CK2)."""
    tspa = Tsp(tb, "tsp-a")
    try:
        f = a1(tb, tspa, hid, rid=11)
        ck1 = dec_key(tb, "tsp-a", "sched", text(f, 2))
        assert row(tb, hid)[0] == "ck1"
        n = len(prov.frames)
        tspa.send(MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid), 12)
        wait_until(lambda: len(prov.frames) > n, what="A2 at tsp-b")
        mtype, payload, _, cn, ou = prov.frames[n]
        assert (mtype, cn, ou) == (MT["MT_ACCESS_REQUEST"], "sched", "sched")
        ar = pb_decode(payload)
        assert (ar[1][0], text(ar, 2), text(ar, 3), text(ar, 4)) == (2, "tsp-b", "tsp-a", hid)
        tspb = Tsp(tb, "tsp-b")
        try:
            reply = tspb.call(MT["MT_KEY_REQUEST"], key_request("tsp-b", hid, "tsp-a"), 21)
            assert reply is not None and reply[0] == MT_KEY_REPLY and reply[2] == 21, reply
            kb = pb_decode(reply[1])
            assert text(kb, 1) == hid and text(kb, 3) == "sched"
            ck2 = dec_key(tb, "tsp-b", "sched", text(kb, 2))
        finally:
            tspb.close()
        m7 = tspa.recv()
        assert m7 is not None and m7[0] == MT_M7 and m7[2] == 12, m7
        check_m7(tb, m7[1], hid, ck1, ck2)
        return ck1, ck2
    finally:
        tspa.close()


def check_m7(tb, payload, hid, ck1, ck2):
    """M7 opens under CK1 with AAD qroam/1|M7|tsp-a|hid, to CK2 and TSPB."""
    m7 = pb_decode(payload)
    assert text(m7, 1) == hid
    nonce, ct = m7[2][0], m7[3][0]
    assert len(nonce) == 12
    aad = ("qroam/1|M7|tsp-a|%s" % hid).encode()
    inner = pb_decode(AESGCM(ck1).decrypt(nonce, ct, aad))
    assert inner[1][0] == ck2
    assert (text(inner, 2), text(inner, 3), inner[4][0]) == \
        ("tsp-b", "127.0.0.1", tb.port["tsp-b/provision"])
    now = int(time.time() * 1000)
    assert now < inner[5][0] <= now + 31000, inner[5][0] - now
    for bad in (("qroam/1|M7|tsp-b|%s" % hid).encode(), aad + b"x"):
        try:
            AESGCM(ck1).decrypt(nonce, ct, bad)
        except Exception:
            continue
        raise AssertionError("M7 opens under AAD %r" % bad)


# ---- tests -----------------------------------------------------------------

@testbed(tsps=["tsp-a", "tsp-b"])
def test_handover_keys_and_m7(tb):
    """A1, A2, A3 and M7 end to end; the store and audit log hold IDs and
    times only; each handover_id serves once."""
    start(tb)
    prov = Provision(tb, "tsp-b")
    try:
        hid = new_hid()
        ck1, ck2 = handover(tb, hid, prov)
        assert ck1 != ck2
        state, init, target, k1, k2, reason = row(tb, hid)
        assert (state, init, target, reason) == ("done", "tsp-a", "tsp-b", None)
        assert k1 and k2 and k1 != k2
        # TSPB's OK to the forwarded A2 may arrive before or after its A3.
        ev = [e for e in audit_events(tb, hid) if e != "a2_accepted"]
        assert ev == ["a1", "ck1", "a2", "a3", "done"], ev
        assert_no_keys_in_store(tb, [ck1, ck2])
        # The same handover_id never starts a second handover.
        tspa = Tsp(tb, "tsp-a")
        assert status_of(tspa.call(MT["MT_KEY_REQUEST"], key_request("tsp-a", hid), 3))[0] \
            == "BAD_REQUEST"
        tspa.close()
        # Another one on the same scheduler.
        handover(tb, new_hid(), prov)
        tb.wait_log("sched", r"handover %s: a3 -> done" % hid)
    finally:
        prov.close()


@testbed(tsps=["tsp-a", "tsp-b"])
def test_only_tsps_may_speak(tb):
    """A1 from certificates that are not TSPs of the topology, or without
    one, is refused and changes nothing."""
    start(tb, qkd=False)
    before = tb.dump("sched")
    tb.wait_log("sched", "listening")
    subprocess.run(["sh", MKPKI, tb.path("pki"), "tsp-x:tsp"], check=True,
                   stdout=subprocess.DEVNULL)
    for cert in ("operator", "intruder", "sched", "tsp-x"):
        mark = tb.log_mark("sched")
        c = Tsp(tb, cert)
        reply = c.call(MT["MT_KEY_REQUEST"], key_request(cert, new_hid()), 5)
        assert status_of(reply)[0] == "AUTH_FAILED", (cert, reply)
        assert c.recv(3) is None, "%s stays connected" % cert
        c.close()
        tb.wait_log("sched", r"refused MT_KEY_REQUEST .*%s.*not a TSP" % cert, since=mark)
    assert tb.raw(tb.port["sched"], frame(MT["MT_KEY_REQUEST"],
                  key_request("tsp-a", new_hid()), 5), tls="") == b""
    tb.assert_same_dump(before, tb.dump("sched"), "schedd store")
    tb.assert_running("sched")


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_malformed_and_out_of_order(tb):
    """Requests that are malformed, name the wrong parties or come out of
    order get BAD_REQUEST with a reason and change nothing."""
    start(tb)
    tspa, tspb = Tsp(tb, "tsp-a"), Tsp(tb, "tsp-b")
    hid = new_hid()
    a1(tb, tspa, hid)
    before = tb.dump("sched")
    bad = [
        (tspa, "unknown A2", MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", new_hid())),
        (tspa, "unknown A3", MT["MT_KEY_REQUEST"], key_request("tsp-a", new_hid(), "tsp-b")),
        (tspa, "A1 from another", MT["MT_KEY_REQUEST"], key_request("tsp-b", new_hid())),
        (tspa, "A1 type 2", MT["MT_KEY_REQUEST"], key_request("tsp-a", new_hid(), mtype=2)),
        (tspa, "A1 short id", MT["MT_KEY_REQUEST"], key_request("tsp-a", "abc123")),
        (tspa, "A1 upper id", MT["MT_KEY_REQUEST"], key_request("tsp-a", new_hid().upper())),
        (tspa, "A1 empty initiator", MT["MT_KEY_REQUEST"], key_request("tsp-a", new_hid(), "")),
        (tspa, "A1 garbage", MT["MT_KEY_REQUEST"], os.urandom(24)),
        (tspa, "A1 missing field", MT["MT_KEY_REQUEST"], pb_encode([(1, 1), (2, "tsp-a")])),
        (tspa, "A2 type 1", MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid, 1)),
        (tspa, "A2 to itself", MT["MT_ACCESS_REQUEST"], access_request("tsp-a", "tsp-a", hid)),
        (tspa, "A2 to unknown", MT["MT_ACCESS_REQUEST"], access_request("tsp-z", "tsp-a", hid)),
        (tspa, "A2 as another", MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-c", hid)),
        (tspb, "A2 of tsp-a's", MT["MT_ACCESS_REQUEST"], access_request("tsp-c", "tsp-b", hid)),
        (tspb, "A3 before A2", MT["MT_KEY_REQUEST"], key_request("tsp-b", hid, "tsp-a")),
        (tspa, "A3 for itself", MT["MT_KEY_REQUEST"], key_request("tsp-a", hid, "tsp-a")),
        (tspa, "repeated A1", MT["MT_KEY_REQUEST"], key_request("tsp-a", hid)),
        (tspa, "M3", MT["MT_M3"], b""),
        (tspa, "Status", MT["MT_STATUS"], pb_encode([(1, 0)])),
        (tspa, "KeyReply", MT_KEY_REPLY, pb_encode([(1, hid), (2, "x"), (3, "sched")])),
    ]
    for i, (c, label, mtype, payload) in enumerate(bad):
        mark = tb.log_mark("sched")
        name, detail = status_of(c.call(mtype, payload, 100 + i))
        assert name == "BAD_REQUEST" and detail, (label, name, detail)
        tb.wait_log("sched", r"(refused|unexpected)", since=mark)
    tb.assert_same_dump(before, tb.dump("sched"), "schedd store")
    # The handover is still in order: A2 now goes through.
    prov = Provision(tb, "tsp-b")
    try:
        tspa.send(MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid), 7)
        wait_until(lambda: row(tb, hid)[0] == "a2", what="state a2")
        wait_until(lambda: prov.frames, what="A2 at tsp-b")
    finally:
        prov.close()
        tspa.close()
        tspb.close()
    tb.assert_running("sched")


@testbed(tsps=["tsp-a", "tsp-b"])
def test_kme_down_and_503(tb):
    """No KME: A1 gets UNAVAILABLE.  The sched-tsp-b link under an
    eavesdropper: A3 gets UNAVAILABLE with the KME's 503 reason, and so
    does TSPA's pending A2."""
    tb.start_sched(handover_timeout="10s")
    tspa = Tsp(tb, "tsp-a")
    hid = new_hid()
    name, detail = status_of(tspa.call(MT["MT_KEY_REQUEST"], key_request("tsp-a", hid), 1))
    assert name == "UNAVAILABLE" and "CK1" in detail, detail
    assert row(tb, hid)[0] == "failed" and "CK1" in row(tb, hid)[5]
    tspa.close()
    need_qkd()
    tb.start_qkd(links=["sched tsp-a", "sched tsp-b eavesdropper 1"])
    keys_stored(tb, "tsp-a")
    prov = Provision(tb, "tsp-b")
    try:
        tspa = Tsp(tb, "tsp-a")
        hid = new_hid()
        a1(tb, tspa, hid)
        tspa.send(MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid), 2)
        wait_until(lambda: prov.frames, what="A2 at tsp-b")
        tspb = Tsp(tb, "tsp-b")
        name, detail = status_of(tspb.call(MT["MT_KEY_REQUEST"],
                                           key_request("tsp-b", hid, "tsp-a"), 3))
        assert name == "UNAVAILABLE" and "503" in detail, detail
        reply = tspa.recv()
        assert reply[2] == 2 and status_of(reply) == (name, detail), reply
        state, _, _, _, k2, reason = row(tb, hid)
        assert state == "failed" and k2 is None and reason == detail
        assert audit_events(tb, hid)[-1] == "failed"
        tspa.close()
        tspb.close()
    finally:
        prov.close()


@testbed(tsps=["tsp-a", "tsp-b"])
def test_failures_end_the_handover(tb):
    """TSPB down or refusing the access request, TSPA leaving while its A2
    waits, and no A3 within handover_timeout: each fails the handover with
    its reason and answers TSPA's A2 with UNAVAILABLE."""
    start(tb, handover_timeout="1500ms")

    def until_a2():
        tspa = Tsp(tb, "tsp-a")
        hid = new_hid()
        a1(tb, tspa, hid)
        tspa.send(MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid), 9)
        return tspa, hid

    tspa, hid = until_a2()			# nobody listens for tsp-b
    name, detail = status_of(tspa.recv())
    assert name == "UNAVAILABLE" and "not delivered to tsp-b" in detail, detail
    assert row(tb, hid)[0] == "failed"
    tspa.close()
    for code, expect in (("AUTH_FAILED", "refused the access request"),
                         ("OK", "timed out")):
        prov = Provision(tb, "tsp-b", code)
        try:
            tspa, hid = until_a2()
            name, detail = status_of(tspa.recv())
            assert name == "UNAVAILABLE" and expect in detail, detail
            assert row(tb, hid)[0] == "failed" and expect in row(tb, hid)[5]
            tspa.close()
        finally:
            prov.close()
    prov = Provision(tb, "tsp-b")
    try:
        tspa, hid = until_a2()
        wait_until(lambda: prov.frames, what="A2 at tsp-b")
        tspa.close()
        wait_until(lambda: row(tb, hid)[0] == "failed", what="handover failed")
        assert "closed its connection" in row(tb, hid)[5]
        # A3 after the failure is refused.
        tspb = Tsp(tb, "tsp-b")
        name, _ = status_of(tspb.call(MT["MT_KEY_REQUEST"],
                                      key_request("tsp-b", hid, "tsp-a"), 4))
        assert name == "BAD_REQUEST"
        tspb.close()
    finally:
        prov.close()
    tb.assert_running("sched")


@testbed(tsps=["tsp-a", "tsp-b"])
def test_restart_fails_unfinished_handover(tb):
    """schedd killed between A2 and A3: after a restart the handover is
    failed with reason 'scheduler restarted', A3 for it is refused, and the
    next handover succeeds."""
    start(tb)
    prov = Provision(tb, "tsp-b")
    try:
        tspa = Tsp(tb, "tsp-a")
        hid = new_hid()
        f = a1(tb, tspa, hid)
        ck1 = dec_key(tb, "tsp-a", "sched", text(f, 2))
        tspa.send(MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid), 2)
        wait_until(lambda: row(tb, hid)[0] == "a2", what="state a2")
        tb.kill("sched")
        assert tspa.recv(5) is None
        tspa.close()
        tb.start("sched")
        state, _, _, _, _, reason = row(tb, hid)
        assert (state, reason) == ("failed", "scheduler restarted")
        assert audit_events(tb, hid)[-1] == "failed"
        tb.wait_log("sched", r"1 unfinished handover failed: scheduler restarted")
        tspb = Tsp(tb, "tsp-b")
        assert status_of(tspb.call(MT["MT_KEY_REQUEST"],
                                   key_request("tsp-b", hid, "tsp-a"), 3))[0] == "BAD_REQUEST"
        tspb.close()
        for t in tb.tsps:
            keys_stored(tb, t)
        ck1b, ck2b = handover(tb, new_hid(), prov)
        assert_no_keys_in_store(tb, [ck1, ck1b, ck2b])
        assert tb.count("sched", "handovers", "state='done'") == 1
    finally:
        prov.close()
