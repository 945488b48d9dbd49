"""Operations of tspd, schedd and vehicled with real daemons on loopback:
what their admin endpoints say (/metrics, /status) checked against what
happened, as their SQLite stores and the vehicle's chip store record it,
and SIGHUP reloads.

- A drive A -> B -> C with two handovers, a trip ending in A that
  declines its handover offer, then deliberately bad input at
  tsp-a (a replayed M4, a stale M4, an M4 of an unknown vehicle, a
  replayed session message, a broken frame): handover counters and
  latency histograms, messages by type, telemetry stored, refusals by
  reason, the gauges and every /status view equal the stores; no view or
  metric holds key material; handovers in flight show up at the target
  TSP and at the scheduler.
- Reload of tspd, schedd and vehicled: a good new configuration takes
  effect (auth_skew and auth_fail; handover_timeout; telemetry_interval),
  one with a syntax error is refused and the old settings keep working,
  and a setting that needs a restart is logged as such and kept.
"""

import os
import re
import signal
import subprocess
import time

from harness import (BIN, MT, enrolled_probe, metric, testbed, vin,
                     wait_until)
from test_drive import ROUTE_ABC, counter, crossings, drive_opts
from test_handover import start_clouds
from test_handover_forgery import handover_as_tspa
from test_schedd import MT_KEY_REPLY, Tsp, key_request, new_hid
from test_schedd import start as start_sched_qkd

NO_REPLY_MS = 1500


# ---- helpers ---------------------------------------------------------------

def assert_no_secrets(tb, name, text):
    """No chip key, K1, Prv or CK2 the bed knows of appears in text."""
    tb.sample_secrets()
    hits = tb.secrets.find(text)
    assert hits == [], "%s exposes key material: %r" % (name, hits[:3])


def scrape(tb, name):
    """Metrics of name, after checking the raw text for key material."""
    code, body = tb.admin_get(name, "/metrics")
    assert code == 200, (name, code)
    assert_no_secrets(tb, name + " /metrics", body)
    return tb.metrics(name)


def status(tb, name, what=None):
    """/status (or /status/<what>) of name, checked for key material."""
    code, body = tb.admin_get(name, "/status" + ("/" + what if what else ""))
    assert code == 200, (name, what, code, body)
    assert_no_secrets(tb, "%s /status/%s" % (name, what or ""), body)
    return tb.status(name, what)


def refusals(samples):
    """{reason: count} of qroam_refusals_total."""
    out = {}
    for (name, labels), v in samples.items():
        if name == "qroam_refusals_total":
            out[dict(labels)["reason"]] = v
    return out


def delta(after, before):
    keys = set(after) | set(before)
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys
            if after.get(k, 0) != before.get(k, 0)}


def set_conf(tb, name, **changes):
    """Rewrite directives of name's configuration file; a value of None
    removes the directive, a new one is appended."""
    path = tb.daemons[name].conf
    with open(path) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        word = line.split(" ", 1)[0]
        if word in changes:
            v = changes.pop(word)
            if v is not None:
                out.append("%s %s" % (word, v))
            continue
        out.append(line)
    out += ["%s %s" % (k, v) for k, v in changes.items() if v is not None]
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def append_conf(tb, name, line):
    with open(tb.daemons[name].conf, "a") as f:
        f.write(line + "\n")


def drop_conf_line(tb, name, line):
    path = tb.daemons[name].conf
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if l != line]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def reload(tb, name, expect):
    """SIGHUP name and wait for a log line matching expect after it."""
    mark = tb.log_mark(name)
    tb.signal(name, signal.SIGHUP)
    m = tb.wait_log(name, expect, since=mark)
    tb.assert_running(name)
    return tb.log_since(name, mark), m


def check_conf(tb, name):
    """`prog -n -f conf`: (exit code, stdout + stderr)."""
    d = tb.daemons[name]
    p = subprocess.run([os.path.join(BIN, d.prog), "-n", "-f", d.conf],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=tb.env, timeout=30)
    return p.returncode, p.stdout.decode(errors="replace")


# ---- store views -----------------------------------------------------------

def store_sessions(tb, t):
    return [dict(zip(("vehicle_id", "chip_id", "key_index", "rx_seq", "tx_seq",
                      "opened_ms"), r))
            for r in tb.query(t, "SELECT vehicle_id, chip_id, key_index, rx_seq, "
                                 "tx_seq, opened_ms FROM sessions ORDER BY vehicle_id")]


def store_vehicles(tb, t):
    rows = tb.query(t, "SELECT r.vehicle_id, r.chip_id, r.epoch, "
                       "coalesce(k.next_index, 0), a.vehicle_id IS NOT NULL, a.via, "
                       "s.vehicle_id IS NOT NULL FROM registrations r "
                       "LEFT JOIN keypos k ON k.chip_id=r.chip_id "
                       "LEFT JOIN auth a ON a.vehicle_id=r.vehicle_id "
                       "LEFT JOIN sessions s ON s.vehicle_id=r.vehicle_id "
                       "ORDER BY r.vehicle_id")
    return [{"vehicle_id": r[0], "chip_id": r[1], "epoch": r[2], "next_index": r[3],
             "authenticated": bool(r[4]), "via": r[5], "session": bool(r[6])}
            for r in rows]


def ho_count(tb, t, role, state):
    return tb.count(t, "handovers", "role=? AND state=?", (role, state))


def check_tsp(tb, t):
    """tsp t at rest: its metrics and /status views equal its store."""
    m = scrape(tb, t)
    ok, failed = ho_count(tb, t, "out", "done"), ho_count(tb, t, "out", "failed")
    assert metric(m, "qroam_handovers_total", result="ok") == ok, t
    assert metric(m, "qroam_handovers_total", result="failed") == failed, t
    assert metric(m, "qroam_handover_seconds_count") == ok + failed, t
    assert metric(m, "qroam_handovers_target_total", result="ok") == \
        ho_count(tb, t, "in", "done"), t
    assert metric(m, "qroam_telemetry_stored_total") == \
        tb.count(t, "telemetry", "tsp_id=?", (t,)), t
    # Every M3 here was accepted and stored its D1 as seq 0.
    assert metric(m, "qroam_messages_received_total", type="MT_M3") == \
        tb.count(t, "telemetry", "tsp_id=? AND seq=0", (t,)), t
    assert metric(m, "qroam_messages_received_total", type="MT_SESSION_MSG") >= \
        tb.count(t, "telemetry", "tsp_id=? AND seq>0", (t,)), t
    assert metric(m, "qroam_sessions_open") == tb.count(t, "sessions"), t
    assert metric(m, "qroam_vehicles_registered") == tb.count(t, "registrations"), t
    assert metric(m, "qroam_vehicles_authenticated") == tb.count(t, "auth"), t
    assert metric(m, "qroam_handovers_in_flight") == 0, t
    assert metric(m, "qroam_ck2_bindings") == 0, t

    st = status(tb, t)
    assert st["daemon"] == "tspd" and st["id"] == t, st
    assert st["vehicles"] == tb.count(t, "registrations"), (t, st)
    assert st["authenticated"] == tb.count(t, "auth"), (t, st)
    assert st["sessions"] == tb.count(t, "sessions"), (t, st)
    assert st["fills"] == tb.count(t, "fills"), (t, st)
    assert st["handovers_in_flight"] == 0 and st["ck2_bindings"] == 0, (t, st)
    assert status(tb, t, "sessions") == store_sessions(tb, t), t
    assert status(tb, t, "vehicles") == store_vehicles(tb, t), t
    assert status(tb, t, "handovers") == [], t
    code, _ = tb.admin_get(t, "/status/keys")
    assert code == 404, code
    return m


def check_vehicle(tb, v):
    """A running vehicled: its metrics and /status between two reads of
    the chip store's counters, and its crossings."""
    def counters():
        return counter(tb, v, "telemetry_sent"), counter(tb, v, "telemetry_acked")
    sent0, acked0 = counters()
    st = status(tb, v)
    m = scrape(tb, v)
    sent1, acked1 = counters()
    assert sent0 <= st["telemetry_sent"] <= metric(m, "qroam_telemetry_sent_total") <= sent1
    assert acked0 <= st["telemetry_acked"] <= metric(m, "qroam_telemetry_acked_total") <= acked1
    assert st["daemon"] == "vehicled" and st["vehicle_id"] == v, st
    assert st["region"] == "tsp-c" and st["session"] is True, st
    assert st["chip_id"] == tb.scalar(v, "SELECT chip_id FROM chip"), st
    assert st["handovers"] == counter(tb, v, "handovers") == 2, st
    assert metric(m, "qroam_handover_gap_seconds_count") == len(crossings(tb, v)) == 2
    left = tb.scalar(v, "SELECT count(*) FROM chip_keys WHERE destroyed=0 AND idx > "
                        "(SELECT coalesce(max(idx), -1) FROM chip_keys WHERE destroyed)")
    assert st["keys_left"] == left == metric(m, "qroam_chip_keys_left"), (st, left)


def bad_input_at_a(tb, p):
    """Deliberately bad input at tsp-a, each refused without a Status
    (auth_fail drop) or by the I/O layer; the refusal reasons expected."""
    saved = tb.path("frames", "m4-replayed")
    assert p.auth("tsp-a", save=saved).status == "OK"
    assert p.send("tsp-a", saved, wait_ms=NO_REPLY_MS).status == "NO_REPLY"
    assert p.auth("tsp-a", time_offset=-120000, wait_ms=NO_REPLY_MS).status == "NO_REPLY"
    assert p.auth("tsp-a", vid=vin(979), wait_ms=NO_REPLY_MS).status == "NO_REPLY"
    assert p.m3("tsp-a").status == "OK"
    r = p.telemetry("tsp-a", 3, replay_last=True, wait_ms=NO_REPLY_MS)
    assert r.status == "OK" and r["replay"] == "refused", r
    # A frame header announcing more than max_frame bytes.
    tb.raw(tb.port["tsp-a"], b"\xff\xff\xff\xff" + b"\x00" * 12)
    return {"nonce_replayed": 1, "auth_stale": 1, "auth_failed": 1,
            "seq_replay": 1, "framing": 1}


# ---- metrics and status during the handover scenario ------------------------

@testbed(tsps=["tsp-a", "tsp-b", "tsp-c"])
def test_metrics_and_status_match_the_stores(tb):
    """A drive through three regions, bad input, and handovers in flight:
    every metric and /status view of the TSPs, schedd and the vehicle is
    what the stores record."""
    start_clouds(tb)
    v, stays = vin(970), vin(971)
    tb.start_vehicle(v, route=ROUTE_ABC, **drive_opts(session_rekey=0))
    # A trip ending in tsp-a: its handover offer is declined.
    tb.start_vehicle(stays, route=["30.0500,120.0500", "30.0500,120.0900"],
                     **drive_opts())
    tb.wait_log(stays, r"service declined")
    wait_until(lambda: tb.count("tsp-a", "sessions", "vehicle_id=?", (stays,)) == 0,
               what="the declined session to end")
    tb.stop(stays)
    assert metric(scrape(tb, "tsp-a"), "qroam_handovers_total", result="declined") == 1
    wait_until(lambda: len(crossings(tb, v)) >= 2, timeout=90,
               what="two crossings of %s" % v)
    wait_until(lambda: tb.count("tsp-c", "telemetry", "vehicle_id=? AND "
                                "tsp_id='tsp-c' AND seq>0", (v,)) >= 3,
               what="telemetry of %s at tsp-c" % v)
    check_vehicle(tb, v)
    tb.stop(v)

    p = enrolled_probe(tb)
    before = refusals(scrape(tb, "tsp-a"))
    expected = bad_input_at_a(tb, p)
    wait_until(lambda: delta(refusals(tb.metrics("tsp-a")), before) == expected,
               timeout=10, what="the refusals of the bad input at tsp-a")

    ms = {t: check_tsp(tb, t) for t in tb.tsps}
    # Two handovers, each counted once at its source and once at its target.
    assert [metric(ms[t], "qroam_handovers_total", result="ok") for t in tb.tsps] == \
        [1, 1, 0]
    assert [metric(ms[t], "qroam_handovers_target_total", result="ok")
            for t in tb.tsps] == [0, 1, 1]
    # F3 only at tsp-a: none of the vehicle's M4s reached B or C.
    assert metric(ms["tsp-b"], "qroam_messages_received_total", type="MT_M4") == 0
    assert metric(ms["tsp-c"], "qroam_messages_received_total", type="MT_M4") == 0
    assert metric(ms["tsp-a"], "qroam_messages_received_total", type="MT_M4") >= 5

    sm = scrape(tb, "sched")
    done = tb.count("sched", "handovers", "state='done'")
    assert done == 2
    assert metric(sm, "qroam_handovers_total", result="ok") == done
    assert metric(sm, "qroam_handovers_total", result="failed") == \
        tb.count("sched", "handovers", "state='failed'") == 0
    assert metric(sm, "qroam_handover_seconds_count") == done
    assert metric(sm, "qroam_handovers_in_flight") == 0
    assert metric(sm, "qroam_messages_received_total", type="MT_KEY_REQUEST") == 2 * done
    assert metric(sm, "qroam_messages_received_total", type="MT_ACCESS_REQUEST") == done
    assert metric(sm, "qroam_messages_sent_total", type="MT_M7") == done
    st = status(tb, "sched")
    assert (st["handovers_in_flight"], st["handovers_done"], st["handovers_failed"]) == \
        (0, 2, 0), st
    assert status(tb, "sched", "handovers") == []

    # In flight: tsp-b waits for the M8 of a handover the test started as
    # tsp-a; the scheduler waits for the A2 of another.
    hid = new_hid()
    handover_as_tspa(tb, hid)
    created = tb.scalar("tsp-b", "SELECT created_ms FROM handovers WHERE handover_id=?",
                        (hid,))
    assert status(tb, "tsp-b", "handovers") == [
        {"handover_id": hid, "vehicle_id": None, "role": "target", "peer": "tsp-a",
         "state": "bound", "started_ms": created}]
    st = status(tb, "tsp-b")
    assert st["handovers_in_flight"] == 1 and st["ck2_bindings"] == 1, st
    mb = scrape(tb, "tsp-b")
    assert metric(mb, "qroam_handovers_in_flight") == 1
    assert metric(mb, "qroam_ck2_bindings") == 1
    hid2 = new_hid()
    tspa = Tsp(tb, "tsp-a")
    try:
        reply = tspa.call(MT["MT_KEY_REQUEST"], key_request("tsp-a", hid2), 1)
        assert reply is not None and reply[0] == MT_KEY_REPLY, reply
        created = tb.scalar("sched", "SELECT created_ms FROM handovers "
                                     "WHERE handover_id=?", (hid2,))
        assert status(tb, "sched", "handovers") == [
            {"handover_id": hid2, "vehicle_id": None, "from": "tsp-a", "to": None,
             "state": "ck1", "started_ms": created}]
        assert status(tb, "sched")["handovers_in_flight"] == 1
        assert metric(scrape(tb, "sched"), "qroam_handovers_in_flight") == 1
    finally:
        tspa.close()
    assert metric(tb.metrics("sched"), "qroam_handovers_total", result="ok") == 3


# ---- reload ----------------------------------------------------------------

@testbed(tsps=["tsp-a"])
def test_tspd_reload(tb):
    """auth_skew and auth_fail change on SIGHUP; a configuration with a
    syntax error is refused and the old settings keep working; a store
    path change is logged as needing a restart and the old store stays in
    use."""
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    p = enrolled_probe(tb)
    # Defaults: 30 s of skew, failures dropped.
    assert p.auth("tsp-a", time_offset=-120000, wait_ms=NO_REPLY_MS).status == "NO_REPLY"

    set_conf(tb, "tsp-a", auth_skew="300s", auth_fail="reply", verbose=1)
    log, _ = reload(tb, "tsp-a", r"reloaded: ")
    assert re.search(r"reloaded: verbose 1, auth_skew 300000ms, auth_fail reply", log), log
    assert "takes effect on restart" not in log, log
    assert p.auth("tsp-a", time_offset=-120000).status == "OK"
    assert p.auth("tsp-a", time_offset=-600000).status == "STALE"

    bad = "auth_skew soon"
    append_conf(tb, "tsp-a", bad)
    code, out = check_conf(tb, "tsp-a")
    assert code == 1 and re.search(r"tsp-a\.conf:\d+: auth_skew: bad duration", out), out
    before = tb.dump("tsp-a", exclude=("auth_nonces", "auth"))
    log, _ = reload(tb, "tsp-a", r"reload: configuration has errors, keeping the old one")
    assert re.search(r"tsp-a\.conf:\d+: auth_skew: bad duration", log), log
    assert "reloaded:" not in log, log
    tb.assert_same_dump(before, tb.dump("tsp-a", exclude=("auth_nonces", "auth")),
                        "tsp-a's store on a refused reload")
    # The settings of the last good reload still apply.
    assert p.auth("tsp-a", time_offset=-120000).status == "OK"
    assert p.auth("tsp-a", time_offset=-600000).status == "STALE"

    drop_conf_line(tb, "tsp-a", bad)
    store = tb.daemons["tsp-a"].store
    set_conf(tb, "tsp-a", store=store + ".new", idle_timeout="60s", auth_fail="drop")
    log, _ = reload(tb, "tsp-a", r"reloaded: ")
    assert "reload: store changed; it takes effect on restart" in log, log
    assert "reload: idle_timeout changed; it takes effect on restart" in log, log
    assert "settings that need a restart are kept" in log, log
    assert p.auth("tsp-a", time_offset=-600000, wait_ms=NO_REPLY_MS).status == "NO_REPLY"
    assert p.auth("tsp-a").status == "OK"
    assert not os.path.exists(store + ".new")
    assert tb.count("tsp-a", "auth", "vehicle_id=?", (p.vin,)) == 1
    set_conf(tb, "tsp-a", store=store)

    # A region moved in the topology: parsed, logged, kept for a restart.
    with open(tb.topology) as f:
        topo = f.read()
    with open(tb.topology, "w") as f:
        f.write(topo.replace("region tsp-a 30.00,120.00", "region tsp-a 29.90,120.00"))
    log, _ = reload(tb, "tsp-a", r"reloaded: ")
    assert "reload: the contents of the topology changed; they take effect " \
        "on restart" in log, log
    with open(tb.topology, "w") as f:
        f.write(topo)


@testbed(tsps=["tsp-a", "tsp-b"])
def test_schedd_reload(tb):
    """handover_timeout changes on SIGHUP (an A1 without A2 fails after
    the new timeout); a configuration with a syntax error is refused and
    the old timeout stays; a store path change needs a restart."""
    start_sched_qkd(tb, handover_timeout="30s")

    def a1_expiry():
        hid = new_hid()
        tspa = Tsp(tb, "tsp-a")
        try:
            reply = tspa.call(MT["MT_KEY_REQUEST"], key_request("tsp-a", hid), 1)
            assert reply is not None and reply[0] == MT_KEY_REPLY, reply
        finally:
            tspa.close()
        r = tb.query("sched", "SELECT expires_ms - created_ms FROM handovers "
                              "WHERE handover_id=?", (hid,))
        return hid, r[0][0]

    assert a1_expiry()[1] == 30000
    set_conf(tb, "sched", handover_timeout="1s")
    log, _ = reload(tb, "sched", r"reloaded: ")
    assert "handover_timeout 1000ms" in log, log
    hid, ttl = a1_expiry()
    assert ttl == 1000
    wait_until(lambda: tb.query("sched", "SELECT state, reason FROM handovers WHERE "
                                         "handover_id=?", (hid,)) ==
               [("failed", "handover timed out")], timeout=10,
               what="the handover to time out after 1 s")

    bad = "handover_timeout"
    append_conf(tb, "sched", bad)
    assert check_conf(tb, "sched")[0] == 1
    log, _ = reload(tb, "sched", r"reload: configuration has errors, keeping the old one")
    assert re.search(r"sched\.conf:\d+: ", log), log
    assert a1_expiry()[1] == 1000

    drop_conf_line(tb, "sched", bad)
    store = tb.daemons["sched"].store
    set_conf(tb, "sched", store=store + ".new", handover_timeout="2s")
    log, _ = reload(tb, "sched", r"reloaded: ")
    assert "reload: store changed; it takes effect on restart" in log, log
    assert a1_expiry()[1] == 2000
    assert not os.path.exists(store + ".new")
    set_conf(tb, "sched", store=store)


@testbed(tsps=["tsp-a"])
def test_vehicled_reload(tb):
    """telemetry_interval changes on SIGHUP (the telemetry rate follows);
    a configuration with a syntax error is refused and the rate stays; a
    route change needs a restart."""
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    v = vin(975)
    tb.start_vehicle(v, telemetry_interval="2s", retransmit="500ms")
    wait_until(lambda: status(tb, v)["session"], what="the session of %s" % v)

    def rate(seconds=3.0):
        n0 = status(tb, v)["telemetry_sent"]
        time.sleep(seconds)
        return status(tb, v)["telemetry_sent"] - n0

    assert rate() <= 3
    set_conf(tb, v, telemetry_interval="100ms")
    log, _ = reload(tb, v, r"reloaded: ")
    assert "telemetry_interval 100ms" in log, log
    assert rate() >= 10

    bad = "telemetry_interval often"
    append_conf(tb, v, bad)
    assert check_conf(tb, v)[0] == 1
    log, _ = reload(tb, v, r"reload: configuration has errors, keeping the old one")
    assert re.search(r"%s\.conf:\d+: telemetry_interval: bad duration" % v, log), log
    assert rate() >= 10
    tb.assert_running(v)

    drop_conf_line(tb, v, bad)
    set_conf(tb, v, route=" ".join(tb.route_in("tsp-a")[::-1]))
    log, _ = reload(tb, v, r"reloaded: ")
    assert "reload: route changed; it takes effect on restart" in log, log
    m = scrape(tb, v)
    assert metric(m, "qroam_telemetry_sent_total") >= 20


@testbed(tsps=["tsp-a"])
def test_vehicled_fleet_status(tb):
    """fleet 3: /status sums the vehicles, /status/vehicles lists each in
    VIN order with its own chip, and the metrics count all of them."""
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar()
    base = vin(980)
    d = tb.start_vehicle(base, fleet=3, fleet_spacing="1s", retransmit="500ms",
                         telemetry_interval="200ms")
    vins = [base[:-1] + str(i) for i in range(3)]
    wait_until(lambda: all(e["session"] and e["telemetry_acked"] > 0
                           for e in status(tb, base, "vehicles")),
               what="telemetry of the whole fleet")
    # Hold the telemetry (a reload to a long interval) so the views agree.
    set_conf(tb, base, telemetry_interval="1h")
    reload(tb, base, r"reloaded: ")

    def quiet():
        a, b = status(tb, base), status(tb, base)
        return a == b and a["telemetry_sent"] == a["telemetry_acked"] and a
    st = wait_until(quiet, what="the fleet's telemetry to settle")
    lst = status(tb, base, "vehicles")
    m = scrape(tb, base)
    assert [e["vehicle_id"] for e in lst] == vins, lst
    for i, e in enumerate(lst):
        store = "%s.%d" % (d.store, i)
        assert e["chip_id"] == tb.scalar(store, "SELECT chip_id FROM chip"), e
        assert e["region"] == "tsp-a" and e["session"] is True, e
        assert e["telemetry_sent"] == counter(tb, store, "telemetry_sent"), e
    assert st["vehicle_id"] == base and st["vehicles"] == 3, st
    for k in ("telemetry_sent", "telemetry_acked", "keys_left", "handovers"):
        assert st[k] == sum(e[k] for e in lst), (k, st, lst)
    assert metric(m, "qroam_telemetry_sent_total") == st["telemetry_sent"] > 0
    assert metric(m, "qroam_telemetry_acked_total") == st["telemetry_acked"]
    assert metric(m, "qroam_chip_keys_left") == st["keys_left"]
