#!/usr/bin/env python3
"""The qroam testbed on loopback (`make run`).

Starts fillerd, registrard, two tspd and two vehicles in a fresh run
directory, lets the vehicles fill their chips, register, authenticate and
stream telemetry for a while, prints one line per event as the daemons log
it, stops everything cleanly and ends with `SUMMARY {json}`.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("QROAM_BIN", os.path.join(ROOT, "build", "bin"))
DURATION = float(os.environ.get("QROAM_RUN_SECONDS", "20"))

TOPOLOGY = """\
# qroam testbed: two regions side by side
filler    127.0.0.1:{filler}
registrar 127.0.0.1:{registrar}
tsp tsp-a vehicle 127.0.0.1:{a_vehicle} provision 127.0.0.1:{a_provision}
tsp tsp-b vehicle 127.0.0.1:{b_vehicle} provision 127.0.0.1:{b_provision}
region tsp-a 30.00,120.00 30.00,120.10 30.10,120.10 30.10,120.00
region tsp-b 30.00,120.10 30.00,120.20 30.10,120.20 30.10,120.10
"""

VEHICLES = [
    # VIN, draw mode, route (inside one region), speed m/s
    ("LSVAA2B10K0000001", "sequential", "30.02,120.02 30.05,120.06 30.08,120.03", 20),
    ("LSVAA2B10K0000002", "arbitrary", "30.03,120.13 30.06,120.17 30.09,120.12", 25),
]


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


def common(rundir, ident, cert):
    return ("id {id}\ntopology {d}/topo.conf\nstore {d}/{id}.db\n"
            "ca {d}/pki/ca.pem\ncert {d}/pki/{c}.pem\nkey {d}/pki/{c}.key\n"
            ).format(d=rundir, id=ident, c=cert)


def setup(rundir):
    os.makedirs(rundir)
    names = ["filler:filler", "registrar:registrar", "tsp-a:tsp", "tsp-b:tsp",
             "factory:factory", "operator:operator"]
    subprocess.run(["sh", os.path.join(ROOT, "scripts", "mkpki.sh"),
                    os.path.join(rundir, "pki")] + names, check=True,
                   stdout=subprocess.DEVNULL)
    p = free_ports(6)
    write(os.path.join(rundir, "topo.conf"), TOPOLOGY.format(
        filler=p[0], registrar=p[1], a_vehicle=p[2], a_provision=p[3],
        b_vehicle=p[4], b_provision=p[5]))
    confs = {}
    confs["tsp-a"] = ("tspd", common(rundir, "tsp-a", "tsp-a"))
    confs["tsp-b"] = ("tspd", common(rundir, "tsp-b", "tsp-b"))
    confs["filler"] = ("fillerd", common(rundir, "filler", "filler") + "m 64\n")
    confs["registrar"] = ("registrard", common(rundir, "registrar", "registrar"))
    for vin, mode, route, speed in VEHICLES:
        confs[vin] = ("vehicled", (
            "vehicle_id {vin}\ntopology {d}/topo.conf\nstore {d}/{vin}.db\n"
            "ca {d}/pki/ca.pem\ncert {d}/pki/factory.pem\nkey {d}/pki/factory.key\n"
            "operator_cert {d}/pki/operator.pem\noperator_key {d}/pki/operator.key\n"
            "draw {mode}\nfill_m 64\nretransmit 2s\ntelemetry_interval 1s\n"
            "session_rekey 8\nrefill yes\nroute {route}\nspeed {speed}\n"
            "time_factor 10\n").format(d=rundir, vin=vin, mode=mode,
                                       route=route, speed=speed))
    for name, (_, text) in confs.items():
        write(os.path.join(rundir, name + ".conf"), text)
    return confs


class Daemon:
    def __init__(self, rundir, name, prog):
        self.name = name
        self.stdout = []
        self.log = open(os.path.join(rundir, name + ".log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, prog), "-f", os.path.join(rundir, name + ".conf")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.errors = 0
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
            if "fatal:" in line or "Sanitizer" in line:
                self.errors += 1
            print(line, flush=True)

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.errors += 1
        for t in self.threads:
            t.join(2)
        if self.proc.returncode != 0:
            self.errors += 1
        self.log.close()


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def vehicle_stats(d):
    for line in d.stdout:
        if line.startswith("STATS "):
            try:
                return json.loads(line[6:])
            except ValueError:
                pass
    return {}


def main():
    rundir = os.path.join(ROOT, "run", time.strftime("%Y%m%d-%H%M%S"))
    setup(rundir)
    print("testbed: run directory %s, %d s of driving" % (rundir, DURATION), flush=True)
    with open(os.path.join(rundir, "topo.conf")) as f:
        ports = [int(w.rsplit(":", 1)[1]) for line in f for w in line.split()
                 if w.startswith("127.0.0.1:")]
    daemons = {}
    for name, prog in (("tsp-a", "tspd"), ("tsp-b", "tspd"),
                       ("filler", "fillerd"), ("registrar", "registrard")):
        daemons[name] = Daemon(rundir, name, prog)
    ok = all(wait_port(p) for p in ports)
    vehicles = [Daemon(rundir, vin, "vehicled") for vin, *_ in VEHICLES] if ok else []
    try:
        end = time.monotonic() + DURATION
        while time.monotonic() < end and ok:
            if any(d.proc.poll() is not None for d in list(daemons.values()) + vehicles):
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    for d in vehicles:
        d.stop()
    for d in daemons.values():
        d.stop()
    summary = {"vehicles": len(vehicles), "auth_ok": 0, "sessions": 0,
               "telemetry_sent": 0, "telemetry_acked": 0, "errors": 0}
    for d in vehicles:
        st = vehicle_stats(d)
        for k in ("auth_ok", "sessions", "telemetry_sent", "telemetry_acked", "errors"):
            summary[k] += int(st.get(k, 0))
        if not st:
            summary["errors"] += 1
    summary["errors"] += sum(d.errors for d in list(daemons.values()) + vehicles)
    if not ok:
        summary["errors"] += 1
    for name in ("tsp-a", "tsp-b"):
        try:
            db = sqlite3.connect("file:%s?mode=ro" % os.path.join(rundir, name + ".db"), uri=True)
            summary["stored_" + name.replace("-", "_")] = db.execute(
                "SELECT count(*) FROM telemetry").fetchone()[0]
            db.close()
        except sqlite3.Error:
            summary["errors"] += 1
    print("SUMMARY " + json.dumps(summary, sort_keys=False), flush=True)
    return 0 if summary["errors"] == 0 and summary["telemetry_acked"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
