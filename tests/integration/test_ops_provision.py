"""Operations of fillerd, registrard and qkdd: SIGHUP reloads and the admin
endpoint.

A reload with a good configuration changes what the daemon does next (the
m of the next fill, the key size of the next registration, a QKD link's
rate and eavesdropper); a reload with a bad one is refused with
`reload: configuration has errors, keeping the old one` and the old
settings keep working.  /status and /metrics, scraped after real traffic,
agree with the stores and with what the test did: fills and registrations
counted, the outbox growing while a TSP is down and draining when it comes
back, pool levels falling by the keys taken, keys delivered, refusals
counted by reason.  Neither ever shows key material."""

import json
import re
import signal

from cryptography.hazmat.primitives.serialization import load_der_public_key

from harness import enrolled_probe, metric, wait_until
from test_qkdd import call, dec, enc, error, keys_of

RELOAD_REFUSED = r"reload: configuration has errors, keeping the old one"


def set_conf(tb, name, drop=(), **directives):
    """Rewrite name's configuration file: each directive given replaces the
    lines of that directive (appended if absent; a list gives several
    lines), directives in drop are removed."""
    path = tb.daemons[name].conf
    with open(path) as f:
        lines = f.read().splitlines()
    replaced = set(directives) | set(drop)
    out = [l for l in lines if not l.split() or l.split()[0] not in replaced]
    for k, v in directives.items():
        for one in (v if isinstance(v, list) else [v]):
            out.append("%s %s" % (k, one))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def reload(tb, name, expect=r"reloaded: "):
    """SIGHUP name and wait for the log line that answers it."""
    mark = tb.log_mark(name)
    tb.signal(name, signal.SIGHUP)
    tb.wait_log(name, expect, since=mark)
    tb.assert_running(name)
    return tb.log_since(name, mark)


def outbox(tb, name):
    """/status/outbox of name as {tsp: pending}."""
    return {e["dest"]: e["pending"] for e in tb.status(name, "outbox")}


def no_secrets(tb, name, views=()):
    """/status, the given /status views and /metrics of name hold no key
    material the test bed knows of."""
    tb.sample_secrets()
    texts = [tb.admin_get(name, "/status")[1], tb.admin_get(name, "/metrics")[1]]
    texts += [tb.admin_get(name, "/status/" + v)[1] for v in views]
    for text in texts:
        hits = tb.secrets.find(text)
        assert not hits, (name, hits[:3])


def test_filler_reload_and_status(tb):
    tb.start_tsp("tsp-a")
    tb.start_filler(m=16)
    p = tb.probe()
    assert int(p.fill()["m"]) == 16

    # A good reload: the next fill takes the new default m; n and k too.
    set_conf(tb, "filler", m=24, k=12, n=7)
    reload(tb, "filler", r"reloaded: m=24 k=12 n=7")
    q = tb.probe()
    q.fill()
    assert q.chip()[1:] == (24, 12, 7), q.chip()

    # Bad reloads change nothing: a value out of range (reported with its
    # line), n above k, a topology that does not parse.
    conf = tb.daemons["filler"].conf
    with open(conf) as f:
        good = f.read()
    for bad, why in (({"m": 1}, r"%s:\d+: m must be" % re.escape(conf)),
                     ({"n": 13}, r"%s:\d+: n \(13\) must not exceed k" % re.escape(conf)),
                     ({"topology": tb.path("conf", "nonexistent")}, r"No such file")):
        with open(conf, "w") as f:
            f.write(good)
        set_conf(tb, "filler", **bad)
        text = reload(tb, "filler", RELOAD_REFUSED)
        assert re.search(why, text), (why, text)
        r = tb.probe()
        r.fill()
        assert r.chip()[1:] == (24, 12, 7), r.chip()

    # A restart-only change is logged and the rest still applies.
    with open(conf, "w") as f:
        f.write(good)
    set_conf(tb, "filler", m=20, store=tb.path("stores", "other.db"))
    text = reload(tb, "filler", r"reloaded: m=20")
    assert "store" in text and "restart" in text, text
    set_conf(tb, "filler", store=tb.daemons["filler"].store)
    reload(tb, "filler", r"reloaded: m=20")

    # tsp-b was never started: its copies wait in the outbox, tsp-a's are
    # delivered.  Five fills so far.
    wait_until(lambda: outbox(tb, "filler") == {"tsp-a": 0, "tsp-b": 5},
               what="outbox of 5 for tsp-b only")
    st = tb.status("filler")
    assert st["daemon"] == "fillerd" and st["id"] == "filler", st
    assert st["fills"] == tb.count("filler", "fills") == 5, st
    assert st["outbox"] == 5, st
    s = tb.metrics("filler")
    assert metric(s, "qroam_fills_total") == 5, s
    assert metric(s, "qroam_outbox_depth", dest="tsp-b") == 5
    assert metric(s, "qroam_outbox_depth", dest="tsp-a") == 0
    assert metric(s, "qroam_messages_received_total", type="MT_FILL_REQUEST") == 5

    # A certificate of another role is refused with AUTH_FAILED, counted.
    bad = tb.probe()
    r = bad.run("fill", cert="intruder")
    assert r.status == "AUTH_FAILED", r
    s = tb.metrics("filler")
    assert metric(s, "qroam_refusals_total", reason="AUTH_FAILED") == 1, s
    assert metric(s, "qroam_fills_total") == 5

    # tsp-b comes up: the outbox drains to zero.
    tb.start_tsp("tsp-b")
    wait_until(lambda: tb.status("filler")["outbox"] == 0, what="outbox drained")
    assert tb.count("tsp-b", "fills") == 5
    assert outbox(tb, "filler") == {"tsp-a": 0, "tsp-b": 0}
    assert metric(tb.metrics("filler"), "qroam_outbox_depth", dest="tsp-b") == 0
    no_secrets(tb, "filler", ["outbox"])


def rsa_bits(tb, vin):
    pbv = tb.scalar("registrar", "SELECT pbv FROM registrations WHERE vehicle_id=?", (vin,))
    return load_der_public_key(bytes(pbv)).key_size


def test_registrar_reload_and_status(tb):
    tb.start_tsp("tsp-a")
    tb.start_filler()
    tb.start_registrar(rsa_bits=2048)
    p = enrolled_probe(tb, ["tsp-a"], m=8)
    assert rsa_bits(tb, p.vin) == 2048

    set_conf(tb, "registrar", rsa_bits=3072)
    reload(tb, "registrar", r"reloaded: rsa_bits=3072")
    q = enrolled_probe(tb, ["tsp-a"], m=8)
    assert rsa_bits(tb, q.vin) == 3072

    conf = tb.daemons["registrar"].conf
    with open(conf) as f:
        good = f.read()
    for bad in ({"rsa_bits": 1024}, {"registration_limit": 5}, {"verbose": 12}):
        set_conf(tb, "registrar", **bad)
        reload(tb, "registrar", RELOAD_REFUSED)
        with open(conf, "w") as f:
            f.write(good)
    r = enrolled_probe(tb, ["tsp-a"], m=8)
    assert rsa_bits(tb, r.vin) == 3072

    # Refusals answered with a Status are counted by status name.
    dup = tb.probe(p.vin, store=tb.path("probes", "dup.db"))
    dup.fill(m=8)
    assert dup.register().status == "DUPLICATE_REGISTRATION"
    assert dup.register(rebind=True).status == "AUTH_FAILED"
    # An operator's rebind counts as kind rebind.
    assert dup.register(rebind=True, cert="operator").status == "OK"

    # Four registrations and a rebind delivered to tsp-a; tsp-b has never
    # run: they wait for it.  Then tsp-a goes down too.
    wait_until(lambda: outbox(tb, "registrar")["tsp-a"] == 0,
               what="registrations delivered to tsp-a")
    tb.stop("tsp-a")
    s = tb.probe()
    s.fill(m=8)
    assert s.register().status == "OK"
    wait_until(lambda: outbox(tb, "registrar") == {"tsp-a": 1, "tsp-b": 5},
               what="outbox backlog while both TSPs are down")
    st = tb.status("registrar")
    assert st["daemon"] == "registrard" and st["id"] == "registrar", st
    assert st["registrations"] == tb.count("registrar", "registrations") == 4, st
    assert st["outbox"] == 6, st
    m = tb.metrics("registrar")
    assert metric(m, "qroam_registrations_total", kind="new") == 4, m
    assert metric(m, "qroam_registrations_total", kind="rebind") == 1, m
    assert metric(m, "qroam_refusals_total", reason="DUPLICATE_REGISTRATION") == 1, m
    assert metric(m, "qroam_refusals_total", reason="AUTH_FAILED") == 1, m
    assert metric(m, "qroam_messages_received_total", type="MT_REGISTER") == 7, m
    assert metric(m, "qroam_outbox_depth", dest="tsp-a") == 1
    assert metric(m, "qroam_outbox_depth", dest="tsp-b") == 5

    tb.start("tsp-a")
    tb.start_tsp("tsp-b")
    wait_until(lambda: tb.status("registrar")["outbox"] == 0, what="outbox drained")
    assert tb.count("tsp-b", "registrations") == 4
    no_secrets(tb, "registrar", ["outbox"])


def take(tb, master, slave):
    """enc_keys for one key: the HTTP status; keys got are noted as secrets."""
    st, js = enc(tb, master, slave)
    if st == 200:
        keys_of(tb, st, js)
    return st


def pools(tb):
    return {p["link"]: p for p in tb.status("qkd", "pools")}


def test_qkd_reload_status_and_metrics(tb):
    tb.start_qkd(links=["sched tsp-a pool 20", "tsp-b sched pool 10"])
    wait_until(lambda: [p["keys"] for p in pools(tb).values()] == [20, 10],
               what="both pools full")
    st = tb.status("qkd")
    assert st["daemon"] == "qkdd" and st["links"] == 2 and st["pool_keys"] == 30, st
    pl = tb.status("qkd", "pools")
    assert [p["link"] for p in pl] == ["sched/tsp-a", "sched/tsp-b"], pl
    assert pl[0] == {"link": "sched/tsp-a", "sae_a": "sched", "sae_b": "tsp-a",
                     "keys": 20, "capacity": 20, "key_bits": 256,
                     "eavesdropper": False, "qber": pl[0]["qber"],
                     "qber_bound": pl[0]["qber_bound"], "state": "up",
                     "key_rate_bps": pl[0]["key_rate_bps"], "aborting": False,
                     "qber_max": 0.11, "aborts": 0}, pl
    assert 0.0 <= pl[0]["qber"] < 0.05, pl
    assert pl[0]["qber"] < pl[0]["qber_bound"] < 0.05, pl
    assert pl[0]["key_rate_bps"] >= 0.0, pl

    # Reload: stop sched/tsp-a's production, put Eve on sched/tsp-b, allow
    # fewer keys per request.  The pools keep their keys.
    links = ["sched tsp-a pool 20 rate 0", "tsp-b sched pool 10 eavesdropper 1"]
    set_conf(tb, "qkd", link=links, max_key_per_request=4)
    text = reload(tb, "qkd", r"reloaded: 2 links changed, max_key_per_request 4")
    assert "link sched/tsp-a: rate 0 bits/s" in text, text
    link_a = call(tb, "operator", "GET", "/admin/v1/links/sched/tsp-a")[1]
    assert link_a["rate"] == 0 and link_a["stored_key_count"] == 20, link_a
    wait_until(lambda: call(tb, "operator", "GET", "/admin/v1/links/sched/tsp-b")[1]
               ["state"] == "aborting", what="Eve noticed")
    assert take(tb, "sched", "tsp-b") == 503
    assert pools(tb)["sched/tsp-b"]["eavesdropper"] is True
    error(*enc(tb, "sched", "tsp-a", number=5), 400, "max_key_per_request")

    # Three keys reserved, two of them delivered: the pool falls by three
    # and stays there (rate 0), the delivery is counted.
    got = keys_of(tb, *enc(tb, "sched", "tsp-a", number=3))
    assert pools(tb)["sched/tsp-a"]["keys"] == 17
    ids = sorted(got)
    keys_of(tb, *dec(tb, "tsp-a", "sched", ids[:2]))
    error(*dec(tb, "tsp-b", "sched", ids[2:]), 401)
    error(*call(tb, "sched", "GET", "/api/v1/keys/tsp-a/nothing"), 404)
    error(*enc(tb, "sched", "tsp-a", size=7), 400)
    # A client without a certificate fails the handshake: counted too.
    before = metric(tb.metrics("qkd"), "qroam_refusals_total", reason="tls_handshake")
    assert tb.raw(tb.port["qkd"], b"GET /api/v1/keys/tsp-a/status HTTP/1.1\r\n\r\n",
                  tls="") == b""
    wait_until(lambda: metric(tb.metrics("qkd"), "qroam_refusals_total",
                              reason="tls_handshake") == before + 1,
               what="the refused handshake counted")

    # A bad reload changes nothing, not even the settings it would change.
    set_conf(tb, "qkd", link=["sched tsp-a pool 20 rate 100000",
                              "tsp-b sched pool 10 qber 0.9"], max_key_per_request=8)
    text = reload(tb, "qkd", RELOAD_REFUSED)
    assert re.search(r"qkd\.conf:\d+: bad link qber", text), text
    assert call(tb, "operator", "GET", "/admin/v1/links/sched/tsp-a")[1]["rate"] == 0
    error(*enc(tb, "sched", "tsp-a", number=5), 400, "max_key_per_request")

    # What the operator switched at run time survives a reload that leaves
    # that setting alone in the file; key_size and new links take a restart.
    st, js = call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-b",
                  {"eavesdropper": 0})
    assert st == 200 and js["eavesdropper"] == 0, js
    links[1] += " qber 0.02"
    set_conf(tb, "qkd", link=links + ["tsp-a tsp-b"], max_key_per_request=8,
             key_size=512)
    text = reload(tb, "qkd", r"reloaded: 1 links changed, max_key_per_request 8")
    assert "key_size 512" in text and "new link tsp-a/tsp-b takes a restart" in text, text
    link_b = call(tb, "operator", "GET", "/admin/v1/links/sched/tsp-b")[1]
    assert link_b["eavesdropper"] == 0 and link_b["qber_base"] == 0.02, link_b
    assert link_b["rate"] == 100000, link_b
    wait_until(lambda: take(tb, "sched", "tsp-b") == 200, what="keys again without Eve")
    assert tb.status("qkd")["links"] == 2

    # The metrics agree with all of that.
    m = tb.metrics("qkd")
    assert metric(m, "qroam_key_pool_keys", link="sched/tsp-a") == 17, m
    assert metric(m, "qroam_key_pool_capacity", link="sched/tsp-a") == 20
    assert metric(m, "qroam_key_pool_capacity", link="sched/tsp-b") == 10
    assert metric(m, "qroam_keys_delivered_total", link="sched/tsp-a") == 2 == \
        tb.count("qkd", "delivered")
    assert metric(m, "qroam_qkd_aborts_total", link="sched/tsp-b") >= 1
    assert metric(m, "qroam_qkd_aborts_total", link="sched/tsp-a") == 0
    assert 0 <= metric(m, "qroam_qkd_qber", link="sched/tsp-b") < 0.5
    assert metric(m, "qroam_etsi_requests_total", endpoint="dec_keys") == 2
    assert metric(m, "qroam_etsi_requests_total", endpoint="other") == 1
    assert metric(m, "qroam_etsi_requests_total", endpoint="admin") >= 4
    assert metric(m, "qroam_etsi_responses_total", code="400") == 3
    assert metric(m, "qroam_etsi_responses_total", code="401") == 1
    assert metric(m, "qroam_etsi_responses_total", code="404") == 1
    assert sum(v for (n, _), v in m.items() if n == "qroam_etsi_requests_total") == \
        sum(v for (n, _), v in m.items() if n == "qroam_etsi_responses_total"), m
    assert metric(m, "qroam_refusals_total", reason="bad_request") == 3
    assert metric(m, "qroam_refusals_total", reason="unauthorized") == 1
    assert metric(m, "qroam_refusals_total", reason="not_found") == 1
    assert metric(m, "qroam_refusals_total", reason="unavailable") >= 1
    assert metric(m, "qroam_refusals_total", reason="tls_handshake") == before + 1
    no_secrets(tb, "qkd", ["pools"])
    assert json.dumps(tb.status("qkd", "pools")).count("key_ID") == 0


def test_qkd_settings_mean_the_same_by_admin_and_reload(tb):
    """A link's settings set through the admin API and through the
    configuration and SIGHUP give the same link: the rate is the secret
    rate at the base QBER on both paths (with the sample size's bound and
    f_EC in the yield), and a fibre link's qubit rate is the fibre's
    whichever path changes its base QBER."""
    tb.start_qkd(links=["sched tsp-a pool 10", "tsp-b sched pool 10",
                        "tsp-c sched pool 10 fibre 25"])
    fields = ("rate", "qubit_rate", "qber_base", "eavesdropper", "sample", "fec")

    def view(a, b):
        st, js = call(tb, "operator", "GET", "/admin/v1/links/%s/%s" % (a, b))
        assert st == 200, (st, js)
        return {k: round(js[k], 6) for k in fields}

    fibre_before = view("sched", "tsp-c")
    for change in ({"qber": 0.05}, {"rate": 30000}, {"eavesdropper": 0.2},
                   {"qber": 0.02, "rate": 80000}, {"sample": 5000},
                   {"fec": 1.3}, {"sample": 40000, "fec": 1.05, "qber": 0.03}):
        st, js = call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a", change)
        assert st == 200, (st, js)
        # The same settings by configuration and reload on the twin link.
        a = view("sched", "tsp-a")
        conf = "tsp-b sched pool 10 rate %r qber %r eavesdropper %r sample %d fec %r" % (
            a["rate"], a["qber_base"], a["eavesdropper"], a["sample"], a["fec"])
        set_conf(tb, "qkd", link=["sched tsp-a pool 10", conf,
                                  "tsp-c sched pool 10 fibre 25"])
        reload(tb, "qkd")
        assert view("sched", "tsp-b") == a, (change, view("sched", "tsp-b"), a)

    # A fibre link: a new base QBER keeps the fibre's qubit rate and lowers
    # the secret rate, by admin as by reload.
    st, js = call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-c", {"qber": 0.05})
    assert st == 200, (st, js)
    by_admin = view("sched", "tsp-c")
    assert by_admin["qubit_rate"] == fibre_before["qubit_rate"], (by_admin, fibre_before)
    assert by_admin["rate"] < fibre_before["rate"], (by_admin, fibre_before)
    set_conf(tb, "qkd", link=["sched tsp-a pool 10", conf,
                              "tsp-c sched pool 10 fibre 25 qber 0.01"])
    reload(tb, "qkd")
    set_conf(tb, "qkd", link=["sched tsp-a pool 10", conf,
                              "tsp-c sched pool 10 fibre 25 qber 0.05"])
    reload(tb, "qkd")
    assert view("sched", "tsp-c") == by_admin, (view("sched", "tsp-c"), by_admin)
