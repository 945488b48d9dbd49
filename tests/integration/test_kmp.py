"""kmpd, the key management platform of PROTOCOL 11.1, against real
parties over real TCP and mutual TLS (kmp_client.py plays the vehicle's
security unit, the cloud encryptor and the operator), with its random
source or a real qkdd as its key source.

Checks: a vehicle over TCP and an encryptor over mutual TLS applying for
one session_id get the same key, and the store then keeps the session's
record without the key; every refusal (stale time, replayed nonce,
unknown identity, a session_id served to that party already or to another
of its kind, a seal that does not open under the initial key, a party on
the wrong listener or with the wrong certificate, malformed frames, a
duplicate identity) is logged with its reason, counted, and leaves the
store as it was; kmpd SIGKILLed while an application waits for its
quantum key serves the retry, and no party is issued a key twice.  The
teardown checks that no initial or session key reached a log.
"""

import signal
import time

from harness import frame, recv_all, parse_frames, status_name, testbed, wait_until
from kmp_client import (MT_KMP_APPLY, MT_KMP_IDENTITY, MT_STATUS, Party,
                        apply_payload)


def refusals(tb):
    """{reason: count} of kmpd's qroam_refusals_total."""
    return {dict(labels)["reason"]: v for (name, labels), v in tb.metrics("kmp").items()
            if name == "qroam_refusals_total"}


def issued(tb, kind):
    return tb.metrics("kmp").get(("qroam_kmp_keys_issued_total", (("kind", kind),)), 0)


def pair(tb):
    """A vehicle and an encryptor, provisioned by the operator."""
    v = Party(tb, "chip-0001", "vehicle")
    c = Party(tb, "enc-tsp-a", "encryptor")
    assert v.provision() == "OK"
    assert c.provision() == "OK"
    return v, c


def assert_session_done(tb, sid, v, c):
    """The record of sid: both parties served once, the key gone."""
    rows = tb.query("kmp", "SELECT key, key_id, completed_ms FROM sessions "
                    "WHERE session_id = ?", (sid,))
    assert len(rows) == 1 and rows[0][0] is None and rows[0][1] and rows[0][2], rows
    served = tb.query("kmp", "SELECT kind, identity FROM issued WHERE "
                      "session_id = ? ORDER BY kind", (sid,))
    assert served == [("encryptor", c.identity), ("vehicle", v.identity)], served


@testbed()
def test_pair_gets_matching_keys(tb):
    tb.start_kmp(key_source="random")
    v, c = pair(tb)
    kv = v.apply("s-0001")
    assert isinstance(kv, bytes), kv
    # Until the encryptor has it, the key is kept for the session.
    assert tb.scalar("kmp", "SELECT count(*) FROM sessions WHERE key IS NOT NULL") == 1
    assert tb.status("kmp")["sessions_open"] == 1
    kc = c.apply("s-0001")
    assert kc == kv
    assert_session_done(tb, "s-0001", v, c)
    # The next session has a new key.
    kv2, kc2 = v.apply("s-0002"), c.apply("s-0002")
    assert kv2 == kc2 and kv2 != kv
    st = tb.status("kmp")
    assert st["sessions"] == 2 and st["sessions_open"] == 0 and st["keys_issued"] == 4, st
    assert st["identities"] == {"vehicle": 1, "encryptor": 1}, st
    assert issued(tb, "vehicle") == 2 and issued(tb, "encryptor") == 2
    # The audit log names parties and sessions, never a key.
    events = [r[0] for r in tb.query("kmp", "SELECT event FROM audit ORDER BY id")]
    assert events.count("issued") == 4 and events.count("complete") == 2, events
    for row in tb.query("kmp", "SELECT * FROM audit"):
        assert not any(isinstance(x, bytes) for x in row), row
    # SIGHUP takes a new max_skew.
    tb.daemons["kmp"].opts["max_skew"] = "5s"
    tb._write_conf(tb.daemons["kmp"], tb._common("kmp", "kmp", tb.daemons["kmp"]), {})
    tb.signal("kmp", signal.SIGHUP)
    tb.wait_log("kmp", r"reloaded: .*max_skew 5000ms")


def refused(tb, what, send, status, reason, log):
    """send() must get status, count reason, log log, change nothing."""
    before = tb.dump("kmp")
    n = refusals(tb).get(reason, 0)
    since = len(tb.log("kmp"))
    got = send()
    assert got == status, (what, got)
    tb.wait_log("kmp", log, since=since)
    assert refusals(tb).get(reason, 0) == n + 1, (what, refusals(tb))
    tb.assert_same_dump(before, tb.dump("kmp"), "kmpd's store after %s" % what)


@testbed()
def test_refusals_change_nothing(tb):
    tb.start_kmp(key_source="random", max_skew="2s")
    v, c = pair(tb)
    kv = v.apply("s-0001")
    assert isinstance(kv, bytes)
    payload, _ = apply_payload(v.ik, v.identity, "s-0002")

    refused(tb, "a stale application",
            lambda: v.apply("s-0003", time_ms=int(time.time() * 1000) - 60000),
            "STALE", "kmp_stale", r"refused: STALE \(stale application")
    refused(tb, "a replayed nonce", lambda: v.apply("s-0004", nonce=nonce_of(tb, v)),
            "KEY_REUSED", "kmp_replay", r"replayed application")
    stranger = Party(tb, "chip-9999", "vehicle")
    refused(tb, "an unknown identity", lambda: stranger.apply("s-0005"),
            "AUTH_FAILED", "kmp_unknown_identity", r"unknown identity")
    refused(tb, "a session served to that party", lambda: v.apply("s-0001"),
            "KEY_REUSED", "kmp_served", r"already served to this identity")
    forger = Party(tb, v.identity, "vehicle")	# the right name, another key
    refused(tb, "a seal under another key", lambda: forger.apply("s-0006"),
            "DECRYPT_FAILED", "kmp_decrypt", r"does not open under")
    refused(tb, "names inside the seal that differ",
            lambda: v.apply("s-0007", inner_session="s-0001"),
            "DECRYPT_FAILED", "kmp_decrypt", r"does not open under")
    refused(tb, "garbage for a KmpApply",
            lambda: status_name(v.send(b"\xff\x01garbage")[1]),
            "BAD_REQUEST", "kmp_malformed", r"malformed KmpApply")
    refused(tb, "an unexpected message type", lambda: status_name(
        tb.request(tb.port["kmp"], MT_KMP_IDENTITY, b"", request_id=3)[1]),
            "BAD_REQUEST", "kmp_unexpected", r"unexpected message type")
    wrong = Party(tb, c.identity, "encryptor", ik=c.ik)
    wrong.cert = None	# an encryptor on the vehicles' listener
    refused(tb, "an encryptor over plain TCP", lambda: wrong.apply("s-0008"),
            "AUTH_FAILED", "kmp_kind", r"not of the kind")
    intruder = Party(tb, v.identity, "vehicle", ik=v.ik, cert="intruder")
    refused(tb, "a certificate of another role", lambda: intruder.apply("s-0009"),
            "AUTH_FAILED", "kmp_role", r"role may not use the KMP")
    other = Party(tb, "chip-0002", "vehicle")
    assert other.provision() == "OK"
    before_other = tb.dump("kmp")
    refused(tb, "a second vehicle for a session", lambda: other.apply("s-0001"),
            "AUTH_FAILED", "kmp_session_taken", r"another identity of this kind")
    refused(tb, "a duplicate identity", lambda: Party(tb, c.identity, "encryptor").provision(),
            "DUPLICATE_REGISTRATION", "kmp_duplicate", r"identity exists already")
    refused(tb, "a filler provisioning an encryptor",
            lambda: Party(tb, "enc-x", "encryptor").provision(by="filler"),
            "BAD_REQUEST", "kmp_malformed", r"the filler provisions vehicles only")
    tb.assert_same_dump(before_other, tb.dump("kmp"), "kmpd's store")
    # A truncated frame is dropped, nothing answered, nothing written.
    before = tb.dump("kmp")
    assert parse_frames(tb.raw(tb.port["kmp"], frame(MT_KMP_APPLY, payload)[:-5],
                               half_close=True)) == []
    tb.assert_same_dump(before, tb.dump("kmp"), "kmpd's store after a truncated frame")
    # After all that, the party is served as before.
    assert c.apply("s-0001") == kv
    assert_session_done(tb, "s-0001", v, c)
    tb.assert_running("kmp")


def nonce_of(tb, party):
    """The nonce of party's served application (the store keeps it)."""
    return tb.scalar("kmp", "SELECT nonce FROM nonces WHERE identity = ?",
                     (party.identity,))


@testbed()
def test_quantum_keys_from_qkdd_and_a_crash(tb):
    """Keys from a real qkdd (kmpd its master SAE); kmpd SIGKILLed while an
    application waits for its key serves the retry, once."""
    tb.start_kmp(key_source="etsi014 kmp-peer", key_timeout="10m")
    tb.start_qkd(links=["kmp kmp-peer"])
    v, c = pair(tb)
    # qkdd's pool fills from its start: until it holds a key, kmpd refuses
    # with UNAVAILABLE and changes nothing, and the vehicle applies again.
    got = []
    wait_until(lambda: got.append(v.apply("s-0001")) or got[-1] != "UNAVAILABLE",
               timeout=60, interval=0.2, what="a key from qkdd's pool")
    kv = got[-1]
    assert isinstance(kv, bytes) and c.apply("s-0001") == kv
    key_id = tb.scalar("kmp", "SELECT key_id FROM sessions WHERE session_id = 's-0001'")
    assert key_id and not key_id.startswith("rand-"), key_id

    # The KME stops answering; the application waits for its key.
    tb.signal("qkd", signal.SIGSTOP)
    try:
        payload, _ = apply_payload(v.ik, v.identity, "s-0002")
        sock = tb.connect(tb.port["kmp"])
        sock.sendall(frame(MT_KMP_APPLY, payload, 7))
        wait_until(lambda: tb.status("kmp")["applications_waiting"] == 1,
                   what="the application waiting for its key")
        before = tb.dump("kmp")
        tb.kill("kmp")
        assert parse_frames(recv_all(sock, 5.0)) == [], "answered before dying"
        sock.close()
    finally:
        tb.signal("qkd", signal.SIGCONT)
    tb.start("kmp")
    tb.assert_same_dump(before, tb.dump("kmp"), "kmpd's store after the crash")
    # The vehicle retries (a new application: a new nonce), is served, once.
    kv2 = v.apply("s-0002")
    assert isinstance(kv2, bytes) and kv2 != kv
    assert v.apply("s-0002") == "KEY_REUSED"
    assert c.apply("s-0002") == kv2
    assert_session_done(tb, "s-0002", v, c)
    per_party = tb.query("kmp", "SELECT session_id, identity, count(*) FROM issued "
                         "GROUP BY session_id, identity")
    assert len(per_party) == 4 and all(r[2] == 1 for r in per_party), per_party
