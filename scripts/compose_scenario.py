"""The handover scenario of the compose testbed, read from what the
services are configured with and checked in their stores.

Drive.run() waits until every vehicle of every vehicled service has done
the crossings its route makes through the topology's regions (or a process
ended on its own, or the time ran out), applying the restart policies as
it goes, and reads the admin endpoints' /status while everything still
runs; with a crash it kills a TSP mid-drive (Crash).  verify() runs after
the processes stopped: every vehicle crossed the regions in the route's
order with a handover at each crossing (no F3 again), authenticated
exactly once, and counted no error; each TSP finished the handovers it
started; every telemetry message a vehicle saw acknowledged is a row of
the acknowledging TSP's store or was sent again; every process ran as its
service's user.
After a crash of TSP X, a crossing into X may fall back to F3, exactly as
check_crossings() says.
"""

import collections
import json
import os
import re
import time

import compose_faults
from qroamlib import stores
from qroamlib.stores import median, query

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


def crossings(store):
    """[{from, to, gap_ms, reauth}] journalled by a vehicle."""
    return [dict(zip(CROSSING_FIELDS, c)) for c in stores.crossings(store)]


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
        self.crash = None
        self.partition = None
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
        for vin, path in stores.fleet(conf["vehicle_id"][0], store, n):
            self.vehicles.append(Vehicle(svc.name, vin, path, expect))
        length = sum((((b[0] - a[0]) * 111195) ** 2 + ((b[1] - a[1]) * 96300) ** 2) ** 0.5
                     for a, b in zip(route, route[1:]))
        speed = float(conf.get("speed", ["25"])[0])
        factor = float(conf.get("time_factor", ["1"])[0])
        self.drive_s = max(self.drive_s, length / max(speed, 0.1) / factor)
        self.say("%s: %d vehicle(s), route through %s" % (svc.name, n or 1, " -> ".join(expect)))

    def done(self):
        return all(len(crossings(v.store)) >= len(v.expect) - 1 for v in self.vehicles)

    def entered(self, tsp):
        """Crossings into tsp's region so far."""
        return sum(1 for v in self.vehicles for c in crossings(v.store) if c["to"] == tsp)

    def offered_in(self, tsp):
        """Vehicles that crossed into tsp's region and were offered a
        handover (M5) there since: their handover out of it is under way."""
        n = 0
        for v in self.vehicles:
            rows = query(v.store, "SELECT count(*) FROM events WHERE kind = 'm5' AND id > "
                                  "(SELECT min(id) FROM events WHERE kind = 'crossing' "
                                  "AND detail LIKE ?1)", ("%%to=%s %%" % tsp,))
            n += bool(rows and rows[0][0])
        return n

    def crossings_so_far(self):
        return sum(len(crossings(v.store)) for v in self.vehicles)

    def run(self, timeout, crash=None, partition=None):
        """Wait for the drive; None when it ended, else what went wrong.
        With crash (a tspd service), that service's process is killed
        (SIGKILL) once the second vehicle has crossed into its region, while
        the vehicles behind are approaching it, and the drive goes on while
        the runner restarts it by its restart policy.  With partition (a,
        b, seconds), services a (a tspd) and b are cut apart for seconds
        once a vehicle has crossed into a's region (compose_faults)."""
        if not self.vehicles:
            return "no vehicled service in the compose file"
        start = time.monotonic()
        self.say("driving: %d vehicles, about %.0f s of route each"
                 % (len(self.vehicles), self.drive_s))
        if crash is not None:
            self.crash = Crash(self, crash)
        injected = [self.crash] if self.crash is not None else []
        if partition is not None:
            self.partition = compose_faults.Partition(self, *partition,
                                                      trigger=self.offered_in)
            injected.append(self.partition)
        failure = None
        last = -1
        while True:
            self.bed.supervise()
            bad = sorted({e["service"] for e in self.bed.exits if not e["injected"]})
            down = self.bed.down()
            if bad or down:
                failure = "; ".join(["%s ended on its own" % ", ".join(bad)] * bool(bad) +
                                    ["%s down by its restart policy" % ", ".join(down)] *
                                    bool(down))
                break
            for inj in injected:
                failure = inj.step()
                if failure:
                    break
            if failure:
                break
            done = self.crossings_so_far()
            if done != last:
                last = done
                if done:
                    self.say("%d crossing(s) served so far" % done)
            if self.done() and all(inj.over() for inj in injected):
                time.sleep(1.0)
                break
            if time.monotonic() - start > timeout:
                failure = "the drive did not end within %.0f s" % timeout
                break
            time.sleep(0.2 if not all(inj.over() for inj in injected) else 0.5)
        self.summary["drive_s"] = round(time.monotonic() - start, 2)
        self.summary["admin_status"] = self.admin_status()
        # How each TSP authenticated the vehicles it serves, read while they
        # run: the Bye of their power-off at the stop ends it (F8).
        self.summary["auth_via"] = {
            tid: dict(query(store, "SELECT via, count(*) FROM auth GROUP BY via"))
            for tid, (_, store) in self.tsps.items()}
        if self.crash is not None:
            self.summary["crash"] = self.crash.summary
        if self.partition is not None:
            self.summary["partition"] = self.partition.summary
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


class Crash:
    """A TSP killed mid-drive and its restart by the runner."""

    def __init__(self, drive, service):
        self.drive = drive
        self.service = service
        ids = [t for t, (svc, _) in drive.tsps.items() if svc.name == service]
        if not ids:
            raise ValueError("--crash %s: not a tspd service" % service)
        self.tsp = ids[0]
        self.t_kill = None
        self.pid = None
        # The second vehicle in: two hold sessions there, the ones behind
        # have their handover contexts stored there and cross while it is
        # down or restarting.
        self.at = min(2, len(drive.vehicles))
        self.summary = {"service": service, "tsp": self.tsp}

    def step(self):
        """Kill once self.at vehicles crossed into the region; then wait for the
        restarted process to pass its healthcheck.  None or a failure."""
        bed, s = self.drive.bed, self.summary
        if self.t_kill is None:
            if self.drive.entered(self.tsp) < self.at:
                return None
            s["crossings_before"] = self.drive.crossings_so_far()
            s["vehicles_in_region"] = self.drive.entered(self.tsp)
            self.pid = bed.procs[self.service].pid
            self.t_kill = time.monotonic()
            s["killed_at"] = time.time()
            bed.kill(self.service)
            return None
        if "healthy_after_s" in s:
            return None
        p = bed.procs[self.service]
        if p.pid == self.pid or p.ended is not None:
            if time.monotonic() - self.t_kill > 30:
                return "%s was not restarted within 30 s of the crash" % self.service
            return None
        s.setdefault("restarted_after_s", round(p.t0 - self.t_kill, 2))
        ok, _ = bed.health.check(p)
        if ok:
            bed.note_user(p)
            s["healthy_after_s"] = round(time.monotonic() - self.t_kill, 2)
            self.drive.say("crash: %s healthy again %.2f s after the SIGKILL"
                           % (self.service, s["healthy_after_s"]))
        elif time.monotonic() - p.t0 > 60:
            return "%s not healthy within 60 s of its restart" % self.service
        return None

    def over(self):
        return "healthy_after_s" in self.summary


ACK_RX = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) vehicled\[(\w+)\]: debug: "
                    r"telemetry (\d+) acknowledged by (\S+)$")


def day_s(t):
    """Seconds since local midnight of a time.time() value, as the logs'
    time stamps count them."""
    lt = time.localtime(t)
    return lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + t % 1


def acked_messages(run):
    """{(vehicle_id, tsp_id, seq): count} of every telemetry message a
    vehicle logged as acknowledged, and {vehicle_id: [(day_s, tsp_id)]}."""
    acks, when = collections.Counter(), {}
    for p in run.all_procs():
        if p.svc.program() != "vehicled":
            continue
        for line in p.lines:
            m = ACK_RX.match(line)
            if m:
                hh, mm, ss, vin, seq, tsp = m.groups()
                acks[(vin, tsp, int(seq))] += 1
                when.setdefault(vin, []).append((int(hh) * 3600 + int(mm) * 60 + float(ss),
                                                 tsp))
    return acks, when


def check_acked(run, drive, stats, summary):
    """Every telemetry message a vehicle counted as acknowledged is a row
    of the acknowledging TSP's store (its own rows: tsp_id is itself),
    sequence number by sequence number, or was sent again (a crash took
    it before its commit); the vehicles logged as many acknowledgements as
    their STATS lines count.  [failures]."""
    acks, when = acked_messages(run)
    failures = []
    for vin, st in sorted(stats.items()):
        logged = sum(n for (v, _, _), n in acks.items() if v == vin)
        if logged != int(st.get("telemetry_acked", 0)):
            failures.append("%s logged %d acknowledgements, its STATS count %s"
                            % (vin, logged, st.get("telemetry_acked")))
    rows = collections.Counter()
    for tid, (_, store) in drive.tsps.items():
        for vin, seq, n in query(store, "SELECT vehicle_id, seq, count(*) FROM telemetry "
                                        "WHERE tsp_id = ?1 AND seq > 0 "
                                        "GROUP BY vehicle_id, seq", (tid,)):
            rows[(vin, tid, seq)] += n
    missing = sorted(k for k, n in acks.items() if rows[k] < n)
    # Answers come before durability (F5 service first): an answered record
    # that a crash took before its commit is sent again by the vehicle, under
    # a new seq, until a stored_seq covers it.  Missing beyond what the
    # vehicle sent again is lost.
    lost = []
    for vin in sorted(set(k[0] for k in missing)):
        mine = [k for k in missing if k[0] == vin]
        resent = int(stats.get(vin, {}).get("telemetry_resent", 0))
        if len(mine) > resent:
            lost += mine
    summary["telemetry_check"] = {"acked": sum(acks.values()), "missing": len(missing),
                                  "resent": sum(int(st.get("telemetry_resent", 0))
                                                for st in stats.values()),
                                  "lost": len(lost),
                                  "lost_first": ["%s %s seq %d" % k for k in lost[:5]]}
    if lost:
        failures.append("%d acknowledged telemetry message(s) neither in the TSP stores "
                        "nor sent again, e.g. %s" % (len(lost),
                                                     summary["telemetry_check"]["lost_first"]))
    crash = summary.get("crash")
    if crash and "killed_at" in crash:
        t = day_s(crash["killed_at"])
        before = sum(1 for ts in when.values() for (s, tsp) in ts
                     if tsp == crash["tsp"] and s < t)
        after = sum(1 for ts in when.values() for (s, tsp) in ts
                    if tsp == crash["tsp"] and s > t)
        crash["acked_before"] = before
        crash["acked_after"] = after
        if before == 0 or after == 0:
            failures.append("%s acknowledged %d telemetry message(s) before the crash and %d "
                            "after: the crash proved nothing" % (crash["tsp"], before, after))
    return failures


def check_run_as(run, summary):
    """Every process ran as its service's user and every file in the
    named volumes belongs to that user.  [failures]."""
    failures = []
    for s in run.order:
        want = "%d:%d" % s.ids
        if not run.users.get(s.name) or set(run.users[s.name]) != {want}:
            failures.append("%s ran as %s, its user is %s" % (s.name, run.users.get(s.name),
                                                              want))
        for kind, _src, tgt in s.mounts:
            if kind != "volume":
                continue
            top = run.paths[s.name].host(tgt)
            for d, _dirs, files in os.walk(top):
                for f in files:
                    st = os.stat(os.path.join(d, f))
                    if (st.st_uid, st.st_gid) != s.ids:
                        failures.append("%s: %s belongs to %d:%d" % (s.name, f, st.st_uid,
                                                                   st.st_gid))
    summary["run_as"] = sorted({"%d:%d" % s.ids for s in run.order})
    return failures


def check_crossings(v, cs, auths, st, crash, faulted=False):
    """The crossings and authentications of one vehicle.  Without a
    crash: the route's regions in order, a handover at every crossing and
    one F3.  With a crash of TSP X, a crossing into X may fall back to F3
    (its handover context could have been lost with the process): then
    that vehicle authenticated once more, with X, and counts that
    re-authentication; every other crossing is still a handover.  Under
    network faults (faulted) any crossing may so fall back.  [failures]."""
    failures = []
    path = [cs[0]["from"]] + [c["to"] for c in cs] if cs else []
    if path != v.expect:
        failures.append("%s crossed %s, its route goes %s" % (v.vin, path, v.expect))
    fallback = [c for c in cs if c["reauth"]]
    allowed = [c for c in fallback if faulted or (crash and c["to"] == crash["tsp"])]
    if len(allowed) != len(fallback):
        failures.append("%s needed F3 again at a crossing" % v.vin)
    want = [v.expect[0]] + [c["to"] for c in allowed]
    if [a[0] for a in auths] != want:
        failures.append("%s authenticated with %s, expected %s" % (v.vin,
                                                                [a[0] for a in auths], want))
    if st is None:
        failures.append("%s printed no STATS line" % v.vin)
    elif st.get("errors") or int(st.get("reauth_after_handover", 0)) != len(allowed):
        failures.append("%s: errors %s, reauth_after_handover %s"
                        % (v.vin, st.get("errors"), st.get("reauth_after_handover")))
    return failures, len(allowed)


def verify(run, summary):
    """Check the stores and the vehicles' STATS lines after the stop; fill
    summary.  None when the scenario passed, else the first failure."""
    drive = Drive(run, lambda text: None, lambda s, p: None)
    crash = summary.get("crash")
    faulted = bool(summary.get("faults") or summary.get("partition"))
    stats = {}
    for p in run.all_procs():
        for line in p.lines:
            if line.startswith("STATS "):
                try:
                    st = json.loads(line[6:])
                    stats[st["vehicle_id"]] = st
                except (ValueError, KeyError):
                    continue
    failures, legs, gaps, fallbacks = [], {}, [], 0
    for v in drive.vehicles:
        cs = crossings(v.store)
        legs[v.vin] = ["%s->%s %.1fms%s" % (c["from"], c["to"], c["gap_ms"],
                                            " F3 again" if c["reauth"] else "") for c in cs]
        gaps += [c["gap_ms"] for c in cs]
        auths = query(v.store, "SELECT tsp_id FROM events WHERE kind='auth_ok' ORDER BY id")
        f, n = check_crossings(v, cs, auths, stats.get(v.vin), crash, faulted)
        failures += f
        fallbacks += n
    tsp = {}
    for tid, (svc, store) in sorted(drive.tsps.items()):
        states = dict(query(store, "SELECT state, count(*) FROM handovers "
                                   "WHERE role='out' GROUP BY state"))
        via = summary.get("auth_via", {}).get(tid, {})
        tel = query(store, "SELECT count(*) FROM telemetry")
        left = query(store, "SELECT count(*) FROM auth")[0][0]
        # Informational: a vehicle between two connections at the stop
        # powers off without a Bye and stays authenticated.
        tsp[tid] = {"handovers_out": states, "auth_via": via,
                    "auth_after_power_off": left,
                    "telemetry": tel[0][0] if tel else 0}
        bad = sum(n for s, n in states.items() if s != "done")
        # A handover into the crashed TSP may have failed with it; the
        # vehicle's crossing then fell back to F3 (checked above).
        failed_ok = 0
        if faulted:
            failed_ok = states.get("failed", 0)
        elif crash:
            failed_ok = len(query(store, "SELECT 1 FROM handovers WHERE role='out' AND "
                                         "state='failed' AND peer = ?1", (crash["tsp"],)))
        if bad > min(failed_ok, fallbacks):
            failures.append("%s: %d outgoing handover(s) not done: %s" % (tid, bad, states))
    if crash:
        failures += check_crash(run, crash)
    failures += check_acked(run, drive, stats, summary)
    failures += check_run_as(run, summary)
    handovers = sum(len(cs) for cs in legs.values())
    summary.update({
        "vehicles": len(drive.vehicles),
        "crossings": handovers,
        "fallbacks_to_f3": fallbacks,
        "handovers": sum(int(st.get("handovers", 0)) for st in stats.values()),
        "auth_ok": sum(int(st.get("auth_ok", 0)) for st in stats.values()),
        "telemetry_acked": sum(int(st.get("telemetry_acked", 0)) for st in stats.values()),
        "errors": sum(int(st.get("errors", 0)) for st in stats.values()),
        "gap_ms_p50": round(median(gaps), 1) if gaps else None,
        "gap_ms_max": round(max(gaps), 1) if gaps else None,
        "legs": legs,
        "tsps": tsp,
        "restarts": dict(run.restarts),
        "exits": run.exits,
    })
    if not drive.vehicles:
        failures.append("no vehicle drove")
    return failures[0] if failures else None


def check_crash(run, crash):
    """The crashed service was killed once, restarted once by its policy
    and passed its healthcheck again.  [failures]."""
    name = crash["service"]
    if "killed_at" not in crash:
        return ["the crash of %s was never injected" % name]
    failures = []
    exits = run.exits_of(name)
    if len(exits) != 1 or not exits[0]["injected"] or not exits[0]["restarted"]:
        failures.append("%s: exits %s, expected the injected one, restarted" % (name, exits))
    if run.restarts.get(name) != 1:
        failures.append("%s restarted %s times, expected once" % (name, run.restarts.get(name)))
    if "healthy_after_s" not in crash:
        failures.append("%s did not pass its healthcheck after the restart" % name)
    return failures
