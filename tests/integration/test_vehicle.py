"""The real vehicled against the real TSP: a drive in each draw mode with
session rekeying, and a power cycle (F8) that starts again at F3."""

import signal

from harness import testbed, vin, wait_until


def events(tb, v, kind):
    return tb.count(v, "events", "kind=?", (kind,))


def assert_keys_consistent(tb, v, tsp):
    """Every key the TSP used is destroyed on the chip; none used twice."""
    chip = tb.scalar(v, "SELECT chip_id FROM chip")
    used = tb.query(tsp, "SELECT idx FROM used_keys WHERE chip_id=? AND how='m3'", (chip,))
    used = [r[0] for r in used]
    assert len(used) == len(set(used))
    destroyed = {r[0] for r in tb.query(v, "SELECT idx FROM chip_keys WHERE destroyed=1")}
    assert set(used) <= destroyed, (used, destroyed)
    assert tb.scalar(v, "SELECT count(*) FROM chip_keys WHERE destroyed=1 "
                        "AND key IS NOT NULL") == 0


def drive(tb, v, mode):
    tb.start_vehicle(v, "tsp-a", draw=mode, fill_m=32, session_rekey=3,
                     telemetry_interval="100ms", retransmit="500ms")
    wait_until(lambda: events(tb, v, "session_open") >= 4,
               what="four sessions of %s" % v)
    wait_until(lambda: tb.count("tsp-a", "telemetry", "vehicle_id=? AND seq>0", (v,)) >= 9,
               what="telemetry of %s stored" % v)
    tb.stop(v)
    assert_keys_consistent(tb, v, "tsp-a")
    acked = tb.scalar(v, "SELECT value FROM counters WHERE name='telemetry_acked'")
    durable = tb.scalar(v, "SELECT value FROM counters WHERE name='telemetry_stored'")
    stored = tb.count("tsp-a", "telemetry", "vehicle_id=?", (v,))
    # Everything the TSP acknowledged as stored (stored_seq; the records of
    # the M3s too) is in its store.  An ack alone answers at once, before
    # the commit: a record acknowledged and not yet covered stays with the
    # vehicle to go again.
    assert stored >= durable > 0 and acked > 0, (stored, durable, acked)


@testbed(tsps=["tsp-a"])
def test_drive_sequential_and_arbitrary(tb):
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    seq, arb = vin(900), vin(901)
    drive(tb, seq, "sequential")
    drive(tb, arb, "arbitrary")
    chip = tb.scalar(seq, "SELECT chip_id FROM chip")
    assert tb.query("tsp-a", "SELECT DISTINCT how FROM used_keys WHERE chip_id=?",
                    (chip,)) == [("m3",)]
    # Sequential draws walk the sequence from the start.
    idx = [r[0] for r in tb.query("tsp-a", "SELECT idx FROM used_keys WHERE chip_id=? "
                                           "ORDER BY used_ms, idx", (chip,))]
    assert idx == list(range(len(idx))), idx
    arb_chip = tb.scalar(arb, "SELECT chip_id FROM chip")
    assert tb.count("tsp-a", "used_keys", "chip_id=?", (arb_chip,)) >= 4


@testbed(tsps=["tsp-a"])
def test_power_cycle_reauthenticates(tb):
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    v = vin(902)
    tb.start_vehicle(v, "tsp-a", fill_m=32, telemetry_interval="100ms",
                     retransmit="500ms")
    wait_until(lambda: events(tb, v, "session_open") >= 1, what="first session")
    first_auth = tb.scalar("tsp-a", "SELECT authed_ms FROM auth WHERE vehicle_id=?", (v,))
    tb.signal(v, signal.SIGUSR1)
    wait_until(lambda: events(tb, v, "power_off") >= 1 and events(tb, v, "power_on") >= 2,
               what="power cycle")
    wait_until(lambda: events(tb, v, "auth_ok") >= 2, what="F3 after the power cycle")
    wait_until(lambda: events(tb, v, "session_open") >= 2, what="session after power-on")
    assert tb.scalar("tsp-a", "SELECT authed_ms FROM auth WHERE vehicle_id=?", (v,)) > first_auth
    # The new session has a key the TSP never saw before.
    tb.stop(v)
    assert_keys_consistent(tb, v, "tsp-a")


@testbed(tsps=["tsp-a"])
def test_power_off_ends_authentication_at_the_tsp(tb):
    """F4.6 since power-on: the Bye of a power-off ends the vehicle's
    authentication at the TSP with its session, so an M3 from the same
    chip is refused with AUTH_REQUIRED until F3 has run again; a Bye at a
    region change or a rekey keeps it."""
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    v = vin(903)
    tb.start_vehicle(v, "tsp-a", fill_m=32, telemetry_interval="100ms",
                     retransmit="500ms", session_rekey=3)
    wait_until(lambda: events(tb, v, "session_open") >= 2,
               what="a rekeyed session (Bye without power-off)")
    assert tb.count("tsp-a", "auth", "vehicle_id=?", (v,)) == 1
    tb.stop(v)
    wait_until(lambda: tb.count("tsp-a", "auth", "vehicle_id=?", (v,)) == 0,
               what="the power-off Bye to end the authentication")
    assert tb.count("tsp-a", "sessions", "vehicle_id=?", (v,)) == 0
    assert "power off: authentication ended" in tb.log("tsp-a")
    # The same chip, powered on again, must run F3 before M3.
    p = tb.probe(v, store=tb.daemons[v].store)
    assert p.m3("tsp-a").status == "AUTH_REQUIRED"
    assert p.auth("tsp-a").status == "OK"
    assert p.m3("tsp-a").status == "OK"


@testbed(tsps=["tsp-a"])
def test_enrollment_waits_for_the_registrar(tb):
    """A vehicle powered on while the registrar is down keeps trying to
    register, and is served once the registrar comes up."""
    tb.start_tsp("tsp-a")
    tb.start_filler()
    v = vin(903)
    tb.start_vehicle(v, "tsp-a", fill_m=16, telemetry_interval="100ms",
                     retransmit="500ms", provision_timeout="60s")
    tb.wait_log(v, r"enrollment: NO_REPLY; retrying")
    assert tb.count(v, "registration") == 0
    tb.start_registrar()
    wait_until(lambda: events(tb, v, "session_open") >= 1, what="served after registration")
    assert tb.count("registrar", "registrations", "vehicle_id=?", (v,)) == 1
