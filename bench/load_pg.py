"""Benchmark: full load of `pgbench -i -s SCALE` PostgreSQL -> PostgreSQL
(tables, data, primary keys and indexes), penstock (a `snapshot` job) against
`pgcopydb clone` with the same parallelism, `pg_dump | psql`, and the floor —
one `COPY ... TO STDOUT (FORMAT binary)` piped into `COPY ... FROM STDIN` per
table, tables in parallel, no indexes. Alternates them ROUNDS times, each into
a fresh target database; checks that every target holds the source's rows;
prints medians and ratios.

usage: load_pg.py PENSTOCK_BIN [ROUNDS] [SCALE] [JOBS]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import PGBIN, Cluster  # noqa: E402  (the test harness's throwaway server)

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SCALE = int(sys.argv[3]) if len(sys.argv) > 3 else 30
JOBS = int(sys.argv[4]) if len(sys.argv) > 4 else 4
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
ENV = dict(os.environ, PATH=f"{PGBIN}:{os.environ['PATH']}")


def pg_url(cluster, db):
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{db}"


def run_penstock(cluster, src, dst, work):
    spec = {"name": "loadbench", "type": "snapshot", "source": {"url": pg_url(cluster, src)},
            "target": {"url": pg_url(cluster, dst)}, "snapshot": {"parallel": JOBS},
            "resume": "never"}
    with open(f"{work}/spec.json", "w") as f:
        json.dump(spec, f)
    subprocess.run([BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"], check=True,
                   stderr=open(f"{work}/penstock.log", "w"))


def run_pgcopydb(cluster, src, dst, work):
    d = f"{work}/pgcopydb"
    shutil.rmtree(d, ignore_errors=True)
    subprocess.run(["pgcopydb", "clone", "--source", pg_url(cluster, src), "--target",
                    pg_url(cluster, dst), "--table-jobs", str(JOBS), "--index-jobs", str(JOBS),
                    "--dir", d, "--no-owner", "--skip-extensions"], check=True, env=ENV,
                   stdout=subprocess.DEVNULL, stderr=open(f"{work}/pgcopydb.log", "w"))


def run_dump_psql(cluster, src, dst, work):
    base = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    dump = subprocess.Popen([str(PGBIN / "pg_dump")] + base + ["--no-owner", src],
                            stdout=subprocess.PIPE)
    subprocess.run([str(PGBIN / "psql")] + base + ["-q", "-X", "-v", "ON_ERROR_STOP=1", dst],
                   stdin=dump.stdout, check=True, stdout=subprocess.DEVNULL)
    dump.stdout.close()
    assert dump.wait() == 0


def run_copy_pipe(cluster, src, dst, work):
    """The floor: the table definitions (pre-data section, no keys or
    indexes), then one binary COPY pipe per table, all tables at once."""
    base = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-q", "-X"]
    schema = subprocess.run([str(PGBIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(cluster.port),
                             "-U", "postgres", "--schema-only", "--section=pre-data", src],
                            check=True, capture_output=True).stdout
    subprocess.run([str(PGBIN / "psql")] + base + [dst], input=schema, check=True,
                   stdout=subprocess.DEVNULL)
    procs = []
    for t in TABLES:
        out = subprocess.Popen([str(PGBIN / "psql")] + base + [src, "-c",
                               f"COPY {t} TO STDOUT (FORMAT binary)"], stdout=subprocess.PIPE)
        into = subprocess.Popen([str(PGBIN / "psql")] + base + [dst, "-c",
                                f"COPY {t} FROM STDIN (FORMAT binary)"], stdin=out.stdout,
                                stdout=subprocess.DEVNULL)
        out.stdout.close()
        procs += [out, into]
    for p in procs:
        assert p.wait() == 0


def counts(cluster, db):
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            out = []
            for t in TABLES:
                cur.execute(f"SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM {t} t")
                out.append(cur.fetchone())
            return out
    finally:
        c.close()


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    work = tempfile.mkdtemp(prefix="loadbench-")
    peers = [("penstock", run_penstock), ("pgcopydb clone", run_pgcopydb),
             ("pg_dump | psql", run_dump_psql), ("binary COPY pipe (floor, no indexes)", run_copy_pipe)]
    times = {name: [] for name, _ in peers}
    try:
        src = "loadsrc"
        c = cluster.connect()
        c.cursor().execute(f"CREATE DATABASE {src}")
        c.close()
        subprocess.run([str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
                        "postgres", "-i", "-s", str(SCALE), "-q", src], check=True,
                       capture_output=True)
        s = cluster.connect(src)
        s.cursor().execute("ALTER TABLE pgbench_history REPLICA IDENTITY FULL; ANALYZE")
        s.close()
        want = counts(cluster, src)
        print(f"load of pgbench scale {SCALE} ({want[0][0]:,} accounts), {JOBS} jobs, "
              f"{ROUNDS} rounds", flush=True)
        n = 0
        for r in range(ROUNDS):
            order = peers if r % 2 == 0 else list(reversed(peers))
            for name, fn in order:
                n += 1
                dst = f"loaddst{n}"
                c = cluster.connect()
                c.cursor().execute(f"CREATE DATABASE {dst}")
                c.close()
                t0 = time.monotonic()
                fn(cluster, src, dst, work)
                elapsed = time.monotonic() - t0
                got = counts(cluster, dst)
                assert got == want, f"{name}: target differs from source: {got} != {want}"
                times[name].append(elapsed)
                print(f"  round {r + 1}: {name:<38} {elapsed:6.2f}s", flush=True)
                c = cluster.connect()
                c.cursor().execute(f"DROP DATABASE {dst}")
                c.close()
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)   # a cluster is GBs; leave none behind
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:<40} median {v:6.2f}s")
    for k in med:
        if k != "penstock":
            print(f"ratio penstock/{k}: {med['penstock'] / med[k]:.2f}")


if __name__ == "__main__":
    main()
