#!/usr/bin/env python3
"""qkdd's link physics, measured on a real qkdd (build/asan by default).

    scripts/qkd_model.py distance [SVG]   rate vs fibre length, GYS parameters,
                                           against Lo, Ma and Chen's formula;
                                           with SVG, also a plot
    scripts/qkd_model.py sweep             intercept-resend fraction f = 0..1 on
                                           one fixed-rate link: true and measured
                                           QBER, bound, key rate, 503s

Both print Markdown tables (BENCHMARKS.md quotes them).  Blocks are driven
with the admin endpoint's run (POST /admin/v1/links/{a}/{b}/run), so the
figures do not depend on the machine's speed.
"""

import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import harness  # noqa: E402
from test_qkdd import call, enc  # noqa: E402
from test_qkd_fibre import GYS, lmc_rate  # noqa: E402

KMS = (0, 10, 25, 50, 75, 100, 120, 130, 135, 140, 142, 145, 150)
PULSES = 1e9


def view(tb, a, b):
    st, js = call(tb, "operator", "GET", "/admin/v1/links/%s/%s" % (a, b))
    assert st == 200, js
    return js


def run(tb, a, b, ticks):
    st, js = call(tb, "operator", "POST", "/admin/v1/links/%s/%s/run" % (a, b),
                  {"ticks": ticks})
    assert st == 200, js
    return js


def distance(svg=None):
    tb = harness.Testbed(name="qkd-distance")
    try:
        tb.start_qkd(links=["sched km-%d fibre %g %s pulses %g" % (km, km, GYS, PULSES)
                            for km in KMS])
        rows = []
        print("| km | LMC formula, bits/pulse | qkdd asymptotic | ratio | qkdd finite-size "
              "(25,000-bit samples) | QBER of the signals |")
        print("|---|---|---|---|---|---|")
        for km in KMS:
            js = view(tb, "km-%d" % km, "sched")
            ref = max(0.0, lmc_rate(km)[0])
            asym = js["rate_asymptotic"] / PULSES
            fin = js["rate"] / PULSES
            rows.append((km, ref, asym, fin))
            print("| %d | %.3e | %.3e | %s | %.3e | %.2f %% |" % (
                km, ref, asym, "%.4f" % (asym / ref) if ref > 0 else "—", fin,
                100 * js["fibre"]["qber_signal"]))
        lo = 0.0
        while lmc_rate(lo + 0.1)[0] > 0:
            lo += 0.1
        print("\nmaximum distance (formula): %.1f km" % lo)
        if svg:
            plot(rows, svg)
    finally:
        tb.close()


def plot(rows, path):
    """Log-scale rate against distance, formula as a line, qkdd as marks."""
    w, h, left, top, right, bottom = 640, 400, 70, 20, 20, 50
    lo_e, hi_e = -8, -2

    def x(km):
        return left + (w - left - right) * km / 150.0

    def y(r):
        e = math.log10(max(r, 10 ** lo_e))
        return top + (h - top - bottom) * (hi_e - e) / (hi_e - lo_e)

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<rect width="100%" height="100%" fill="white"/>']
    for e in range(lo_e, hi_e + 1):
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                   % (left, w - right, y(10 ** e), y(10 ** e)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">1e%d</text>'
                   % (left - 6, y(10 ** e) + 4, e))
    for km in range(0, 151, 25):
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>'
                   % (x(km), h - bottom + 18, km))
    out.append('<text x="%d" y="%d" text-anchor="middle">fibre length (km)</text>'
               % ((left + w - right) // 2, h - 8))
    out.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">'
               'secret bits per pulse</text>' % (h // 2, h // 2))
    pts = []
    km = 0.0
    while km <= 150:
        r = lmc_rate(km)[0]
        if r > 0:
            pts.append("%.1f,%.1f" % (x(km), y(r)))
        km += 0.5
    out.append('<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="%s"/>'
               % " ".join(pts))
    for km, ref, asym, fin in rows:
        if asym >= 10 ** lo_e:
            out.append('<circle cx="%.1f" cy="%.1f" r="4" fill="none" stroke="#d62728"/>'
                       % (x(km), y(asym)))
        if fin >= 10 ** lo_e:
            out.append('<rect x="%.1f" y="%.1f" width="7" height="7" fill="#2ca02c"/>'
                       % (x(km) - 3.5, y(fin) - 3.5))
    legend = [("#1f77b4", "Lo, Ma, Chen 2005, GYS, infinite decoys (formula)"),
              ("#d62728", "qkdd asymptotic (rate_asymptotic)"),
              ("#2ca02c", "qkdd finite-size, 25,000-bit samples (rate)")]
    for i, (c, t) in enumerate(legend):
        out.append('<rect x="%d" y="%d" width="12" height="4" fill="%s"/>'
                   % (w - 330, top + 10 + 16 * i, c))
        out.append('<text x="%d" y="%d">%s</text>' % (w - 312, top + 15 + 16 * i, t))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s" % path)


def sweep():
    tb = harness.Testbed(name="qkd-sweep")
    try:
        tb.start_qkd(links=["sched tsp-a qber 0.0 pool 1000000"])
        print("| f | true QBER | measured QBER | bound Q_U | key rate, bits/s | blocks | "
              "aborted | enc_keys 503 of 50 |")
        print("|---|---|---|---|---|---|---|---|")
        for f in (0.0, 0.1, 0.2, 0.3, 0.36, 0.38, 0.40, 0.42, 0.44, 0.46, 0.5, 1.0):
            st, js = call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a",
                          {"eavesdropper": f})
            assert st == 200, js
            ticks = keys = blocks = aborts = 0
            while blocks < 40:
                js = run(tb, "sched", "tsp-a", 100)
                ticks += 100
                keys += js["run"]["keys"]
                blocks += js["run"]["blocks"]
                aborts += js["run"]["aborts"]
            n503 = 0
            for _ in range(50):
                st, _js = enc(tb, "sched", "tsp-a")
                n503 += st == 503
            print("| %.2f | %.2f %% | %.2f %% | %.2f %% | %.0f | %d | %d | %d |" % (
                f, 25 * f, 100 * js["qber"], 100 * js["qber_bound"],
                keys * 256 / (ticks * 0.1), blocks, aborts, n503))
    finally:
        tb.close()


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "distance":
        distance(sys.argv[2] if len(sys.argv) > 2 else None)
    elif len(sys.argv) == 2 and sys.argv[1] == "sweep":
        sweep()
    else:
        sys.exit(__doc__)
