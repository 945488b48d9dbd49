#!/usr/bin/env python3
"""The soak run (`make soak`): a fleet of QROAM_SOAK_N vehicles (default
10,000) driving across ten regions for QROAM_SOAK_SECONDS (default 600)
after a warm-up, on the fleet benchmark's world and daemons
(scripts/bench_fleet.py; enrolment kept in run/soak-N and reused).

Every QROAM_FLEET_SAMPLE seconds (10) of the window the RSS and CPU time of
every daemon and the fleet's counters are sampled.  At the end:

  - RSS flat after warm-up: over the second half of the window, the least
    squares slope of each process's RSS, times that half's length, is
    under 5 % of its mean (or under 2 MiB);
  - 0 lost records: for every vehicle, the records its TSPs acknowledged
    as stored (stored_seq; its STATS line's telemetry_stored) are at most
    the distinct record ids the TSPs' stores hold for it from this run;
  - 0 keys reused: no chip key (chip_id, idx) used for an M3 at two TSPs;
  - 0 stuck vehicles: every vehicle was stored a record in the last
    QROAM_SOAK_STUCK seconds (default 60) of the window.

It writes RESULTS.json (the fleet figures, the series and SOAK: the checks)
and soak.svg (RSS of each kind of daemon, and handovers and telemetry a
second, against time) in the run directory and prints a `SOAK {json}`
line.  Exit status 0 when every check passed, 1 otherwise.
"""

import json
import os
import sqlite3
import sys

N = int(os.environ.get("QROAM_SOAK_N", "10000"))
os.environ.setdefault("QROAM_FLEET_N", str(N))
os.environ.setdefault("QROAM_FLEET_SECONDS", os.environ.get("QROAM_SOAK_SECONDS", "600"))
os.environ.setdefault("QROAM_FLEET_WARMUP", "60")
os.environ.setdefault("QROAM_FLEET_TELEMETRY", "5s")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("QROAM_FLEET_WORLD", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "run", "soak-%d" % N))
import bench_fleet as bf  # noqa: E402

STUCK_S = float(os.environ.get("QROAM_SOAK_STUCK", "60"))
FLAT_PCT = 5.0
FLAT_KIB = 2048


def store_rows(path, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=60)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def tsp_store(t):
    return os.path.join(bf.WORLD, "stores", t + ".db")


def stats_lines(rundir):
    """{vehicle_id: STATS} from the vehicled logs of the run."""
    out = {}
    for name in os.listdir(rundir):
        if not (name.startswith("vehicled-") and name.endswith(".log")):
            continue
        with open(os.path.join(rundir, name)) as f:
            for line in f:
                if line.startswith("STATS "):
                    st = json.loads(line[6:])
                    out[st["vehicle_id"]] = st
    return out


def check_records(rundir, since_ms):
    """(vehicles with fewer records stored than acknowledged, records
    acknowledged in all)."""
    stored = {}
    for t in bf.TSPS:
        for vid, n in store_rows(tsp_store(t), "SELECT vehicle_id, record_id FROM telemetry "
                                               "WHERE received_ms >= ? AND record_id IS NOT "
                                               "NULL", (since_ms,)):
            stored.setdefault(vid, set()).add(n)
    stats = stats_lines(rundir)
    lost = {v: (st["telemetry_stored"], len(stored.get(v, ())))
            for v, st in stats.items() if st["telemetry_stored"] > len(stored.get(v, ()))}
    return lost, sum(st["telemetry_stored"] for st in stats.values()), len(stats)


def check_keys():
    """[(chip_id, idx, tsp, tsp)] used for an M3 at two TSPs."""
    seen, twice = {}, []
    for t in bf.TSPS:
        for chip, idx in store_rows(tsp_store(t), "SELECT chip_id, idx FROM used_keys "
                                                  "WHERE how = 'm3'"):
            if (chip, idx) in seen:
                twice.append((chip, idx, seen[(chip, idx)], t))
            seen[(chip, idx)] = t
    return twice, len(seen)


def check_stuck(end_ms):
    """Driven vehicles no TSP stored a record of in the last STUCK_S."""
    last = {}
    for t in bf.TSPS:
        for vid, ms in store_rows(tsp_store(t), "SELECT vehicle_id, max(received_ms) FROM "
                                                "telemetry GROUP BY vehicle_id"):
            last[vid] = max(last.get(vid, 0), ms or 0)
    vins = []
    for p, _, _ in bf.procs():
        if p < bf.DRIVE_PROCS:
            vins += [v for (v,) in store_rows(os.path.join(bf.WORLD, "stores", "fleet-%d.db" % p),
                                              "SELECT vehicle_id FROM vehicles")]
    return [v for v in vins if last.get(v, 0) < end_ms - STUCK_S * 1000]


def slope(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0), my


def check_rss(series):
    """{process: {first, last, mean, growth_kib, flat}} over the second
    half of the window."""
    half = [s for s in series if s["t"] >= series[-1]["t"] / 2.0]
    out = {}
    for name in series[0]["rss_kib"]:
        pts = [(s["t"], s["rss_kib"][name]) for s in half if name in s["rss_kib"]]
        if len(pts) < 3:
            continue
        k, mean = slope([p[0] for p in pts], [p[1] for p in pts])
        growth = k * (pts[-1][0] - pts[0][0])
        out[name] = {"first_kib": series[0]["rss_kib"][name], "last_kib": pts[-1][1],
                     "mean_kib": round(mean), "growth_kib": round(growth),
                     "flat": growth < max(FLAT_KIB, mean * FLAT_PCT / 100.0)}
    return out


def group_of(name):
    for g in ("vehicled", "tsp"):
        if name.startswith(g):
            return "tspd" if g == "tsp" else g
    return {"qkd": "qkdd", "sched": "schedd", "filler": "fillerd",
            "registrar": "registrard"}.get(name, name)


def polyline(pts, x0, y0, w, h, tmax, vmax, colour):
    if not pts or vmax <= 0:
        return ""
    xy = " ".join("%.1f,%.1f" % (x0 + w * t / tmax, y0 + h - h * v / vmax) for t, v in pts)
    return '<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>' % (colour, xy)


def panel(out, y0, title, lines, unit, tmax):
    """One chart of named (t, value) lines at height y0."""
    x0, w, h = 70, 760, 160
    vmax = max([v for _, pts, _ in lines for _, v in pts] + [1e-9]) * 1.1
    out.append('<text x="%d" y="%d" font-size="14">%s</text>' % (x0, y0 - 10, title))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>'
               % (x0, y0, w, h))
    for i in range(5):
        v = vmax * i / 4
        y = y0 + h - h * i / 4
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%.3g %s</text>'
                   % (x0 - 4, y + 4, v, unit))
    for i in range(6):
        t = tmax * i / 5
        out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%.0f s</text>'
                   % (x0 + w * i / 5, y0 + h + 14, t))
    for i, (name, pts, colour) in enumerate(lines):
        out.append(polyline(pts, x0, y0, w, h, tmax, vmax, colour))
        out.append('<text x="%d" y="%d" font-size="12" fill="%s">%s</text>'
                   % (x0 + w + 10, y0 + 14 + 16 * i, colour, name))


COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def plot(path, series, title):
    tmax = max(series[-1]["t"], 1)
    groups = sorted({group_of(n) for s in series for n in s["rss_kib"]})
    rss = []
    for i, g in enumerate(groups):
        pts = [(s["t"], sum(v for n, v in s["rss_kib"].items() if group_of(n) == g) / 1024.0)
               for s in series]
        rss.append((g, pts, COLOURS[i % len(COLOURS)]))
    def rate(key):
        return [(b["t"], (b[key] - a[key]) / max(b["t"] - a["t"], 1e-9))
                for a, b in zip(series, series[1:])]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="720" '
           'font-family="DejaVu Sans, sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="70" y="24" font-size="16">%s</text>' % title]
    panel(out, 60, "RSS by kind of process (MiB)", rss, "MiB", tmax)
    panel(out, 290, "handovers a second", [("handovers", rate("handovers"), COLOURS[0])],
          "", tmax)
    panel(out, 520, "telemetry records acknowledged a second",
          [("telemetry", rate("telemetry_acked"), COLOURS[1])], "", tmax)
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def after(rundir, d, res):
    w0, w1 = d["window"]
    series = d["series"]
    # Records of this run only: the world's stores keep earlier runs'.
    since = w0 - bf.WARMUP_S - d["ramp_s"] - 60
    lost, acked, nstats = check_records(rundir, int(since * 1000))
    twice, used = check_keys()
    stuck = check_stuck(int(w1 * 1000))
    rss = check_rss(series) if len(series) >= 3 else {}
    soak = {"vehicles": res["n"], "window_s": res["window_s"], "samples": len(series),
            "records_acknowledged": acked, "vehicles_reporting": nstats,
            "lost_records": sum(a - b for a, b in lost.values()), "lost_vehicles": len(lost),
            "keys_used": used, "keys_reused": len(twice), "stuck": len(stuck),
            "rss": rss, "rss_flat": bool(rss) and all(r["flat"] for r in rss.values())}
    soak["ok"] = (soak["rss_flat"] and not lost and not twice and not stuck and
                  nstats == res["n"])
    res["soak"] = soak
    res["series"] = series
    with open(os.path.join(rundir, "RESULTS.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    svg = os.path.join(rundir, "soak.svg")
    plot(svg, series, "qroam soak: %d vehicles, %.0f s" % (res["n"], res["window_s"]))
    bf.say("soak: %d records acknowledged, %d lost; %d keys used, %d reused; %d stuck; RSS %s"
           % (acked, soak["lost_records"], used, len(twice), len(stuck),
              "flat" if soak["rss_flat"] else "NOT flat: %s" % sorted(
                  n for n, r in rss.items() if not r["flat"])))
    if lost:
        bf.say("soak: lost records of %s" % sorted(lost.items())[:5])
    if stuck:
        bf.say("soak: stuck vehicles %s" % stuck[:10])
    bf.say("soak: plot %s" % svg)
    print("SOAK " + json.dumps({k: v for k, v in soak.items() if k != "rss"}, sort_keys=True),
          flush=True)
    return 0 if soak["ok"] else 1


if __name__ == "__main__":
    sys.exit(bf.main(after))
