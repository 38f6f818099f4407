#!/usr/bin/python3
"""Writes the seed corpora of fuzz_pgoutput.c (tests/fuzz/corpus/pgoutput/)
and fuzz_pgbinwalk.c (tests/fuzz/corpus/pgbinwalk/):

  - the messages of tests/unit/test_pgoutput.c's fixtures and the streams of
    tests/unit/test_pgbinwalk.c's cases, built here the same way;
  - what a real PostgreSQL 15 sends: a throwaway cluster (scripts/pgtmp.sh)
    runs a workload over a type zoo (every type class, an enum, arrays,
    TOAST left unchanged, REPLICA IDENTITY FULL and DEFAULT, a key change,
    TRUNCATE of two tables with CASCADE and RESTART IDENTITY, a column
    added, logical messages in and out of a transaction, a replication
    origin), read back through a pgoutput slot (proto_version 1, messages
    on), and COPY ... (FORMAT binary) of each table.

pgoutput seeds: the whole session as frames (see fuzz_pgoutput.c), and each
message behind the Relation (and Type) messages it needs. pgbinwalk seeds:
the field count, a piece-size seed, then the stream.

    /usr/bin/python3 tests/fuzz/make_corpus_pg.py   (needs PostgreSQL 15, psycopg2)
"""
import hashlib
import io
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
PGTMP = os.path.join(ROOT, "scripts", "pgtmp.sh")
OUT_PGO = os.path.join(HERE, "corpus", "pgoutput")
OUT_WALK = os.path.join(HERE, "corpus", "pgbinwalk")


def frame(msg):
    assert len(msg) < 65536
    return struct.pack(">H", len(msg)) + msg


def write(out, seed):
    with open(os.path.join(out, hashlib.sha1(seed).hexdigest()), "wb") as f:
        f.write(seed)


def reset(out):
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):
        if not old.startswith(("regress-", "found-")):  # findings and long runs' inputs stay
            os.unlink(os.path.join(out, old))


# --- the unit tests' fixtures ------------------------------------------------

def s(text):
    return text.encode() + b"\0"


def col(flags, name, oid, mod):
    return bytes([flags]) + s(name) + struct.pack(">Ii", oid, mod)


def text(v):
    return b"t" + struct.pack(">I", len(v)) + v.encode()


def relation(relid, nsp, name, ident, cols):
    return b"R" + struct.pack(">I", relid) + s(nsp) + s(name) + ident.encode() + \
        struct.pack(">H", len(cols)) + b"".join(cols)


ORDERS, ITEMS = 16384, 16390
REL_ORDERS = relation(ORDERS, "public", "orders", "d", [
    col(1, "id", 23, -1), col(0, "note", 25, -1), col(0, "doc", 3802, -1)])
REL_ORDERS_V2 = relation(ORDERS, "public", "orders", "f", [
    col(1, "id", 23, -1), col(0, "note", 25, -1), col(0, "doc", 3802, -1),
    col(0, "amount", 1700, (10 << 16 | 2) + 4)])
REL_ITEMS = relation(ITEMS, "", "items", "i", [
    col(1, "k1", 20, -1), col(1, "k2", 16, -1), col(0, "f", 701, -1),
    col(0, "j", 114, -1), col(0, "b", 17, -1), col(0, "v", 1043, 36),
    col(0, "o", 26, -1)])


def fixtures():
    tup3 = struct.pack(">H", 3)
    yield b"B" + struct.pack(">QqI", 0x100000002, 1000000, 735)
    yield b"C\0" + struct.pack(">QQq", 0x16B3F10, 0x16B3F40, 742000000000000)
    yield b"O" + struct.pack(">Q", 0xABCDEF01) + s("upstream_a")
    yield b"Y" + struct.pack(">I", 90001) + s("") + s("mood")
    yield REL_ORDERS
    yield REL_ITEMS
    yield REL_ORDERS_V2
    yield b"I" + struct.pack(">I", ORDERS) + b"N" + tup3 + text("42") + b"n" + b"u"
    yield b"I" + struct.pack(">I", ORDERS) + b"N" + struct.pack(">H", 4) + text("7") + \
        text("hello") + text('{"a":1}') + text("12.50")
    new = b"N" + tup3 + text("42") + text("") + b"u"
    yield b"U" + struct.pack(">I", ORDERS) + new
    yield b"U" + struct.pack(">I", ORDERS) + b"K" + tup3 + text("41") + b"nn" + new
    yield b"U" + struct.pack(">I", ORDERS) + b"O" + tup3 + text("41") + text("old note") + \
        text("{}") + new
    yield b"D" + struct.pack(">I", ORDERS) + b"K" + tup3 + text("42") + b"nn"
    yield b"D" + struct.pack(">I", ORDERS) + b"O" + tup3 + text("42") + text("bye") + b"n"
    yield b"T" + struct.pack(">iB", 2, 3) + struct.pack(">II", ORDERS, ITEMS)
    for flags in (0, 1):
        yield b"M" + bytes([flags]) + struct.pack(">Q", 0x2000010) + s("penstock.test") + \
            struct.pack(">I", 3) + b"a\0b"
    yield b"#16/B374D848"


def fixture_seeds():
    fx = list(fixtures())
    yield b"".join(frame(m) for m in fx)
    for m in fx:
        if m[:1] in (b"I", b"U", b"D", b"T"):
            seed = frame(REL_ORDERS) + frame(REL_ITEMS)
            if m[:1] == b"I" and b"12.50" in m:
                seed = frame(REL_ORDERS_V2)
            yield seed + frame(m)
        else:
            yield frame(m)


def walk_seeds():
    def header(flags=0, ext=b""):
        return b"PGCOPY\n\xff\r\n\0" + struct.pack(">iI", flags, len(ext)) + ext

    def tup(values):
        out = struct.pack(">h", len(values))
        for v in values:
            out += struct.pack(">i", -1) if v is None else struct.pack(">i", len(v)) + v
        return out

    trailer = struct.pack(">h", -1)
    yield 3, header() + tup([b"1", b"hello", None]) + tup([None, b"", b"x"]) + \
        tup([b"a long value, longer than a length word", b"y", b"z"]) + trailer
    yield 2, header(0, b"ext") + tup([b"abc", None]) + trailer
    yield 0, header() + tup([]) + tup([]) + trailer
    yield 4, header() + trailer
    yield 1, header(1 << 16)
    yield 1, header() + tup([b"v"]) + tup([b"v", b"w"]) + trailer
    yield 1, header() + struct.pack(">hi", 1, -2)
    yield 1, header() + tup([b"v"]) + trailer + struct.pack(">h", 1)


# --- a real PostgreSQL -------------------------------------------------------

SETUP = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE zoo (
  id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, f4 real, f8 double precision,
  n numeric(12,3), t text, vc varchar(20), c char(4), by bytea, j json, jb jsonb,
  d date, tm time, ts timestamp, tz timestamptz, iv interval, u uuid, ia integer[],
  ta text[], m mood, inet inet, bits bit varying(8), big text);
CREATE TABLE parent (id serial PRIMARY KEY, note text);
CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent(id));
CREATE TABLE nokey (a int, b text);
ALTER TABLE nokey REPLICA IDENTITY FULL;
CREATE PUBLICATION fz FOR ALL TABLES;
"""

ROW = """INSERT INTO zoo VALUES (%s, true, -32768, 2147483647, 'NaN', '-Infinity', -12345.678,
  'caf\u00e9 \u2603', 'short', 'ab', '\\x00ff10', '{"a": [1, 2.5, null]}', '{"k": {"n": true}}',
  '2024-02-29', '23:59:59.999999', '1999-12-31 23:59:59.5', '2000-01-01 00:00:00+00',
  '1 year 2 mons -3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,NULL,3}',
  '{"x y","\\"q\\""}', 'happy', '::1', B'101', %s)"""


def workload(cur):
    big = "".join(chr(0x41 + (i * 7919) % 26) for i in range(3000))
    cur.execute(ROW, (1, big))
    cur.execute(ROW, (2, None))
    cur.execute("UPDATE zoo SET t = 'changed' WHERE id = 1")          # big stays unchanged
    cur.execute("UPDATE zoo SET id = 3 WHERE id = 2")                 # key change: 'K'
    cur.execute("INSERT INTO nokey VALUES (1, 'one'), (2, NULL)")
    cur.execute("UPDATE nokey SET b = 'uno' WHERE a = 1")             # REPLICA IDENTITY FULL: 'O'
    cur.execute("DELETE FROM nokey WHERE a = 2")
    cur.execute("DELETE FROM zoo WHERE id = 3")
    cur.execute("INSERT INTO parent (note) VALUES ('p')")
    cur.execute("INSERT INTO child (parent_id) VALUES (1)")
    cur.execute("TRUNCATE parent, child RESTART IDENTITY CASCADE")
    cur.execute("ALTER TABLE zoo ADD COLUMN extra numeric(5,2) DEFAULT 1.5")
    cur.execute("INSERT INTO zoo (id, extra) VALUES (4, 99.99)")
    cur.execute("SELECT pg_logical_emit_message(false, 'penstock.lone', '\\x610062'::bytea)")
    cur.execute("BEGIN")
    cur.execute("SELECT pg_logical_emit_message(true, 'penstock.txn', 'in a transaction')")
    cur.execute("INSERT INTO nokey VALUES (3, 'three')")
    cur.execute("COMMIT")
    cur.execute("SELECT pg_replication_origin_create('upstream_a')")
    cur.execute("SELECT pg_replication_origin_session_setup('upstream_a')")
    cur.execute("BEGIN")
    cur.execute("SELECT pg_replication_origin_xact_setup('0/ABCDEF01', now())")
    cur.execute("INSERT INTO nokey VALUES (4, 'from upstream')")
    cur.execute("COMMIT")
    cur.execute("SELECT pg_replication_origin_session_reset()")


def from_server():
    import psycopg2
    import psycopg2.extras

    tmp = tempfile.mkdtemp(prefix="pgcorpus-")
    if os.getuid() == 0:
        shutil.chown(tmp, "postgres")
    port = subprocess.check_output([PGTMP, "freeport"]).decode().strip()
    subprocess.run([PGTMP, "start", os.path.join(tmp, "pg"), port], check=True)
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres", user="postgres")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(SETUP)
        rconn = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres",
                                 user="postgres",
                                 connection_factory=psycopg2.extras.LogicalReplicationConnection)
        rcur = rconn.cursor()
        rcur.create_replication_slot("fz", output_plugin="pgoutput")
        workload(cur)
        rcur.start_replication(slot_name="fz", decode=False,
                               options={"proto_version": "1", "publication_names": "fz",
                                        "messages": "true"})
        msgs = []
        quiet_until = time.monotonic() + 5.0     # the stream has ended when it stays quiet
        while time.monotonic() < quiet_until:
            m = rcur.read_message()
            if m is None:
                select.select([rcur], [], [], 0.5)
                continue
            msgs.append(bytes(m.payload))
            quiet_until = time.monotonic() + 5.0
        rconn.close()
        streams = []
        for table, nfields in (("zoo", 26), ("nokey", 2), ("parent", 2)):
            buf = io.BytesIO()
            cur.copy_expert(f"COPY {table} TO STDOUT (FORMAT binary)", buf)
            streams.append((nfields, buf.getvalue()))
        conn.close()
        return msgs, streams
    finally:
        subprocess.run([PGTMP, "stop", os.path.join(tmp, "pg")], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def server_seeds(msgs):
    yield b"".join(frame(m) for m in msgs)
    rels, types = {}, []
    for m in msgs:
        kind = m[:1]
        if kind == b"R":
            rels[m[1:5]] = m
            yield frame(m)
        elif kind == b"Y":
            types.append(m)
            yield frame(m)
        elif kind in (b"I", b"U", b"D"):
            yield b"".join(frame(t) for t in types) + frame(rels[m[1:5]]) + frame(m)
        elif kind == b"T":
            n = struct.unpack(">i", m[1:5])[0]
            ids = [m[6 + 4 * i:10 + 4 * i] for i in range(n)]
            yield b"".join(frame(rels[i]) for i in ids) + frame(m)
        else:
            yield frame(m)


def main():
    reset(OUT_PGO)
    reset(OUT_WALK)
    npgo = nwalk = 0
    for seed in fixture_seeds():
        write(OUT_PGO, seed)
        npgo += 1
    for nfields, stream in walk_seeds():
        write(OUT_WALK, bytes([nfields, 7]) + stream)
        nwalk += 1
    msgs, streams = from_server()
    for seed in server_seeds(msgs):
        write(OUT_PGO, seed)
        npgo += 1
    for nfields, stream in streams:
        write(OUT_WALK, bytes([nfields, 0]) + stream)
        write(OUT_WALK, bytes([nfields, 200]) + stream)
        nwalk += 2
    print(len(msgs), "messages from the server;", npgo, "seeds in", OUT_PGO, ";",
          nwalk, "in", OUT_WALK)
    return 0


if __name__ == "__main__":
    sys.exit(main())
