"""F2: registrard registers vehicles and syncs M2 to every TSP; duplicates
change nothing anywhere."""

from harness import (enrolled_probe, provisioned, rsa_private_parts, start_provisioning,
                    wait_until)

TSPS = ["tsp-a", "tsp-b"]


def dumps(tb):
    return {n: tb.dump(n) for n in ["registrar"] + TSPS}


def test_register_syncs_m2(tb):
    start_provisioning(tb, TSPS)
    p = enrolled_probe(tb, TSPS, m=8)
    rows = {t: tb.query(t, "SELECT chip_id, prv, epoch FROM registrations "
                        "WHERE vehicle_id=?", (p.vin,)) for t in TSPS}
    (chip, prv, epoch), = rows["tsp-a"]
    assert rows["tsp-a"] == rows["tsp-b"], "TSPs disagree on the registration"
    assert chip == p.chip_id and epoch >= 1, (chip, epoch)
    assert len(rsa_private_parts(prv)) == 6, "Prv at the TSP is not an RSA PKCS#8 key"
    # Exactly the registrar's binding and key pair.
    assert tb.query("registrar", "SELECT chip_id, prv, epoch FROM registrations "
                    "WHERE vehicle_id=?", (p.vin,)) == rows["tsp-a"]
    reg = tb.query(p.store, "SELECT vehicle_id, chip_id, pbv FROM registration")
    assert reg and reg[0][0] == p.vin and reg[0][1] == p.chip_id and reg[0][2], reg
    # M1 lists every TSP of the topology with its vehicle endpoint.
    tsps = dict((r[0], r[1:]) for r in tb.query(
        p.store, "SELECT tsp_id, host, port FROM reg_tsps"))
    assert tsps == {t: ("127.0.0.1", tb.port[t]) for t in TSPS}, tsps


def test_duplicate_registration_changes_nothing(tb):
    start_provisioning(tb, TSPS)
    first = enrolled_probe(tb, TSPS, m=8)
    # A second chip whose fill record has reached both TSPs.
    other = tb.probe()
    other.fill(m=8)
    for t in TSPS:
        wait_until(lambda: tb.count(t, "fills", "chip_id=?", (other.chip_id,)) == 1,
                   what="second fill at " + t)
    before = dumps(tb)

    # Same vehicle, new chip.
    dup_vehicle = tb.probe(first.vin, store=other.store)
    r = dup_vehicle.register()
    assert r.status == "DUPLICATE_REGISTRATION", r
    # New vehicle, already registered chip.
    dup_chip = tb.probe(store=first.store)
    r = dup_chip.register()
    assert r.status == "DUPLICATE_REGISTRATION", r
    # Both again: still refused.
    assert dup_vehicle.register().status == "DUPLICATE_REGISTRATION"
    assert dup_chip.register().status == "DUPLICATE_REGISTRATION"
    # A factory certificate cannot rebind (operators only).
    r = dup_vehicle.register(rebind=True)
    assert r.status not in ("OK", None), r

    after = dumps(tb)
    for n in before:
        tb.assert_same_dump(before[n], after[n], "%s store after duplicates" % n)

    # A later good registration is a barrier: M2s to a TSP are delivered in
    # order, so once it arrived nothing queued by the duplicates can follow.
    barrier = enrolled_probe(tb, TSPS, m=8)
    for t in TSPS:
        regs = set(tb.query(t, "SELECT vehicle_id, chip_id FROM registrations"))
        assert regs == {(first.vin, first.chip_id), (barrier.vin, barrier.chip_id)}, regs
    # The first registration is untouched.
    for t in TSPS:
        assert tb.query(t, "SELECT * FROM registrations WHERE vehicle_id=?", (first.vin,)) \
            == [r for r in before[t]["registrations"] if r[0] == first.vin]


def test_operator_rebind(tb):
    start_provisioning(tb, TSPS)
    p = enrolled_probe(tb, TSPS, m=8)
    old_epoch = tb.scalar("tsp-a", "SELECT epoch FROM registrations WHERE vehicle_id=?",
                          (p.vin,))
    refill = tb.probe(p.vin, store=tb.path("probes", p.vin + "-refill.db"))
    refill.fill(m=8)
    r = refill.register(rebind=True, cert="operator")
    assert r.status == "OK", r
    for t in TSPS:
        wait_until(lambda: tb.query(t, "SELECT chip_id, epoch > ? FROM registrations "
                                    "WHERE vehicle_id=?", (old_epoch, p.vin))
                   == [(refill.chip_id, 1)], what="rebound registration at " + t)
    provisioned(tb, TSPS, refill)


def test_registration_converges_after_outage(tb):
    """A registration acknowledged while a TSP is down survives a crash of
    the registrar and reaches that TSP when it comes back."""
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    p = tb.probe()
    p.fill(m=8)
    assert p.register().status == "OK"
    provisioned(tb, ["tsp-a"], p)
    tb.kill("registrar")
    tb.start("registrar")
    tb.start_tsp("tsp-b")
    provisioned(tb, TSPS, p)
    assert tb.query("tsp-a", "SELECT * FROM registrations") == \
        tb.query("tsp-b", "SELECT * FROM registrations")
    wait_until(lambda: tb.count("registrar", "outbox") == 0, what="registrar outbox to drain")
