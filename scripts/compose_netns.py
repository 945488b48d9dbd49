#!/usr/bin/env python3
"""Run the docker-compose testbed without a container engine.

Reads docker-compose.yml and gives every service a network namespace named
after it (`ip netns add tsp-a`), joined by a veth pair to a Linux bridge
that lives in a namespace of its own (the root namespace's links and routes
are never touched).  Each service gets an address of a private /24, `lo`
up, and /etc/netns/<service>/hosts naming every service, so inside
`ip netns exec` the topology's service names resolve as on a compose
network.  The services' commands then run natively in depends_on order,
their programs those of build/bin (or the ASan build with --asan) copied
into the run directory's usr/sbin as the image has them, each as its
container's user (the service's `user:`, else the USER of its image's
Dockerfile, with setpriv) in the image's WORKDIR; a service whose
dependants wait for `service_healthy` must pass its compose healthcheck
(run as that user too) first.  The container paths of the volumes are
mapped: bind mounts to a copy of their host source in the run directory,
modes kept (the testbed PKI to a fresh one generated for the run by
deploy/compose/pki.sh), so the services never read the checkout, which may
sit below a directory others cannot enter (/root); named volumes to
directories of the run owned as the image's mount point is (qroam:qroam
0750); configuration files naming container paths are copied with those
paths rewritten.  A process that exits is restarted by its service's
restart policy.

Then the vehicles drive: every vehicled service's route is followed to its
end, and the run checks in the vehicle and TSP stores that each vehicle
crossed the regions the route crosses with a handover at every crossing,
authenticated once only (one F3), that every telemetry message a vehicle
saw acknowledged is in the acknowledging TSP's store, that every process
ran as its user and every file of the named volumes belongs to it, and
that no process died or reported an error.  With --crash SERVICE a tspd
service is killed (SIGKILL) while vehicles are in and approaching its
region; the run then also checks that the policy restarted it and it
became healthy again, and allows a crossing into that region to fall back
to F3 (see compose_scenario.check_crossings).  --loss, --delay and
--partition put network faults on the services' links (compose_faults.py:
netem where the kernel has it, nftables otherwise); then any crossing may
fall back to F3, and every vehicle must still finish its route with every
acknowledged message stored.  A last line `SUMMARY {json}`
gives the figures; exit status 0 when the scenario passed, 1 otherwise.
Everything is torn down at the end, after a failure or on Ctrl-C:
processes, namespaces, veths, bridge, /etc/netns/<service>.  Runs as root.

usage: scripts/compose_netns.py [-f COMPOSE] [--asan | --bin DIR] [-q]
           [--crash SERVICE] [--loss PCT] [--delay MS[:JITTER]]
           [--partition TSP:SERVICE:SECONDS] [--prefix P] [--subnet CIDR] [--pki DIR]
           [--timeout S] [--keep]
       scripts/compose_netns.py --clean [--prefix P]
"""

import argparse
import fcntl
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

import compose_faults
import compose_scenario as scenario
from compose_health import Health, admin_get
from compose_image import as_user, image_facts, resolve_ids, restarts
from qroamlib.proc import SAN_ENV, Console, Process, emit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = "# qroam compose_netns"
PKI_TARGET = "/etc/qroam/pki"
RESTART_DELAY = 1.0     # seconds between an exit and the restart
PKI_SCRIPT = os.path.join(ROOT, "deploy", "compose", "pki.sh")
say = Console("compose").say


def sh(*argv, check=True):
    """Run a command; its output on failure is raised."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), p.returncode, p.stdout.strip()))
    return p


# ---- the compose file -------------------------------------------------------

def duration(v, default):
    """Seconds of a compose duration ("5s", "1m30s", "500ms")."""
    if v is None:
        return default
    if isinstance(v, (int, float)):
        return float(v)
    total, n = 0.0, 0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", str(v)):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
        n += 1
    return total if n else default


class Service:
    """One compose service, normalized."""

    def __init__(self, name, spec, base, index):
        self.name = name
        self.index = index
        cmd = spec.get("command")
        if cmd is None:
            raise ValueError("service %s: no command" % name)
        self.argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
        self.restart = str(spec.get("restart", "no"))
        self.user = spec.get("user")
        self.build = spec.get("build")
        self.mounts = [self._mount(v, base) for v in spec.get("volumes", [])]
        dep = spec.get("depends_on", {})
        if isinstance(dep, list):
            dep = {d: {"condition": "service_started"} for d in dep}
        self.depends = {d: (c or {}).get("condition", "service_started") for d, c in dep.items()}
        self.health = self._health(spec.get("healthcheck"))
        self.ns = None
        self.addr = None

    def _mount(self, v, base):
        """(kind, source, target): kind bind (source a host path) or volume."""
        if isinstance(v, str):
            parts = v.split(":")
            src, tgt = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
            kind = "bind" if src and src[0] in "./~" else "volume"
        else:
            src, tgt, kind = v.get("source"), v["target"], v.get("type", "volume")
        if kind == "bind":
            src = os.path.normpath(os.path.join(base, os.path.expanduser(src)))
        elif kind != "volume":
            raise ValueError("service %s: %s mounts are not supported" % (self.name, kind))
        return (kind, src, tgt.rstrip("/") or "/")

    @staticmethod
    def _health(hc):
        """{argv | shell, interval, timeout, retries, start_period} or None."""
        if not hc or hc.get("disable"):
            return None
        test = hc.get("test")
        if test is None or test == ["NONE"]:
            return None
        h = {"interval": duration(hc.get("interval"), 30),
             "timeout": duration(hc.get("timeout"), 30),
             "retries": int(hc.get("retries", 3)),
             "start_period": duration(hc.get("start_period"), 0)}
        if isinstance(test, str):
            h["shell"] = test
        elif test[0] == "CMD":
            h["argv"] = [str(a) for a in test[1:]]
        elif test[0] == "CMD-SHELL":
            h["shell"] = " ".join(test[1:])
        else:
            raise ValueError("healthcheck test %r" % (test,))
        return h

    def program(self):
        return os.path.basename(self.argv[0])


def load_compose(path):
    """({name: Service} in file order, [named volumes])."""
    try:
        import yaml
    except ImportError:
        raise RuntimeError("python3-yaml is not installed (scripts/deps.sh installs it)")
    with open(path) as f:
        doc = yaml.safe_load(f)
    base = os.path.dirname(os.path.abspath(path))
    services = {}
    for i, (name, spec) in enumerate(doc.get("services", {}).items()):
        s = services[name] = Service(name, spec, base, i)
        s.image = image_facts(base, s.build)
        s.ids = resolve_ids(s.user or s.image["user"], s.image)
    for s in services.values():
        for d in s.depends:
            if d not in services:
                raise ValueError("service %s depends on unknown %s" % (s.name, d))
    return services, list((doc.get("volumes") or {}).keys())


def start_order(services):
    """Services in an order where each comes after its dependencies."""
    order, done, busy = [], set(), set()

    def visit(s):
        if s.name in done:
            return
        if s.name in busy:
            raise ValueError("depends_on cycle through %s" % s.name)
        busy.add(s.name)
        for d in s.depends:
            visit(services[d])
        busy.discard(s.name)
        done.add(s.name)
        order.append(s)
    for s in services.values():
        visit(s)
    return order


# ---- paths: container paths to host paths ------------------------------------

class Paths:
    """The container paths of one service mapped to host paths."""

    def __init__(self, svc, volume_dirs, replace, binds=None):
        """volume_dirs: {named volume: host directory}; replace: {target:
        host path} for bind mounts given another source; binds: {bind
        source: the host path that stands for it}."""
        self.map = []
        for kind, src, tgt in svc.mounts:
            if kind == "volume":
                host = volume_dirs[src]
            else:
                host = replace.get(tgt) or (binds or {}).get(src, src)
            self.map.append((tgt, host))
        self.map.sort(key=lambda m: -len(m[0]))

    def host(self, path):
        """The host path of a container path (unchanged if not mounted)."""
        for tgt, host in self.map:
            if path == tgt or path.startswith(tgt + "/"):
                return host + path[len(tgt):]
        return path

    def rewrite(self, text):
        """text with every absolute path token mapped."""
        return re.sub(r"(^|\s)(/\S+)", lambda m: m.group(1) + self.host(m.group(2)), text,
                      flags=re.M)

    def mentions(self, text):
        return any(re.search(r"(^|\s)%s(/|\s|$)" % re.escape(t), text, re.M)
                   for t, _ in self.map)


def host_argv(svc, paths, bindir, confdir):
    """The service's command with its program from bindir, container paths
    mapped, and configuration files naming container paths rewritten."""
    prog = os.path.join(bindir, svc.program())
    if not os.path.exists(prog):
        raise RuntimeError("%s: %s is not built" % (svc.name, prog))
    argv = [prog]
    for a in svc.argv[1:]:
        if not a.startswith("/"):
            argv.append(a)
            continue
        h = paths.host(a)
        if os.path.isfile(h) and os.path.getsize(h) < 1 << 20:
            with open(h, errors="replace") as f:
                text = f.read()
            if paths.mentions(text):
                os.makedirs(confdir, exist_ok=True)
                h = os.path.join(confdir, os.path.basename(a))
                with open(h, "w") as f:
                    f.write(paths.rewrite(text))
        argv.append(h)
    return argv


def reachable_tmpdir():
    """Where the run directory goes: the temporary directory when every
    directory on its path may be entered by others (the services run as
    the image's user), else /tmp or /run."""
    for d in (tempfile.gettempdir(), "/tmp", "/run"):
        if os.path.isdir(d) and searchable(d):
            return d
    raise RuntimeError("no temporary directory the services' users can reach")


def searchable(path):
    """Whether every directory from / down to path has the x bit for others."""
    p = os.path.realpath(path)
    while True:
        if not os.stat(p).st_mode & 0o001:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


# ---- namespaces -----------------------------------------------------------

class Network:
    """A namespace per service, a bridge in a namespace of its own, and the
    hosts files; everything it creates is recorded for teardown."""

    def __init__(self, services, prefix, subnet):
        self.services = services
        self.prefix = prefix
        self.net = ipaddress.ip_network(subnet)
        self.bridge_ns = prefix + "qroam-br"
        self.created_ns = []
        self.created_etc = []
        self.made_netns_dir = False

    def names(self):
        return [self.prefix + s.name for s in self.services] + [self.bridge_ns]

    @staticmethod
    def existing():
        out = sh("ip", "netns", "list").stdout
        return {line.split()[0] for line in out.splitlines() if line.strip()}

    def clear_leftovers(self):
        """Remove namespaces of an earlier run that died (ours carry MARK in
        their hosts file); fail on a namespace that is not ours."""
        have = self.existing()
        for n in self.names():
            hosts = "/etc/netns/%s/hosts" % n
            ours = n == self.bridge_ns or (os.path.exists(hosts) and MARK in open(hosts).read())
            if n in have and not ours:
                raise RuntimeError("network namespace %s exists and is not a testbed's; "
                                   "use --prefix" % n)
            if n in have:
                say("removing namespace %s left by an earlier run" % n)
                kill_ns_pids(n)
                sh("ip", "netns", "del", n, check=False)
            if ours and os.path.isdir(os.path.dirname(hosts)):
                shutil.rmtree(os.path.dirname(hosts), ignore_errors=True)
                self.made_netns_dir = True

    def setup(self):
        hosts = list(self.net.hosts())
        if len(self.services) + 1 > len(hosts):
            raise RuntimeError("subnet %s is too small" % self.net)
        self._add_ns(self.bridge_ns)
        sh("ip", "-n", self.bridge_ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
        plen = self.net.prefixlen
        for i, s in enumerate(self.services):
            s.ns = self.prefix + s.name
            s.addr = str(hosts[i + 1])
            self._add_ns(s.ns)
            peer = ("v%d-%s" % (i, s.name))[:15]
            sh("ip", "-n", self.bridge_ns, "link", "add", peer, "type", "veth",
               "peer", "name", "eth0", "netns", s.ns)
            sh("ip", "-n", self.bridge_ns, "link", "set", peer, "master", "br0", "up")
            sh("ip", "-n", s.ns, "link", "set", "lo", "up")
            sh("ip", "-n", s.ns, "addr", "add", "%s/%d" % (s.addr, plen), "dev", "eth0")
            sh("ip", "-n", s.ns, "link", "set", "eth0", "up")
        table = "".join("%-15s %s\n" % (s.addr, s.name) for s in self.services)
        if not os.path.isdir("/etc/netns"):
            os.makedirs("/etc/netns")
            self.made_netns_dir = True
        for s in self.services:
            d = "/etc/netns/" + s.ns
            os.makedirs(d, exist_ok=True)
            self.created_etc.append(d)
            with open(os.path.join(d, "hosts"), "w") as f:
                f.write("%s: service names of %s\n127.0.0.1       localhost\n"
                        "::1             localhost\n%s" % (MARK, s.ns, table))

    def _add_ns(self, name):
        sh("ip", "netns", "add", name)
        self.created_ns.append(name)

    def teardown(self):
        """Kill what still runs in our namespaces, delete them (their veths
        and the bridge go with them) and the hosts files."""
        for n in reversed(self.created_ns):
            kill_ns_pids(n)
            sh("ip", "netns", "del", n, check=False)
        for d in self.created_etc:
            shutil.rmtree(d, ignore_errors=True)
        # /etc/netns, once empty, goes too (a parallel run may have made it).
        if self.made_netns_dir or self.created_etc:
            try:
                os.rmdir("/etc/netns")
            except OSError:
                pass
        self.created_ns, self.created_etc = [], []


def kill_ns_pids(ns):
    """SIGKILL every process left in namespace ns."""
    p = sh("ip", "netns", "pids", ns, check=False)
    for pid in p.stdout.split() if p.returncode == 0 else []:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass


# ---- processes ------------------------------------------------------------

class Proc(Process):
    """One service's process in its namespace, as the service's user; its
    output (stdout and stderr) goes to a log file (appended to by the
    processes of later restarts) and, unless quiet, to our stdout.
    `ip netns exec` and setpriv exec the program, so the pid is the
    daemon's."""

    def __init__(self, svc, argv, logdir, env, quiet, cwd=None):
        self.svc = svc
        super().__init__(svc.name, ["ip", "netns", "exec", svc.ns] + as_user(svc) + argv,
                         os.path.join(logdir, svc.name + ".log"), env=env, cwd=cwd,
                         append=True, echo=None if quiet else self._show)

    @staticmethod
    def _show(proc, line):
        emit("%-10s | %s" % (proc.name, line))


# ---- the run --------------------------------------------------------------

class Run:
    """One run of the testbed in namespaces."""

    def __init__(self, args):
        self.args = args
        services, volumes = load_compose(args.file)
        self.order = start_order(services)
        self.volumes = volumes
        self.dir = tempfile.mkdtemp(prefix="qroam-compose-", dir=reachable_tmpdir())
        # The image's programs, as `make install` puts them in /usr/sbin.
        self.sbin = os.path.join(self.dir, "usr", "sbin")
        self.net = Network(self.order, args.prefix, args.subnet)
        self.procs = {}
        self.paths = {}
        self.health = Health(self.sbin, self.paths, os.path.join(self.dir, "etc"))
        self.env = dict(os.environ)
        self.env.update(SAN_ENV)
        self.timings = {}
        self.healthchecks = {}
        self.ended = []             # processes that exited on their own
        self.exits = []             # [{service, status, policy, restarted, injected}]
        self.restarts = {}          # service: restarts done
        self.injected = set()       # services whose next exit we caused
        self.users = {}             # service: ["uid:gid" of each healthy process]
        self.volume_ids = {}        # volume: (uid, gid, mode) it started with

    def prepare(self):
        """PKI, programs, bind mounts, volume directories, mapped commands.
        The services read nothing of the checkout (which may sit below a
        directory only its owner may enter, as a clone in /root does): the
        run directory, reachable by every user, gets the programs as the
        image has them and a copy of every bind-mounted source with its
        modes, as a container sees the host's files; a named volume starts
        out with the owner and mode the image gives its mount point, as
        Docker initialises a new named volume from the image."""
        os.chmod(self.dir, 0o711)
        self.install_programs()
        binds = self.copy_binds()
        replace = {PKI_TARGET: binds.get(os.path.abspath(self.args.pki))
                   if self.args.pki else None}
        if replace[PKI_TARGET] is None:
            replace[PKI_TARGET] = os.path.join(self.dir, "pki")
            sh("sh", PKI_SCRIPT, replace[PKI_TARGET])
        vdirs = {}
        for v in self.volumes:
            vdirs[v] = os.path.join(self.dir, "volumes", v)
            os.makedirs(vdirs[v])
        os.makedirs(os.path.join(self.dir, "logs"))
        self.argv = {}
        self.cwd = {}
        for s in self.order:
            for kind, src, tgt in s.mounts:
                if kind != "volume":
                    continue
                if src not in vdirs:
                    vdirs[src] = os.path.join(self.dir, "volumes", src)
                    os.makedirs(vdirs[src])
                if src not in self.volume_ids:
                    self.volume_ids[src] = self.init_volume(vdirs[src], s, tgt)
            self.paths[s.name] = Paths(s, vdirs, replace, binds)
            self.argv[s.name] = host_argv(s, self.paths[s.name], self.sbin,
                                          os.path.join(self.dir, "etc", s.name))
            wd = self.paths[s.name].host(s.image["workdir"])
            self.cwd[s.name] = wd if os.path.isdir(wd) else None

    def install_programs(self):
        """Copy the programs the services and their healthchecks run from
        the build into the run's usr/sbin (0755 all the way up)."""
        names = set()
        for s in self.order:
            prog = os.path.join(self.args.bin, s.program())
            if not os.path.exists(prog):
                raise RuntimeError("%s: %s is not built" % (s.name, prog))
            names.add(s.program())
            if s.health and "argv" in s.health:
                names.add(os.path.basename(s.health["argv"][0]))
        os.makedirs(self.sbin, mode=0o755)
        os.chmod(os.path.dirname(self.sbin), 0o755)
        os.chmod(self.sbin, 0o755)
        for n in sorted(names):
            prog = os.path.join(self.args.bin, n)
            if os.path.exists(prog):
                shutil.copy2(prog, self.sbin)
                os.chmod(os.path.join(self.sbin, n), 0o755)

    def copy_binds(self):
        """{source: its copy in the run} of every bind-mounted source (and
        of --pki), modes kept.  A source inside another one is left out of
        the outer copy: it is mounted over it."""
        mounted = {src for s in self.order for kind, src, _ in s.mounts if kind == "bind"}
        # The PKI's own source is replaced by --pki or a fresh PKI.
        sources = sorted({src for s in self.order for kind, src, tgt in s.mounts
                          if kind == "bind" and tgt != PKI_TARGET} |
                         ({os.path.abspath(self.args.pki)} if self.args.pki else set()))
        binds = {}
        top = os.path.join(self.dir, "binds")
        os.makedirs(top, mode=0o755)
        os.chmod(top, 0o755)
        for i, src in enumerate(sources):
            if not os.path.exists(src):
                continue
            dst = os.path.join(top, "%d-%s" % (i, os.path.basename(src)))
            inner = {o for o in mounted | set(sources) if o.startswith(src + "/")}
            if os.path.isdir(src):
                shutil.copytree(src, dst, symlinks=True, ignore=lambda d, names, inner=inner: [
                    n for n in names if os.path.join(d, n) in inner])
            else:
                shutil.copy2(src, dst)
            binds[src] = dst
        return binds

    @staticmethod
    def init_volume(path, svc, target):
        """Owner and mode of a new named volume: those of the directory
        the service's image has at the mount point, else root 0755."""
        uid, gid, mode = 0, 0, 0o755
        if target in svc.image["dirs"]:
            o, g, mode = svc.image["dirs"][target]
            uid, gid = resolve_ids("%s:%s" % (o, g), svc.image)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return (uid, gid, mode)

    def start(self):
        """Start every service once the dependencies its depends_on names
        are started or healthy."""
        healthy = set()
        for s in self.order:
            for d, cond in s.depends.items():
                if cond == "service_healthy" and d not in healthy:
                    self.wait_healthy(self.procs[d])
                    healthy.add(d)
            if s.program() == "vehicled":
                self.log_acks(s)
            say("starting %s (%s) in namespace %s at %s as %d:%d"
                % (s.name, " ".join(s.argv), s.ns, s.addr, s.ids[0], s.ids[1]))
            self.spawn(s)
        for s in self.order:
            if s.health and s.name not in healthy:
                self.wait_healthy(self.procs[s.name])

    def log_acks(self, svc):
        """vehicled logs each acknowledged telemetry sequence number at
        debug level: turn it on in the run's copy of its configuration so
        the run can find every acknowledged message in the TSP stores."""
        argv = self.argv[svc.name]
        conf = argv[argv.index("-f") + 1] if "-f" in argv else None
        if conf is None or not conf.startswith(self.dir):
            return
        with open(conf, "a") as f:
            f.write("\n# compose_netns: log every acknowledged telemetry message\n"
                    "verbose 1\n")

    def spawn(self, svc):
        """Start the service's process (again, after a restart)."""
        p = self.procs[svc.name] = Proc(svc, self.argv[svc.name],
                                        os.path.join(self.dir, "logs"), self.env,
                                        self.args.quiet, self.cwd[svc.name])
        return p

    def note_user(self, proc):
        """Record the ids a healthy process runs with (by then `ip netns
        exec` and setpriv have exec'd the daemon)."""
        ids = proc.ids()
        self.users.setdefault(proc.svc.name, []).append("%d:%d" % ids if ids else "gone")

    def supervise(self):
        """Apply the restart policies: a process that exited on its own is
        restarted after RESTART_DELAY when its policy says so (always,
        unless-stopped; on-failure[:N] after a non-zero status, at most N
        times); `no` leaves it down.  Called from the drive's loop."""
        now = time.monotonic()
        for name, p in list(self.procs.items()):
            if p.ended is None and p.died():
                p.reap()
                st = p.returncode
                injected = name in self.injected
                self.injected.discard(name)
                again = restarts(p.svc.restart, st, self.restarts.get(name, 0))
                self.exits.append({"service": name, "status": st, "injected": injected,
                                   "policy": p.svc.restart, "restarted": again})
                say("%s exited with status %s%s; restart policy %s: %s"
                    % (name, st, " (crash injected)" if injected else "", p.svc.restart,
                       "restarting in %.1f s" % RESTART_DELAY if again else "left down"))
            elif p.ended is not None and self.exits_of(name)[-1]["restarted"] and \
                    now - p.ended >= RESTART_DELAY:
                self.ended.append(p)
                self.restarts[name] = self.restarts.get(name, 0) + 1
                say("restarting %s (restart %d)" % (name, self.restarts[name]))
                self.spawn(p.svc)

    def exits_of(self, name):
        return [e for e in self.exits if e["service"] == name]

    def down(self):
        """Services that exited and stay down by their restart policy."""
        return [n for n, p in self.procs.items()
                if p.ended is not None and not self.exits_of(n)[-1]["restarted"]]

    def kill(self, name):
        """SIGKILL the service's process, as a crash would end it."""
        p = self.procs[name]
        self.injected.add(name)
        say("crash: SIGKILL to %s (pid %d)" % (name, p.pid))
        os.kill(p.pid, signal.SIGKILL)

    def wait_healthy(self, proc):
        h = proc.svc.health
        if h is None:
            raise RuntimeError("%s has no healthcheck but others wait for it" % proc.svc.name)
        limit = max(h["start_period"] + h["interval"] * h["retries"], 60)
        deadline = proc.t0 + limit
        while True:
            if proc.died():
                raise RuntimeError("%s exited with status %s during start-up"
                                   % (proc.svc.name, proc.returncode))
            ok, how = self.health.check(proc)
            if ok:
                secs = time.monotonic() - proc.t0
                self.timings[proc.svc.name] = round(secs, 2)
                self.healthchecks[proc.svc.name] = how
                self.note_user(proc)
                say("%s healthy after %.2f s (%s)" % (proc.svc.name, secs, how))
                return
            if time.monotonic() > deadline:
                raise RuntimeError("%s not healthy after %.0f s (%s; last check: %s)"
                                   % (proc.svc.name, limit, how,
                                      self.health.output.get(proc.svc.name, "none")))
            time.sleep(0.25)

    def stop_all(self):
        """Vehicles first (they say Bye while their TSP is up), then the
        rest in reverse start order.  Nothing is restarted any more."""
        procs = [self.procs[s.name] for s in reversed(self.order)
                 if s.name in self.procs and self.procs[s.name].ended is None]
        procs.sort(key=lambda p: p.svc.program() != "vehicled")
        for p in procs:
            p.stop(15)

    def all_procs(self):
        """Every process of the run, those replaced by a restart first."""
        return self.ended + list(self.procs.values())

    def problems(self):
        out = []
        for p in self.all_procs():
            out += p.problems
        for e in self.exits:
            if not e["injected"]:
                out.append("%s exited on its own with status %s (%s)"
                           % (e["service"], e["status"],
                              "restarted" if e["restarted"] else "left down"))
        return out


def report(s):
    """The outcome for people, before the SUMMARY line."""
    if s.get("healthy_after_s"):
        say("healthy after (s): " + ", ".join("%s %.1f" % kv
                                              for kv in s["healthy_after_s"].items()))
    if s.get("users"):
        say("ran as (uid:gid): " + ", ".join("%s %s" % (n, ",".join(sorted(set(u))))
                                             for n, u in s["users"].items()))
    c = s.get("crash")
    if c:
        if "killed_at" in c:
            say("crash: %s SIGKILLed with %d vehicle(s) in its region; %s; it acknowledged "
                "%s telemetry message(s) before the crash and %s after"
                % (c["service"], c.get("vehicles_in_region", 0),
                   "restarted after %s s, healthy again after %s s"
                   % (c["restarted_after_s"], c.get("healthy_after_s", "never"))
                   if "restarted_after_s" in c else "not restarted",
                   c.get("acked_before", "-"), c.get("acked_after", "-")))
        else:
            say("crash: %s was never killed" % c["service"])
    for e in s.get("exits", []):
        if not e["injected"]:
            say("%s exited on its own with status %s (restart policy %s)"
                % (e["service"], e["status"], e["policy"]))
    t = s.get("telemetry_check")
    if t:
        say("telemetry: %d message(s) acknowledged to the vehicles, %d of them missing from "
            "the TSP stores" % (t["acked"], t["lost"]))
    for vin, legs in sorted(s.get("legs", {}).items()):
        say("vehicle %s: %s" % (vin, ", ".join(legs) or "no crossing"))
    for t, v in sorted(s.get("tsps", {}).items()):
        say("%s: outgoing handovers %s, authenticated via %s, %d telemetry stored"
            % (t, v["handovers_out"] or "none", v["auth_via"] or "none", v["telemetry"]))
    if "crossings" in s:
        say("%d vehicles, %d crossings (%d fell back to F3), %d F3, gap p50 %s ms max %s ms, "
            "%s errors, %d restart(s); %.1f s in all"
            % (s["vehicles"], s["crossings"], s.get("fallbacks_to_f3", 0), s["auth_ok"],
               s["gap_ms_p50"], s["gap_ms_max"], s["errors"],
               sum(s.get("restarts", {}).values()), s["total_s"]))


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-f", "--file", default=os.path.join(ROOT, "docker-compose.yml"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                    help="directory of the programs (default build/bin)")
    ap.add_argument("--asan", action="store_true", help="use build/asan/bin")
    ap.add_argument("--prefix", default="", help="prefix of the namespace names")
    ap.add_argument("--subnet", default="10.89.0.0/24")
    ap.add_argument("--pki", help="existing PKI directory (default: a fresh one)")
    ap.add_argument("--timeout", type=float, default=180,
                    help="seconds the drive may take at most")
    ap.add_argument("--crash", metavar="SERVICE",
                    help="SIGKILL this tspd service once the first vehicle entered its "
                    "region; the restart policy brings it back")
    ap.add_argument("--loss", type=float, metavar="PCT",
                    help="drop PCT %% of the packets each service sends (netem, else nftables)")
    ap.add_argument("--delay", metavar="MS[:JITTER]",
                    help="delay each service's packets (netem only)")
    ap.add_argument("--partition", metavar="TSP:SERVICE:SECONDS",
                    help="cut a tspd service and another apart for SECONDS once a vehicle "
                    "entered the TSP's region")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not echo the logs")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    ap.add_argument("--clean", action="store_true",
                    help="only remove namespaces left by a run that was killed")
    args = ap.parse_args(argv)
    args.delay = compose_faults.parse_delay(args.delay)
    args.partition = compose_faults.parse_partition(args.partition)
    if args.asan:
        args.bin = os.path.join(ROOT, "build", "asan", "bin")
    args.bin = os.path.abspath(args.bin)
    return args


def lock(prefix):
    """Serialize runs that use the same namespace names."""
    d = "/run/lock" if os.path.isdir("/run/lock") else tempfile.gettempdir()
    f = open(os.path.join(d, "qroam-compose-netns%s.lock" % (("-" + prefix) if prefix else "")),
             "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        say("another run uses these namespace names; waiting for it")
        fcntl.flock(f, fcntl.LOCK_EX)
    return f


def interrupted(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv):
    args = parse_args(argv)
    os.umask(0o022)
    if os.geteuid() != 0:
        print("compose_netns: network namespaces need root", file=sys.stderr)
        return 2
    held = lock(args.prefix)
    # Also when started with SIGINT ignored (in the background of a shell).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    t0 = time.monotonic()
    run = Run(args)
    summary = {"services": [s.name for s in run.order], "ok": False}
    failure = None
    try:
        run.net.clear_leftovers()
        if args.clean:
            summary["ok"] = True
            return 0
        run.prepare()
        run.net.setup()
        say("%d services in namespaces on %s (bridge in %s); programs from %s; run directory %s"
            % (len(run.order), args.subnet, run.net.bridge_ns, args.bin, run.dir))
        run.start()
        faults = compose_faults.Faults(args.loss, args.delay)
        faults.apply(run.order, say)
        if faults.active():
            summary["faults"] = faults.summary
        summary["healthy_after_s"] = run.timings
        summary["users"] = run.users
        summary["volumes"] = {v: "%d:%d %04o" % ids for v, ids in run.volume_ids.items()}
        summary["healthchecks"] = run.healthchecks
        summary["startup_s"] = round(time.monotonic() - t0, 2)
        drive = scenario.Drive(run, say, admin_get)
        failure = drive.run(args.timeout, args.crash, args.partition)
        summary.update(drive.summary)
    except KeyboardInterrupt:
        failure = "interrupted"
    except (RuntimeError, ValueError, OSError, sqlite3.Error, subprocess.SubprocessError) as e:
        failure = str(e)
    except Exception as e:
        traceback.print_exc()
        failure = "%s: %s" % (type(e).__name__, e)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if not args.clean:
                run.stop_all()
                if failure is None:
                    failure = scenario.verify(run, summary)
                problems = run.problems()
                summary["problems"] = problems[:20]
                if problems and failure is None:
                    failure = "%d problem(s): %s" % (len(problems), problems[0])
        except Exception as e:
            traceback.print_exc()
            failure = failure or "%s: %s" % (type(e).__name__, e)
        finally:
            run.net.teardown()
        summary["total_s"] = round(time.monotonic() - t0, 2)
        summary["ok"] = failure is None
        if failure:
            summary["failure"] = failure
            say("FAILED: %s" % failure)
        if failure is None and not args.keep:
            shutil.rmtree(run.dir, ignore_errors=True)
        elif not args.clean:
            say("run directory kept: %s" % run.dir)
        else:
            shutil.rmtree(run.dir, ignore_errors=True)
        report(summary)
        print("SUMMARY " + json.dumps(summary, sort_keys=True), flush=True)
        held.close()
    return 0 if failure is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
