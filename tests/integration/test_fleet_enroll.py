"""A fleet's enrolment never blocks the fleet: the provisioning client
runs on vehicled's event loop, so a filler stopped dead (SIGSTOP: its
port still accepts, nothing answers) or a registrar that is down delays
only the vehicles that need it, while the enrolled ones authenticate and
send telemetry."""

import signal

from harness import metric, testbed, vin, wait_until

# Longer than any wait of these tests: a provisioning client that blocked
# the loop until its timeout would stall the whole fleet for all of it.
STUCK = "600s"


def events(tb, store, kind):
    return tb.count(store, "events", "kind=?", (kind,))


def sessions_since(tb, store, mark):
    """Sessions a vehicle opened after the journal entry mark."""
    return tb.count(store, "events", "kind='session_open' AND id>?", (mark,))


def last_event(tb, store):
    return tb.scalar(store, "SELECT coalesce(max(id), 0) FROM events") or 0


def fleet_opts(**extra):
    opts = dict(fill_m=16, telemetry_interval="100ms", retransmit="500ms",
                provision_timeout=STUCK)
    opts.update(extra)
    return opts


@testbed(tsps=["tsp-a"])
def test_stopped_filler_does_not_stall_the_fleet(tb):
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    base = vin(940)
    # Three vehicles enrolled first: same VINs and stores in a fleet of 6.
    tb.start_vehicle(base, "tsp-a", fleet=3, **fleet_opts())
    old = tb.fleet(base, 3)
    for _, s in old:
        wait_until(lambda s=s: events(tb, s, "session_open") >= 1,
                   what="first session in %s" % s)
    tb.stop(base)
    marks = {s: last_event(tb, s) for _, s in old}

    tb.signal("filler", signal.SIGSTOP)
    try:
        tb.start_vehicle(base, "tsp-a", fleet=6, **fleet_opts())
        both = tb.fleet(base, 6)
        assert [s for _, s in both[:3]] == [s for _, s in old]
        new = both[3:]
        # The enrolled half is served while the other half waits for the
        # filler, which holds their fill requests without a word.
        for v, s in old:
            wait_until(lambda s=s: sessions_since(tb, s, marks[s]) >= 1,
                       what="a session of %s while the filler is stopped" % v)
        tel = {v: tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq>0", (v,))
               for v, _ in old}
        for v, _ in old:
            wait_until(lambda v=v: tb.count("tsp-a", "telemetry",
                                            "vehicle_id=? AND seq>0", (v,)) >= tel[v] + 5,
                       what="telemetry of %s while the filler is stopped" % v)
        for v, s in new:
            assert tb.count(s, "chip") == 0, v
            assert events(tb, s, "session_open") == 0, v
        tb.assert_running("filler")
    finally:
        tb.signal("filler", signal.SIGCONT)
    # Once the filler runs again the waiting fills go through, on the
    # connection that waited: the rest of the fleet enrolls and is served.
    for v, s in new:
        wait_until(lambda s=s: events(tb, s, "session_open") >= 1,
                   what="a session of %s after the filler resumed" % v)
        assert tb.query(s, "SELECT vehicle_id FROM registration") == [(v,)]
    chips = {tb.scalar(s, "SELECT chip_id FROM chip") for _, s in both}
    assert len(chips) == 6
    tb.stop(base)
    assert tb.count("registrar", "registrations") == 6


@testbed(tsps=["tsp-a"])
def test_enrolment_shares_one_connection_per_server(tb):
    """A fleet enrolls over one mutual-TLS connection to the filler and one
    to the registrar, many requests in flight on each."""
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    base = vin(950)
    n = 12
    tb.start_vehicle(base, "tsp-a", fleet=n, **fleet_opts(provision_timeout="60s"))
    vehicles = tb.fleet(base, n)
    for v, s in vehicles:
        wait_until(lambda s=s: events(tb, s, "session_open") >= 1,
                   what="a session of %s" % v)
    tb.stop(base)
    assert tb.count("registrar", "registrations") == n
    assert tb.count("filler", "fills") == n
    # Every fill and registration of the fleet came on one connection to
    # each server (the admin endpoint is no listener of theirs).
    for who in ("filler", "registrar"):
        accepted = metric(tb.metrics(who), "qroam_connections_accepted_total")
        assert accepted == 1, (who, accepted)
