"""Invariant 5: no chip key, Prv or K1 appears in any log, after a full
scenario run with debug logging on every daemon."""

import signal

from harness import enrolled_probe, testbed, vin, wait_until

TSPS = ["tsp-a", "tsp-b"]
V = vin(900)


@testbed(tsps=TSPS, debug=True)
def test_no_secrets_in_logs(tb):
    for t in TSPS:
        tb.start_tsp(t, auth_fail="reply")
    tb.start_filler()
    tb.start_registrar()
    tb.start_vehicle(V, "tsp-a", fill_m=8, session_rekey=3, telemetry_interval="100ms",
                     retransmit="300ms", refill=True, operator_cert=tb.cert("operator"),
                     operator_key=tb.key("operator"))
    p = enrolled_probe(tb, TSPS, m=8)
    assert p.auth("tsp-a").status == "OK"
    assert p.auth("tsp-b").status == "OK"
    assert p.m3("tsp-a").status == "OK"
    assert p.telemetry("tsp-a", 20)["acked"] == "20"
    assert p.m3("tsp-b", mode="arb", index=5).status == "OK"
    assert p.telemetry("tsp-b", 5)["acked"] == "5"
    # Refusals log too: a tampered M3 and a stale M4.
    assert p.m3("tsp-a", tamper="cek").status == "DECRYPT_FAILED"
    assert p.auth("tsp-a", time_offset=-600000).status == "STALE"
    # The vehicle runs through its chip, refills and re-registers.
    wait_until(lambda: tb.count(V, "events", "kind='reregister'") >= 1,
               what="vehicled to refill and re-register", timeout=60)
    wait_until(lambda: tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq>0", (V,)) >= 10,
               what="vehicle telemetry")
    tb.signal(V, signal.SIGUSR1)
    wait_until(lambda: tb.count(V, "events", "kind='power_on'") >= 2,
               what="power cycle of the vehicle")
    for name in list(tb.daemons):
        tb.stop(name)

    leaks = tb.secret_leaks()
    labels = " ".join(tb.secrets.items.values())
    for what in ("chip key", "Prv", "K1"):
        assert what in labels, "no %s collected: the check would be vacuous" % what
    assert not leaks, "secrets in logs: %r" % leaks[:10]
    total = sum(len(tb.log(n)) for n in tb.daemons)
    assert total > 0
