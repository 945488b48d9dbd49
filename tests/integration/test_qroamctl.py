"""qroamctl, the control CLI, against real daemons on loopback.

- status: one row per configured daemon, as its /status says, and a
  daemon that does not answer shown as down without failing the others;
  --json gives the /status objects with "up".
- The lists (vehicles, sessions, pools, outbox, handovers, metrics) agree
  with what the daemons' own endpoints and stores hold.
- fill and register with the operator credential write the chip store and
  reach every TSP; a second registration is refused and --rebind moves
  the vehicle to the new chip.
- eavesdrop switches qkdd's eavesdropper over mutual TLS, in both LINK
  forms, and only with an operator certificate.
- handovers: one held in flight (its target TSP frozen) shows at the
  source TSP and the scheduler, while the frozen TSP shows as down.
- health exit codes for up and down endpoints, bad usage exit 2.
"""

import json
import os
import signal
import socket
import ssl
import subprocess
import threading

from harness import (BIN, enrolled_probe, free_port, provisioned, start_provisioning,
                    testbed, vin, wait_until)
from test_handover import EAST_EDGE_A
from test_qkdd import call as kme_call
from test_schedd import keys_stored, need_qkd

TSPS = ["tsp-a", "tsp-b"]


class Ctl:
    """Runs build/<variant>/bin/qroamctl with a configuration of the bed's
    admin endpoints and the operator credential.  Its stderr goes to the
    bed's logs, so the teardown checks (sanitizers, secrets) cover it."""

    def __init__(self, tb, names=(), extra=(), cert="operator", topology=True):
        self.tb = tb
        self.exe = os.path.join(BIN, "qroamctl")
        if not os.path.exists(self.exe):
            raise AssertionError("%s is not built (run `make asan`)" % self.exe)
        self.conf = tb.path("conf", "qroamctl-%s-%d.conf" % (cert, len(os.listdir(
            tb.path("conf")))))
        self.log = tb.path("logs", "qroamctl.log")
        lines = ["# qroamctl for the integration test bed", "ca %s" % tb.ca,
                 "cert %s" % tb.cert(cert), "key %s" % tb.key(cert)]
        if topology:
            lines.append("topology %s" % tb.topology)
        lines += ["admin %s 127.0.0.1:%d" % (n, tb.admin_port(n)) for n in names]
        lines += list(extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def run(self, *args, conf=True, expect=0):
        """(exit status, stdout, stderr) of one run; checks the status."""
        argv = [self.exe] + (["-f", self.conf] if conf else []) + [str(a) for a in args]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.tb.env, timeout=120)
        out, err = p.stdout.decode(), p.stderr.decode()
        with open(self.log, "a") as f:
            f.write("=== %s\n--- exit %d\n%s--- stderr\n%s" % (" ".join(argv[1:]),
                                                          p.returncode, out, err))
        if expect is not None:
            assert p.returncode == expect, \
                "qroamctl %s: exit %d, expected %d\nstdout: %s\nstderr: %s" % (
                    " ".join(args), p.returncode, expect, out, err)
        return p.returncode, out, err

    def json(self, *args, expect=0):
        rc, out, err = self.run("--json", *args, expect=expect)
        return json.loads(out)

    def table(self, *args, expect=0):
        """A table's rows as dicts keyed by the header row."""
        rc, out, err = self.run(*args, expect=expect)
        lines = [l.split() for l in out.splitlines() if l.strip()]
        assert lines, "no table from qroamctl %s" % " ".join(args)
        head = lines[0]
        for l in lines[1:]:
            assert len(l) == len(head), (head, l)
        return [dict(zip(head, l)) for l in lines[1:]]


def serve_once(tb, port, cert, ready):
    """An HTTPS server with cert's certificate that answers one request 200;
    ready is set once it listens."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tb.cert(cert), tb.key(cert))
    ctx.load_verify_locations(tb.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with socket.socket() as ls:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(1)
        ls.settimeout(30)
        ready.set()
        conn, _ = ls.accept()
        try:
            with ctx.wrap_socket(conn, server_side=True) as c:
                c.settimeout(10)
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 2\r\n\r\n{}")
                c.recv(1024)
        except (OSError, ssl.SSLError):
            pass


def start_clouds(tb):
    """qkdd with keys for every TSP, schedd, the TSPs, fillerd, registrard."""
    need_qkd()
    tb.start_qkd(links=["sched %s rate 200000 pool 50" % t for t in tb.tsps])
    tb.start_sched(handover_timeout="30s")
    for t in tb.tsps:
        keys_stored(tb, t)
    for t in tb.tsps:
        tb.start_tsp(t, handover_timeout="30s")
    tb.start_filler()
    tb.start_registrar()


def chip_of(tb, store):
    return tb.scalar(store, "SELECT chip_id FROM chip")


# ---- status and the lists --------------------------------------------------

@testbed(tsps=TSPS)
def test_status_table_and_json(tb):
    start_clouds(tb)
    names = ["filler", "registrar"] + TSPS + ["sched", "qkd"]
    ghost = free_port()
    ctl = Ctl(tb, names, ["admin ghost %d" % ghost])

    rows = ctl.table("status")
    assert [r["NAME"] for r in rows] == names + ["ghost"], rows
    for r in rows[:-1]:
        st = tb.status(r["NAME"])
        assert r["UP"] == "up", r
        assert r["DAEMON"] == st["daemon"] and r["ID"] == st["id"], (r, st)
        assert r["CONNS"].isdigit(), r
    ghost_row = rows[-1]
    assert ghost_row["UP"] == "down" and ghost_row["DAEMON"] == "-", ghost_row
    by = {r["NAME"]: r for r in rows}
    assert by["tsp-a"]["DAEMON"] == "tspd" and by["tsp-a"]["SESSIONS"] == "0"
    assert by["filler"]["OUTBOX"] != "-" and by["registrar"]["OUTBOX"] != "-"
    assert int(by["qkd"]["POOL_KEYS"]) > 0, by["qkd"]
    assert by["filler"]["SESSIONS"] == "-"

    js = ctl.json("status")
    assert [o["name"] for o in js] == names + ["ghost"], js
    for o in js[:-1]:
        st = tb.status(o["name"])
        assert o["up"] is True, o
        for k in ("daemon", "id", "pid"):
            assert o[k] == st[k], (k, o, st)
        assert o["admin"] == "127.0.0.1:%d" % tb.admin_port(o["name"])
    assert js[-1]["up"] is False and js[-1]["error"], js[-1]
    assert js[-1]["admin"] == "127.0.0.1:%d" % ghost

    # Named daemons only, and a daemon that goes down.
    tb.stop("tsp-b")
    rows = ctl.table("status", "tsp-a", "tsp-b")
    assert [(r["NAME"], r["UP"]) for r in rows] == [("tsp-a", "up"), ("tsp-b", "down")]
    # -a: one endpoint without a configuration.
    js = ctl.json("-a", str(tb.admin_port("sched")), "status", expect=0)
    assert len(js) == 1 and js[0]["up"] and js[0]["daemon"] == "schedd", js


@testbed(tsps=TSPS)
def test_lists_follow_the_daemons(tb):
    start_clouds(tb)
    ctl = Ctl(tb, ["filler", "registrar"] + TSPS + ["sched", "qkd"])
    store = tb.path("probes", "ctl-list.db")
    v = vin(41)
    ctl.run("fill", "-s", store, "-m", 8)
    ctl.run("register", "-s", store, "-V", v)
    p = tb.probe(v, store=store)
    provisioned(tb, TSPS, p)

    # Registered everywhere, authenticated nowhere yet.
    for t in TSPS:
        js = ctl.json("vehicles", t)
        assert js == tb.status(t, "vehicles"), (js, t)
        (e,) = [e for e in js if e["vehicle_id"] == v]
        assert e["chip_id"] == p.chip_id and e["authenticated"] is False, e
        rows = ctl.table("vehicles", t)
        assert [(r["VEHICLE"], r["AUTH"], r["SESSION"]) for r in rows] == [(v, "no", "no")]
        assert p.chip_id.startswith(rows[0]["CHIP"])
    assert ctl.json("sessions", "tsp-a") == []

    # F3 + F4 at tsp-a: one session there.
    assert p.auth("tsp-a").status == "OK"
    r = p.m3("tsp-a")
    assert r.status == "OK", r
    js = ctl.json("sessions", "tsp-a")
    assert [(s["vehicle_id"], s["key_index"]) for s in js] == [(v, int(r["index"]))], js
    rows = ctl.table("sessions", "tsp-a")
    assert rows[0]["VEHICLE"] == v and rows[0]["KEY"] == r["index"], rows
    assert ctl.table("status", "tsp-a")[0]["SESSIONS"] == "1"
    (e,) = ctl.json("vehicles", "tsp-a")
    assert e["authenticated"] and e["via"] == "f3" and e["session"], e

    # Pools: one per link, as qkdd's own view says.
    pools = ctl.json("pools")
    assert {(e["name"], e["link"]) for e in pools} == \
        {("qkd", e["link"]) for e in tb.status("qkd", "pools")}, pools
    assert all(e["keys"] > 0 and e["eavesdropper"] is False for e in pools), pools
    rows = ctl.table("pools", "qkd")
    assert len(rows) == len(TSPS) and all(r["NAME"] == "qkd" for r in rows), rows

    # Outbox backlogs of the filler and the registrar, empty once delivered.
    wait_until(lambda: all(e["outbox"] == 0 for e in ctl.json("outbox")),
               what="empty outboxes")
    assert {e["name"] for e in ctl.json("outbox")} == {"filler", "registrar"}
    ctl.run("outbox", "tsp-a", expect=1)

    # No handover in flight; a TSP and the scheduler both have the view.
    assert ctl.json("handovers") == []
    assert ctl.table("handovers", "tsp-a", "sched") == []
    ctl.run("handovers", "filler", expect=1)

    # Metrics: the exposition text, and the same as JSON samples.
    rc, text, err = ctl.run("metrics", "tsp-a")
    assert "qroam_connections_accepted_total" in text, text[:400]
    samples = ctl.json("metrics", "tsp-a")
    opened = [s for s in samples if s["name"] == "qroam_sessions_open"]
    assert opened and opened[0]["value"] == 1, opened

    # A list from a daemon without that view is a failure, not a crash.
    ctl.run("sessions", "filler", expect=1)


@testbed(tsps=TSPS)
def test_handover_in_flight(tb):
    start_clouds(tb)
    ctl = Ctl(tb, TSPS + ["sched"])
    p = enrolled_probe(tb, m=16)
    assert p.auth("tsp-a").status == "OK"
    assert p.m3("tsp-a").status == "OK"
    assert ctl.json("handovers") == []
    # With tsp-b frozen the scheduler holds the handover after A2.
    tb.signal("tsp-b", signal.SIGSTOP)
    try:
        r = p.telemetry("tsp-a", 2, at=EAST_EDGE_A, heading=90, speed=30, m6="tsp-b",
                        wait_ms=4000)
        assert r.status == "OK" and r["m6"] == "tsp-b", r

        def held():
            js = ctl.json("-w", "1000", "handovers")
            return js if {e["name"] for e in js} == {"tsp-a", "sched"} else None
        js = wait_until(held, what="the handover in flight at tsp-a and sched")
        (a,) = [e for e in js if e["name"] == "tsp-a"]
        (s,) = [e for e in js if e["name"] == "sched"]
        assert (a["vehicle_id"], a["role"], a["from"], a["to"]) == \
            (p.vin, "source", "tsp-a", "tsp-b"), a
        # The scheduler knows the handover by its id, not the vehicle.
        assert (s["from"], s["to"], s["handover_id"]) == \
            ("tsp-a", "tsp-b", a["handover_id"]), s
        rc, out, err = ctl.run("-w", "1000", "handovers")
        rows = [l.split() for l in out.splitlines()[1:]]
        assert sorted((r[0], r[1], r[2], r[4], r[5]) for r in rows) == \
            [("sched", a["handover_id"], s["vehicle_id"] or "-", "tsp-a", "tsp-b"),
             ("tsp-a", a["handover_id"], p.vin, "tsp-a", "tsp-b")], out
        assert "tsp-b" in err and "no answer within 1000 ms" in err, err
        # A frozen daemon is down in status, and a failure when named.
        rows = ctl.table("-w", "1000", "status")
        assert [(r["NAME"], r["UP"]) for r in rows] == \
            [("tsp-a", "up"), ("tsp-b", "down"), ("sched", "up")], rows
        assert rows[0]["HANDOVERS"] == "1" and rows[2]["HANDOVERS"] == "1", rows
        ctl.run("-w", "1000", "handovers", "tsp-b", expect=1)
    finally:
        tb.signal("tsp-b", signal.SIGCONT)
    wait_until(lambda: ctl.json("handovers") == [], timeout=90,
               what="no handover in flight")


# ---- operator actions ------------------------------------------------------

@testbed(tsps=TSPS)
def test_fill_register_rebind(tb):
    start_provisioning(tb, TSPS)
    ctl = Ctl(tb)
    v = vin(42)
    first = tb.path("probes", "ctl-first.db")
    rc, out, err = ctl.run("fill", "-s", first, "-m", 8)
    chip1 = chip_of(tb, first)
    assert out.splitlines() == ["filled %s: chip %s, 8 keys" % (first, chip1)], out
    for t in TSPS:
        wait_until(lambda: tb.count(t, "fills", "chip_id=?", (chip1,)) == 1,
                   what="fill record at " + t)
        assert tb.count(t, "fill_keys", "chip_id=?", (chip1,)) == 8
    rc, out, err = ctl.run("register", "-s", first, "-V", v)
    assert out.splitlines() == ["registered %s with chip %s" % (v, chip1)], out
    assert tb.query(first, "SELECT vehicle_id, chip_id FROM registration") == [(v, chip1)]
    for t in TSPS:
        wait_until(lambda: tb.query(t, "SELECT chip_id FROM registrations WHERE "
                                    "vehicle_id=?", (v,)) == [(chip1,)],
                   what="registration at " + t)
    epoch = tb.scalar("tsp-a", "SELECT epoch FROM registrations WHERE vehicle_id=?", (v,))

    # A new chip for the same vehicle: refused without --rebind.
    second = tb.path("probes", "ctl-second.db")
    js = ctl.json("fill", "-s", second, "-m", 6)
    chip2 = chip_of(tb, second)
    assert js["result"] == "OK" and js["chip_id"] == chip2 and js["m"] == 6, js
    rc, out, err = ctl.run("register", "-s", second, "-V", v, expect=1)
    assert out == "" and "DUPLICATE_REGISTRATION" in err, (out, err)
    js = ctl.json("register", "-s", second, "-V", v, "--rebind")
    assert js == {"result": "OK", "store": second, "vehicle_id": v,
                  "chip_id": chip2, "rebind": True}, js
    for t in TSPS:
        wait_until(lambda: tb.query(t, "SELECT chip_id, epoch > ? FROM registrations "
                                    "WHERE vehicle_id=?", (epoch, v)) == [(chip2, 1)],
                   what="rebound registration at " + t)
    # The TSP's vehicle list shows the new chip.
    assert [(e["vehicle_id"], e["chip_id"]) for e in tb.status("tsp-a", "vehicles")] \
        == [(v, chip2)]

    # A factory credential cannot rebind.
    third = tb.path("probes", "ctl-third.db")
    factory = Ctl(tb, cert="factory")
    factory.run("fill", "-s", third, "-m", 4)
    rc, out, err = factory.run("register", "-s", third, "-V", v, "--rebind", expect=1)
    assert "register --rebind %s:" % v in err, err


@testbed(tsps=TSPS)
def test_eavesdrop_switch(tb):
    need_qkd()
    tb.start_qkd(links=["sched tsp-a rate 200000 pool 50", "sched tsp-b rate 200000 pool 50"])
    ctl = Ctl(tb, ["qkd"])

    def eve(a, b):
        st, js = kme_call(tb, "operator", "GET", "/admin/v1/links/%s/%s" % (a, b))
        assert st == 200, (st, js)
        return js["eavesdropper"]

    def pool_eve(a, b):
        (e,) = [e for e in tb.status("qkd", "pools") if {e["sae_a"], e["sae_b"]} == {a, b}]
        return e["eavesdropper"]

    rc, out, err = ctl.run("eavesdrop", "sched/tsp-a", "on")
    assert out.splitlines() == ["link sched/tsp-a: eavesdropper on (1.00 of the qubits)"], out
    assert eve("sched", "tsp-a") == 1.0 and eve("sched", "tsp-b") == 0.0
    assert pool_eve("sched", "tsp-a") is True and pool_eve("sched", "tsp-b") is False
    # The link aborts on the QBER an intercept-resend attack causes.
    wait_until(lambda: kme_call(tb, "operator", "GET",
                                "/admin/v1/links/sched/tsp-a")[1]["aborted"],
               what="the link to abort")
    # The dash form of pools, either order; --json gives qkdd's answer.
    js = ctl.json("eavesdrop", "tsp-a-sched", "off")
    assert js["eavesdropper"] == 0.0 and js["sae_a"] in ("sched", "tsp-a"), js
    assert eve("sched", "tsp-a") == 0.0 and pool_eve("sched", "tsp-a") is False
    ctl.run("eavesdrop", "sched,tsp-b", "0.25")
    assert eve("sched", "tsp-b") == 0.25

    # Unknown links, bad switches, and credentials without the operator role.
    rc, out, err = ctl.run("eavesdrop", "sched/tsp-c", "on", expect=1)
    assert "404" in err, err
    rc, out, err = ctl.run("eavesdrop", "sched-tsp-c", "on", expect=1)
    assert "no link" in err, err
    ctl.run("eavesdrop", "sched/tsp-a", "maybe", expect=2)
    ctl.run("eavesdrop", "sched/tsp-a", "1.5", expect=2)
    ctl.run("eavesdrop", "sched/tsp-a", expect=2)
    factory = Ctl(tb, ["qkd"], cert="factory")
    rc, out, err = factory.run("eavesdrop", "sched/tsp-b", "off", expect=1)
    assert "401" in err and "operator" in err, err
    assert eve("sched", "tsp-b") == 0.25

    # A KME whose certificate is not of role qkd is not believed.
    port = free_port()
    listening = threading.Event()
    impostor = threading.Thread(target=serve_once, args=(tb, port, "tsp-a", listening),
                                daemon=True)
    impostor.start()
    assert listening.wait(10)
    topo = tb.path("conf", "impostor-topology")
    with open(tb.topology) as f:
        lines = [l for l in f if not l.startswith("qkd")]
    with open(topo, "w") as f:
        f.write("".join(lines) + "qkd 127.0.0.1:%d\n" % port)
    fooled = Ctl(tb, ["qkd"], ["topology %s" % topo], topology=False)
    rc, out, err = fooled.run("eavesdrop", "sched/tsp-b", "on", expect=1)
    assert "role tsp, not qkd" in err, err
    impostor.join(10)
    assert eve("sched", "tsp-b") == 0.25


# ---- health and usage ------------------------------------------------------

def test_health_and_usage(tb):
    tb.start_filler()
    down = free_port()
    ctl = Ctl(tb, ["filler"], ["admin gone 127.0.0.1:%d" % down])
    # The docker healthcheck form: a bare port, no configuration.
    rc, out, err = ctl.run("-a", str(tb.admin_port("filler")), "health", conf=False)
    assert out.strip().endswith("ok"), out
    rc, out, err = ctl.run("-a", "127.0.0.1:%d" % down, "health", conf=False, expect=1)
    assert "down" in out, out
    ctl.run("-w", "500", "-a", str(down), "health", conf=False, expect=1)
    ctl.run("health", "filler")
    rc, out, err = ctl.run("health", expect=1)
    assert out.splitlines()[0] == "filler ok" and out.splitlines()[1].startswith("gone down"), out
    js = ctl.json("health", expect=1)
    assert [(e["name"], e["healthy"]) for e in js] == [("filler", True), ("gone", False)], js
    # status: the unreachable daemon is down, not an error.
    rows = ctl.table("status")
    assert [(r["NAME"], r["UP"]) for r in rows] == [("filler", "up"), ("gone", "down")]
    # --json may follow the command.
    rc, out, err = ctl.run("status", "filler", "--json")
    assert [(o["name"], o["up"]) for o in json.loads(out)] == [("filler", True)], out

    # Usage errors exit 2.
    for args in ([], ["frobnicate"], ["sessions"], ["status", "nosuch"],
                 ["-w", "soon", "status"], ["register", "-s", "x.db"],
                 ["register", "-s", "x.db", "-V", "TOOSHORT"], ["fill"],
                 ["fill", "-s", "x.db", "-m", "0"], ["fill", "-s", "x.db", "extra"],
                 ["metrics"], ["--bogus", "status"], ["-a", "host:port", "health"]):
        ctl.run(*args, expect=2)
    ctl.run("-a", str(down), "health", "filler", conf=False, expect=2)
    # Configuration errors are failures with file:line.
    bad = tb.path("conf", "bad-qroamctl.conf")
    with open(bad, "w") as f:
        f.write("admin filler\nfrobnicate 1\n")
    p = subprocess.run([ctl.exe, "-f", bad, "status"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=tb.env)
    assert p.returncode == 1, p
    assert "%s:1:" % bad in p.stderr.decode() and "%s:2:" % bad in p.stderr.decode(), p
    p = subprocess.run([ctl.exe, "-f", bad, "-n"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=tb.env)
    assert p.returncode == 1 and p.stdout == b"", p
    rc, out, err = ctl.run("-n")
    assert out == "%s: configuration OK\n" % ctl.conf, out
    p = subprocess.run([ctl.exe, "-f", tb.path("conf", "missing.conf"), "status"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tb.env)
    assert p.returncode == 1, p
    # An operator action without the credential in the configuration.
    bare = tb.path("conf", "bare-qroamctl.conf")
    with open(bare, "w") as f:
        f.write("admin filler %d\n" % tb.admin_port("filler"))
    p = subprocess.run([ctl.exe, "-f", bare, "fill", "-s", tb.path("probes", "x.db")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tb.env)
    assert p.returncode == 1 and b"no topology directive" in p.stderr, p
