"""The docker-compose testbed, proven without a container engine.

docker-compose.yml must validate with Debian's docker-compose and describe
every daemon with its configuration, the PKI read-only, a volume of its own,
a healthcheck and a restart policy; every service's configuration must pass
the daemon's `-n`.  Then scripts/compose_netns.py runs the compose services
natively, each in a network namespace named after it and as the image's
user, and drives the fleet through the three regions: every crossing must
be a handover, every vehicle authenticated once, every acknowledged
telemetry message stored, and nothing (process, namespace, hosts file, run
directory) may be left behind.  A second run kills tsp-b mid-drive: its
restart policy must bring it back with nothing acknowledged lost.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import BIN, ROOT, Skip

COMPOSE = os.path.join(ROOT, "docker-compose.yml")
SCRIPT = os.path.join(ROOT, "scripts", "compose_netns.py")
DAEMONS = {"qkdd": "qkdd", "schedd": "schedd", "tsp-a": "tspd", "tsp-b": "tspd",
           "tsp-c": "tspd", "fillerd": "fillerd", "registrard": "registrard",
           "fleet": "vehicled"}
HEALTH = ["CMD", "qroamctl", "-a", "9100", "health"]

sys.path.insert(0, os.path.join(ROOT, "scripts"))


def compose_config():
    """The compose file as `docker-compose config` resolves it."""
    import yaml
    exe = shutil.which("docker-compose")
    if exe is None:
        raise Skip("docker-compose is not installed (scripts/deps.sh installs it)")
    p = subprocess.run([exe, "-f", COMPOSE, "config"], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0, "docker-compose config failed:\n%s" % p.stderr
    return yaml.safe_load(p.stdout)


def test_compose_config():
    """docker-compose validates the file; each service is complete."""
    doc = compose_config()
    services = doc["services"]
    assert set(services) == set(DAEMONS), sorted(services)
    data = set()
    for name, prog in DAEMONS.items():
        s = services[name]
        assert s["command"][0] == prog, (name, s["command"])
        assert s["command"][1:3] == ["-f", "/etc/qroam/%s.conf" % name], s["command"]
        assert s["healthcheck"]["test"] == HEALTH, (name, s["healthcheck"])
        assert s["restart"] in ("unless-stopped", "on-failure"), (name, s["restart"])
        binds = {v["target"]: v for v in s["volumes"] if isinstance(v, dict)}
        for target in ("/etc/qroam", "/etc/qroam/pki"):
            assert binds[target]["type"] == "bind" and binds[target]["read_only"], (name, target)
        named = [v for v in s["volumes"] if isinstance(v, str)]
        assert len(named) == 1 and named[0].split(":")[1] == "/var/lib/qroam", (name, named)
        data.add(named[0].split(":")[0])
    assert len(data) == len(DAEMONS), "a named volume per service: %s" % sorted(data)
    dep = {n: s.get("depends_on", {}) for n, s in services.items()}
    for t in ("tsp-a", "tsp-b", "tsp-c"):
        assert dep[t]["schedd"]["condition"] == "service_healthy", dep[t]
        assert dep[t]["qkdd"]["condition"] == "service_healthy", dep[t]
        assert dep["fillerd"][t]["condition"] == "service_healthy", dep["fillerd"]
    assert dep["schedd"]["qkdd"]["condition"] == "service_healthy"
    assert set(dep["fleet"]) == {"fillerd", "registrard"}
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        docker = f.read()
    assert re.search(r"^FROM debian:12 AS build$", docker, re.M)
    assert re.search(r"^FROM debian:12-slim$", docker, re.M)
    assert re.search(r"^USER qroam", docker, re.M)
    assert "make install DESTDIR=/out PREFIX=/usr" in docker


def test_compose_configs_check():
    """Every service's configuration, its container paths mapped to a
    fresh testbed PKI, passes the daemon's -n."""
    import compose_netns
    services, _ = compose_netns.load_compose(COMPOSE)
    tmp = tempfile.mkdtemp(prefix="qroam-compose-n-")
    try:
        pki = os.path.join(tmp, "pki")
        subprocess.run(["sh", compose_netns.PKI_SCRIPT, pki], check=True,
                       stdout=subprocess.DEVNULL)
        # Configuration syntax only: leaks of -n are the -n tests' business.
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        for s in services.values():
            vol = {src: os.path.join(tmp, src) for kind, src, _ in s.mounts if kind == "volume"}
            paths = compose_netns.Paths(s, vol, {compose_netns.PKI_TARGET: pki})
            argv = compose_netns.host_argv(s, paths, BIN, os.path.join(tmp, s.name))
            p = subprocess.run(argv + ["-n"], stdout=subprocess.PIPE, env=env,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
            assert p.returncode == 0 and "configuration OK" in p.stdout, \
                "%s: %s -n: exit %d\n%s" % (s.name, " ".join(argv), p.returncode, p.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def readable_as(ids, path):
    """Whether the user and group ids may read path (setpriv, as the
    runner starts the services)."""
    uid, gid = ids
    return subprocess.run(["setpriv", "--reuid", str(uid), "--regid", str(gid),
                           "--clear-groups", "--", "test", "-r", path]).returncode == 0


def test_compose_services_read_nothing_of_the_checkout():
    """Everything the runner gives the services to run and read (their
    programs, configurations, the topology and PKI those name) lies in the
    run directory, readable by the image's user, and nothing in the
    checkout: a checkout below a directory only its owner may enter
    (/root, mktemp -d) runs the compose services as well."""
    import compose_netns
    if os.geteuid() != 0:
        raise Skip("the runner gives the named volumes their owners: needs root")
    if shutil.which("setpriv") is None:
        raise Skip("setpriv is not installed")
    run = compose_netns.Run(compose_netns.parse_args(["--asan"]))
    try:
        run.prepare()
        for s in run.order:
            argv = run.argv[s.name]
            files = [a for a in argv if a.startswith("/")]
            with open(argv[argv.index("-f") + 1]) as f:
                files += re.findall(r"(?:^|\s)(/\S+)", f.read(), re.M)
            for path in files:
                assert path.startswith(run.dir + "/"), (s.name, path)
                if os.path.isfile(path):
                    assert readable_as(s.ids, path), (s.name, path)
            assert os.access(argv[0], os.X_OK) and readable_as(s.ids, argv[0]), argv[0]
        assert compose_netns.searchable(run.dir)
    finally:
        shutil.rmtree(run.dir, ignore_errors=True)


def runtime_packages(dockerfile):
    """Packages the last stage of a Dockerfile installs with apt-get."""
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)
    m = re.search(r"apt-get install -y --no-install-recommends((?:[^&])*)&&", stages[-1])
    assert m, "no apt-get install in the runtime stage"
    return m.group(1).replace("\\", " ").split()


def package_of(lib):
    """The Debian package holding a library (merged /usr: dpkg may know it
    under /lib or /usr/lib), or the path itself."""
    real = os.path.realpath(lib)
    for cand in (lib, real, re.sub(r"^/usr/", "/", real), re.sub(r"^/lib", "/usr/lib", real)):
        out = subprocess.run(["dpkg", "-S", cand], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout
        if out:
            return out.split(":")[0]
    return lib


def installed(tmp):
    """{program: path} of what `make install DESTDIR=tmp PREFIX=/usr`
    installs in /usr/sbin and /usr/bin, as the Dockerfile's build stage
    runs it."""
    p = subprocess.run(["make", "-s", "--no-print-directory", "install", "DESTDIR=" + tmp,
                        "PREFIX=/usr"], cwd=ROOT, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=600)
    assert p.returncode == 0, "make install failed:\n%s" % p.stdout[-3000:]
    progs = {}
    for d in ("usr/sbin", "usr/bin"):
        d = os.path.join(tmp, d)
        for n in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            progs[n] = os.path.join(d, n)
    return progs


def test_compose_image():
    """What the image gets from `make install` holds every program the
    services and their healthchecks run (qroamctl once its sources are
    there), and the runtime stage installs every shared library those
    programs link (its packages and their dependencies)."""
    import compose_netns
    for tool in ("ldd", "dpkg", "apt-cache", "make"):
        if shutil.which(tool) is None:
            raise Skip("%s is not installed" % tool)
    services, _ = compose_netns.load_compose(COMPOSE)
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        pkgs = runtime_packages(f.read())
    p = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                        "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                        "--no-enhances"] + pkgs, stdout=subprocess.PIPE, text=True, check=True)
    have = {l.strip().split(":")[0] for l in p.stdout.splitlines() if not l.startswith(" ")}
    tmp = tempfile.mkdtemp(prefix="qroam-compose-image-")
    try:
        progs = installed(tmp)
        want = {s.program() for s in services.values()}
        if os.path.isdir(os.path.join(ROOT, "qroamctl")):
            want |= {os.path.basename(s.health["argv"][0]) for s in services.values()
                     if s.health and "argv" in s.health}
        assert want <= set(progs), "make install lacks %s" % sorted(want - set(progs))
        missing, owners = {}, {}
        for name, prog in progs.items():
            out = subprocess.run(["ldd", prog], stdout=subprocess.PIPE, text=True).stdout
            for lib in re.findall(r"=> (/\S+)", out):
                if lib not in owners:
                    owners[lib] = package_of(lib)
                if owners[lib] not in have:
                    missing.setdefault(owners[lib], set()).add(name)
        assert not missing, "the runtime stage lacks %s (has %s)" % (missing, sorted(pkgs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def namespaces_usable():
    """Raise Skip unless this process may create network namespaces."""
    if os.geteuid() != 0:
        raise Skip("network namespaces need root")
    if shutil.which("ip") is None:
        raise Skip("iproute2 is not installed")
    name = "qroam-probe-%d" % os.getpid()
    p = subprocess.run(["ip", "netns", "add", name], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise Skip("cannot create network namespaces: %s" % p.stdout.strip())
    subprocess.run(["ip", "netns", "del", name], check=True)


def leftovers(names, rundir):
    """What a run left behind: namespaces, hosts files, processes."""
    out = []
    have = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, text=True).stdout
    have = {line.split()[0] for line in have.splitlines() if line.strip()}
    out += ["namespace %s" % n for n in names if n in have]
    out += ["/etc/netns/%s" % n for n in names if os.path.exists("/etc/netns/" + n)]
    if rundir:
        ps = subprocess.run(["ps", "-eo", "pid,args"], stdout=subprocess.PIPE, text=True).stdout
        out += ["process %s" % line.strip() for line in ps.splitlines() if rundir in line]
    return out


def run_bed(extra):
    """Run scripts/compose_netns.py with extra arguments; its summary,
    once nothing is left behind."""
    namespaces_usable()
    p = subprocess.run([sys.executable, SCRIPT, "--asan", "-q", "--timeout", "240"] + extra,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600, cwd=ROOT)
    out = p.stdout
    lines = [l for l in out.splitlines() if l.startswith("SUMMARY ")]
    assert lines, "no SUMMARY line (exit %d):\n%s" % (p.returncode, out[-6000:])
    s = json.loads(lines[-1][8:])
    m = re.search(r"run directory (\S+)", out)
    rundir = m.group(1) if m else None
    left = leftovers(list(DAEMONS) + ["qroam-br"], rundir)
    if s.get("ok") and rundir and os.path.exists(rundir):
        left.append(rundir)
    assert not left, "left behind: %s" % left
    assert p.returncode == 0 and s["ok"], "compose run failed (exit %d): %s\n%s" \
        % (p.returncode, s.get("failure"), out[-6000:])
    assert s["services"] == ["qkdd", "schedd", "tsp-a", "tsp-b", "tsp-c", "fillerd",
                             "registrard", "fleet"], s["services"]
    assert set(s["healthy_after_s"]) == set(DAEMONS), s["healthy_after_s"]
    # The image's user, for every process of every service (restarts too).
    assert s["run_as"] == ["10001:10001"], s["run_as"]
    assert set(s["users"]) == set(DAEMONS), s["users"]
    assert all(set(u) == {"10001:10001"} for u in s["users"].values()), s["users"]
    # Named volumes start as the image's /var/lib/qroam: qroam:qroam 0750.
    assert len(s["volumes"]) == len(DAEMONS) and \
        set(s["volumes"].values()) == {"10001:10001 0750"}, s["volumes"]
    assert s["vehicles"] == 4, s
    assert s["crossings"] == 8, s["legs"]
    assert s["errors"] == 0 and not s["problems"], (s["errors"], s["problems"])
    t = s["telemetry_check"]
    assert t["lost"] == 0 and t["acked"] == s["telemetry_acked"] > 0, t
    admin = s.get("admin_status", {})
    for name in ("tsp-a", "tsp-b", "tsp-c"):
        if name in admin:
            assert admin[name].get("id") == name, admin[name]
    return s


def test_compose_in_namespaces():
    """The compose services in their namespaces as the image's user: four
    vehicles cross tsp-a -> tsp-b -> tsp-c with a handover at each
    crossing, and every acknowledged telemetry message is stored."""
    s = run_bed([])
    for vin, legs in s["legs"].items():
        assert [l.split()[0] for l in legs] == ["tsp-a->tsp-b", "tsp-b->tsp-c"], (vin, legs)
        assert not any("F3 again" in l for l in legs), (vin, legs)
    assert s["auth_ok"] == 4, "one F3 per vehicle: %s" % s["auth_ok"]
    assert s["restarts"] == {} and s["exits"] == [], (s["restarts"], s["exits"])
    tsps = s["tsps"]
    assert tsps["tsp-a"]["handovers_out"] == {"done": 4}, tsps
    assert tsps["tsp-b"]["handovers_out"] == {"done": 4}, tsps
    assert tsps["tsp-c"]["auth_via"] == {"handover": 4}, tsps
    assert all(t["telemetry"] > 0 for t in tsps.values()), tsps
    admin = s.get("admin_status", {})
    if "schedd" in admin:
        assert admin["schedd"].get("handovers_done", 0) >= 8, admin["schedd"]
        assert admin["schedd"].get("handovers_failed", 0) == 0, admin["schedd"]


def test_compose_crash():
    """tsp-b is killed (SIGKILL) while two vehicles hold sessions in its
    region and two approach it with their handover contexts stored there:
    its restart policy brings it back healthy, every vehicle still crosses
    tsp-a -> tsp-b -> tsp-c, only a crossing into tsp-b may fall back to
    F3 (once, with tsp-b), the crossings into tsp-c are handovers, and
    nothing tsp-b acknowledged before or after the crash is lost."""
    s = run_bed(["--crash", "tsp-b"])
    c = s["crash"]
    assert c["service"] == "tsp-b" and c["vehicles_in_region"] >= 2, c
    assert 0 < c["healthy_after_s"] < 30, c
    assert s["restarts"] == {"tsp-b": 1}, s["restarts"]
    assert [(e["service"], e["status"], e["injected"], e["restarted"]) for e in s["exits"]] \
        == [("tsp-b", -9, True, True)], s["exits"]
    assert c["acked_before"] > 0 and c["acked_after"] > 0, c
    fallbacks = 0
    for vin, legs in s["legs"].items():
        assert [l.split()[0] for l in legs] == ["tsp-a->tsp-b", "tsp-b->tsp-c"], (vin, legs)
        assert "F3 again" not in legs[1], (vin, legs)
        fallbacks += "F3 again" in legs[0]
    assert s["fallbacks_to_f3"] == fallbacks, s
    assert s["auth_ok"] == 4 + fallbacks, "one F3 per vehicle, one per fallback: %s" % s
    tsps = s["tsps"]
    assert tsps["tsp-b"]["handovers_out"] == {"done": 4}, tsps
    assert tsps["tsp-c"]["auth_via"] == {"handover": 4}, tsps
    out = tsps["tsp-a"]["handovers_out"]
    assert out.get("done", 0) + out.get("failed", 0) == 4 and out.get("failed", 0) <= fallbacks, \
        tsps
    assert all(t["telemetry"] > 0 for t in tsps.values()), tsps


def test_compose_faults():
    """Network faults on the compose services' links: 5 % loss and 50 ms
    +- 20 ms delay on every link (delay only where the kernel has netem;
    loss by nftables otherwise), and tsp-b cut from schedd for 10 s once
    its first vehicle was offered the handover out of its region.  Every
    vehicle still finishes its route; every handover either completes or
    degrades to F3 at the next TSP; nothing acknowledged is lost."""
    s = run_bed(["--loss", "5", "--delay", "50:20", "--partition", "tsp-b:schedd:10"])
    f, p = s["faults"], s["partition"]
    assert f["loss_pct"] == 5 and f["loss_applied"], f
    assert f["delay_applied"] == f["netem"], f
    assert p["between"] == ["tsp-b", "schedd"] and "cut_at" in p and "healed_at" in p, p
    assert p["healed_at"] - p["cut_at"] >= 10, p
    fallbacks = 0
    for vin, legs in s["legs"].items():
        assert [l.split()[0] for l in legs] == ["tsp-a->tsp-b", "tsp-b->tsp-c"], (vin, legs)
        fallbacks += sum("F3 again" in l for l in legs)
    assert s["fallbacks_to_f3"] == fallbacks, s
    assert s["auth_ok"] == 4 + fallbacks, s
    for t in ("tsp-a", "tsp-b"):
        out = s["tsps"][t]["handovers_out"]
        assert sum(out.values()) == 4 and set(out) <= {"done", "failed"}, (t, out)
    failed = sum(s["tsps"][t]["handovers_out"].get("failed", 0) for t in ("tsp-a", "tsp-b"))
    assert failed == fallbacks, (failed, fallbacks, s["tsps"])
    assert s["telemetry_check"]["lost"] == 0 and s["telemetry_check"]["acked"] > 0, s
    print("    faults: loss %s%% (%s), delay %s; partition %.1f s; %d crossings, %d handed "
          "over, %d degraded to F3, %d telemetry acknowledged, 0 lost"
          % (f["loss_pct"], "netem" if f["netem"] else "nftables",
             "applied" if f["delay_applied"] else "not applied (no netem)",
             p["healed_at"] - p["cut_at"], s["crossings"], s["crossings"] - fallbacks,
             fallbacks, s["telemetry_check"]["acked"]))


def test_compose_container_user():
    """The user, working directory and volume ownership the runner takes
    from the Dockerfile, and the restart policies it applies."""
    import compose_image
    import compose_netns
    services, _ = compose_netns.load_compose(COMPOSE)
    for s in services.values():
        assert s.ids == (10001, 10001), (s.name, s.ids)
        assert s.image["workdir"] == "/var/lib/qroam", s.image
        assert s.image["dirs"]["/var/lib/qroam"] == ("qroam", "qroam", 0o750), s.image
    facts = services["qkdd"].image
    assert compose_image.resolve_ids("10002", facts) == (10002, 10002)
    assert compose_image.resolve_ids("qroam:0", facts) == (10001, 0)
    assert compose_image.resolve_ids(None, facts) == (0, 0)
    r = compose_image.restarts
    assert r("unless-stopped", -9, 5) and r("always", 0, 0)
    assert r("on-failure", 1, 0) and r("on-failure", -9, 0) and not r("on-failure", 0, 0)
    assert r("on-failure:2", 1, 1) and not r("on-failure:2", 1, 2)
    assert not r("no", 1, 0) and not r("no", -9, 0)
