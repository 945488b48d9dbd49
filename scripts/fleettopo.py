#!/usr/bin/env python3
"""The geometry of the fleet runs (scripts/bench_fleet.py and the fleet
smoke test): REGIONS rectangular regions side by side in a strip, and a
closed route that drives east along the strip and back west, crossing
every inner boundary twice a lap.  Run alone it prints a topology's
region lines and the route, for a look:

    python3 scripts/fleettopo.py [REGIONS [WIDTH_DEG]]

    lat0+h  +--------+--------+-- ... --+--------+
            | tsp-0  | tsp-1  |         | tsp-9  |   <- west along lat0+3h/4
            |        |        |         |        |   -> east along lat0+h/4
    lat0    +--------+--------+-- ... --+--------+
           lon0    lon0+w   lon0+2w            lon0+10w
"""

import math
import sys

LAT0 = 30.0
LON0 = 120.0
EARTH_M = 6371000.0


def tsp_names(n):
    return ["tsp-%d" % i for i in range(n)]


def regions(n, width=1.0, height=0.2, lat0=LAT0, lon0=LON0):
    """{tsp: [(lat, lon) x 4]} of n regions width x height degrees."""
    out = {}
    for i, t in enumerate(tsp_names(n)):
        a, b = lon0 + i * width, lon0 + (i + 1) * width
        out[t] = [(lat0, a), (lat0, b), (lat0 + height, b), (lat0 + height, a)]
    return out


def lap(n, width=1.0, height=0.2, lat0=LAT0, lon0=LON0, step=0.25):
    """The waypoints of one lap: east along the lower quarter of the strip,
    north inside the last region, west along the upper quarter, south
    inside the first; the turns stay 2% of a region away from the ends.
    The east and west legs get a waypoint every step degrees, so that the
    great circles between them stay on their parallel (a great circle
    between two points of one parallel bows towards the pole)."""
    m = width * 0.02
    south, north = lat0 + height / 4, lat0 + 3 * height / 4
    east, west = lon0 + n * width - m, lon0 + m
    k = max(1, int(math.ceil((east - west) / step)))
    lons = [west + (east - west) * i / k for i in range(k + 1)]
    return [(south, lo) for lo in lons] + [(north, lo) for lo in reversed(lons)]


def distance_m(a, b):
    """Great-circle distance in metres (as geo.c)."""
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((la2 - la1) / 2) ** 2 + \
        math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(h)))


def lap_length_m(pts):
    return sum(distance_m(pts[i], pts[(i + 1) % len(pts)]) for i in range(len(pts)))


def route(pts, laps):
    """laps laps of pts, closed: the waypoints of vehicled's `route`."""
    return ["%.5f,%.5f" % p for p in pts * laps] + ["%.5f,%.5f" % pts[0]]


def crossings_per_lap(n):
    """Inner boundaries crossed each way."""
    return 2 * (n - 1)


def main(argv):
    n = int(argv[1]) if len(argv) > 1 else 10
    w = float(argv[2]) if len(argv) > 2 else 1.0
    for t, pts in regions(n, w).items():
        print("region %s %s" % (t, " ".join("%.4f,%.4f" % p for p in pts)))
    pts = lap(n, w)
    print("# lap %.1f km, %d crossings" % (lap_length_m(pts) / 1000, crossings_per_lap(n)))
    print("route " + " ".join(route(pts, 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
