"""Prometheus for a testbed: the scrape configuration of its daemons' admin
endpoints, in the shape of deploy/prometheus/prometheus.yml (one job per
program, the daemon's name as the instance label, so that the alerting
rules of deploy/prometheus/rules.yml apply unchanged), and the command
line of a Prometheus server that reads it."""

import json
import os

from . import layout

PROMETHEUS = "/usr/bin/prometheus"
RULES = os.path.join(layout.ROOT, "deploy", "prometheus", "rules.yml")
# The programs with an admin endpoint, in the order of the jobs.
PROGRAMS = ("qkdd", "schedd", "kmpd", "tspd", "fillerd", "registrard", "vehicled")


def _q(s):
    """s as a YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(str(s))


def scrape_config(targets, interval="5s", rules=(RULES,), host="127.0.0.1",
                  comment=None):
    """The YAML text of a configuration that scrapes every (name, program,
    port) of targets at host:port/metrics every interval and evaluates
    the rule files rules (absolute paths) as often.  Programs without an
    admin endpoint (haproxy) have no place in targets; raises ValueError
    on one that is no qroam daemon."""
    jobs = {}
    for name, prog, port in targets:
        if prog not in PROGRAMS:
            raise ValueError("%s: %s has no admin endpoint" % (name, prog))
        jobs.setdefault(prog, []).append((name, int(port)))
    lines = ["# %s" % c for c in (comment or "").splitlines()]
    lines += ["global:", "  scrape_interval: %s" % interval,
              "  scrape_timeout: %s" % interval,
              "  evaluation_interval: %s" % interval]
    if rules:
        lines += ["rule_files:"] + ["  - %s" % _q(r) for r in rules]
    lines.append("scrape_configs:")
    for prog in PROGRAMS:
        if prog not in jobs:
            continue
        lines += ["  - job_name: %s" % prog, "    static_configs:"]
        for name, port in sorted(jobs[prog]):
            lines += ["      - targets: [%s]" % _q("%s:%d" % (host, port)),
                      "        labels:", "          instance: %s" % _q(name)]
    return "\n".join(lines) + "\n"


def write(path, targets, **opts):
    """scrape_config(targets, **opts) into the file path; returns path."""
    layout.write_file(path, scrape_config(targets, **opts))
    return path


def command(conf, datadir, listen="127.0.0.1:9090", exe=PROMETHEUS):
    """argv of a Prometheus server reading conf, keeping its database in
    datadir and serving its web interface and HTTP API on listen."""
    return [exe, "--config.file=" + conf, "--storage.tsdb.path=" + datadir,
            "--web.listen-address=" + listen]
