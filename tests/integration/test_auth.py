"""F3: power-on authentication, its refusals, and the vehicle's retransmission."""

import re

from harness import enrolled_probe, rsa_private_parts, start_provisioning, vin, wait_until

TSPS = ["tsp-a", "tsp-b"]
NO_REPLY_MS = 1500


def refusal_logged(tb, mark, vehicle_id, reason_rx):
    """The refusal has a log line about this vehicle's M4 naming a reason
    (the daemon's own name, tspd[tsp-a], is not a reason)."""
    text = tb.log_since("tsp-a", mark)
    lines = []
    for line in text.splitlines():
        bare = re.sub(r"tspd\[[^]]*\]", "", line)
        if not re.search(re.escape(vehicle_id) + r"|auth|M4", bare, re.I):
            continue
        if not re.search(r"refus|reject|drop|fail|denied|invalid|replay", bare, re.I):
            continue
        if re.search(reason_rx, bare.replace(vehicle_id, ""), re.I):
            lines.append(line)
    assert lines, "no log line matching /%s/ in tsp-a log:\n%s" % (reason_rx, text[-2000:])
    return lines


def attempt(tb, probe, expect, reason_rx, **kw):
    """One refused auth: expected status, nothing stored but the log line."""
    before = tb.dump("tsp-a", exclude=("auth_nonces",))
    nonces = tb.count("tsp-a", "auth_nonces")
    mark = tb.log_mark("tsp-a")
    r = probe.auth("tsp-a", wait_ms=NO_REPLY_MS, **kw)
    assert r.status == expect, r
    wait_until(lambda: refusal_logged(tb, mark, probe.vin, reason_rx),
               what="refusal /%s/ logged by tsp-a" % reason_rx)
    tb.assert_same_dump(before, tb.dump("tsp-a", exclude=("auth_nonces",)),
                        "tsp-a store after refused M4 (%s)" % kw)
    assert tb.count("tsp-a", "auth_nonces") <= nonces, "a refused M4 left a nonce"
    tb.assert_running("tsp-a")


def refusals(tb, fail, stale):
    p = enrolled_probe(tb, TSPS, m=8)
    other = enrolled_probe(tb, TSPS, m=8)
    assert tb.count("tsp-a", "auth") == 0
    attempt(tb, p, fail, r"chip", chip_id=other.chip_id)
    attempt(tb, p, fail, r"tsp[_ -]?id|tsp-b|wrong tsp|other tsp|mismatch", as_tsp="tsp-b")
    q = tb.probe(vin(999), store=p.store)
    attempt(tb, q, fail, r"unknown|not registered|no registration|unregistered",
            vid=vin(999))
    attempt(tb, p, stale, r"stale|skew|time|clock", time_offset=-120000)
    attempt(tb, p, stale, r"stale|skew|time|clock", time_offset=+120000)
    assert tb.count("tsp-a", "auth") == 0, "a refused M4 authenticated the vehicle"

    # The valid M4 passes; the same bytes sent again are a replay.
    saved = tb.path("frames", "m4-%s" % fail)
    r = p.auth("tsp-a", save=saved)
    assert r.status == "OK", r
    authed = tb.query("tsp-a", "SELECT vehicle_id, chip_id, via FROM auth")
    assert authed == [(p.vin, p.chip_id, "f3")], authed
    before = tb.dump("tsp-a")
    mark = tb.log_mark("tsp-a")
    r = p.send("tsp-a", saved, wait_ms=NO_REPLY_MS)
    assert r.status in ([fail, "STALE"] if fail != "NO_REPLY" else ["NO_REPLY"]), r
    wait_until(lambda: refusal_logged(tb, mark, p.vin, r"replay|nonce|seen|duplicate"),
               what="replay logged")
    tb.assert_same_dump(before, tb.dump("tsp-a"), "tsp-a store after a replayed M4")
    # A fresh M4 still works; another TSP authenticates independently.
    assert p.auth("tsp-a").status == "OK"
    assert p.auth("tsp-b").status == "OK"
    assert tb.count("tsp-b", "auth", "vehicle_id=?", (p.vin,)) == 1


def test_auth_ok(tb):
    start_provisioning(tb, TSPS)
    p = enrolled_probe(tb, TSPS, m=8)
    r = p.auth("tsp-a")
    assert r.status == "OK", r
    row = tb.query("tsp-a", "SELECT chip_id, via FROM auth WHERE vehicle_id=?", (p.vin,))
    assert row == [(p.chip_id, "f3")], row
    assert tb.count("tsp-a", "auth_nonces", "vehicle_id=?", (p.vin,)) == 1
    assert tb.count("tsp-b", "auth") == 0
    # The TSP verified the M4 with the vehicle's Prv from M2.
    prv = tb.scalar("tsp-a", "SELECT prv FROM registrations WHERE vehicle_id=?", (p.vin,))
    assert rsa_private_parts(prv)


def test_auth_refusals_dropped(tb):
    start_provisioning(tb, TSPS)
    refusals(tb, "NO_REPLY", "NO_REPLY")


def test_auth_refusals_replied(tb):
    start_provisioning(tb, TSPS, auth_fail="reply")
    refusals(tb, "AUTH_FAILED", "STALE")


def events(tb, vehicle, kind):
    return tb.count(vehicle, "events", "kind=?", (kind,))


def test_auth_retransmit_until_registration_arrives(tb):
    """The TSP does not know the vehicle yet (the registrar's M2 is still in
    its outbox): the vehicle's M4s are dropped and it retransmits a new M4
    every delta-t1 until the M2 arrives, then it is authenticated."""
    tb.start_filler()
    tb.start_registrar()
    v = vin(500)
    tb.start_vehicle(v, "tsp-a", retransmit="300ms", telemetry_interval="200ms",
                     fill_m=16, draw="sequential", session_rekey=0)
    wait_until(lambda: tb.query(v, "SELECT vehicle_id FROM registration") == [(v,)],
               what="vehicled to fill and register")
    chip = tb.scalar(v, "SELECT chip_id FROM chip")
    tb.stop("registrar")
    # tsp-a gets the fill record from the filler, but no M2.
    tb.start_tsp("tsp-a")
    tb.start_tsp("tsp-b")
    wait_until(lambda: tb.count("tsp-a", "fills", "chip_id=?", (chip,)) == 1,
               what="fill record at tsp-a")
    base = events(tb, v, "auth_retransmit")
    wait_until(lambda: events(tb, v, "auth_retransmit") >= base + 3,
               what="vehicled to retransmit M4")
    tb.wait_log("tsp-a", r"unknown|not registered|no registration|unregistered")
    assert tb.count("tsp-a", "registrations") == 0
    assert tb.count("tsp-a", "auth") == 0
    assert events(tb, v, "auth_ok") == 0
    tb.wait_log(v, r"retransmit")
    tb.start("registrar")
    wait_until(lambda: tb.count("tsp-a", "auth", "vehicle_id=?", (v,)) == 1,
               what="vehicle authenticated at tsp-a after the M2 arrived")
    wait_until(lambda: events(tb, v, "auth_ok") >= 1, what="auth_ok event at vehicled")
    assert tb.query("tsp-a", "SELECT chip_id, via FROM auth WHERE vehicle_id=?", (v,)) \
        == [(chip, "f3")]
    # Service follows: a session and telemetry.
    wait_until(lambda: tb.count("tsp-a", "sessions", "vehicle_id=?", (v,)) == 1,
               what="session at tsp-a")
    wait_until(lambda: tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq>0", (v,)) >= 3,
               what="telemetry at tsp-a")
