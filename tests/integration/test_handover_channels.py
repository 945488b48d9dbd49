"""The handover's long-lived cloud channels (common/chan.c): every
exchange of F6 (A1, A2, A3, KeyReply, M7, M8, M8Ack) is a request on one
mutual-TLS channel per pair of daemons, multiplexed by request id.

- Many vehicles hand over from A to B at the same time: every handover
  completes, and neither schedd nor tsp-b accepts a single connection
  while they run, nor does tsp-a open one.
- tsp-b killed while handovers wait on the channels to it: exactly those
  handovers fail with the lost channel as their reason and the vehicles
  re-authenticate at B; the channels come back by themselves and the next
  handovers, again many at once, complete.
"""
import signal
import threading

from harness import enrolled_probe, testbed, wait_until
from test_handover import (EAST_EDGE_A, ho_rows, offer, probe_session,
                           sched_rows, start_clouds)

ACCEPTED = ("qroam_connections_accepted_total", ())


def channel_connects(tb, name, peer):
    """Connects completed by name's channel to peer."""
    return tb.metrics(name).get(("qroam_channel_connects_total", (("peer", peer),)), 0)


def accepted(tb, name):
    return tb.metrics(name).get(ACCEPTED, 0)


def offers_at_once(probes, wait_ms=20000):
    """Each probe's telemetry at A's east edge, answered with M6 for
    tsp-b, all at the same time: {vin: qprobe's answer}."""
    out = {}

    def one(p):
        out[p.vin] = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b", wait_ms=wait_ms)
    threads = [threading.Thread(target=one, args=(p,)) for p in probes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(out) == len(probes), sorted(out)
    return out


def ready_probes(tb, n):
    """n probes registered everywhere, each in a session with tsp-a."""
    probes = [enrolled_probe(tb, m=16) for _ in range(n)]
    for p in probes:
        probe_session(tb, "tsp-a", p)
    return probes


def warm_up(tb):
    """One handover, so that every channel is open (schedd's to tsp-b is
    made on the first forwarded A2, tsp-a's to tsp-b on the first M8)."""
    (p,) = ready_probes(tb, 1)
    r = offer(p, "tsp-a", EAST_EDGE_A, 90, "tsp-b")
    assert r["ready"] == "tsp-b", r


@testbed(tsps=["tsp-a", "tsp-b"])
def test_parallel_handovers_share_the_channels(tb):
    """12 vehicles cross from A to B at once: all 12 handovers complete,
    and the TLS connections accepted by schedd and tsp-b and the connects
    of tsp-a's channels stay where they were before."""
    start_clouds(tb)
    warm_up(tb)
    probes = ready_probes(tb, 12)
    before = {"sched": accepted(tb, "sched"), "tsp-b": accepted(tb, "tsp-b"),
              "tsp-a sched": channel_connects(tb, "tsp-a", "sched"),
              "tsp-a tsp-b": channel_connects(tb, "tsp-a", "tsp-b"),
              "sched tsp-b": channel_connects(tb, "sched", "tsp-b")}
    assert before["tsp-a sched"] == before["tsp-a tsp-b"] == before["sched tsp-b"] == 1, before

    results = offers_at_once(probes)
    assert {r["ready"] for r in results.values()} == {"tsp-b"}, results
    for p in probes:
        assert [r[2] for r in ho_rows(tb, "tsp-a", p.vin) if r[0] == "out"] == ["done"]
    wait_until(lambda: sum(1 for r in sched_rows(tb) if r[2] == "done") == 13,
               what="schedd to record 13 handovers done")

    after = {"sched": accepted(tb, "sched"), "tsp-b": accepted(tb, "tsp-b"),
             "tsp-a sched": channel_connects(tb, "tsp-a", "sched"),
             "tsp-a tsp-b": channel_connects(tb, "tsp-a", "tsp-b"),
             "sched tsp-b": channel_connects(tb, "sched", "tsp-b")}
    assert after == before, (before, after)
    for p in probes:
        r = p.m3("tsp-b")
        assert r.status == "OK", r


@testbed(tsps=["tsp-a", "tsp-b"])
def test_lost_channel_fails_only_its_handovers(tb):
    """tsp-b is frozen while four handovers wait for it (their A2 sits on
    schedd's channel to tsp-b), then killed: those four fail with the lost
    channel as their reason, the one done before stays done, and each of
    the four vehicles re-authenticates at B.  After tsp-b restarts, the
    channels of schedd and tsp-a to it come back by themselves and the
    next eight handovers, run at once, complete."""
    start_clouds(tb)
    warm_up(tb)
    held = ready_probes(tb, 4)
    tb.signal("tsp-b", signal.SIGSTOP)
    try:
        results = offers_at_once(held, wait_ms=3000)
        assert {r["ready"] for r in results.values()} == {"none"}, results
        wait_until(lambda: sum(1 for r in sched_rows(tb) if r[2] == "a2") == 4,
                   what="schedd to hold four handovers after A2")
        tb.kill("tsp-b")
    finally:
        tb.signal("tsp-b", signal.SIGCONT)	# a no-op once it is killed
    for p in held:
        rows = wait_until(lambda: (lambda x: x if x and x[-1][2] == "failed" else None)(
            [r for r in ho_rows(tb, "tsp-a", p.vin) if r[0] == "out"]),
            what="tsp-a to fail the handover of %s" % p.vin)
        assert len(rows) == 1, rows
        assert "access request not delivered to tsp-b: channel lost to tsp-b" in rows[0][3], rows
    states = [r[2] for r in sched_rows(tb)]
    assert states.count("done") == 1 and states.count("failed") == 4, states
    tb.wait_log("tsp-a", r"channel tsp-b: lost: ")
    tb.wait_log("sched", r"channel tsp-b: lost: ")

    tb.start("tsp-b")
    for p in held:
        r = p.m3("tsp-b")
        assert r.status == "AUTH_REQUIRED", r
        probe_session(tb, "tsp-b", p)
    nxt = ready_probes(tb, 8)
    results = offers_at_once(nxt)
    assert {r["ready"] for r in results.values()} == {"tsp-b"}, results
    assert channel_connects(tb, "sched", "tsp-b") == 2
    assert channel_connects(tb, "tsp-a", "tsp-b") == 2
    assert channel_connects(tb, "tsp-a", "sched") == 1
    for p in nxt:
        r = p.m3("tsp-b")
        assert r.status == "OK", r
