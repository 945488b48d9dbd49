"""Invariant 3: malformed, truncated, oversized, forged and random input to
every listener never crashes a daemon or changes a store, and the daemon
still answers valid requests afterwards."""

import hashlib
import random
import socket
import struct
import time

from harness import (MT, enrolled_probe, envelope, frame, parse_frames,
                     pb_encode, status_name, testbed, vin, wait_until)

MAX_FRAME = 65536


def frame_of(env):
    return struct.pack(">I", len(env)) + env


def garbage(rng, types):
    """(label, bytes) of hostile inputs at the framing and message layers."""
    out = [
        ("1 random byte", rng.randbytes(1)),
        ("3 random bytes", rng.randbytes(3)),
        ("100 random bytes", rng.randbytes(100)),
        ("4 KiB random", rng.randbytes(4096)),
        ("zero-length frame", b"\0\0\0\0"),
        ("truncated header", b"\0\0"),
        ("truncated frame", struct.pack(">I", 100) + envelope(MT["MT_M4"])[:3]),
        ("length 0xffffffff", struct.pack(">I", 0xFFFFFFFF) + rng.randbytes(64)),
        ("length max+1", struct.pack(">I", MAX_FRAME + 1) + rng.randbytes(MAX_FRAME + 1)),
        ("garbage envelope", struct.pack(">I", 32) + rng.randbytes(32)),
        ("bad varint", struct.pack(">I", 11) + b"\x08" + b"\xff" * 10),
        ("field length overflow", struct.pack(">I", 8) + b"\x1a\xff\xff\xff\xff\x0f\x00\x00"),
        ("envelope without type", struct.pack(">I", 2) + pb_encode([(1, 1)])),
        ("version 2", frame(MT["MT_M4"], b"", version=2)),
        ("unknown envelope field", frame_of(envelope(MT["MT_M4"]) + pb_encode([(15, 1)]))),
        ("type 2^32-1", frame(0xFFFFFFFF, rng.randbytes(10))),
    ]
    for t in types:
        # An empty FillRequest is a valid request (every field is optional).
        if t != MT["MT_FILL_REQUEST"]:
            out.append(("type %d empty payload" % t, frame(t, b"")))
        out.append(("type %d random payload" % t, frame(t, rng.randbytes(40))))
        out.append(("type %d unknown field" % t, frame(t, pb_encode([(99, b"x" * 8)]))))
    out.append(("pipelined random frames", b"".join(
        frame(rng.choice(types), rng.randbytes(rng.randint(0, 64))) for _ in range(50))))
    return out


def assert_answers(tb, name, port, tls):
    """A well-formed request of an unknown type gets Status BAD_REQUEST with
    the request_id echoed."""
    reply = wait_until(lambda: tb.request(port, 99, b"", tls=tls, request_id=4242),
                       what="%s to answer a valid frame" % name)
    mtype, payload, rid = reply
    assert mtype == MT["MT_STATUS"] and status_name(payload) == "BAD_REQUEST", reply
    assert rid == 4242, reply


def hammer(tb, name, port, tls, inputs, silent=False):
    """Send each input on its own connection; the daemon stays up and never
    answers with success (nor at all, if silent)."""
    for label, data in inputs:
        got = tb.raw(port, data, tls=tls, timeout=0.3, half_close=tls is None)
        if silent:
            assert not parse_frames(got), "%s answered %r: %r" % (name, label, got)
        for mtype, payload, _ in parse_frames(got):
            # Whatever comes back is a refusal, never success.
            if mtype in (MT["MT_STATUS"], MT["MT_AUTH_RESULT"]):
                assert status_name(payload) != "OK", (name, label, got)
            else:
                raise AssertionError("%s answered %r with frame type %s" % (name, label, mtype))
        tb.assert_running(name)


def fill_record(rng, m=2):
    keys = [rng.randbytes(32) for _ in range(m)]
    items = sorted((hashlib.sha256(k).hexdigest()[:10], k) for k in keys)
    chip = hashlib.sha256("-".join(k.hex() for _, k in items).encode()).hexdigest()
    return chip, pb_encode([(1, chip), (2, m), (3, 10), (4, 6)]
                           + [(5, pb_encode([(1, k), (2, c)])) for c, k in items]
                           + [(6, int(time.time() * 1000))])


@testbed(tsps=["tsp-a"])
def test_hostile_input_every_listener(tb):
    rng = random.Random(1234)
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    p = enrolled_probe(tb, ["tsp-a"], m=16)
    assert p.auth("tsp-a").status == "OK"
    assert p.m3("tsp-a").status == "OK"
    for d in ("filler", "registrar"):
        wait_until(lambda: tb.count(d, "outbox") == 0, what="%s outbox to drain" % d)
    stores = ("filler", "registrar", "tsp-a")
    before = {n: tb.dump(n) for n in stores}

    vehicle_types = [MT[t] for t in ("MT_M4", "MT_M3", "MT_SESSION_MSG", "MT_STATUS",
                                     "MT_FILL_RECORD", "MT_M2")]
    prov_types = [MT[t] for t in ("MT_FILL_RECORD", "MT_M2", "MT_STATUS", "MT_M4")]
    filler_types = [MT[t] for t in ("MT_FILL_REQUEST", "MT_REGISTER", "MT_FILL_RECORD")]
    reg_types = [MT[t] for t in ("MT_REGISTER", "MT_FILL_REQUEST", "MT_M2")]

    # The vehicle listener: plain TCP, so everything arrives at the framing layer.
    hammer(tb, "tsp-a", tb.port["tsp-a"], None, garbage(rng, vehicle_types))
    # Well-formed messages with forged or impossible content.
    forged = [
        ("M4 bad VIN", frame(MT["MT_M4"], pb_encode([(1, "../../etc/passwd"), (2, b"x")]))),
        ("M4 random ct", frame(MT["MT_M4"], pb_encode([(1, p.vin), (2, rng.randbytes(256))]))),
        ("M3 index past the chip", frame(MT["MT_M3"], pb_encode(
            [(1, p.vin), (2, 1 << 31), (4, rng.randbytes(12)), (5, rng.randbytes(48)),
             (6, rng.randbytes(12)), (7, rng.randbytes(40))]))),
        ("M3 random wrap", frame(MT["MT_M3"], pb_encode(
            [(1, p.vin), (2, 9), (4, rng.randbytes(12)), (5, rng.randbytes(48)),
             (6, rng.randbytes(12)), (7, rng.randbytes(40))]))),
        ("M3 short nonce", frame(MT["MT_M3"], pb_encode(
            [(1, p.vin), (2, 9), (4, b""), (5, b""), (6, b"1"), (7, b"")]))),
        ("M3 unknown code", frame(MT["MT_M3"], pb_encode(
            [(1, p.vin), (3, "zzzz"), (4, rng.randbytes(12)), (5, rng.randbytes(48)),
             (6, rng.randbytes(12)), (7, rng.randbytes(40))]))),
        ("SessionMsg forged", frame(MT["MT_SESSION_MSG"], pb_encode(
            [(1, p.vin), (2, 1000000), (3, rng.randbytes(64))]))),
        ("SessionMsg seq 0", frame(MT["MT_SESSION_MSG"], pb_encode(
            [(1, p.vin), (2, 0), (3, rng.randbytes(64))]))),
        ("SessionMsg unknown vehicle", frame(MT["MT_SESSION_MSG"], pb_encode(
            [(1, vin(998)), (2, 1), (3, rng.randbytes(64))]))),
        ("FillRecord on the vehicle port", frame(MT["MT_FILL_RECORD"], fill_record(rng)[1])),
    ]
    hammer(tb, "tsp-a", tb.port["tsp-a"], None, forged)
    assert_answers(tb, "tsp-a", tb.port["tsp-a"], None)

    # TLS listeners: garbage below TLS, TLS without a client certificate,
    # then garbage frames from a properly authenticated client.
    below_tls = [("random bytes", rng.randbytes(300)),
                 ("truncated ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                  + rng.randbytes(40)),
                 ("TLS record garbage", b"\x17\x03\x03\x00\x20" + rng.randbytes(32))]
    tls_listeners = [("filler", tb.port["filler"], "factory", filler_types),
                     ("registrar", tb.port["registrar"], "factory", reg_types),
                     ("tsp-a", tb.port["tsp-a/provision"], "filler", prov_types)]
    for name, port, cert, types in tls_listeners:
        hammer(tb, name, port, None, below_tls)
        hammer(tb, name, port, "", [("no client cert", frame(99, b"")),
                                    ("no client cert", frame(types[0], b""))], silent=True)
        inputs = [x for x in garbage(rng, types) if "random byte" not in x[0]]
        hammer(tb, name, port, cert, inputs)
        assert_answers(tb, name, port, cert)

    # Right frames from the wrong roles, and requests out of range.
    chip, record = fill_record(rng)
    m2 = pb_encode([(1, vin(997)), (2, chip), (3, rng.randbytes(600)), (4, 1)])
    hammer(tb, "tsp-a", tb.port["tsp-a/provision"], "factory",
           [("FillRecord from a factory cert", frame(MT["MT_FILL_RECORD"], record)),
            ("M2 from a factory cert", frame(MT["MT_M2"], m2))])
    hammer(tb, "tsp-a", tb.port["tsp-a/provision"], "intruder",
           [("FillRecord from a vehicle cert", frame(MT["MT_FILL_RECORD"], record)),
            ("M2 from a vehicle cert", frame(MT["MT_M2"], m2))])
    hammer(tb, "tsp-a", tb.port["tsp-a/provision"], "registrar",
           [("M2 with a garbage Prv", frame(MT["MT_M2"], pb_encode(
               [(1, "not a vin"), (2, "xyz"), (3, rng.randbytes(600)), (4, 1)])))])
    hammer(tb, "filler", tb.port["filler"], "intruder",
           [("FillRequest from a vehicle cert", frame(MT["MT_FILL_REQUEST"], b""))])
    hammer(tb, "filler", tb.port["filler"], "factory",
           [("FillRequest m=0", frame(MT["MT_FILL_REQUEST"], pb_encode([(1, 0)]))),
            ("FillRequest m=1", frame(MT["MT_FILL_REQUEST"], pb_encode([(1, 1)]))),
            ("FillRequest m=2^32-1", frame(MT["MT_FILL_REQUEST"],
                                           pb_encode([(1, 0xFFFFFFFF)])))])
    hammer(tb, "registrar", tb.port["registrar"], "factory",
           [("Register bad VIN", frame(MT["MT_REGISTER"], pb_encode(
               [(1, "IOQ" * 6), (2, "ab" * 32)]))),
            ("Register bad chip id", frame(MT["MT_REGISTER"], pb_encode(
                [(1, vin(996)), (2, "not hex")]))),
            ("Register without chip", frame(MT["MT_REGISTER"], pb_encode([(1, vin(995))])))])
    # qprobe delivers a garbage frame over mutual TLS as a registered filler.
    path = tb.write_frame_file("garbage", frame(MT["MT_FILL_RECORD"], rng.randbytes(80)))
    r = p.send("tsp-a", path, provision=True, cert="filler", wait_ms=1000)
    assert r.status in ("BAD_REQUEST", "NO_REPLY"), r

    for name, port, cert, _ in tls_listeners:
        assert_answers(tb, name, port, cert)
    tb.assert_running()
    after = {n: tb.dump(n) for n in stores}
    for n in stores:
        tb.assert_same_dump(before[n], after[n], "%s store after hostile input" % n)

    # Everything still works end to end.
    q = enrolled_probe(tb, ["tsp-a"], m=8)
    assert q.auth("tsp-a").status == "OK"
    assert q.m3("tsp-a").status == "OK"
    r = q.telemetry("tsp-a", 5)
    assert r.status == "OK" and r["acked"] == "5", r
    r = p.telemetry("tsp-a", 5)
    assert r.status == "OK" and r["acked"] == "5", r


@testbed(tsps=["tsp-a"])
def test_descriptor_exhaustion(tb):
    """More connections than tspd has descriptors: it pauses accepting,
    stays up, and serves again once they are gone."""
    tb.start_tsp("tsp-a", nofile=64)
    tb.start_filler()
    tb.start_registrar()
    p = enrolled_probe(tb, ["tsp-a"], m=8)
    socks = []
    try:
        for i in range(200):
            try:
                s = socket.create_connection(("127.0.0.1", tb.port["tsp-a"]), timeout=2)
            except OSError:
                break	# the listen backlog is full while tspd pauses accepting
            socks.append(s)
            try:
                s.sendall(struct.pack(">I", 50) + b"\x08\x01")
            except OSError:
                pass
        assert len(socks) > 64, "only %d connections" % len(socks)
        wait_until(lambda: "accept" in tb.log("tsp-a"), what="tsp-a to log the accept failure")
        tb.assert_running("tsp-a")
    finally:
        for s in socks:
            s.close()
    assert_answers(tb, "tsp-a", tb.port["tsp-a"], None)
    assert p.auth("tsp-a").status == "OK"
    assert p.m3("tsp-a").status == "OK"
