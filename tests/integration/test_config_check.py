"""Golden-file tests of every daemon's `-n` (check the configuration and exit).

tests/golden/<daemon>/ holds one configuration per case (<case>.conf, with
the topology files they name, all by relative path) and the expected result
<case>.out: a first line `exit N`, then exactly what `<daemon> -n -f
<case>.conf` writes to stdout and stderr, run in that folder.  A case with
an .out and no .conf checks the answer to a missing configuration file.
Log timestamps are replaced by HH:MM:SS.mmm so the files stay stable.

    QROAM_GOLDEN_UPDATE=1 python3 tests/run.py -i test_config_check

rewrites the .out files from what the programs print now (review the diff).
"""

import difflib
import glob
import os
import re
import subprocess

import harness

GOLDEN = os.path.join(harness.ROOT, "tests", "golden")
DAEMONS = ("fillerd", "registrard", "tspd", "schedd", "qkdd", "vehicled", "kmpd")
TIMESTAMP_RX = re.compile(r"^\d\d:\d\d:\d\d\.\d\d\d ", re.M)
# A diagnostic names its file: "file:line: message" or "file: message".
DIAG_RX = re.compile(r"^[^\s:]+:(\d+:)? \S")


def cases(daemon):
    """Case names of a daemon's folder: every .conf and every .out."""
    d = os.path.join(GOLDEN, daemon)
    names = set()
    for pattern in ("*.conf", "*.out"):
        for p in glob.glob(os.path.join(d, pattern)):
            names.add(os.path.splitext(os.path.basename(p))[0])
    return sorted(names)


def run_check(daemon, case):
    """`daemon -n -f case.conf` in the daemon's golden folder, as the text
    an .out file holds."""
    exe = os.path.join(harness.BIN, daemon)
    if not os.path.exists(exe):
        raise AssertionError("%s is not built (run `make asan`)" % exe)
    env = dict(os.environ)
    env.update(harness.SAN_ENV)
    p = subprocess.run([exe, "-n", "-f", case + ".conf"], cwd=os.path.join(GOLDEN, daemon),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=harness.TIMEOUT)
    out = p.stdout.decode(errors="replace")
    for pat in harness.SAN_PATTERNS:
        if pat in out:
            raise AssertionError("%s -n -f %s.conf: sanitizer report:\n%s" % (daemon, case, out))
    return "exit %d\n%s" % (p.returncode, TIMESTAMP_RX.sub("HH:MM:SS.mmm ", out))


def check_daemon(daemon):
    """Every case of daemon against its .out; one assertion listing every
    mismatch with a diff.  With QROAM_GOLDEN_UPDATE set, rewrite instead."""
    update = os.environ.get("QROAM_GOLDEN_UPDATE")
    names = cases(daemon)
    assert "good" in names and len(names) >= 6, (daemon, names)
    problems = []
    for case in names:
        got = run_check(daemon, case)
        path = os.path.join(GOLDEN, daemon, case + ".out")
        if update:
            with open(path, "w") as f:
                f.write(got)
            continue
        want = open(path).read() if os.path.exists(path) else ""
        if got != want:
            diff = difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        "%s/%s.out" % (daemon, case), "%s -n -f %s.conf"
                                        % (daemon, case))
            problems.append("".join(diff))
            continue
        # Only the good configurations pass; every failure explains itself
        # with the file it is about.
        first, _, rest = got.partition("\n")
        if case.startswith("good"):
            if first != "exit 0" or "%s.conf: configuration OK" % case not in rest:
                problems.append("%s/%s: not accepted:\n%s" % (daemon, case, got))
        elif first != "exit 1" or not any(DIAG_RX.match(l) for l in rest.splitlines()):
            problems.append("%s/%s: no file-named diagnostic and exit 1:\n%s"
                            % (daemon, case, got))
    assert not problems, "\n".join(problems) + (
        "\n(QROAM_GOLDEN_UPDATE=1 rewrites the .out files)")


def test_fillerd_config_check():
    check_daemon("fillerd")


def test_registrard_config_check():
    check_daemon("registrard")


def test_tspd_config_check():
    check_daemon("tspd")


def test_schedd_config_check():
    check_daemon("schedd")


def test_qkdd_config_check():
    check_daemon("qkdd")


def test_vehicled_config_check():
    check_daemon("vehicled")


def test_golden_cases_complete():
    """Every daemon has the agreed cases."""
    want = {"good", "unknown_directive", "bad_value", "missing_required",
            "bad_topology", "duplicate_tsp", "missing_topology", "missing_config"}
    for d in DAEMONS:
        missing = want - set(cases(d))
        assert not missing, (d, sorted(missing))


def test_kmpd_config_check():
    check_daemon("kmpd")
