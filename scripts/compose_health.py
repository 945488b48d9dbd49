"""Healthchecks and admin requests of the compose services, run inside
their network namespaces as their container users
(scripts/compose_netns.py)."""

import os
import subprocess
import sys
import time

from compose_image import as_user

QROAMCTL_CONF = "/etc/qroam/qroamctl.conf"
# /healthz of an admin endpoint, run inside a namespace: exit 0 if it
# answers "ok", 3 if nothing listens, 1 otherwise.
HEALTHZ_PY = r"""
import http.client, sys
try:
    c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=2)
    c.request("GET", "/healthz")
    r = c.getresponse()
    sys.exit(0 if r.status == 200 else 1)
except ConnectionRefusedError:
    sys.exit(3)
except Exception:
    sys.exit(1)
"""
# GET one admin path inside a namespace and print the body.
ADMIN_GET_PY = r"""
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=3)
c.request("GET", sys.argv[3])
r = c.getresponse()
sys.stdout.write(r.read().decode())
sys.exit(0 if r.status == 200 else 1)
"""



class Health:
    """The compose healthcheck of a service, run in its namespace.  Without
    the healthcheck's program in the build, /healthz of the admin port it
    names is probed instead; a daemon without an admin endpoint there counts
    as healthy once it logged its start-up line and the port stayed closed
    for two seconds."""

    def __init__(self, bindir, paths, confdir):
        self.bindir = bindir
        self.paths = paths
        self.confdir = confdir
        self.output = {}

    def check(self, proc):
        """(healthy, how)."""
        svc, h = proc.svc, proc.svc.health
        if "argv" in h:
            prog = os.path.join(self.bindir, os.path.basename(h["argv"][0]))
            if os.path.exists(prog):
                argv = [prog] + self.ctl_conf(proc, h["argv"]) + h["argv"][1:]
                return self._run(svc, argv, h["timeout"]) == 0, " ".join(h["argv"])
            port = admin_port(h["argv"])
            if port is not None:
                return self._healthz(proc, port, h["timeout"])
        if "shell" in h:
            return self._run(svc, ["sh", "-c", h["shell"]], h["timeout"]) == 0, h["shell"]
        return proc.started is not None, "start-up line"

    def ctl_conf(self, proc, argv):
        """qroamctl reads /etc/qroam/qroamctl.conf by default: in the
        container that is the service's mounted file, so name its mapped
        copy when the command names none."""
        if os.path.basename(argv[0]) != "qroamctl" or "-f" in argv:
            return []
        paths = self.paths[proc.svc.name]
        conf = paths.host(QROAMCTL_CONF)
        if conf == QROAMCTL_CONF or not os.path.isfile(conf):
            return []
        mapped = os.path.join(self.confdir, proc.svc.name, "qroamctl.conf")
        if not os.path.exists(mapped):
            os.makedirs(os.path.dirname(mapped), exist_ok=True)
            with open(conf) as f:
                text = paths.rewrite(f.read())
            with open(mapped, "w") as f:
                f.write(text)
        return ["-f", mapped]

    def _run(self, svc, argv, timeout):
        """Exit status of argv in the service's namespace; its output is
        kept for the message of a healthcheck that never passes."""
        try:
            p = subprocess.run(["ip", "netns", "exec", svc.ns] + as_user(svc) + argv,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=max(timeout, 1))
            self.output[svc.name] = "exit %d: %s" % (p.returncode, p.stdout.strip()[-2000:])
            return p.returncode
        except subprocess.TimeoutExpired:
            self.output[svc.name] = "timed out after %.0f s" % timeout
            return 124

    def _healthz(self, proc, port, timeout):
        host, p = port
        rc = self._run(proc.svc, [sys.executable, "-c", HEALTHZ_PY, host, str(p)], timeout)
        if rc == 0:
            return True, "GET /healthz on %s:%d" % (host, p)
        if rc == 3 and proc.started is not None and time.monotonic() - proc.started > 2:
            return True, "start-up line (no admin endpoint on %s:%d)" % (host, p)
        return False, "GET /healthz on %s:%d" % (host, p)


def admin_port(argv):
    """(host, port) of a `qroamctl -a [HOST:]PORT ...` command, or None."""
    for i, a in enumerate(argv[:-1]):
        if a == "-a":
            host, _, port = argv[i + 1].rpartition(":")
            if port.isdigit():
                return (host or "127.0.0.1", int(port))
    return None


def admin_get(svc, path):
    """The body of GET path on the service's admin endpoint, or None."""
    if not svc.health or "argv" not in svc.health:
        return None
    ap = admin_port(svc.health["argv"])
    if ap is None:
        return None
    p = subprocess.run(["ip", "netns", "exec", svc.ns] + as_user(svc) +
                       [sys.executable, "-c", ADMIN_GET_PY, ap[0], str(ap[1]), path],
                       stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, timeout=10)
    return p.stdout if p.returncode == 0 else None


