"""The admin endpoint under hostile or careless clients: it is plain HTTP
(loopback by default), so garbage, oversized requests, unknown paths and
methods, and clients that connect and say nothing must each get a clear
refusal or a close, never crash or stall the daemon, and never change what
it serves.  Also: the endpoint is on loopback unless configured otherwise,
and a port already taken stops start-up with a clear error.
"""

import fcntl
import socket
import struct
import sys

from harness import recv_all, wait_until

SIOCGIFADDR = 0x8915


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


def interface_addresses():
    """IPv4 addresses of this machine's interfaces other than loopback,
    asked of the kernel interface by interface (no name resolution, so
    /etc/hosts need not name the host)."""
    out = []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            try:
                r = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue		# no IPv4 address
            ip = socket.inet_ntoa(r[20:24])
            if not ip.startswith("127."):
                out.append(ip)
    finally:
        s.close()
    return out


def other_loopback_works():
    """Whether 127.0.0.2 reaches a socket bound to every address (Linux
    routes all of 127/8 to lo) while it cannot reach one bound to 127.0.0.1
    alone: then 127.0.0.2 tells the two apart on any machine."""
    wide, narrow = socket.socket(), socket.socket()
    try:
        wide.bind(("0.0.0.0", 0))
        wide.listen(1)
        narrow.bind(("127.0.0.1", 0))
        narrow.listen(1)
        return (connects("127.0.0.2", wide.getsockname()[1]) and
                not connects("127.0.0.2", narrow.getsockname()[1]))
    finally:
        wide.close()
        narrow.close()


def connects(ip, port):
    s = socket.socket()
    s.settimeout(2)
    try:
        return s.connect_ex((ip, port)) == 0
    finally:
        s.close()


def test_loopback_by_default_and_port_taken(tb):
    """`admin PORT` listens on 127.0.0.1 only; a taken port is a start-up
    error naming the address, not a silent daemon without metrics."""
    tb.start_filler()
    port = tb.admin_port("filler")
    addrs = interface_addresses()
    if other_loopback_works():
        addrs.append("127.0.0.2")
    if not addrs:
        print("    note: no address other than 127.0.0.1 reaches this machine; "
              "not checked that the admin endpoint is bound to 127.0.0.1 alone",
              file=sys.stderr)
    for ip in addrs:
        assert not connects(ip, port), "admin port reachable on %s" % ip
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
    tb.start("filler")
    code, body = tb.admin_get("filler", "/healthz")
    assert (code, body) == (200, "ok\n")
