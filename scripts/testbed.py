#!/usr/bin/env python3
"""The qroam testbed on loopback (`make run`).

Starts qkdd, schedd, kmpd (the key management platform of PROTOCOL
§11.1, keys from qkdd; every chip the filler fills gets its initial key
there), fillerd, registrard and three tspd whose regions tile
a route, then six vehicles that drive A -> B -> C on an accelerated clock:
a fleet of three in one vehicled process, one vehicle that powers off and
on in the middle of region B, one that declines service at the end of its
trip, and one that keeps the patent's order of entry (`entry
on_crossing`: its M3 goes to the next TSP on the crossing, where the
others open that session on HandoverReady, ahead of the boundary).
With INSTANCES=N in the environment (`make run INSTANCES=2`) each region
is N tspd instances sharing a database of a throw-away PostgreSQL cluster
(PROTOCOL §12), behind an HAProxy in TCP mode on the region's address;
the embedded default is one instance on SQLite.  Every daemon logs to its own file in the run directory
(run/<date>-<time>/<name>.log, with its configuration and store beside
it).  The terminal shows what a person follows: one line per
authentication, per crossing (with its gap), per failed handover and per
refusal, then `qroamctl status` while everything still runs, and after the
stop a last line `SUMMARY {json}` with the counts read from the vehicles'
STATS lines and from the stores, the service gap (crossing -> the new
TSP's first answer to a message sent at or after it) over all crossings
and for each way of entry in `gap_by_entry`, and the run directory.  With V=1 in the
environment (`make run V=1`) every daemon line is printed as it comes.
The run directory holds prometheus.yml, a Prometheus scrape configuration
of every daemon's admin endpoint with the alerting rules of
deploy/prometheus; with PROMETHEUS=1 (`make run PROMETHEUS=1`) a Prometheus
server on a loopback port scrapes the drive with it, its address printed at
start, its database kept in the run directory.

The live map (`qroamctl map`) runs beside the clouds: its address is
printed at the start (MAP=ADDR:PORT chooses it; default 127.0.0.1:8470,
or a free port when that one is taken).  After the drive the testbed
writes drive.svg into the run directory, a picture of the map's last view
(regions, each vehicle's route, its crossings with their gaps, failed
handovers), and names it at the end.  With LINGER=1 (`make run LINGER=1`)
the deployment keeps running after the drive until Ctrl-C, so that a
person can watch the map and switch an eavesdropper on with
`qroamctl eavesdrop`; the summary and the exit status are those of the
drive.

Exit status 0 when everything ran, 1 when a daemon died or logged an
error, a vehicle counted an error or did not finish its drive, or a
crossing needed re-authentication after a handover.  Interrupted (Ctrl-C,
SIGTERM, SIGHUP), it says so, stops every daemon and exits 128 + the
signal's number (130 for Ctrl-C).

Layout (regions from the topology; `*` is the boundary point where A
touches both B and C, so A's M5 for a vehicle heading there names both):

    lat 30.10 +-----------+-----------+
              |           |   tsp-b   |
    lat 30.05 |   tsp-a   *-----------+
              |           |   tsp-c   |
    lat 30.00 +-----------+-----------+
           120.00      120.10      120.20
"""

import atexit
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

from qroamlib import drawing, haproxy, layout, pgcluster, promconf, stores
from qroamlib.admin import http_get, parse_metrics
from qroamlib.proc import PROBLEM_RX, Console, Process, emit, stamp

ROOT = layout.ROOT
BIN = os.environ.get("QROAM_BIN", os.path.join(ROOT, "build", "bin"))
# Hard limit of the drive in real seconds, whatever happens.
LIMIT = float(os.environ.get("QROAM_RUN_SECONDS", "90"))
# V=1: every daemon line on the terminal.
VERBOSE = os.environ.get("V", "") not in ("", "0")
# INSTANCES=N: each region as N tspd on PostgreSQL behind HAProxy.
INSTANCES = int(os.environ.get("INSTANCES", "1") or "1")
# LINGER=1: the deployment stays up after the drive until Ctrl-C.
LINGER = os.environ.get("LINGER", "") not in ("", "0")
# MAP=ADDR:PORT: where the live map listens.
MAP = os.environ.get("MAP", "")
# PROMETHEUS=1: a Prometheus server scrapes the drive.
PROMETHEUS = os.environ.get("PROMETHEUS", "") not in ("", "0")

TSPS = ("tsp-a", "tsp-b", "tsp-c")
PG_STORES = {}          # tsp: database URI, with INSTANCES > 1
REGIONS = {
    "tsp-a": [(30.00, 120.00), (30.00, 120.10), (30.10, 120.10), (30.10, 120.00)],
    "tsp-b": [(30.05, 120.10), (30.05, 120.20), (30.10, 120.20), (30.10, 120.10)],
    "tsp-c": [(30.00, 120.10), (30.00, 120.20), (30.05, 120.20), (30.05, 120.10)],
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
    ("patent", dict(vehicle_id="LSVAB2B10K0000401", draw="sequential",
                    entry="on_crossing"),
     ROUTE_CORNER, 2, "entry on_crossing: its M3 goes to the next TSP on the crossing"),
]

# The daemon lines shown without V=1: authentications, crossings,
# handover failures and refusals (and fatal errors and sanitizer reports).
FOLLOWED_RX = re.compile(r"^\S+ [^:]+: (?:warning: )?(?:"
                         r"auth ok |crossing \S+ -> \S+: (?:served|not served)|"
                         r"handover (?:in )?failed |.*\brefused\b)")

CONSOLE = Console("testbed")


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP reached the testbed."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupt(signum, frame):
    raise Interrupted(signum)


class Journal:
    """The testbed's own lines: on the terminal, and all of them (those
    shown only with V=1 too) in testbed.log of the run directory."""

    def __init__(self):
        self.file = None

    def open(self, rundir):
        self.file = open(os.path.join(rundir, "testbed.log"), "a")

    def say(self, text, show=True):
        if show or VERBOSE:
            CONSOLE.say(text)
        if self.file is not None:
            self.file.write("%s %s\n" % (stamp(), text))
            self.file.flush()


JOURNAL = Journal()
say = JOURNAL.say


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


# ---- the run directory -----------------------------------------------------

def region_instances(rundir, plan, ports, admins, tsps, pg, n):
    """Each region's tspd as n instances on database pg[tsp], listening
    on ports of their own, and an HAProxy on the region's addresses: the
    configurations, and plan and admins updated (the instances in the
    region's place, its HAProxy after them)."""
    new = {}
    for name, (prog, listen) in plan.items():
        if prog != "tspd":
            new[name] = (prog, listen)
            continue
        with open(os.path.join(rundir, name + ".conf")) as f:
            base = [l for l in f.read().splitlines()
                    if not l.startswith(("store ", "admin "))]
        servers = {"vehicle": [], "provision": []}
        for i in range(1, n + 1):
            inst = name if i == 1 else "%s-%d" % (name, i)
            lv, lp = layout.free_ports(2)
            servers["vehicle"].append(lv)
            servers["provision"].append(lp)
            admins[inst] = admins.get(inst) or layout.free_port()
            bus = layout.cloud_bus(os.path.join(rundir, name + "-cloud.key"))
            layout.write_file(os.path.join(rundir, inst + ".conf"), "\n".join(
                base + ["store %s" % pg[name], "admin %d" % admins[inst],
                        "instance %s" % inst, "listen vehicle 127.0.0.1:%d" % lv,
                        "listen provision 127.0.0.1:%d" % lp] +
                ["%s %s" % kv for kv in bus]) + "\n")
            new[inst] = ("tspd", [lv, lp, admins[inst]])
        front = {"vehicle": ports[name], "provision": ports[name + "/provision"]}
        layout.write_file(os.path.join(rundir, name + "-haproxy.conf"),
                          haproxy.config(front, servers))
        new[name + "-haproxy"] = ("haproxy", list(front.values()))
    plan.clear()
    plan.update(new)


def write_clouds(rundir, tsps, regions, extra, admin=True, kmp=False):
    """The PKI (the clouds, `factory` and `operator`), the topology and
    one configuration per cloud daemon in rundir: the common directives,
    an admin endpoint on a port of its own if admin, then extra[name];
    with kmp, kmpd and its two topology lines too.
    Returns ({name: (program, ports it listens on)} in start order, the
    topology's ports {role or tsp or tsp/provision: port}, {name: admin
    port})."""
    os.makedirs(rundir, exist_ok=True)
    pki = os.path.join(rundir, "pki")
    order = [("qkd", "qkdd"), ("sched", "schedd")] + ([("kmp", "kmpd")] if kmp else []) + \
        [(t, "tspd") for t in tsps] + \
        [("filler", "fillerd"), ("registrar", "registrard")]
    layout.mkpki(pki, ["%s:%s" % (n, "tsp" if p == "tspd" else n) for n, p in order] +
                 ["factory:factory", "operator:operator"])
    keys = [r for r in layout.ROLES if kmp or not r.startswith("kmp")] + \
        [t + s for t in tsps for s in ("", "/provision")]
    ports = dict(zip(keys, layout.free_ports(len(keys))))
    topo = os.path.join(rundir, "topo.conf")
    layout.write_file(topo, layout.topology_text(
        ports, tsps, regions, "qroam testbed: %d regions" % len(tsps)))
    plan, admins = {}, {}
    for name, prog in order:
        listen = [ports[name]] + ([ports[name + "/provision"]] if prog == "tspd" else []) + \
            ([ports["kmp_tls"]] if prog == "kmpd" else [])
        if admin:
            admins[name] = layout.free_port()
            listen.append(admins[name])
        directives = layout.cloud_directives(name, topo, os.path.join(rundir, name + ".db"),
                                             pki, name, admins.get(name))
        layout.write_file(os.path.join(rundir, name + ".conf"),
                          layout.conf_text(directives + extra.get(name, [])))
        plan[name] = (prog, listen)
    return plan, ports, admins


def qroamctl_conf(rundir, admin):
    """qroamctl's view of the testbed: every admin endpoint and the
    operator credential."""
    pki = os.path.join(rundir, "pki")
    return layout.conf_text(
        [("topology", os.path.join(rundir, "topo.conf")), ("ca", os.path.join(pki, "ca.pem")),
         ("cert", os.path.join(pki, "operator.pem")),
         ("key", os.path.join(pki, "operator.key"))] +
        [("admin", "%s 127.0.0.1:%d" % kv) for kv in admin.items()])


def vehicle_conf(rundir, opts, route, admin):
    pki = os.path.join(rundir, "pki")
    return layout.conf_text(
        [("topology", os.path.join(rundir, "topo.conf")),
         ("store", os.path.join(rundir, opts["vehicle_id"] + ".db")),
         ("ca", os.path.join(pki, "ca.pem")),
         ("cert", os.path.join(pki, "factory.pem")), ("key", os.path.join(pki, "factory.key")),
         ("operator_cert", os.path.join(pki, "operator.pem")),
         ("operator_key", os.path.join(pki, "operator.key")),
         ("fill_m", 64), ("retransmit", "1s"), ("telemetry_interval", "250ms"),
         ("session_rekey", 0), ("refill", True), ("speed", SPEED),
         ("time_factor", TIME_FACTOR),
         ("route", ["%.4f,%.4f" % p for p in route])] + list(opts.items()) +
        [("admin", admin)])


def setup(rundir):
    """PKI, topology and one configuration per daemon; returns
    {name: (program, ports it listens on)} in start order."""
    links = [("link", "sched %s rate 1000000 pool 1000" % t) for t in TSPS]
    links.append(("link", "kmp kmp-peer rate 1000000 pool 1000"))
    ho = [("handover_timeout", "5s")]
    extra = {"qkd": links, "sched": ho, "filler": [("m", 64)],
             "kmp": [("key_source", "etsi014 kmp-peer")]}
    for t in TSPS:
        extra[t] = [("look_ahead", LOOK_AHEAD)] + ho + [("ck2_lifetime", "30s")]
    plan, ports, admin = write_clouds(rundir, TSPS, REGIONS, extra, kmp=True)
    if INSTANCES > 1:
        region_instances(rundir, plan, ports, admin, TSPS, PG_STORES, INSTANCES)
    for name, opts, route, _, _ in VEHICLES:
        admin[name] = layout.free_port()
        layout.write_file(os.path.join(rundir, name + ".conf"),
                          vehicle_conf(rundir, opts, route, admin[name]))
        plan[name] = ("vehicled", [admin[name]])
    layout.write_file(os.path.join(rundir, "qroamctl.conf"), qroamctl_conf(rundir, admin))
    promconf.write(os.path.join(rundir, "prometheus.yml"),
                   [(n, plan[n][0], p) for n, p in admin.items()], interval="2s",
                   comment="Prometheus for the qroam testbed run in %s" % rundir)
    return plan


# ---- processes -------------------------------------------------------------

def show(proc, line):
    """A daemon line on the terminal: every one with V=1, else those a
    person follows."""
    if VERBOSE or FOLLOWED_RX.search(line) or PROBLEM_RX.search(line):
        emit(line)


def daemon(rundir, name, prog, echo=show):
    """prog with rundir/name.conf, logging to rundir/name.log; its stdout
    (vehicled's STATS lines) is kept apart as well.  HAProxy, whose stop
    on SIGTERM is immediate, may die of it."""
    exe = haproxy.HAPROXY if prog == "haproxy" else os.path.join(BIN, prog)
    p = Process(name, [exe, "-f", os.path.join(rundir, name + ".conf")],
                os.path.join(rundir, name + ".log"), capture=True, stdout_apart=True,
                echo=echo)
    if prog == "haproxy":
        p.stop_ok = (-signal.SIGTERM,)
    return p


def wait_ready(d, ports, timeout=15):
    """Wait until d listens on every port it is configured with (its
    listeners and its admin endpoint).  None when it does, else why not."""
    if d.wait_listening(ports, timeout):
        return None
    if d.poll() is not None:
        return "%s exited with status %s during start-up" % (d.name, d.returncode)
    return "%s did not listen on %s within %d s" % (d.name, d.missing_ports(ports), timeout)


def start_all(rundir, plan, daemons, echo=show):
    """Start the clouds in order, each once its predecessor listens on all
    its ports; daemons receives each as it starts.  None, or what failed."""
    for name, (prog, ports) in plan.items():
        if prog == "vehicled":
            continue
        d = daemon(rundir, name, prog, echo)
        daemons.append(d)
        why = wait_ready(d, ports)
        if why:
            d.problems.append(why)
            return why
    return None


def start_prometheus(rundir, daemons):
    """PROMETHEUS=1: a Prometheus server on a loopback port with
    rundir/prometheus.yml, its database in rundir/prometheus; daemons
    receives it.  None, or what failed."""
    if not os.access(promconf.PROMETHEUS, os.X_OK):
        return "PROMETHEUS=1 needs %s (make deps)" % promconf.PROMETHEUS
    port = layout.free_port()
    conf, data = os.path.join(rundir, "prometheus.yml"), os.path.join(rundir, "prometheus")
    d = Process("prometheus", promconf.command(conf, data, "127.0.0.1:%d" % port),
                os.path.join(rundir, "prometheus.log"), capture=False)
    daemons.append(d)
    why = wait_ready(d, [port], timeout=60)
    if why:
        d.problems.append(why)
        return why
    say("prometheus: http://127.0.0.1:%d/alerts scrapes every daemon (prometheus.log); "
        "afterwards: %s" % (port, " ".join(promconf.command(conf, data))))
    return None


# ---- what the stores say ---------------------------------------------------

def vehicle_stores(rundir):
    """{VIN: store path} of every vehicle of the testbed."""
    out = {}
    for _, opts, _, _, _ in VEHICLES:
        out.update(stores.fleet(opts["vehicle_id"], os.path.join(
            rundir, opts["vehicle_id"] + ".db"), opts.get("fleet", 0)))
    return out


def expected_crossings(rundir):
    exp = {}
    for _, opts, _, n, _ in VEHICLES:
        for vin, _ in stores.fleet(opts["vehicle_id"], "", opts.get("fleet", 0)):
            exp[vin] = n
    return exp


def declined(store):
    return len(stores.query(store, "SELECT 1 FROM events WHERE kind='m6' "
                                   "AND detail LIKE 'continue=0%'"))


def drive_finished(rundir, expect):
    """True once every vehicle served its crossings and the decliner declined."""
    paths = vehicle_stores(rundir)
    if any(len(stores.crossings(paths[vin])) < n for vin, n in expect.items()):
        return False
    return declined(paths[VEHICLES[2][1]["vehicle_id"]]) > 0


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
    """One line per vehicle (testbed.log; the terminal with V=1): its
    crossings with their gaps, and counters."""
    for vin, path in sorted(vehicle_stores(rundir).items()):
        st = stats.get(vin, {})
        legs = ["%s->%s %.1f ms (%s, entry %s)" % (f, t, gap, "F3 again" if re else
                                                   "handover", entry or "?")
                for f, t, gap, re, entry in stores.crossings(path, with_entry=True)]
        say("vehicle %s: %s; auth_ok %s, sessions %s, telemetry %s/%s acked"
            % (vin, ", ".join(legs) or "no crossing", st.get("auth_ok", "?"),
               st.get("sessions", "?"), st.get("telemetry_acked", "?"),
               st.get("telemetry_sent", "?")), show=False)


def gap_by_entry(by_entry):
    """{entry: {crossings, gap_ms_p50, gap_ms_max}} of {entry: [gap_ms]},
    prepared entry and on_crossing always listed."""
    out = {}
    for entry in sorted(set(by_entry) | {"prepared", "on_crossing"}):
        g = by_entry.get(entry, [])
        out[entry] = {"crossings": len(g),
                      "gap_ms_p50": round(stores.median(g), 1) if g else None,
                      "gap_ms_max": round(max(g), 1) if g else None}
    return out


def count(path, sql, args=()):
    rows = stores.query(path, sql, args)
    return rows[0][0] if rows else 0


def kmp_counts(path):
    """What kmpd's store counts: identities by kind, sessions (and those
    still keeping a key for a party), keys issued."""
    if not os.path.exists(path):
        return None
    k = {"identities_vehicle": count(path, "SELECT count(*) FROM identities "
                                           "WHERE kind = 'vehicle'"),
         "identities_encryptor": count(path, "SELECT count(*) FROM identities "
                                             "WHERE kind = 'encryptor'"),
         "sessions": count(path, "SELECT count(*) FROM sessions"),
         "sessions_open": count(path, "SELECT count(*) FROM sessions "
                                      "WHERE key IS NOT NULL"),
         "keys_issued": count(path, "SELECT count(*) FROM issued")}
    say("kmpd: %d vehicle and %d encryptor identities, %d sessions (%d waiting for a "
        "party), %d keys issued" % (k["identities_vehicle"], k["identities_encryptor"],
                                    k["sessions"], k["sessions_open"], k["keys_issued"]))
    return k


def summarize(rundir, vehicles, daemons, expect):
    paths = vehicle_stores(rundir)
    stats = vehicle_stats(vehicles)
    report_vehicles(rundir, stats)
    s = {"vehicles": len(paths), "crossings": 0, "handovers": 0,
         "handover_failures": 0, "reauth_after_handover": 0,
         "gap_ms_p50": None, "gap_ms_max": None, "gap_by_entry": {},
         "prep_ms_p50": None, "prep_ms_max": None,
         "declined": 0, "power_cycles": 0,
         "telemetry_sent": 0, "telemetry_acked": 0, "telemetry_resent": 0,
         "telemetry_stored": 0, "telemetry_dropped": 0,
         "auth_ok": 0, "sessions": 0, "errors": 0}
    for vin in paths:
        st = stats.get(vin)
        if st is None:
            s["errors"] += 1
            continue
        for k in ("crossings", "handovers", "telemetry_sent", "telemetry_acked",
                  "telemetry_resent", "telemetry_stored", "telemetry_dropped",
                  "auth_ok", "sessions", "errors", "reauth_after_handover"):
            s[k] += int(st.get(k, 0))
    gaps, by_entry = [], {}
    for vin, path in paths.items():
        cs = stores.crossings(path, with_entry=True)
        gaps += [c[2] for c in cs]
        for c in cs:
            by_entry.setdefault(c[4] or "unknown", []).append(c[2])
        if len(cs) < expect.get(vin, 0):
            s["errors"] += 1
        s["declined"] += declined(path)
        s["power_cycles"] += count(path, "SELECT count(*) FROM events WHERE "
                                         "kind='power_off' AND detail='power cycle'")
    if gaps:
        s["gap_ms_p50"] = round(stores.median(gaps), 1)
        s["gap_ms_max"] = round(max(gaps), 1)
    s["gap_by_entry"] = gap_by_entry(by_entry)
    prep, stored, moved = [], {}, 0
    for t in TSPS:
        path = PG_STORES.get(t) or os.path.join(rundir, t + ".db")
        for state, created, updated in stores.query(
                path, "SELECT state, created_ms, updated_ms FROM handovers WHERE role='out'"):
            if state == "done":
                prep.append(updated - created)
            else:
                s["handover_failures"] += 1
        stored[t] = count(path, "SELECT count(*) FROM telemetry")
        moved += count(path, "SELECT count(*) FROM telemetry WHERE tsp_id != ?", (t,))
    if prep:
        s["prep_ms_p50"] = stores.median(prep)
        s["prep_ms_max"] = max(prep)
    s["stored_telemetry"] = stored
    s["history_received"] = moved
    s["kmp"] = kmp_counts(os.path.join(rundir, "kmp.db"))
    problems = []
    for d in daemons + vehicles:
        problems += d.problems
    s["errors"] += len(problems)
    return s, problems


# ---- while everything runs -------------------------------------------------

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
            code, body = http_get(port, "/metrics")
            samples = parse_metrics(body) if code == 200 else {}
        except (OSError, ValueError) as e:
            say("metrics of %s: %s" % (name, e))
            continue
        for (metric, labels), v in samples.items():
            labels = dict(labels)
            if metric == "qroam_handovers_total" and labels.get("result") == "ok" \
                    and name in TSPS:
                m["handovers_ok"] += int(v)
            elif metric == "qroam_refusals_total" and v:
                m["refusals"]["%s %s" % (name, labels.get("reason"))] = int(v)
    return m


# ---- the live map -----------------------------------------------------------

def map_address():
    """MAP, else 127.0.0.1:8470 when free, else a free port."""
    if MAP:
        return MAP
    import socket
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8470))
            return "127.0.0.1:8470"
        except OSError:
            return "127.0.0.1:%d" % layout.free_port()


def start_map(rundir, daemons):
    """qroamctl map on the testbed's qroamctl.conf; its URL, or None."""
    ctl = os.path.join(BIN, "qroamctl")
    if not os.path.exists(ctl):
        return None
    addr = map_address()
    page = ["-d", os.path.join(ROOT, "qroamctl", "map")]
    m = Process("map", [ctl, "-f", os.path.join(rundir, "qroamctl.conf"), "map", "-l", addr] +
                (page if os.path.isdir(page[1]) else []),
                os.path.join(rundir, "map.log"), capture=True, echo=show)
    daemons.append(m)
    host, port = addr.rsplit(":", 1)
    if not m.wait_listening([int(port)], 10):
        say("problem: the map did not listen on %s" % addr)
        return None
    url = "http://%s/" % addr
    say("live map on %s (open it in a browser; it updates every second)" % url)
    return url


def map_view(url):
    """The map's /map.json now, or None."""
    if url is None:
        return None
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    try:
        code, body = http_get(int(port), "/map.json", host=host)
        return json.loads(body) if code == 200 else None
    except (OSError, ValueError):
        return None


def picture(rundir, url):
    """drive.svg (and drive.json, the view it shows) in rundir; its path."""
    view = map_view(url)
    if view is None:
        return None
    with open(os.path.join(rundir, "drive.json"), "w") as f:
        json.dump(view, f, indent=1)
    path = os.path.join(rundir, "drive.svg")
    drawing.write(path, view, "qroam drive %s" % os.path.basename(rundir))
    return path


def linger(rundir, url):
    """LINGER=1: keep everything running until a signal."""
    conf = os.path.join(rundir, "qroamctl.conf")
    say("LINGER=1: the deployment keeps running; map on %s; switch an eavesdropper "
        "with: %s -f %s eavesdrop sched/tsp-a on; Ctrl-C ends it"
        % (url, os.path.join(BIN, "qroamctl"), conf))
    try:
        while True:
            time.sleep(3600)
    except Interrupted:
        pass


def drive(rundir, daemons, vehicles):
    """Start the vehicles (into vehicles) and wait until their drive is
    over."""
    expect = expected_crossings(rundir)
    for name, _, route, _, what in VEHICLES:
        say("vehicle %s: %s (%.0f s of driving)" % (name, what, route_seconds(route)))
        vehicles.append(daemon(rundir, name, "vehicled"))
    longest = max(route_seconds(v[2]) for v in VEHICLES)
    start = time.monotonic()
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


def stop_all(vehicles, daemons):
    """Vehicles first (they power off while their TSP is up), then the
    clouds in reverse start order."""
    for d in vehicles + list(reversed(daemons)):
        d.stop()


def main():
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    rundir = os.path.join(ROOT, "run", time.strftime("%Y%m%d-%H%M%S"))
    daemons, vehicles, failed, metrics, stopped = [], [], None, {}, None
    svg = None
    cluster = None
    try:
        if INSTANCES > 1:
            os.makedirs(rundir, exist_ok=True)
            cluster = pgcluster.Cluster(rundir).start()
            atexit.register(cluster.stop)
            for t in TSPS:
                PG_STORES[t] = cluster.create(t.replace("-", "_"))
        plan = setup(rundir)
        JOURNAL.open(rundir)
        say("run directory %s; %d TSPs, time x%d, look-ahead %s; every daemon logs to "
            "<name>.log there%s" % (rundir, len(TSPS), TIME_FACTOR, LOOK_AHEAD,
                                    "" if VERBOSE else " (V=1 shows every line)"))
        failed = start_all(rundir, plan, daemons)
        if failed is None and PROMETHEUS:
            failed = start_prometheus(rundir, daemons)
        if failed is None:
            url = start_map(rundir, daemons)
            drive(rundir, daemons, vehicles)
            metrics = operations_report(rundir)
            svg = picture(rundir, url)
            if LINGER:
                linger(rundir, url)
    except Interrupted as e:
        stopped = e.signum
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if stopped is not None:
        say("interrupted by %s; stopping every daemon" % signal.Signals(stopped).name)
    died = [d.name for d in daemons + vehicles if d.died()]
    stop_all(vehicles, daemons)
    if not os.path.isdir(rundir):
        return 128 + stopped
    summary, problems = summarize(rundir, vehicles, daemons, expected_crossings(rundir))
    if cluster is not None:
        summary["region_instances"] = INSTANCES
        cluster.stop()
    if failed is not None:
        summary["errors"] += 1
    summary["metrics"] = metrics
    for p in problems:
        say("problem: %s" % p)
    for n in died:
        say("problem: %s died" % n)
    emit("SUMMARY " + json.dumps(summary))
    if stopped is not None:
        say("interrupted: the drive did not end; the logs, stores and configurations "
            "are in %s" % rundir)
        return 128 + stopped
    say("the logs, stores and configurations are in %s" % rundir)
    if svg:
        say("picture of the drive: %s" % svg)
    bad = summary["errors"] > 0 or died or summary["reauth_after_handover"] > 0
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
