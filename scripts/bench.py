#!/usr/bin/env python3
"""The qroam benchmarks (`make bench`).

Starts the real daemons (build/bin, not sanitized) on loopback in a fresh
run directory: qkdd, fillerd, registrard, schedd and two tspd whose regions
meet at longitude 120.10 (tsp-b with prv_cache 0, for the cold-cache M4
figure).  build/bin/qbench enrols the vehicles and generates the load.
Every run measures its own baselines (bench_base.py, qbench rtt and echo)
next to the figures, and each figure is reported against its goal as the
median over RUNS runs of the ratio of that run's figure to the goal taken
from that run's baselines, with min-max and met / missed (bench_report.py):

  gap        a vehicle shuttling between the two TSPs: crossings with
             prepared entry (the service gap and the stored_seq lag), in the
             patent's order after a handover, and with F3 + F4,
             against loopback round trips sampled before every crossing
  prep       M5 -> HandoverReady at the vehicle, 100 handovers in a row
  parallel   handovers/s with PARALLEL vehicles at once, and the CPU the
             daemons spent per handover
  sessions   SESSIONS vehicles authenticate on a connection each, then send
             their M3s at once: establishments/s and tspd's RSS per session
  auth       M4/s on one connection (tspd's workers on every core), warm at
             tsp-a and cold at tsp-b, against openssl speed -multi NPROC
  telemetry  telemetry messages/s on one session, tspd pinned to one core,
             against the bare libevent echo server and Mosquitto

Then one diagnostic pass (QROAM_BENCH_DIAG=0 skips it; not part of the
figures) counts with strace the fsync/fdatasync calls and TLS connections
per operation in each daemon and profiles tspd by library with perf when
they are installed.  The report is printed and written with every sample
to RESULTS.json in the run directory; the gap histogram and the
preparation CDF go to bench-gap.svg and bench-prep.svg beside
BENCHMARKS.md.

Exit status 0 whatever the numbers; 1 only when something broke: a daemon
died, qbench failed, a baseline could not be measured, or a handover or
authentication did not complete; 130 after Ctrl-C, once every daemon
stopped.
"""

import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_base  # noqa: E402
import bench_report  # noqa: E402
import testbed  # noqa: E402
from bench_base import BaselineError  # noqa: E402
from qroamlib.proc import Console, Process  # noqa: E402
from qroamlib.stores import median, query  # noqa: E402
from testbed import daemon, wait_ready, write_clouds  # noqa: E402

ROOT = testbed.ROOT
BIN = testbed.BIN
say = Console("bench").say
QBENCH = os.path.join(BIN, "qbench")
RUNS = int(os.environ.get("QROAM_BENCH_RUNS", "5"))
PARALLEL = int(os.environ.get("QROAM_BENCH_PARALLEL", "32"))
SESSIONS = int(os.environ.get("QROAM_BENCH_SESSIONS", "300"))
MQTT_N = int(os.environ.get("QROAM_BENCH_MQTT_N", "20000"))
DIAG = os.environ.get("QROAM_BENCH_DIAG", "1") != "0"
NPROC = os.cpu_count() or 1
TSPS = ("tsp-a", "tsp-b")
REGIONS = {
    "tsp-a": [(30.00, 120.00), (30.00, 120.10), (30.10, 120.10), (30.10, 120.00)],
    "tsp-b": [(30.00, 120.10), (30.00, 120.20), (30.10, 120.20), (30.10, 120.10)],
}
VIN_BASE = "LBENCH2B10K000000"
# Vehicle indexes of each measurement (each has its own chip store).
GAP_V = 0
PREP_V = RUNS
PAR_V = 2 * RUNS
AUTH_V = PAR_V + PARALLEL
TELE_V = AUTH_V + 1
DIAG_V = TELE_V + 1
SESS_V = DIAG_V + 1
NVEHICLES = SESS_V + SESSIONS


class Broken(Exception):
    """Something failed that is not a matter of speed."""


def machine():
    """nproc, CPU model and RAM of this machine."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "ram_mib": ram,
            "kernel": platform.release(),
            "openssl": subprocess.run(["openssl", "version"], capture_output=True,
                                      text=True).stdout.strip()}


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def vin(i):
    """The VIN qbench enrols vehicle i under."""
    return VIN_BASE[:11] + "%06d" % i


# ---- the deployment --------------------------------------------------------

class Bed:
    def __init__(self):
        self.dir = os.path.join(ROOT, "run", "bench-" + time.strftime("%Y%m%d-%H%M%S"))
        os.makedirs(self.dir)
        self.daemons = {}
        self.earlier_problems = []

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def setup(self):
        """PKI, topology and the clouds' configurations (no admin endpoints:
        nothing scrapes them while the load runs)."""
        ho = [("handover_timeout", "10s")]
        extra = {"qkd": [("link", "sched %s rate 10000000 pool 20000" % t) for t in TSPS],
                 "sched": ho, "filler": [("m", 256)]}
        for t in TSPS:
            extra[t] = [("look_ahead", "10s")] + ho + [("ck2_lifetime", "30s")]
        # tsp-b decodes Prv for every M4: the cold-cache M4 figure.
        extra["tsp-b"].append(("prv_cache", 0))
        self.plan, self.port, _ = write_clouds(self.dir, TSPS, REGIONS, extra, admin=False)

    def start(self):
        for name, (prog, ports) in self.plan.items():
            d = daemon(self.dir, name, prog, echo=None)
            self.daemons[name] = d
            why = wait_ready(d, ports)
            if why:
                raise Broken("%s; see %s" % (why, self.path(name + ".log")))

    def restart(self, name):
        """Stop a daemon and start it again on the same configuration,
        store and log: a fresh process whose heap holds nothing of the
        measurements before."""
        old = self.daemons[name]
        old.stop()
        self.earlier_problems += old.problems
        prog, ports = self.plan[name]
        d = Process(name, [os.path.join(BIN, prog), "-f", self.path(name + ".conf")],
                    self.path(name + ".log"), capture=True, stdout_apart=True, echo=None,
                    append=True)
        self.daemons[name] = d
        why = wait_ready(d, ports)
        if why:
            raise Broken("%s; see %s" % (why, self.path(name + ".log")))

    def check(self):
        for d in self.daemons.values():
            if d.died():
                raise Broken("%s died (exit %s); see %s" % (
                    d.name, d.returncode, self.path(d.name + ".log")))

    def stop(self):
        problems = self.earlier_problems
        for d in reversed(list(self.daemons.values())):
            d.stop()
            problems += d.problems
        return problems

    def pid(self, name):
        return self.daemons[name].pid

    def pin(self, name, cpus):
        """Restrict a daemon to the given CPU list (no-op on one CPU)."""
        if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
            return
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(self.pid(name))],
                       check=True, stdout=subprocess.DEVNULL)

    def unpin(self, name):
        self.pin(name, "0-%d" % ((os.cpu_count() or 1) - 1))

    def cpu(self):
        """{daemon: CPU seconds used so far}."""
        return {n: cpu_seconds(d.pid) for n, d in self.daemons.items()}

    def qbench(self, *args, cpu=None, timeout=300, wrap=()):
        """Run one qbench command; its RESULT fields and SAMPLES lists."""
        argv = list(wrap) + [QBENCH, "-d", self.path("vehicles"), "-t", self.path("topo.conf"),
                "-c", self.path("pki", "ca.pem"), "-C", self.path("pki", "factory.pem"),
                "-K", self.path("pki", "factory.key"), "-S"] + [str(a) for a in args]
        if cpu is not None and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
            argv = ["taskset", "-c", str(cpu)] + argv
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        with open(self.path("qbench.log"), "a") as f:
            f.write("$ %s\n%s%s" % (" ".join(argv), p.stdout, p.stderr))
        res, samples = None, {}
        for line in p.stdout.splitlines():
            w = line.split()
            if w[:1] == ["RESULT"]:
                res = {"status": w[1]}
                for kv in w[2:]:
                    k, _, v = kv.partition("=")
                    try:
                        res[k] = float(v)
                    except ValueError:
                        res[k] = v
            elif w[:1] == ["SAMPLES"]:
                samples[w[1]] = [float(x) for x in w[2:]]
        self.check()
        if res is None or res["status"] != "OK":
            raise Broken("qbench %s: %s (stderr: %s)" % (
                " ".join(str(a) for a in args), res, p.stderr.strip()[-500:]))
        return res, samples


def wait_registered(bed, n, timeout=120):
    """Wait until both TSPs hold the registrations of the n vehicles."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = [query(bed.path(t + ".db"), "SELECT count(*) FROM registrations "
                        "WHERE vehicle_id LIKE 'LBENCH%'") for t in TSPS]
        if all(c and c[0][0] >= n for c in counts):
            return
        bed.check()
        time.sleep(0.2)
    raise Broken("the TSPs did not receive %d registrations in %d s" % (n, timeout))


# ---- the measurements ------------------------------------------------------

def baselines(bed, r):
    """This run's baselines: {name: value}."""
    say("run %d/%d: baselines (fdatasync, openssl, SQLite, echo server, Mosquitto)"
        % (r + 1, RUNS))
    out = {"fsync_us": bench_base.fsync_us(bed.dir),
           "sign1_per_s": bench_base.openssl_sign_per_s(2, cpu=0),
           "signN_per_s": bench_base.openssl_sign_per_s(2, multi=NPROC),
           "sqlite1_per_s": bench_base.sqlite_inserts_per_s(bed.dir, 1),
           "sqlite100_per_s": bench_base.sqlite_inserts_per_s(bed.dir, 100)}
    res, _ = bed.qbench("echo", "-w", 256, "-s", 2)
    out["echo_per_s"] = res["per_second"]
    out["mqtt_per_s"] = bench_base.mosquitto_msgs_per_s(bed.dir, bed.path("pki"), MQTT_N)
    return out


def one_run(bed, r):
    """One run of every measurement and baseline; {figure: value} and raw
    samples."""
    out, samples = baselines(bed, r), {}
    say("run %d/%d: gap (18 crossings: prepared entry, F3 + F4, patent order in turn)"
        % (r + 1, RUNS))
    res, s = bed.qbench("gap", "-A", "tsp-a", "-B", "tsp-b", "-f", GAP_V + r, "-n", 18)
    out.update(rtt_us=res["rtt_us_p50"], gap_prepared_us=res["gap_prepared_us_p50"],
               stored_lag_us=res["stored_lag_us_p50"],
               gap_handover_us=res["gap_handover_us_p50"],
               key_destroy_us=res["key_destroy_us_p50"],
               gap_reauth_us=res["gap_reauth_us_p50"])
    samples["gap"] = s
    say("run %d/%d: preparation (100 handovers in a row)" % (r + 1, RUNS))
    res, s = bed.qbench("handover", "-A", "tsp-a", "-B", "tsp-b", "-f", PREP_V + r,
                        "-P", 1, "-n", 100)
    out.update(prep_us_p50=res["prep_us_p50"], prep_us_p99=res["prep_us_p99"],
               handovers_per_s_serial=res["per_second"])
    samples["prep"] = s
    say("run %d/%d: %d vehicles handing over at once" % (r + 1, RUNS, PARALLEL))
    c0 = bed.cpu()
    res, s = bed.qbench("handover", "-A", "tsp-a", "-B", "tsp-b", "-f", PAR_V,
                        "-P", PARALLEL, "-n", 8)
    c1 = bed.cpu()
    out.update(handovers_per_s=res["per_second"], parallel_prep_us_p50=res["prep_us_p50"],
               parallel_prep_us_p99=res["prep_us_p99"])
    for n in ("tsp-a", "tsp-b", "sched", "qkd"):
        out["parallel_cpu_" + n] = (c1[n] - c0[n]) / max(res["seconds"], 1e-3)
    out["handover_cpu_ms"] = sum(c1[n] - c0[n] for n in ("tsp-a", "tsp-b", "sched", "qkd")) \
        * 1000 / max(res["handovers"], 1)
    say("run %d/%d: %d sessions established at once and held by a fresh tsp-a"
        % (r + 1, RUNS, SESSIONS))
    # A heap that earlier sessions grew would hide what these cost.
    bed.restart("tsp-a")
    res, _ = bed.qbench("sessions", "-A", "tsp-a", "-f", SESS_V, "-n", SESSIONS,
                        "-p", bed.pid("tsp-a"))
    out.update(m3_per_s=res["per_second"], sessions_held=res["sessions"],
               session_bytes=res["bytes_per_session"],
               session_bytes_from_start=res["bytes_per_session_from_start"])
    say("run %d/%d: M4 rate, Prv cache warm (tsp-a) and cold (tsp-b)" % (r + 1, RUNS))
    c0 = cpu_seconds(bed.pid("tsp-a"))
    res, _ = bed.qbench("auth", "-A", "tsp-a", "-f", AUTH_V, "-w", 32, "-s", 2)
    out["m4_per_s"] = res["per_second"]
    out["m4_cpu_us"] = (cpu_seconds(bed.pid("tsp-a")) - c0) * 1e6 / max(res["ok"], 1)
    res, _ = bed.qbench("auth", "-A", "tsp-b", "-f", AUTH_V, "-w", 32, "-s", 2)
    out["m4_cold_per_s"] = res["per_second"]
    bed.pin("tsp-a", "0")
    try:
        say("run %d/%d: telemetry on one core" % (r + 1, RUNS))
        c0 = cpu_seconds(bed.pid("tsp-a"))
        res, _ = bed.qbench("telemetry", "-A", "tsp-a", "-f", TELE_V, "-w", 256, "-s", 2,
                            cpu=1)
        out["telemetry_per_s"] = res["per_second"]
        out["telemetry_cpu_us"] = (cpu_seconds(bed.pid("tsp-a")) - c0) * 1e6 / \
            max(res["acked"], 1)
    finally:
        bed.unpin("tsp-a")
    return out, samples


# ---- diagnostics: what limits the figures ----------------------------------

class Strace:
    """strace -c on some daemons while a workload runs: syscall counts."""

    CALLS = "fsync,fdatasync,connect,accept,accept4"

    def __init__(self, bed, names):
        self.procs = {}
        self.files = {}
        if not shutil.which("strace"):
            return
        for n in names:
            self.files[n] = bed.path("strace-%s.txt" % n)
            self.procs[n] = subprocess.Popen(
                ["strace", "-f", "-c", "-e", "trace=" + self.CALLS, "-o", self.files[n],
                 "-p", str(bed.pid(n))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def finish(self):
        """{daemon: {syscall: calls}}."""
        counts = {}
        for n, p in self.procs.items():
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            counts[n] = self.parse(self.files[n])
        return counts

    @classmethod
    def parse(cls, path):
        """{syscall: calls} of an `strace -c` summary."""
        c = {}
        try:
            with open(path) as f:
                for line in f:
                    w = line.split()
                    if len(w) >= 5 and w[-1] in cls.CALLS.split(",") and w[3].isdigit():
                        c[w[-1]] = int(w[3])
        except OSError:
            pass
        return c


def perf_dso(bed, name, seconds, workload):
    """Share of tspd's CPU samples per library while workload runs."""
    if not shutil.which("perf"):
        return None
    data = bed.path("perf-%s.data" % name)
    rec = subprocess.Popen(["perf", "record", "-q", "-F", "2000", "-o", data, "-p",
                            str(bed.pid(name)), "--", "sleep", str(seconds + 1)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    workload()
    rec.wait(seconds + 30)
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "dso"],
                         capture_output=True, text=True).stdout
    shares = {}
    for line in rep.splitlines():
        m = re.match(r"^\s+([\d.]+)%\s+(\S+)", line)
        if m:
            shares[m.group(2)] = float(m.group(1))
    return shares or None


def stages(bed, vins):
    """Mean time (ms) of each step of the handovers of the vehicles vins,
    from tspd's handover rows and schedd's audit log (ms clocks)."""
    audit = {}
    for hid, event, ms in query(bed.path("sched.db"),
                                "SELECT handover_id, event, ms FROM audit"):
        audit.setdefault(hid, {}).setdefault(event, ms)
    vins = set(vins)
    steps = [("M6 at TSPA -> A1 at schedd (TSPA connects)", "start", "a1"),
             ("CK1 from the KME (schedd enc_keys)", "a1", "ck1"),
             ("TSPA dec_keys CK1, A2 at schedd", "ck1", "a2"),
             ("A2 forwarded, TSPB accepts", "a2", "a2_accepted"),
             ("TSPB connects, A3 at schedd", "a2_accepted", "a3"),
             ("CK2 from the KME (enc_keys), M7 sent", "a3", "done"),
             ("M7 -> M8 -> M8Ack at TSPA (TSPB dec_keys CK2)", "done", "end")]
    sums = {name: [] for name, _, _ in steps}
    for t in TSPS:
        rows = query(bed.path(t + ".db"), "SELECT handover_id, vehicle_id, created_ms, "
                     "updated_ms FROM handovers WHERE role='out' AND state='done'")
        for hid, v, created, updated in rows:
            ev = audit.get(hid)
            if v not in vins or not ev:
                continue
            ev = dict(ev, start=created, end=updated)
            for name, a, b in steps:
                if a in ev and b in ev:
                    sums[name].append(ev[b] - ev[a])
    return [(name, sum(v) / len(v)) for name, v in sums.items() if v]


def tls_handshake_ms(bed, n=50):
    """Median time of a mutual TLS connection to tsp-b's provisioning
    listener with schedd's certificate (TCP connect + handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(bed.path("pki", "ca.pem"))
    ctx.check_hostname = False
    ctx.load_cert_chain(bed.path("pki", "sched.pem"), bed.path("pki", "sched.key"))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        sock = socket.create_connection(("127.0.0.1", bed.port["tsp-b/provision"]), 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(sock, server_hostname="localhost"):
            times.append((time.perf_counter() - t) * 1000)
    return median(times)


def diagnostics(bed):
    """Where the time goes: crypto prices, syscalls per operation, CPU by
    library, and the steps of a handover."""
    diag = {}
    say("diagnostics: crypto prices, fsync and connections per operation")
    res, _ = bed.qbench("cost", cpu=0)
    diag["cost_us"] = {k[:-3]: res[k] for k in res if k.endswith("_us")}
    diag["tls_handshake_ms"] = tls_handshake_ms(bed)
    bed.pin("tsp-a", "0")
    try:
        st = Strace(bed, ["tsp-a"])
        res, _ = bed.qbench("telemetry", "-A", "tsp-a", "-f", TELE_V, "-w", 256, "-s", 1,
                            cpu=1)
        c = st.finish().get("tsp-a")
        diag["telemetry_fsync_per_msg"] = _syncs(c) / max(res["acked"], 1) if c else None
        diag["telemetry_perf_dso"] = perf_dso(bed, "tsp-a", 2, lambda: bed.qbench(
            "telemetry", "-A", "tsp-a", "-f", TELE_V, "-w", 256, "-s", 2, cpu=1))
    finally:
        bed.unpin("tsp-a")
    # M4 as the figure measures it: tspd unpinned, its workers on every core.
    st = Strace(bed, ["tsp-a"])
    res, _ = bed.qbench("auth", "-A", "tsp-a", "-f", AUTH_V, "-w", 32, "-s", 1)
    c = st.finish().get("tsp-a")
    diag["m4_fsync_per_auth"] = _syncs(c) / max(res["ok"], 1) if c else None
    diag["m4_perf_dso"] = perf_dso(bed, "tsp-a", 2, lambda: bed.qbench(
        "auth", "-A", "tsp-a", "-f", AUTH_V, "-w", 32, "-s", 2))
    n = min(SESSIONS, 100)
    st = Strace(bed, ["tsp-a"])
    res, _ = bed.qbench("sessions", "-A", "tsp-a", "-f", SESS_V, "-n", n)
    c = st.finish().get("tsp-a")
    diag["m3_fsync_per_session"] = _syncs(c) / max(res["sessions"], 1) if c else None
    if shutil.which("strace"):
        out = bed.path("strace-vehicle.txt")
        bed.qbench("gap", "-A", "tsp-a", "-B", "tsp-b", "-f", DIAG_V, "-n", 8,
                   wrap=("strace", "-f", "-c", "-e", "trace=" + Strace.CALLS, "-o", out))
        diag["vehicle_fsync_per_m3"] = _syncs(Strace.parse(out)) / 9
    names = ["tsp-a", "tsp-b", "sched", "qkd"]
    st = Strace(bed, names)
    res, _ = bed.qbench("handover", "-A", "tsp-a", "-B", "tsp-b", "-f", DIAG_V, "-P", 1,
                        "-n", 20)
    counts = st.finish()
    n = res["handovers"] or 1
    diag["per_handover"] = {d: {k: round(v / n, 2) for k, v in c.items()}
                            for d, c in counts.items()} if counts else None
    diag["stages_ms"] = stages(bed, [vin(PREP_V + r) for r in range(RUNS)])
    diag["parallel_stages_ms"] = stages(bed, [vin(PAR_V + i) for i in range(PARALLEL)])
    return diag


def _fmt(v):
    return "n/a" if v is None else "%.2f" % v


def _syncs(c):
    return (c or {}).get("fsync", 0) + (c or {}).get("fdatasync", 0)


# ---- report ----------------------------------------------------------------

def summarize(runs):
    keys = runs[0].keys()
    return {k: median(r[k] for r in runs) for k in keys}


def report(info, runs, rows, diag):
    m = summarize(runs)
    lines = ["", "qroam benchmarks: %d runs (%s), command: make bench" % (
                 len(runs), time.strftime("%Y-%m-%d")),
             "machine: %d CPUs, %s, %d MiB RAM, Linux %s, %s" % (
                 info["nproc"], info["cpu"], info["ram_mib"], info["kernel"], info["openssl"]),
             "", bench_report.text_report(runs, rows, SESSIONS, info["enrol_s"]), "",
             "other figures (medians of the runs):"]
    other = [
        ("crossing gap, re-authentication (connect + F3 + F4)",
         "%.0f us" % m["gap_reauth_us"]),
        ("chip key destruction (on HandoverReady, not in the gap)",
         "%.0f us" % m["key_destroy_us"]),
        ("handover preparation M5 -> HandoverReady, p50", "%.2f ms" % (m["prep_us_p50"] / 1000)),
        ("handovers/s, one vehicle at a time", "%.1f" % m["handovers_per_s_serial"]),
        ("preparation p50 / p99 with %d at once" % PARALLEL, "%.1f / %.1f ms" % (
            m["parallel_prep_us_p50"] / 1000, m["parallel_prep_us_p99"] / 1000)),
        ("CPU busy then: tsp-a / tsp-b / schedd / qkdd", "%.0f%% / %.0f%% / %.0f%% / %.0f%%" % (
            100 * m["parallel_cpu_tsp-a"], 100 * m["parallel_cpu_tsp-b"],
            100 * m["parallel_cpu_sched"], 100 * m["parallel_cpu_qkd"])),
        ("tspd RSS per session counted from before the first (start-up included)",
         "%.1f KiB" % (m["session_bytes_from_start"] / 1024)),
        ("tspd CPU per telemetry message", "%.1f us" % m["telemetry_cpu_us"]),
        ("tspd CPU per M4 (warm)", "%.0f us" % m["m4_cpu_us"]),
        ("M4/s warm against openssl sign/s on one core", "%.2f x" % median(
            r["m4_per_s"] / r["sign1_per_s"] for r in runs)),
    ]
    w = max(len(a) for a, _ in other)
    lines += ["  %-*s  %s" % (w, a, b) for a, b in other]
    if diag:
        lines += ["", "diagnostics (one extra pass, partly under strace/perf):"]
        lines += _diag_lines(diag)
    return "\n".join(lines)


def plots(bed, samples, runs):
    """The gap histogram and the preparation CDF, beside BENCHMARKS.md and
    in the run directory; the paths written."""
    gaps = [v for s in samples for v in s["gap"].get("gap_prepared_us", [])]
    preps = [v / 1000 for s in samples for v in s["prep"].get("prep_us", [])]
    written = []
    for name, svg in (("bench-gap.svg", bench_report.gap_histogram(
            gaps, median(r["rtt_us"] for r in runs), len(runs)) if gaps else None),
            ("bench-prep.svg", bench_report.prep_cdf(preps, len(runs)) if preps else None)):
        if svg is None:
            continue
        for path in (os.path.join(ROOT, name), bed.path(name)):
            with open(path, "w") as f:
                f.write(svg)
        written.append(os.path.join(ROOT, name))
    return written


def _diag_lines(diag):
    out = []
    c = diag.get("cost_us") or {}
    if c:
        out.append("  crypto per call on one core: Prv DER decode %.0f us, M4 open (RSA-OAEP)"
                   " %.0f us, PSS sign %.0f us, session message open+seal %.1f us" % (
                       c.get("prv_parse", 0), c.get("m4_open", 0), c.get("pss_sign", 0),
                       c.get("session_msg", 0)))
    if diag.get("tls_handshake_ms"):
        out.append("  one mutual TLS 1.3 connection (TCP + handshake) to a daemon: %.2f ms"
                   % diag["tls_handshake_ms"])
    for key, what in (("vehicle_fsync_per_m3", "at the vehicle per chip key destroyed"),
                      ("telemetry_fsync_per_msg", "at tspd per telemetry message"),
                      ("m4_fsync_per_auth", "at tspd per M4"),
                      ("m3_fsync_per_session", "at tspd per M3 (and its M4)")):
        out.append("  fsync+fdatasync %s: %s" % (what, _fmt(diag.get(key))))
    for d, cnt in (diag.get("per_handover") or {}).items():
        out.append("  per handover, %-6s %s" % (d + ":", ", ".join(
            "%s %.2f" % kv for kv in sorted(cnt.items())) or "-"))
    par = dict(diag.get("parallel_stages_ms") or [])
    if diag.get("stages_ms"):
        out.append("  handover steps, mean ms: one at a time | %d in parallel" % PARALLEL)
    for name, ms in diag.get("stages_ms") or []:
        out.append("    %-50s %6.2f | %7.2f" % (name, ms, par.get(name, float("nan"))))
    for k in ("m4_perf_dso", "telemetry_perf_dso"):
        if diag.get(k):
            top = sorted(diag[k].items(), key=lambda kv: -kv[1])[:5]
            out.append("  tspd CPU by library during %s: %s" % (
                k.split("_")[0], ", ".join("%s %.1f%%" % kv for kv in top)))
    return out


def raise_nofile():
    """The soft descriptor limit raised to the hard one: the daemons inherit
    it, and tspd holds a connection per session."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main():
    for prog in ("qkdd", "fillerd", "registrard", "schedd", "tspd", "qbench"):
        if not os.path.exists(os.path.join(BIN, prog)):
            print("bench: %s is not built (run `make all build/bin/qbench`)"
                  % os.path.join(BIN, prog), file=sys.stderr)
            return 1
    start = time.monotonic()
    raise_nofile()
    bed = Bed()
    say("run directory %s; %d runs; command: make bench" % (bed.dir, RUNS))
    info = machine()
    runs, samples, diag, broken = [], [], None, None
    try:
        bed.setup()
        bed.start()
        os.makedirs(bed.path("vehicles"))
        say("enrolling %d vehicles (fill + register)" % NVEHICLES)
        res, _ = bed.qbench("enroll", "-V", VIN_BASE, "-n", NVEHICLES, timeout=1800)
        say("enrolled in %.0f s" % res["seconds"])
        info["enrol_s"] = res["seconds"] / NVEHICLES
        wait_registered(bed, NVEHICLES)
        for r in range(RUNS):
            out, s = one_run(bed, r)
            runs.append(out)
            samples.append(s)
            say("run %d/%d: %s" % (r + 1, RUNS, json.dumps(out)))
        if DIAG:
            diag = diagnostics(bed)
    except (Broken, BaselineError) as e:
        broken = str(e)
    except subprocess.TimeoutExpired as e:
        broken = "timed out: %s" % e
    except KeyboardInterrupt:
        # The daemons run in sessions of their own: Ctrl-C reached only us.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        say("interrupted; stopping every daemon")
        bed.stop()
        say("interrupted: the logs and stores are in %s" % bed.dir)
        return 130
    except Exception:
        # A bug of this script: the daemons stop before the traceback.
        bed.stop()
        raise
    problems = bed.stop()
    if broken:
        say("broken: %s" % broken)
    for p in problems:
        say("problem: %s" % p)
    if not runs or broken:
        return 1
    rows = bench_report.evaluate(runs, PARALLEL, SESSIONS)
    print(report(info, runs, rows, diag), flush=True)
    for path in plots(bed, samples, runs):
        say("wrote %s" % path)
    with open(bed.path("RESULTS.json"), "w") as f:
        json.dump({"machine": info, "runs": runs, "figures": [
                       {k: v for k, v in row.items() if k != "fmt"} for row in rows],
                   "markdown": bench_report.markdown_table(runs, rows, SESSIONS, info["enrol_s"]),
                   "diagnostics": diag, "samples": samples,
                   "seconds": time.monotonic() - start}, f, indent=1)
    say("%.0f s; results in %s" % (time.monotonic() - start, bed.path("RESULTS.json")))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
