"""Benchmark 1: full load of `pgbench -i -s SCALE` PostgreSQL -> PostgreSQL
(tables, data, primary keys and indexes), penstock (a `snapshot` job) against
`pgcopydb clone` with the same parallelism, `pg_dump | psql`, and the floor —
one `COPY ... TO STDOUT (FORMAT binary)` piped into `COPY ... FROM STDIN` per
table, tables in parallel, no indexes. Source and target are separate
clusters with PostgreSQL's default durability (bench/benchlib.py). Alternates
the tools ROUNDS times, each into a fresh target database, with the CPU
seconds of the source server, the target server and the tool itself; checks
that every target holds the source's rows; prints medians and ratios.

usage: load_pg.py PENSTOCK_BIN [ROUNDS] [SCALE] [JOBS]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from benchlib import (PGBIN, Measure, Servers, banner, medians, pgbench, save, sql, url)

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SCALE = int(sys.argv[3]) if len(sys.argv) > 3 else 30
JOBS = int(sys.argv[4]) if len(sys.argv) > 4 else 4
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
ENV = dict(os.environ, PATH=f"{PGBIN}:{os.environ['PATH']}")
SRC = "loadsrc"


def conn_args(cluster):
    return ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]


def run_penstock(srv, dst, work):
    spec = {"name": "loadbench", "type": "snapshot", "source": {"url": url(srv.source, SRC)},
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


def run_copy_pipe(srv, dst, work):
    """The floor: the table definitions (pre-data section, no keys or
    indexes), then one binary COPY pipe per table, all tables at once."""
    schema = subprocess.run([str(PGBIN / "pg_dump"), *conn_args(srv.source), "--schema-only",
                             "--section=pre-data", SRC], check=True, capture_output=True).stdout
    subprocess.run([str(PGBIN / "psql"), *conn_args(srv.target), "-q", "-X", dst], input=schema,
                   check=True, stdout=subprocess.DEVNULL)
    procs = []
    for t in TABLES:
        out = subprocess.Popen([str(PGBIN / "psql"), *conn_args(srv.source), "-q", "-X", SRC,
                                "-c", f"COPY {t} TO STDOUT (FORMAT binary)"],
                               stdout=subprocess.PIPE)
        into = subprocess.Popen([str(PGBIN / "psql"), *conn_args(srv.target), "-q", "-X", dst,
                                 "-c", f"COPY {t} FROM STDIN (FORMAT binary)"],
                                stdin=out.stdout, stdout=subprocess.DEVNULL)
        out.stdout.close()
        procs += [out, into]
    for p in procs:
        assert p.wait() == 0


def counts(cluster, db):
    return [tuple(sql(cluster, db, f"SELECT count(*), coalesce(sum(hashtext(t::text)), 0) "
                                   f"FROM {t} t")[0]) for t in TABLES]


PEERS = [("penstock", run_penstock), ("pgcopydb clone", run_pgcopydb),
         ("pg_dump | psql", run_dump_psql),
         ("binary COPY pipe (floor, no indexes)", run_copy_pipe)]


def main():
    srv = Servers()
    work = tempfile.mkdtemp(prefix="loadbench-")
    recs = {name: [] for name, _ in PEERS}
    try:
        sql(srv.source, "postgres", f"CREATE DATABASE {SRC}")
        subprocess.run(pgbench(srv.source) + ["-i", "-s", str(SCALE), "-q", SRC], check=True,
                       capture_output=True)
        sql(srv.source, SRC, "ALTER TABLE pgbench_history REPLICA IDENTITY FULL; ANALYZE")
        want = counts(srv.source, SRC)
        banner(f"load of pgbench scale {SCALE} ({want[0][0]:,} accounts), {JOBS} jobs, "
               f"{ROUNDS} rounds")
        n = 0
        for r in range(ROUNDS):
            order = PEERS if r % 2 == 0 else list(reversed(PEERS))
            for name, fn in order:
                n += 1
                dst = f"loaddst{n}"
                sql(srv.target, "postgres", f"CREATE DATABASE {dst}")
                sql(srv.target, "postgres", "CHECKPOINT")
                with Measure(srv) as m:
                    fn(srv, dst, work)
                got = counts(srv.target, dst)
                assert got == want, f"{name}: target differs from source: {got} != {want}"
                rec = m.record()
                recs[name].append(rec)
                print(f"  round {r + 1}: {name:<38} {rec['wall']:6.2f}s  CPU s: source "
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
        print(f"{k:<40} {v['wall']:6.2f}s  CPU s: source {v['source']:.2f}, target "
              f"{v['target']:.2f}, client {v['client']:.2f}")
    for k in med:
        if k != "penstock":
            goal = "  (goal <= 0.6)" if k == "pgcopydb clone" else ""
            print(f"ratio penstock/{k}: {med['penstock']['wall'] / med[k]['wall']:.2f}{goal}")
    save("load", {"scale": SCALE, "jobs": JOBS, "rounds": ROUNDS, "records": recs,
                  "medians": med})


if __name__ == "__main__":
    main()
