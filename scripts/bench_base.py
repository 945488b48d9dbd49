"""The baselines that `make bench` measures in every run, beside the
figures they are compared with: a 4 KiB fdatasync, `openssl speed rsa2048`
on one core and on all of them, SQLite inserts per second with one and
with 100 rows per commit, and the peer broker: Eclipse Mosquitto with QoS 1,
persistence on and TLS 1.3, fed 256-byte messages by mosquitto_pub and
drained by one mosquitto_sub.  (The loopback round trip and the bare
libevent echo server are measured by qbench: `gap` and `echo`.)"""

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time

from qroamlib import layout
from qroamlib.stores import median


class BaselineError(Exception):
    """A baseline could not be measured (a tool missing or failing)."""


def fsync_us(directory, n=200):
    """Median time of a 4 KiB write + fdatasync in directory."""
    fd, path = tempfile.mkstemp(dir=directory)
    try:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)
            times.append((time.perf_counter() - t) * 1e6)
        return median(times)
    finally:
        os.close(fd)
        os.unlink(path)


def openssl_sign_per_s(seconds, cpu=None, multi=None):
    """RSA-2048 sign/s of `openssl speed -seconds N rsa2048`: on one CPU
    (taskset) or, with multi, summed over that many processes."""
    argv = ["openssl", "speed", "-seconds", str(seconds)]
    if multi:
        argv += ["-multi", str(multi)]
    argv.append("rsa2048")
    if cpu is not None and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        argv = ["taskset", "-c", str(cpu)] + argv
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r"^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            return float(m.group(1))
    raise BaselineError("cannot read the output of %s" % " ".join(argv))


def sqlite_inserts_per_s(directory, rows_per_commit, seconds=1.0):
    """Rows/s inserted into a fresh WAL database with synchronous=FULL
    (what a durable commit costs), rows_per_commit rows per transaction,
    rows shaped like tspd's telemetry rows."""
    path = os.path.join(directory, "sqlite-baseline-%d.db" % rows_per_commit)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE telemetry(id INTEGER PRIMARY KEY, vehicle_id TEXT,"
                    " seq INT, unix_ms INT, lat REAL, lon REAL, speed REAL,"
                    " heading REAL, received_ms INT)")
        sql = "INSERT INTO telemetry(vehicle_id, seq, unix_ms, lat, lon, speed," \
            " heading, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            con.execute("BEGIN")
            con.executemany(sql, [("LBENCH2B10K000001", n + i, 1700000000000, 30.05,
                                   120.05, 30.0, 90.0, 1700000000000)
                                  for i in range(rows_per_commit)])
            con.execute("COMMIT")
            n += rows_per_commit
        return n / (time.perf_counter() - t0)
    finally:
        con.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)


def _wait_for(path, text, timeout):
    """Wait until the file at path contains text; True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if text in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def mosquitto_msgs_per_s(directory, pki, n, cert="tsp-a"):
    """Messages/s through Mosquitto: a broker of our own on a free
    loopback port (QoS 1, persistence on, TLS 1.3 with the bench's PKI),
    one subscriber waiting for n messages, mosquitto_pub -l -q 1 sending n
    lines of 256 bytes; n over the time from the publisher's start until
    the subscriber has all n."""
    for prog in ("mosquitto", "mosquitto_pub", "mosquitto_sub"):
        if not shutil.which(prog) and not os.path.exists("/usr/sbin/" + prog):
            raise BaselineError("%s is not installed (scripts/deps.sh)" % prog)
    broker = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    mdir = os.path.join(directory, "mosquitto")
    os.makedirs(mdir, exist_ok=True)
    port = layout.free_port()
    log = os.path.join(mdir, "mosquitto.log")
    conf = os.path.join(mdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("# The bench's peer broker: QoS 1 persistence, TLS 1.3, loopback.\n"
                "user root\n"
                "per_listener_settings false\n"
                "allow_anonymous true\n"
                "persistence true\n"
                "persistence_location %s/\n"
                "log_dest file %s\n"
                "log_type error\nlog_type warning\nlog_type notice\n"
                "log_type information\nlog_type subscribe\n"
                "max_queued_messages %d\n"
                "listener %d 127.0.0.1\n"
                "cafile %s\ncertfile %s\nkeyfile %s\n"
                "tls_version tlsv1.3\n" % (
                    mdir, log, n + 1000, port, os.path.join(pki, "ca.pem"),
                    os.path.join(pki, cert + ".pem"), os.path.join(pki, cert + ".key")))
    # The waits below read this run's log, not the one of a run before.
    if os.path.exists(log):
        os.unlink(log)
    lines = os.path.join(mdir, "messages.txt")
    with open(lines, "w") as f:
        for i in range(n):
            f.write(("%08d" % i).ljust(256, "m") + "\n")
    tls = ["-h", "localhost", "-p", str(port), "--cafile", os.path.join(pki, "ca.pem"),
           "--tls-version", "tlsv1.3", "-q", "1", "-t", "qroam/bench"]
    b = subprocess.Popen([broker, "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    sub = None
    try:
        if not _wait_for(log, "running", 10):
            raise BaselineError("mosquitto did not start; see %s" % log)
        sub = subprocess.Popen(["mosquitto_sub", "-i", "qroam-bench-sub", "-C", str(n)]
                               + tls, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not _wait_for(log, "qroam-bench-sub 1 qroam/bench", 10):
            raise BaselineError("mosquitto_sub did not subscribe; see %s" % log)
        with open(lines) as stdin:
            t0 = time.perf_counter()
            pub = subprocess.Popen(["mosquitto_pub", "-i", "qroam-bench-pub", "-l"] + tls,
                                   stdin=stdin, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
            try:
                sub.wait(120)
            except subprocess.TimeoutExpired:
                raise BaselineError("mosquitto_sub did not get %d messages in 120 s" % n)
            t1 = time.perf_counter()
            pub.wait(30)
        if sub.returncode != 0:
            raise BaselineError("mosquitto_sub failed: %s" % sub.stderr.read().strip())
        return n / (t1 - t0)
    finally:
        for p in (sub, b):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        layout.release_port(port)
        if os.path.exists(os.path.join(mdir, "mosquitto.db")):
            os.unlink(os.path.join(mdir, "mosquitto.db"))
