"""qkdd conformance: ETSI GS QKD 014 v1.1.1 as PROTOCOL section 7 gives it.

Every endpoint in its GET and POST form with the exact field names, the
400/401/404/503 answers with {"message": ...} bodies, the TLS handshake
refused without a client certificate, a key delivered once to its master
and once to its slave and then gone, and the BB84 links: an empty pool and
an eavesdropper switched on by an operator both answer 503."""

import base64
import http.client
import json
import re
import ssl
import subprocess
import threading

from harness import MKPKI, TIMEOUT, wait_until

STATUS_FIELDS = {"source_KME_ID", "target_KME_ID", "master_SAE_ID", "slave_SAE_ID",
                 "key_size", "stored_key_count", "max_key_count", "max_key_per_request",
                 "max_key_size", "min_key_size", "max_SAE_ID_count"}
UUID_RX = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NOT_FOUND = "one or more keys specified are not found on KME"


def call(tb, cert, method, path, body=None, raw=None):
    """One HTTPS request to qkdd as the holder of cert: (status, JSON)."""
    conn = http.client.HTTPSConnection("127.0.0.1", tb.port["qkd"],
                                       context=tb.client_tls(cert), timeout=TIMEOUT)
    try:
        data = raw if raw is not None else (
            None if body is None else json.dumps(body).encode())
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read()
        assert r.getheader("Content-Type") == "application/json", r.getheaders()
        return r.status, json.loads(text)
    finally:
        conn.close()


def status(tb, master, slave):
    st, js = call(tb, master, "GET", "/api/v1/keys/%s/status" % slave)
    assert st == 200, (st, js)
    return js


def keys_of(tb, st, js):
    """The keys of a key container as {key_ID: bytes}, noted as secrets so
    that teardown fails if any of them reaches a log."""
    assert st == 200, (st, js)
    assert set(js) == {"keys"}, js
    out = {}
    for k in js["keys"]:
        assert set(k) == {"key_ID", "key"}, k
        assert UUID_RX.match(k["key_ID"]), k["key_ID"]
        key = base64.b64decode(k["key"], validate=True)
        tb.secrets.add(key, "qkd key %s" % k["key_ID"])
        out[k["key_ID"]] = key
    return out


def enc(tb, master, slave, number=None, size=None, form="POST", extra=None):
    if form == "GET":
        q = "&".join("%s=%s" % (n, v) for n, v in (("number", number), ("size", size))
                     if v is not None)
        return call(tb, master, "GET", "/api/v1/keys/%s/enc_keys%s"
                    % (slave, "?" + q if q else ""))
    body = dict(extra or {})
    if number is not None:
        body["number"] = number
    if size is not None:
        body["size"] = size
    return call(tb, master, "POST", "/api/v1/keys/%s/enc_keys" % slave, body)


def dec(tb, slave, master, ids, form="POST"):
    if form == "GET":
        return call(tb, slave, "GET", "/api/v1/keys/%s/dec_keys?key_ID=%s" % (master, ids[0]))
    return call(tb, slave, "POST", "/api/v1/keys/%s/dec_keys" % master,
                {"key_IDs": [{"key_ID": i} for i in ids]})


def error(st, js, code, text=None):
    assert st == code, (st, js)
    assert set(js) == {"message"} and isinstance(js["message"], str), js
    if text is not None:
        assert text in js["message"], js


def pool_filled(tb, master, slave, n):
    wait_until(lambda: status(tb, master, slave)["stored_key_count"] >= n,
               what="%d keys between %s and %s" % (n, master, slave))


def link(tb, a, b):
    st, js = call(tb, "operator", "GET", "/admin/v1/links/%s/%s" % (a, b))
    assert st == 200, (st, js)
    return js


def test_status_fields(tb):
    tb.start_qkd(links=["sched tsp-a pool 20", "tsp-b sched pool 5 rate 0"])
    pool_filled(tb, "sched", "tsp-a", 20)
    js = status(tb, "sched", "tsp-a")
    # The standard's fields, and one extension: the link state.
    assert set(js) == STATUS_FIELDS | {"qroam_link_state"}, js
    assert js == {"source_KME_ID": "qkd", "target_KME_ID": "qkd",
                  "master_SAE_ID": "sched", "slave_SAE_ID": "tsp-a",
                  "key_size": 256, "stored_key_count": 20, "max_key_count": 20,
                  "max_key_per_request": 128, "max_key_size": 256, "min_key_size": 64,
                  "max_SAE_ID_count": 0, "qroam_link_state": "up"}, js
    # A pair is unordered: the slave may ask too, as master of the other way.
    js = status(tb, "tsp-a", "sched")
    assert js["master_SAE_ID"] == "tsp-a" and js["slave_SAE_ID"] == "sched", js
    js = status(tb, "sched", "tsp-b")
    assert js["stored_key_count"] == 0 and js["max_key_count"] == 5, js
    st, js = call(tb, "tsp-a", "GET", "/api/v1/keys/tsp-b/status")
    error(st, js, 400, "no QKD link between tsp-a and tsp-b")


def test_keys_both_forms(tb):
    tb.start_qkd(links=["sched tsp-a pool 30"], max_key_per_request=16)
    pool_filled(tb, "sched", "tsp-a", 30)
    # POST enc_keys / POST dec_keys, two keys of the default size.
    sent = keys_of(tb, *enc(tb, "sched", "tsp-a", number=2))
    assert len(sent) == 2 and all(len(k) == 32 for k in sent.values())
    assert len(set(sent.values())) == 2
    got = keys_of(tb, *dec(tb, "tsp-a", "sched", list(sent)))
    assert got == sent
    # GET enc_keys with number and size / GET dec_keys with key_ID.
    sent = keys_of(tb, *enc(tb, "sched", "tsp-a", number=3, size=128, form="GET"))
    assert len(sent) == 3 and all(len(k) == 16 for k in sent.values())
    for kid, key in sent.items():
        assert keys_of(tb, *dec(tb, "tsp-a", "sched", [kid], form="GET")) == {kid: key}
    # Defaults: one key of key_size bits; an empty POST body is {}.
    sent = keys_of(tb, *call(tb, "sched", "GET", "/api/v1/keys/tsp-a/enc_keys"))
    sent.update(keys_of(tb, *call(tb, "sched", "POST", "/api/v1/keys/tsp-a/enc_keys", raw=b"")))
    assert len(sent) == 2 and all(len(k) == 32 for k in sent.values())
    # extension_optional is ignored; the other direction of the pair works.
    more = keys_of(tb, *enc(tb, "tsp-a", "sched", number=1,
                            extra={"extension_optional": [{"x": 1}]}))
    assert keys_of(tb, *dec(tb, "sched", "tsp-a", list(more))) == more
    got = keys_of(tb, *dec(tb, "tsp-a", "sched", list(sent)))
    assert got == sent
    # Delivered keys are gone from the store, only their IDs are recorded.
    assert tb.count("qkd", "delivered") == 2 + 3 + 2 + 1
    assert tb.count("qkd", "keys", "master_done=1") == 0
    js = status(tb, "sched", "tsp-a")
    assert js["stored_key_count"] <= 30


def test_key_never_delivered_twice(tb):
    tb.start_qkd(links=["sched tsp-a pool 200"])
    pool_filled(tb, "sched", "tsp-a", 100)
    sent = keys_of(tb, *enc(tb, "sched", "tsp-a", number=4))
    ids = list(sent)
    assert keys_of(tb, *dec(tb, "tsp-a", "sched", ids[:2])) == \
        {i: sent[i] for i in ids[:2]}
    for form in ("POST", "GET"):
        error(*dec(tb, "tsp-a", "sched", ids[:1], form=form), 400, NOT_FOUND)
    # A request naming a delivered key delivers nothing, not even the others.
    error(*dec(tb, "tsp-a", "sched", [ids[2], ids[0]]), 400, NOT_FOUND)
    error(*dec(tb, "tsp-a", "sched", [ids[2], ids[2]]), 400, NOT_FOUND)
    assert keys_of(tb, *dec(tb, "tsp-a", "sched", ids[2:])) == \
        {i: sent[i] for i in ids[2:]}
    # Masters asking in parallel never get the same key.
    seen = []
    lock = threading.Lock()

    def master():
        for _ in range(4):
            st, js = enc(tb, "sched", "tsp-a", number=3)
            with lock:
                seen.extend(keys_of(tb, st, js).items())
    threads = [threading.Thread(target=master) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 72
    assert len({i for i, _ in seen}) == 72 and len({k for _, k in seen}) == 72
    # A reserved key survives a restart and is still delivered once.
    tb.restart("qkd")
    kid, key = seen[0]
    assert keys_of(tb, *dec(tb, "tsp-a", "sched", [kid])) == {kid: key}
    error(*dec(tb, "tsp-a", "sched", [kid]), 400, NOT_FOUND)
    assert tb.count("qkd", "delivered") == 5
    tb.wait_log("qkd", r"dec_keys: key %s to slave tsp-a from master sched" % kid)


def test_bad_requests(tb):
    tb.start_qkd(links=["sched tsp-a pool 20", "sched tsp-b pool 20"])
    pool_filled(tb, "sched", "tsp-a", 5)
    for form in ("POST", "GET"):
        error(*enc(tb, "sched", "tsp-a", size=100, form=form), 400,
              "size shall be a multiple of 8")
        error(*enc(tb, "sched", "tsp-a", size=512, form=form), 400, "size")
        error(*enc(tb, "sched", "tsp-a", size=32, form=form), 400, "size")
        error(*enc(tb, "sched", "tsp-a", number=0, form=form), 400, "number")
        error(*enc(tb, "sched", "tsp-a", number=129, form=form), 400, "number")
        error(*dec(tb, "tsp-a", "sched", ["9b2c1d6e-0000-4000-8000-000000000000"],
                   form=form), 400, NOT_FOUND)
        error(*dec(tb, "tsp-a", "sched", ["not-a-key-id"], form=form), 400, NOT_FOUND)
        error(*enc(tb, "tsp-a", "tsp-b", form=form), 400,
              "no QKD link between tsp-a and tsp-b")
    error(*enc(tb, "sched", "tsp-a", size="256"), 400, "size")
    error(*enc(tb, "sched", "tsp-a", extra={"additional_slave_SAE_IDs": ["tsp-b"]}),
          400, "additional_slave_SAE_IDs")
    error(*enc(tb, "sched", "tsp-a", extra={"extension_mandatory": [{"route": "x"}]}),
          400, "extension_mandatory")
    error(*call(tb, "sched", "POST", "/api/v1/keys/tsp-a/enc_keys", raw=b"{\"number\":"),
          400, "JSON")
    error(*call(tb, "sched", "POST", "/api/v1/keys/tsp-a/enc_keys", raw=b"[1]"), 400)
    error(*call(tb, "tsp-a", "POST", "/api/v1/keys/sched/dec_keys", {"key_IDs": []}), 400)
    error(*call(tb, "tsp-a", "POST", "/api/v1/keys/sched/dec_keys", {"key_IDs": ["x"]}), 400)
    error(*call(tb, "tsp-a", "GET", "/api/v1/keys/sched/dec_keys"), 400, "key_ID")
    error(*call(tb, "sched", "GET", "/api/v1/keys/BAD!/status"), 400, "SAE ID")
    for path in ("/", "/api/v1/keys/tsp-a", "/api/v1/keys/tsp-a/other",
                 "/api/v2/keys/tsp-a/status", "/api/v1/keys/tsp-a/status/x", "/admin/v1/x"):
        error(*call(tb, "sched", "GET", path), 404, "unknown path")
    error(*call(tb, "sched", "POST", "/api/v1/keys/tsp-a/status", {}), 405)
    error(*call(tb, "sched", "PUT", "/api/v1/keys/tsp-a/enc_keys", {}), 405)
    # Every refusal is logged with its reason; nothing was taken from the pool.
    tb.wait_log("qkd", r"400 size shall be a multiple of 8")
    tb.wait_log("qkd", r"404 unknown path")
    assert tb.count("qkd", "keys", "master_done=1") == 0
    assert tb.count("qkd", "delivered") == 0


def test_unauthorised(tb):
    tb.start_qkd(links=["sched tsp-a pool 20", "sched tsp-b pool 20"])
    pool_filled(tb, "sched", "tsp-a", 5)
    sent = keys_of(tb, *enc(tb, "sched", "tsp-a"))
    kid = list(sent)[0]
    # Only the slave named at enc_keys, asking with its master's ID, may fetch.
    for who, master in (("tsp-b", "sched"), ("sched", "sched"), ("operator", "sched"),
                        ("tsp-a", "tsp-b")):
        for form in ("POST", "GET"):
            error(*dec(tb, who, master, [kid], form=form), 401, kid)
    tb.wait_log("qkd", r"401 key %s was not issued by sched for tsp-b" % kid)
    assert keys_of(tb, *dec(tb, "tsp-a", "sched", [kid])) == sent
    # No client certificate: the TLS handshake itself is refused.
    mark = tb.log_mark("qkd")
    conn = http.client.HTTPSConnection("127.0.0.1", tb.port["qkd"],
                                       context=tb.client_tls(None), timeout=TIMEOUT)
    try:
        conn.request("GET", "/api/v1/keys/tsp-a/status")
        r = conn.getresponse()
        raise AssertionError("answered without a certificate: %d" % r.status)
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
        pass
    finally:
        conn.close()
    tb.wait_log("qkd", r"TLS connection from 127\.0\.0\.1:\d+ refused: "
                r"certificate required", since=mark)
    # A certificate whose CN is not an SAE id, and the admin endpoint for
    # anyone but an operator.
    subprocess.run(["sh", MKPKI, tb.path("pki"), "Intruder:vehicle"], check=True,
                   stdout=subprocess.DEVNULL)
    error(*enc(tb, "Intruder", "tsp-a"), 401, "not an SAE ID")
    error(*call(tb, "sched", "GET", "/admin/v1/links"), 401, "operator")
    error(*call(tb, "tsp-a", "POST", "/admin/v1/links/sched/tsp-a",
                {"eavesdropper": 1.0}), 401, "operator")
    assert link(tb, "sched", "tsp-a")["eavesdropper"] == 0.0


def test_empty_pool(tb):
    tb.start_qkd(links=["sched tsp-a pool 0", "sched tsp-b rate 0"])
    for slave in ("tsp-a", "tsp-b"):
        for form in ("POST", "GET"):
            error(*enc(tb, "sched", slave, form=form), 503, "not enough keys")
        assert status(tb, "sched", slave)["stored_key_count"] == 0
    tb.wait_log("qkd", r"503 not enough keys between sched and tsp-b")
    # The rate-0 link sends nothing; the pool-0 link runs but keeps nothing.
    assert link(tb, "sched", "tsp-b")["qber"] is None
    wait_until(lambda: link(tb, "sched", "tsp-a")["qber"] is not None,
               what="a QBER estimate on the pool-0 link")
    # An operator turns the rate up: keys arrive.
    st, js = call(tb, "operator", "POST", "/admin/v1/links/tsp-b/sched", {"rate": 50000})
    assert st == 200 and js["rate"] == 50000, js
    pool_filled(tb, "sched", "tsp-b", 1)
    keys_of(tb, *enc(tb, "sched", "tsp-b"))


def test_eavesdropper(tb):
    tb.start_qkd(links=["sched tsp-a rate 200000 pool 50 qber 0.01",
                        "sched tsp-b rate 200000 pool 50"])
    pool_filled(tb, "sched", "tsp-a", 10)
    js = link(tb, "sched", "tsp-a")
    assert {"sae_a", "sae_b", "rate", "qber_base", "eavesdropper", "qber", "aborted",
            "secret_rate", "stored_key_count", "max_key_count"} <= set(js), js
    assert js["qber"] < 0.05 and not js["aborted"] and js["secret_rate"] > 0, js
    # Intercept-resend on every qubit: about 25 % QBER, the link aborts.
    mark = tb.log_mark("qkd")
    st, js = call(tb, "operator", "POST", "/admin/v1/links/tsp-a/sched",
                  {"eavesdropper": 1.0})
    assert st == 200 and js["eavesdropper"] == 1.0, js
    js = wait_until(lambda: (lambda j: j if j["aborted"] else None)(
        link(tb, "sched", "tsp-a")), what="the link to abort")
    assert 0.18 < js["block_qber"] < 0.32 and js["state"] == "aborting", js
    assert js["qber_bound"] > 0.11 and js["stored_key_count"] > 0, js
    for form in ("POST", "GET"):
        error(*enc(tb, "sched", "tsp-a", form=form), 503, "QBER")
    tb.wait_log("qkd", r"link sched-tsp-a: QBER \d+\.\d+ % \(bound \d+\.\d+ %\) above the 11 % "
                "threshold",
                since=mark)
    tb.wait_log("qkd", r"503 QBER", since=mark)
    # The other link is not affected.
    keys_of(tb, *enc(tb, "sched", "tsp-b"))
    st, js = call(tb, "operator", "GET", "/admin/v1/links")
    assert st == 200 and len(js["links"]) == 2, js
    # On 40 % of the qubits, with a clean channel: about 10 %.
    call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a",
         {"eavesdropper": 0.4, "qber": 0.0})
    # Four blocks at once (the window), on the admin endpoint's run.
    blocks = link(tb, "sched", "tsp-a")["blocks"]
    while True:
        st, js = call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a/run",
                      {"ticks": 20})
        assert st == 200, js
        if js["blocks"] >= blocks + 5:
            break
    assert 0.09 < js["qber"] < 0.11, js
    # Eavesdropper off: the link recovers and serves keys again.
    call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a",
         {"eavesdropper": 0.0, "qber": 0.01})
    wait_until(lambda: not link(tb, "sched", "tsp-a")["aborted"] and
               link(tb, "sched", "tsp-a")["qber"] < 0.05, what="the link to recover")
    keys_of(tb, *enc(tb, "sched", "tsp-a"))
    error(*call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a",
                {"eavesdropper": 2}), 400, "eavesdropper")
    error(*call(tb, "operator", "POST", "/admin/v1/links/sched/tsp-a",
                {"eve": 1}), 400, "unknown field")
    error(*call(tb, "operator", "GET", "/admin/v1/links/tsp-a/tsp-b"), 404)


def test_config_errors(tb):
    tb.start_qkd()
    tb.stop("qkd")
    conf = tb.path("conf", "bad-qkd.conf")
    with open(tb.daemons["qkd"].conf) as f:
        good = f.read()
    with open(conf, "w") as f:
        f.write(good + "key_size 100\nmax_key_per_request 0\nlink tsp-a tsp-a\n"
                "link sched tsp-a\nlink tsp-b sched rate 10 fibre 20\n"
                "link sched tsp-c qber 0.9\nlink sched tsp-d bogus 1\n")
    exe = tb.bindir + "/qkdd"
    p = subprocess.run([exe, "-n", "-f", conf], capture_output=True, text=True,
                       env=tb.env, timeout=TIMEOUT)
    assert p.returncode == 1, p
    lines = [l for l in p.stderr.splitlines() if l.startswith(conf + ":")]
    n0 = good.count("\n")
    for i, word in enumerate(("key_size", "max_key_per_request", "two different",
                              "duplicate link", "either rate or fibre", "qber",
                              "unknown link option")):
        assert any(l.startswith("%s:%d: " % (conf, n0 + 1 + i)) and word in l
                   for l in lines), (word, p.stderr)
    p = subprocess.run([exe, "-n", "-f", tb.daemons["qkd"].conf], capture_output=True,
                       text=True, env=tb.env, timeout=TIMEOUT)
    assert p.returncode == 0 and "configuration OK" in p.stdout, p
