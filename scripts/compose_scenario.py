"""The handover scenario of the compose testbed, read from what the
services are configured with and checked in their stores.

Drive.run() waits until every vehicle of every vehicled service has done
the crossings its route makes through the topology's regions (or a process
died, or the time ran out) and reads the admin endpoints' /status while
everything still runs.  verify() runs after the processes stopped: every
vehicle crossed the regions in the route's order with a handover at each
crossing (no F3 again), authenticated exactly once, and counted no error;
each TSP finished the handovers it started.
"""

import json
import os
import sqlite3
import time

CROSSING_FIELDS = ("from", "to", "gap_ms", "reauth")


def read_conf(path):
    """{directive: [args]} of a conf(5)-style file (last one wins)."""
    out = {}
    with open(path) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if words:
                out[words[0]] = words[1:]
    return out


def read_regions(path):
    """[(tsp_id, [(lat, lon), ...])] of a topology, in file order."""
    regions = []
    with open(path) as f:
        for line in f:
            w = line.split("#", 1)[0].split()
            if len(w) >= 4 and w[0] == "region":
                regions.append((w[1], [tuple(map(float, p.split(","))) for p in w[2:]]))
    return regions


def inside(poly, p):
    """Ray casting: point p (lat, lon) inside polygon poly."""
    y, x = p
    n, hit = len(poly), False
    for i in range(n):
        (y1, x1), (y2, x2) = poly[i], poly[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def route_regions(route, regions, step=0.0002):
    """The regions a route passes through, in order.  Where regions touch,
    the current one is kept as long as it still contains the point, as a
    vehicle does."""
    seq, cur = [], None
    for i in range(len(route) - 1):
        (a0, b0), (a1, b1) = route[i], route[i + 1]
        n = max(1, int(max(abs(a1 - a0), abs(b1 - b0)) / step))
        for k in range(n + 1):
            p = (a0 + (a1 - a0) * k / n, b0 + (b1 - b0) * k / n)
            here = [t for t, poly in regions if inside(poly, p)]
            if not here or cur in here:
                continue
            cur = here[0]
            seq.append(cur)
    return seq


def fleet_vins(base, n):
    """VINs of a fleet of n vehicles: the last digits of base replaced by
    the vehicle's number, as vehicled numbers them."""
    if n == 0:
        return [base]
    d = len(str(n - 1))
    return [base[:17 - d] + "%0*d" % (d, i) for i in range(n)]


def query(path, sql, args=()):
    """Rows of sql on a store, read-only; [] when it is not there yet."""
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


def crossings(store):
    """[{from, to, gap_ms, reauth}] journalled by a vehicle."""
    out = []
    for tsp, detail in query(store, "SELECT tsp_id, detail FROM events "
                                    "WHERE kind='crossing' ORDER BY id"):
        kv = dict(w.split("=", 1) for w in detail.split() if "=" in w)
        if all(k in kv for k in CROSSING_FIELDS):
            out.append({"from": kv["from"], "to": kv["to"], "gap_ms": float(kv["gap_ms"]),
                        "reauth": int(kv["reauth"])})
    return out


def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def conf_path(run, svc):
    """The host path of the configuration file a service runs with."""
    argv = run.argv[svc.name]
    return argv[argv.index("-f") + 1] if "-f" in argv else None


class Vehicle:
    def __init__(self, service, vin, store, expect):
        self.service = service
        self.vin = vin
        self.store = store
        self.expect = expect            # regions in order


class Drive:
    """The vehicles of the vehicled services and the TSPs of the tspd ones."""

    def __init__(self, run, say, admin_get):
        self.bed = run
        self.say = say
        self.admin_get = admin_get
        self.vehicles = []
        self.tsps = {}
        self.summary = {}
        self.drive_s = 0.0
        for s in run.order:
            path = conf_path(run, s)
            if path is None:
                continue
            conf = read_conf(path)
            if s.program() == "tspd":
                self.tsps[conf["id"][0]] = (s, conf["store"][0])
            elif s.program() == "vehicled":
                self._vehicles(s, conf)

    def _vehicles(self, svc, conf):
        route = [tuple(map(float, p.split(","))) for p in conf.get("route", [])]
        regions = read_regions(conf["topology"][0])
        expect = route_regions(route, regions)
        n = int(conf.get("fleet", ["0"])[0])
        store = conf["store"][0]
        for i, vin in enumerate(fleet_vins(conf["vehicle_id"][0], n)):
            self.vehicles.append(Vehicle(svc.name, vin, "%s.%d" % (store, i) if n else store,
                                         expect))
        length = sum((((b[0] - a[0]) * 111195) ** 2 + ((b[1] - a[1]) * 96300) ** 2) ** 0.5
                     for a, b in zip(route, route[1:]))
        speed = float(conf.get("speed", ["25"])[0])
        factor = float(conf.get("time_factor", ["1"])[0])
        self.drive_s = max(self.drive_s, length / max(speed, 0.1) / factor)
        self.say("%s: %d vehicle(s), route through %s" % (svc.name, n or 1, " -> ".join(expect)))

    def done(self):
        return all(len(crossings(v.store)) >= len(v.expect) - 1 for v in self.vehicles)

    def run(self, timeout):
        """Wait for the drive; None when it ended, else what went wrong."""
        if not self.vehicles:
            return "no vehicled service in the compose file"
        start = time.monotonic()
        self.say("driving: %d vehicles, about %.0f s of route each"
                 % (len(self.vehicles), self.drive_s))
        failure = None
        last = -1
        while True:
            dead = [p.svc.name for p in self.bed.procs.values() if p.died()]
            if dead:
                failure = "%s ended on its own" % ", ".join(dead)
                break
            done = sum(len(crossings(v.store)) for v in self.vehicles)
            if done != last:
                last = done
                if done:
                    self.say("%d crossing(s) served so far" % done)
            if self.done():
                time.sleep(1.0)
                break
            if time.monotonic() - start > timeout:
                failure = "the drive did not end within %.0f s" % timeout
                break
            time.sleep(0.5)
        self.summary["drive_s"] = round(time.monotonic() - start, 2)
        self.summary["admin_status"] = self.admin_status()
        return failure

    def admin_status(self):
        """/status of every service with an admin endpoint, while running."""
        out = {}
        for s in self.bed.order:
            body = self.admin_get(s, "/status")
            if body is None:
                continue
            try:
                out[s.name] = json.loads(body)
            except ValueError:
                continue
        return out


def verify(run, summary):
    """Check the stores and the vehicles' STATS lines after the stop; fill
    summary.  None when the scenario passed, else the first failure."""
    drive = Drive(run, lambda text: None, lambda s, p: None)
    stats = {}
    for p in run.procs.values():
        for line in p.lines:
            if line.startswith("STATS "):
                try:
                    st = json.loads(line[6:])
                    stats[st["vehicle_id"]] = st
                except (ValueError, KeyError):
                    continue
    failures, legs, gaps = [], {}, []
    for v in drive.vehicles:
        cs = crossings(v.store)
        legs[v.vin] = ["%s->%s %.1fms%s" % (c["from"], c["to"], c["gap_ms"],
                                            " F3 again" if c["reauth"] else "") for c in cs]
        gaps += [c["gap_ms"] for c in cs]
        path = [cs[0]["from"]] + [c["to"] for c in cs] if cs else []
        if path != v.expect:
            failures.append("%s crossed %s, its route goes %s" % (v.vin, path, v.expect))
        if any(c["reauth"] for c in cs):
            failures.append("%s needed F3 again at a crossing" % v.vin)
        auths = query(v.store, "SELECT tsp_id FROM events WHERE kind='auth_ok'")
        if len(auths) != 1:
            failures.append("%s authenticated %d times (%s)" % (v.vin, len(auths), auths))
        st = stats.get(v.vin)
        if st is None:
            failures.append("%s printed no STATS line" % v.vin)
        elif st.get("errors") or st.get("reauth_after_handover"):
            failures.append("%s: errors %s, reauth_after_handover %s"
                            % (v.vin, st.get("errors"), st.get("reauth_after_handover")))
    tsp = {}
    for tid, (svc, store) in sorted(drive.tsps.items()):
        states = dict(query(store, "SELECT state, count(*) FROM handovers "
                                   "WHERE role='out' GROUP BY state"))
        via = dict(query(store, "SELECT via, count(*) FROM auth GROUP BY via"))
        tel = query(store, "SELECT count(*) FROM telemetry")
        tsp[tid] = {"handovers_out": states, "auth_via": via,
                    "telemetry": tel[0][0] if tel else 0}
        bad = sum(n for s, n in states.items() if s != "done")
        if bad:
            failures.append("%s: %d outgoing handover(s) not done: %s" % (tid, bad, states))
    handovers = sum(len(cs) for cs in legs.values())
    summary.update({
        "vehicles": len(drive.vehicles),
        "crossings": handovers,
        "handovers": sum(int(st.get("handovers", 0)) for st in stats.values()),
        "auth_ok": sum(int(st.get("auth_ok", 0)) for st in stats.values()),
        "telemetry_acked": sum(int(st.get("telemetry_acked", 0)) for st in stats.values()),
        "errors": sum(int(st.get("errors", 0)) for st in stats.values()),
        "gap_ms_p50": round(median(gaps), 1) if gaps else None,
        "gap_ms_max": round(max(gaps), 1) if gaps else None,
        "legs": legs,
        "tsps": tsp,
    })
    if not drive.vehicles:
        failures.append("no vehicle drove")
    return failures[0] if failures else None
