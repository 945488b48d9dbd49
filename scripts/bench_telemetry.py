#!/usr/bin/env python3
"""The telemetry figure of scripts/bench.py alone.

Starts the same deployment as `make bench` (build/bin, not sanitized),
enrols one vehicle and measures, QROAM_BENCH_RUNS times (default 5),
telemetry messages per second on one session with tspd pinned to CPU 0 and
qbench on CPU 1 (`qbench telemetry -w 256 -s 2`).  Prints each run and the
median; exit status 1 if something broke.

usage: python3 scripts/bench_telemetry.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from qroamlib.stores import median  # noqa: E402


def main():
    bed = bench.Bed()
    rates, cpu = [], []
    try:
        bed.setup()
        bed.start()
        os.makedirs(bed.path("vehicles"))
        bed.qbench("enroll", "-V", bench.VIN_BASE, "-n", 1)
        bench.wait_registered(bed, 1)
        bed.pin("tsp-a", "0")
        for r in range(bench.RUNS):
            c0 = bench.cpu_seconds(bed.pid("tsp-a"))
            res, _ = bed.qbench("telemetry", "-A", "tsp-a", "-f", 0, "-w", 256,
                                "-s", 2, cpu=1)
            rates.append(res["per_second"])
            cpu.append((bench.cpu_seconds(bed.pid("tsp-a")) - c0) * 1e6 /
                       max(res["acked"], 1))
            print("run %d/%d: %.0f messages/s, %.1f us tspd CPU per message"
                  % (r + 1, bench.RUNS, rates[-1], cpu[-1]), flush=True)
    except bench.Broken as e:
        print("broken: %s" % e, file=sys.stderr)
        bed.stop()
        return 1
    problems = bed.stop()
    for p in problems:
        print("problem: %s" % p, file=sys.stderr)
    print("telemetry: median %.0f messages/s, %.1f us tspd CPU per message "
          "(%d runs; %s)" % (median(rates), median(cpu), len(rates), bed.dir))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
