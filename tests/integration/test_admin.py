"""The admin endpoint under hostile or careless clients: it is plain HTTP
(loopback by default), so garbage, oversized requests, unknown paths and
methods, and clients that connect and say nothing must each get a clear
refusal or a close, never crash or stall the daemon, and never change what
it serves.  Also: the endpoint is on loopback unless configured otherwise,
and a port already taken stops start-up with a clear error.
"""

import socket
import time

from harness import recv_all, wait_until


def raw_http(port, data, timeout=5.0):
    """Send bytes to the admin port and return what came back before the
    server closed (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        return recv_all(s, timeout)


def status_line(reply):
    return reply.split(b"\r\n", 1)[0].decode(errors="replace")


def test_bad_requests_are_refused_and_change_nothing(tb):
    tb.start_filler()
    port = tb.admin_port("filler")
    before = tb.status("filler")
    cases = [
        (b"GARBAGE\r\n\r\n", "400"),
        (b"GET /status HTTP/9.9\r\n\r\n", "400"),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", None),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: " + b"b" * 20000 + b"\r\n\r\n", None),
        (b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "4"),
        (b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
        (b"GET /status/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
        (b"GET /status/%00 HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
        (b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, None),
    ]
    for data, want in cases:
        reply = raw_http(port, data)
        line = status_line(reply)
        if want is None:
            # Oversized or not HTTP at all: an error status or a close.
            assert reply == b"" or " 4" in line or " 5" in line, (data[:40], line)
        else:
            assert (" " + want) in line, (data[:40], line)
        tb.assert_running("filler")
    # Half a request, then silence: the daemon keeps serving others.
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(b"GET /status HTTP/1.1\r\n")
    code, body = tb.admin_get("filler", "/healthz")
    assert (code, body) == (200, "ok\n")
    idle.close()
    after = tb.status("filler")
    for k in ("daemon", "id", "pid", "fills", "outbox"):
        assert before[k] == after[k], (k, before, after)
    # Each was counted by path; nothing else moved.
    code, text = tb.admin_get("filler", "/metrics")
    assert code == 200 and "qroam_admin_requests_total" in text


def test_many_clients_at_once(tb):
    """A burst of scrapes, some abandoned half-way, all while the daemon
    works: every complete one gets a full answer."""
    tb.start_filler()
    port = tb.admin_port("filler")
    dangling = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    for s in dangling[::2]:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    for _ in range(20):
        code, text = tb.admin_get("filler", "/metrics")
        assert code == 200 and text.endswith("\n"), code
    for s in dangling:
        s.close()
    wait_until(lambda: tb.status("filler")["connections"] == 0,
               what="admin clients not counted as protocol connections")
    tb.assert_running("filler")


def test_loopback_by_default_and_port_taken(tb):
    """`admin PORT` listens on 127.0.0.1 only; a taken port is a start-up
    error naming the address, not a silent daemon without metrics."""
    tb.start_filler()
    port = tb.admin_port("filler")
    addrs = [a for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
             if not a[4][0].startswith("127.")]
    if addrs:
        ip = addrs[0][4][0]
        s = socket.socket()
        s.settimeout(2)
        try:
            assert s.connect_ex((ip, port)) != 0, "admin port reachable on %s" % ip
        finally:
            s.close()
    tb.stop("filler")
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        d = tb.start("filler", wait=False)
        wait_until(lambda: d.proc.poll() is not None, what="fillerd to give up")
        assert d.proc.returncode != 0
        assert "admin: cannot listen on 127.0.0.1:%d" % port in tb.log("filler")
        d.exits.append(("exit", d.proc.returncode))
    finally:
        blocker.close()
    time.sleep(0.1)
    tb.start("filler")
    code, body = tb.admin_get("filler", "/healthz")
    assert (code, body) == (200, "ok\n")
