"""F4/F5: session establishment with M3 in both draw modes, its refusals,
and session traffic."""

from harness import enrolled_probe, start_provisioning, testbed, wait_until

TSPS = ["tsp-a"]


def used(tb, chip):
    return tb.query("tsp-a", "SELECT idx, how FROM used_keys WHERE chip_id=? ORDER BY idx",
                    (chip,))


def keypos(tb, chip):
    return tb.scalar("tsp-a", "SELECT next_index FROM keypos WHERE chip_id=?", (chip,))


def destroyed(probe):
    return [idx for idx, _, key, d in probe.keys() if d]


def session(tb, probe):
    rows = tb.query("tsp-a", "SELECT chip_id, key_index, rx_seq FROM sessions "
                    "WHERE vehicle_id=?", (probe.vin,))
    return rows[0] if rows else None


def refused(tb, probe, expect, **kw):
    """An M3 refused with status expect; the TSP store is unchanged."""
    before = tb.dump("tsp-a")
    mark = tb.log_mark("tsp-a")
    r = probe.m3("tsp-a", **kw)
    assert r.status == expect, r
    tb.assert_same_dump(before, tb.dump("tsp-a"), "tsp-a store after %s M3 %s"
                        % (expect, kw))
    tb.assert_running("tsp-a")
    wait_until(lambda: probe.vin in tb.log_since("tsp-a", mark),
               what="tsp-a to log the refused M3 of %s" % probe.vin)
    return r


def code_of(probe, idx):
    return [c for i, c, _, _ in probe.keys() if i == idx][0]


def authenticated_probe(tb, m):
    """The clouds, and a probe with m chip keys that passed F3 at tsp-a."""
    start_provisioning(tb, TSPS)
    p = enrolled_probe(tb, TSPS, m=m)
    assert p.auth("tsp-a").status == "OK"
    return p


@testbed(tsps=TSPS)
def test_m3_sequential(tb):
    start_provisioning(tb, TSPS)
    p = enrolled_probe(tb, TSPS, m=16)
    refused(tb, p, "AUTH_REQUIRED", mode="seq")
    # The vehicle destroyed key 0 before sending, even though it was refused.
    assert destroyed(p) == [0], destroyed(p)
    assert p.auth("tsp-a").status == "OK"

    r = p.m3("tsp-a", mode="seq")
    assert r.status == "OK" and r["index"] == "1", r
    assert r["code"] == code_of(p, 1)
    # Key 0 was skipped at the TSP: burned, never usable again.
    assert used(tb, p.chip_id) == [(0, "burned"), (1, "m3")], used(tb, p.chip_id)
    assert keypos(tb, p.chip_id) == 2
    assert session(tb, p)[:2] == (p.chip_id, 1)
    assert tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq=0", (p.vin,)) == 1
    assert destroyed(p) == [0, 1]
    assert all(key is None for i, _, key, d in p.keys() if d)

    r = p.m3("tsp-a", mode="seq")
    assert r.status == "OK" and r["index"] == "2", r
    # Jumping ahead burns the keys in between.
    r = p.m3("tsp-a", mode="seq", index=6)
    assert r.status == "OK" and r["index"] == "6", r
    assert used(tb, p.chip_id) == [(0, "burned"), (1, "m3"), (2, "m3"), (3, "burned"),
                                   (4, "burned"), (5, "burned"), (6, "m3")]
    assert keypos(tb, p.chip_id) == 7
    assert session(tb, p)[1] == 6

    # A key below the draw position (burned at the TSP, still intact at the
    # probe) is refused.
    refused(tb, p, "KEY_REUSED", mode="seq", index=4)
    # The same key twice: the first M3 keeps the key at the probe.
    r = p.m3("tsp-a", mode="seq", index=7, keep_key=True)
    assert r.status == "OK" and r["index"] == "7", r
    refused(tb, p, "KEY_REUSED", mode="seq", index=7)
    # Tampering: the TSP cannot unwrap K1 or open D1; nothing changes.
    refused(tb, p, "DECRYPT_FAILED", mode="seq", index=8, tamper="cek")
    refused(tb, p, "DECRYPT_FAILED", mode="seq", index=9, tamper="g1")
    # The vehicle destroyed keys 8 and 9 with the tampered M3s; the TSP
    # burns them when key 10 arrives.
    r = p.m3("tsp-a", mode="seq", index=10)
    assert r.status == "OK" and r["index"] == "10", r
    assert used(tb, p.chip_id)[7:] == [(7, "m3"), (8, "burned"), (9, "burned"), (10, "m3")]
    assert keypos(tb, p.chip_id) == 11
    assert tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq=0", (p.vin,)) == 5
    r = p.telemetry("tsp-a", 5)
    assert r.status == "OK" and r["acked"] == "5", r


@testbed(tsps=TSPS)
def test_m3_arbitrary(tb):
    p = authenticated_probe(tb, 16)
    r = p.m3("tsp-a", mode="arb", index=9, keep_key=True)
    assert r.status == "OK" and r["code"] == code_of(p, 9), r
    # Arbitrary mode: a lower key is fine, no keys are burned.
    r = p.m3("tsp-a", mode="arb", index=3)
    assert r.status == "OK", r
    r = p.m3("tsp-a", mode="arb", code=code_of(p, 12))
    assert r.status == "OK", r
    assert used(tb, p.chip_id) == [(3, "m3"), (9, "m3"), (12, "m3")], used(tb, p.chip_id)
    assert session(tb, p)[1] == 12
    # Reusing a code is refused.
    refused(tb, p, "KEY_REUSED", mode="arb", code=code_of(p, 9))
    refused(tb, p, "DECRYPT_FAILED", mode="arb", index=5, tamper="cek")
    refused(tb, p, "DECRYPT_FAILED", mode="arb", index=6, tamper="g1")
    assert used(tb, p.chip_id) == [(3, "m3"), (9, "m3"), (12, "m3")]
    r = p.telemetry("tsp-a", 3)
    assert r.status == "OK" and r["acked"] == "3", r


@testbed(tsps=TSPS)
def test_m3_unknown_or_unregistered(tb):
    authenticated_probe(tb, 8)
    # A vehicle the TSP never authenticated (a second, registered probe).
    q = enrolled_probe(tb, TSPS, m=8)
    refused(tb, q, "AUTH_REQUIRED", mode="seq")
    refused(tb, q, "AUTH_REQUIRED", mode="arb", index=3)
    assert tb.count("tsp-a", "used_keys") == 0
    assert tb.count("tsp-a", "sessions") == 0


@testbed(tsps=TSPS)
def test_telemetry_thousand_messages(tb):
    p = authenticated_probe(tb, 8)
    assert p.m3("tsp-a").status == "OK"
    r = p.telemetry("tsp-a", 1000, replay_last=True, wait_ms=5000)
    assert r.status == "OK", r
    assert r["sent"] == "1000" and r["acked"] == "1000", r
    assert r["replay"] == "refused", r
    rows = tb.query("tsp-a", "SELECT seq FROM telemetry WHERE vehicle_id=? AND seq>0 "
                    "ORDER BY seq", (p.vin,))
    assert [s for s, in rows] == list(range(1, 1001)), "telemetry rows: %d" % len(rows)
    assert tb.count("tsp-a", "telemetry", "vehicle_id=? AND tsp_id='tsp-a'", (p.vin,)) == 1001
    assert session(tb, p)[2] == 1000
    tb.wait_log("tsp-a", r"replay|seq|stale|duplicate")
    # The session goes on after the replay.
    r = p.telemetry("tsp-a", 10)
    assert r.status == "OK" and r["acked"] == "10", r
    assert tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq>0", (p.vin,)) == 1010


@testbed(tsps=TSPS)
def test_acknowledged_telemetry_survives_crash(tb):
    """Telemetry is acknowledged only after it is stored: a kill -9 of the
    TSP right after the acks loses none of it, and the session continues."""
    p = authenticated_probe(tb, 8)
    assert p.m3("tsp-a").status == "OK"
    r = p.telemetry("tsp-a", 200)
    assert r["acked"] == "200", r
    tb.kill("tsp-a")
    assert tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq>0", (p.vin,)) == 200
    tb.start("tsp-a")
    assert session(tb, p)[2] == 200
    r = p.telemetry("tsp-a", 5)
    assert r.status == "OK" and r["acked"] == "5", r
    assert tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq>0", (p.vin,)) == 205
