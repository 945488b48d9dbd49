#!/usr/bin/env python3
"""The qroam testbed on loopback (`make run`).

Starts qkdd, fillerd, registrard, schedd and three tspd whose regions tile
a route, then five vehicles that drive A -> B -> C on an accelerated clock:
a fleet of three in one vehicled process, one vehicle that powers off and
on in the middle of region B, and one that declines service at the end of
its trip.  Every daemon log line is printed as it comes; at the end the
vehicles power off, the daemons stop, and a last line `SUMMARY {json}`
gives the counts read from the vehicles' STATS lines and from the stores.

Exit status 0 when everything ran, 1 when a daemon died or logged an
error, a vehicle counted an error or did not finish its drive, or a
crossing needed re-authentication after a handover.

Layout (regions from the topology; `*` is the boundary point where A
touches both B and C, so A's M5 for a vehicle heading there names both):

    lat 30.10 +-----------+-----------+
              |           |   tsp-b   |
    lat 30.05 |   tsp-a   *-----------+
              |           |   tsp-c   |
    lat 30.00 +-----------+-----------+
           120.00      120.10      120.20
"""

import json
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("QROAM_BIN", os.path.join(ROOT, "build", "bin"))
# Hard limit of the drive in real seconds, whatever happens.
LIMIT = float(os.environ.get("QROAM_RUN_SECONDS", "90"))

TSPS = ("tsp-a", "tsp-b", "tsp-c")
REGIONS = {
    "tsp-a": "30.00,120.00 30.00,120.10 30.10,120.10 30.10,120.00",
    "tsp-b": "30.05,120.10 30.05,120.20 30.10,120.20 30.10,120.10",
    "tsp-c": "30.00,120.10 30.00,120.20 30.05,120.20 30.05,120.10",
}

SPEED = 30              # m/s of simulated driving
TIME_FACTOR = 20        # simulated seconds per real second
LOOK_AHEAD = "60s"      # tspd: 60 s x 30 m/s = 1.8 km, 3 s of real time

# Along lat 30.05 through the corner `*`, north-east into B, south into C.
ROUTE_CORNER = [(30.05, 120.03), (30.05, 120.10), (30.08, 120.15), (30.025, 120.16)]

VEHICLES = [
    # name, config directives, route, crossings expected, what it shows
    ("fleet", dict(vehicle_id="LSVAB2B10K0000100", fleet=3, fleet_spacing="20s",
                   draw="sequential"),
     ROUTE_CORNER, 2, "three vehicles in one process, 600 m apart"),
    ("cycler", dict(vehicle_id="LSVAB2B10K0000201", draw="arbitrary",
                    power_cycle_at="280s"),
     [(30.07, 120.05), (30.07, 120.17), (30.03, 120.17)], 2,
     "powers off and on in region B, then F3 with tsp-b"),
    ("decliner", dict(vehicle_id="LSVAB2B10K0000301", draw="sequential",
                      decline_at_end="yes"),
     ROUTE_CORNER + [(30.025, 120.112)], 2,
     "ends its trip in C heading for A: declines the handover"),
]

CROSSING_RX = re.compile(r"^from=(\S+) to=(\S+) gap_ms=(\d+(?:\.\d+)?) reauth=([01])$")
PRINT_LOCK = threading.Lock()


def say(text):
    """A line of the testbed itself, in the daemons' log format."""
    t = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % (int(t * 1000) % 1000)
    with PRINT_LOCK:
        print("%s testbed: %s" % (stamp, text), flush=True)


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def metres(a, b):
    """Distance between two (lat, lon) points, equirectangular."""
    lat = math.radians((a[0] + b[0]) / 2)
    dy = math.radians(b[0] - a[0]) * 6371000.0
    dx = math.radians(b[1] - a[1]) * 6371000.0 * math.cos(lat)
    return math.hypot(dx, dy)


def route_seconds(route):
    """Real seconds a vehicle needs for a route."""
    length = sum(metres(route[i], route[i + 1]) for i in range(len(route) - 1))
    return length / SPEED / TIME_FACTOR


def topology(ports):
    lines = ["# qroam testbed: three regions, A touches B and C at 30.05,120.10",
             "filler    127.0.0.1:%d" % ports["filler"],
             "registrar 127.0.0.1:%d" % ports["registrar"],
             "sched     127.0.0.1:%d" % ports["sched"],
             "qkd       127.0.0.1:%d" % ports["qkd"]]
    for t in TSPS:
        lines.append("tsp %s vehicle 127.0.0.1:%d provision 127.0.0.1:%d"
                     % (t, ports[t], ports[t + "/provision"]))
    for t in TSPS:
        lines.append("region %s %s" % (t, REGIONS[t]))
    return "\n".join(lines) + "\n"


def common(rundir, ident, cert, admin=None):
    """The shared directives; admin: the admin endpoint's port, if any."""
    return ("id {id}\ntopology {d}/topo.conf\nstore {d}/{id}.db\n"
            "ca {d}/pki/ca.pem\ncert {d}/pki/{c}.pem\nkey {d}/pki/{c}.key\n"
            "{a}").format(d=rundir, id=ident, c=cert,
                          a="admin %d\n" % admin if admin else "")


def qroamctl_conf(rundir, admin):
    """qroamctl's view of the testbed: every admin endpoint and the
    operator credential."""
    lines = ["topology %s/topo.conf" % rundir, "ca %s/pki/ca.pem" % rundir,
             "cert %s/pki/operator.pem" % rundir,
             "key %s/pki/operator.key" % rundir]
    lines += ["admin %s 127.0.0.1:%d" % kv for kv in admin.items()]
    return "\n".join(lines) + "\n"


def vehicle_conf(rundir, opts, route):
    lines = ["topology %s/topo.conf" % rundir,
             "store %s/%s.db" % (rundir, opts["vehicle_id"]),
             "ca %s/pki/ca.pem" % rundir,
             "cert %s/pki/factory.pem" % rundir,
             "key %s/pki/factory.key" % rundir,
             "operator_cert %s/pki/operator.pem" % rundir,
             "operator_key %s/pki/operator.key" % rundir,
             "fill_m 64", "retransmit 1s", "telemetry_interval 250ms",
             "session_rekey 0", "refill yes", "speed %d" % SPEED,
             "time_factor %d" % TIME_FACTOR,
             "route " + " ".join("%.4f,%.4f" % p for p in route)]
    lines += ["%s %s" % kv for kv in opts.items()]
    return "\n".join(lines) + "\n"


def setup(rundir):
    """PKI, topology and one configuration per daemon; returns
    {name: (program, ports to wait for)} in start order."""
    os.makedirs(rundir)
    names = ["filler:filler", "registrar:registrar", "sched:sched", "qkd:qkd",
             "factory:factory", "operator:operator"] + ["%s:tsp" % t for t in TSPS]
    subprocess.run(["sh", os.path.join(ROOT, "scripts", "mkpki.sh"),
                    os.path.join(rundir, "pki")] + names, check=True,
                   stdout=subprocess.DEVNULL)
    keys = ["filler", "registrar", "sched", "qkd"] + \
        [t + s for t in TSPS for s in ("", "/provision")]
    ports = dict(zip(keys, free_ports(len(keys))))
    clouds = ["qkd", "sched"] + list(TSPS) + ["filler", "registrar"]
    admin = dict(zip(clouds + [v[0] for v in VEHICLES],
                     free_ports(len(clouds) + len(VEHICLES))))
    write(os.path.join(rundir, "topo.conf"), topology(ports))
    write(os.path.join(rundir, "qroamctl.conf"), qroamctl_conf(rundir, admin))
    confs = {
        "qkd": ("qkdd", common(rundir, "qkd", "qkd", admin["qkd"]) +
                "".join("link sched %s rate 1000000 pool 1000\n" % t for t in TSPS),
                [ports["qkd"]]),
        "sched": ("schedd", common(rundir, "sched", "sched", admin["sched"]) + "handover_timeout 5s\n",
                  [ports["sched"]]),
    }
    for t in TSPS:
        confs[t] = ("tspd", common(rundir, t, t, admin[t]) +
                    "look_ahead %s\nhandover_timeout 5s\nck2_lifetime 30s\n" % LOOK_AHEAD,
                    [ports[t], ports[t + "/provision"]])
    confs["filler"] = ("fillerd", common(rundir, "filler", "filler", admin["filler"]) + "m 64\n",
                       [ports["filler"]])
    confs["registrar"] = ("registrard", common(rundir, "registrar", "registrar", admin["registrar"]),
                          [ports["registrar"]])
    for name, opts, route, _, _ in VEHICLES:
        confs[name] = ("vehicled", vehicle_conf(rundir, opts, route) +
                       "admin %d\n" % admin[name], [])
    for name, (_, text, _) in confs.items():
        write(os.path.join(rundir, name + ".conf"), text)
    return {n: (prog, p) for n, (prog, _, p) in confs.items()}


class Daemon:
    """One process; its stderr (the log) is printed and kept, its stdout
    (STATS lines of vehicled) kept."""

    def __init__(self, rundir, name, prog, echo=True):
        self.name = name
        self.echo = echo
        self.stdout = []
        self.problems = []
        self.stopping = False
        self.started = threading.Event()
        self.log = open(os.path.join(rundir, name + ".log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, prog), "-f", os.path.join(rundir, name + ".conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stderr, True)),
                        threading.Thread(target=self._pump, args=(self.proc.stdout, False))]
        for t in self.threads:
            t.daemon = True
            t.start()

    def _pump(self, stream, is_log):
        for line in stream:
            line = line.rstrip("\n")
            if not is_log:
                self.stdout.append(line)
                continue
            self.log.write(line + "\n")
            self.log.flush()
            if re.search(r"^\S+ [^:]+: (started|listening)", line):
                self.started.set()
            if "fatal" in line or "Sanitizer" in line or "runtime error" in line:
                self.problems.append(line)
            if self.echo:
                with PRINT_LOCK:
                    print(line, flush=True)

    def died(self):
        """True if the process ended without being asked to."""
        return not self.stopping and self.proc.poll() is not None

    def stop(self, timeout=10):
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.problems.append("%s did not stop within %d s" % (self.name, timeout))
        for t in self.threads:
            t.join(2)
        if self.proc.returncode != 0:
            self.problems.append("%s exited with status %s" % (self.name, self.proc.returncode))
        self.log.close()


def wait_started(d, timeout=15):
    """Wait for the daemon's start-up line (probing a TLS port with a bare
    connection would make it log a refused handshake)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and d.proc.poll() is None:
        if d.started.wait(0.05):
            return True
    return False


def query(path, sql, args=()):
    """Rows of sql on a store, read-only; [] if it is not there yet."""
    if not os.path.exists(path):
        return []
    try:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []


def vehicle_stores(rundir):
    """{VIN: store path} of every vehicle of the testbed."""
    out = {}
    for _, opts, _, _, _ in VEHICLES:
        vin, n = opts["vehicle_id"], opts.get("fleet", 0)
        if not n:
            out[vin] = os.path.join(rundir, vin + ".db")
            continue
        for i in range(n):
            out[vin[:-1] + str(i)] = os.path.join(rundir, "%s.db.%d" % (vin, i))
    return out


def expected_crossings(rundir):
    exp = {}
    stores = vehicle_stores(rundir)
    for _, opts, _, n, _ in VEHICLES:
        for vin in stores:
            if vin[:-1] == opts["vehicle_id"][:-1]:
                exp[vin] = n
    return exp


def crossings(store):
    out = []
    for (detail,) in query(store, "SELECT detail FROM events WHERE kind='crossing' ORDER BY id"):
        m = CROSSING_RX.match(detail)
        if m:
            out.append((m.group(1), m.group(2), float(m.group(3)), int(m.group(4))))
    return out


def drive_finished(rundir, expect):
    """True once every vehicle served its crossings and the decliner declined."""
    stores = vehicle_stores(rundir)
    for vin, n in expect.items():
        if len(crossings(stores[vin])) < n:
            return False
    dec = VEHICLES[2][1]["vehicle_id"]
    return bool(query(stores[dec], "SELECT 1 FROM events WHERE kind='m6' "
                                   "AND detail LIKE 'continue=0%'"))


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def vehicle_stats(daemons):
    """{VIN: STATS json} from the vehicled processes' stdout."""
    stats = {}
    for d in daemons:
        for line in d.stdout:
            if line.startswith("STATS "):
                try:
                    st = json.loads(line[6:])
                except ValueError:
                    continue
                stats[st.get("vehicle_id")] = st
    return stats


def report_vehicles(rundir, stats):
    """One line per vehicle: its crossings with their gaps, and counters."""
    for vin, path in sorted(vehicle_stores(rundir).items()):
        st = stats.get(vin, {})
        legs = ["%s->%s %.1f ms (%s)" % (f, t, gap, "F3 again" if re else "handover")
                for f, t, gap, re in crossings(path)]
        say("vehicle %s: %s; auth_ok %s, sessions %s, telemetry %s/%s acked"
            % (vin, ", ".join(legs) or "no crossing", st.get("auth_ok", "?"),
               st.get("sessions", "?"), st.get("telemetry_acked", "?"),
               st.get("telemetry_sent", "?")))


def summarize(rundir, vehicles, daemons, expect):
    stores = vehicle_stores(rundir)
    stats = vehicle_stats(vehicles)
    report_vehicles(rundir, stats)
    s = {"vehicles": len(stores), "crossings": 0, "handovers": 0,
         "handover_failures": 0, "reauth_after_handover": 0,
         "gap_ms_p50": None, "gap_ms_max": None,
         "prep_ms_p50": None, "prep_ms_max": None,
         "declined": 0, "power_cycles": 0,
         "telemetry_sent": 0, "telemetry_acked": 0,
         "auth_ok": 0, "sessions": 0, "errors": 0}
    for vin in stores:
        st = stats.get(vin)
        if st is None:
            s["errors"] += 1
            continue
        for k in ("crossings", "handovers", "telemetry_sent", "telemetry_acked",
                  "auth_ok", "sessions", "errors"):
            s[k] += int(st.get(k, 0))
        s["reauth_after_handover"] += int(st.get("reauth_after_handover", 0))
    gaps = []
    for vin, path in stores.items():
        cs = crossings(path)
        gaps += [c[2] for c in cs]
        if len(cs) < expect.get(vin, 0):
            s["errors"] += 1
        s["declined"] += len(query(path, "SELECT 1 FROM events WHERE kind='m6' "
                                         "AND detail LIKE 'continue=0%'"))
        s["power_cycles"] += len(query(path, "SELECT 1 FROM events WHERE "
                                             "kind='power_off' AND detail='power cycle'"))
    if gaps:
        s["gap_ms_p50"] = round(median(gaps), 1)
        s["gap_ms_max"] = round(max(gaps), 1)
    prep, stored, moved = [], {}, 0
    for t in TSPS:
        path = os.path.join(rundir, t + ".db")
        for state, created, updated in query(
                path, "SELECT state, created_ms, updated_ms FROM handovers WHERE role='out'"):
            if state == "done":
                prep.append(updated - created)
            else:
                s["handover_failures"] += 1
        rows = query(path, "SELECT count(*) FROM telemetry")
        stored[t] = rows[0][0] if rows else 0
        rows = query(path, "SELECT count(*) FROM telemetry WHERE tsp_id != ?", (t,))
        moved += rows[0][0] if rows else 0
    if prep:
        s["prep_ms_p50"] = median(prep)
        s["prep_ms_max"] = max(prep)
    s["stored_telemetry"] = stored
    s["history_received"] = moved
    problems = []
    for d in daemons + vehicles:
        problems += d.problems
    s["errors"] += len(problems)
    return s, problems


def scrape(port):
    """{(metric, labels text): value} of one admin endpoint's /metrics."""
    out = {}
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
    return out


def operations_report(rundir):
    """While everything still runs: qroamctl's status table, and what the
    clouds' metrics counted (handovers, refusals) for the summary."""
    conf = os.path.join(rundir, "qroamctl.conf")
    ctl = os.path.join(BIN, "qroamctl")
    if os.path.exists(ctl):
        p = subprocess.run([ctl, "-f", conf, "status"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        for line in p.stdout.decode(errors="replace").splitlines():
            say("qroamctl status | " + line)
    admin = {}
    with open(conf) as f:
        for line in f:
            w = line.split()
            if len(w) == 3 and w[0] == "admin":
                admin[w[1]] = int(w[2].rsplit(":", 1)[1])
    m = {"handovers_ok": 0, "refusals": {}}
    for name, port in admin.items():
        try:
            samples = scrape(port)
        except OSError as e:
            say("metrics of %s: %s" % (name, e))
            continue
        if name in TSPS:
            m["handovers_ok"] += int(samples.get('qroam_handovers_total{result="ok"}', 0))
        for k, v in samples.items():
            if k.startswith("qroam_refusals_total{") and v:
                why = "%s %s" % (name, k.split('"')[1])
                m["refusals"][why] = int(v)
    return m


def start_all(rundir, plan):
    """Start the clouds in order, each once its predecessor listens."""
    daemons = []
    for name, (prog, ports) in plan.items():
        if prog == "vehicled":
            continue
        d = Daemon(rundir, name, prog)
        daemons.append(d)
        if not wait_started(d):
            d.problems.append("%s did not start (ports %s)" % (name, ports))
            return daemons, False
    return daemons, True


def drive(rundir, daemons):
    """Start the vehicles and wait until their drive is over; returns the
    vehicle processes."""
    expect = expected_crossings(rundir)
    vehicles = []
    for name, _, route, _, what in VEHICLES:
        say("vehicle %s: %s (%.0f s of driving)" % (name, what, route_seconds(route)))
        vehicles.append(Daemon(rundir, name, "vehicled"))
    longest = max(route_seconds(v[2]) for v in VEHICLES)
    start = time.monotonic()
    try:
        while True:
            now = time.monotonic() - start
            if any(d.died() for d in daemons + vehicles):
                say("a process ended on its own; stopping")
                break
            if now > longest and drive_finished(rundir, expect):
                say("every vehicle reached the end of its route")
                time.sleep(1.0)
                break
            if now > LIMIT:
                say("time limit of %.0f s reached; stopping" % LIMIT)
                break
            time.sleep(0.25)
    except KeyboardInterrupt:
        say("interrupted; stopping")
    return vehicles, expect


def main():
    rundir = os.path.join(ROOT, "run", time.strftime("%Y%m%d-%H%M%S"))
    plan = setup(rundir)
    say("run directory %s; %d TSPs, time x%d, look-ahead %s"
        % (rundir, len(TSPS), TIME_FACTOR, LOOK_AHEAD))
    daemons, ok = start_all(rundir, plan)
    vehicles, expect = [], expected_crossings(rundir)
    if ok:
        vehicles, expect = drive(rundir, daemons)
    metrics = operations_report(rundir) if ok else {}
    died = [d.name for d in daemons + vehicles if d.died()]
    for d in vehicles:
        d.stop()
    for d in reversed(daemons):
        d.stop()
    summary, problems = summarize(rundir, vehicles, daemons, expect)
    if not ok:
        summary["errors"] += 1
    summary["metrics"] = metrics
    for p in problems:
        say("problem: %s" % p)
    for n in died:
        say("problem: %s died" % n)
    print("SUMMARY " + json.dumps(summary), flush=True)
    bad = summary["errors"] > 0 or died or summary["reauth_after_handover"] > 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
