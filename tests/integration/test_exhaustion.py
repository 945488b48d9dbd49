"""F9: a chip with m = 4 keys serves four sessions; the fifth finds it
exhausted.  After a refill and an operator re-registration the vehicle is
served again with its new chip."""

from harness import testbed, vin, wait_until

V = vin(800)


def events(tb, kind):
    return tb.count(V, "events", "kind=?", (kind,))


@testbed(tsps=["tsp-a"])
def test_exhaustion_then_refill(tb):
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    tb.start_vehicle(V, "tsp-a", fill_m=4, session_rekey=1, telemetry_interval="150ms",
                     retransmit="300ms", draw="sequential", refill=False)
    wait_until(lambda: events(tb, "key_exhausted") >= 1, what="key_exhausted event")
    chip = tb.scalar(V, "SELECT chip_id FROM chip")
    assert tb.scalar(V, "SELECT m FROM chip") == 4
    assert events(tb, "session_open") == 4, events(tb, "session_open")
    first_exhausted = tb.scalar(V, "SELECT min(id) FROM events WHERE kind='key_exhausted'")
    last_open = tb.scalar(V, "SELECT max(id) FROM events WHERE kind='session_open'")
    assert last_open < first_exhausted
    assert tb.query(V, "SELECT count(*), sum(destroyed), count(key) FROM chip_keys") \
        == [(4, 4, 0)]
    used = tb.query("tsp-a", "SELECT idx, how FROM used_keys WHERE chip_id=? ORDER BY idx",
                    (chip,))
    assert used == [(i, "m3") for i in range(4)], used
    assert tb.scalar("tsp-a", "SELECT next_index FROM keypos WHERE chip_id=?", (chip,)) == 4
    assert events(tb, "refill") == 0
    epoch = tb.scalar("tsp-a", "SELECT epoch FROM registrations WHERE vehicle_id=?", (V,))
    tb.stop(V)

    # Refill allowed, with the operator credential for the rebind.
    tb.start_vehicle(V, refill=True, operator_cert=tb.cert("operator"),
                     operator_key=tb.key("operator"))
    wait_until(lambda: events(tb, "refill") >= 1, what="refill event")
    wait_until(lambda: events(tb, "reregister") >= 1, what="reregister event")

    def new_binding():
        rows = tb.query("tsp-a", "SELECT chip_id, epoch FROM registrations "
                        "WHERE vehicle_id=?", (V,))
        return rows and rows[0][0] != chip and rows[0][1] > epoch and rows[0][0]
    new_chip = wait_until(new_binding, what="new chip binding at tsp-a")
    assert tb.count("tsp-a", "fills", "chip_id=?", (new_chip,)) == 1

    def served():
        rows = tb.query("tsp-a", "SELECT chip_id FROM sessions WHERE vehicle_id=?", (V,))
        return rows and rows[0][0] != chip
    wait_until(served, what="a session on the new chip")
    wait_until(lambda: tb.count("tsp-a", "used_keys", "chip_id<>?", (chip,)) >= 1,
               what="a key of the new chip used at tsp-a")
    # The old chip's keys stay used; nothing was used twice.
    assert tb.query("tsp-a", "SELECT idx FROM used_keys WHERE chip_id=? ORDER BY idx",
                    (chip,)) == [(0,), (1,), (2,), (3,)]
    assert tb.scalar(V, "SELECT count(*) FROM chip_keys WHERE key IS NOT NULL "
                     "AND destroyed=1") == 0
