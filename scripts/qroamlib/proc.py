"""A daemon's process under a testbed, and the runner's own lines.

A Process starts one program in a session of its own, so a Ctrl-C on the
terminal reaches the runner only and the runner stops its daemons itself;
with the parent-death signal set, a runner that is killed takes its
daemons with it.  Its output either goes straight to its log file (the
integration tests read the file) or is read line by line: every line is
appended to the log file and kept, start-up and problem lines are noted,
and each line is handed to an echo function (the terminal).
"""

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
# A line a daemon logs once it is serving.
STARTED_RX = re.compile(r"^\S+ [^:]+: (started|listening)")
# A line that means something went wrong: fatal() or a sanitizer report.
PROBLEM_RX = re.compile(r"fatal|AddressSanitizer|LeakSanitizer|runtime error|"
                        r"UndefinedBehaviorSanitizer")
PRINT_LOCK = threading.Lock()


def stamp(t=None):
    """HH:MM:SS.mmm of a time.time() value, as the daemons' logs write it."""
    t = time.time() if t is None else t
    return time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % (int(t * 1000) % 1000)


def emit(text, stream=None):
    """One whole line on the terminal, never interleaved with another."""
    with PRINT_LOCK:
        print(text, file=stream or sys.stdout, flush=True)


class Console:
    """The lines of one runner, time-stamped and named like a daemon's."""

    def __init__(self, who):
        self.who = who

    def say(self, text):
        emit("%s %s: %s" % (stamp(), self.who, text))


def die_with_parent(then=None):
    """A preexec function: SIGKILL the child when the thread that started
    it ends (the runner, when it is started from the main thread), then
    run then(), if given."""
    def preexec():
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if then is not None:
            then()
    return preexec


def listening_ports(pid):
    """The TCP ports on which process pid holds a listening socket of its
    own (read from /proc: no connection is made, so a TLS listener logs
    no refused handshake); empty once the process is gone."""
    inodes = set()
    fddir = "/proc/%d/fd" % pid
    try:
        fds = os.listdir(fddir)
    except OSError:
        return set()
    for fd in fds:
        try:
            link = os.readlink(os.path.join(fddir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            w = row.split()
            # sl local_address rem_address st ... uid timeout inode
            if len(w) > 9 and w[3] == "0A" and w[9] in inodes:
                ports.add(int(w[1].rsplit(":", 1)[1], 16))
    return ports


class Process:
    """One program of a testbed.

    name      what the runner calls it
    argv      the command
    log       its log file; opened for appending with append, else created
    capture   False: stdout and stderr go straight to the log file; True:
              they are read line by line (lines, stdout, started, problems,
              echo)
    stdout_apart  with capture: stdout lines (vehicled's STATS) are kept
              in self.stdout as well as logged, and are not echoed
    echo      with capture: echo(process, line) for every log line
    header    a first line for the log file
    preexec   run in the child before exec (after the parent-death signal
              is set)
    """

    def __init__(self, name, argv, log, env=None, cwd=None, capture=True,
                 stdout_apart=False, echo=None, append=False, header=None,
                 preexec=None):
        self.stop_ok = ()          # exit statuses of a stop besides 0
        self.name = name
        self.argv = list(argv)
        self.log_path = log
        self.lines = []
        self.stdout = []
        self.problems = []
        self.stopping = False
        self.started = None         # monotonic time of the start-up line
        self.ended = None           # monotonic time it was reaped after an exit of its own
        self.echo = echo
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._threads = []
        logf = open(log, "a" if append else "w")
        if header:
            logf.write(header + "\n")
            logf.flush()
        common = dict(stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True,
                      preexec_fn=die_with_parent(preexec))
        if not capture:
            try:
                self.popen = subprocess.Popen(self.argv, stdout=logf, stderr=logf, **common)
            finally:
                logf.close()
            self.log = None
            return
        self.log = logf
        self.popen = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, text=True, errors="replace",
            stderr=subprocess.PIPE if stdout_apart else subprocess.STDOUT, **common)
        streams = [(self.popen.stdout, not stdout_apart)]
        if stdout_apart:
            streams.append((self.popen.stderr, True))
        for stream, is_log in streams:
            t = threading.Thread(target=self._pump, args=(stream, is_log), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, stream, is_log):
        for line in stream:
            line = line.rstrip("\n")
            with self._lock:
                if self.log is not None:
                    self.log.write(line + "\n")
                    self.log.flush()
            if not is_log:
                self.stdout.append(line)
                continue
            self.lines.append(line)
            if self.started is None and STARTED_RX.search(line):
                self.started = time.monotonic()
            if PROBLEM_RX.search(line):
                self.problems.append("%s: %s" % (self.name, line))
            if self.echo is not None:
                self.echo(self, line)

    # -- the subprocess.Popen interface the tests use

    @property
    def pid(self):
        return self.popen.pid

    @property
    def returncode(self):
        return self.popen.returncode

    def poll(self):
        return self.popen.poll()

    def wait(self, timeout=None):
        return self.popen.wait(timeout)

    def send_signal(self, sig):
        self.popen.send_signal(sig)

    def kill(self):
        """SIGKILL, and wait for it: a crash at an arbitrary moment."""
        self.popen.kill()
        self.popen.wait()

    # -- state

    def running(self):
        return self.popen.poll() is None

    def died(self):
        """True if the process ended without being asked to."""
        return not self.stopping and self.popen.poll() is not None

    def ids(self):
        """(uid, gid) the process runs with, from /proc; None once gone."""
        try:
            with open("/proc/%d/status" % self.popen.pid) as f:
                st = dict(l.split(":", 1) for l in f if ":" in l)
            return (int(st["Uid"].split()[1]), int(st["Gid"].split()[1]))
        except (OSError, KeyError, ValueError, IndexError):
            return None

    def wait_listening(self, ports, timeout, interval=0.05):
        """Wait until the process listens on every port of ports.  True
        once it does; False after timeout or when it exited (its exit
        status is then in returncode)."""
        want = set(ports)
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                return False
            if want <= listening_ports(self.popen.pid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def missing_ports(self, ports):
        """The ports of ports the process does not listen on."""
        return sorted(set(ports) - listening_ports(self.popen.pid))

    # -- the end

    def _finish(self):
        for t in self._threads:
            t.join(5)
        with self._lock:
            if self.log is not None:
                self.log.close()
                self.log = None

    def stop(self, timeout=10):
        """SIGTERM and wait; SIGKILL after timeout.  The exit status, or
        None when it had to be killed.  An exit status other than 0 and a
        hang are noted in problems."""
        self.stopping = True
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            self.problems.append("%s did not stop within %d s" % (self.name, timeout))
            self._finish()
            return None
        self._finish()
        if self.popen.returncode not in (0,) + self.stop_ok and self.ended is None:
            self.problems.append("%s exited with status %s" % (self.name,
                                                              self.popen.returncode))
        return self.popen.returncode

    def reap(self):
        """The process ended on its own: collect its output, close the log."""
        self.ended = time.monotonic()
        self._finish()
