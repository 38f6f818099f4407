"""Helpers for tests with a MariaDB target: every row of a target table in
PostgreSQL's canonical text (the form pg_rows gives for the source), and a
polled wait for a target to equal its PostgreSQL source.

The conversion is the inverse of docs/types-mariadb.md, written here apart
from penstock's own code (compare's MariaDB side) so that the tests check
penstock against an independent reading: booleans 1/0 -> t/f, bytes -> \\x
hex, DATETIME of a timestamptz -> +00, fractions without trailing zeros,
FLOAT compared as the float it holds, char(n) padded, numeric through
Decimal (so that 1.50 and 1.5 are the same value only when the source's
scale says so: DECIMAL keeps the scale, so they are compared as text).
"""
import collections
import struct

from conftest import pg_column_types, pg_rows, wait_for


def _f32(x):
    return struct.unpack("f", struct.pack("f", float(x)))[0]


def _f32_text(value):
    """The shortest text that reads back to the same float (PostgreSQL's real)."""
    f = _f32(value)
    if f == 0:
        return "0"
    for p in range(1, 10):
        t = "%.*g" % (p, f)
        if _f32(t) == f:
            break
    if "e" in t:                      # PostgreSQL writes 1e+30 as 1e+30
        mant, exp = t.split("e")
        t = f"{mant}e{'+' if int(exp) >= 0 else '-'}{abs(int(exp)):02d}"
    return t


def _trim_fraction(v):
    if "." in v:
        v = v.rstrip("0").rstrip(".")
    return v


def maria_text(value, pgtype):
    """One MariaDB value (text protocol, conv={}) as PostgreSQL's canonical text."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if pgtype == "boolean":
        return {"1": "t", "0": "f"}[value]
    if pgtype == "real":
        return _f32_text(value)
    if pgtype.startswith("timestamp") and pgtype.endswith("with time zone"):
        return _trim_fraction(value) + "+00"
    if pgtype.startswith("timestamp") or pgtype.startswith("time"):
        return _trim_fraction(value)
    if pgtype.startswith("character(") or pgtype == "character":
        n = int(pgtype[pgtype.index("(") + 1:-1]) if "(" in pgtype else 1
        return value.ljust(n)
    return value


def _select_list(conn, db, table):
    """Column expressions: FLOATs read as the double they hold."""
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
                    (db, table))
        cols = cur.fetchall()
    return ", ".join(f"CAST(`{c}` AS DOUBLE)" if t == "float" else f"`{c}`" for c, t in cols)


def maria_rows(m, db, table, pg_types):
    """Every row of db.table as tuples of canonical text, sorted like pg_rows."""
    c = m.connect(db, conv={})
    try:
        with c.cursor() as cur:
            cur.execute(f"SELECT {_select_list(c, db, table)} FROM `{table}`")
            raw = cur.fetchall()
    finally:
        c.close()
    out = [tuple(maria_text(v, t) for v, t in zip(r, pg_types)) for r in raw]
    return sorted(out, key=lambda r: tuple((v is None, v or "") for v in r))


def _comparable(row, pg_types):
    """Floats compare as the float or double they are."""
    out = []
    for v, t in zip(row, pg_types):
        if v is None or v in ("NaN", "Infinity", "-Infinity"):
            out.append(v)
        elif t == "real":
            out.append(_f32(v))
        elif t == "double precision":
            out.append(float(v))
        else:
            out.append(v)
    return tuple(out)


def rows_equal(source, m, db, table):
    """(equal, source rows, target rows) of a PostgreSQL table and its copy."""
    name = table.split(".", 1)[1] if "." in table else table
    types = pg_column_types(source, table)
    src = [_comparable(r, types) for r in pg_rows(source, table)]
    dst = [_comparable(r, types) for r in maria_rows(m, db, name, types)]
    return collections.Counter(src) == collections.Counter(dst), src, dst


def wait_equal_maria(source, m, db, tables, timeout=90):
    """Polls until every table holds the same rows in the source and in db."""
    last = {}

    def equal():
        for t in tables:
            same, src, dst = rows_equal(source, m, db, t)
            if not same:
                have, got = collections.Counter(src), collections.Counter(dst)
                last.update(table=t, counts=(len(src), len(dst)),
                            missing=list((have - got).elements())[:5],
                            extra=list((got - have).elements())[:5])
                return False
        return True
    try:
        wait_for(equal, timeout, interval=0.2, what="the MariaDB target to equal the source")
    except AssertionError as e:
        raise AssertionError(f"{e}: first difference {last}") from None


def new_database(m, name):
    m.execute(f"DROP DATABASE IF EXISTS `{name}`")
    m.execute(f"CREATE DATABASE `{name}`")
    return name


def url_of(m, db=""):
    return f"mysql://root@127.0.0.1:{m.port}/{db}"
