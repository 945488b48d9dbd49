"""A picture of a drive: an SVG of the live map's view (`qroamctl map`'s
/map.json) taken at the end of a run.  Regions with their TSP, each
vehicle's route, its crossings with their service gap, the handovers that
failed (with their reason) and the QKD links that were past the abort
threshold.  Standard library only; the output is a plain SVG 1.1 file
that any browser or image viewer shows."""

import math
from xml.sax.saxutils import escape

W, H, PAD, TOP, LEGEND = 1000, 680, 50, 50, 150
COLOURS = ["#2f7fd8", "#e8590c", "#23a047", "#9b4dca", "#c2255c", "#0b7285",
           "#5c940d", "#862e9c", "#d9480f", "#364fc7"]
REGION_FILL = ["#e7f0fa", "#fdf0e1", "#e9f7ec", "#f3e8fa", "#fde8ef", "#e3f6f8"]


def projection(regions, vehicles):
    """An equirectangular projection (lat, lon) -> (x, y) fitted to every
    region vertex and route point."""
    pts = [p for r in regions for p in r["polygon"]]
    pts += [p for v in vehicles for p in v.get("trace") or []]
    if not pts:
        pts = [(-1, -1), (1, 1)]
    la0, la1 = min(p[0] for p in pts), max(p[0] for p in pts)
    lo0, lo1 = min(p[1] for p in pts), max(p[1] for p in pts)
    k = math.cos(math.radians((la0 + la1) / 2))
    dx, dy = max((lo1 - lo0) * k, 1e-9), max(la1 - la0, 1e-9)
    s = min((W - 2 * PAD) / dx, (H - TOP - PAD - LEGEND) / dy)
    ox = (W - dx * s) / 2
    oy = TOP + (H - TOP - PAD - LEGEND - dy * s) / 2

    def proj(la, lo):
        return ox + (lo - lo0) * k * s, oy + (la1 - la) * s
    return proj


def _pts(points, proj):
    return " ".join("%.1f,%.1f" % proj(p[0], p[1]) for p in points)


def _centre(poly, proj):
    xy = [proj(p[0], p[1]) for p in poly]
    return sum(x for x, _ in xy) / len(xy), sum(y for _, y in xy) / len(xy)


def _regions(view, proj, out, where):
    for i, r in enumerate(view.get("regions", [])):
        out.append('<polygon class="region" data-tsp="%s" points="%s" fill="%s" '
                   'stroke="#445" stroke-width="1.5"><title>%s</title></polygon>'
                   % (escape(r["tsp"]), _pts(r["polygon"], proj),
                      REGION_FILL[i % len(REGION_FILL)], escape(r["tsp"])))
        where[r["tsp"]] = _centre(r["polygon"], proj)
    for tsp, (x, y) in where.items():
        out.append('<text x="%.1f" y="%.1f" font-size="16" font-weight="bold" '
                   'text-anchor="middle" fill="#334">%s</text>' % (x, y, escape(tsp)))


def _vehicles(view, proj, out):
    for i, v in enumerate(view.get("vehicles", [])):
        colour = COLOURS[i % len(COLOURS)]
        vid = escape(v.get("vehicle_id", "?"))
        trace = v.get("trace") or []
        if len(trace) > 1:
            out.append('<polyline class="route" data-vid="%s" points="%s" fill="none" '
                       'stroke="%s" stroke-width="2.5" stroke-opacity="0.8">'
                       '<title>%s</title></polyline>' % (vid, _pts(trace, proj), colour, vid))
        if "lat" in v:
            x, y = proj(v["lat"], v["lon"])
            out.append('<circle cx="%.1f" cy="%.1f" r="5" fill="%s" stroke="#111">'
                       '<title>%s at the end: %s</title></circle>'
                       % (x, y, colour, vid, escape(v.get("state", "?"))))
        for j, c in enumerate(v.get("crossings") or []):
            x, y = proj(c["lat"], c["lon"])
            gap = c.get("gap_ms")
            label = "%.1f ms" % gap if gap is not None else "gap ?"
            out.append('<rect class="crossing" x="%.1f" y="%.1f" width="8" height="8" '
                       'transform="rotate(45 %.1f %.1f)" fill="#fff" stroke="%s" '
                       'stroke-width="1.5"><title>%s %s -&gt; %s: %s</title></rect>'
                       % (x - 4, y - 4, x, y, colour, vid, escape(c["from"]),
                          escape(c["to"]), label))
            out.append('<text x="%.1f" y="%.1f" font-size="11" fill="%s">%s</text>'
                       % (x + 8, y - 6 - 12 * (i % 3), colour, label))


def _failures(view, out, where):
    failed = [h for h in view.get("handovers", {}).get("ended", [])
              if h.get("result") == "failed"]
    for h in failed:
        a, b = where.get(h["from"]), where.get(h["to"])
        if not a or not b:
            continue
        out.append('<line class="failed" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" '
                   'stroke="#d7263d" stroke-width="4" marker-end="url(#head)">'
                   '<title>handover %s -&gt; %s of %s failed: %s</title></line>'
                   % (a[0], a[1], (a[0] + b[0]) / 2, (a[1] + b[1]) / 2,
                      escape(h["from"]), escape(h["to"]), escape(h.get("vehicle_id") or "?"),
                      escape(h.get("reason") or "?")))
    return failed


def _legend(view, failed, out):
    y = H - LEGEND + 10
    c = view.get("counters", {})
    lines = ["%d vehicles, handovers %d ok, %d failed, %d declined" % (
        c.get("vehicles", 0), c.get("handovers_ok", 0), c.get("handovers_failed", 0),
        c.get("handovers_declined", 0))]
    gaps = [x["gap_ms"] for v in view.get("vehicles", []) for x in v.get("crossings") or []
            if x.get("gap_ms") is not None]
    if gaps:
        lines.append("%d crossings (diamonds), service gap %.1f ms median, %.1f ms max"
                     % (len(gaps), sorted(gaps)[len(gaps) // 2], max(gaps)))
    for h in failed[:4]:
        lines.append("failed handover %s -> %s (%s): %s" % (
            h["from"], h["to"], h.get("vehicle_id") or "?", h.get("reason") or "?"))
    for link in view.get("links", []):
        if link.get("alarm"):
            lines.append("QKD link %s past the abort threshold (QBER %.1f %%)"
                         % (link["link"], 100 * link.get("qber", 0)))
    for i, text in enumerate(lines[:8]):
        out.append('<text x="%d" y="%d" font-size="13" fill="#222">%s</text>'
                   % (PAD, y + 18 * i, escape(text)))
    for i, v in enumerate(view.get("vehicles", [])[:7]):
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>'
                   '<text x="%d" y="%d" font-size="12" fill="#222">%s</text>'
                   % (W - 260, y + 18 * i - 4, W - 236, y + 18 * i - 4,
                      COLOURS[i % len(COLOURS)], W - 228, y + 18 * i,
                      escape(v.get("vehicle_id", "?"))))


def svg(view, title="qroam drive"):
    """The SVG text of a /map.json view."""
    regions, vehicles = view.get("regions", []), view.get("vehicles", [])
    proj = projection(regions, vehicles)
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="DejaVu Sans, sans-serif">' % (W, H, W, H),
           '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" '
           'markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
           'fill="#d7263d"/></marker></defs>',
           '<rect width="100%" height="100%" fill="#fff"/>',
           '<text x="%d" y="30" font-size="18" font-weight="bold">%s</text>'
           % (PAD, escape(title))]
    where = {}
    _regions(view, proj, out, where)
    _vehicles(view, proj, out)
    failed = _failures(view, out, where)
    _legend(view, failed, out)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(path, view, title="qroam drive"):
    """Write the SVG of view to path."""
    with open(path, "w") as f:
        f.write(svg(view, title))
