"""SIGHUP with a broken configuration, for every daemon: the reload is
refused with the error's file:line, the daemon keeps serving with its old
configuration (a good reload afterwards still works), and the sanitizers'
teardown check (ASan, LSan at exit) finds nothing: a failed load leaves no
allocation behind, under one rule for every loader."""

import re

from harness import testbed
from test_ops_provision import reload as sighup

TSP = "tsp-a"


def broken_reloads(tb, name):
    conf = tb.daemons[name].conf
    with open(conf) as f:
        good = f.read()
    # A bad directive after every path directive was allocated, and a
    # failed check after a complete parse (no store), twice each.
    bad_directive = good + "no_such_directive 1\n"
    no_store = "".join(l for l in good.splitlines(True)
                       if not l.startswith("store "))
    for text, why in [(bad_directive, r"\.conf:\d+: unknown directive"),
                      (no_store, r"missing \"store\"")] * 2:
        with open(conf, "w") as f:
            f.write(text)
        log = sighup(tb, name, r"reload: configuration has errors, keeping "
                     r"the old one")
        assert re.search(why, log), (name, log)
        code, _ = tb.admin_get(name, "/healthz")
        assert code == 200, (name, code)
    with open(conf, "w") as f:
        f.write(good)
    sighup(tb, name, r"reloaded")


@testbed(tsps=[TSP])
def test_broken_reload_every_daemon(tb):
    tb.start_tsp(TSP)
    tb.start_filler()
    tb.start_registrar()
    tb.start_qkd()
    tb.start_sched()
    vin = "WVWZZZ1JZXW000077"
    tb.start_vehicle(vin, TSP)
    for name in (TSP, "filler", "registrar", "qkd", "sched", vin):
        broken_reloads(tb, name)
    tb.assert_running(TSP, "filler", "registrar", "qkd", "sched", vin)
