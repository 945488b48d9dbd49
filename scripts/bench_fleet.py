#!/usr/bin/env python3
"""The fleet benchmark of `make bench` (BENCHMARKS.md, "Scale"): a fleet of
QROAM_FLEET_N vehicles (default 100,000) driving across ten regions with
the full handover, on the real daemons of build/bin on loopback.

  - ten tspd (SQLite, one process per region), schedd, qkdd, fillerd,
    registrard, and PROCS vehicled in fleet mode, each with the fleet store
    (one SQLite file for its vehicles, written off the loop) and at most
    QROAM_FLEET_PER_PROC vehicles (default 9,000: a process may hold 20,000
    descriptors here, RLIMIT_NOFILE's hard limit, and a vehicle holds one
    connection, two during a handover);
  - the regions and the route come from scripts/fleettopo.py: a strip of
    ten 1 x 0.2 degree regions, a lap of 1,939 km east and back with 18
    crossings, the vehicles spread evenly over one lap at 30 m/s and
    QROAM_FLEET_TIME_FACTOR (default 5) times real time;
  - enrolment is kept in a world directory, run/fleet-N/, and reused: the
    PKI, the topology (with its ports), every daemon's store and the fleet
    stores.  A world whose fleet stores do not hold every vehicle enrolled
    is completed first with `enroll_only` (fills and registrations over one
    connection per server, key pairs from registrard's worker threads),
    and the TSPs are waited for until each holds every fill and M2;
  - then the drive: the fleet powers on at QROAM_FLEET_RATE vehicles a
    second (default 400, all processes together), the run waits until
    every vehicle is in session, lets QROAM_FLEET_WARMUP seconds (60) pass
    and measures over QROAM_FLEET_SECONDS (600): CPU seconds (utime + stime
    from /proc/PID/stat, all threads) and RSS of every process, handovers
    and crossings from vehicled's /status, the service gap of every
    crossing of the window from the fleet stores' journals, descriptors,
    and the machine's load (loadavg, and the CPU time the other processes
    of the machine took in the window, from /proc/stat).

Results go to run/fleet-N/run-STAMP/RESULTS.json and a summary to the
terminal.  Exit status 0 when the run completed (whatever the numbers), 1
when something broke (a daemon died, the fleet did not get into session).
"""

import json
import math
import os
import shutil
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleettopo  # noqa: E402
from qroamlib import layout  # noqa: E402
from qroamlib.admin import http_get  # noqa: E402
from qroamlib.proc import Console, Process  # noqa: E402
from qroamlib.stores import parse_crossing  # noqa: E402

ROOT = layout.ROOT
BIN = os.environ.get("QROAM_BIN", os.path.join(ROOT, "build", "bin"))
say = Console("bench-fleet").say


def env_int(name, default):
    return int(os.environ.get(name, str(default)))


def env_float(name, default):
    return float(os.environ.get(name, str(default)))


N = env_int("QROAM_FLEET_N", 100000)
PER_PROC = env_int("QROAM_FLEET_PER_PROC", 9000)
NREG = 10
SPEED = 30.0
TIME_FACTOR = env_float("QROAM_FLEET_TIME_FACTOR", 5)
TELEMETRY = os.environ.get("QROAM_FLEET_TELEMETRY", "10s")
RATE = env_int("QROAM_FLEET_RATE", 400)
WARMUP_S = env_float("QROAM_FLEET_WARMUP", 60)
WINDOW_S = env_float("QROAM_FLEET_SECONDS", 600)
FILL_M = env_int("QROAM_FLEET_FILL_M", 32)
SAMPLE_S = env_float("QROAM_FLEET_SAMPLE", 10)
LOOK_AHEAD = "120s"     # 3.6 km at 30 m/s: over two ticks of driving
LAPS = 12
WORLD = os.environ.get("QROAM_FLEET_WORLD", os.path.join(ROOT, "run", "fleet-%d" % N))
VIN_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
TSPS = fleettopo.tsp_names(NREG)
# Drive the first QROAM_FLEET_DRIVE_PROCS processes only (default all): a
# smaller fleet of the same shape on the same world.
DRIVE_PROCS = env_int("QROAM_FLEET_DRIVE_PROCS", 0) or \
    max(1, int(math.ceil(N / float(PER_PROC))))


def procs():
    """[(index, first vehicle, vehicles)] of the vehicled processes (the
    world's: enrolment keeps their VINs, so PER_PROC is the world's too)."""
    k = max(1, int(math.ceil(N / float(PER_PROC))))
    out, first = [], 0
    for p in range(k):
        n = N // k + (1 if p < N % k else 0)
        out.append((p, first, n))
        first += n
    return out


def ndrive():
    """The vehicles the drive drives."""
    return sum(n for p, _, n in procs() if p < DRIVE_PROCS)


def vin_base(p):
    return "LFLEET%s0000000000" % VIN_LETTERS[p % len(VIN_LETTERS)]


# ---- the world: PKI, topology, ports, configurations -----------------------

def world_ports():
    """The world's ports, chosen once and kept (M1 names the TSPs' ports)."""
    path = os.path.join(WORLD, "ports.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    keys = [r for r in layout.ROLES if not r.startswith("kmp")] + \
        [t + s for t in TSPS for s in ("", "/provision")]
    keys += ["%s/admin" % n for n in ["qkd", "sched", "filler", "registrar"] + TSPS]
    keys += ["vehicled-%d/admin" % p for p, _, _ in procs()]
    ports = dict(zip(keys, layout.free_ports(len(keys))))
    layout.write_file(path, json.dumps(ports, indent=1, sort_keys=True))
    return ports


def cloud_conf(name, ports, extra):
    pki = os.path.join(WORLD, "pki")
    d = layout.cloud_directives(name, os.path.join(WORLD, "topo.conf"),
                                os.path.join(WORLD, "stores", name + ".db"), pki, name,
                                ports[name + "/admin"])
    return layout.conf_text(d + extra, "bench_fleet: %s" % name)


def route_lines(pts):
    """The route as `route` lines of at most 50 waypoints each."""
    wps = fleettopo.route(pts, LAPS)
    return [("route", wps[i:i + 50]) for i in range(0, len(wps), 50)]


def vehicled_conf(p, first, n, ports, enroll_only):
    """Process p's vehicles are every K-th of the fleet along the lap, from
    the p-th on: each process spreads over the whole lap, so that the first
    processes alone are a smaller fleet of the same shape."""
    pki = os.path.join(WORLD, "pki")
    pts = fleettopo.lap(NREG)
    lap_ms = fleettopo.lap_length_m(pts) / SPEED * 1000
    k = len(procs())
    d = [("id", "vehicled-%d" % p), ("vehicle_id", vin_base(p)),
         ("topology", os.path.join(WORLD, "topo.conf")),
         ("store", os.path.join(WORLD, "stores", "fleet-%d.db" % p)),
         ("ca", os.path.join(pki, "ca.pem")),
         ("cert", os.path.join(pki, "factory.pem")), ("key", os.path.join(pki, "factory.key")),
         ("operator_cert", os.path.join(pki, "operator.pem")),
         ("operator_key", os.path.join(pki, "operator.key")), ("refill", True),
         ("fleet", n), ("fleet_store", True),
         ("fleet_spacing", "%dms" % max(1, int(lap_ms * k / N))),
         ("fleet_offset", "%dms" % int(lap_ms * p / N)),
         ("fleet_rate", max(1, RATE // DRIVE_PROCS)), ("enroll_only", enroll_only),
         ("fill_m", FILL_M), ("speed", SPEED), ("time_factor", TIME_FACTOR),
         ("telemetry_interval", TELEMETRY), ("retransmit", "30s"),
         ("provision_timeout", "300s"), ("connect_timeout", "20s"),
         ("admin", ports["vehicled-%d/admin" % p])]
    return layout.conf_text(d + route_lines(pts), "bench_fleet: process %d of %d, %d"
                            " vehicles" % (p, k, n))


def write_world():
    """Create the world once (PKI, ports, topology); (re)write every
    configuration from the current knobs.  Returns the ports."""
    for sub in ("pki", "stores", "conf"):
        os.makedirs(os.path.join(WORLD, sub), exist_ok=True)
    pki = os.path.join(WORLD, "pki")
    if not os.path.exists(os.path.join(pki, "ca.pem")):
        names = [("qkd", "qkd"), ("sched", "sched"), ("filler", "filler"),
                 ("registrar", "registrar")] + [(t, "tsp") for t in TSPS]
        layout.mkpki(pki, ["%s:%s" % nr for nr in names] +
                     ["factory:factory", "operator:operator"])
    ports = world_ports()
    layout.write_file(os.path.join(WORLD, "topo.conf"), layout.topology_text(
        ports, TSPS, fleettopo.regions(NREG), "bench_fleet: %d regions" % NREG))
    ho = [("handover_timeout", "10s")]
    extra = {
        "qkd": [("link", "sched %s rate 4000000 pool 20000" % t) for t in TSPS],
        "sched": ho,
        "filler": [("m", FILL_M)],
        # Multi-prime keys are three times quicker to generate: the
        # enrolment of 100,000 takes hours less (BENCHMARKS.md, Scale).
        "registrar": [("rsa_primes", os.environ.get("QROAM_FLEET_RSA_PRIMES", "3"))],
    }
    for t in TSPS:
        extra[t] = [("look_ahead", LOOK_AHEAD), ("ck2_lifetime", "60s")] + ho
    for name, ex in extra.items():
        layout.write_file(os.path.join(WORLD, "conf", name + ".conf"),
                          cloud_conf(name, ports, ex))
    return ports


# ---- processes and /proc ---------------------------------------------------

PROGS = [("qkd", "qkdd"), ("sched", "schedd")] + [(t, "tspd") for t in TSPS] + \
    [("filler", "fillerd"), ("registrar", "registrard")]


def copy_bins(rundir):
    """The programs of this run, copied: a build meanwhile cannot replace
    a running program's file, and the run knows what it ran."""
    global BIN
    dst = os.path.join(rundir, "bin")
    os.makedirs(dst)
    for prog in set(p for _, p in PROGS) | {"vehicled"}:
        shutil.copy2(os.path.join(BIN, prog), os.path.join(dst, prog))
    BIN = dst


def start(rundir, name, prog, conf):
    p = Process(name, [os.path.join(BIN, prog), "-f", conf],
                os.path.join(rundir, name + ".log"), capture=False)
    return p


def listening(p, ports, timeout=60):
    if p.wait_listening(ports, timeout):
        return True
    raise RuntimeError("%s did not start (exit %s); see its log" % (p.name, p.poll()))


def start_clouds(rundir, ports):
    out = {}
    for name, prog in PROGS:
        p = start(rundir, name, prog, os.path.join(WORLD, "conf", name + ".conf"))
        out[name] = p
        want = [ports[name]] + ([ports[name + "/provision"]] if prog == "tspd" else [])
        listening(p, want + [ports[name + "/admin"]])
    return out


# The vehicled processes running, for the stop at the end.
FLEET = {}


def start_fleet(rundir, ports, enroll_only, which=None):
    out = FLEET
    for p, first, n in procs():
        if which is not None and p not in which:
            continue
        conf = os.path.join(WORLD, "conf", "vehicled-%d.conf" % p)
        layout.write_file(conf, vehicled_conf(p, first, n, ports, enroll_only))
        name = "vehicled-%d" % p
        out[name] = start(rundir, name, "vehicled", conf)
        listening(out[name], [ports[name + "/admin"]], 300)
    return {n: out[n] for n in out if which is None or int(n.split("-")[1]) in which}


def stop(procs_, timeout=120):
    """SIGTERM to each (by its pid), then wait for all."""
    for p in list(procs_.values()):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for name, p in list(procs_.items()):
        try:
            p.wait(timeout)
        except Exception:
            p.kill()
        if procs_ is not FLEET:
            FLEET.pop(name, None)


def proc_sample(pid):
    """(CPU seconds, RSS KiB, open descriptors) of pid."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/%d/stat" % pid) as f:
        w = f.read().rsplit(")", 1)[1].split()
    cpu = (int(w[11]) + int(w[12])) / float(hz)
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    try:
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        fds = 0
    return cpu, rss, fds


def machine_cpu():
    """(busy, total) jiffies of the machine from /proc/stat."""
    with open("/proc/stat") as f:
        w = [int(x) for x in f.readline().split()[1:]]
    idle = w[3] + w[4]
    return sum(w) - idle, sum(w)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def status(ports, name):
    code, body = http_get(ports[name + "/admin"], "/status", timeout=30)
    return json.loads(body) if code == 200 else {}


def fleet_status(ports, fleet):
    tot = {}
    for name in fleet:
        for k, v in status(ports, name).items():
            if isinstance(v, int) and not isinstance(v, bool):
                tot[k] = tot.get(k, 0) + v
    return tot


def count(path, sql):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=60)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


# ---- the phases -------------------------------------------------------------

def enrolled_in(p):
    """Vehicles of process p enrolled in its fleet store."""
    path = os.path.join(WORLD, "stores", "fleet-%d.db" % p)
    if not os.path.exists(path):
        return 0
    return count(path, "SELECT count(*) FROM vehicles WHERE reg_chip_id = chip_id")


def enrolled_in_world():
    return sum(enrolled_in(p) for p, _, _ in procs())


def wait_tsps(timeout):
    """Until every TSP store holds a fill and a registration of every
    vehicle enrolled in the world."""
    want = enrolled_in_world()
    deadline = time.time() + timeout
    while time.time() < deadline:
        low = []
        for t in TSPS:
            path = os.path.join(WORLD, "stores", t + ".db")
            f = count(path, "SELECT count(*) FROM fills")
            r = count(path, "SELECT count(*) FROM registrations")
            if f < want or r < want:
                low.append("%s %d/%d" % (t, f, r))
        if not low:
            return True
        say("waiting for the TSPs' fills/registrations: %s" % ", ".join(low[:3]))
        time.sleep(30)
    return False


def enrol(rundir, ports, clouds):
    """Enrol the world's vehicles one process after the other (so that the
    first processes can drive while the others enrol in a later run)."""
    have = enrolled_in_world()
    need = sum(n for p, _, n in procs() if p < DRIVE_PROCS)
    if sum(enrolled_in(p) for p in range(DRIVE_PROCS)) >= need:
        say("world %s: the %d vehicles to drive are enrolled already (%d of %d in"
            " the world, kept from earlier runs)" % (WORLD, need, have, N))
        wait_tsps(4 * 3600)
        return {"reused": True, "enrolled_before": have}
    say("enrolling %d vehicles (%d enrolled already), one process after the other"
        % (N - have, have))
    t0 = time.time()
    reg = clouds["registrar"]
    c0 = proc_sample(reg.pid)[0]
    for p, _, n in procs():
        done0 = enrolled_in(p)
        if done0 >= n or p >= DRIVE_PROCS:
            continue
        tp = time.time()
        fleet = start_fleet(rundir, ports, True, {p})
        name = "vehicled-%d" % p
        while True:
            time.sleep(20)
            done = status(ports, name).get("enrolled", 0)
            say("process %d: enrolled %d of %d (%.2f vehicles/s, load %s)" % (
                p, done, n, (done - done0) / max(1.0, time.time() - tp), loadavg()))
            if done >= n:
                break
            if fleet[name].poll() is not None:
                raise RuntimeError("%s died during the enrolment" % name)
        stop(fleet)
    secs = time.time() - t0
    c1 = proc_sample(reg.pid)[0]
    say("enrolment took %.0f s; waiting for every TSP to hold every fill and M2" % secs)
    wait_tsps(4 * 3600)
    return {"reused": False, "enrolled_before": have, "seconds": round(secs, 1),
            "per_second": round((enrolled_in_world() - have) / secs, 2),
            "registrar_cpu_s_per_vehicle": round((c1 - c0) / max(1, enrolled_in_world()
                                                                  - have), 4),
            "tsps_synced_s": round(time.time() - t0 - secs, 1)}


def sample_all(everything):
    return {n: proc_sample(p.pid) for n, p in everything.items() if p.poll() is None}


def window_gaps(t0_ms, t1_ms):
    """[(gap_ms, reauth)] of the crossings journalled in the window."""
    out = []
    for p, _, _ in procs():
        path = os.path.join(WORLD, "stores", "fleet-%d.db" % p)
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=60)
        try:
            rows = con.execute("SELECT detail FROM events WHERE kind = 'crossing' "
                               "AND ms BETWEEN ? AND ?", (t0_ms, t1_ms)).fetchall()
        finally:
            con.close()
        for (d,) in rows:
            c = parse_crossing(d)
            if c:
                out.append((c[2], c[3]))
    return out


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def sample_window(w0, everything, ports, fleet):
    """Every SAMPLE_S of the window: each process's RSS (KiB) and CPU
    seconds, and the fleet's crossings, handovers and telemetry so far;
    a process that dies ends the window with an error."""
    series = []
    while True:
        left = w0 + WINDOW_S - time.time()
        if left <= 0:
            return series
        time.sleep(min(SAMPLE_S, left))
        dead = [n for n, p in everything.items() if p.poll() is not None]
        if dead:
            raise RuntimeError("%s died during the window" % dead)
        sample = sample_all(everything)
        st = fleet_status(ports, fleet)
        series.append({"t": round(time.time() - w0, 1),
                       "rss_kib": {n: v[1] for n, v in sample.items()},
                       "cpu_s": {n: round(v[0], 2) for n, v in sample.items()},
                       "crossings": st.get("crossings", 0), "handovers": st.get("handovers", 0),
                       "telemetry_acked": st.get("telemetry_acked", 0)})


def drive(rundir, ports, clouds):
    fleet = start_fleet(rundir, ports, False, set(range(DRIVE_PROCS)))
    everything = dict(clouds, **fleet)
    t0 = time.time()
    while True:
        time.sleep(15)
        st = fleet_status(ports, fleet)
        say("in session %d of %d, crossings %d, handovers %d, reauth %d (load %s)"
            % (st.get("in_session", 0), ndrive(), st.get("crossings", 0), st.get("handovers", 0),
               st.get("reauth_after_handover", 0), loadavg()))
        dead = [n for n, p in everything.items() if p.poll() is not None]
        if dead:
            raise RuntimeError("%s died" % dead)
        if st.get("in_session", 0) >= ndrive() * 0.999:
            break
        if time.time() - t0 > 3600:
            raise RuntimeError("the fleet did not get into session within an hour")
    ramp_s = time.time() - t0
    say("fleet in session after %.0f s; warming up %.0f s" % (ramp_s, WARMUP_S))
    time.sleep(WARMUP_S)
    s0, m0, st0, la0 = sample_all(everything), machine_cpu(), fleet_status(ports, fleet), \
        loadavg()
    w0 = time.time()
    series = sample_window(w0, everything, ports, fleet)
    s1, m1, st1, la1 = sample_all(everything), machine_cpu(), fleet_status(ports, fleet), \
        loadavg()
    w1 = time.time()
    gaps = window_gaps(int(w0 * 1000), int(w1 * 1000))
    stop(fleet)
    return {"ramp_s": round(ramp_s, 1), "window": (w0, w1), "s0": s0, "s1": s1,
            "machine": (m0, m1), "status": (st0, st1), "load": (la0, la1),
            "gaps": gaps, "series": series, "final": fleet_status_lines(rundir, fleet)}


def fleet_status_lines(rundir, fleet):
    """The FLEET lines vehicled printed at its exit."""
    out = []
    for name in fleet:
        try:
            with open(os.path.join(rundir, name + ".log")) as f:
                for line in f:
                    if line.startswith("FLEET "):
                        out.append(json.loads(line[6:]))
        except OSError:
            pass
    return out


def report(rundir, enrolment, d):
    w = d["window"][1] - d["window"][0]
    nd = ndrive()
    groups = {"vehicled": [n for n in d["s1"] if n.startswith("vehicled")],
              "tspd": TSPS, "schedd": ["sched"], "qkdd": ["qkd"],
              "fillerd+registrard": ["filler", "registrar"]}
    per = {}
    for g, names in groups.items():
        cpu = sum(d["s1"][n][0] - d["s0"][n][0] for n in names if n in d["s0"] and n in d["s1"])
        rss = sum(d["s1"][n][1] for n in names if n in d["s1"])
        fds = sum(d["s1"][n][2] for n in names if n in d["s1"])
        per[g] = {"cores": round(cpu / w, 3), "cpu_us_per_vehicle_s": round(cpu / w / nd * 1e6, 3),
                  "rss_mib": round(rss / 1024.0, 1), "rss_kib_per_vehicle": round(rss / nd, 2),
                  "fds": fds}
    cloud = ["tspd", "schedd", "qkdd"]
    st0, st1 = d["status"]
    ho = st1.get("handovers", 0) - st0.get("handovers", 0)
    cr = st1.get("crossings", 0) - st0.get("crossings", 0)
    re_ = st1.get("reauth_after_handover", 0) - st0.get("reauth_after_handover", 0)
    (b0, t0), (b1, t1) = d["machine"]
    ours = sum(d["s1"][n][0] - d["s0"][n][0] for n in d["s1"] if n in d["s0"])
    ncpu = os.cpu_count() or 1
    machine_busy = (b1 - b0) / float(t1 - t0) * ncpu
    gaps = [g for g, r in d["gaps"] if not r]
    res = {
        "n": nd, "world_n": N, "processes": len(procs()), "per_process": PER_PROC, "regions": NREG,
        "time_factor": TIME_FACTOR, "telemetry_interval": TELEMETRY, "speed": SPEED,
        "enrolment": enrolment, "ramp_s": d["ramp_s"], "window_s": round(w, 1),
        "groups": per,
        "cloud_cores": round(sum(per[g]["cores"] for g in cloud), 3),
        "cloud_rss_mib": round(sum(per[g]["rss_mib"] for g in cloud), 1),
        "handovers": ho, "crossings": cr, "reauth": re_,
        "handovers_per_s": round(ho / w, 2),
        "cpu_ms_per_handover_cloud": round(sum(per[g]["cores"] for g in cloud) * w / max(1, ho)
                                           * 1000, 3),
        "gap_ms": {"n": len(gaps), "p50": pct(gaps, .5), "p90": pct(gaps, .9),
                   "p99": pct(gaps, .99), "p999": pct(gaps, .999),
                   "max": max(gaps) if gaps else None},
        "machine": {"cores_busy": round(machine_busy, 2), "ours": round(ours / w, 2),
                    "others": round(machine_busy - ours / w, 2),
                    "loadavg_start": d["load"][0], "loadavg_end": d["load"][1]},
        "final": d["final"],
    }
    with open(os.path.join(rundir, "RESULTS.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    say("RESULT %s" % json.dumps({k: v for k, v in res.items() if k != "final"},
                                 sort_keys=True))
    return res


class Interrupted(Exception):
    pass


def interrupted(signum, frame):
    raise Interrupted("signal %d" % signum)


def main(after=None):
    """The run; after(rundir, drive, results), if given, runs once the
    report is written, while the clouds still run, and gives the exit
    status."""
    if N <= 0:
        say("QROAM_FLEET_N=%d: no fleet run" % N)
        return 0
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    ports = write_world()
    rundir = os.path.join(WORLD, "run-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(rundir)
    say("world %s, run %s: %d vehicles in %d processes, %d regions; driving %d"
        " processes" % (WORLD, rundir, N, len(procs()), NREG, DRIVE_PROCS))
    clouds = {}
    copy_bins(rundir)
    try:
        clouds = start_clouds(rundir, ports)
        enrolment = enrol(rundir, ports, clouds)
        if os.environ.get("QROAM_FLEET_ENROL_ONLY"):
            return 0
        d = drive(rundir, ports, clouds)
        res = report(rundir, enrolment, d)
        return after(rundir, d, res) if after is not None else 0
    except (RuntimeError, OSError) as e:
        say("FAILED: %s" % e)
        return 1
    except Interrupted as e:
        say("interrupted (%s): stopping everything" % e)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop(FLEET)
        stop(clouds)


if __name__ == "__main__":
    sys.exit(main())
