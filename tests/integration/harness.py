"""Integration test bed: real qroam daemons (ASan builds) on loopback.

A Testbed owns a temporary directory with a PKI, a topology, one config,
store and log per daemon, and the qprobe chip stores.  Tests start and stop
daemons (a start returns once the daemon listens on every port it is
configured with: its listeners and its admin endpoint), drive the vehicle
side with qprobe or raw frames, and read the SQLite stores directly.  At
close the bed checks every log for sanitizer reports and for secrets (chip
keys, K1, Prv), and removes the directory unless something failed.
"""

import hashlib
import json
import os
import resource
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

# The testbeds' shared library; the wire codec, leak finder and probe live
# in modules of their own.  Tests import all of them from here.
from qroamlib import haproxy, layout, pgcluster, stores  # noqa: E402
from qroamlib.admin import http_get, metric, parse_metrics  # noqa: E402,F401
from qroamlib.layout import MKPKI, free_port  # noqa: E402,F401
from qroamlib.proc import SAN_ENV, Process  # noqa: E402
from qroamlib.stores import parse_crossing  # noqa: E402,F401
from leaks import Secrets, rsa_private_parts  # noqa: E402,F401
from qprobe import Probe, Result  # noqa: E402,F401
from wire import (MT, STATUS, envelope, frame, parse_frames, pb_decode,  # noqa: E402,F401
                  pb_encode, pb_varint, split_frames, status_name)

# QROAM_BIN selects other builds of the same programs (default: the ASan build).
BIN = os.environ.get("QROAM_BIN", os.path.join(ROOT, "build", "asan", "bin"))

# Generous: a slow or loaded machine must never fail a test.
TIMEOUT = 30.0
POLL = 0.05

SAN_PATTERNS = ("AddressSanitizer", "LeakSanitizer", "runtime error",
                "UndefinedBehaviorSanitizer")


class Skip(Exception):
    """Raised by a test that cannot run here; the runner reports it as skipped."""


def testbed(**opts):
    """Decorator: options for the Testbed the runner builds for this test."""
    def wrap(fn):
        fn.testbed_opts = opts
        return fn
    return wrap


def wait_until(pred, timeout=TIMEOUT, interval=POLL, what=None):
    """Poll pred until it returns a true value, which is returned.

    Exceptions from pred (a store not created yet, a table not there yet)
    count as "not yet"; the last one is shown if the wait times out.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last_exc = None
        except (sqlite3.Error, OSError, KeyError, IndexError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            desc = what or getattr(pred, "__name__", repr(pred))
            msg = "timed out after %.0fs waiting for %s" % (timeout, desc)
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise AssertionError(msg)
        time.sleep(interval)


def recv_chunks(sock, timeout):
    """The bytes the peer of sock sends, as they come, until it closes,
    timeout passes without input, or the connection fails."""
    sock.settimeout(timeout)
    while True:
        try:
            b = sock.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            return
        if not b:
            return
        yield b


def recv_all(sock, timeout, done=None):
    """What the peer of sock sends (see recv_chunks), or as much of it as
    makes done(bytes so far) true."""
    got = b""
    for b in recv_chunks(sock, timeout):
        got += b
        if done and done(got):
            break
    return got


# ---- vehicles --------------------------------------------------------------

def vin(n):
    """A valid, distinct VIN for test vehicle n."""
    return "LVTEST%011d" % n


# ---- daemons ---------------------------------------------------------------

def check_build():
    """Every program exists and is newer than the libraries it links, so a
    test never runs a stale binary."""
    libdir = os.path.dirname(BIN)
    for prog in ("fillerd", "registrard", "tspd", "vehicled", "qprobe"):
        exe = os.path.join(BIN, prog)
        if not os.path.exists(exe):
            raise AssertionError("%s is not built (run `make asan`)" % exe)
        libs = {"qprobe": ["libvehicle.a"],
                "vehicled": ["libvehicled.a", "libvehicle.a"]}.get(prog, ["lib%s.a" % prog])
        for dep in libs + ["libqroam.a"]:
            dep = os.path.join(libdir, dep)
            if os.path.exists(dep) and os.path.getmtime(dep) > os.path.getmtime(exe):
                raise AssertionError("%s is older than %s: stale build (run `make asan`)"
                                     % (exe, dep))


class Daemon:
    """A daemon of the bed: its configuration, store and log, the ports it
    listens on, and its process (a qroamlib Process) once started."""

    def __init__(self, name, prog, conf, store, log, ports):
        self.name = name
        self.prog = prog
        self.conf = conf
        self.store = store
        self.log = log
        self.ports = ports		# listeners of the topology
        self.admin = None		# admin endpoint port, from the configuration
        self.opts = {}
        self.proc = None
        self.nofile = None
        self.nstarts = 0
        self.exits = []		# (how, returncode)

    def all_ports(self):
        """Every port the daemon is configured to listen on."""
        return self.ports + ([self.admin] if self.admin else [])


class Testbed:
    """Temporary deployment on loopback: PKI, topology, daemons, probes."""

    def __init__(self, name="qroam", tsps=("tsp-a", "tsp-b"), debug=False,
                 max_frame=None, pg=False):
        check_build()
        self.name = name
        self.bindir = BIN
        self.dir = tempfile.mkdtemp(prefix="qroam-%s-" % name)
        for sub in ("pki", "conf", "stores", "logs", "probes", "frames"):
            os.makedirs(os.path.join(self.dir, sub))
        self.tsps = list(tsps)
        self.debug = debug
        self.max_frame = max_frame
        # pg: the TSPs' stores are databases of a throw-away PostgreSQL
        # cluster of the bed, one per region, shared by its instances.
        self.pg = pgcluster.Cluster(self.dir).start() if pg else None
        self.pg_dbs = {}
        self.env = dict(os.environ)
        self.env.update(SAN_ENV)
        self.daemons = {}
        self.probes = {}		# VIN -> first probe of that VIN
        self.probe_list = []
        self.secrets = Secrets()
        self.sessions_seen = {}		# (store, vehicle_id, opened_ms) -> key_index
        self._closed = False
        self.kept = False
        self._sampler_stop = threading.Event()
        self._sampler = None
        self._lock = threading.Lock()

        self.port = {"filler": free_port(), "registrar": free_port()}
        for t in self.tsps:
            self.port[t] = free_port()
            self.port[t + "/provision"] = free_port()
        parties = ["filler:filler", "registrar:registrar", "factory:factory",
                   "operator:operator", "intruder:vehicle"]
        parties += ["%s:tsp" % t for t in self.tsps]
        layout.mkpki(self.path("pki"), parties)
        self.ca = os.path.join(self.dir, "pki", "ca.pem")
        self.topology = os.path.join(self.dir, "conf", "topology")
        self._write_topology()

    # -- layout

    def region(self, tsp):
        """Region of the i-th TSP: 0.1 x 0.1 degree squares side by side."""
        i = self.tsps.index(tsp)
        lon0 = 120.0 + 0.1 * i
        return [(30.0, lon0), (30.0, lon0 + 0.1), (30.1, lon0 + 0.1), (30.1, lon0)]

    def route_in(self, tsp):
        """A short route well inside tsp's region."""
        (la0, lo0), _, (la1, lo1), _ = self.region(tsp)
        return ["%.4f,%.4f" % (la0 + 0.05, lo0 + 0.03),
                "%.4f,%.4f" % (la0 + 0.05, lo0 + 0.07)]

    def _write_topology(self):
        """The topology of every endpoint the bed has handed out a port for."""
        layout.write_file(self.topology, layout.topology_text(
            self.port, self.tsps, {t: self.region(t) for t in self.tsps},
            "qroam integration test topology"))

    def add_endpoints(self, *roles):
        """Ports and topology lines for the roles (sched, qkd) not there yet,
        with their certificates."""
        new = [r for r in roles if r not in self.port]
        if not new:
            return
        for r in new:
            self.port[r] = free_port()
        if not os.path.exists(self.cert("sched")):
            layout.mkpki(self.path("pki"), ["qkd:qkd", "sched:sched"])
        self._write_topology()

    def cert(self, name):
        return os.path.join(self.dir, "pki", name + ".pem")

    def key(self, name):
        return os.path.join(self.dir, "pki", name + ".key")

    def cloud_key(self, tsp):
        """The K0 file of tsp's region's cloud bus (a pg bed)."""
        return self.path("pki", tsp + "-cloud.key")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # -- configuration and processes

    def _daemon(self, name, prog, ports):
        d = self.daemons.get(name)
        if d is None:
            store = self.path("stores", name + ".db")
            if prog == "tspd" and self.pg is not None:
                region = name.split("#")[0]
                if region not in self.pg_dbs:
                    self.pg_dbs[region] = self.pg.create(region.replace("-", "_"))
                store = self.pg_dbs[region]
            d = Daemon(name, prog, self.path("conf", name.replace("#", "-") + ".conf"),
                       store, self.path("logs", name.replace("#", "-") + ".log"), ports)
            self.daemons[name] = d
        return d

    def _write_conf(self, d, common, opts, tail=()):
        """d's configuration: the common directives, then its options (those
        of earlier starts, updated by opts), then tail."""
        d.opts.update(opts)
        directives = list(common) + list(d.opts.items()) + list(tail)
        admin = [v for k, v in directives if k == "admin"]
        d.admin = layout.admin_port_of(admin[-1]) if admin else None
        with open(d.conf, "w") as f:
            f.write(layout.conf_text(directives, "%s for the integration test bed" % d.prog))

    def admin_port(self, name):
        """Loopback port of the admin endpoint (metrics, status) of name."""
        key = name + "/admin"
        if key not in self.port:
            self.port[key] = free_port()
        return self.port[key]

    def _common(self, ident, cert, d):
        c = layout.cloud_directives(ident, self.topology, d.store, self.path("pki"), cert,
                                    self.admin_port(d.name))
        if self.max_frame:
            c.append(("max_frame", self.max_frame))
        return c

    def start_filler(self, **opts):
        d = self._daemon("filler", "fillerd", [self.port["filler"]])
        self._write_conf(d, self._common("filler", "filler", d), opts)
        return self.start("filler")

    def start_registrar(self, **opts):
        d = self._daemon("registrar", "registrard", [self.port["registrar"]])
        opts.setdefault("rsa_bits", 2048)
        self._write_conf(d, self._common("registrar", "registrar", d), opts)
        return self.start("registrar")

    def start_tsp(self, tsp, nofile=None, instance=1, proxied=False, **opts):
        """tspd for tsp; nofile limits its open descriptors (RLIMIT_NOFILE).
        instance > 1: another instance of tsp's region, named "tsp#N", on
        the same ports (reuse_port) and store (a pg bed's database), with
        an admin endpoint and a log of its own.  proxied: the instance
        listens on ports of its own, behind start_proxy's HAProxy."""
        name = tsp if instance == 1 else "%s#%d" % (tsp, instance)
        if proxied:
            for k in ("/listen", "/listen-provision"):
                self.port.setdefault(name + k, free_port())
            ports = [self.port[name + "/listen"], self.port[name + "/listen-provision"]]
            opts["listen"] = "vehicle 127.0.0.1:%d" % ports[0]
            tail = [("listen", "provision 127.0.0.1:%d" % ports[1])]
        else:
            ports = [self.port[tsp], self.port[tsp + "/provision"]]
            tail = []
            if self.pg is not None:
                opts.setdefault("reuse_port", "yes")
        if self.pg is not None:
            # The region's cloud bus: one K0 for all its instances.
            for k, v in layout.cloud_bus(self.cloud_key(tsp)):
                opts.setdefault(k, v)
        d = self._daemon(name, "tspd", ports)
        d.nofile = nofile
        self._write_conf(d, self._common(tsp, tsp, d), opts, tail)
        return self.start(name)

    def start_proxy(self, tsp, instances):
        """HAProxy in TCP mode on tsp's region addresses (the topology's),
        spreading vehicle and provisioning connections round-robin over
        the proxied instances 1..instances, each health-checked, a dead
        one's connections retried on another."""
        name = tsp + "/proxy"
        servers = {"vehicle": [], "provision": []}
        for n in range(1, instances + 1):
            inst = tsp if n == 1 else "%s#%d" % (tsp, n)
            for k in ("/listen", "/listen-provision"):
                self.port.setdefault(inst + k, free_port())
            servers["vehicle"].append(self.port[inst + "/listen"])
            servers["provision"].append(self.port[inst + "/listen-provision"])
        front = {"vehicle": self.port[tsp], "provision": self.port[tsp + "/provision"]}
        d = Daemon(name, shutil.which("haproxy") or haproxy.HAPROXY,
                   self.path("conf", tsp + "-haproxy.cfg"), self.path("stores", name),
                   self.path("logs", tsp + "-haproxy.log"), list(front.values()))
        with open(d.conf, "w") as f:
            f.write(haproxy.config(front, servers, balance="roundrobin",
                                   check="check inter 200ms fall 1 rise 1"))
        self.daemons[name] = d
        return self.start(name)

    def start_vehicle(self, vehicle_id, tsp=None, **opts):
        """vehicled for vehicle_id with a route inside tsp's region."""
        d = self._daemon(vehicle_id, "vehicled", [])
        if not d.opts:
            opts.setdefault("route", self.route_in(tsp or self.tsps[0]))
            opts.setdefault("speed", 1)
            opts.setdefault("time_factor", 1)
        common = [("vehicle_id", vehicle_id), ("topology", self.topology),
                  ("store", d.store), ("ca", self.ca),
                  ("cert", self.cert("factory")), ("key", self.key("factory")),
                  ("admin", self.admin_port(vehicle_id))]
        self._write_conf(d, common, opts)
        return self.start(vehicle_id)

    def fleet(self, vehicle_id, n):
        """[(VIN, chip store)] of the vehicles of the vehicled of
        vehicle_id started with `fleet n`."""
        return stores.fleet(vehicle_id, self.daemons[vehicle_id].store, n)

    def _need(self, prog):
        exe = os.path.join(BIN, prog)
        if not os.path.exists(exe):
            raise AssertionError("%s is not built (run `make asan`)" % exe)

    def start_qkd(self, links=None, **opts):
        """qkdd (id and certificate `qkd`) on a new loopback port, announced
        by a `qkd` line in the topology.  links: arguments of its `link`
        directives ("SAE_A SAE_B [rate BPS] [qber Q] [pool N] [eavesdropper F]");
        by default `sched` with every TSP.  Other options become directives."""
        self._need("qkdd")
        self.add_endpoints("qkd")
        d = self._daemon("qkd", "qkdd", [self.port["qkd"]])
        if links is not None:
            d.qkd_links = list(links)
        elif not hasattr(d, "qkd_links"):
            d.qkd_links = ["sched %s" % t for t in self.tsps]
        self._write_conf(d, self._common("qkd", "qkd", d), opts,
                         [("link", l) for l in d.qkd_links])
        return self.start("qkd")

    def start_sched(self, **opts):
        """schedd (id and certificate `sched`) on a new loopback port,
        announced by a `sched` line in the topology.  The topology also gets
        a `qkd` line if it has none yet (nothing answers there until
        start_qkd).  Options become directives (handover_timeout, ...)."""
        self._need("schedd")
        self.add_endpoints("sched", "qkd")
        d = self._daemon("sched", "schedd", [self.port["sched"]])
        self._write_conf(d, self._common("sched", "sched", d), opts)
        return self.start("sched")

    def start_kmp(self, **opts):
        """kmpd (id and certificate `kmp`) on two new loopback ports,
        announced by `kmp` (vehicles, plain TCP) and `kmp_tls` (encryptors,
        operators and the filler, mutual TLS) lines in the topology; the
        bed also gets an `encryptor` certificate.  Options become
        directives (key_source, max_skew, ...); with key_source etsi014 the
        topology gets a `qkd` line too (start_qkd with a link
        "kmp kmp-peer")."""
        self._need("kmpd")
        roles = ["kmp", "kmp_tls"]
        if str(opts.get("key_source", "etsi014")).startswith("etsi014"):
            roles.append("qkd")
        self.add_endpoints(*roles)
        if not os.path.exists(self.cert("kmp")):
            layout.mkpki(self.path("pki"), ["kmp:kmp", "encryptor:encryptor"])
        d = self._daemon("kmp", "kmpd", [self.port["kmp"], self.port["kmp_tls"]])
        self._write_conf(d, self._common("kmp", "kmp", d), opts)
        return self.start("kmp")

    def start(self, name, wait=True):
        """(Re)start a configured daemon; with wait, return once it listens
        on every port it is configured with (its listeners and its admin
        endpoint)."""
        d = self.daemons[name]
        if d.proc is not None and d.proc.poll() is None:
            raise AssertionError("%s is already running" % name)
        d.nstarts += 1
        argv = [os.path.join(BIN, d.prog), "-f", d.conf]
        if self.debug:
            argv.append("-d")
        limit = None
        if d.nofile:
            def limit(n=d.nofile):
                resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        d.proc = Process(name, argv, d.log, env=self.env, cwd=self.dir, capture=False,
                         append=True, preexec=limit,
                         header="=== harness: start %d of %s: %s"
                         % (d.nstarts, name, " ".join(argv)))
        self._start_sampler()
        if wait:
            self._wait_listening(d)
        return d

    def _wait_listening(self, d):
        ports = d.all_ports()
        if d.proc.wait_listening(ports, TIMEOUT):
            return
        if d.proc.poll() is not None:
            raise AssertionError("%s exited with %s during start-up:\n%s"
                                 % (d.name, d.proc.returncode, self.log_tail(d.name)))
        raise AssertionError("timed out after %.0fs waiting for %s to listen on %s "
                             "(not yet on %s)" % (TIMEOUT, d.name, ports,
                                                  d.proc.missing_ports(ports)))

    def running(self, name):
        d = self.daemons.get(name)
        return d is not None and d.proc is not None and d.proc.poll() is None

    def assert_running(self, *names):
        for n in names or list(self.daemons):
            d = self.daemons[n]
            if d.proc is None:
                continue
            if d.proc.poll() is not None:
                raise AssertionError("%s died (exit %s):\n%s"
                                     % (n, d.proc.returncode, self.log_tail(n)))

    def stop(self, name, timeout=TIMEOUT):
        """SIGTERM and wait; the daemon must exit 0 (HAProxy, whose stop
        on SIGTERM is immediate, may die of it)."""
        d = self.daemons[name]
        if d.proc is None or d.proc.poll() is not None:
            raise AssertionError("%s is not running (exit %s)"
                                 % (name, d.proc and d.proc.returncode))
        rc = d.proc.stop(timeout)
        if rc is None:
            d.exits.append(("hung", None))
            raise AssertionError("%s did not stop within %.0fs of SIGTERM" % (name, timeout))
        d.exits.append(("stop", rc))
        self._log_note(d, "stopped, exit %s" % rc)
        if rc != 0 and not (d.prog.endswith("haproxy") and rc == -15):
            raise AssertionError("%s exited %s after SIGTERM:\n%s"
                                 % (name, rc, self.log_tail(name)))
        return rc

    def kill(self, name):
        """SIGKILL: a crash at an arbitrary moment."""
        d = self.daemons[name]
        if d.proc is None or d.proc.poll() is not None:
            raise AssertionError("%s is not running" % name)
        d.proc.kill()
        d.exits.append(("kill", d.proc.returncode))
        self._log_note(d, "killed with SIGKILL")

    def signal(self, name, sig):
        self.daemons[name].proc.send_signal(sig)

    def restart(self, name):
        self.stop(name)
        return self.start(name)

    def _log_note(self, d, text):
        with open(d.log, "ab") as f:
            f.write(("=== harness: %s %s\n" % (d.name, text)).encode())

    # -- stores

    def store(self, name):
        if name in self.daemons:
            return self.daemons[name].store
        if name in self.probes:
            return self.probes[name].store
        return name

    # -- admin endpoints (metrics, status)

    def admin_get(self, name, path, timeout=5.0):
        """GET path from name's admin endpoint: (HTTP status, body text)."""
        return http_get(self.admin_port(name), path, timeout=timeout)

    def status(self, name, what=None):
        """The JSON of /status (or /status/<what>) of name."""
        code, body = self.admin_get(name, "/status" + ("/" + what if what else ""))
        if code != 200:
            raise AssertionError("%s /status/%s: HTTP %d %s" % (name, what, code, body))
        return json.loads(body)

    def metrics(self, name):
        """Scrape name's /metrics: {(metric name, labels tuple): value};
        labels is a sorted tuple of (label, value) pairs."""
        code, body = self.admin_get(name, "/metrics")
        if code != 200:
            raise AssertionError("%s /metrics: HTTP %d" % (name, code))
        return parse_metrics(body)

    def query(self, name, sql, args=()):
        """Rows of sql on a store (daemon name, probe VIN or path), read-only.
        Raises sqlite3.Error while the store or the table is not there."""
        return stores.query(self.store(name), sql, args, strict=True, scratch=self.dir)

    def scalar(self, name, sql, args=()):
        rows = self.query(name, sql, args)
        return rows[0][0] if rows else None

    def count(self, name, table, where="1", args=()):
        return self.scalar(name, "SELECT count(*) FROM %s WHERE %s" % (table, where), args)

    def tables(self, name):
        return [r[0] for r in self.query(
            name, "SELECT name FROM sqlite_master WHERE type='table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]

    def dump(self, name, exclude=()):
        """{table: sorted rows} of every table of a store."""
        out = {}
        for t in self.tables(name):
            if t in exclude:
                continue
            rows = self.query(name, 'SELECT * FROM "%s"' % t)
            out[t] = sorted(rows, key=repr)
        return out

    def assert_same_dump(self, before, after, what):
        if before == after:
            return
        diffs = []
        for t in sorted(set(before) | set(after)):
            b, a = before.get(t), after.get(t)
            if b != a:
                bs, as_ = set(b or []), set(a or [])
                diffs.append("%s: removed %r added %r" % (
                    t, sorted(bs - as_, key=repr)[:5], sorted(as_ - bs, key=repr)[:5]))
        raise AssertionError("%s changed: %s" % (what, "; ".join(diffs)))

    # -- logs

    def log(self, name):
        d = self.daemons.get(name)
        path = d.log if d else (self.probes[name].log if name in self.probes else name)
        if not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_mark(self, name):
        return len(self.log(name))

    def log_since(self, name, mark):
        return self.log(name)[mark:]

    def log_tail(self, name, n=40):
        return "\n".join(self.log(name).splitlines()[-n:])

    def wait_log(self, name, pattern, since=0, timeout=TIMEOUT):
        """Wait until a line matching pattern (regex, case-insensitive)
        appears in name's log after offset since; returns the match."""
        rx = re.compile(pattern, re.I | re.M)

        def found():
            return rx.search(self.log(name)[since:])
        return wait_until(found, timeout, what="/%s/ in %s log" % (pattern, name))

    def log_files(self):
        d = self.path("logs")
        return [os.path.join(d, f) for f in sorted(os.listdir(d))]

    # -- probes and raw connections

    def probe(self, vehicle_id=None, cert="factory", store=None):
        """A qprobe vehicle; a new VIN unless given.  store: share or name
        another chip store (e.g. a second probe for the same VIN)."""
        if vehicle_id is None:
            vehicle_id = vin(len(self.probe_list) + 1)
            while vehicle_id in self.probes:
                vehicle_id = vin(int(vehicle_id[6:]) + 1)
        p = Probe(self, vehicle_id, cert, store)
        self.probes.setdefault(vehicle_id, p)
        self.probe_list.append(p)
        return p

    def client_tls(self, cert=None):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(self.ca)
        ctx.check_hostname = False
        if cert:
            ctx.load_cert_chain(self.cert(cert), self.key(cert))
        return ctx

    def connect(self, port, tls=None):
        """A connection to a loopback port; TLS with client certificate tls
        if given (a cert name, or "" for TLS without a client certificate)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        if tls is None:
            return sock
        try:
            return self.client_tls(tls or None).wrap_socket(sock, server_hostname="localhost")
        except BaseException:
            sock.close()
            raise

    def raw(self, port, data, tls=None, timeout=1.5, half_close=False):
        """Connect (see connect), send data, and return what the peer sends
        back until it closes or timeout passes without input.  TLS
        handshake failures return b"" (that is a refusal)."""
        try:
            sock = self.connect(port, tls)
        except (ssl.SSLError, OSError):
            if tls is None:
                raise
            return b""
        with sock:
            try:
                sock.sendall(data)
                if half_close and tls is None:
                    sock.shutdown(socket.SHUT_WR)
            except (OSError, ssl.SSLError):
                return b""
            return recv_all(sock, timeout)

    def request(self, port, mtype, payload=None, tls=None, request_id=7, timeout=5.0):
        """Send one frame and return the first reply frame (type, payload,
        request_id), or None if the peer sent none within timeout."""
        with self.connect(port, tls) as sock:
            sock.sendall(frame(mtype, payload, request_id))
            frames = parse_frames(recv_all(sock, timeout, lambda got: parse_frames(got)))
            return frames[0] if frames else None

    def write_frame_file(self, name, data):
        path = self.path("frames", name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    # -- secrets

    def _start_sampler(self):
        if self._sampler is None:
            self._sampler = threading.Thread(target=self._sample_loop, daemon=True)
            self._sampler.start()

    def _sample_loop(self):
        while not self._sampler_stop.wait(0.2):
            try:
                self.sample_secrets(quick=True)
            except Exception:
                pass

    def sample_secrets(self, quick=False):
        """Collect K1s (which change with every session) and, unless quick,
        every chip key and private key from every store."""
        with self._lock:
            for name, d in list(self.daemons.items()):
                if not os.path.exists(d.store):
                    continue
                if d.prog == "tspd":
                    self._collect(name, "SELECT vehicle_id, opened_ms, key_index, k1 "
                                  "FROM sessions", self._note_session)
                    if not quick:
                        self._collect(name, "SELECT key FROM fill_keys",
                                      lambda r, n=name: self.secrets.add(r[0], n + " chip key"))
                        self._collect(name, "SELECT prv FROM registrations",
                                      lambda r, n=name: self.secrets.add_private_key(r[0], n + " Prv"))
                elif d.prog == "vehicled" and not quick:
                    self._collect(name, "SELECT key FROM chip_keys",
                                  lambda r, n=name: self.secrets.add(r[0], n + " chip key"))
                elif not quick:
                    self._collect_generic(name, d.prog)
            for t in self.tsps if not quick else ():
                if os.path.exists(self.cloud_key(t)):
                    self.secrets.add(layout.cloud_bus_k0(self.cloud_key(t))[0], t + " cloud K0")
            for p in list(self.probe_list):
                v = p.vin
                if not os.path.exists(p.store):
                    continue
                self._collect(p.store, "SELECT k1 FROM probe_session",
                              lambda r, n=v: self.secrets.add(r[0], n + " K1"))
                if not quick:
                    self._collect(p.store, "SELECT key FROM chip_keys",
                                  lambda r, n=v: self.secrets.add(r[0], n + " chip key"))

    def _note_session(self, row, name=None):
        vid, opened, idx, k1 = row
        self.secrets.add(k1, "K1 of %s" % vid)
        self.sessions_seen[(vid, opened)] = idx

    def _collect(self, name, sql, fn):
        try:
            rows = self.query(name, sql)
        except sqlite3.Error:
            return
        for r in rows:
            fn(r)

    def _collect_generic(self, name, prog):
        """Other stores: in fillerd's 32-byte blobs are chip keys, in
        qkdd's quantum keys (CK1/CK2) and in kmpd's initial and session
        keys; anything that parses as an RSA private key is a Prv."""
        try:
            tables = self.tables(name)
        except sqlite3.Error:
            return
        for t in tables:
            try:
                rows = self.query(name, 'SELECT * FROM "%s"' % t)
            except sqlite3.Error:
                continue
            for r in rows:
                for v in r:
                    if isinstance(v, bytes) and len(v) == 32 and prog in ("fillerd", "qkdd", "kmpd"):
                        self.secrets.add(v, "%s %s key" % (name, t))
                    elif isinstance(v, bytes) and len(v) > 600:
                        self.secrets.add_private_key(v, "%s %s Prv" % (name, t))
                    elif isinstance(v, str) and "PRIVATE KEY" in v:
                        self.secrets.add_private_key(v, "%s %s Prv" % (name, t))

    def secret_leaks(self):
        """[(log file, label, evidence)] for every secret found in a log."""
        self.sample_secrets()
        leaks = []
        for path in self.log_files():
            with open(path, "rb") as f:
                text = f.read().decode(errors="replace")
            for lab, ev in self.secrets.find(text):
                leaks.append((os.path.basename(path), lab, ev))
        return leaks

    def sanitizer_reports(self):
        found = []
        for path in self.log_files():
            with open(path, "rb") as f:
                text = f.read().decode(errors="replace")
            for line in text.splitlines():
                if any(p in line for p in SAN_PATTERNS):
                    found.append("%s: %s" % (os.path.basename(path), line.strip()))
        return found

    # -- teardown

    def close(self, failed=False):
        """Stop everything, check logs; keep the directory if anything failed.
        Raises AssertionError listing the problems found at teardown."""
        if self._closed:
            return
        self._closed = True
        problems = []
        # Vehicles first (they power off cleanly while their TSP is up), then
        # the rest in reverse order of configuration.
        for name, d in reversed(list(self.daemons.items())):
            if d.proc is None:
                continue
            if d.proc.poll() is not None:
                if not d.exits or d.exits[-1][1] != d.proc.returncode \
                        or d.exits[-1][0] not in ("stop", "kill"):
                    problems.append("%s died on its own (exit %s)" % (name, d.proc.returncode))
                continue
            try:
                self.stop(name)
            except AssertionError as e:
                problems.append(str(e).splitlines()[0])
        if self.pg is not None:
            self.pg.stop()
        for port in self.port.values():
            layout.release_port(port)
        self._sampler_stop.set()
        if self._sampler:
            self._sampler.join(5)
        problems += ["sanitizer: " + s for s in self.sanitizer_reports()[:20]]
        try:
            leaks = self.secret_leaks()
        except Exception as e:
            leaks = [("?", "secret scan failed", repr(e))]
        problems += ["secret in log %s: %s (%s)" % l for l in leaks[:20]]
        self.kept = bool(failed or problems or os.environ.get("QROAM_KEEP"))
        if not self.kept:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif os.environ.get("QROAM_KEEP"):
            print("    kept test directory: %s" % self.dir, file=sys.stderr)
        if problems:
            raise AssertionError("teardown checks failed:\n  " + "\n  ".join(problems))

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        try:
            self.close(failed=et is not None)
        finally:
            if self.kept:
                print("    kept test directory: %s" % self.dir, file=sys.stderr)
        return False


# ---- shared checks ---------------------------------------------------------

def chip_id_of(keys):
    """chip_id as PROTOCOL section 3 defines it, from keys in sequence order."""
    return hashlib.sha256("-".join(k.hex() for k in keys).encode()).hexdigest()


def provisioned(tb, tsps, probe):
    """Wait until every TSP in tsps holds the probe's fill record and
    registration."""
    chip = probe.chip_id
    for t in tsps:
        wait_until(lambda: tb.count(t, "fills", "chip_id=?", (chip,)) == 1,
                   what="fill record of %s at %s" % (chip, t))
        wait_until(lambda: tb.query(t, "SELECT chip_id FROM registrations "
                                    "WHERE vehicle_id=?", (probe.vin,)) == [(chip,)],
                   what="registration of %s at %s" % (probe.vin, t))


def start_provisioning(tb, tsps=None, **tsp_opts):
    """The TSPs (all of the bed's unless tsps names some), fillerd and
    registrard: what fills, registers and serves a vehicle (no handover)."""
    for t in tsps or tb.tsps:
        tb.start_tsp(t, **tsp_opts)
    tb.start_filler()
    tb.start_registrar()


def enrolled_probe(tb, tsps=None, m=16, vehicle_id=None):
    """A probe that is filled, registered and known to every TSP in tsps."""
    p = tb.probe(vehicle_id)
    p.fill(m=m)
    r = p.register()
    assert r.status == "OK", r
    provisioned(tb, tsps or tb.tsps, p)
    return p

