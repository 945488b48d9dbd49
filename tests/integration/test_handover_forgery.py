"""Forged, tampered and replayed handover messages against real daemons
(PROTOCOL F6, section 8 invariant 3): each is refused and leaves the
stores as they were; each refusal that gets as far as a frame is logged
with its reason (a connection without a valid certificate fails the TLS
handshake and gets no answer at all).

- M8 to TSPB: the test plays TSPA against the real schedd and TSPB, so
  it holds CK2 and can forge every part of M8 and RD1.
- M7 to TSPA: a scheduler with a valid `sched` certificate (the test's)
  gives TSPA real CK1s from qkdd but tampered, misdirected or replayed
  M7s; TSPA fails each handover and the vehicle falls back to F3 at B.
- A1, A2 and A3 over connections without a valid certificate, to schedd
  and to a TSP's provisioning listener.
- An M3 accepted by B replayed to A, before and after a new F3 with A.
"""

import base64
import os
import socket
import ssl
import subprocess
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import (MKPKI, MT, TIMEOUT, enrolled_probe, frame, metric,
                     pb_decode, pb_encode, recv_all, status_name, testbed,
                     wait_until)
from test_handover import (EAST_EDGE_A, auth_via, ho_rows, offer, probe_session,
                           start_clouds)
from test_schedd import (MT_KEY_REPLY, MT_M7, TlsServer, Tsp, access_request,
                         dec_key, key_request, keys_stored, kme, need_qkd,
                         new_hid, status_of, text)

MT_M8 = MT["MT_M8"]
MT_M8_ACK = MT["MT_M8_ACK"]


def flip(b):
    """b with one bit of its middle byte flipped."""
    i = len(b) // 2
    return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1:]


def now_ms():
    return int(time.time() * 1000)


# ---- M8 --------------------------------------------------------------------

def telemetry(lat=30.05, lon=120.05, ms=None):
    return pb_encode([(1, ms or now_ms()), (2, lat), (3, lon), (4, 20.0), (5, 90.0)])


def rd1(vid, chip, next_index=0, history=1, used=()):
    fields = [(1, vid), (2, chip)]
    fields += [(3, telemetry(lon=120.05 + i * 0.001)) for i in range(history)]
    fields += [(4, now_ms() - 1000), (5, True), (6, next_index)]
    fields += [(7, u) for u in used]
    return pb_encode(fields)


def m8(ck2, hid, plain, initiator="tsp-a", target="tsp-b", aad=None):
    """M8 sealing plain under ck2 with the AAD of (initiator, target, hid)
    unless aad overrides it."""
    nonce = os.urandom(12)
    aad = aad or "qroam/1|M8|%s|%s|%s" % (initiator, target, hid)
    ct = AESGCM(ck2).encrypt(nonce, plain, aad.encode())
    return pb_encode([(1, initiator), (2, target), (3, hid), (4, nonce), (5, ct)])


def tamper_ct(payload):
    """The M8 payload with one bit of its ct flipped."""
    f = pb_decode(payload)
    return pb_encode([(1, f[1][0]), (2, f[2][0]), (3, f[3][0]), (4, f[4][0]),
                      (5, flip(f[5][0]))])


def send_m8(tb, cert, payload, tsp="tsp-b"):
    """One M8 frame to tsp's provisioning listener as cert ("" = no
    certificate): the reply frame, or None (refused handshake, no reply)."""
    if cert == "":
        got = tb.raw(tb.port[tsp + "/provision"], frame(MT_M8, payload, 5), tls="")
        assert got == b"", got
        return None
    return tb.request(tb.port[tsp + "/provision"], MT_M8, payload, tls=cert, request_id=5)


def handover_as_tspa(tb, hid):
    """A1, CK1, A2 and M7 as tsp-a with the real schedd; the real tsp-b
    binds CK2, which the test learns from M7.  Returns CK2."""
    tspa = Tsp(tb, "tsp-a")
    try:
        reply = tspa.call(MT["MT_KEY_REQUEST"], key_request("tsp-a", hid), 1)
        assert reply is not None and reply[0] == MT_KEY_REPLY, reply
        ck1 = dec_key(tb, "tsp-a", "sched", text(pb_decode(reply[1]), 2))
        tspa.send(MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid), 2)
        m7 = tspa.recv(TIMEOUT)
        assert m7 is not None and m7[0] == MT_M7 and m7[2] == 2, m7
    finally:
        tspa.close()
    f = pb_decode(m7[1])
    inner = pb_decode(AESGCM(ck1).decrypt(f[2][0], f[3][0],
                                          ("qroam/1|M7|tsp-a|%s" % hid).encode()))
    ck2 = inner[1][0]
    tb.secrets.add(ck2, "CK2 of %s" % hid)
    wait_until(lambda: tb.count("tsp-b", "ck2_bindings", "initiator='tsp-a' AND "
                                "handover_id=?", (hid,)) == 1, what="CK2 bound at tsp-b")
    return ck2


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_forged_m8_refused(tb):
    """With CK2 bound at tsp-b for (tsp-a, hid): M8s with garbage or
    tampered ct, sealed for another target, under another key, for an
    unknown handover, from the wrong peer or role, without a certificate,
    or carrying an RD1 that does not fit tsp-b's store are refused with
    the store unchanged.  The genuine M8 is acknowledged under CK2 and
    applied; replayed, it is refused."""
    start_clouds(tb, tsps=["tsp-b"], ck2_lifetime="600s")
    p = enrolled_probe(tb, ["tsp-b"], m=16)
    other = enrolled_probe(tb, ["tsp-b"], m=16)
    hid = new_hid()
    ck2 = handover_as_tspa(tb, hid)
    vid, chip = p.vin, p.chip_id
    good = rd1(vid, chip, next_index=2, history=3)
    forged = [
        ("garbage ct", "tsp-a", pb_encode([(1, "tsp-a"), (2, "tsp-b"), (3, hid),
                                          (4, os.urandom(12)), (5, os.urandom(90))]),
         "DECRYPT_FAILED"),
        ("tampered ct", "tsp-a", tamper_ct(m8(ck2, hid, good)), "DECRYPT_FAILED"),
        ("sealed for tsp-c", "tsp-a",
         m8(ck2, hid, good, aad="qroam/1|M8|tsp-a|tsp-c|%s" % hid), "DECRYPT_FAILED"),
        ("sealed for another handover", "tsp-a",
         m8(ck2, hid, good, aad="qroam/1|M8|tsp-a|tsp-b|%s" % new_hid()), "DECRYPT_FAILED"),
        ("another key", "tsp-a", m8(os.urandom(32), hid, good), "DECRYPT_FAILED"),
        ("unknown handover", "tsp-a", m8(ck2, new_hid(), good), "AUTH_FAILED"),
        ("bad handover id", "tsp-a", m8(ck2, hid[:30], good), "BAD_REQUEST"),
        ("target tsp-c", "tsp-a", m8(ck2, hid, good, target="tsp-c"), "BAD_REQUEST"),
        ("initiator not the peer", "tsp-c", m8(ck2, hid, good), "AUTH_FAILED"),
        ("tsp-c as itself", "tsp-c", m8(ck2, hid, good, initiator="tsp-c"), "AUTH_FAILED"),
        ("operator", "operator", m8(ck2, hid, good), "AUTH_FAILED"),
        ("scheduler", "sched", m8(ck2, hid, good), "AUTH_FAILED"),
        ("vehicle", "intruder", m8(ck2, hid, good), "AUTH_FAILED"),
        ("no certificate", "", m8(ck2, hid, good), None),
        ("malformed", "tsp-a", os.urandom(40), "BAD_REQUEST"),
        ("chip of another vehicle", "tsp-a",
         m8(ck2, hid, rd1(vid, other.chip_id)), "BAD_REQUEST"),
        ("unknown vehicle", "tsp-a",
         m8(ck2, hid, rd1("LVTEST00000099999", chip)), "BAD_REQUEST"),
        ("key position beyond the chip", "tsp-a",
         m8(ck2, hid, rd1(vid, chip, next_index=17)), "BAD_REQUEST"),
        ("used key beyond the chip", "tsp-a",
         m8(ck2, hid, rd1(vid, chip, used=(40,))), "BAD_REQUEST"),
        ("RD1 not protobuf", "tsp-a", m8(ck2, hid, os.urandom(64)), "DECRYPT_FAILED"),
    ]
    before = tb.dump("tsp-b")
    for label, cert, payload, expect in forged:
        mark = tb.log_mark("tsp-b")
        reply = send_m8(tb, cert, payload)
        if expect is None:
            # Refused in the TLS handshake, before any frame is read.
            assert reply is None, (label, reply)
        else:
            assert reply is not None and reply[0] == MT["MT_STATUS"], (label, reply)
            assert status_name(reply[1]) == expect, (label, status_name(reply[1]),
                                                     pb_decode(reply[1]))
            tb.wait_log("tsp-b", r"refused", since=mark)
        tb.assert_same_dump(before, tb.dump("tsp-b"), "tsp-b store after M8 %s" % label)
        tb.assert_running("tsp-b")

    # The genuine M8: acknowledged under CK2, applied in one go.
    reply = send_m8(tb, "tsp-a", m8(ck2, hid, good))
    assert reply is not None and reply[0] == MT_M8_ACK and reply[2] == 5, reply
    ack = pb_decode(reply[1])
    assert text(ack, 1) == hid
    assert AESGCM(ck2).decrypt(ack[2][0], ack[3][0], (
        "qroam/1|M8-ACK|tsp-a|tsp-b|%s" % hid).encode()) == hid.encode()
    assert tb.query("tsp-b", "SELECT chip_id, via FROM auth WHERE vehicle_id=?",
                    (vid,)) == [(chip, "handover")]
    assert tb.scalar("tsp-b", "SELECT next_index FROM keypos WHERE chip_id=?", (chip,)) == 2
    assert tb.query("tsp-b", "SELECT idx, how FROM used_keys WHERE chip_id=? ORDER BY idx",
                    (chip,)) == [(0, "burned"), (1, "burned")]
    assert tb.count("tsp-b", "telemetry", "vehicle_id=? AND tsp_id='tsp-a'", (vid,)) == 3
    assert tb.count("tsp-b", "ck2_bindings") == 0
    assert ho_rows(tb, "tsp-b", vid) == [("in", "tsp-a", "done", None, hid)]

    # Replayed, the same M8 finds no key: refused, nothing changes.
    after = tb.dump("tsp-b")
    mark = tb.log_mark("tsp-b")
    reply = send_m8(tb, "tsp-a", m8(ck2, hid, good))
    assert reply is not None and status_name(reply[1]) == "AUTH_FAILED", reply
    tb.wait_log("tsp-b", r"m8 refused id=%s from=tsp-a reason=AUTH_FAILED "
                r"\(no key bound for this handover\)" % hid, since=mark)
    tb.assert_same_dump(after, tb.dump("tsp-b"), "tsp-b store after the replayed M8")

    # The context works: M3 with key 2 and no F3; key 0 is burned.
    r = p.m3("tsp-b", index=0)
    assert r.status == "KEY_REUSED", r
    r = p.m3("tsp-b", index=2)
    assert r.status == "OK", r
    assert tb.count("tsp-b", "auth_nonces", "vehicle_id=?", (vid,)) == 0


@testbed(tsps=["tsp-a", "tsp-b"])
def test_m8_after_ck2_expiry_refused(tb):
    """A genuine M8 that arrives after its CK2 expired is refused: the
    vehicle's context is not applied, CK2 is gone from the store and the
    incoming handover is failed with the reason."""
    start_clouds(tb, tsps=["tsp-b"], ck2_lifetime="1s")
    p = enrolled_probe(tb, ["tsp-b"], m=16)
    hid = new_hid()
    ck2 = handover_as_tspa(tb, hid)
    expires = tb.scalar("tsp-b", "SELECT expires_ms FROM ck2_bindings WHERE "
                        "handover_id=?", (hid,))
    wait_until(lambda: now_ms() > expires + 100, what="CK2 to expire")
    kept = ("auth", "keypos", "used_keys", "telemetry", "sessions")
    before = {t: tb.query("tsp-b", 'SELECT * FROM "%s"' % t) for t in kept}
    reply = send_m8(tb, "tsp-a", m8(ck2, hid, rd1(p.vin, p.chip_id, next_index=2)))
    assert reply is not None and status_name(reply[1]) == "AUTH_FAILED", reply
    tb.wait_log("tsp-b", r"m8 refused id=%s from=tsp-a reason=AUTH_FAILED" % hid)
    for t in kept:
        assert tb.query("tsp-b", 'SELECT * FROM "%s"' % t) == before[t], t
    assert tb.count("tsp-b", "ck2_bindings") == 0
    assert ho_rows(tb, "tsp-b") == [("in", "tsp-a", "failed", "ck2 expired", hid)]
    assert p.m3("tsp-b").status == "AUTH_REQUIRED"


# ---- M7 --------------------------------------------------------------------

class FakeSched(TlsServer):
    """A scheduler with the deployment's `sched` certificate that answers
    A1 like schedd (a fresh CK1 from qkdd, its key_ID in a KeyReply) and
    A2 with the M7 that make_m7(hid, ck1) returns, without ever involving
    TSPB.  Every M7 it sent is kept in m7s, the sender of every request
    in peers."""

    def __init__(self, tb, make_m7):
        self.tb = tb
        self.make_m7 = make_m7
        self.m7s = []
        self.peers = []
        self.ck1 = {}
        super().__init__(tb, "sched", tb.port["sched"])

    def session(self, s, subject):
        for mtype, payload, rid in self.read_frames(s, TIMEOUT):
            self.peers.append(subject.get("commonName"))
            s.sendall(self._answer(mtype, payload, rid or 0))

    def _answer(self, mtype, payload, rid):
        f = pb_decode(payload)
        if mtype == MT["MT_KEY_REQUEST"]:
            hid, frm = text(f, 3), text(f, 2)
            st, js = kme(self.tb, "sched", "POST", "/api/v1/keys/%s/enc_keys" % frm,
                         {"number": 1, "size": 256})
            assert st == 200, (st, js)
            key_id = js["keys"][0]["key_ID"]
            self.ck1[hid] = base64.b64decode(js["keys"][0]["key"])
            self.tb.secrets.add(self.ck1[hid], "CK1 of %s" % hid)
            return frame(MT_KEY_REPLY, pb_encode([(1, hid), (2, key_id), (3, "sched")]), rid)
        hid = text(f, 4)
        m7 = self.make_m7(hid, self.ck1[hid])
        self.m7s.append(m7)
        return frame(MT_M7, m7, rid)

def m7(tb, hid, ck1, aad_tsp="tsp-a", target="tsp-b", ck2=None):
    """M7 to tsp-a for hid under ck1, naming target; aad_tsp replaces tsp-a
    in the AAD."""
    ck2 = ck2 or os.urandom(32)
    tb.secrets.add(ck2, "forged CK2")
    inner = pb_encode([(1, ck2), (2, target), (3, "127.0.0.1"),
                       (4, tb.port[target + "/provision"]), (5, now_ms() + 30000)])
    nonce = os.urandom(12)
    ct = AESGCM(ck1).encrypt(nonce, inner, ("qroam/1|M7|%s|%s" % (aad_tsp, hid)).encode())
    return pb_encode([(1, hid), (2, nonce), (3, ct)])


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_tampered_m7_fails_the_handover(tb):
    """Each M7 that TSPA cannot trust fails its handover with the reason:
    a flipped bit, sealed for another TSP, the M7 of an earlier handover,
    naming a target the vehicle did not choose, and one whose CK2 TSPB
    never bound (TSPB refuses the M8).  TSPA keeps the vehicle's
    authentication, TSPB's store never changes, the vehicle gets no
    HandoverReady and must run F3 at B."""
    need_qkd()
    tb.start_qkd()
    tb.add_endpoints("sched")
    keys_stored(tb, "tsp-a")
    mode = {}

    def make_m7(hid, ck1):
        how = mode["now"]
        if how == "tampered":
            return flip(m7(tb, hid, ck1))
        if how == "sealed for tsp-b":
            return m7(tb, hid, ck1, aad_tsp="tsp-b")
        if how == "replayed":
            return fake.m7s[0]
        if how == "other target":
            return m7(tb, hid, ck1, target="tsp-c")
        return m7(tb, hid, ck1)

    fake = FakeSched(tb, make_m7)
    try:
        for t in ("tsp-a", "tsp-b"):
            tb.start_tsp(t, look_ahead="90s", handover_timeout="30s")
        tb.start_filler()
        tb.start_registrar()
        p = enrolled_probe(tb, ["tsp-a", "tsp-b"], m=16)
        assert p.auth("tsp-a").status == "OK"
        authed = tb.query("tsp-a", "SELECT * FROM auth WHERE vehicle_id=?", (p.vin,))
        before_b = tb.dump("tsp-b")
        cases = [
            ("tampered", "M7 does not decrypt"),
            ("sealed for tsp-b", "M7 does not decrypt"),
            ("replayed", "M7 for another handover"),
            ("other target", "M7 names another target"),
            ("unknown CK2", "tsp-b refused M8: AUTH_FAILED: no key bound for this handover"),
        ]
        for how, reason in cases:
            mode["now"] = how
            seen = len(ho_rows(tb, "tsp-a", p.vin))
            probe_session(tb, "tsp-a", p, f3=False)
            r = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b", wait_ms=3000)
            assert (r["m5"], r["m6"], r["ready"]) == ("tsp-b", "tsp-b", "none"), (how, r)
            rows = wait_until(lambda: (lambda x: x if x and all(
                y[2] == "failed" for y in x) else None)(ho_rows(tb, "tsp-a", p.vin)[seen:]),
                what="the handover (%s) to fail" % how)
            for row in rows:
                assert row[:4] == ("out", "tsp-b", "failed", reason), (how, row)
                tb.wait_log("tsp-a", r"handover failed id=%s vehicle=%s to=tsp-b "
                            r"state=\S+ reason=%s" % (row[4], p.vin, reason))
            assert tb.query("tsp-a", "SELECT * FROM auth WHERE vehicle_id=?",
                            (p.vin,)) == authed, how
            tb.assert_same_dump(before_b, tb.dump("tsp-b"), "tsp-b store after M7 %s" % how)
        assert set(fake.peers) == {"tsp-a"}, fake.peers
        tb.wait_log("tsp-b", r"m8 refused id=%s from=tsp-a reason=AUTH_FAILED"
                    % ho_rows(tb, "tsp-a", p.vin)[-1][4])
        r = p.m3("tsp-b")
        assert r.status == "AUTH_REQUIRED", r
        tb.assert_same_dump(before_b, tb.dump("tsp-b"), "tsp-b store")
        for t in ("tsp-a", "tsp-b"):
            tb.assert_running(t)
        # TSPA counts the M7s it could not trust, and every failure.
        ma = tb.metrics("tsp-a")
        assert metric(ma, "qroam_refusals_total", reason="m7_invalid") == 4
        assert metric(ma, "qroam_handovers_total", result="failed") == len(cases)
        assert metric(ma, "qroam_handovers_total", result="ok") == 0
        assert metric(ma, "qroam_handover_seconds_count") == len(cases)
        assert metric(tb.metrics("tsp-b"), "qroam_refusals_total",
                      reason="AUTH_FAILED") == 1
    finally:
        fake.close()


# ---- requests without a valid certificate ----------------------------------

@testbed(tsps=["tsp-a", "tsp-b"])
def test_cloud_requests_need_a_valid_certificate(tb):
    """A1, A2 and A3 to schedd, and A2, M7 and M8 to a TSP, from a client
    without a certificate, with one of another CA claiming to be a TSP,
    or with a certificate of a role that may not send them: refused,
    logged, and no store changes."""
    start_clouds(tb)
    rogue = tb.path("rogue-pki")
    subprocess.run(["sh", MKPKI, rogue, "tsp-a:tsp", "sched:sched"], check=True,
                   stdout=subprocess.DEVNULL)
    hid = new_hid()
    requests = [
        ("A1", MT["MT_KEY_REQUEST"], key_request("tsp-a", hid)),
        ("A2", MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid)),
        ("A3", MT["MT_KEY_REQUEST"], key_request("tsp-b", hid, "tsp-a")),
    ]
    stores = {n: tb.dump(n) for n in ("sched", "tsp-a", "tsp-b")}

    def rogue_call(port, data):
        """data over TLS with the rogue CA's tsp-a certificate: the bytes
        answered (a refused handshake answers nothing)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(tb.ca)
        ctx.check_hostname = False
        ctx.load_cert_chain(os.path.join(rogue, "tsp-a.pem"),
                            os.path.join(rogue, "tsp-a.key"))
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            s = ctx.wrap_socket(sock, server_hostname="localhost")
            s.sendall(data)
            return recv_all(s, 2)
        except (ssl.SSLError, OSError):
            return b""
        finally:
            sock.close()

    sched = tb.port["sched"]
    for label, mtype, payload in requests:
        data = frame(mtype, payload, 9)
        assert tb.raw(sched, data, tls="") == b"", label
        assert rogue_call(sched, data) == b"", label
        for cert in ("operator", "intruder", "filler", "registrar", "qkd"):
            mark = tb.log_mark("sched")
            c = Tsp(tb, cert)
            try:
                name, _ = status_of(c.call(mtype, payload, 9))
            finally:
                c.close()
            assert name == "AUTH_FAILED", (label, cert, name)
            tb.wait_log("sched", r"refused %s .*%s.*not a TSP" % (
                "MT_KEY_REQUEST" if mtype == MT["MT_KEY_REQUEST"] else "MT_ACCESS_REQUEST",
                cert), since=mark)
    # What only schedd may send a TSP (A2), what only a TSP may (M8), and
    # what a TSP only ever reads on its own connection to schedd (M7).
    prov = tb.port["tsp-b/provision"]
    m7_frame = pb_encode([(1, hid), (2, os.urandom(12)), (3, os.urandom(60))])
    to_tsp = [
        ("A2", MT["MT_ACCESS_REQUEST"], access_request("tsp-b", "tsp-a", hid),
         ("tsp-a", "operator", "filler", "intruder"), "AUTH_FAILED"),
        ("M8", MT_M8, pb_encode([(1, "tsp-a"), (2, "tsp-b"), (3, hid),
                                 (4, os.urandom(12)), (5, os.urandom(60))]),
         ("operator", "sched", "registrar"), "AUTH_FAILED"),
        ("M7", MT_M7, m7_frame, ("sched", "tsp-a", "operator"), "BAD_REQUEST"),
    ]
    for label, mtype, payload, certs, expect in to_tsp:
        data = frame(mtype, payload, 9)
        assert tb.raw(prov, data, tls="") == b"", label
        assert rogue_call(prov, data) == b"", label
        for cert in certs:
            mark = tb.log_mark("tsp-b")
            reply = tb.request(prov, mtype, payload, tls=cert, request_id=9)
            assert reply is not None and reply[0] == MT["MT_STATUS"], (label, cert, reply)
            assert status_name(reply[1]) == expect, (label, cert, status_name(reply[1]))
            tb.wait_log("tsp-b", r"(refused|unexpected message type)", since=mark)
    # M7 on the vehicle listener is no better.
    reply = tb.request(tb.port["tsp-a"], MT_M7, m7_frame)
    assert reply is not None and status_name(reply[1]) == "BAD_REQUEST", reply
    for name, before in stores.items():
        tb.assert_same_dump(before, tb.dump(name), "%s store" % name)
        tb.assert_running(name)
    assert tb.count("sched", "handovers") == 0


# ---- an M3 for B replayed to A ---------------------------------------------

@testbed(tsps=["tsp-a", "tsp-b"])
def test_m3_for_b_replayed_to_a(tb):
    """After the handover A -> B, the vehicle's M3 to B (accepted there)
    is replayed to A: refused, with no F3 at A and after a new F3 at A
    (its AAD names B), and replayed to B itself: KEY_REUSED.  No store
    changes."""
    start_clouds(tb)
    p = enrolled_probe(tb, m=16)
    probe_session(tb, "tsp-a", p)
    r = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b")
    assert r["ready"] == "tsp-b", r
    assert auth_via(tb, "tsp-a", p.vin) == []
    saved = tb.path("frames", "m3-to-b")
    r = p.m3("tsp-b", save=saved)
    assert r.status == "OK", r
    index = int(r["index"])
    r = p.telemetry("tsp-b", 2)
    assert r.status == "OK" and r["acked"] == "2", r

    def replay(tsp, expect, why):
        before = tb.dump(tsp)
        mark = tb.log_mark(tsp)
        r = p.send(tsp, saved)
        assert r.status == expect, (tsp, r)
        tb.wait_log(tsp, r"m3 refused vehicle=%s .*reason=%s \(%s" % (p.vin, expect, why),
                    since=mark)
        tb.assert_same_dump(before, tb.dump(tsp), "%s store after the replayed M3" % tsp)

    replay("tsp-a", "AUTH_REQUIRED", "not authenticated")
    replay("tsp-b", "KEY_REUSED", "")
    # A new F3 with A does not make B's M3 acceptable there.
    assert p.auth("tsp-a").status == "OK"
    replay("tsp-a", "DECRYPT_FAILED", "")
    assert tb.query("tsp-b", "SELECT key_index FROM sessions WHERE vehicle_id=?",
                    (p.vin,)) == [(index,)]
    assert tb.count("tsp-a", "used_keys", "idx=?", (index,)) == 0
