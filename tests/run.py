#!/usr/bin/env python3
"""Run every qroam test: the cmocka unit test programs, then the integration
tests (real daemons on loopback).  The unit tests of the stores get a
throw-away PostgreSQL cluster, started here and named in QROAM_TEST_PG.

usage: tests/run.py [-u|--unit-only] [-i|--integration-only] [SUBSTRING ...]

One line per test (`ok`, `FAIL`, `skip`), failures followed by their output,
and a last line `N passed, N failed` (`, N skipped` when some were, with
their names listed above).  Exit status 1 if any test failed.  SUBSTRINGs
select the tests whose name contains any of them.
"""

import glob
import importlib
import inspect
import os
import re
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from qroamlib import pgcluster  # noqa: E402
UNIT_DIR = os.path.join(ROOT, "build", "asan", "test")
INTEG_DIR = os.path.join(ROOT, "tests", "integration")
UNIT_TIMEOUT = 300


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = []
        self.failures = []

    def ok(self, name, secs=None):
        self.passed += 1
        print("ok   %s%s" % (name, "" if secs is None else "  (%.1fs)" % secs), flush=True)

    def fail(self, name, detail="", secs=None):
        self.failed += 1
        self.failures.append(name)
        print("FAIL %s%s" % (name, "" if secs is None else "  (%.1fs)" % secs), flush=True)
        if detail:
            for line in detail.rstrip().splitlines():
                print("     | " + line)
        sys.stdout.flush()

    def skip(self, name, reason):
        self.skipped.append((name, reason))
        print("skip %s: %s" % (name, reason), flush=True)


def selected(name, filters):
    return not filters or any(f in name for f in filters)


CASE_RX = re.compile(r"^\[\s*(OK|FAILED|SKIPPED)\s*\]\s+([A-Za-z_]\w*)\s*$")
SUM_PASSED_RX = re.compile(r"^\[\s*PASSED\s*\]\s+(?:\S+:\s+)?(\d+)\s+test")
SUM_FAILED_RX = re.compile(r"^\[\s*FAILED\s*\]\s+(?:\S+:\s+)?(\d+)\s+test")


def run_unit(path, tally):
    """Run one cmocka program: a line per test case from its output, then
    checks that the counts agree with its summary lines and exit status."""
    prog = os.path.basename(path)
    env = dict(os.environ)
    env.setdefault("CMOCKA_MESSAGE_OUTPUT", "STDOUT")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    t0 = time.monotonic()
    try:
        p = subprocess.run([path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, cwd=ROOT, timeout=UNIT_TIMEOUT)
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        rc = "timeout after %ds" % UNIT_TIMEOUT
    secs = time.monotonic() - t0

    cases = []
    npassed = nfailed = None
    for line in out.splitlines():
        m = CASE_RX.match(line.strip())
        if m:
            cases.append((m.group(1), m.group(2)))
            continue
        m = SUM_PASSED_RX.match(line.strip())
        if m:
            npassed = int(m.group(1))
            continue
        m = SUM_FAILED_RX.match(line.strip())
        if m:
            nfailed = int(m.group(1))

    seen_fail = set()
    seen_skip = set()
    ok_count = fail_count = 0
    for state, case in cases:
        name = "unit/%s/%s" % (prog, case)
        if state == "OK":
            if case not in seen_fail:
                ok_count += 1
                tally.ok(name)
        elif state == "SKIPPED":
            if case not in seen_skip:
                seen_skip.add(case)
                tally.skip(name, "skipped by the unit test")
        elif case not in seen_fail:
            seen_fail.add(case)
            fail_count += 1
            tally.fail(name, case_output(out, case))
    sane = rc == 0 and npassed is not None
    if npassed is not None and npassed != ok_count:
        sane = False
    if (nfailed or 0) != fail_count:
        sane = False
    if not sane and not (rc != 0 and fail_count and npassed is not None):
        tally.fail("unit/%s" % prog,
                   "exit status %s, summary passed=%s failed=%s, parsed ok=%d failed=%d\n%s"
                   % (rc, npassed, nfailed, ok_count, fail_count,
                      "\n".join(out.splitlines()[-40:])), secs)


def case_output(out, case):
    """The lines cmocka printed between `[ RUN ] case` and its verdict."""
    lines = out.splitlines()
    keep = []
    inside = False
    for line in lines:
        s = line.strip()
        if re.match(r"^\[\s*RUN\s*\]\s+%s\s*$" % re.escape(case), s):
            inside = True
            continue
        if inside:
            if CASE_RX.match(s):
                break
            keep.append(line)
    return "\n".join(keep[-40:])


def integration_tests():
    """[(module file, function name, function)] in file and source order."""
    tests = []
    for path in sorted(glob.glob(os.path.join(INTEG_DIR, "test_*.py"))):
        modname = os.path.splitext(os.path.basename(path))[0]
        try:
            mod = importlib.import_module(modname)
        except Exception:
            tests.append((modname, "<import>", traceback.format_exc()))
            continue
        fns = [(getattr(f, "__code__").co_firstlineno, n, f)
               for n, f in vars(mod).items()
               if n.startswith("test_") and inspect.isfunction(f)
               and f.__module__ == mod.__name__]
        for _, n, f in sorted(fns):
            tests.append((modname, n, f))
    return tests


def run_integration(tally, filters):
    sys.path.insert(0, INTEG_DIR)
    harness = importlib.import_module("harness")
    try:
        harness.check_build()
        build_error = None
    except AssertionError as e:
        build_error = str(e)
    for modname, fname, fn in integration_tests():
        name = "integration/%s.py::%s" % (modname, fname)
        if not selected(name, filters):
            continue
        if isinstance(fn, str) or build_error:
            tally.fail(name, build_error or fn)
            continue
        t0 = time.monotonic()
        tb = None
        detail = None
        skipped = None
        try:
            if "tb" in inspect.signature(fn).parameters:
                opts = dict(getattr(fn, "testbed_opts", {}))
                opts.setdefault("name", fname[5:])
                tb = harness.Testbed(**opts)
                fn(tb)
            else:
                fn()
        except harness.Skip as e:
            skipped = str(e) or "skipped"
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                if tb:
                    tb.close(failed=True)
                raise
            detail = traceback.format_exc()
        if tb is not None:
            try:
                tb.close(failed=detail is not None)
            except AssertionError as e:
                detail = (detail or "") + str(e)
            except Exception:
                detail = (detail or "") + traceback.format_exc()
            if detail:
                detail += "\nkept test directory: %s" % tb.dir
        secs = time.monotonic() - t0
        if detail:
            tally.fail(name, detail, secs)
        elif skipped:
            tally.skip(name, skipped)
        else:
            tally.ok(name, secs)


def main(argv):
    unit = integ = True
    filters = []
    for a in argv:
        if a in ("-u", "--unit-only"):
            integ = False
        elif a in ("-i", "--integration-only"):
            unit = False
        elif a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        else:
            filters.append(a)
    tally = Tally()
    cluster = None
    if unit:
        # The stores' tests run on PostgreSQL too: one cluster for them all.
        if not pgcluster.available():
            tally.fail("unit/postgresql", "PostgreSQL's server is not installed "
                       "(sh scripts/deps.sh): the store tests need it")
        else:
            try:
                cluster = pgcluster.Cluster().start()
                os.environ["QROAM_TEST_PG"] = cluster.conninfo()
            except RuntimeError as e:
                tally.fail("unit/postgresql", str(e))
                cluster = None
    try:
        run_all(tally, unit, integ, filters)
    finally:
        if cluster is not None:
            cluster.stop()
            os.environ.pop("QROAM_TEST_PG", None)
    if tally.skipped:
        print("skipped: " + ", ".join(n for n, _ in tally.skipped))
    line = "%d passed, %d failed" % (tally.passed, tally.failed)
    if tally.skipped:
        line += ", %d skipped" % len(tally.skipped)
    print(line)
    return 1 if tally.failed else 0


def run_all(tally, unit, integ, filters):
    if unit:
        # Every tests/unit/test_*.c must have been built.
        sources = glob.glob(os.path.join(ROOT, "tests", "unit", "test_*.c"))
        names = set(os.path.splitext(os.path.basename(p))[0] for p in sources)
        names |= set(os.path.basename(p) for p in glob.glob(os.path.join(UNIT_DIR, "test_*"))
                     if os.access(p, os.X_OK) and os.path.isfile(p))
        for prog in sorted(names):
            if filters and not any(f in "unit/" + prog for f in filters):
                continue
            path = os.path.join(UNIT_DIR, prog)
            if not os.access(path, os.X_OK):
                tally.fail("unit/" + prog, "%s is not built (run `make asan`)" % path)
                continue
            run_unit(path, tally)
    if integ:
        run_integration(tally, filters)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
