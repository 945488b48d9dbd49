"""Prometheus against the bed: the real server of Debian's prometheus
package scrapes every daemon's admin endpoint with the configuration the
testbed writes (qroamlib.promconf) and evaluates deploy/prometheus/rules.yml
while a vehicle drives A -> B with handovers.  Its HTTP API must show every
target up, the series with the values the daemons report (a handover
counter seen rising from 0, so a rate sees the first handover), the rules
loaded and healthy, the alerts of the faults the bed makes (a link that
makes no key, an eavesdropper, a daemon stopped) and none for the healthy
parts."""

import http.client
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import yaml

from harness import (ROOT, TIMEOUT, Skip, free_port, testbed, vin, wait_until)
from qroamlib import promconf
from qroamlib.proc import Process
from test_drive import ROUTE_AB, crossings, drive_opts

RULES = os.path.join(ROOT, "deploy", "prometheus", "rules.yml")
PROMTOOL = "/usr/bin/promtool"
# sched/tsp-c gets the eavesdropper; tsp-b/tsp-c makes no key at all.
LINKS = ["sched tsp-a", "sched tsp-b", "sched tsp-c", "tsp-b tsp-c rate 0"]
HEALTHY = {"sched/tsp-a", "sched/tsp-b"}


class Prometheus:
    """A Prometheus server of the bed on a loopback port, its database in
    the bed's directory."""

    def __init__(self, tb, targets):
        self.dir = tb.path("prometheus")
        os.makedirs(self.dir)
        self.conf = promconf.write(os.path.join(self.dir, "prometheus.yml"), targets,
                                   interval="1s", rules=(RULES,))
        self.port = free_port()
        self.log = os.path.join(self.dir, "prometheus.log")
        self.proc = Process("prometheus", promconf.command(
            self.conf, os.path.join(self.dir, "data"), "127.0.0.1:%d" % self.port),
            self.log, capture=False)
        if not self.proc.wait_listening([self.port], 60):
            self.proc.kill()
            raise AssertionError("prometheus did not listen: %s" % self.log_tail())

    def get(self, path, **params):
        """GET path with params: the decoded JSON of an API answer (its
        status must be success), the text of another one, None for a
        non-200 answer."""
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
                body = r.read().decode()
        except (urllib.error.HTTPError, http.client.HTTPException):
            return None
        if not path.startswith("/api/"):
            return body
        js = json.loads(body)
        assert js["status"] == "success", js
        return js["data"]

    def query(self, expr):
        """{labels as a sorted tuple: value} of an instant query."""
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", data
        return {tuple(sorted(r["metric"].items())): float(r["value"][1])
                for r in data["result"]}

    def alerts(self, name):
        """{labels without alertname and severity: state} of alert name."""
        out = {}
        for a in self.get("/api/v1/alerts")["alerts"]:
            labels = dict(a["labels"])
            if labels.pop("alertname") == name:
                labels.pop("severity")
                out[tuple(sorted(labels.items()))] = a["state"]
        return out

    def log_tail(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-3000:]

    def stop(self):
        self.proc.stop()
        return self.proc.returncode


def value(prom, expr):
    """The one value of an instant query, None if it has no result."""
    r = prom.query(expr)
    assert len(r) <= 1, r
    return next(iter(r.values())) if r else None


def eavesdrop(tb, a, b, fraction):
    """Switch the eavesdropper of link a-b, as an operator would."""
    conn = http.client.HTTPSConnection("127.0.0.1", tb.port["qkd"],
                                       context=tb.client_tls("operator"), timeout=TIMEOUT)
    try:
        conn.request("POST", "/admin/v1/links/%s/%s" % (a, b),
                     body=json.dumps({"eavesdropper": fraction}).encode(),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
    finally:
        conn.close()


def rule_names():
    """The alerting and recording rules of rules.yml, by name."""
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    return {r.get("alert") or r.get("record") for g in doc["groups"] for r in g["rules"]}


def link_alerts(prom, name):
    """{link: state} of alert name."""
    return {dict(k)["link"]: s for k, s in prom.alerts(name).items()}


@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_prometheus_scrapes_the_bed(tb):
    for exe in (promconf.PROMETHEUS, PROMTOOL):
        if not os.access(exe, os.X_OK):
            raise Skip("%s is not installed (make deps installs Debian's prometheus)" % exe)
    tb.start_qkd(links=LINKS)
    tb.start_sched()
    for t in tb.tsps:
        tb.start_tsp(t, look_ahead="10s")
    tb.start_filler()
    tb.start_registrar()
    v = vin(960)
    names = ["qkd", "sched"] + tb.tsps + ["filler", "registrar"]
    targets = [(n, tb.daemons[n].prog, tb.admin_port(n)) for n in names]
    targets.append((v, "vehicled", tb.admin_port(v)))
    expect = {(p, n) for n, p, _ in targets}

    # The exposition of every daemon passes promtool's lint.
    for n in names:
        code, body = tb.admin_get(n, "/metrics")
        assert code == 200, (n, code)
        lint = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert lint.returncode == 0, (n, lint.stdout.decode())

    prom = Prometheus(tb, targets)
    try:
        check_bed(tb, prom, v, expect)
    finally:
        rc = prom.stop()
    assert rc == 0, "prometheus exited with %s: %s" % (rc, prom.log_tail())
    with open(prom.log) as f:
        errors = [l for l in f if "level=error" in l]
    assert not errors, errors


def check_bed(tb, prom, v, expect):
    wait_until(lambda: prom.get("/-/ready") is not None, what="prometheus ready")

    # Rules loaded, every one of them, none failing to evaluate.
    def rules():
        groups = prom.get("/api/v1/rules")["groups"]
        got = [r for g in groups for r in g["rules"]]
        return got if got and all(r.get("lastEvaluation", "").startswith("2")
                                  and r["health"] != "unknown" for r in got) else None
    got = wait_until(rules, what="the rules to be evaluated")
    assert {r["name"] for r in got} == rule_names(), got
    assert all(r["health"] == "ok" for r in got), [r for r in got if r["health"] != "ok"]

    # One target per daemon; every cloud daemon's up, the vehicle's does
    # not answer yet.
    def targets(health=None):
        t = prom.get("/api/v1/targets", state="active")["activeTargets"]
        return {(x["labels"]["job"], x["labels"]["instance"]) for x in t
                if health is None or x["health"] == health}
    wait_until(lambda: targets(), what="prometheus's targets")
    assert targets() == expect, targets()
    wait_until(lambda: targets("up") == expect - {("vehicled", v)},
               what="every cloud target up")

    # Before any handover the results are there with 0.
    for t in tb.tsps:
        for result in ("ok", "failed", "declined"):
            assert value(prom, 'qroam_handovers_total{job="tspd",instance="%s",result="%s"}'
                         % (t, result)) == 0, (t, result)
    assert value(prom, 'qroam_handovers_total{job="schedd",result="failed"}') == 0
    assert value(prom, 'sum(qroam_outbox_oldest_seconds{job=~"fillerd|registrard"})') == 0

    # tsp-b/tsp-c makes no key: its pool stays empty.
    wait_until(lambda: "tsp-b/tsp-c" in link_alerts(prom, "QroamKMEPoolEmpty"),
               what="QroamKMEPoolEmpty for tsp-b/tsp-c")
    eavesdrop(tb, "sched", "tsp-c", 1.0)

    tb.start_vehicle(v, route=ROUTE_AB, **drive_opts(session_rekey=0))
    wait_until(lambda: targets("up") == expect, what="the vehicle's target up")
    wait_until(lambda: crossings(tb, v), timeout=60, what="the crossing of %s" % v)
    assert [c[3] for c in crossings(tb, v)] == [0], crossings(tb, v)

    # The handover, as tsp-a's endpoint counts it, in Prometheus; and
    # since the series was there with 0, increase() sees it.
    def same():
        m = tb.metrics("tsp-a")
        ours = m.get(("qroam_handovers_total", (("result", "ok"),)))
        return ours and value(prom, 'qroam_handovers_total{instance="tsp-a",result="ok"}') \
            == ours
    wait_until(same, what="tsp-a's handover count in prometheus")
    assert value(prom, 'increase(qroam_handovers_total{instance="tsp-a",result="ok"}[5m])') > 0
    assert value(prom, 'qroam_handovers_target_total{instance="tsp-b",result="ok"}') >= 1
    assert value(prom, 'sum(qroam_handovers_total{job="schedd",result="ok"})') >= 1
    assert value(prom, 'qroam_telemetry_acked_total{job="vehicled"}') > 0

    # The eavesdropped link raises the QBER alert; the others stay quiet.
    def qber():
        a = link_alerts(prom, "QroamQKDQBERHigh")
        assert not HEALTHY & set(a), a
        return "sched/tsp-c" in a
    wait_until(qber, timeout=120, what="QroamQKDQBERHigh for sched/tsp-c")
    assert value(prom, 'qroam_qkd_qber{link="sched/tsp-c"}') > 0.11
    assert not HEALTHY & set(link_alerts(prom, "QroamKMEPoolEmpty"))
    for quiet in ("QroamHandoverFailureRatioHigh", "QroamOutboxBacklog",
                  "QroamDaemonDown", "QroamKeyReserveMisses"):
        assert prom.alerts(quiet) == {}, (quiet, prom.alerts(quiet))

    # A daemon stopped is reported down.
    tb.stop("registrar")
    wait_until(lambda: prom.alerts("QroamDaemonDown") ==
               {(("instance", "registrar"), ("job", "registrard")): "pending"},
               what="QroamDaemonDown for the registrar")
    assert value(prom, 'up{instance="registrar"}') == 0
    assert value(prom, 'sum(up)') == len(expect) - 1
