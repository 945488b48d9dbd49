"""A throw-away PostgreSQL cluster for tests and the testbed: initdb into
a directory of its own, pg_ctl start listening only on a Unix socket in
that directory (no TCP), one database per user of it, stopped and removed
at the end.  The server binaries are Debian's `postgresql` package's
(/usr/lib/postgresql/<version>/bin).  PostgreSQL refuses to run as root:
as root the cluster runs as `nobody`, in a directory under /tmp that
user can reach (a clone in /root, mode 0700, could not host it)."""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

USER = "qroam"          # the cluster's superuser (trust on the socket)


def bindir():
    """The newest installed server's bin directory, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(dirs[-1]) if dirs else None


def available():
    return bindir() is not None


class Cluster:
    """One cluster: start() then conninfo(db) / create(db); stop()."""

    def __init__(self, parent=None):
        self.bin = bindir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL's server is not installed "
                               "(Debian package postgresql; sh scripts/deps.sh)")
        self.as_nobody = os.geteuid() == 0
        # A short path: a Unix socket's path must fit in 107 bytes.
        base = "/tmp" if self.as_nobody or parent is None else parent
        self.dir = tempfile.mkdtemp(prefix="qroam-pg-", dir=base)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.started = False
        self.ndb = 0
        if self.as_nobody:
            os.chmod(self.dir, 0o755)
            os.chown(self.dir, pwd.getpwnam("nobody").pw_uid, -1)

    def _run(self, argv, **kw):
        if self.as_nobody:
            nobody = pwd.getpwnam("nobody")

            def demote():
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
            kw["preexec_fn"] = demote
            kw.setdefault("cwd", self.dir)
        return subprocess.run(argv, capture_output=True, text=True, **kw)

    def start(self):
        p = self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-A", "trust",
                       "-U", USER, "-E", "UTF8", "--no-instructions"])
        if p.returncode != 0:
            raise RuntimeError("initdb failed: %s" % (p.stderr or p.stdout))
        opts = ("-c listen_addresses='' -c unix_socket_directories=%s "
                "-c shared_buffers=16MB -c max_connections=200 -c fsync=on" % self.dir)
        p = self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-l", self.log,
                       "-o", opts, "-w", "-t", "60", "start"])
        if p.returncode != 0:
            raise RuntimeError("pg_ctl start failed: %s %s" % (p.stderr, self.tail()))
        self.started = True
        return self

    def tail(self):
        try:
            with open(self.log) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def conninfo(self, db="postgres"):
        """The libpq connection URI of database db (one word, as a
        configuration value must be)."""
        return "postgresql://%s@/%s?host=%s" % (USER, db, self.dir)

    def psql(self, sql, db="postgres"):
        """Run sql; its output (unaligned, tuples only)."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.conninfo(db), "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, p.stderr))
        return p.stdout

    def create(self, name=None):
        """A new empty database; its connection string."""
        if name is None:
            self.ndb += 1
            name = "qroam_%d_%d" % (os.getpid(), self.ndb)
        self.psql("CREATE DATABASE %s" % name)
        return self.conninfo(name)

    def stop(self):
        if self.started:
            self._run([os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "immediate",
                       "-w", "-t", "60", "stop"])
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_gone(path, timeout=10):
    deadline = time.time() + timeout
    while os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    return not os.path.exists(path)
