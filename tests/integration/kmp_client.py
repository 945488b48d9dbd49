"""The parties of PROTOCOL 11.1 in Python, for the tests of kmpd: a
vehicle's security unit or a cloud encryptor applying for a session key
(KmpApply sealed under its initial key), and an operator provisioning an
identity (KmpIdentity).  Independent of the C codecs: the wire format is
written here from the .proto and doc/protocol.md."""

import os
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import MT, pb_decode, pb_encode, status_name

MT_KMP_APPLY = MT["MT_KMP_APPLY"]
MT_KMP_KEY = MT["MT_KMP_KEY"]
MT_KMP_IDENTITY = MT["MT_KMP_IDENTITY"]
MT_STATUS = MT["MT_STATUS"]


def aad(label, identity, session_id):
    return ("qroam/1|%s|%s|%s" % (label, identity, session_id)).encode()


def apply_payload(ik, identity, session_id, nonce=None, time_ms=None,
                  inner_identity=None, inner_session=None):
    """(KmpApply payload, its nonce); inner_* put other names inside the
    seal than in the clear."""
    nonce = nonce if nonce is not None else os.urandom(16)
    t = int(time.time() * 1000) if time_ms is None else time_ms
    inner = pb_encode([(1, inner_identity or identity),
                       (2, inner_session or session_id), (3, nonce), (4, t)])
    iv = os.urandom(12)
    ct = AESGCM(ik).encrypt(iv, inner, aad("KMP-APPLY", identity, session_id))
    return pb_encode([(1, identity), (2, session_id), (3, iv), (4, ct)]), nonce


def open_key(ik, identity, session_id, payload, nonce):
    """The session key of a KmpKey answering the application of nonce."""
    m = pb_decode(payload)
    assert m[1][0].decode() == identity and m[2][0].decode() == session_id, m
    pt = AESGCM(ik).decrypt(m[3][0], m[4][0], aad("KMP-KEY", identity, session_id))
    inner = pb_decode(pt)
    assert inner[2][0] == nonce, "KmpKey answers another application"
    assert len(inner[1][0]) == 32
    return inner[1][0]


class Party:
    """One identity with its initial key, applying over TCP (vehicle) or
    mutual TLS with certificate cert (encryptor)."""

    def __init__(self, tb, identity, kind, ik=None, cert=None):
        self.tb = tb
        self.identity = identity
        self.kind = kind
        self.ik = ik if ik is not None else os.urandom(32)
        self.cert = cert if cert is not None else (
            "encryptor" if kind == "encryptor" else None)
        tb.secrets.add(self.ik, "IK of %s" % identity)

    def port(self):
        return self.tb.port["kmp_tls" if self.cert else "kmp"]

    def provision(self, by="operator"):
        """KmpIdentity over mutual TLS: the status name of the answer."""
        payload = pb_encode([(1, self.identity), (2, self.kind), (3, self.ik)])
        r = self.tb.request(self.tb.port["kmp_tls"], MT_KMP_IDENTITY, payload, tls=by)
        assert r is not None and r[0] == MT_STATUS, r
        return status_name(r[1])

    def send(self, payload, request_id=7, timeout=10.0):
        """One KmpApply payload: (frame type, payload) of the answer."""
        r = self.tb.request(self.port(), MT_KMP_APPLY, payload, tls=self.cert,
                            request_id=request_id, timeout=timeout)
        assert r is not None, "no answer from kmpd"
        assert r[2] == request_id, r
        return r[0], r[1]

    def apply(self, session_id, **kw):
        """Apply for session_id: the session key, or the status name of a
        refusal."""
        payload, nonce = apply_payload(self.ik, self.identity, session_id, **kw)
        mtype, body = self.send(payload)
        if mtype == MT_STATUS:
            return status_name(body)
        assert mtype == MT_KMP_KEY, mtype
        key = open_key(self.ik, self.identity, session_id, body, nonce)
        self.tb.secrets.add(key, "session key of %s" % session_id)
        return key
