"""The service manager protocol (sd_notify) of every daemon, as a systemd
Type=notify unit with WatchdogSec= sees it: each daemon is started with
NOTIFY_SOCKET pointing at a datagram socket of the test and WATCHDOG_USEC
set, and must send READY=1 once it serves, WATCHDOG=1 keep-alives at
about half the watchdog period, RELOADING=1 then READY=1 around a SIGHUP,
and STOPPING=1 on SIGTERM before exiting 0.
"""

import os
import signal
import socket
import time

from harness import vin, wait_until

WATCHDOG_USEC = 400000


class NotifySocket:
    """An AF_UNIX datagram socket collecting sd_notify messages."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages = []	# (monotonic time, [fields])
        self.opened = time.monotonic()

    def poll(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            self.messages.append((time.monotonic(), data.decode().split("\n")))

    def fields(self):
        return [f for _, fs in self.poll() for f in fs]

    def count(self, field):
        return sum(1 for f in self.fields() if f == field)

    def close(self):
        self.sock.close()
        os.unlink(self.path)


def start_notified(tb, name, start):
    """Run start() with NOTIFY_SOCKET and WATCHDOG_USEC for this daemon."""
    ns = NotifySocket(tb.path("notify-%s.sock" % name))
    tb.env["NOTIFY_SOCKET"] = ns.path
    tb.env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    try:
        start()
    finally:
        del tb.env["NOTIFY_SOCKET"]
        del tb.env["WATCHDOG_USEC"]
    return ns


def check_lifecycle(tb, name, ns):
    """READY, watchdog, reload and stop as systemd expects them."""
    wait_until(lambda: ns.count("READY=1") >= 1, what="%s READY=1" % name)
    ready = [f for f in ns.fields() if f.startswith("STATUS=")]
    assert ready, "%s: READY=1 without a STATUS= line" % name
    # Keep-alives at half the period: they keep coming, and never faster
    # than one per quarter period since the socket was opened.
    wait_until(lambda: ns.count("WATCHDOG=1") >= 3, what="%s WATCHDOG=1" % name)
    elapsed = time.monotonic() - ns.opened
    assert ns.count("WATCHDOG=1") <= elapsed / (WATCHDOG_USEC / 1e6 / 4) + 2, \
        (name, ns.count("WATCHDOG=1"), elapsed)
    tb.signal(name, signal.SIGHUP)
    wait_until(lambda: ns.count("READY=1") >= 2, what="%s READY=1 after reload" % name)
    fields = ns.fields()
    reloading = fields.index("RELOADING=1")
    assert any(f.startswith("MONOTONIC_USEC=") for f in fields), fields
    assert fields.index("READY=1", reloading) > reloading
    tb.assert_running(name)
    tb.stop(name)
    assert ns.count("STOPPING=1") == 1, (name, ns.fields())
    ns.close()


def test_every_daemon_speaks_sd_notify(tb):
    from test_schedd import need_qkd
    need_qkd()
    starts = [
        ("qkd", tb.start_qkd),
        ("sched", lambda: tb.start_sched(handover_timeout="30s")),
        ("filler", tb.start_filler),
        ("registrar", tb.start_registrar),
        ("tsp-a", lambda: tb.start_tsp("tsp-a")),
    ]
    sockets = []
    for name, start in starts:
        sockets.append((name, start_notified(tb, name, start)))
    for name, ns in reversed(sockets):
        check_lifecycle(tb, name, ns)


def test_vehicle_speaks_sd_notify(tb):
    tb.start_filler()
    tb.start_registrar()
    tb.start_tsp("tsp-a")
    v = vin(90)
    ns = start_notified(tb, v, lambda: tb.start_vehicle(v, tsp="tsp-a"))
    check_lifecycle(tb, v, ns)


def test_no_notify_socket_is_fine(tb):
    """Outside systemd nothing is sent and nothing fails."""
    tb.start_filler()
    code, body = tb.admin_get("filler", "/healthz")
    assert (code, body) == (200, "ok\n")
    tb.signal("filler", signal.SIGHUP)
    tb.assert_running("filler")
    tb.stop("filler")
