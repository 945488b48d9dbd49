"""The live map (`qroamctl map`) on a real deployment on loopback.

- In headless Chromium against a drive A -> B of two vehicles: one polygon
  per region, one marker per vehicle, the handover arrow in flight while
  schedd is stopped (SIGSTOP), then green once it runs again (SIGCONT),
  the QKD link sched/tsp-b turning red once `qroamctl eavesdrop` puts an
  eavesdropper on it; a screenshot is saved (build/test-map/map.png as
  well as in the test's directory).
- /map.json against the stores: the TSPs' sessions, the handovers tspd
  ended, each vehicle's last position against its last telemetry record.
- The HTTP server: GET of its four paths only (405, 404), a client that
  drops the connection mid-answer and 100 clients at once, a daemon that
  is down shown as down, and no store changed by any of it.
"""

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading

from harness import BIN, ROOT, testbed, vin, wait_until
from test_drive import ROUTE_AB, drive_opts
from test_handover import start_clouds
from test_qroamctl import Ctl

MAP_DIR = os.path.join(ROOT, "qroamctl", "map")
SHOTS = os.path.join(ROOT, "build", "test-map")


class MapServer:
    """qroamctl map on a free port of loopback, for ctl's configuration."""

    def __init__(self, tb, ctl):
        self.log = open(tb.path("logs", "map.log"), "a")
        self.proc = subprocess.Popen(
            [ctl.exe, "-f", ctl.conf, "map", "-l", "127.0.0.1:0", "-d", MAP_DIR],
            stdout=subprocess.PIPE, stderr=self.log, env=tb.env, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("map on http://127.0.0.1:"), line
        self.url = line.split()[2]
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    def request(self, method, path, body=b"", timeout=30):
        """(status, body) of one HTTP/1.0 request."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(b"%s %s HTTP/1.0\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
                method.encode(), path.encode(), len(body), body))
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), rest

    def view(self):
        code, body = self.request("GET", "/map.json")
        assert code == 200, (code, body[:200])
        return json.loads(body)

    def stop(self):
        """SIGTERM: it must end by itself with status 0."""
        self.proc.terminate()
        rc = self.proc.wait(30)
        self.log.close()
        assert rc == 0, "qroamctl map exited %s" % rc


def names(tb, *vehicles):
    return ["qkd", "sched"] + list(tb.tsps) + ["filler", "registrar"] + list(vehicles)


def page_state(br):
    """What the page drew: counts and states read from its DOM."""
    return br.js("""
      const q = s => Array.from(document.querySelectorAll(s));
      return {polls: +document.body.dataset.polls,
        regions: q('polygon.region').map(e => e.dataset.tsp),
        vehicles: q('circle.vehicle').map(e => [e.dataset.vid, e.dataset.state]),
        arrows: q('line.handover').map(e => [e.dataset.from, e.dataset.to, e.dataset.state]),
        arrow_titles: q('line.handover').map(e => e.textContent),
        links: q('line.link').map(e => [e.dataset.link, e.classList.contains('alarm')]),
        link_states: q('line.link').map(e => [e.dataset.link, e.dataset.state]),
        link_rows: q('#linktable tbody tr').map(r => Array.from(r.cells).map(c => c.textContent)),
        crossings: q('rect.crossing').length};""")


@testbed(tsps=["tsp-a", "tsp-b"])
def test_map_in_browser(tb):
    from browser import Browser
    start_clouds(tb)
    cars = [vin(950), vin(951)]
    ctl = Ctl(tb, names(tb, *cars))
    m = MapServer(tb, ctl)
    br = Browser(tb.path("logs"), tb.path("chromium"))
    try:
        br.get(m.url)
        wait_until(lambda: page_state(br)["polls"] >= 1, timeout=60, what="a first poll")
        st = page_state(br)
        assert sorted(st["regions"]) == ["tsp-a", "tsp-b"], st
        # schedd stopped (SIGSTOP): the handovers the TSP starts wait for
        # its KeyReply, in flight for as long as it takes to see them.
        tb.signal("sched", signal.SIGSTOP)
        try:
            for v in cars:
                tb.start_vehicle(v, route=ROUTE_AB, **drive_opts())
            wait_until(lambda: sorted(x[0] for x in page_state(br)["vehicles"]) == cars,
                       timeout=60, what="one marker per vehicle")
            wait_until(lambda: ["tsp-a", "tsp-b", "inflight"] in page_state(br)["arrows"],
                       timeout=120, interval=0.2, what="the handover arrow, in flight")
            os.makedirs(SHOTS, exist_ok=True)
            br.screenshot(os.path.join(SHOTS, "map-inflight.png"))
        finally:
            tb.signal("sched", signal.SIGCONT)
        seen = {"inflight"}

        def arrow_done():
            st = page_state(br)
            seen.update(a[2] for a in st["arrows"])
            return ["tsp-a", "tsp-b", "done"] in st["arrows"]
        wait_until(arrow_done, timeout=120, interval=0.2,
                   what="the handover arrow tsp-a -> tsp-b, green")
        st = page_state(br)
        assert ("sched/tsp-b", False) in [tuple(l) for l in st["links"]], st
        wait_until(lambda: page_state(br)["crossings"] >= 2, timeout=120, interval=0.2,
                   what="both crossings on the map")
        ctl.run("eavesdrop", "sched/tsp-b", "on")
        wait_until(lambda: ["sched/tsp-b", True] in page_state(br)["links"],
                   timeout=120, interval=0.2, what="link sched/tsp-b red")
        wait_until(lambda: ["sched/tsp-b", "aborting"] in page_state(br)["link_states"],
                   timeout=120, interval=0.2, what="link sched/tsp-b aborting")
        st = page_state(br)
        assert ["sched/tsp-a", False] in st["links"], st
        assert ["sched/tsp-a", "up"] in st["link_states"], st
        # The table shows each link's QBER, its bound and its state.
        rows = {r[0]: r for r in st["link_rows"]}
        assert rows["sched/tsp-b"][5] == "aborting", rows
        assert rows["sched/tsp-a"][5] == "up" and rows["sched/tsp-a"][4].endswith(" %"), rows
        assert float(rows["sched/tsp-b"][4].split()[0]) > 11.0, rows
        os.makedirs(SHOTS, exist_ok=True)
        shot = br.screenshot(tb.path("logs", "map.png"))
        shutil.copy(shot, os.path.join(SHOTS, "map.png"))
        assert os.path.getsize(shot) > 10000
        with open(os.path.join(SHOTS, "map-states.json"), "w") as f:
            json.dump({"arrow_states_seen": sorted(seen), "final": st}, f, indent=1)
    finally:
        br.close()
        m.stop()


@testbed(tsps=["tsp-a", "tsp-b"])
def test_map_failed_handover_in_browser(tb):
    """schedd stopped for good: the handover waits, then fails (its channel
    to the scheduler times out, or the handover does); the arrow turns red
    with the reason on hover, and the vehicle re-authenticates at B."""
    from browser import Browser
    start_clouds(tb)
    car = vin(955)
    ctl = Ctl(tb, names(tb, car))
    m = MapServer(tb, ctl)
    br = Browser(tb.path("logs"), tb.path("chromium"))
    try:
        br.get(m.url)
        wait_until(lambda: page_state(br)["polls"] >= 1, timeout=60, what="a first poll")
        tb.signal("sched", signal.SIGSTOP)
        try:
            tb.start_vehicle(car, route=ROUTE_AB, **drive_opts())
            wait_until(lambda: ["tsp-a", "tsp-b", "failed"] in page_state(br)["arrows"],
                       timeout=180, interval=0.2, what="the handover arrow, red")
        finally:
            tb.signal("sched", signal.SIGCONT)
        st = page_state(br)
        title = st["arrow_titles"][st["arrows"].index(["tsp-a", "tsp-b", "failed"])]
        reason = tb.query("tsp-a", "SELECT reason FROM handovers WHERE role='out' AND "
                                   "state='failed'")[0][0]
        assert reason and reason in title and car in title, (title, reason)
        os.makedirs(SHOTS, exist_ok=True)
        br.screenshot(os.path.join(SHOTS, "map-failed.png"))
        wait_until(lambda: tb.count("tsp-b", "sessions", "vehicle_id=?", (car,)) == 1,
                   timeout=120, what="%s in session at tsp-b after F3" % car)
    finally:
        br.close()
        m.stop()


def last_fix(tb, v):
    """(lat, lon) of v's last telemetry record at tsp-b."""
    rows = tb.query("tsp-b", "SELECT lat, lon FROM telemetry WHERE vehicle_id=? "
                    "ORDER BY unix_ms DESC, id DESC LIMIT 1", (v,))
    return rows[0] if rows else None


@testbed(tsps=["tsp-a", "tsp-b"])
def test_map_json_matches_the_stores(tb):
    start_clouds(tb)
    v = vin(952)
    ctl = Ctl(tb, names(tb, v))
    m = MapServer(tb, ctl)
    try:
        tb.start_vehicle(v, route=ROUTE_AB, **drive_opts())

        def at_end():
            doc = m.view()
            cars = [c for c in doc["vehicles"] if c["vehicle_id"] == v]
            return cars and cars[0]["region"] == "tsp-b" and \
                abs(cars[0]["lon"] - 120.16) < 1e-6 and cars[0]["crossings"]
        wait_until(at_end, timeout=120, interval=0.5, what="%s at the end of its route" % v)

        def positions_match():
            doc, fix = m.view(), last_fix(tb, v)
            car = [c for c in doc["vehicles"] if c["vehicle_id"] == v][0]
            return fix and abs(car["lat"] - fix[0]) < 1e-4 and abs(car["lon"] - fix[1]) < 1e-4
        wait_until(positions_match, timeout=60, interval=0.5,
                   what="the map's position = the last stored record")

        def sessions_match():
            doc = m.view()
            got = {r["tsp"]: r["sessions"] for r in doc["regions"]}
            want = {t: tb.count(t, "sessions") for t in tb.tsps}
            return got == want and doc["counters"]["sessions"] == sum(want.values())
        wait_until(sessions_match, timeout=60, interval=0.5, what="sessions as stored")
        done = set(r[0] for r in tb.query("tsp-a", "SELECT handover_id FROM handovers "
                                                   "WHERE role='out' AND state='done'"))
        doc = m.view()
        ended = [h for h in doc["handovers"]["ended"] if h["from"] == "tsp-a"]
        assert done and set(h["handover_id"] for h in ended
                            if h["result"] == "done") == done, (done, ended)
        assert all(h["to"] == "tsp-b" and h["vehicle_id"] == v for h in ended), ended
        assert doc["counters"]["vehicles"] == 1 and doc["counters"]["handovers_ok"] == len(done)
        car = [c for c in doc["vehicles"] if c["vehicle_id"] == v][0]
        assert [(c["from"], c["to"]) for c in car["crossings"]] == [("tsp-a", "tsp-b")], car
        assert car["crossings"][0]["gap_ms"] is not None, car
        assert 120.0 < car["crossings"][0]["lon"] < 120.2, car
    finally:
        m.stop()


def drop_mid_answer(port):
    """Ask for /map.json, read a few bytes, reset the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(b"GET /map.json HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(16)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


@testbed(tsps=["tsp-a", "tsp-b"])
def test_map_server_http(tb):
    start_clouds(tb)
    ctl = Ctl(tb, names(tb))
    m = MapServer(tb, ctl)
    stores = ["qkd", "sched", "tsp-a", "tsp-b", "filler", "registrar"]
    try:
        wait_until(lambda: all(d["up"] for d in m.view()["daemons"]), timeout=60,
                   what="every daemon up on the map")
        # qkdd distils keys all the time: its keys and links tables move.
        skip = {"qkd": ("keys", "links")}
        before = {s: tb.dump(s, skip.get(s, ())) for s in stores}
        for path in ("/", "/index.html", "/map.css", "/map.js", "/map.json"):
            code, body = m.request("GET", path)
            assert code == 200 and body, (path, code)
        assert m.request("HEAD", "/map.json")[0] == 200
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            for path in ("/", "/map.json", "/nowhere"):
                assert m.request(method, path, b"{}")[0] == 405, (method, path)
        for path in ("/nowhere", "/status", "/../etc/passwd", "/map.js/", "/qroamctl.c",
                     "/map.json.bak"):
            assert m.request("GET", path)[0] == 404, path
        for _ in range(20):
            drop_mid_answer(m.port)
        results = []

        def client():
            try:
                code, body = m.request("GET", "/map.json", timeout=120)
                results.append(code == 200 and len(json.loads(body)["regions"]) == 2)
            except (OSError, ValueError) as e:
                results.append(repr(e))
        threads = [threading.Thread(target=client) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert results == [True] * 100, [r for r in results if r is not True][:5]
        after = {s: tb.dump(s, skip.get(s, ())) for s in stores}
        for s in stores:
            tb.assert_same_dump(before[s], after[s], "the store of %s" % s)
        tb.stop("tsp-b")

        def shown_down():
            doc = m.view()
            d = [x for x in doc["daemons"] if x["name"] == "tsp-b"][0]
            r = [x for x in doc["regions"] if x["tsp"] == "tsp-b"][0]
            return not d["up"] and d["error"] and not r["up"]
        wait_until(shown_down, timeout=60, interval=0.5, what="tsp-b shown down")
        assert [r["up"] for r in m.view()["regions"] if r["tsp"] == "tsp-a"] == [True]
        tb.start("tsp-b")
        wait_until(lambda: all(d["up"] for d in m.view()["daemons"]), timeout=60,
                   interval=0.5, what="tsp-b up again on the map")
    finally:
        m.stop()


@testbed(tsps=["tsp-a"])
def test_map_stops_with_requests_in_flight(tb):
    """SIGTERM while a poll waits on a daemon that accepts and never
    answers: the map ends with status 0 and leaves nothing allocated (the
    sanitizer checks of the teardown read map.log)."""
    start_clouds(tb)
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    try:
        ctl = Ctl(tb, names(tb), extra=["admin mute 127.0.0.1:%d" % hang.getsockname()[1]])
        for _ in range(3):
            m = MapServer(tb, ctl)
            wait_until(lambda: [d["up"] for d in m.view()["daemons"]
                                if d["name"] == "tsp-a"] == [True], timeout=60,
                       what="tsp-a up on the map")
            d = [x for x in m.view()["daemons"] if x["name"] == "mute"][0]
            assert not d["up"], d
            m.stop()
    finally:
        hang.close()


def test_testbed_map_linger_and_picture():
    """`make run LINGER=1`'s testbed: it names the map at the start, keeps
    the deployment (and the map) up after the drive until SIGINT, then
    names drive.svg, which holds the regions, every vehicle's route and
    its crossings."""
    import xml.etree.ElementTree as ET
    from qroamlib import layout
    port = layout.free_port()
    env = dict(os.environ, LINGER="1", MAP="127.0.0.1:%d" % port, QROAM_BIN=BIN)
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "scripts", "testbed.py")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                         start_new_session=True)
    lines = []
    try:
        for raw in p.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            if "LINGER=1: the deployment keeps running" in line:
                break
        text = "\n".join(lines)
        assert "live map on http://127.0.0.1:%d/" % port in text, text[-3000:]
        assert "LINGER=1" in lines[-1], text[-3000:]
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /map.json HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        doc = json.loads(data.partition(b"\r\n\r\n")[2])
        assert len(doc["vehicles"]) == 6 and all(d["up"] for d in doc["daemons"]), doc
        p.send_signal(signal.SIGINT)
        rest = p.communicate(timeout=120)[0].decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(30)
    assert p.returncode == 0, rest[-3000:]
    svg = [l for l in rest.splitlines() if "picture of the drive: " in l]
    assert svg, rest[-3000:]
    path = svg[0].split("picture of the drive: ")[1].strip()
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert sorted(e.get("data-tsp") for e in root.iter(ns + "polygon")) == \
        ["tsp-a", "tsp-b", "tsp-c"]
    assert len(list(root.iter(ns + "polyline"))) == 6
    assert len([e for e in root.iter(ns + "rect") if e.get("class") == "crossing"]) >= 12
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
