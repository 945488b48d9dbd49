"""qkdd's finite-size post-processing and link state, driven block by block.

A block is judged on the upper confidence bound Q_U of its QBER (Chernoff
with the Kullback-Leibler divergence, failure probability 1e-10) over a
sample gathered across ticks.  The tests drive thousands of blocks with
the admin endpoint's `run` (many ticks at once, no waiting on the clock):
at a true QBER just above 11 % no key is ever distilled, not even with the
smallest sample qkdd allows; at 8 % and the default sample no block ever
aborts and the link makes key.  The link state follows a window of blocks
with hysteresis and ETSI status counts no key while the link aborts."""

from harness import metric
from test_qkdd import call, enc, error, keys_of, link, status

DEFAULT_SAMPLE = 25000


def run(tb, a, b, ticks):
    """Run ticks ticks of the link a-b at once: the link view with "run"."""
    st, js = call(tb, "operator", "POST", "/admin/v1/links/%s/%s/run" % (a, b),
                  {"ticks": ticks})
    assert st == 200, (st, js)
    assert js["run"]["ticks"] == ticks, js
    return js


def run_blocks(tb, a, b, blocks, ticks=400, watch=None):
    """Drive the link until blocks more blocks were decided; watch(js)
    sees the link after every run.  The totals of the runs."""
    total = {"blocks": 0, "aborts": 0, "keys": 0}
    while total["blocks"] < blocks:
        js = run(tb, a, b, ticks)
        for k in total:
            total[k] += js["run"][k]
        if watch is not None:
            watch(js)
    return total


def test_above_threshold_never_distils(tb):
    """True QBER 11.2 %: not one key in thousands of blocks, with the
    smallest sample (the loosest bound, the largest fluctuations) and with
    the default one; the link aborts and says so."""
    tb.start_qkd(links=["sched tsp-a qber 0.112 sample 1000 pool 100000",
                        "sched tsp-b qber 0.0 eavesdropper 0.45 pool 100000"])
    lk = link(tb, "sched", "tsp-a")
    assert lk["sample"] == 1000 and lk["fec"] == 1.16, lk
    tot = run_blocks(tb, "sched", "tsp-a", 3000, ticks=1000)
    assert tot["keys"] == 0 and tot["aborts"] == tot["blocks"], tot
    js = link(tb, "sched", "tsp-a")
    assert js["keys_made"] == 0 and js["stored_key_count"] == 0, js
    assert js["state"] == "aborting" and js["aborted"] is True, js
    assert js["qber_bound"] > 0.11 and abs(js["qber"] - 0.112) < 0.02, js
    # Eavesdropper on 45 % of the qubits: 11.25 %, at the default sample.
    tot = run_blocks(tb, "sched", "tsp-b", 300, ticks=400)
    assert tot["keys"] == 0 and tot["aborts"] == tot["blocks"], tot
    js = link(tb, "sched", "tsp-b")
    assert js["sample"] == DEFAULT_SAMPLE and js["keys_made"] == 0, js
    assert abs(js["qber"] - 0.1125) < 0.005 and js["state"] == "aborting", js
    for slave in ("tsp-a", "tsp-b"):
        st = status(tb, "sched", slave)
        assert st["stored_key_count"] == 0 and st["qroam_link_state"] == "aborting", st
        error(*enc(tb, "sched", slave), 503, "QBER")
    m = tb.metrics("qkd")
    assert metric(m, "qroam_qkd_link_up", link="sched/tsp-a") == 0
    assert metric(m, "qroam_qkd_qber_bound", link="sched/tsp-a") > 0.11
    assert metric(m, "qroam_qkd_aborts_total", link="sched/tsp-a") >= 3000


def test_below_threshold_never_aborts(tb):
    """True QBER 8 % at the default sample of 25,000 bits: the bound is
    about 9.2 % and a block aborts only if its estimate exceeds 9.68 %,
    almost 10 standard deviations up (Chernoff: below 1e-24 a block), so
    thousands of blocks never abort, the link stays up and makes key at
    1 - 2.16 h(Q_U) of the kept bits."""
    tb.start_qkd(links=["sched tsp-a qber 0.08 rate 2000 pool 1000000"])
    states = set()
    tot = run_blocks(tb, "sched", "tsp-a", 2000, ticks=400,
                     watch=lambda js: states.add(js["state"]))
    assert tot["aborts"] == 0 and tot["blocks"] >= 2000, tot
    assert states == {"up"}, states
    js = link(tb, "sched", "tsp-a")
    assert tot["keys"] > 0 and js["keys_made"] >= tot["keys"], (tot, js)
    assert abs(js["qber"] - 0.08) < 0.005, js
    assert 0.082 < js["qber_bound"] < 0.09, js
    assert 0.088 < js["block_bound"] < 0.097, js
    st = status(tb, "sched", "tsp-a")
    assert st["qroam_link_state"] == "up" and st["stored_key_count"] > 0, st
    keys_of(tb, *enc(tb, "sched", "tsp-a"))


def test_state_hysteresis(tb):
    """The link state follows the window, not the last block: an
    eavesdropper turns it aborting within the window's blocks, and it is
    up again only once the window's bound is 1 % under the threshold; a
    change of settings starts a new block."""
    tb.start_qkd(links=["sched tsp-a pool 200"])
    js = run(tb, "sched", "tsp-a", 100)
    assert js["state"] == "up" and js["blocks"] > 0, js
    assert js["qber_bound"] < 0.03 and js["stored_key_count"] > 0, js
    made = js["keys_made"]
    st, js = call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a",
                  {"eavesdropper": 1.0})
    assert st == 200 and js["block_sampled"] == 0, js
    # Blocks abort at once; the state turns within the window (4 blocks).
    flips = []
    while js["state"] == "up":
        js = run(tb, "sched", "tsp-a", 1)
        flips.append(js["blocks"])
        assert len(flips) < 200, js
    assert js["keys_made"] == made, js
    assert status(tb, "sched", "tsp-a")["stored_key_count"] == 0
    error(*enc(tb, "sched", "tsp-a"), 503, "QBER")
    # Eve off: up again once the window holds clean blocks only.
    call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a", {"eavesdropper": 0})
    while js["state"] == "aborting":
        js = run(tb, "sched", "tsp-a", 1)
        assert js["blocks"] < flips[-1] + 50, js
    assert js["qber_bound"] <= 0.10, js
    assert status(tb, "sched", "tsp-a")["stored_key_count"] > 0
    keys_of(tb, *enc(tb, "sched", "tsp-a"))
    error(*call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a/run",
                {"ticks": 0}), 400, "ticks")
    error(*call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a/run",
                {"blocks": 3}), 400, "unknown field")
    error(*call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a",
                {"sample": 10}), 400, "sample")
    error(*call(tb, "sched", "POST", "/admin/v1/links/sched/tsp-a/run",
                {"ticks": 1}), 401)
