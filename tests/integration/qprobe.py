"""qprobe, the test vehicle: run its commands and parse `RESULT` lines."""

import os
import subprocess

class Result:
    """The parsed `RESULT STATUS k=v ...` line of one qprobe run."""

    def __init__(self, args, rc, out):
        self.args = args
        self.rc = rc
        self.out = out
        self.status = None
        self.kv = {}
        lines = [l for l in out.splitlines() if l.startswith("RESULT ")]
        if lines:
            words = lines[-1].split()
            self.status = words[1] if len(words) > 1 else ""
            for w in words[2:]:
                k, _, v = w.partition("=")
                self.kv[k] = v

    def __getitem__(self, k):
        return self.kv[k]

    def get(self, k, default=None):
        return self.kv.get(k, default)

    def __repr__(self):
        return "<qprobe %s rc=%s status=%s %s out=%r>" % (
            " ".join(self.args), self.rc, self.status, self.kv, self.out[-400:])


class Probe:
    """One test vehicle driven by qprobe, with its own chip store."""

    def __init__(self, tb, vehicle_id, cert="factory", store=None):
        self.tb = tb
        self.vin = vehicle_id
        self.cert = cert
        self.store = store or os.path.join(tb.dir, "probes", vehicle_id + ".db")
        self.log = os.path.join(tb.dir, "logs", "qprobe-%s.log" % vehicle_id)
        self.nrun = 0

    def run(self, command, *args, cert=None, wait_ms=3000, expect_rc=0, **opts):
        """Run one qprobe command; opts become --long-options."""
        exe = os.path.join(self.tb.bindir, "qprobe")
        if not os.path.exists(exe):
            raise AssertionError("qprobe is not built: %s" % exe)
        cert = cert or self.cert
        argv = [exe, "-s", self.store, "-t", self.tb.topology,
                "-c", self.tb.ca, "-C", self.tb.cert(cert), "-K", self.tb.key(cert),
                "-w", str(wait_ms)]
        cmd = [command]
        for k, v in opts.items():
            if v is None or v is False:
                continue
            flag = "--" + k.replace("_", "-") if len(k) > 1 else "-" + k
            cmd.append(flag)
            if v is not True:
                cmd.append(str(v))
        cmd += [str(a) for a in args]
        argv += cmd
        self.nrun += 1
        with open(self.log, "ab") as errf:
            errf.write(("=== %s\n" % " ".join(argv[1:])).encode())
            errf.flush()
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=errf,
                               env=self.tb.env, timeout=wait_ms / 1000 * 4 + 60)
        out = p.stdout.decode(errors="replace")
        with open(self.log, "ab") as errf:
            errf.write(("=== stdout: %s\n" % out.strip()).encode())
        r = Result(cmd, p.returncode, out)
        # K1s are replaced by the next session: record them while they exist.
        self.tb.sample_secrets(quick=True)
        if expect_rc is not None and p.returncode != expect_rc:
            raise AssertionError("qprobe exited %d, expected %d: %r"
                                 % (p.returncode, expect_rc, r))
        if expect_rc == 0 and r.status is None:
            raise AssertionError("qprobe printed no RESULT line: %r" % r)
        return r

    def fill(self, m=None, **kw):
        r = self.run("fill", m=m, **kw)
        assert r.status == "OK", r
        return r

    def register(self, rebind=False, **kw):
        # The registrar answers after generating the key pair, which takes
        # seconds for RSA-3072 under the sanitizers on a busy machine; a
        # retry after a lost answer is refused as a duplicate, so wait long.
        kw.setdefault("wait_ms", 60000)
        return self.run("register", V=self.vin, rebind=rebind, **kw)

    def auth(self, tsp, **kw):
        return self.run("auth", T=tsp, **kw)

    def m3(self, tsp, **kw):
        return self.run("m3", T=tsp, **kw)

    def telemetry(self, tsp, n, **kw):
        return self.run("telemetry", T=tsp, n=n, **kw)

    def send(self, tsp, path, provision=False, **kw):
        return self.run("send", path, T=tsp, provision=provision, **kw)

    def chip(self):
        """(chip_id, m, k, n) of the probe's chip, or None."""
        rows = self.tb.query(self.store, "SELECT chip_id, m, k, n FROM chip")
        return rows[0] if rows else None

    @property
    def chip_id(self):
        c = self.chip()
        return c[0] if c else None

    def keys(self):
        """[(idx, code, key or None, destroyed)] in sequence order."""
        return self.tb.query(self.store, "SELECT idx, code, key, destroyed "
                             "FROM chip_keys ORDER BY idx")
