"""F8 without a Bye (PROTOCOL §6): a vehicle that authenticated and went
silent loses its authentication at the TSP after auth_idle; its next M3 is
refused with AUTH_REQUIRED and it authenticates again.  A vehicle whose
session keeps talking stays authenticated.  On both store backends."""

import time

from harness import Skip, enrolled_probe, start_provisioning, testbed
from test_ops_cloud import reload, set_conf

TSP = "tsp-a"
IDLE_S = 5


def auth_rows(tb, probe):
    return tb.count(TSP, "auth", "vehicle_id=?", (probe.vin,))


def expired_total(tb):
    return sum(v for (name, _), v in tb.metrics(TSP).items()
               if name == "qroam_auth_expired_total")


def idle_expiry(tb):
    start_provisioning(tb, [TSP], auth_idle="%ds" % IDLE_S)
    silent = enrolled_probe(tb, [TSP], m=16)
    talker = enrolled_probe(tb, [TSP], m=16)
    assert expired_total(tb) == 0
    # The silent one authenticates and its process ends: no Bye.
    assert silent.auth(TSP).status == "OK"
    assert auth_rows(tb, silent) == 1
    # The talker's session sends a record about every 0.3 s until the
    # silent one's row has been swept and twice auth_idle has passed; gap
    # bounds the time between two uses the TSP saw (from the start of one
    # command to the end of the next).
    began = prev = time.monotonic()
    assert talker.auth(TSP).status == "OK"
    r = talker.m3(TSP, mode="seq")
    assert r.status == "OK", r
    gap = 0.0
    while auth_rows(tb, silent) != 0 or time.monotonic() - began < 2 * IDLE_S:
        assert time.monotonic() - began < 120, "the idle row was never swept"
        start = time.monotonic()
        r = talker.telemetry(TSP, 1)
        assert r.status == "OK", r
        gap, prev = max(gap, time.monotonic() - prev), start
        time.sleep(0.3)
    talker_rows, stall = auth_rows(tb, talker), time.monotonic() - prev
    assert expired_total(tb) >= 1
    tb.wait_log(TSP, "idle authentications expired")
    # From here nothing may depend on the machine's speed: a long
    # auth_idle, taken over by a reload.
    set_conf(tb, TSP, auth_idle="1h")
    reload(tb, TSP, r"reloaded: ")
    # The silent vehicle must authenticate again.
    r = silent.m3(TSP, mode="seq")
    assert r.status == "AUTH_REQUIRED", r
    assert silent.auth(TSP).status == "OK"
    r = silent.m3(TSP, mode="seq")
    assert r.status == "OK", r
    # The talker never went idle for auth_idle: still authenticated.
    if max(gap, stall) >= IDLE_S * 0.8:
        raise Skip("the machine left %.1fs between two records"
                   % max(gap, stall))
    assert talker_rows == 1
    r = talker.m3(TSP, mode="seq")
    assert r.status == "OK", r
    tb.assert_running(TSP)


@testbed(tsps=[TSP])
def test_auth_idle_sqlite(tb):
    idle_expiry(tb)


@testbed(tsps=[TSP], pg=True)
def test_auth_idle_postgresql(tb):
    idle_expiry(tb)
