"""Initial keys of PROTOCOL 11.1 provisioned like the rest: with a key
management platform in the topology, fillerd writes a fresh IK_v into each
chip it fills and its outbox carries it, with the chip_id, to kmpd over
the provisioning channel, never to a TSP; the chip then applies to kmpd
under it.  A KmpIdentity delivered again (an outbox retry) is answered OK
and changes nothing; one with another key is refused."""

import os

from harness import wait_until
from kmp_client import Party


def test_fill_carries_ik_to_the_kmp_alone(tb):
    tb.start_kmp(key_source="random")
    tb.start_tsp("tsp-a")
    tb.start_filler()
    p = tb.probe()
    p.fill(m=16)
    chip = p.chip_id
    ik = tb.scalar(p.store, "SELECT ik FROM chip")
    assert isinstance(ik, bytes) and len(ik) == 32, ik
    tb.secrets.add(ik, "IK_v of the probe's chip")
    wait_until(lambda: tb.query("kmp", "SELECT kind, ik, added_by FROM identities "
                                "WHERE identity = ?", (chip,)) == [("vehicle", ik, "filler")],
               what="the chip's identity at kmpd")
    # The TSP has the fill record, and nothing of IK_v.
    wait_until(lambda: tb.count("tsp-a", "fills", "chip_id = ?", (chip,)) == 1,
               what="the fill record at tsp-a")
    for t in tb.tables("tsp-a"):
        for row in tb.query("tsp-a", 'SELECT * FROM "%s"' % t):
            for v in row:
                assert not (isinstance(v, bytes) and ik in v), (t, row)
    # What still waits in the filler's outbox (for tsp-b, not running)
    # is the fill record alone.
    rows = tb.query("filler", "SELECT dest, payload FROM outbox")
    assert rows and all(d == "tsp-b" and ik not in pl for d, pl in rows), rows
    # The chip applies under IK_v; an encryptor gets the same key.
    v = Party(tb, chip, "vehicle", ik=ik)
    c = Party(tb, "enc-tsp-a", "encryptor")
    assert c.provision() == "OK"
    k = v.apply("s-0001")
    assert isinstance(k, bytes) and c.apply("s-0001") == k
    # A repeated delivery is OK and writes nothing; another key is refused.
    before = tb.dump("kmp")
    assert v.provision(by="filler") == "OK"
    assert Party(tb, chip, "vehicle").provision(by="filler") == "DUPLICATE_REGISTRATION"
    tb.assert_same_dump(before, tb.dump("kmp"), "kmpd's store")


def test_no_kmp_no_ik(tb):
    """Without a KMP in the topology chips are filled as before."""
    tb.start_filler()
    p = tb.probe()
    p.fill(m=16)
    assert tb.scalar(p.store, "SELECT ik FROM chip") is None


def test_operator_adds_an_encryptor(tb):
    """qroamctl kmp add-encryptor: IK_c drawn by qroamctl, taken by kmpd,
    written to a 0600 file and never printed; the encryptor then applies
    under it.  A second add of the same ID is refused, the file not
    written."""
    from test_qroamctl import Ctl
    tb.start_kmp(key_source="random")
    ctl = Ctl(tb)
    path = tb.path("conf", "enc-tsp-a.ik")
    rc, out, err = ctl.run("kmp", "add-encryptor", "enc-tsp-a", "-o", path)
    assert "enc-tsp-a added" in out, out
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(path) as f:
        ik = bytes.fromhex(f.read().strip())
    tb.secrets.add(ik, "IK_c of enc-tsp-a")
    assert ik.hex() not in out + err
    assert tb.query("kmp", "SELECT kind, ik, added_by FROM identities WHERE "
                    "identity = 'enc-tsp-a'") == [("encryptor", ik, "operator")]
    c = Party(tb, "enc-tsp-a", "encryptor", ik=ik)
    v = Party(tb, "chip-0001", "vehicle")
    assert v.provision() == "OK"
    k = c.apply("s-0001")
    assert isinstance(k, bytes) and v.apply("s-0001") == k
    before = tb.dump("kmp")
    again = tb.path("conf", "again.ik")
    rc, out, err = ctl.run("kmp", "add-encryptor", "enc-tsp-a", "-o", again, expect=1)
    assert "DUPLICATE_REGISTRATION" in err and not os.path.exists(again), err
    tb.assert_same_dump(before, tb.dump("kmp"), "kmpd's store")
    ctl.run("kmp", "add-encryptor", "Bad/Name", "-o", again, expect=2)
