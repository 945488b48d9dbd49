"""Secrets at rest, registrard (issue 12 point 4, first daemon): with a
store key the vehicles' private keys (Prv) are sealed in its store and in
its outbox (AES-256-GCM, the row in the AAD); the store files, read as raw
bytes, hold no Prv of the run; the TSPs still get every M2.  Rotation:
with the new key current and the old one as store_key_old, the rows are
sealed again and an M2 queued under the old key is still delivered."""

import glob
import os

from harness import enrolled_probe, provisioned, testbed

TSP = "tsp-a"


def write_key(tb, name, byte):
    path = tb.path("conf", name)
    with open(path, "w") as f:
        f.write(bytes([byte] * 32).hex() + "\n")
    os.chmod(path, 0o600)
    return path


def raw_store(tb, name):
    data = b""
    for p in glob.glob(tb.store(name) + "*"):
        with open(p, "rb") as f:
            data += f.read()
    assert data
    return data


def prv_of(tb, probe):
    return bytes(tb.scalar(TSP, "SELECT prv FROM registrations WHERE vehicle_id=?",
                           (probe.vin,)))


def assert_no_prv(tb, prvs):
    data = raw_store(tb, "registrar")
    for prv in prvs:
        assert len(prv) > 600, len(prv)
        # Any 32 bytes of the DER would do; take some from its middle.
        for off in (0, len(prv) // 2, len(prv) - 32):
            assert prv[off:off + 32] not in data, off


@testbed(tsps=[TSP])
def test_registrar_seals_prv_and_rotates(tb):
    k1, k2 = write_key(tb, "store1.key", 0x11), write_key(tb, "store2.key", 0x22)
    tb.start_tsp(TSP)
    tb.start_filler()
    tb.start_registrar(store_key=k1)
    p1 = enrolled_probe(tb, [TSP], m=8)
    assert p1.auth(TSP).status == "OK"		# the TSP's Prv works
    sealed = tb.query("registrar", "SELECT prv FROM registrations")
    assert sealed and all(bytes(v)[:3] == b"QS\x01" for v, in sealed), sealed

    # An M2 waits in the outbox, sealed under k1, while the TSP is down.
    tb.stop(TSP)
    p2 = tb.probe()
    p2.fill(m=8)
    assert p2.register().status == "OK"
    assert tb.count("registrar", "outbox") >= 1
    tb.stop("registrar")

    # Rotation: k2 current, k1 previous.
    mark = tb.log_mark("registrar")
    tb.start_registrar(store_key=k2, store_key_old=k1)
    tb.wait_log("registrar", r"store: 2 private keys sealed under the "
                r"current store key", since=mark)
    tb.start(TSP)
    provisioned(tb, [TSP], p2)
    assert p2.auth(TSP).status == "OK"
    tb.stop("registrar")

    # k1 retired: everything opens under k2 alone.
    tb.daemons["registrar"].opts.pop("store_key_old")
    mark = tb.log_mark("registrar")
    tb.start_registrar(store_key=k2)
    p3 = enrolled_probe(tb, [TSP], m=8)
    assert p3.auth(TSP).status == "OK"
    assert "does not open" not in tb.log_since("registrar", mark)
    tb.stop("registrar")
    assert_no_prv(tb, [prv_of(tb, p) for p in (p1, p2, p3)])
