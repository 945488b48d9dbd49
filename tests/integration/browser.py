"""Headless Chromium driven through chromedriver's W3C WebDriver HTTP API,
with nothing but the standard library (urllib): start a session, load a
page, run a script in it, take a screenshot.  Debian's `chromium` and
`chromium-driver` packages (scripts/deps.sh)."""

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from harness import Skip, wait_until
from qroamlib import layout

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"


class Browser:
    """One headless Chromium session; close() ends it and the driver."""

    def __init__(self, logdir, profile):
        for exe in (CHROMIUM, DRIVER):
            if not os.path.exists(exe):
                raise Skip("%s is not installed (scripts/deps.sh)" % exe)
        self.port = layout.free_port()
        self.log = open(os.path.join(logdir, "chromedriver.log"), "w")
        self.proc = subprocess.Popen([DRIVER, "--port=%d" % self.port],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.base = "http://127.0.0.1:%d" % self.port
        wait_until(self._ready, timeout=60, interval=0.2, what="chromedriver listening")
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1400,900",
                "--user-data-dir=" + profile]}}}}
        self.sid = self._call("POST", "/session", caps, timeout=120)["sessionId"]

    def _ready(self):
        try:
            return self._call("GET", "/status", timeout=2)["ready"]
        except (OSError, ValueError, KeyError):
            return False

    def _call(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read().decode())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError("webdriver %s %s: %s" % (method, path, e.read()[:500]))

    def get(self, url):
        self._call("POST", "/session/%s/url" % self.sid, {"url": url}, timeout=120)

    def js(self, script, *args):
        """The value of script (a function body: `return ...`) in the page."""
        return self._call("POST", "/session/%s/execute/sync" % self.sid,
                          {"script": script, "args": list(args)})

    def screenshot(self, path):
        png = base64.b64decode(self._call("GET", "/session/%s/screenshot" % self.sid))
        with open(path, "wb") as f:
            f.write(png)
        return path

    def close(self):
        try:
            self._call("DELETE", "/session/%s" % self.sid, timeout=30)
        except (AssertionError, OSError, AttributeError):
            pass
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        time.sleep(0)
