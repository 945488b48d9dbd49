"""Network faults for the compose testbed in namespaces
(scripts/compose_netns.py --loss, --delay, --partition).

Loss and delay are put on the egress of every service's eth0, so a packet
between two services meets them once, in its sender's namespace:

  - with the kernel's netem qdisc (sch_netem) when it has one:
    `tc qdisc add dev eth0 root netem loss P% delay D J`;
  - without netem (a kernel built without CONFIG_NET_SCH_NETEM), loss is
    an nftables rule of the namespace (`numgen random mod 10000 < P*100
    drop` on the output of eth0) and delay cannot be made: the run says
    so in its summary (faults.delay_applied false) rather than pretend.

A partition cuts two services apart for a number of seconds: once the
first vehicle in the region of the first service (a tspd) has been offered
its handover out of it (M5), so that the handover's key request and the
ones behind it meet the cut, nftables rules in both namespaces drop every packet between their two
addresses, both ways; they are removed after the given time.  TCP
connections between them stall and time out as across a cut link; new
ones get no answer.  Everything is in the services' own namespaces, so it
goes with them at the teardown.
"""

import subprocess
import time

TABLE = "qroam_faults"


def sh(*argv, check=True):
    p = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), p.stderr.strip() or p.returncode))
    return p


def netem_available(ns):
    """Whether the kernel has netem: try it on ns's loopback and take it off."""
    p = sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
           "delay", "1ms", check=False)
    if p.returncode != 0:
        return False
    sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "lo", "root", check=False)
    return True


def nft(ns, script):
    """Run an nftables script in ns."""
    p = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=script,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("nft in %s: %s" % (ns, p.stderr.strip()))


def parse_delay(text):
    """"MS" or "MS:JITTER" -> (ms, jitter_ms)."""
    if text is None:
        return None
    ms, _, jitter = text.partition(":")
    return float(ms), float(jitter or 0)


def parse_partition(text):
    """"A:B:SECONDS" -> (a, b, seconds)."""
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) != 3:
        raise ValueError("--partition wants SERVICE:SERVICE:SECONDS, not %r" % text)
    return parts[0], parts[1], float(parts[2])


class Faults:
    """The loss and delay of every service's link."""

    def __init__(self, loss=None, delay=None):
        self.loss = loss            # percent, or None
        self.delay = delay          # (ms, jitter ms), or None
        self.summary = {}

    def active(self):
        return bool(self.loss or self.delay)

    def apply(self, services, say):
        if not self.active():
            return
        ns0 = services[0].ns
        netem = netem_available(ns0)
        s = self.summary
        s.update({"loss_pct": self.loss or 0, "delay_ms": self.delay, "netem": netem})
        for svc in services:
            if netem:
                args = []
                if self.loss:
                    args += ["loss", "%g%%" % self.loss]
                if self.delay:
                    args += ["delay", "%gms" % self.delay[0], "%gms" % self.delay[1]]
                sh("ip", "netns", "exec", svc.ns, "tc", "qdisc", "add", "dev", "eth0", "root",
                   "netem", *args)
            elif self.loss:
                nft(svc.ns, "add table inet %s\n"
                            "add chain inet %s loss { type filter hook output priority 0; }\n"
                            "add rule inet %s loss oifname \"eth0\" numgen random mod 10000"
                            " < %d drop\n" % (TABLE, TABLE, TABLE, int(self.loss * 100)))
        s["loss_applied"] = bool(self.loss)
        s["delay_applied"] = bool(self.delay) and netem
        how = "netem" if netem else "nftables (this kernel has no netem)"
        say("faults: loss %s%% by %s, delay %s on every service's link" % (
            self.loss or 0, how if self.loss else "-",
            ("%g ms +- %g ms" % self.delay if netem else "not applied: no netem")
            if self.delay else "none"))


class Partition:
    """Two services cut apart for a while, once trigger(tsp) of the first
    one (a tspd) is not 0 (step() from the drive's loop, like a crash)."""

    def __init__(self, drive, a, b, seconds, trigger):
        services = {s.name: s for s in drive.bed.order}
        for n in (a, b):
            if n not in services:
                raise ValueError("--partition: no service %s" % n)
        ids = [t for t, (svc, _) in drive.tsps.items() if svc.name == a]
        if not ids:
            raise ValueError("--partition %s: not a tspd service" % a)
        self.drive = drive
        self.a, self.b = services[a], services[b]
        self.tsp = ids[0]
        self.seconds = seconds
        self.trigger = trigger
        self.t_cut = None
        self.summary = {"between": [a, b], "seconds": seconds, "tsp": self.tsp}

    def _cut(self):
        for me, other in ((self.a, self.b), (self.b, self.a)):
            nft(me.ns, "add table inet %s_cut\n"
                       "add chain inet %s_cut out { type filter hook output priority 0; }\n"
                       "add chain inet %s_cut in { type filter hook input priority 0; }\n"
                       "add rule inet %s_cut out ip daddr %s drop\n"
                       "add rule inet %s_cut in ip saddr %s drop\n"
                       % ((TABLE,) * 4 + (other.addr, TABLE, other.addr)))

    def _heal(self):
        for me in (self.a, self.b):
            nft(me.ns, "delete table inet %s_cut\n" % TABLE)

    def step(self):
        s = self.summary
        if self.t_cut is None:
            if self.trigger(self.tsp) < 1:
                return None
            self._cut()
            self.t_cut = time.monotonic()
            s["cut_at"] = time.time()
            s["crossings_before"] = self.drive.crossings_so_far()
            self.drive.say("partition: %s and %s cut apart for %g s"
                           % (self.a.name, self.b.name, self.seconds))
            return None
        if "healed_at" not in s and time.monotonic() - self.t_cut >= self.seconds:
            self._heal()
            s["healed_at"] = time.time()
            s["crossings_during"] = self.drive.crossings_so_far() - s["crossings_before"]
            self.drive.say("partition: %s and %s joined again" % (self.a.name, self.b.name))
        return None

    def over(self):
        return "healed_at" in self.summary
