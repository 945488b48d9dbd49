"""The key source towards a KME that speaks only TLS 1.2 (PROTOCOL §7):
with `kme_tls_min 1.2` schedd fills its key reserves from it over TLS 1.2;
with the default (1.3) the handshake is refused and no key comes."""

from harness import testbed, wait_until
from kme_tls12 import Kme12

TSP = "tsp-a"


def metric(tb, name):
    return sum(v for (n, _), v in tb.metrics("sched").items() if n == name)


@testbed(tsps=[TSP])
def test_kme_tls12_needs_the_setting(tb):
    tb.add_endpoints("sched", "qkd")
    kme = Kme12(tb.port["qkd"], tb.cert("qkd"), tb.key("qkd"), tb.ca).start()
    try:
        tb.start_sched(kme_tls_min="1.2", key_reserve=4)
        wait_until(lambda: metric(tb, "qroam_key_reserve_fetched_total") >= 4,
                   what="schedd to fill its reserve from the TLS 1.2 KME")
        with kme.lock:
            reqs = list(kme.requests)
        assert reqs and all(r[2] == "sched" and r[3] == "TLSv1.2" for r in reqs), reqs
        assert any(r[0] == "POST" and r[4] == TSP for r in reqs), reqs

        # The default: TLS 1.3 at least, so this KME is refused.
        tb.stop("sched")
        tb.daemons["sched"].opts.pop("kme_tls_min")
        with kme.lock:
            kme.requests.clear()
            kme.refused.clear()
        tb.start_sched()
        wait_until(lambda: metric(tb, "qroam_key_reserve_kme_failures_total") >= 1,
                   what="schedd's key source to fail against the TLS 1.2 KME")
        with kme.lock:
            assert kme.refused, "no handshake was refused"
            assert not kme.requests, kme.requests
        assert metric(tb, "qroam_key_reserve_fetched_total") == 0
        tb.assert_running("sched")
    finally:
        kme.close()
