"""Reading the daemons' SQLite stores while they run, and what the
testbeds read out of them."""

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile

# The detail of a vehicle's `crossing` event; `entry` says whether its
# first answer came on a session opened ahead (prepared) or to an M3 sent
# on the crossing (on_crossing), and is missing in stores of older builds.
CROSSING_RX = re.compile(r"^from=(\S+) to=(\S+) gap_ms=(\d+(?:\.\d+)?) reauth=([01])"
                         r"(?: entry=(prepared|on_crossing))?$")


def _rows(target, sql, args, uri):
    con = sqlite3.connect(target, uri=uri, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def _rows_of_copy(path, sql, args, scratch):
    """sql on a copy of the store and its WAL, for a store that stays busy."""
    tmp = tempfile.mkdtemp(dir=scratch)
    try:
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                shutil.copyfile(path + suffix, os.path.join(tmp, "s.db" + suffix))
        return _rows(os.path.join(tmp, "s.db"), sql, args, False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pg_value(v):
    if v == "\\N":
        return None
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"t": 1, "f": 0}.get(v, v)


def pg_rows(uri, sql, args=()):
    """Rows of sql on a PostgreSQL store (psql), as SQLite's would come:
    numbers as numbers, booleans as 0 and 1; ?-placeholders take args,
    quoted.  Raises sqlite3.OperationalError on failure."""
    for a in args:
        lit = str(a) if isinstance(a, (int, float)) else "'%s'" % str(a).replace("'", "''")
        sql = sql.replace("?", lit, 1)
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-P", "null=\\N",
                        "-v", "ON_ERROR_STOP=1", "-d", uri, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise sqlite3.OperationalError(p.stderr.strip())
    return [tuple(_pg_value(v) for v in line.split("\x1f"))
            for line in p.stdout.splitlines() if line != ""]


def query(path, sql, args=(), strict=False, scratch=None):
    """Rows of sql on the store at path, opened read-only; a store that
    stays busy is read from a copy (made in scratch, default the temporary
    directory).  A store not there yet, a table not there yet or any other
    SQLite error gives [], or with strict raises sqlite3.Error.  A path
    that is a PostgreSQL URI is read with psql."""
    if path.startswith("postgresql:"):
        try:
            return pg_rows(path, sql, args)
        except sqlite3.Error:
            if strict:
                raise
            return []
    if not os.path.exists(path):
        if strict:
            raise sqlite3.OperationalError("no store yet: %s" % path)
        return []
    try:
        try:
            return _rows("file:%s?mode=ro" % path, sql, args, True)
        except sqlite3.OperationalError as e:
            if "no such" in str(e) or "syntax" in str(e):
                raise
            return _rows_of_copy(path, sql, args, scratch)
    except sqlite3.Error:
        if strict:
            raise
        return []


def median(xs):
    """The median of a sequence of numbers; None for none."""
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def parse_crossing(detail):
    """(from, to, gap_ms, reauth) of a crossing event's detail; None if it
    is not one."""
    m = CROSSING_RX.match(detail or "")
    if m is None:
        return None
    return (m.group(1), m.group(2), float(m.group(3)), int(m.group(4)))


def crossing_entry(detail):
    """How a crossing event's first answer came: "prepared",
    "on_crossing", or None if the event does not say."""
    m = CROSSING_RX.match(detail or "")
    return m.group(5) if m else None


def crossings(store, with_entry=False):
    """[(from, to, gap_ms, reauth)] a vehicle journalled in its store, in
    order, with crossing_entry() as a fifth item if with_entry; [] while
    the store is not there."""
    out = []
    for (detail,) in query(store, "SELECT detail FROM events WHERE kind='crossing' "
                                  "ORDER BY id"):
        c = parse_crossing(detail)
        if c is not None:
            out.append(c + (crossing_entry(detail),) if with_entry else c)
    return out


def fleet(vehicle_id, store, n):
    """[(VIN, store path)] of the vehicles of one vehicled: with `fleet n`
    (n > 0) the last digits of vehicle_id are replaced by the vehicle's
    number and each has store.<number>, as vehicled numbers them."""
    if not n:
        return [(vehicle_id, store)]
    d = len(str(n - 1))
    return [(vehicle_id[:17 - d] + "%0*d" % (d, i), "%s.%d" % (store, i)) for i in range(n)]
