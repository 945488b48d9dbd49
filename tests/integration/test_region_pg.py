"""A region on PostgreSQL (PROTOCOL §12): tspd on a throw-away cluster's
database serves F1-F5 as on SQLite, and a second instance of the region on
the same port (reuse_port) and database serves the same vehicles at any
step: a vehicle authenticated on one continues on the other without F3
when the first dies, its records all stored once; and of two M3s naming
one chip key on two instances exactly one is accepted."""

import socket
import threading

from harness import enrolled_probe, start_provisioning, testbed, wait_until

TSP = "tsp-a"


def used(tb, chip):
    return tb.query(TSP, "SELECT idx, how FROM used_keys WHERE chip_id=? ORDER BY idx",
                    (chip,))


@testbed(tsps=[TSP], pg=True)
def test_one_instance_on_postgresql(tb):
    start_provisioning(tb, [TSP])
    p = enrolled_probe(tb, [TSP], m=16)
    assert tb.scalar(TSP, "SELECT count(*) FROM fills") == 1
    assert tb.scalar(TSP, "SELECT epoch FROM registrations WHERE vehicle_id=?",
                     (p.vin,)) == 1
    assert p.auth(TSP).status == "OK"
    r = p.m3(TSP, mode="seq", index=2)
    assert r.status == "OK" and r["index"] == "2", r
    assert used(tb, p.chip_id) == [(0, "burned"), (1, "burned"), (2, "m3")]
    r = p.telemetry(TSP, 50)
    assert r.status == "OK" and r["acked"] == "50", r
    wait_until(lambda: tb.count(TSP, "telemetry", "vehicle_id=? AND seq > 0",
                                (p.vin,)) == 50, what="50 records stored")
    st = tb.status(TSP)
    assert st["sessions"] == 1 and st["fills"] == 1, st
    # SIGKILL: the database kept everything; the session goes on.
    tb.kill(TSP)
    tb.start(TSP)
    r = p.telemetry(TSP, 10)
    assert r.status == "OK" and r["acked"] == "10", r
    wait_until(lambda: tb.count(TSP, "telemetry", "vehicle_id=? AND seq > 0",
                                (p.vin,)) == 60, what="60 records stored")
    assert "postgresql" in tb.log_since(TSP, 0)
    assert "dbname=" not in tb.log_since(TSP, 0)


@testbed(tsps=[TSP], pg=True)
def test_failover_between_instances(tb):
    start_provisioning(tb, [TSP])
    p = enrolled_probe(tb, [TSP], m=16)
    assert p.auth(TSP).status == "OK"
    assert p.m3(TSP, mode="seq").status == "OK"
    r = p.telemetry(TSP, 20)
    assert r.status == "OK" and r["acked"] == "20", r
    # A second instance on the same port and database; the first dies.
    tb.start_tsp(TSP, instance=2)
    tb.kill(TSP)
    # Served by the second, without F3: the session continues.
    r = p.telemetry(TSP, 20)
    assert r.status == "OK" and r["acked"] == "20", r
    # And a new session too: the authentication is the region's.
    r = p.m3(TSP, mode="seq")
    assert r.status == "OK", r
    r = p.telemetry(TSP, 5)
    assert r.status == "OK" and r["acked"] == "5", r
    wait_until(lambda: tb.count(TSP, "telemetry", "vehicle_id=?", (p.vin,)) == 47,
               what="every record stored once (45 and two D1s)")
    assert tb.scalar(TSP, "SELECT count(*) FROM auth WHERE vehicle_id=? AND via='f3'",
                     (p.vin,)) == 1
    # The first comes back next to the second; both serve.
    tb.start(TSP)
    for _ in range(4):
        r = p.telemetry(TSP, 3)
        assert r.status == "OK" and r["acked"] == "3", r


@testbed(tsps=[TSP], pg=True)
def test_one_key_two_instances(tb):
    """The same M3 (one chip key) sent at once to two instances: the
    database lets one of them have the key."""
    start_provisioning(tb, [TSP])
    p = enrolled_probe(tb, [TSP], m=16)
    assert p.auth(TSP).status == "OK"
    # The M3, made while no instance listens, then sent eight times at
    # once: the kernel spreads the connections over both instances.
    tb.stop(TSP)
    saved = tb.path("frames", "m3")
    assert p.m3(TSP, mode="seq", index=3, save=saved, wait_ms=500).status != "OK"
    with open(saved, "rb") as f:
        frames = f.read()
    tb.start(TSP)
    tb.start_tsp(TSP, instance=2)
    replies = []

    def send(sock, data):
        sock.sendall(data)
        sock.settimeout(10)
        replies.append(sock.recv(65536))

    socks = [socket.create_connection(("127.0.0.1", tb.port[TSP])) for _ in range(8)]
    threads = [threading.Thread(target=send, args=(s, frames)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in socks:
        s.close()
    assert used(tb, p.chip_id)[-1] == (3, "m3")
    sessions = tb.query(TSP, "SELECT key_index FROM sessions WHERE vehicle_id=?", (p.vin,))
    assert sessions == [(3,)], sessions
    both = tb.log_since(TSP, 0) + tb.log_since(TSP + "#2", 0)
    assert both.count("session open vehicle=%s" % p.vin) == 1, both
    assert both.count("reason=KEY_REUSED") == 7, both


@testbed(tsps=[TSP], pg=True)
def test_instances_behind_haproxy(tb):
    """Two instances behind HAProxy in TCP mode, as across hosts: the
    region is one address; round robin puts a vehicle's F3 on one
    instance and its M3 on the other, its telemetry on either; one dies
    and the other goes on serving everything."""
    tb.start_tsp(TSP, proxied=True)
    tb.start_tsp(TSP, instance=2, proxied=True)
    tb.start_proxy(TSP, 2)
    tb.start_filler()
    tb.start_registrar()
    p = enrolled_probe(tb, [TSP], m=16)
    marks = {n: tb.log_mark(n) for n in (TSP, TSP + "#2")}
    assert p.auth(TSP).status == "OK"
    assert p.m3(TSP, mode="seq").status == "OK"
    logs = {n: tb.log_since(n, m) for n, m in marks.items()}
    f3 = [n for n, l in logs.items() if "auth ok vehicle=%s" % p.vin in l]
    m3 = [n for n, l in logs.items() if "session open vehicle=%s" % p.vin in l]
    assert len(f3) == 1 and len(m3) == 1 and f3 != m3, (f3, m3)
    for _ in range(4):
        r = p.telemetry(TSP, 5)
        assert r.status == "OK" and r["acked"] == "5", r
    tb.kill(TSP + "#2")
    for _ in range(4):
        r = p.telemetry(TSP, 5)
        assert r.status == "OK" and r["acked"] == "5", r
    assert p.m3(TSP, mode="seq").status == "OK"
    wait_until(lambda: tb.count(TSP, "telemetry", "vehicle_id=? AND seq > 0",
                                (p.vin,)) == 40, what="the 40 records stored")
    assert tb.scalar(TSP, "SELECT count(*) FROM auth WHERE vehicle_id=?", (p.vin,)) == 1
