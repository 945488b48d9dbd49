"""Integration test bed: real qroam daemons (ASan builds) on loopback.

A Testbed owns a temporary directory with a PKI, a topology, one config,
store and log per daemon, and the qprobe chip stores.  Tests start and stop
daemons, drive the vehicle side with qprobe or raw frames, and read the
SQLite stores directly.  At close the bed checks every log for sanitizer
reports and for secrets (chip keys, K1, Prv), and removes the directory
unless something failed.
"""

import base64
import binascii
import hashlib
import os
import random
import resource
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# QROAM_BIN selects other builds of the same programs (default: the ASan build).
BIN = os.environ.get("QROAM_BIN", os.path.join(ROOT, "build", "asan", "bin"))
MKPKI = os.path.join(ROOT, "scripts", "mkpki.sh")

# Generous: a slow or loaded machine must never fail a test.
TIMEOUT = 30.0
POLL = 0.05

SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
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


# ---- protobuf and frames ---------------------------------------------------

MT = {
    "MT_NONE": 0, "MT_KEY_REQUEST": 1, "MT_ACCESS_REQUEST": 2, "MT_STATUS": 10,
    "MT_FILL_REQUEST": 20, "MT_FILL_REPLY": 21, "MT_FILL_RECORD": 22,
    "MT_REGISTER": 23, "MT_M1": 24, "MT_M2": 25, "MT_M4": 40,
    "MT_AUTH_RESULT": 41, "MT_M3": 42, "MT_SESSION_MSG": 43,
}
STATUS = ["OK", "DUPLICATE_REGISTRATION", "UNKNOWN_VEHICLE", "UNKNOWN_CHIP",
          "AUTH_FAILED", "AUTH_REQUIRED", "KEY_REUSED", "KEY_EXHAUSTED",
          "DECRYPT_FAILED", "STALE", "BAD_REQUEST", "UNAVAILABLE", "INTERNAL"]


def pb_varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_encode(fields):
    """Encode [(field_number, value), ...]: int = varint, bytes/str = length
    delimited, float = fixed64 double."""
    out = bytearray()
    for num, val in fields:
        if isinstance(val, bool):
            val = int(val)
        if isinstance(val, int):
            out += pb_varint(num << 3 | 0) + pb_varint(val)
        elif isinstance(val, float):
            out += pb_varint(num << 3 | 1) + struct.pack("<d", val)
        else:
            if isinstance(val, str):
                val = val.encode()
            out += pb_varint(num << 3 | 2) + pb_varint(len(val)) + val
    return bytes(out)


def pb_decode(buf):
    """Decode one message level into {field_number: [values]}."""
    out = {}
    i = 0

    def varint():
        nonlocal i
        shift = n = 0
        while True:
            if i >= len(buf):
                raise ValueError("truncated varint")
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    while i < len(buf):
        key = varint()
        num, wt = key >> 3, key & 7
        if wt == 0:
            v = varint()
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 2:
            ln = varint()
            v = buf[i:i + ln]
            if len(v) != ln:
                raise ValueError("truncated field")
            i += ln
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError("bad wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def envelope(mtype, payload=None, request_id=None, version=1):
    fields = [(1, version), (2, mtype)]
    if payload is not None:
        fields.append((3, payload))
    if request_id is not None:
        fields.append((4, request_id))
    return pb_encode(fields)


def frame(mtype, payload=None, request_id=None, version=1):
    """A whole frame: 4-byte big-endian length, then the Envelope."""
    env = envelope(mtype, payload, request_id, version)
    return struct.pack(">I", len(env)) + env


def parse_frames(data):
    """Split received bytes into [(type, payload, request_id)]; a trailing
    partial frame is ignored."""
    frames = []
    i = 0
    while i + 4 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if i + 4 + n > len(data):
            break
        env = pb_decode(data[i + 4:i + 4 + n])
        frames.append((env.get(2, [None])[0], env.get(3, [b""])[0],
                       env.get(4, [None])[0]))
        i += 4 + n
    return frames


def status_name(payload):
    """Name of the code in a Status or AuthResult payload."""
    code = pb_decode(payload).get(1, [None])[0]
    if code is None or code >= len(STATUS):
        return "?%r" % (code,)
    return STATUS[code]


# ---- secrets ---------------------------------------------------------------

def _der_read(buf, i):
    """One DER TLV at i: (tag, value_start, value_end)."""
    tag = buf[i]
    ln = buf[i + 1]
    j = i + 2
    if ln & 0x80:
        nb = ln & 0x7F
        ln = int.from_bytes(buf[j:j + nb], "big")
        j += nb
    return tag, j, j + ln


def rsa_private_parts(der):
    """The private integers (d, p, q, dp, dq, qinv) of a PKCS#8 or PKCS#1
    RSA private key, as big-endian bytes; [] if der is not one."""
    try:
        tag, s, e = _der_read(der, 0)
        if tag != 0x30:
            return []
        items = []
        i = s
        while i < e:
            t, vs, ve = _der_read(der, i)
            items.append((t, vs, ve))
            i = ve
        if len(items) >= 3 and items[1][0] == 0x30 and items[2][0] == 0x04:
            return rsa_private_parts(der[items[2][1]:items[2][2]])
        if len(items) >= 9 and all(t == 0x02 for t, _, _ in items[:9]):
            return [der[vs:ve].lstrip(b"\0") for _, vs, ve in items[3:9]]
    except (IndexError, ValueError):
        pass
    return []


class Secrets:
    """Secret byte strings and the 16-hex-char windows of their hex forms."""

    WINDOW = 16

    def __init__(self):
        self.items = {}		# bytes -> label
        self.windows = {}	# 16-char lowercase hex -> label

    def add(self, data, label):
        if data is None:
            return
        if isinstance(data, memoryview):
            data = bytes(data)
        if not isinstance(data, bytes) or len(data) < 8 or data in self.items:
            return
        self.items[data] = label
        h = data.hex()
        for i in range(len(h) - self.WINDOW + 1):
            self.windows.setdefault(h[i:i + self.WINDOW], label)

    def add_private_key(self, der, label):
        if isinstance(der, str) and "PRIVATE KEY" in der:
            body = "".join(l for l in der.splitlines() if l and not l.startswith("-----"))
            try:
                der = base64.b64decode(body)
            except binascii.Error:
                return
        if isinstance(der, memoryview):
            der = bytes(der)
        if not isinstance(der, bytes):
            return
        parts = rsa_private_parts(der)
        for p in parts:
            self.add(p, label)
        if parts:
            self.items.setdefault(der, label)

    def __len__(self):
        return len(self.items)

    def find(self, text):
        """[(label, evidence)] for every secret found in text as hex (any
        case, 16+ chars) or base64."""
        hits = []
        for m in re.finditer(r"[0-9A-Fa-f]{%d,}" % self.WINDOW, text):
            run = m.group(0).lower()
            for i in range(len(run) - self.WINDOW + 1):
                lab = self.windows.get(run[i:i + self.WINDOW])
                if lab:
                    hits.append((lab, "hex %r" % run[max(0, i - 8):i + 40]))
                    break
        for m in re.finditer(r"[A-Za-z0-9+/_-]{22,}", text):
            run = m.group(0).replace("-", "+").replace("_", "/")
            for off in range(4):
                chunk = run[off:]
                chunk = chunk[:len(chunk) - len(chunk) % 4]
                try:
                    h = base64.b64decode(chunk).hex()
                except (binascii.Error, ValueError):
                    continue
                for i in range(len(h) - self.WINDOW + 1):
                    lab = self.windows.get(h[i:i + self.WINDOW])
                    if lab:
                        hits.append((lab, "base64 %r" % m.group(0)[:60]))
                        break
                else:
                    continue
                break
        return hits


# ---- ports and PKI ---------------------------------------------------------

_used_ports = set()


def free_port():
    """A loopback port below the ephemeral range that is free right now."""
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in _used_ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def vin(n):
    """A valid, distinct VIN for test vehicle n."""
    return "LVTEST%011d" % n


# ---- qprobe ----------------------------------------------------------------

class Result:
    """The parsed `RESULT STATUS k=v ...` line of one qprobe run."""

    def __init__(self, args, rc, out):
        self.args = args
        self.rc = rc
        self.out = out
        self.status = None
        self.kv = {}
        lines = [l for l in out.splitlines() if l.startswith("RESULT ")]
        if lines:
            words = lines[-1].split()
            self.status = words[1] if len(words) > 1 else ""
            for w in words[2:]:
                k, _, v = w.partition("=")
                self.kv[k] = v

    def __getitem__(self, k):
        return self.kv[k]

    def get(self, k, default=None):
        return self.kv.get(k, default)

    def __repr__(self):
        return "<qprobe %s rc=%s status=%s %s out=%r>" % (
            " ".join(self.args), self.rc, self.status, self.kv, self.out[-400:])


class Probe:
    """One test vehicle driven by qprobe, with its own chip store."""

    def __init__(self, tb, vehicle_id, cert="factory", store=None):
        self.tb = tb
        self.vin = vehicle_id
        self.cert = cert
        self.store = store or os.path.join(tb.dir, "probes", vehicle_id + ".db")
        self.log = os.path.join(tb.dir, "logs", "qprobe-%s.log" % vehicle_id)
        self.nrun = 0

    def run(self, command, *args, cert=None, wait_ms=3000, expect_rc=0, **opts):
        """Run one qprobe command; opts become --long-options."""
        exe = os.path.join(BIN, "qprobe")
        if not os.path.exists(exe):
            raise AssertionError("qprobe is not built: %s" % exe)
        cert = cert or self.cert
        argv = [exe, "-s", self.store, "-t", self.tb.topology,
                "-c", self.tb.ca, "-C", self.tb.cert(cert), "-K", self.tb.key(cert),
                "-w", str(wait_ms)]
        cmd = [command]
        for k, v in opts.items():
            if v is None or v is False:
                continue
            flag = "--" + k.replace("_", "-") if len(k) > 1 else "-" + k
            cmd.append(flag)
            if v is not True:
                cmd.append(str(v))
        cmd += [str(a) for a in args]
        argv += cmd
        self.nrun += 1
        with open(self.log, "ab") as errf:
            errf.write(("=== %s\n" % " ".join(argv[1:])).encode())
            errf.flush()
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=errf,
                               env=self.tb.env, timeout=wait_ms / 1000 * 4 + 60)
        out = p.stdout.decode(errors="replace")
        with open(self.log, "ab") as errf:
            errf.write(("=== stdout: %s\n" % out.strip()).encode())
        r = Result(cmd, p.returncode, out)
        # K1s are replaced by the next session: record them while they exist.
        self.tb.sample_secrets(quick=True)
        if expect_rc is not None and p.returncode != expect_rc:
            raise AssertionError("qprobe exited %d, expected %d: %r"
                                 % (p.returncode, expect_rc, r))
        if expect_rc == 0 and r.status is None:
            raise AssertionError("qprobe printed no RESULT line: %r" % r)
        return r

    def fill(self, m=None, **kw):
        r = self.run("fill", m=m, **kw)
        assert r.status == "OK", r
        return r

    def register(self, rebind=False, **kw):
        return self.run("register", V=self.vin, rebind=rebind, **kw)

    def auth(self, tsp, **kw):
        return self.run("auth", T=tsp, **kw)

    def m3(self, tsp, **kw):
        return self.run("m3", T=tsp, **kw)

    def telemetry(self, tsp, n, **kw):
        return self.run("telemetry", T=tsp, n=n, **kw)

    def send(self, tsp, path, provision=False, **kw):
        return self.run("send", path, T=tsp, provision=provision, **kw)

    def chip(self):
        """(chip_id, m, k, n) of the probe's chip, or None."""
        rows = self.tb.query(self.store, "SELECT chip_id, m, k, n FROM chip")
        return rows[0] if rows else None

    @property
    def chip_id(self):
        c = self.chip()
        return c[0] if c else None

    def keys(self):
        """[(idx, code, key or None, destroyed)] in sequence order."""
        return self.tb.query(self.store, "SELECT idx, code, key, destroyed "
                             "FROM chip_keys ORDER BY idx")


# ---- daemons ---------------------------------------------------------------

def check_build():
    """Every program exists and is newer than the libraries it links, so a
    test never runs a stale binary."""
    libdir = os.path.dirname(BIN)
    for prog in ("fillerd", "registrard", "tspd", "vehicled", "qprobe"):
        exe = os.path.join(BIN, prog)
        if not os.path.exists(exe):
            raise AssertionError("%s is not built (run `make asan`)" % exe)
        lib = "libvehicled.a" if prog == "qprobe" else "lib%s.a" % prog
        for dep in (lib, "libqroam.a"):
            dep = os.path.join(libdir, dep)
            if os.path.exists(dep) and os.path.getmtime(dep) > os.path.getmtime(exe):
                raise AssertionError("%s is older than %s: stale build (run `make asan`)"
                                     % (exe, dep))


class Daemon:
    def __init__(self, name, prog, conf, store, log, ports):
        self.name = name
        self.prog = prog
        self.conf = conf
        self.store = store
        self.log = log
        self.ports = ports
        self.opts = {}
        self.proc = None
        self.nofile = None
        self.nstarts = 0
        self.exits = []		# (how, returncode)


class Testbed:
    """Temporary deployment on loopback: PKI, topology, daemons, probes."""

    def __init__(self, name="qroam", tsps=("tsp-a", "tsp-b"), debug=False,
                 max_frame=None):
        check_build()
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="qroam-%s-" % name)
        for sub in ("pki", "conf", "stores", "logs", "probes", "frames"):
            os.makedirs(os.path.join(self.dir, sub))
        self.tsps = list(tsps)
        self.debug = debug
        self.max_frame = max_frame
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
        subprocess.run(["sh", MKPKI, os.path.join(self.dir, "pki")] + parties,
                       check=True, stdout=subprocess.DEVNULL)
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
        lines = ["# qroam integration test topology",
                 "filler    127.0.0.1:%d" % self.port["filler"],
                 "registrar 127.0.0.1:%d" % self.port["registrar"]]
        for t in self.tsps:
            lines.append("tsp %s vehicle 127.0.0.1:%d provision 127.0.0.1:%d"
                         % (t, self.port[t], self.port[t + "/provision"]))
            lines.append("region %s %s" % (t, " ".join(
                "%.2f,%.2f" % p for p in self.region(t))))
        with open(self.topology, "w") as f:
            f.write("\n".join(lines) + "\n")

    def cert(self, name):
        return os.path.join(self.dir, "pki", name + ".pem")

    def key(self, name):
        return os.path.join(self.dir, "pki", name + ".key")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # -- configuration and processes

    def _daemon(self, name, prog, ports):
        d = self.daemons.get(name)
        if d is None:
            d = Daemon(name, prog, self.path("conf", name + ".conf"),
                       self.path("stores", name + ".db"),
                       self.path("logs", name + ".log"), ports)
            self.daemons[name] = d
        return d

    @staticmethod
    def _conf_value(v):
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, (list, tuple)):
            return " ".join(str(x) for x in v)
        return str(v)

    def _write_conf(self, d, common, opts):
        d.opts.update(opts)
        lines = ["# %s for the integration test bed" % d.prog]
        for k, v in list(common) + list(d.opts.items()):
            if v is None:
                continue
            lines.append("%s %s" % (k, self._conf_value(v)))
        with open(d.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _common(self, ident, cert, d):
        c = [("id", ident), ("topology", self.topology), ("store", d.store),
             ("ca", self.ca), ("cert", self.cert(cert)), ("key", self.key(cert))]
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

    def start_tsp(self, tsp, nofile=None, **opts):
        """tspd for tsp; nofile limits its open descriptors (RLIMIT_NOFILE)."""
        d = self._daemon(tsp, "tspd", [self.port[tsp], self.port[tsp + "/provision"]])
        d.nofile = nofile
        self._write_conf(d, self._common(tsp, tsp, d), opts)
        return self.start(tsp)

    def start_vehicle(self, vehicle_id, tsp=None, **opts):
        """vehicled for vehicle_id with a route inside tsp's region."""
        d = self._daemon(vehicle_id, "vehicled", [])
        if not d.opts:
            opts.setdefault("route", self.route_in(tsp or self.tsps[0]))
            opts.setdefault("speed", 1)
            opts.setdefault("time_factor", 1)
        common = [("vehicle_id", vehicle_id), ("topology", self.topology),
                  ("store", d.store), ("ca", self.ca),
                  ("cert", self.cert("factory")), ("key", self.key("factory"))]
        self._write_conf(d, common, opts)
        return self.start(vehicle_id)

    def start(self, name, wait=True):
        """(Re)start a configured daemon and wait until its ports accept."""
        d = self.daemons[name]
        if d.proc is not None and d.proc.poll() is None:
            raise AssertionError("%s is already running" % name)
        d.nstarts += 1
        argv = [os.path.join(BIN, d.prog), "-f", d.conf]
        if self.debug:
            argv.append("-d")
        with open(d.log, "ab") as logf:
            logf.write(("=== harness: start %d of %s: %s\n"
                        % (d.nstarts, name, " ".join(argv))).encode())
            logf.flush()
            limit = None
            if d.nofile:
                def limit(n=d.nofile):
                    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
            d.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                      stderr=logf, env=self.env, cwd=self.dir,
                                      preexec_fn=limit)
        self._start_sampler()
        if wait:
            for port in d.ports:
                self._wait_port(d, port)
        return d

    def _wait_port(self, d, port):
        def accepting():
            if d.proc.poll() is not None:
                raise AssertionError("%s exited with %s during start-up:\n%s"
                                     % (d.name, d.proc.returncode, self.log_tail(d.name)))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False
        wait_until(accepting, what="%s to accept on port %d" % (d.name, port))

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
        """SIGTERM and wait; the daemon must exit 0."""
        d = self.daemons[name]
        if d.proc is None or d.proc.poll() is not None:
            raise AssertionError("%s is not running (exit %s)"
                                 % (name, d.proc and d.proc.returncode))
        d.proc.send_signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()
            d.exits.append(("hung", None))
            raise AssertionError("%s did not stop within %.0fs of SIGTERM" % (name, timeout))
        d.exits.append(("stop", rc))
        self._log_note(d, "stopped, exit %s" % rc)
        if rc != 0:
            raise AssertionError("%s exited %s after SIGTERM:\n%s"
                                 % (name, rc, self.log_tail(name)))
        return rc

    def kill(self, name):
        """SIGKILL: a crash at an arbitrary moment."""
        d = self.daemons[name]
        if d.proc is None or d.proc.poll() is not None:
            raise AssertionError("%s is not running" % name)
        d.proc.kill()
        d.proc.wait()
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

    def query(self, name, sql, args=()):
        """Rows of sql on a store (daemon name, probe VIN or path), read-only."""
        path = self.store(name)
        if not os.path.exists(path):
            raise sqlite3.OperationalError("no store yet: %s" % path)
        try:
            con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError as e:
            if "no such" in str(e) or "syntax" in str(e):
                raise
            return self._query_copy(path, sql, args)

    def _query_copy(self, path, sql, args):
        tmp = tempfile.mkdtemp(dir=self.dir)
        try:
            for suffix in ("", "-wal"):
                if os.path.exists(path + suffix):
                    shutil.copyfile(path + suffix, os.path.join(tmp, "s.db" + suffix))
            con = sqlite3.connect(os.path.join(tmp, "s.db"), timeout=10)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

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

    def raw(self, port, data, tls=None, timeout=1.5, half_close=False):
        """Connect (TLS with client cert `tls` if given: a cert name, or
        "" for TLS without a client certificate), send data, and return
        what the peer sends back until it closes or timeout passes without
        input.  TLS handshake failures return b"" (that is a refusal)."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            if tls is not None:
                try:
                    sock = self.client_tls(tls or None).wrap_socket(
                        sock, server_hostname="localhost")
                except (ssl.SSLError, OSError):
                    return b""
            try:
                sock.sendall(data)
                if half_close and tls is None:
                    sock.shutdown(socket.SHUT_WR)
            except (OSError, ssl.SSLError):
                return b""
            sock.settimeout(timeout)
            got = bytearray()
            while True:
                try:
                    b = sock.recv(65536)
                except (socket.timeout, ssl.SSLError, OSError):
                    break
                if not b:
                    break
                got += b
            return bytes(got)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def request(self, port, mtype, payload=None, tls=None, request_id=7, timeout=5.0):
        """Send one frame and return the first reply frame (type, payload,
        request_id), or None if the peer sent none within timeout."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            if tls is not None:
                sock = self.client_tls(tls or None).wrap_socket(
                    sock, server_hostname="localhost")
            sock.sendall(frame(mtype, payload, request_id))
            sock.settimeout(timeout)
            got = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    b = sock.recv(65536)
                except (socket.timeout, ssl.SSLError, OSError):
                    break
                if not b:
                    break
                got += b
                frames = parse_frames(got)
                if frames:
                    return frames[0]
            return None
        finally:
            sock.close()

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
        """fillerd and registrard stores: 32-byte blobs are chip keys, and
        anything that parses as an RSA private key is a Prv."""
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
                    if isinstance(v, bytes) and len(v) == 32 and prog == "fillerd":
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


def enrolled_probe(tb, tsps=None, m=16, vehicle_id=None):
    """A probe that is filled, registered and known to every TSP in tsps."""
    p = tb.probe(vehicle_id)
    p.fill(m=m)
    r = p.register()
    assert r.status == "OK", r
    provisioned(tb, tsps or tb.tsps, p)
    return p
