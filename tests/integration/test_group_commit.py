"""F5 group commit: pipelined telemetry of several sessions shares one
transaction per pass of the TSP's event loop, every message is stored and
acknowledged in order, and no acknowledgement leaves before its commit."""

import threading

from harness import enrolled_probe, start_provisioning, testbed, vin, wait_until

TSPS = ["tsp-a"]


def session_probe(tb, n):
    p = enrolled_probe(tb, TSPS, m=8, vehicle_id=vin(n))
    assert p.auth("tsp-a").status == "OK"
    assert p.m3("tsp-a").status == "OK"
    return p


def stored_seqs(tb, p):
    return [s for s, in tb.query("tsp-a", "SELECT seq FROM telemetry WHERE vehicle_id=? "
                                 "AND seq>0 ORDER BY seq", (p.vin,))]


def concurrently(jobs):
    """Run the callables at once; their results in order."""
    results = [None] * len(jobs)

    def run(i):
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@testbed(tsps=TSPS)
def test_pipelined_sessions_all_stored_and_acknowledged(tb):
    start_provisioning(tb, TSPS)
    probes = [session_probe(tb, 810), session_probe(tb, 811)]
    results = concurrently([lambda p=p: p.telemetry("tsp-a", 1000, wait_ms=20000)
                            for p in probes])
    for p, r in zip(probes, results):
        assert r.status == "OK" and r["acked"] == "1000", (p.vin, r)
        assert stored_seqs(tb, p) == list(range(1, 1001)), p.vin
        rx = tb.scalar("tsp-a", "SELECT rx_seq FROM sessions WHERE vehicle_id=?", (p.vin,))
        assert rx == 1000, (p.vin, rx)
    # Both sessions go on, and a replay is still refused.
    for p in probes:
        r = p.telemetry("tsp-a", 3, replay_last=True)
        assert r["acked"] == "3" and r["replay"] == "refused", (p.vin, r)
        assert stored_seqs(tb, p) == list(range(1, 1004)), p.vin
    tb.assert_running("tsp-a")


@testbed(tsps=TSPS)
def test_acknowledged_means_stored_across_kill9(tb):
    """kill -9 of the TSP while two sessions pipeline telemetry: every
    message a stored_seq covered is in the store, which holds each
    session's messages without a gap, and both sessions continue after the
    restart.  (Answers come first: what was answered and not yet covered
    may be lost, and a vehicle sends it again.)"""
    start_provisioning(tb, TSPS)
    probes = [session_probe(tb, 812), session_probe(tb, 813)]
    n = 20000
    jobs = [lambda p=p: p.telemetry("tsp-a", n, wait_ms=30000) for p in probes]
    results = [None, None]

    def drive():
        results[:] = concurrently(jobs)

    t = threading.Thread(target=drive)
    t.start()
    wait_until(lambda: tb.count("tsp-a", "telemetry", "seq>0") >= 400, interval=0.005,
               what="telemetry to be flowing")
    tb.kill("tsp-a")
    t.join()
    for p, r in zip(probes, results):
        assert r is not None and r.status == "OK", (p.vin, r)
        covered = int(r["stored"])
        seqs = stored_seqs(tb, p)
        assert seqs == list(range(1, len(seqs) + 1)), "%s: gap in the stored seqs" % p.vin
        assert covered <= len(seqs), "%s: %d covered, %d stored" % (p.vin, covered, len(seqs))
        assert len(seqs) < n, "%s: all %d stored before the kill" % (p.vin, n)
    tb.start("tsp-a")
    for p in probes:
        before = len(stored_seqs(tb, p))
        rx = tb.scalar("tsp-a", "SELECT rx_seq FROM sessions WHERE vehicle_id=?", (p.vin,))
        assert rx == before, (p.vin, rx, before)
        r = p.telemetry("tsp-a", 5)
        assert r.status == "OK" and r["acked"] == "5", (p.vin, r)
        seqs = stored_seqs(tb, p)
        assert len(seqs) == before + 5 and seqs[-1] == n + 5, (p.vin, seqs[-6:])
