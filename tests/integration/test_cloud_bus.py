"""The cloud bus between the instances of one region (PROTOCOL §12,
doc/protocol.md §14): notes sealed under seed 003's synchronised key
stream, carried by PostgreSQL LISTEN/NOTIFY on the region's database.

- A vehicle's handover runs on instance A (which took its M6) while its
  connection moved to instance B (HAProxy, round robin): A sends the
  HandoverReady on the bus, B sends it on the vehicle's connection, and
  the vehicle enters region B without F3.
- Notes that do not come from an instance of the cloud: a NOTIFY with
  text that is no note, a note sealed under another K0, a note of a stale
  step, a note whose sender was changed and a replayed note are refused, each with its reason logged and
  counted, and change nothing: the bus goes on working, and after the
  server cuts its connections it connects again and goes on.

The test seals its own notes (Python's AES-GCM, the stream computed from
K0 as §14 defines it), which checks the format independently of
common/keystream.c.
"""

import hashlib
import os
import signal
import struct
import threading
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import enrolled_probe, layout, testbed, wait_until
from test_handover import (EAST_EDGE_A, LOOK_AHEAD, auth_via, no_f3, offer,
                           probe_session, sched_rows)
from test_schedd import keys_stored, need_qkd

A = "tsp-a"
A2 = "tsp-a#2"
CHANNEL = "qroam_cloud_tsp_a"
STEP_MS = 5000		# the harness's cloud_step


def start_region(tb):
    """qkdd, schedd, tsp-a as two instances behind HAProxy (round robin),
    tsp-b, fillerd and registrard; both instances' buses listening."""
    need_qkd()
    tb.start_qkd()
    tb.start_sched(handover_timeout="30s")
    for t in tb.tsps:
        keys_stored(tb, t)
    opts = dict(look_ahead=LOOK_AHEAD, handover_timeout="30s")
    tb.start_tsp(A, proxied=True, **opts)
    tb.start_tsp(A, instance=2, proxied=True, **opts)
    tb.start_proxy(A, 2)
    tb.start_tsp("tsp-b", **opts)
    tb.start_filler()
    tb.start_registrar()
    for n in (A, A2):
        tb.wait_log(n, r"cloud bus: listening on %s as " % CHANNEL)


def session_msgs(tb, name):
    """SessionMsg frames name has received."""
    return sum(v for (m, labels), v in tb.metrics(name).items()
               if m == "qroam_messages_received_total" and "SESSION" in str(labels).upper())


def refusals(tb, name, reason):
    return sum(v for (m, labels), v in tb.metrics(name).items()
               if m == "qroam_refusals_total" and ("reason", reason) in labels)


def notes(tb, name, event):
    return sum(v for (m, labels), v in tb.metrics(name).items()
               if m == "qroam_cloud_notes_total" and ("event", event) in labels)


# ---- HandoverReady through the other instance -------------------------------

@testbed(tsps=[A, "tsp-b"], pg=True)
def test_ready_through_the_bus(tb):
    start_region(tb)
    p = enrolled_probe(tb, m=16)
    probe_session(tb, A, p)
    marks = {n: tb.log_mark(n) for n in (A, A2)}
    # TSPB frozen: the scheduler holds the handover after A2, so the
    # vehicle's connection can move before the handover ends.
    tb.signal("tsp-b", signal.SIGSTOP)
    try:
        r = offer(p, A, EAST_EDGE_A, 90, "tsp-b", wait_ms=1000)
        assert (r["m6"], r["ready"]) == ("tsp-b", "none"), r
        wait_until(lambda: [x for x in sched_rows(tb) if x[2] == "a2"],
                   what="schedd to hold the handover after A2")
        started = [n for n in (A, A2) if "handover start id=" in tb.log_since(n, marks[n])
                   and p.vin in tb.log_since(n, marks[n])]
        assert len(started) == 1, started
        ran = started[0]
        other = A2 if ran == A else A
        before = session_msgs(tb, other)
        # The vehicle's next connection, waiting for HandoverReady: round
        # robin puts it on the other instance.
        out = {}
        t = threading.Thread(target=lambda: out.update(
            r=p.telemetry(A, 1, await_ready=True, wait_ms=60000)))
        t.start()
        wait_until(lambda: session_msgs(tb, other) > before,
                   what="the vehicle's telemetry at %s" % other)
    finally:
        tb.signal("tsp-b", signal.SIGCONT)
    t.join()
    r = out["r"]
    assert r.status == "OK" and r["acked"] == "1", r
    assert r["ready"] == "tsp-b", r
    tb.wait_log(ran, r"handover ready vehicle=%s: no open connection here, sent on the "
                r"cloud bus" % p.vin, since=marks[ran])
    tb.wait_log(other, r"cloud bus: vehicle=%s: session message from \S+ sent" % p.vin,
                since=marks[other])
    assert notes(tb, ran, "sent") == 1 and notes(tb, other, "delivered") == 1
    assert "not told" not in tb.log_since(ran, marks[ran])
    # Region B without F3: the context came with M8.
    probe_session(tb, "tsp-b", p, f3=False)
    assert auth_via(tb, "tsp-b", p.vin) == [("handover",)]
    no_f3(tb, "tsp-b", p.vin)
    assert sched_rows(tb)[-1][:3] == (A, "tsp-b", "done")
    assert tb.secret_leaks() == []


# ---- notes that are not the cloud's ----------------------------------------

def cloud_pb(vid, session_msg):
    """CloudNote{vehicle_send: VehicleSend{vehicle_id, session_msg}}."""
    def ld(field, b):
        n, v = len(b), b""
        while True:
            v += bytes([(n & 0x7f) | (0x80 if n > 0x7f else 0)])
            n >>= 7
            if not n:
                break
        return bytes([field << 3 | 2]) + v + b
    return ld(1, ld(1, vid.encode()) + ld(2, session_msg))


def seal(k0, t0_s, tsp, frm, to, pt, step_back=0):
    """A note as an instance of the cloud of K0 seals it (§14), at the
    current step minus step_back."""
    n = (int(time.time() * 1000) - t0_s * 1000) // STEP_MS - step_back
    k = k0
    for _ in range(n):
        k = hashlib.sha256(k).digest()
    nonce = os.urandom(12)
    aad = ("qroam/1|CLOUD|%s|%s|%s|%d" % (tsp, frm, to, n)).encode()
    sealed = struct.pack(">Q", n) + nonce + AESGCM(k).encrypt(nonce, pt, aad)
    return "%s %s %s" % (frm, to, sealed.hex())


@testbed(tsps=[A, "tsp-b"], pg=True)
def test_forged_notes_refused(tb):
    start_region(tb)
    p = enrolled_probe(tb, m=16)
    probe_session(tb, A, p)
    k0, t0 = layout.cloud_bus_k0(tb.cloud_key(A))
    pt = cloud_pb(p.vin, b"\x0a\x11" + p.vin.encode() + b"\x10\x07\x1a\x00")

    def notify(text):
        tb.pg.psql("SELECT pg_notify('%s', '%s')" % (CHANNEL, text), db="tsp_a")

    marks = {n: tb.log_mark(n) for n in (A, A2)}
    cases = [
        ("no note at all", "cloud_malformed", "malformed"),
        (seal(os.urandom(32), t0, A, "forger", "*", pt), "cloud_does_not_open",
         "does not open"),
        (seal(k0, t0, A, "old", "*", pt, step_back=3), "cloud_stale_step", "stale step"),
    ]
    for text, label, why in cases:
        notify(text)
        for n in (A, A2):
            wait_until(lambda n=n, label=label: refusals(tb, n, label) == 1,
                       what="%s to refuse %r" % (n, why))
            tb.wait_log(n, r"cloud bus: note from \S+ refused: %s" % why, since=marks[n])
    # A note that opens, for a vehicle whose connection no instance holds;
    # the same note again is a replay.  Its sender changed, it opens
    # nowhere (the AAD names the sender).
    good = seal(k0, t0, A, "peer", "*", pt)
    notify("peer2" + good[len("peer"):])
    for n in (A, A2):
        wait_until(lambda n=n: refusals(tb, n, "cloud_does_not_open") == 2,
                   what="%s to refuse the tampered note" % n)
        tb.wait_log(n, r"cloud bus: note from peer2 refused: does not open", since=marks[n])
    notify(good)
    for n in (A, A2):
        wait_until(lambda n=n: notes(tb, n, "not_held") == 1, what="%s to open the note" % n)
    notify(good)
    for n in (A, A2):
        wait_until(lambda n=n: refusals(tb, n, "cloud_replayed") == 1,
                   what="%s to refuse the replay" % n)
        tb.wait_log(n, r"cloud bus: note from peer refused: replayed", since=marks[n])
        assert notes(tb, n, "delivered") == 0
        st = tb.status(n)["cloud_bus"]
        assert st["state"] == "listening" and st["refused"] == 5 and st["opened"] == 1, st
    # Nothing changed: the vehicle's session goes on.
    r = p.telemetry(A, 3)
    assert r.status == "OK" and r["acked"] == "3", r

    # The bus's connections cut by the server: each instance connects
    # again (a state, not an error) and opens notes as before.
    marks = {n: tb.log_mark(n) for n in (A, A2)}
    cut = tb.pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     "WHERE application_name = 'qroam-cloudbus' AND datname = current_database()",
                     db="tsp_a")
    assert cut.strip() == "2", cut
    for n in (A, A2):
        tb.wait_log(n, r"cloud bus: .*; connecting again in \d+ms", since=marks[n])
        tb.wait_log(n, r"cloud bus: listening on %s as " % CHANNEL, since=marks[n])
    notify(seal(k0, t0, A, "peer", "*", pt))
    for n in (A, A2):
        wait_until(lambda n=n: notes(tb, n, "not_held") == 2, what="%s to open a note" % n)
    assert tb.secret_leaks() == []
