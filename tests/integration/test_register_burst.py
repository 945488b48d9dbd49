"""F2 under load: registrard generates the vehicles' key pairs on worker
threads (and keeps a few ready), so a burst of registrations, each on a
connection of its own, is answered in full while the event loop goes on
serving the admin endpoint; every vehicle is stored once and reaches the
TSP once.  Registrations racing for the same vehicle or chip get one OK
between them; those whose connections close before the answer, or that
are still waiting when registrard stops, leave a consistent store."""

import hashlib
import signal
import socket
import ssl
import threading

from cryptography.hazmat.primitives.serialization import load_der_public_key

import wire
from harness import http_get, parse_metrics, testbed, vin, wait_until

TSPS = ["tsp-a"]
BURST = 40		# registrations of the burst, each on its own connection
CLIENTS = 20		# of them in flight at once
ANSWER_TIMEOUT = 120.0


def chip(n):
    """A distinct, well-formed chip ID for vehicle n."""
    return hashlib.sha256(b"burst chip %d" % n).hexdigest()


def register_request(vehicle_id, chip_id, rebind=False):
    return wire.pb_encode([(1, vehicle_id), (2, chip_id)] + ([(3, True)] if rebind else []))


def register_conn(tb, cert="factory"):
    """A mutual-TLS connection to the registrar as cert."""
    sock = socket.create_connection(("127.0.0.1", tb.port["registrar"]),
                                    timeout=ANSWER_TIMEOUT)
    return tb.client_tls(cert).wrap_socket(sock, server_hostname="localhost")


def answer(sock):
    """The first frame the registrar sends on sock: (type, payload), or
    None if it closed without one."""
    got = b""
    while True:
        try:
            b = sock.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            b = b""
        if not b:
            return None
        got += b
        frames = wire.parse_frames(got)
        if frames:
            return frames[0][0], frames[0][1]


def outcome(reply):
    """"OK" and the Pbv of an M1, or the status name of a refusal."""
    if reply is None:
        return "closed", None
    mtype, payload = reply
    if mtype == wire.MT["MT_M1"]:
        return "OK", bytes(wire.pb_decode(payload)[1][0])
    if mtype == wire.MT["MT_STATUS"]:
        return wire.status_name(payload), None
    return "type %d" % mtype, None


def register(tb, vehicle_id, chip_id, cert="factory", rebind=False):
    """One registration on a connection of its own: (outcome, Pbv)."""
    with register_conn(tb, cert) as s:
        s.sendall(wire.frame(wire.MT["MT_REGISTER"],
                             register_request(vehicle_id, chip_id, rebind), request_id=1))
        return outcome(answer(s))


def burst(tb, requests, clients=CLIENTS):
    """Send requests [(vehicle_id, chip_id)] from clients threads at once,
    each on a connection of its own: [(outcome, Pbv)] in request order."""
    results = [None] * len(requests)
    lock = threading.Lock()
    nxt = [0]

    def client():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(requests):
                return
            try:
                results[i] = register(tb, *requests[i])
            except (OSError, ssl.SSLError) as e:
                results[i] = ("error %r" % e, None)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class AdminPoller:
    """Scrapes the registrar's /metrics over and over from a thread of its
    own until stopped: how many scrapes were answered, failed, and answered
    while registrations were waiting for their key pairs."""

    def __init__(self, tb):
        self.port = tb.admin_port("registrar")
        self.answered = self.failed = self.while_waiting = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self):
        while not self.stopping.is_set():
            try:
                code, body = http_get(self.port, "/metrics", timeout=30.0)
            except OSError:
                code = None
            if code != 200:
                self.failed += 1
                continue
            self.answered += 1
            m = parse_metrics(body)
            if m.get(("qroam_registrations_waiting", ()), 0) > 0:
                self.while_waiting += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        return False


def registrar_metric(tb, name, **labels):
    return tb.metrics("registrar").get((name, tuple(sorted(labels.items()))), 0)


def stored(tb):
    """{vehicle_id: (chip_id, pbv)} of the registrar's store."""
    return {v: (c, bytes(p)) for v, c, p in
            tb.query("registrar", "SELECT vehicle_id, chip_id, pbv FROM registrations")}


@testbed(tsps=TSPS)
def test_register_burst_while_admin_answers(tb):
    tb.start_tsp("tsp-a")
    tb.start_registrar(workers=2, key_pool=4)
    reqs = [(vin(100 + i), chip(100 + i)) for i in range(BURST)]

    with AdminPoller(tb) as poll:
        results = burst(tb, reqs)
    assert [r[0] for r in results] == ["OK"] * BURST, \
        [(reqs[i][0], r[0]) for i, r in enumerate(results) if r[0] != "OK"]

    # Each vehicle stored once, with its chip and the very Pbv its M1 carried.
    regs = stored(tb)
    assert len(regs) == BURST
    for (v, c), (_, pbv) in zip(reqs, results):
        assert regs[v] == (c, pbv), v
        assert load_der_public_key(pbv).key_size == 2048
    assert len({p for _, p in regs.values()}) == BURST, "a key pair was handed out twice"
    assert registrar_metric(tb, "qroam_registrations_total", kind="new") == BURST

    # The admin endpoint answered all along, also while registrations were
    # waiting for their keys (the event loop was not generating them).
    assert poll.failed == 0, poll.failed
    assert poll.while_waiting > 0, (poll.answered, poll.while_waiting)

    # Every registration reaches the TSP, once.
    wait_until(lambda: tb.count("tsp-a", "registrations") == BURST, timeout=60,
               what="the burst's registrations at tsp-a")
    wait_until(lambda: tb.status("registrar")["outbox"] == 0, what="outbox drained")
    assert set(r[0] for r in tb.query("tsp-a", "SELECT vehicle_id FROM registrations")) \
        == set(regs)
    st = tb.status("registrar")
    assert st["registrations"] == BURST, st
    tb.assert_running("registrar", "tsp-a")


@testbed(tsps=TSPS)
def test_racing_duplicates_get_one_ok(tb):
    """The same vehicle, or the same chip, on several connections at once:
    one of each group is registered, the others are refused as duplicates,
    and what is stored is the winner's."""
    tb.start_tsp("tsp-a")
    tb.start_registrar(workers=2, key_pool=0)
    groups = []
    for g in range(6):
        if g % 2 == 0:	# one vehicle, four chips
            groups.append([(vin(200 + g), chip(2000 + 10 * g + k)) for k in range(4)])
        else:		# one chip, four vehicles
            groups.append([(vin(200 + 10 * g + k), chip(3000 + g)) for k in range(4)])
    reqs = [r for grp in groups for r in grp]
    results = burst(tb, reqs, clients=len(reqs))

    regs = stored(tb)
    assert len(regs) == len(groups), regs.keys()
    for grp, res in zip(groups, [results[i:i + 4] for i in range(0, len(reqs), 4)]):
        codes = [r[0] for r in res]
        assert sorted(codes) == ["DUPLICATE_REGISTRATION"] * 3 + ["OK"], (grp, codes)
        (v, c), (_, pbv) = [(q, r) for q, r in zip(grp, res) if r[0] == "OK"][0]
        assert regs[v] == (c, pbv), v
    refused = registrar_metric(tb, "qroam_refusals_total", reason="DUPLICATE_REGISTRATION")
    assert refused == 3 * len(groups), refused
    # Nothing more of them is left to do.
    assert registrar_metric(tb, "qroam_registrations_waiting") == 0


@testbed(tsps=TSPS)
def test_connections_closing_before_the_answer(tb):
    """Registrations whose requesters hang up right after sending are
    stored all the same (only their answers are dropped), each once; a
    retry is refused as a duplicate, and registrard goes on serving."""
    tb.start_tsp("tsp-a")
    tb.start_registrar(workers=2, key_pool=0)
    n = 16
    reqs = [(vin(300 + i), chip(300 + i)) for i in range(n)]
    mark = tb.log_mark("registrar")
    socks = []
    for v, c in reqs:
        s = register_conn(tb)
        s.sendall(wire.frame(wire.MT["MT_REGISTER"], register_request(v, c), request_id=1))
        # The end of the stream right behind the request, so that the
        # request is read before the registrar sees the close.
        s.shutdown(socket.SHUT_WR)
        socks.append(s)
    wait_until(lambda: registrar_metric(tb, "qroam_registrations_total", kind="new") == n,
               timeout=60, what="every registration stored")
    for s in socks:
        s.close()
    assert registrar_metric(tb, "qroam_registrations_waiting") == 0
    regs = stored(tb)
    assert set(regs) == {v for v, _ in reqs}
    assert all(regs[v][0] == c for v, c in reqs)
    log = tb.log_since("registrar", mark)
    assert log.count("registered vehicle=") == n, log
    # The connections closed while the keys were made (all of them, but
    # for a machine slow enough to make a key before it reads an EOF).
    assert log.count("(connection closed before the answer)") > n // 2, log
    for v, c in reqs[:4]:
        assert register(tb, v, c)[0] == "DUPLICATE_REGISTRATION"
    assert register(tb, vin(399), chip(399))[0] == "OK"
    wait_until(lambda: tb.count("tsp-a", "registrations") == n + 1, timeout=60,
               what="registrations at tsp-a")
    tb.assert_running("registrar")


@testbed(tsps=TSPS)
def test_stop_with_registrations_waiting(tb):
    """SIGTERM while registrations wait for their key pairs: registrard
    exits 0 (no leak, no sanitizer report: the bed checks), the ones
    answered OK are stored, the others are not, and after a restart every
    vehicle that was not stored registers."""
    tb.start_tsp("tsp-a")
    tb.start_registrar(workers=1, key_pool=0)
    n = 12
    reqs = [(vin(400 + i), chip(400 + i)) for i in range(n)]
    socks = []
    for v, c in reqs:
        s = register_conn(tb)
        s.sendall(wire.frame(wire.MT["MT_REGISTER"], register_request(v, c), request_id=1))
        socks.append(s)
    # Every request read: stored or waiting, some of them waiting.
    wait_until(lambda: registrar_metric(tb, "qroam_registrations_waiting") > 0 and
               registrar_metric(tb, "qroam_registrations_waiting") +
               registrar_metric(tb, "qroam_registrations_total", kind="new") == n,
               what="every registration read, some waiting for their keys")
    mark = tb.log_mark("registrar")
    tb.stop("registrar")
    results = [outcome(answer(s)) for s in socks]
    for s in socks:
        s.close()
    log = tb.log_since("registrar", mark)

    tb.start("registrar")
    regs = stored(tb)
    ok = {v for (v, _), r in zip(reqs, results) if r[0] == "OK"}
    assert ok <= set(regs), (ok, regs.keys())
    assert all(r[0] in ("OK", "closed") for r in results), results
    dropped = log.count("dropped: registrard is stopping")
    assert dropped == n - len(regs) and dropped > 0, (dropped, len(regs), log)
    for v, c in reqs:
        want = "DUPLICATE_REGISTRATION" if v in regs else "OK"
        assert register(tb, v, c)[0] == want, v
    assert len(stored(tb)) == n


def rewrite_conf(tb, name, **changes):
    """Replace directives of name's configuration file."""
    path = tb.daemons[name].conf
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if l.split(" ", 1)[0] not in changes]
    lines += ["%s %s" % kv for kv in changes.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def reload(tb, pattern):
    mark = tb.log_mark("registrar")
    tb.signal("registrar", signal.SIGHUP)
    tb.wait_log("registrar", pattern, since=mark)
    return tb.log_since("registrar", mark)


@testbed(tsps=TSPS)
def test_key_pool_and_workers_settings(tb):
    """Key pairs made ahead serve registrations without a wait; the pool
    follows rsa_bits and key_pool at a reload, workers at a restart; with
    workers 0 and key_pool 0 the keys are made on the event loop as each
    registration comes."""
    tb.start_tsp("tsp-a")
    tb.start_registrar(workers=1, key_pool=3)
    tb.wait_log("registrar", r"key generation on 1 worker thread, 3 key pairs kept ready")
    wait_until(lambda: registrar_metric(tb, "qroam_key_pool") == 3, what="a full pool")
    for i in range(3):
        r = register(tb, vin(500 + i), chip(500 + i))
        assert r[0] == "OK" and load_der_public_key(r[1]).key_size == 2048, r
    assert registrar_metric(tb, "qroam_registration_keys_total", source="pool") == 3
    assert registrar_metric(tb, "qroam_registration_keys_total", source="generated") == 0
    wait_until(lambda: registrar_metric(tb, "qroam_key_pool") == 3, what="the pool refilled")

    # A new key size empties the pool of the old one.
    rewrite_conf(tb, "registrar", rsa_bits=3072, key_pool=2)
    reload(tb, r"reloaded: rsa_bits=3072 key_pool=2")
    wait_until(lambda: registrar_metric(tb, "qroam_key_pool") == 2, timeout=60,
               what="a pool of RSA-3072 keys")
    r = register(tb, vin(510), chip(510))
    assert r[0] == "OK" and load_der_public_key(r[1]).key_size == 3072, r
    assert registrar_metric(tb, "qroam_registration_keys_total", source="pool") == 4

    # workers changes on restart only.
    rewrite_conf(tb, "registrar", workers=0, key_pool=0, rsa_bits=2048)
    log = reload(tb, r"reloaded: ")
    assert "reload: workers changed; it takes effect on restart" in log, log
    wait_until(lambda: registrar_metric(tb, "qroam_key_pool") == 0, what="an empty pool")
    mark = tb.log_mark("registrar")
    tb.restart("registrar")
    tb.wait_log("registrar", r"key generation on the event loop, 0 key pairs kept ready",
                since=mark)
    for i in range(2):
        r = register(tb, vin(520 + i), chip(520 + i))
        assert r[0] == "OK" and load_der_public_key(r[1]).key_size == 2048, r
    assert registrar_metric(tb, "qroam_registration_keys_total", source="generated") == 2
    assert registrar_metric(tb, "qroam_key_pool") == 0
    assert len(stored(tb)) == 6
    wait_until(lambda: tb.count("tsp-a", "registrations") == 6, what="registrations at tsp-a")
