"""F1: fillerd fills chips and syncs every fill record to every TSP."""

import hashlib

from harness import chip_id_of, wait_until


def tsp_fill(tb, tsp, chip):
    """(fills row, fill_keys rows) of chip in a tspd or fillerd store."""
    fills = tb.query(tsp, "SELECT chip_id, m, k, n, created_ms FROM fills "
                     "WHERE chip_id=?", (chip,))
    keys = tb.query(tsp, "SELECT idx, code, key FROM fill_keys WHERE chip_id=? "
                    "ORDER BY idx", (chip,))
    return fills, keys


def probe_fill(probe):
    """The fill as the chip received it: (fills-shaped row, key rows)."""
    chip_id, m, k, n = probe.chip()
    keys = [(idx, code, key) for idx, code, key, _ in probe.keys()]
    return [(chip_id, m, k, n)], keys


def check_fill_record(fills, keys):
    """The record follows PROTOCOL F1: codes from SHA-256, sorted, unique,
    and chip_id over the keys in sequence order."""
    (chip_id, m, k, n), = [r[:4] for r in fills]
    assert len(keys) == m, (len(keys), m)
    assert [r[0] for r in keys] == list(range(m))
    codes = [r[1] for r in keys]
    assert codes == sorted(codes) and len(set(codes)) == m, codes
    for _, code, key in keys:
        assert len(key) == 32 and len(code) == k
        # Characters 1..n-1 are never changed by collision resolution.
        assert code[:n - 1] == hashlib.sha256(key).hexdigest()[:n - 1], code
    assert chip_id == chip_id_of([r[2] for r in keys]), chip_id


def converged(tb, tsps, probe):
    """Every TSP in tsps holds exactly the filler's record of the probe's
    chip, which is also what the chip itself received."""
    want = tsp_fill(tb, "filler", probe.chip_id)
    chip_fills, chip_keys = probe_fill(probe)
    assert [r[:4] for r in want[0]] == chip_fills and want[1] == chip_keys, \
        "the filler's record differs from the chip's"
    return all(tsp_fill(tb, t, probe.chip_id) == want for t in tsps)


def test_fill_reaches_every_tsp(tb):
    tb.start_tsp("tsp-a")
    tb.start_tsp("tsp-b")
    tb.start_filler()
    p = tb.probe()
    r = p.fill(m=16)
    assert r["chip_id"] == p.chip_id and int(r["m"]) == 16, r
    fills, keys = probe_fill(p)
    check_fill_record(fills, keys)
    wait_until(lambda: converged(tb, ["tsp-a", "tsp-b"], p),
               what="fill record at both TSPs")
    for t in ("tsp-a", "tsp-b"):
        assert tb.count(t, "fills") == 1
        assert tb.count(t, "fill_keys") == 16
        assert tb.count(t, "keypos", "chip_id=? AND next_index<>0", (p.chip_id,)) == 0
    # A default-sized fill: m = 256 keys with k = 10 character codes.
    q = tb.probe()
    q.fill()
    assert q.chip()[1:] == (256, 10, 6), q.chip()
    check_fill_record(*probe_fill(q))
    wait_until(lambda: converged(tb, ["tsp-a", "tsp-b"], q),
               what="256-key fill record at both TSPs")


def test_fill_converges_after_tsp_outage(tb):
    tb.start_tsp("tsp-a")
    tb.start_filler()
    probes = [tb.probe() for _ in range(3)]
    probes[0].fill(m=8)
    wait_until(lambda: converged(tb, ["tsp-a"], probes[0]), what="first fill at tsp-a")
    # tsp-b has never run; the filler keeps its records in the outbox,
    # also across a restart of the filler itself.
    probes[1].fill(m=8)
    tb.restart("filler")
    probes[2].fill(m=8)
    for p in probes:
        wait_until(lambda: converged(tb, ["tsp-a"], p), what="fills at tsp-a")
    tb.start_tsp("tsp-b")
    for p in probes:
        wait_until(lambda: converged(tb, ["tsp-a", "tsp-b"], p),
                   what="tsp-b to converge after starting late")
    # tsp-b crashes, more fills happen, and it converges again.
    tb.kill("tsp-b")
    extra = tb.probe()
    extra.fill(m=8)
    wait_until(lambda: converged(tb, ["tsp-a"], extra), what="fill at tsp-a")
    tb.start("tsp-b")
    wait_until(lambda: converged(tb, ["tsp-a", "tsp-b"], extra),
               what="tsp-b to converge after a crash")
    for t in ("tsp-a", "tsp-b"):
        assert tb.count(t, "fills") == 4
        assert tb.count(t, "fill_keys") == 32
