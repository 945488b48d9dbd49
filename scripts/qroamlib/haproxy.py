"""HAProxy in TCP mode in front of a region's tspd instances.

One configuration serves the testbed and the tests: a frontend per side
(vehicle, provision) on the region's address, a backend of the instances,
each health-checked; a connection to a dead instance is retried on
another (retries, option redispatch)."""

HAPROXY = "/usr/sbin/haproxy"


def config(front, servers, balance="leastconn", check="check inter 500ms"):
    """The configuration text: front maps a side to the port HAProxy binds
    on loopback, servers maps the same side to its instances' ports."""
    lines = ["global", "    maxconn 4000", "defaults", "    mode tcp",
             "    timeout connect 2s", "    timeout client 1h", "    timeout server 1h",
             "    retries 3", "    option redispatch"]
    for side in sorted(front):
        lines += ["frontend %s" % side, "    bind 127.0.0.1:%d" % front[side],
                  "    default_backend %s" % side, "backend %s" % side,
                  "    balance %s" % balance]
        lines += ["    server i%d 127.0.0.1:%d %s" % (i + 1, p, check)
                  for i, p in enumerate(servers[side])]
    return "\n".join(lines) + "\n"
