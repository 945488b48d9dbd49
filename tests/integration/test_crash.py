"""Invariant 1 across crashes: kill -9 of tspd and of vehicled at random
moments, many of them in the middle of session establishment, and of
tspd while M3s and M4s wait for their commit; no chip key or M4 nonce is
ever accepted twice and service resumes."""

import os
import random
import threading
import time

from harness import enrolled_probe, start_provisioning, testbed, vin, wait_until

V = vin(700)


def destroyed_count(tb):
    return tb.count(V, "chip_keys", "destroyed=1")


def flowing(tb, since_ms):
    """A session opened after since_ms and carrying telemetry."""
    rows = tb.query("tsp-a", "SELECT opened_ms FROM sessions WHERE vehicle_id=?", (V,))
    if not rows or rows[0][0] < since_ms:
        return False
    return tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq>0 AND received_ms>=?",
                    (V, since_ms)) >= 3


def check_keys(tb):
    """Every key the TSP used or burned is destroyed at the vehicle, each D1
    was stored once per key used, and no two sessions had the same key."""
    used = tb.query("tsp-a", "SELECT idx, how FROM used_keys")
    at_vehicle = dict((i, (k, d)) for i, k, d in tb.query(
        V, "SELECT idx, key, destroyed FROM chip_keys"))
    for idx, how in used:
        key, d = at_vehicle[idx]
        assert d == 1 and key is None, \
            "key %d is %s at the TSP but not destroyed at the vehicle" % (idx, how)
    for idx, (key, d) in at_vehicle.items():
        assert (key is None) == (d == 1), "key %d: destroyed=%s but key %s" % (
            idx, d, "kept" if key else "gone")
    m3 = [i for i, how in used if how == "m3"]
    d1 = tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq=0", (V,))
    assert d1 == len(m3), "%d D1 records for %d keys used by M3" % (d1, len(m3))
    by_index = {}
    for (vid, opened), idx in tb.sessions_seen.items():
        if vid != V:
            continue
        assert idx not in by_index or by_index[idx] == opened, \
            "key index %d served two sessions (opened %s and %s)" % (idx, by_index[idx], opened)
        by_index[idx] = opened
        assert idx in m3, "session on key %d, which used_keys does not record" % idx
    return len(m3)


@testbed(tsps=["tsp-a"])
def test_kill9_during_session_establishment(tb):
    seed = int(os.environ.get("QROAM_TEST_SEED", random.randrange(1 << 30)))
    try:
        crash_rounds(tb, random.Random(seed))
    except AssertionError as e:
        raise AssertionError("%s [rerun with QROAM_TEST_SEED=%d]" % (e, seed)) from e


def crash_rounds(tb, rng):
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    tb.start_vehicle(V, "tsp-a", retransmit="300ms", telemetry_interval="100ms",
                     session_rekey=2, fill_m=256, draw="sequential", refill=False)
    wait_until(lambda: flowing(tb, 0), what="first session with telemetry")

    victims = ["tsp-a", V] * 4
    rng.shuffle(victims)
    for n, victim in enumerate(victims):
        if n % 2 == 0:
            # Right after the vehicle destroyed a key: its M3 is in flight or
            # about to be sent, the TSP may or may not have committed it.
            base = destroyed_count(tb)
            wait_until(lambda: destroyed_count(tb) > base, interval=0.005,
                       what="the vehicle to draw a key")
            time.sleep(rng.uniform(0, 0.02))
        else:
            time.sleep(rng.uniform(0.05, 1.0))
        tb.kill(victim)
        restart_ms = int(time.time() * 1000)
        time.sleep(rng.uniform(0, 0.3))
        tb.start(victim)
        tb.assert_running()
        wait_until(lambda: flowing(tb, restart_ms),
                   what="service to resume after kill -9 #%d of %s" % (n + 1, victim))
        tb.sample_secrets(quick=True)

    tb.stop(V)
    tb.stop("tsp-a")
    used = check_keys(tb)
    assert used >= len(victims), "only %d sessions in %d crash rounds" % (used, len(victims))
    powered = tb.count(V, "events", "kind='power_on'")
    assert powered == 1 + victims.count(V), "power_on events: %d" % powered


@testbed(tsps=["tsp-a"])
def test_kill9_with_m3_and_m4_waiting_for_their_commit(tb):
    """M4s and M3s of several vehicles at once, tspd killed among them: the
    answers wait for their group's sync, so some were committed and not
    answered, some answered, some neither.  After the restart the same
    bytes sent again are refused wherever the first copy was accepted,
    and no key or nonce is ever accepted twice."""
    start_provisioning(tb, ["tsp-a"], auth_fail="reply")
    probes = [enrolled_probe(tb, ["tsp-a"], m=8, vehicle_id=vin(720 + i)) for i in range(6)]
    for p in probes:
        assert p.auth("tsp-a").status == "OK"
    first = {}

    def run(p):
        m4 = tb.path("frames", "m4-" + p.vin)
        m3 = tb.path("frames", "m3-" + p.vin)
        r4 = p.auth("tsp-a", save=m4, wait_ms=1500, expect_rc=None)
        r3 = p.m3("tsp-a", save=m3, wait_ms=1500, expect_rc=None)
        first[p.vin] = ((m4, r4.status), (m3, r3.status))

    threads = [threading.Thread(target=run, args=(p,)) for p in probes]
    for t in threads:
        t.start()
    time.sleep(random.uniform(0.05, 0.4))
    tb.kill("tsp-a")
    for t in threads:
        t.join()
    tb.start("tsp-a")
    accepted = 0
    for p in probes:
        for path, status in first[p.vin]:
            if not os.path.exists(path):
                continue
            again = [p.send("tsp-a", path, wait_ms=3000, expect_rc=None).status
                     for _ in range(2)]
            if status == "OK":
                assert "OK" not in again, (path, status, again)
            assert again[1] != "OK", (path, status, again)
            accepted += (status == "OK") + again.count("OK")
    assert accepted > 0
    # Each nonce and key at most once in the store (primary keys), and
    # each key used by an M3 left exactly one D1.
    m3_used = tb.count("tsp-a", "used_keys", "how='m3'")
    assert tb.count("tsp-a", "telemetry", "seq=0") == m3_used
    tb.assert_running("tsp-a")
