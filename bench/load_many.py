"""Benchmark 1b: full load of a schema of many small tables PostgreSQL ->
PostgreSQL: NTABLES tables (half parents, half children with a foreign key to
their parent) of NROWS rows each, every one with a primary key and a second
index; penstock (a `snapshot` job) against `pgcopydb clone` with the same
parallelism and `pg_dump | psql`. Source and target are separate clusters
with PostgreSQL's default durability (bench/benchlib.py). What it measures
is the cost per table: catalog work, a transaction and a checkpoint per
table, key and index builds, foreign keys, more than the rows.

Alternates the tools ROUNDS times, each into a fresh target database, with
the CPU seconds of the source server, the target server and the tool; checks
that every target holds every row (count and hash per table), every index
and every foreign key, validated; prints medians and ratios.

usage: load_many.py PENSTOCK_BIN [ROUNDS] [NTABLES] [NROWS] [JOBS]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from benchlib import PGBIN, Measure, Servers, banner, medians, save, sql, url

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
NTABLES = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
NROWS = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
JOBS = int(sys.argv[5]) if len(sys.argv) > 5 else 4
ENV = dict(os.environ, PATH=f"{PGBIN}:{os.environ['PATH']}")
SRC = "manysrc"
PAIRS = NTABLES // 2


def conn_args(cluster):
    return ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]


def make_source(srv):
    sql(srv.source, "postgres", f"CREATE DATABASE {SRC}")
    c = srv.source.connect(SRC)
    try:
        with c.cursor() as cur:
            for i in range(1, PAIRS + 1):
                cur.execute(
                    f"CREATE TABLE p{i} (id bigint PRIMARY KEY, name text NOT NULL, "
                    f"amount numeric(12,2), created timestamptz NOT NULL DEFAULT now());"
                    f"CREATE INDEX ON p{i} (name);"
                    f"CREATE TABLE c{i} (id bigint PRIMARY KEY, p_id bigint NOT NULL "
                    f"REFERENCES p{i} (id), note text, qty int);"
                    f"CREATE INDEX ON c{i} (p_id);"
                    f"INSERT INTO p{i} SELECT g, 'name ' || g, g * 1.25, "
                    f"'2026-01-01'::timestamptz + g * interval '1 minute' "
                    f"FROM generate_series(1, {NROWS}) g;"
                    f"INSERT INTO c{i} SELECT g, (g * 7) % {NROWS} + 1, 'note ' || g, g % 100 "
                    f"FROM generate_series(1, {NROWS}) g;")
            cur.execute("VACUUM ANALYZE")
    finally:
        c.close()


def digest(cluster, db):
    """Rows (count and hash) of every table, and the indexes and validated
    foreign keys of the schema."""
    parts = [f"SELECT '{k}{i}', count(*), coalesce(sum(hashtext(t::text)), 0) FROM {k}{i} t"
             for i in range(1, PAIRS + 1) for k in ("p", "c")]
    rows = sorted(sql(cluster, db, " UNION ALL ".join(parts)))
    idx = sql(cluster, db, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")[0][0]
    fks = sql(cluster, db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND "
                           "convalidated AND connamespace = 'public'::regnamespace")[0][0]
    return rows, idx, fks


def run_penstock(srv, dst, work):
    spec = {"name": "manybench", "type": "snapshot", "source": {"url": url(srv.source, SRC)},
            "target": {"url": url(srv.target, dst)}, "snapshot": {"parallel": JOBS},
            "resume": "never"}
    with open(f"{work}/spec.json", "w") as f:
        json.dump(spec, f)
    subprocess.run([BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"], check=True,
                   stderr=open(f"{work}/penstock.log", "w"))


def run_pgcopydb(srv, dst, work):
    d = f"{work}/pgcopydb"
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run(["pgcopydb", "clone", "--source", url(srv.source, SRC), "--target",
                    url(srv.target, dst), "--table-jobs", str(JOBS), "--index-jobs", str(JOBS),
                    "--dir", d, "--no-owner", "--skip-extensions"], check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=open(f"{work}/pgcopydb.log", "w"))


def run_dump_psql(srv, dst, work):
    dump = subprocess.Popen([str(PGBIN / "pg_dump"), *conn_args(srv.source), "--no-owner", SRC],
                            stdout=subprocess.PIPE)
    subprocess.run([str(PGBIN / "psql"), *conn_args(srv.target), "-q", "-X", "-v",
                    "ON_ERROR_STOP=1", dst], stdin=dump.stdout, check=True,
                   stdout=subprocess.DEVNULL)
    dump.stdout.close()
    assert dump.wait() == 0


PEERS = [("penstock", run_penstock), ("pgcopydb clone", run_pgcopydb),
         ("pg_dump | psql", run_dump_psql)]


def main():
    srv = Servers()
    work = tempfile.mkdtemp(prefix="manybench-")
    recs = {name: [] for name, _ in PEERS}
    try:
        make_source(srv)
        want = digest(srv.source, SRC)
        banner(f"load of {PAIRS * 2} tables x {NROWS:,} rows ({want[1]} indexes, {want[2]} "
               f"foreign keys), {JOBS} jobs, {ROUNDS} rounds")
        n = 0
        for r in range(ROUNDS):
            order = PEERS if r % 2 == 0 else list(reversed(PEERS))
            for name, fn in order:
                n += 1
                dst = f"manydst{n}"
                sql(srv.target, "postgres", f"CREATE DATABASE {dst}")
                sql(srv.target, "postgres", "CHECKPOINT")
                with Measure(srv) as m:
                    fn(srv, dst, work)
                got = digest(srv.target, dst)
                assert got[0] == want[0], f"{name}: rows differ"
                assert got[1:] == want[1:], f"{name}: indexes/foreign keys {got[1:]} != {want[1:]}"
                rec = m.record()
                recs[name].append(rec)
                print(f"  round {r + 1}: {name:<16} {rec['wall']:6.2f}s  CPU s: source "
                      f"{rec['source']:.2f}, target {rec['target']:.2f}, client "
                      f"{rec['client']:.2f}", flush=True)
                sql(srv.target, "postgres", f"DROP DATABASE {dst}")
    finally:
        srv.stop()
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    med = {k: medians(v) for k, v in recs.items()}
    print(f"medians of {ROUNDS} rounds:")
    for k, v in med.items():
        print(f"{k:<18} {v['wall']:6.2f}s  CPU s: source {v['source']:.2f}, target "
              f"{v['target']:.2f}, client {v['client']:.2f}")
    for k in med:
        if k != "penstock":
            goal = "  (goal <= 0.6)" if k == "pgcopydb clone" else ""
            print(f"ratio penstock/{k}: {med['penstock']['wall'] / med[k]['wall']:.2f}{goal}")
    save("load_many", {"tables": PAIRS * 2, "rows": NROWS, "jobs": JOBS, "rounds": ROUNDS,
                       "records": recs, "medians": med})


if __name__ == "__main__":
    main()
