"""Benchmark: full load of `pgbench -i -s SCALE` PostgreSQL -> MariaDB 10.11
(tables, data, primary keys), penstock (a `snapshot` job, JOBS workers)
against the two paths a Debian user has without it:

- COPY CSV | LOAD DATA LOCAL: the tables created by hand (the same types,
  with their primary keys: InnoDB loads into a primary key faster than it
  adds one afterwards), then per table `psql -c "COPY t TO STDOUT (FORMAT
  csv)"` piped into `mariadb -e "LOAD DATA LOCAL INFILE '/dev/stdin' ..."`,
  all tables at once: the fastest way there is, by hand;
- pg_dump --data-only --inserts --rows-per-insert=1000 | mariadb: the same
  tables with their keys, pg_dump's INSERTs with PostgreSQL's own lines
  (SET, set_config) filtered out.

Rounds alternate the order; each load goes into a fresh MariaDB database;
every target is checked (row count and a sum of every row's balance or
delta per table) against the source; medians and ratios are printed.

Both servers are throwaway (the test harness's): PostgreSQL with fsync=off,
MariaDB without binlog, a 1 GiB buffer pool and innodb_flush_log_at_trx_commit
at its default (1), the same for every tool.

usage: load_mariadb.py PENSTOCK_BIN [ROUNDS] [SCALE] [JOBS]
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
from conftest import PGBIN, Cluster  # noqa: E402
from mariadb import MariaDB  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SCALE = int(sys.argv[3]) if len(sys.argv) > 3 else 30
JOBS = int(sys.argv[4]) if len(sys.argv) > 4 else 4
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]
# what the MariaDB sink creates for pgbench (docs/types-mariadb.md)
DDL = {
    "pgbench_accounts": "aid INT NOT NULL, bid INT, abalance INT, filler CHAR(84)",
    "pgbench_branches": "bid INT NOT NULL, bbalance INT, filler CHAR(88)",
    "pgbench_tellers": "tid INT NOT NULL, bid INT, tbalance INT, filler CHAR(84)",
    "pgbench_history": "tid INT, bid INT, aid INT, delta INT, mtime DATETIME(6), filler CHAR(22)",
}
KEYS = {"pgbench_accounts": "aid", "pgbench_branches": "bid", "pgbench_tellers": "tid"}
CHECK = {"pgbench_accounts": "abalance", "pgbench_branches": "bbalance",
         "pgbench_tellers": "tbalance", "pgbench_history": "delta"}
MARIADB = ["mariadb", "--no-defaults", "-uroot"]


def pg_url(cluster, db):
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{db}"


def create_tables(m, db, keys):
    for t, cols in DDL.items():
        key = f", PRIMARY KEY ({KEYS[t]})" if keys and t in KEYS else ""
        m.execute(f"CREATE TABLE {t} ({cols}{key}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                  f"COLLATE=utf8mb4_nopad_bin", database=db)


def run_penstock(cluster, src, m, dst, work):
    spec = {"name": "loadbench", "type": "snapshot", "source": {"url": pg_url(cluster, src)},
            "target": {"url": f"mysql://root@127.0.0.1:{m.port}/{dst}"},
            "snapshot": {"parallel": JOBS}, "resume": "never"}
    with open(f"{work}/spec.json", "w") as f:
        json.dump(spec, f)
    subprocess.run([BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"], check=True,
                   stderr=open(f"{work}/penstock.log", "w"))


def run_csv_load_data(cluster, src, m, dst, work):
    """The fastest path by hand: CSV out of COPY, into LOAD DATA LOCAL."""
    create_tables(m, dst, keys=True)
    base = [str(PGBIN / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
            "-q", "-X", src]
    procs = []
    for t in TABLES:
        out = subprocess.Popen(base + ["-c", f"COPY {t} TO STDOUT (FORMAT csv)"],
                               stdout=subprocess.PIPE)
        cols = DDL[t].replace(" NOT NULL", "").split(", ")
        names = ", ".join(c.split()[0] for c in cols)
        into = subprocess.Popen(MARIADB + [f"--socket={m.socket}", "--local-infile=1", dst, "-e",
                                f"LOAD DATA LOCAL INFILE '/dev/stdin' INTO TABLE {t} CHARACTER SET "
                                f"utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
                                f"ESCAPED BY '' ({names})"],
                                stdin=out.stdout, stdout=subprocess.DEVNULL)
        out.stdout.close()
        procs += [out, into]
    for p in procs:
        assert p.wait() == 0


def run_dump_inserts(cluster, src, m, dst, work):
    """pg_dump's INSERTs into tables made with their keys."""
    create_tables(m, dst, keys=True)
    dump = subprocess.Popen([str(PGBIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(cluster.port),
                             "-U", "postgres", "--data-only", "--inserts",
                             "--rows-per-insert=1000", "--no-comments", src],
                            stdout=subprocess.PIPE)
    # PostgreSQL's session lines, psql's meta-commands and the schema
    # qualification mean nothing to MariaDB
    filt = subprocess.Popen(["sed", "-e", "/^SET /d", "-e", "/^SELECT pg_catalog/d",
                             "-e", "/^\\\\/d",         # psql meta-commands (\restrict)
                             "-e", "s/^INSERT INTO public\\./INSERT INTO /"],
                            stdin=dump.stdout, stdout=subprocess.PIPE)
    into = subprocess.Popen(MARIADB + [f"--socket={m.socket}", dst], stdin=filt.stdout,
                            stdout=subprocess.DEVNULL)
    dump.stdout.close()
    filt.stdout.close()
    for p in (into, filt, dump):
        assert p.wait() == 0


def pg_counts(cluster, db):
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            out = []
            for t in TABLES:
                cur.execute(f"SELECT count(*), coalesce(sum({CHECK[t]}), 0) FROM {t}")
                out.append(tuple(int(v) for v in cur.fetchone()))
            return out
    finally:
        c.close()


def maria_counts(m, db):
    return [tuple(int(v) for v in m.execute(f"SELECT COUNT(*), COALESCE(SUM({CHECK[t]}), 0) "
                                            f"FROM {t}", database=db)[0]) for t in TABLES]


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    m = MariaDB(os.path.join(base, "mariadb"),
                extra=["--skip-log-bin", "--innodb-buffer-pool-size=1G",
                       "--innodb-log-file-size=512M", "--max-allowed-packet=256M"])
    work = tempfile.mkdtemp(prefix="loadbench-")
    peers = [("penstock", run_penstock),
             ("COPY csv | LOAD DATA LOCAL (by hand)", run_csv_load_data),
             ("pg_dump --inserts | mariadb", run_dump_inserts)]
    times = {name: [] for name, _ in peers}
    try:
        m.start()
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
        want = pg_counts(cluster, src)
        print(f"load of pgbench scale {SCALE} ({want[0][0]:,} accounts) into MariaDB "
              f"{m.execute('SELECT VERSION()')[0][0]}, {JOBS} jobs, {ROUNDS} rounds", flush=True)
        n = 0
        for r in range(ROUNDS):
            order = peers if r % 2 == 0 else list(reversed(peers))
            for name, fn in order:
                n += 1
                dst = f"loaddst{n}"
                m.execute(f"CREATE DATABASE {dst}")
                t0 = time.monotonic()
                fn(cluster, src, m, dst, work)
                elapsed = time.monotonic() - t0
                got = maria_counts(m, dst)
                assert got == want, f"{name}: target differs from source: {got} != {want}"
                times[name].append(elapsed)
                print(f"  round {r + 1}: {name:<40} {elapsed:6.2f}s", flush=True)
                m.execute(f"DROP DATABASE {dst}")
    finally:
        m.stop()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        if sys.exc_info()[0] is None:
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:<42} median {v:6.2f}s")
    for k in med:
        if k != "penstock":
            print(f"ratio penstock/{k}: {med['penstock'] / med[k]:.2f}")


if __name__ == "__main__":
    main()
