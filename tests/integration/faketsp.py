"""A scripted stand-in for a TSP's vehicle listener, for testing vehicled's
side of the handover before the real TSPs, scheduler and QKD emulator
exist or when a test needs exact control of M5 and HandoverReady.

It speaks F3, F4 and F5 like tspd (RSA-OAEP M4 with a PSS-signed
AuthResult, M3 unwrapped with the chip key, SessionMsg under K1), taking
the vehicle's Prv from the registrar's store and the chip keys from the
filler's store.  Hooks decide when to send M5 and HandoverReady; every
message seen is recorded for the test to check.
"""

import socket
import struct
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wire import MT, STATUS, frame, pb_decode, pb_encode

AUTH_REQUIRED = STATUS.index("AUTH_REQUIRED")


def _str(fields, num):
    v = fields.get(num, [b""])[0]
    return v.decode() if isinstance(v, bytes) else v


def _double(fields, num):
    v = fields.get(num)
    return struct.unpack("<d", v[0])[0] if v else None


def tsp_info(tb, tsp_id, with_region=True):
    """A TspInfo of the test bed's topology."""
    fields = [(1, tsp_id), (2, "127.0.0.1"), (3, tb.port[tsp_id])]
    if with_region:
        for lat, lon in tb.region(tsp_id):
            fields.append((4, pb_encode([(1, float(lat)), (2, float(lon))])))
    return pb_encode(fields)


class FakeTsp:
    """Listens on tsp_id's vehicle port of the test bed's topology."""

    def __init__(self, tb, tsp_id, on_telemetry=None, on_m6=None):
        self.tb = tb
        self.id = tsp_id
        self.on_telemetry = on_telemetry
        self.on_m6 = on_m6
        self.lock = threading.Lock()
        self.authed = set()
        self.context = set()		# vehicles handed over to us
        self.sessions = {}		# vid -> {"k1", "rx", "tx"}
        self.records = []		# (ms, kind, vid, detail, conn id)
        self.conns = {}			# conn id -> accept ms
        self.stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", tb.port[tsp_id]))
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    # -- records

    def note(self, kind, vid, detail=None, cid=None):
        with self.lock:
            self.records.append((time.time() * 1000, kind, vid, detail, cid))

    def seen(self, kind, vid=None):
        with self.lock:
            return [r for r in self.records if r[1] == kind
                    and (vid is None or r[2] == vid)]

    def close(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    # -- material from the provisioning stores

    def _prv(self, vid):
        rows = self.tb.query("registrar", "SELECT prv FROM registrations "
                             "WHERE vehicle_id=?", (vid,))
        return serialization.load_der_private_key(rows[0][0], None) if rows else None

    def _chip_key(self, vid, index, code):
        chip = self.tb.query("registrar", "SELECT chip_id FROM registrations "
                             "WHERE vehicle_id=?", (vid,))[0][0]
        if code is None:
            code = self.tb.query("filler", "SELECT code FROM fill_keys WHERE "
                                 "chip_id=? ORDER BY code LIMIT 1 OFFSET ?",
                                 (chip, index))[0][0]
        return self.tb.query("filler", "SELECT key FROM fill_keys WHERE "
                             "chip_id=? AND code=?", (chip, code))[0][0]

    # -- connections

    def _accept(self):
        n = 0
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            with self.lock:
                self.conns[n] = time.time() * 1000
            threading.Thread(target=self._serve, args=(conn, n), daemon=True).start()

    def _serve(self, conn, cid):
        buf = b""
        conn.settimeout(0.5)
        while not self.stopping:
            try:
                b = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not b:
                break
            buf += b
            while len(buf) >= 4:
                (n,) = struct.unpack(">I", buf[:4])
                if len(buf) < 4 + n:
                    break
                env = pb_decode(buf[4:4 + n])
                buf = buf[4 + n:]
                try:
                    self._dispatch(conn, cid, env.get(2, [0])[0],
                                   env.get(3, [b""])[0], env.get(4, [None])[0])
                except Exception as e:	# a test helper: record, keep serving
                    self.note("error", None, repr(e), cid)
        self.note("closed", None, None, cid)
        conn.close()

    def _dispatch(self, conn, cid, mtype, payload, reqid):
        if mtype == MT["MT_M4"]:
            self._m4(conn, cid, pb_decode(payload), reqid)
        elif mtype == MT["MT_M3"]:
            self._m3(conn, cid, pb_decode(payload), reqid)
        elif mtype == MT["MT_SESSION_MSG"]:
            self._session(conn, cid, pb_decode(payload), reqid)
        else:
            self.note("unexpected", None, mtype, cid)

    def _m4(self, conn, cid, m4, reqid):
        vid = _str(m4, 1)
        inner = pb_decode(self._prv(vid).decrypt(m4[2][0], padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)))
        nonce = inner[3][0]
        self.note("m4", vid, _str(inner, 2), cid)
        if _str(inner, 2) != self.id:
            return
        text = "qroam/1|AUTH-OK|%s|%s|%s" % (vid, self.id, nonce.hex())
        sig = self._prv(vid).sign(text.encode(), padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        with self.lock:
            self.authed.add(vid)
        conn.sendall(frame(MT["MT_AUTH_RESULT"], pb_encode([(1, 0), (2, nonce), (3, sig)]),
                           reqid))

    def _m3(self, conn, cid, m3, reqid):
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
        AESGCM(k1).decrypt(m3[6][0], m3[7][0],
                           ("qroam/1|M3-DATA|%s|%s" % (vid, self.id)).encode())
        with self.lock:
            self.sessions[vid] = {"k1": k1, "rx": 0, "tx": 0}
        self.send_inner(conn, vid, pb_encode([(2, pb_encode([(1, 0), (2, self.id)]))]),
                        reqid)

    def send_inner(self, conn, vid, inner, reqid=None):
        """Seal a SessionInner (encoded) as our next SessionMsg to vid."""
        with self.lock:
            s = self.sessions[vid]
            s["tx"] += 1
            seq = s["tx"]
            k1 = s["k1"]
        nonce = struct.pack(">IQ", 2, seq)
        aad = ("qroam/1|DATA|%s|%s|%d" % (vid, self.id, seq)).encode()
        ct = AESGCM(k1).encrypt(nonce, inner, aad)
        conn.sendall(frame(MT["MT_SESSION_MSG"], pb_encode([(1, vid), (2, seq), (3, ct)]),
                           reqid))

    def _session(self, conn, cid, sm, reqid):
        vid, seq = _str(sm, 1), sm[2][0]
        with self.lock:
            s = self.sessions.get(vid)
        if s is None or seq <= s["rx"]:
            self.note("session_refused", vid, seq, cid)
            return
        nonce = struct.pack(">IQ", 1, seq)
        aad = ("qroam/1|DATA|%s|%s|%d" % (vid, self.id, seq)).encode()
        inner = pb_decode(AESGCM(s["k1"]).decrypt(nonce, sm[3][0], aad))
        s["rx"] = seq
        if 1 in inner:
            t = pb_decode(inner[1][0])
            pos = (_double(t, 2), _double(t, 3))
            self.note("telemetry", vid, pos, cid)
            self.send_inner(conn, vid, pb_encode([(2, pb_encode([(1, seq)]))]), reqid)
            if self.on_telemetry:
                self.on_telemetry(self, conn, vid, pos)
        elif 3 in inner:
            self.note("bye", vid, None, cid)
            with self.lock:
                self.sessions.pop(vid, None)
        elif 5 in inner:
            m6 = pb_decode(inner[5][0])
            choice = (bool(m6[1][0]), _str(m6, 2) if 2 in m6 else None)
            self.note("m6", vid, choice, cid)
            if self.on_m6:
                self.on_m6(self, conn, vid, choice)
        else:
            self.note("unexpected_inner", vid, sorted(inner), cid)

    # -- handover messages

    def send_m5(self, conn, vid, candidates, projected):
        """M5 with TspInfo candidates (encoded) and the projected point."""
        fields = [(1, c) for c in candidates]
        fields.append((2, pb_encode([(1, float(projected[0])), (2, float(projected[1]))])))
        self.note("m5", vid, None)
        self.send_inner(conn, vid, pb_encode([(4, pb_encode(fields))]))

    def send_ready(self, conn, vid, target):
        """HandoverReady naming target (a FakeTsp), which now holds vid's context."""
        with target.lock:
            target.context.add(vid)
        self.note("ready", vid, target.id)
        self.send_inner(conn, vid, pb_encode([(6, pb_encode(
            [(1, target.id), (2, "127.0.0.1"), (3, self.tb.port[target.id])]))]))
