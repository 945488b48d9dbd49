"""A KME that speaks only TLS 1.2, as a fielded one may (PROTOCOL §7):
the master side of ETSI GS QKD 014 (status, enc_keys) on loopback with
mutual TLS, recording each request and each refused handshake."""

import base64
import json
import os
import re
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _note(self, slave):
        cert = self.connection.getpeercert() or {}
        cn = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
        self.server.kme.note(self.command, self.path, cn[0] if cn else None,
                             self.connection.version(), slave)

    def do_GET(self):
        m = re.match(r"^/api/v1/keys/([^/]+)/status$", self.path)
        if not m:
            return self._answer(400, {"message": "bad request"})
        self._note(m.group(1))
        self._answer(200, {"source_KME_ID": "kme12", "target_KME_ID": "kme12",
                           "master_SAE_ID": "sched", "slave_SAE_ID": m.group(1),
                           "key_size": 256, "stored_key_count": 1000,
                           "max_key_count": 100000, "max_key_per_request": 128,
                           "max_key_size": 1024, "min_key_size": 64,
                           "max_SAE_ID_count": 0})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self._answer(400, {"message": "bad JSON"})
        m = re.match(r"^/api/v1/keys/([^/]+)/enc_keys$", self.path)
        if not m:
            return self._answer(400, {"message": "only enc_keys here"})
        self._note(m.group(1))
        number, size = int(req.get("number", 1)), int(req.get("size", 256))
        keys = [{"key_ID": str(uuid.uuid4()),
                 "key": base64.b64encode(os.urandom(size // 8)).decode()}
                for _ in range(number)]
        self._answer(200, {"keys": keys})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        sock, addr = self.socket.accept()
        try:
            sock = self.kme.ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.kme.note_refused(str(e))
            sock.close()
            raise OSError("handshake refused") from e
        return sock, addr


class Kme12:
    """Start with Kme12(port, cert, key, ca).start(); stop with close()."""

    def __init__(self, port, cert, key, ca):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(cert, key)
        self.ctx.load_verify_locations(ca)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.srv = _Server(("127.0.0.1", port), _Handler)
        self.srv.kme = self
        self.lock = threading.Lock()
        self.requests = []	# (method, path, client CN, TLS version, slave)
        self.refused = []	# handshake errors
        self.thread = None

    def note(self, *req):
        with self.lock:
            self.requests.append(req)

    def note_refused(self, why):
        with self.lock:
            self.refused.append(why)

    def start(self):
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
