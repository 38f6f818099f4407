"""Benchmarks of the MySQL/MariaDB source (issue 16), each against its peer in
the same run, on throwaway servers (tests/integration/mariadb.py, conftest's
PostgreSQL):

  load     a sysbench-like schema (TABLES x ROWS_PER_TABLE rows: id, k, c, pad,
           an index on k) MariaDB -> PostgreSQL: penstock (a snapshot job,
           JOBS workers) against pgloader (Debian's, the same workers;
           `prefetch rows = 10000`, as its default of 100000 exhausts SBCL's
           heap on these tables). Both end with the same row counts, keys and
           indexes.
  backlog  TXNS transactions (an UPDATE by key and an INSERT each) written
           while no job runs, then caught up into JSON lines with
           `penstock run --until <end>`, against the decoding floor
           `mariadb-binlog -v --read-from-remote-server` of the same range
           into /dev/null.
  bigtxn   one transaction of BIG_ROWS rows streamed into JSON lines
           (to /dev/null): penstock's peak RSS (getrusage of the child).

usage: mysql_bench.py PENSTOCK_BIN [ROUNDS] [ROWS_PER_TABLE] [TXNS] [BIG_ROWS] [ONLY]
"""
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import Cluster  # noqa: E402
from mariadb import MariaDB  # noqa: E402

BIN = os.path.abspath(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
ROWS = int(sys.argv[3]) if len(sys.argv) > 3 else 750000
TXNS = int(sys.argv[4]) if len(sys.argv) > 4 else 100000
BIG = int(sys.argv[5]) if len(sys.argv) > 5 else 5000000
ONLY = (sys.argv[6] if len(sys.argv) > 6 else "load,backlog,bigtxn").split(",")
TABLES = 4
JOBS = 4


def timed(fn):
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def run_spec(spec, work, extra=()):
    path = os.path.join(work, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    p = subprocess.Popen([BIN, "run", "--state-dir", os.path.join(work, "state"), *extra, path],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "penstock.log"), "a"))
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError(f"penstock failed: see {work}/penstock.log")
    return usage.ru_maxrss   # KiB


def src_url(m, db="sb"):
    return f"mysql://root@127.0.0.1:{m.port}/{db}"


# --- load -------------------------------------------------------------------------

def make_sysbench(m):
    m.execute("CREATE DATABASE sb")
    for i in range(1, TABLES + 1):
        m.execute(f"CREATE TABLE sbtest{i} (id INT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL "
                  f"DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', "
                  f"KEY k_{i} (k))", database="sb")
        m.execute(f"INSERT INTO sbtest{i} (k, c, pad) SELECT FLOOR(RAND(seq) * {ROWS}), "
                  f"LEFT(CONCAT(LPAD(seq, 11, '0'), '-', SHA2(seq, 256), '-', LPAD(seq * 7, 11, '0')), "
                  f"119), LEFT(CONCAT(LPAD(seq * 3, 11, '0'), '-', MD5(seq * 5)), 59) "
                  f"FROM seq_1_to_{ROWS}", database="sb")


def pg_count(cluster, db, schema):
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            n = 0
            for i in range(1, TABLES + 1):
                cur.execute(f'SELECT count(*) FROM "{schema}"."sbtest{i}"')
                n += cur.fetchone()[0]
            return n
    finally:
        c.close()


def bench_load(m, cluster, work):
    make_sysbench(m)
    times = {"penstock": [], "pgloader": []}
    for r in range(ROUNDS):
        for who in ("penstock", "pgloader"):
            db = cluster.new_database()
            db.conn.close()
            dst = f"postgresql://postgres@127.0.0.1:{cluster.port}/{db.name}"
            w = os.path.join(work, f"load-{who}-{r}")
            os.makedirs(w)
            if who == "penstock":
                spec = {"name": "load", "type": "snapshot", "source": {"url": src_url(m)},
                        "target": {"url": dst}, "tables": {"include": ["sb.*"]},
                        "snapshot": {"parallel": JOBS}, "resume": "never"}
                t = timed(lambda: run_spec(spec, w))
                schema = "sb"
            else:
                cmd = os.path.join(w, "load.cmd")
                with open(cmd, "w") as f:
                    f.write(f"LOAD DATABASE FROM {src_url(m)} INTO {dst}\n"
                            f"WITH include drop, create tables, create indexes, reset sequences, "
                            f"workers = {JOBS}, concurrency = 1, prefetch rows = 10000;\n")
                log = os.path.join(w, "pgloader.log")
                t0 = time.monotonic()
                proc = subprocess.run(["pgloader", "--no-ssl-cert-verification", cmd],
                                      stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=w)
                t = time.monotonic() - t0
                if proc.returncode != 0:
                    raise RuntimeError("pgloader failed:\n" + open(log).read()[-3000:])
                schema = "sb"
            n = pg_count(cluster, db.name, schema)
            assert n == TABLES * ROWS, f"{who} loaded {n} rows, expected {TABLES * ROWS}"
            times[who].append(t)
            print(f"  round {r + 1}: {who} {t:.1f} s", flush=True)
    p, g = statistics.median(times["penstock"]), statistics.median(times["pgloader"])
    print(f"load of {TABLES * ROWS} rows MariaDB -> PostgreSQL: penstock {p:.1f} s, pgloader "
          f"{g:.1f} s, ratio {p / g:.2f}x (goal <= 0.5x)")


# --- backlog ----------------------------------------------------------------------

def master_status(m):
    f, pos = m.execute("SHOW MASTER STATUS")[0][:2]
    return f, int(pos)


def bench_backlog(m, work):
    m.execute("CREATE DATABASE IF NOT EXISTS bl")
    m.execute("CREATE TABLE bl.acct (id INT PRIMARY KEY, bal BIGINT NOT NULL, note VARCHAR(64))")
    m.execute("CREATE TABLE bl.hist (id BIGINT AUTO_INCREMENT PRIMARY KEY, aid INT, delta INT, "
              "at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6))")
    m.execute("INSERT INTO bl.acct SELECT seq, 0, 'x' FROM seq_1_to_100000", database="bl")
    times = {"penstock": [], "mariadb-binlog": []}
    for r in range(ROUNDS):
        w = os.path.join(work, f"backlog-{r}")
        os.makedirs(w)
        spec = {"name": "backlog", "type": "cdc", "source": {"url": src_url(m, "bl")},
                "target": {"url": f"jsonl://{w}/out"}, "tables": {"include": ["bl.*"]}}
        # a checkpoint at the binlog's end, then the backlog while nothing runs
        run_spec(spec, w, ["--until", "caught-up"])
        f, start = master_status(m)
        c = m.connect("bl")
        with c.cursor() as cur:
            for i in range(TXNS):
                cur.execute("BEGIN")
                cur.execute("UPDATE acct SET bal = bal + 1 WHERE id = %s", (i % 100000 + 1,))
                cur.execute("INSERT INTO hist (aid, delta) VALUES (%s, 1)", (i % 100000 + 1,))
                cur.execute("COMMIT")
        c.close()
        f2, end = master_status(m)
        assert f2 == f, "the backlog spans binlog files; raise max_binlog_size"
        t = timed(lambda: run_spec(spec, w, ["--until", f"{f}:{end}"]))
        times["penstock"].append(t)
        t = timed(lambda: subprocess.run(
            ["mariadb-binlog", "--no-defaults", "--read-from-remote-server", "-h", "127.0.0.1",
             "-P", str(m.port), "-uroot", "-v", f"--start-position={start}",
             f"--stop-position={end}", f], check=True, stdout=subprocess.DEVNULL))
        times["mariadb-binlog"].append(t)
        events = sum(1 for _ in open(os.path.join(w, "out", sorted(os.listdir(
            os.path.join(w, "out")))[-1]))) if os.listdir(os.path.join(w, "out")) else 0
        print(f"  round {r + 1}: penstock {times['penstock'][-1]:.1f} s, mariadb-binlog -v "
              f"{times['mariadb-binlog'][-1]:.1f} s ({events} lines in the last file)",
              flush=True)
    p, d = statistics.median(times["penstock"]), statistics.median(times["mariadb-binlog"])
    print(f"catch-up of {TXNS} transactions MariaDB -> JSON lines: penstock {p:.1f} s, "
          f"mariadb-binlog -v {d:.1f} s, ratio {p / d:.2f}x (goal <= 1.0x)")


# --- big transaction --------------------------------------------------------------

def bench_bigtxn(m, work):
    m.execute("CREATE DATABASE IF NOT EXISTS bt")
    m.execute("CREATE TABLE bt.big (id INT PRIMARY KEY, k INT, pad VARCHAR(100))")
    w = os.path.join(work, "bigtxn")
    os.makedirs(w)
    spec = {"name": "bigtxn", "type": "cdc", "source": {"url": src_url(m, "bt")},
            "target": {"url": "jsonl:-"}, "tables": {"include": ["bt.*"]}}
    run_spec(spec, w, ["--until", "caught-up"])
    m.execute(f"INSERT INTO bt.big SELECT seq, seq % 1000, REPEAT('p', 80) "
              f"FROM seq_1_to_{BIG}", database="bt")
    f, end = master_status(m)
    t0 = time.monotonic()
    rss = run_spec(spec, w, ["--until", f"{f}:{end}"])
    print(f"one transaction of {BIG} rows MariaDB -> JSON lines: {time.monotonic() - t0:.1f} s, "
          f"peak RSS {rss / 1024:.1f} MiB (goal < 100 MiB)")


def main():
    work = tempfile.mkdtemp(prefix="penstock-mybench-")
    os.chmod(work, 0o755)
    m = MariaDB(os.path.join(work, "mariadb"), extra=["--innodb-buffer-pool-size=512M",
                                                     "--max-binlog-size=1073741824"]).start()
    cluster = Cluster(work) if "load" in ONLY else None
    try:
        if "load" in ONLY:
            print("== MariaDB -> PostgreSQL initial load vs pgloader", flush=True)
            bench_load(m, cluster, work)
        if "backlog" in ONLY:
            print("== MariaDB backlog -> JSON lines vs mariadb-binlog -v", flush=True)
            bench_backlog(m, work)
        if "bigtxn" in ONLY:
            print("== one big MariaDB transaction: peak RSS", flush=True)
            bench_bigtxn(m, work)
    finally:
        m.stop()
        if cluster:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    resource.getrusage(resource.RUSAGE_CHILDREN)


if __name__ == "__main__":
    main()
