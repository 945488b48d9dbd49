"""A daemon's admin endpoint (plain HTTP on loopback): requests and the
Prometheus text format of /metrics."""

import http.client
import re

_SAMPLE_RX = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def http_get(port, path, host="127.0.0.1", timeout=5.0):
    """GET path: (HTTP status, body text).  Raises OSError when nothing
    answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def parse_metrics(text):
    """Prometheus text format into {(name, ((label, value), ...)): float}.
    Raises ValueError on a line that is not valid exposition text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RX.match(line)
        if m is None:
            raise ValueError("bad metrics line: %r" % line)
        labels = tuple(sorted(_LABEL_RX.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(samples, name, **labels):
    """Value of one series in parse_metrics output (0.0 if absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
