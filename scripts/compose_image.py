"""What a compose service's container gets from its image and its compose
entry, for scripts/compose_netns.py: the user it runs as (the service's
`user:`, else the USER of the image's Dockerfile, names resolved with the
groupadd/useradd of that Dockerfile), its working directory, the owner and
mode a new named volume takes from the image's mount point (the
directories the Dockerfile makes with `install -d -o -g -m`), and the
restart policy.
"""

import os
import re
import shlex


def image_facts(base, build):
    """What the last stage of a service's Dockerfile says about the
    container: {user, workdir, users {name: (uid, gid)}, groups {name: gid},
    dirs {path: (owner, group, mode)}} (dirs: what `install -d -o -g -m`
    creates, as a named volume mounted there starts out)."""
    facts = {"user": None, "workdir": "/", "users": {}, "groups": {}, "dirs": {}}
    if build is None:
        return facts
    ctx = build if isinstance(build, str) else build.get("context", ".")
    name = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    path = os.path.join(base, ctx, name)
    if not os.path.isfile(path):
        return facts
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    last = re.split(r"^FROM\s", text, flags=re.M)[-1]
    for line in last.splitlines():
        words = line.split()
        if not words:
            continue
        op = words[0].upper()
        if op == "USER" and len(words) > 1:
            facts["user"] = words[1]
        elif op == "WORKDIR" and len(words) > 1:
            facts["workdir"] = words[1]
        elif op == "RUN":
            for cmd in re.split(r"&&|;", line[3:]):
                _run_facts(shlex.split(cmd), facts)
    return facts


def _run_facts(w, facts):
    """Users, groups and directories one RUN command creates."""
    if not w:
        return
    opt = {w[i]: w[i + 1] for i in range(len(w) - 1) if w[i].startswith("-")}
    if w[0] == "groupadd" and "--gid" in opt:
        facts["groups"][w[-1]] = int(opt["--gid"])
    elif w[0] == "useradd" and "--uid" in opt:
        g = opt.get("--gid", opt["--uid"])
        facts["users"][w[-1]] = (int(opt["--uid"]), g)
    elif w[0] == "install" and "-d" in w:
        mode = int(opt.get("-m", "755"), 8)
        skip = {opt[k] for k in ("-o", "-g", "-m") if k in opt}
        for d in w[1:]:
            if d.startswith("/") and d not in skip:
                facts["dirs"][d] = (opt.get("-o", "0"), opt.get("-g", "0"), mode)


def resolve_ids(spec, facts):
    """(uid, gid) of a compose `user:` or Dockerfile USER value ("name",
    "uid", "name:group", "uid:gid"); (0, 0) for none."""
    if not spec:
        return (0, 0)
    user, _, group = str(spec).partition(":")
    if user.isdigit():
        uid, gid = int(user), int(user)
    elif user in facts["users"]:
        uid, gid = facts["users"][user]
    elif user == "root":
        uid, gid = 0, 0
    else:
        raise ValueError("user %s is not created by the image's Dockerfile" % user)
    if group:
        gid = group
    if isinstance(gid, str) and not gid.isdigit():
        if gid not in facts["groups"]:
            raise ValueError("group %s is not created by the image's Dockerfile" % gid)
        gid = facts["groups"][gid]
    return (uid, int(gid))


def as_user(svc):
    """The prefix that runs a command as the service's container user
    inside `ip netns exec` (none for root)."""
    uid, gid = svc.ids
    if uid == 0 and gid == 0:
        return []
    # A change of ids clears the parent-death signal the runner sets; keep
    # it, so the daemons still die with a killed runner.
    return ["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups",
            "--pdeathsig", "keep", "--"]


def restarts(policy, status, done):
    """Whether a compose restart policy restarts a process that exited
    with status (negative: killed by that signal) after done restarts."""
    name, _, limit = policy.partition(":")
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        return status != 0 and (not limit or done < int(limit))
    return False


