"""schedd's key reserves (PROTOCOL section 7: keys held ahead of need)
with real daemons on loopback: qkdd, schedd, tspd per region, fillerd,
registrard and qprobe as the vehicle.

- The KME's pools drained (links at rate 0, the stored keys taken): the
  handovers go on with keys schedd fetched before, then, once the
  reserves are empty, fail with the KME's reason and the vehicle
  re-authenticates; schedd logs it and its /status and /metrics show it.
  When the pools fill again the reserves refill and handovers succeed.
- An eavesdropper on TSPB's link: keys distilled before the attack carry
  the handovers until they are spent; then the QBER's 503 ends them.
- key_reserve 0 asks the KME for every key; a reload grows and shrinks
  the reserves at once.
"""

import time

from harness import enrolled_probe, metric, testbed, wait_until
from test_handover import (EAST_EDGE_A, LOOK_AHEAD, assert_key_positions, auth_via,
                           offer, probe_session, sched_rows)
from test_ops_cloud import reload, set_conf
from test_schedd import Provision, handover, kme, need_qkd, new_hid
from test_schedd import start as start_sched_qkd

# tsp-b's telemetry just inside its west edge, heading west into tsp-a.
WEST_EDGE_B = "30.05,120.101"
FAST_LINKS = ["sched tsp-a rate 200000 pool 60", "sched tsp-b rate 200000 pool 60"]


def clouds(tb, key_reserve):
    """qkdd with fast links to both TSPs, schedd holding key_reserve keys
    for each, the TSPs with handovers on, fillerd and registrard."""
    need_qkd()
    tb.start_qkd(links=FAST_LINKS)
    tb.start_sched(handover_timeout="30s", key_reserve=key_reserve)
    for t in tb.tsps:
        tb.start_tsp(t, look_ahead=LOOK_AHEAD, handover_timeout="30s")
    tb.start_filler()
    tb.start_registrar()


def reserves(tb):
    return tb.status("sched")["key_reserves"]


def reserve_full(tb, n):
    wait_until(lambda: all(r["keys"] == n for r in reserves(tb).values()),
               timeout=30, what="%d keys in every reserve of schedd" % n)


def set_link(tb, slave, **settings):
    st, js = kme(tb, "operator", "POST", "/admin/v1/links/sched/%s" % slave, settings)
    assert st == 200, (st, js)


def stored(tb, slave):
    st, js = kme(tb, "sched", "GET", "/api/v1/keys/%s/status" % slave)
    assert st == 200, (st, js)
    return js["stored_key_count"]


def drain(tb, slave):
    """Stop the link to slave and take every key its pool holds, as the
    scheduler's SAE but not through schedd."""
    set_link(tb, slave, rate=0)
    time.sleep(0.3)
    while stored(tb, slave) > 0:
        st, js = kme(tb, "sched", "POST", "/api/v1/keys/%s/enc_keys" % slave,
                     {"number": min(stored(tb, slave), 128)})
        assert st == 200, (st, js)
    assert stored(tb, slave) == 0


def to_b(p):
    r = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b")
    assert r["ready"] == "tsp-b", r


def to_a(p):
    r = offer(p, "tsp-b", WEST_EDGE_B, 270, "tsp-a")
    assert r["ready"] == "tsp-a", r


def issued_before(tb, key_ids, when_ms):
    """Each key was reserved at the KME before when_ms and delivered to
    its TSP once."""
    for kid in key_ids:
        rows = tb.query("qkd", "SELECT enc_ms FROM delivered WHERE key_id=?", (kid,))
        assert len(rows) == 1 and rows[0][0] < when_ms, (kid, rows, when_ms)


@testbed(tsps=["tsp-a", "tsp-b"])
def test_reserve_carries_handovers_while_the_kme_is_empty(tb):
    """key_reserve 3, both pools drained: three handovers (A->B, B->A,
    A->B) succeed with keys fetched before, without a KME call of
    schedd's; the fourth (B->A) fails with the KME's 503 and the vehicle
    runs F3 at A.  With the links running again the reserves refill and
    the next handover succeeds."""
    clouds(tb, 3)
    reserve_full(tb, 3)
    p = enrolled_probe(tb, m=32)
    probe_session(tb, "tsp-a", p)
    for slave in ("tsp-a", "tsp-b"):
        drain(tb, slave)
    drained_ms = int(time.time() * 1000)
    fetched = {t: r["fetched"] for t, r in reserves(tb).items()}

    to_b(p)
    probe_session(tb, "tsp-b", p, f3=False)
    to_a(p)
    probe_session(tb, "tsp-a", p, f3=False)
    to_b(p)
    probe_session(tb, "tsp-b", p, f3=False)
    assert auth_via(tb, "tsp-b", p.vin) == [("handover",)]
    done = sched_rows(tb)
    assert [r[2] for r in done] == ["done"] * 3, done
    keys = [k for r in tb.query("sched", "SELECT ck1_key_id, ck2_key_id FROM handovers")
            for k in r]
    assert len(set(keys)) == 6, keys
    issued_before(tb, keys, drained_ms)
    for t, r in reserves(tb).items():
        assert (r["keys"], r["served"], r["misses"], r["fetched"]) == \
            (0, 3, 0, fetched[t]), (t, r)
    # The refills below the low mark found the KME empty.
    for t in ("tsp-a", "tsp-b"):
        tb.wait_log("sched", r"key reserve for %s: \d+ keys? not served: KME answered "
                    r"503: not enough keys" % t)

    # Nothing left anywhere: the fourth handover falls back to F3 at A.
    r = offer(p, "tsp-b", WEST_EDGE_B, 270, "tsp-a", wait_ms=3000)
    assert (r["m6"], r["ready"]) == ("tsp-a", "none"), r
    failed = wait_until(lambda: [x for x in sched_rows(tb) if x[2] == "failed"],
                        what="the handover to fail")
    assert len(failed) == 1, failed
    assert failed[0][:2] == ("tsp-b", None), failed	# A1 names no target
    assert "no CK1 for tsp-b" in failed[0][3] and "503" in failed[0][3], failed
    tb.wait_log("sched", r"handover %s: a1 -> failed: no CK1 for tsp-b: KME answered "
                r"503" % failed[0][4])
    assert p.m3("tsp-a").status == "AUTH_REQUIRED"
    probe_session(tb, "tsp-a", p)
    assert auth_via(tb, "tsp-a", p.vin) == [("f3",)]
    st = tb.status("sched")
    assert st["key_reserve"] == 3 and st["handovers_failed"] == 1, st
    for t in ("tsp-a", "tsp-b"):
        r = st["key_reserves"][t]
        assert r["keys"] == 0 and r["kme_failures"] >= 2, (t, r)
        assert "503" in r["last_error"], (t, r)
    assert st["key_reserves"]["tsp-b"]["misses"] == 1, st
    m = tb.metrics("sched")
    assert metric(m, "qroam_handovers_total", result="ok") == 3
    assert metric(m, "qroam_handovers_total", result="failed") == 1
    for t in ("tsp-a", "tsp-b"):
        assert metric(m, "qroam_key_reserve_keys", tsp=t) == 0
        assert metric(m, "qroam_key_reserve_kme_failures_total", tsp=t) >= 2
    assert metric(m, "qroam_key_reserve_misses_total", tsp="tsp-b") == 1

    # The links run again: the reserves refill after their backoff.
    refills = {t: r["refills"] for t, r in reserves(tb).items()}
    for slave in ("tsp-a", "tsp-b"):
        set_link(tb, slave, rate=200000)
    reserve_full(tb, 3)
    for t, r in reserves(tb).items():
        assert r["refills"] > refills[t] and not r["backoff"], (t, r)
        tb.wait_log("sched", r"key reserve for %s: the KME serves keys again" % t)
    to_b(p)
    probe_session(tb, "tsp-b", p, f3=False)
    assert auth_via(tb, "tsp-b", p.vin) == [("handover",)]
    assert [r[2] for r in sched_rows(tb)] == ["done"] * 3 + ["failed", "done"]
    assert_key_positions(tb, p.store, p.vin, tb.tsps, last="tsp-b")


@testbed(tsps=["tsp-a", "tsp-b"])
def test_reserve_outlasts_an_eavesdropper_until_spent(tb):
    """key_reserve 2; intercept-resend on the sched-tsp-b link aborts it.
    Keys distilled before the attack carry two handovers; the reserve's
    refill gets the QBER's 503; the third handover, needing a CK2 for
    tsp-b, fails with it and the vehicle re-authenticates at B."""
    clouds(tb, 2)
    reserve_full(tb, 2)
    set_link(tb, "tsp-b", eavesdropper=1.0)
    wait_until(lambda: kme(tb, "operator", "GET", "/admin/v1/links/sched/tsp-b")[1]
               ["aborted"], what="the link to abort")
    p = enrolled_probe(tb, m=32)
    probe_session(tb, "tsp-a", p)
    to_b(p)
    probe_session(tb, "tsp-b", p, f3=False)
    to_a(p)
    probe_session(tb, "tsp-a", p, f3=False)
    tb.wait_log("sched", r"key reserve for tsp-b: \d+ keys? not served: KME answered "
                r"503: QBER")
    r = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b", wait_ms=3000)
    assert (r["m6"], r["ready"]) == ("tsp-b", "none"), r
    failed = wait_until(lambda: [x for x in sched_rows(tb) if x[2] == "failed"],
                        what="the handover to fail")
    assert "no CK2 for tsp-b" in failed[0][3] and "QBER" in failed[0][3], failed
    assert [x[2] for x in sched_rows(tb)] == ["done", "done", "failed"]
    assert p.m3("tsp-b").status == "AUTH_REQUIRED"
    probe_session(tb, "tsp-b", p)
    assert auth_via(tb, "tsp-b", p.vin) == [("f3",)]
    assert "QBER" in reserves(tb)["tsp-b"]["last_error"], reserves(tb)
    assert_key_positions(tb, p.store, p.vin, tb.tsps, last="tsp-b")


@testbed(tsps=["tsp-a", "tsp-b"])
def test_reserve_off_and_reload(tb):
    """key_reserve 0 holds nothing and asks the KME for each CK of a
    handover; SIGHUP with key_reserve 4 fills every reserve at once and
    the next handover takes its keys from them; key_reserve 1 wipes the
    keys beyond it."""
    start_sched_qkd(tb, key_reserve=0)
    prov = Provision(tb, "tsp-b")
    try:
        assert all(r["keys"] == 0 for r in reserves(tb).values())
        handover(tb, new_hid(), prov)
        for t, r in reserves(tb).items():
            assert (r["keys"], r["misses"], r["refills"], r["fetched"], r["served"]) == \
                (0, 1, 1, 1, 1), (t, r)
        set_conf(tb, "sched", key_reserve=4)
        log, _ = reload(tb, "sched", r"reloaded: ")
        assert "key_reserve 4" in log, log
        reserve_full(tb, 4)
        handover(tb, new_hid(), prov)
        # One key each taken, 3 left: above the low mark, no refill.
        for t, r in reserves(tb).items():
            assert (r["keys"], r["misses"], r["served"]) == (3, 1, 2), (t, r)
        set_conf(tb, "sched", key_reserve=1)
        reload(tb, "sched", r"reloaded: .*key_reserve 1")
        for t, r in reserves(tb).items():
            assert r["keys"] == 1 and r["expired"] == 2, (t, r)
        assert tb.status("sched")["key_reserve"] == 1
    finally:
        prov.close()
