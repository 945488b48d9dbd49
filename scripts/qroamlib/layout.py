"""What a testbed writes before it starts anything: loopback ports, the
test PKI, the topology and the daemons' configuration files."""

import fcntl
import os
import random
import socket
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MKPKI = os.path.join(ROOT, "scripts", "mkpki.sh")
HOST = "127.0.0.1"
# The endpoints of the clouds other than the TSPs, in topology order.
ROLES = ("filler", "registrar", "sched", "qkd", "kmp", "kmp_tls")

_used_ports = set()
# Ports are claimed against the other processes that pick theirs here (the
# test runs of other checkouts on the same machine) with a lock on the byte
# of that number in one shared file; the kernel drops the locks of a
# process that ends.
_CLAIMS = os.path.join(tempfile.gettempdir(), "qroam-ports.lock")
_claims_fd = None


def _claim(port):
    """Claim port for this process; False if another process holds it."""
    global _claims_fd
    if _claims_fd is None:
        try:
            _claims_fd = os.open(_CLAIMS, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            _claims_fd = -1         # not shared here: the bind test alone
        else:
            try:
                os.fchmod(_claims_fd, 0o666)
            except OSError:
                pass
    if _claims_fd < 0:
        return True
    try:
        fcntl.lockf(_claims_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
        return True
    except OSError:
        return False


def release_port(port):
    """Give up the claim on a port of free_port (its daemon has stopped)."""
    if _claims_fd is not None and _claims_fd >= 0:
        fcntl.lockf(_claims_fd, fcntl.LOCK_UN, 1, port, os.SEEK_SET)


def free_port():
    """A loopback port below the ephemeral range (so no outgoing connection
    takes it meanwhile) that is free right now, not handed out before by
    this process, and claimed against other processes that use this
    function until release_port or the end of this one."""
    for _ in range(1000):
        port = random.randint(20000, 32000)
        if port in _used_ports or not _claim(port):
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, port))
        except OSError:
            release_port(port)
            continue
        finally:
            s.close()
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def free_ports(n):
    return [free_port() for _ in range(n)]


def mkpki(directory, parties):
    """Certificates and keys of parties ("name:role", ...) signed by the
    test CA of directory (created on the first call) with scripts/mkpki.sh."""
    subprocess.run(["sh", MKPKI, directory] + list(parties), check=True,
                   stdout=subprocess.DEVNULL)


def write_file(path, text):
    """Replace a file in one step, so a daemon reading it (at a reload)
    never sees half of it."""
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _degrees(x):
    return "%.2f" % x if abs(x * 100 - round(x * 100)) < 1e-6 else "%.6f" % x


def topology_text(ports, tsps, regions, comment="qroam testbed topology"):
    """The topology: an endpoint line for each role of ROLES that ports
    names, a `tsp` line for each of tsps (ports[t] its vehicle listener,
    ports[t + "/provision"] its provisioning listener) and their regions
    ({tsp: [(lat, lon), ...]})."""
    lines = ["# " + comment]
    lines += ["%-9s %s:%d" % (r, HOST, ports[r]) for r in ROLES if r in ports]
    for t in tsps:
        lines.append("tsp %s vehicle %s:%d provision %s:%d"
                     % (t, HOST, ports[t], HOST, ports[t + "/provision"]))
    for t in tsps:
        lines.append("region %s %s" % (t, " ".join(
            "%s,%s" % (_degrees(la), _degrees(lo)) for la, lo in regions[t])))
    return "\n".join(lines) + "\n"


def conf_value(v):
    """A directive's arguments from a Python value."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    return str(v)


def conf_text(directives, comment=None):
    """A configuration file from [(directive, value)]; None values are left
    out."""
    lines = ["# " + comment] if comment else []
    lines += ["%s %s" % (k, conf_value(v)) for k, v in directives if v is not None]
    return "\n".join(lines) + "\n"


def cloud_directives(ident, topology, store, pki, cert, admin=None):
    """The directives every cloud daemon starts with: its id, the topology,
    its store, the CA and its certificate `cert` in the PKI directory pki,
    and its admin endpoint (a port or host:port) if any."""
    return [("id", ident), ("topology", topology), ("store", store),
            ("ca", os.path.join(pki, "ca.pem")),
            ("cert", os.path.join(pki, cert + ".pem")),
            ("key", os.path.join(pki, cert + ".key")), ("admin", admin)]


def cloud_bus(keyfile, step="5s"):
    """The directives of a region's cloud bus (tspd cloud_key, cloud_epoch,
    cloud_step), making its K0 file (64 hex digits, mode 0600) if keyfile
    does not exist yet: every instance of the region gets the same ones.
    t0 is the minute before the file's creation, so the instances hash
    few steps at start-up and every step from the first has one before."""
    if not os.path.exists(keyfile):
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
    epoch = cloud_bus_k0(keyfile)[1]
    return [("cloud_key", keyfile), ("cloud_epoch", epoch), ("cloud_step", step)]


def cloud_bus_k0(keyfile):
    """(K0, t0 in seconds) of a cloud bus made by cloud_bus (tests)."""
    with open(keyfile) as f:
        k0 = bytes.fromhex(f.read().strip())
    return k0, int(os.stat(keyfile).st_mtime) // 60 * 60 - 60


def admin_port_of(value):
    """The port of an `admin [HOST:]PORT` value, or None."""
    if value is None:
        return None
    port = str(value).rsplit(":", 1)[-1]
    return int(port) if port.isdigit() else None
