"""Benchmark: MariaDB -> MariaDB catch-up of a backlog of TXNS small
transactions (pgbench's: an account, a teller and a branch updated, a history
row inserted), penstock (the MySQL source into the MariaDB target) against
MariaDB's own replication: a replica server started here, `START SLAVE` on the
same backlog. Goal: penstock's time at most 0.75 x the replica's.

Three MariaDB 10.11 servers (the test harness's): the source (binlog ROW,
FULL image), penstock's target and the replica; both targets without binlog,
innodb_flush_log_at_trx_commit at its default (1: every commit synced, as
penstock's own commits are) and the same buffer pool; the replica applies
with 4 threads in optimistic parallel mode, its fastest durable setting.
Each round: both followers stopped at the same point, a fresh backlog
written, then each one alone (alternating which goes first) from start until
the backlog's last row is in its database; both are checked equal to the
source (counts and sums). Medians and the ratio are printed.

usage: backlog_mariadb.py PENSTOCK_BIN [ROUNDS] [TXNS] [SCALE]
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from mariadb import MariaDB  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
TXNS = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
SCALE = int(sys.argv[4]) if len(sys.argv) > 4 else 1
TARGET_OPTS = ["--skip-log-bin", "--innodb-buffer-pool-size=512M", "--innodb-log-file-size=256M"]
# the replica at its best without giving up durability: transactions applied
# by 4 threads optimistically (each still commits, and syncs, on its own)
REPLICA_OPTS = ["--slave-parallel-threads=4", "--slave-parallel-mode=optimistic"]

SCHEMA = """
CREATE TABLE accounts (aid INT PRIMARY KEY, bid INT, abalance INT, filler CHAR(84));
CREATE TABLE tellers (tid INT PRIMARY KEY, bid INT, tbalance INT, filler CHAR(84));
CREATE TABLE branches (bid INT PRIMARY KEY, bbalance INT, filler CHAR(88));
CREATE TABLE history (hid BIGINT AUTO_INCREMENT PRIMARY KEY, tid INT, bid INT, aid INT,
                      delta INT, mtime DATETIME(6), filler CHAR(22));
CREATE TABLE marks (round INT PRIMARY KEY);
"""

# TXNS transactions in one server-side loop: no client round trip between them
BACKLOG = """
CREATE OR REPLACE PROCEDURE backlog(n INT, seed INT, scale INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE a, t, b, d INT;
  DO RAND(seed);
  WHILE i < n DO
    SET a = 1 + FLOOR(RAND() * 100000 * scale), t = 1 + FLOOR(RAND() * 10 * scale),
        b = 1 + FLOOR(RAND() * scale), d = FLOOR(RAND() * 10001) - 5000;
    START TRANSACTION;
    UPDATE accounts SET abalance = abalance + d WHERE aid = a;
    UPDATE tellers SET tbalance = tbalance + d WHERE tid = t;
    UPDATE branches SET bbalance = bbalance + d WHERE bid = b;
    INSERT INTO history (tid, bid, aid, delta, mtime) VALUES (t, b, a, d, NOW(6));
    COMMIT;
    SET i = i + 1;
  END WHILE;
END
"""


def sums(m, db):
    return m.execute("SELECT (SELECT COUNT(*) FROM accounts), (SELECT SUM(abalance) FROM accounts), "
                     "(SELECT SUM(tbalance) FROM tellers), (SELECT SUM(bbalance) FROM branches), "
                     "(SELECT COUNT(*) FROM history), (SELECT COALESCE(SUM(delta), 0) FROM history), "
                     "(SELECT COUNT(*) FROM marks)", database=db)[0]


def has_mark(m, db, r):
    try:
        return m.execute("SELECT COUNT(*) FROM marks WHERE round = %s", (r,), database=db)[0][0]
    except Exception:   # the table is not there yet
        return 0


def wait_mark(m, db, r, timeout=1800):
    deadline = time.monotonic() + timeout
    while not has_mark(m, db, r):
        if time.monotonic() > deadline:
            raise RuntimeError(f"round {r}: the mark did not arrive in {timeout}s")
        time.sleep(0.02)


class Job:
    def __init__(self, src, dst, work):
        self.work = work
        self.spec = {"name": "backlog", "type": "sync",
                     "source": {"url": f"mysql://root@127.0.0.1:{src.port}/", "server_id": 777},
                     "target": {"url": f"mysql://root@127.0.0.1:{dst.port}/d"},
                     "tables": {"include": ["d.*"]}}
        with open(f"{work}/spec.json", "w") as f:
            json.dump(self.spec, f)
        self.proc = None
        self.n = 0

    def start(self):
        self.n += 1
        self.proc = subprocess.Popen([BIN, "run", "--state-dir", f"{self.work}/state",
                                      f"{self.work}/spec.json"],
                                     stderr=open(f"{self.work}/penstock.{self.n}.log", "w"))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=300) == 0


def has_mysql_source():
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"name": "probe", "type": "cdc", "source": {"url": "mysql://root@127.0.0.1:1/d"},
                   "target": {"url": "jsonl:-"}}, f)
    p = subprocess.run([BIN, "check", f.name], capture_output=True, text=True)
    os.unlink(f.name)
    said = p.stdout + p.stderr
    return not ("cannot be a source" in said or "sources are not supported" in said)


def main():
    if not has_mysql_source():
        print("skipped: this build has no MySQL/MariaDB source (issue 16)")
        return
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    work = tempfile.mkdtemp(prefix="backlogbench-")
    src = MariaDB(os.path.join(base, "src"), extra=["--innodb-buffer-pool-size=512M",
                                                   "--innodb-flush-log-at-trx-commit=2"])
    dst = MariaDB(os.path.join(base, "dst"), extra=TARGET_OPTS)
    rep = MariaDB(os.path.join(base, "rep"), extra=TARGET_OPTS + ["--server-id=2"] + REPLICA_OPTS)
    times = {"penstock": [], "MariaDB replica (START SLAVE)": []}
    try:
        for m in (src, dst, rep):
            m.start()
        src.execute("CREATE DATABASE d")
        c = src.connect("d")
        with c.cursor() as cur:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    cur.execute(stmt)
            cur.execute(f"INSERT INTO branches SELECT seq, 0, '' FROM seq_1_to_{SCALE}")
            cur.execute(f"INSERT INTO tellers SELECT seq, 1 + (seq - 1) DIV 10, 0, '' "
                        f"FROM seq_1_to_{10 * SCALE}")
            cur.execute(f"INSERT INTO accounts SELECT seq, 1 + (seq - 1) DIV 100000, 0, '' "
                        f"FROM seq_1_to_{100000 * SCALE}")
            cur.execute(BACKLOG)
        c.close()
        dst.execute("CREATE DATABASE d")
        # the replica copies everything from the binlog's start (d's creation included)
        rep.execute(f"CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {src.port}, "
                    f"MASTER_USER = 'root', MASTER_USE_GTID = slave_pos")
        rep.execute("START SLAVE")
        job = Job(src, dst, work)
        job.start()
        src.execute("INSERT INTO marks VALUES (0)", database="d")
        wait_mark(dst, "d", 0)
        wait_mark(rep, "d", 0)
        job.stop()
        rep.execute("STOP SLAVE")
        print(f"backlog of {TXNS:,} pgbench-like transactions (scale {SCALE}) MariaDB -> "
              f"MariaDB, {ROUNDS} rounds", flush=True)
        for r in range(1, ROUNDS + 1):
            src.execute(f"CALL backlog({TXNS}, {r}, {SCALE})", database="d")
            src.execute("INSERT INTO marks VALUES (%s)", (r,), database="d")
            followers = [("penstock", job.start, lambda: wait_mark(dst, "d", r), job.stop),
                         ("MariaDB replica (START SLAVE)", lambda: rep.execute("START SLAVE"),
                          lambda: wait_mark(rep, "d", r), lambda: rep.execute("STOP SLAVE"))]
            if r % 2 == 0:
                followers.reverse()
            for name, start, done, stop in followers:
                t0 = time.monotonic()
                start()
                done()
                elapsed = time.monotonic() - t0
                stop()
                times[name].append(elapsed)
                print(f"  round {r}: {name:<32} {elapsed:7.2f}s ({TXNS / elapsed:,.0f} txn/s)",
                      flush=True)
            want = sums(src, "d")
            assert sums(dst, "d") == want, (sums(dst, "d"), want)
            assert sums(rep, "d") == want, (sums(rep, "d"), want)
    finally:
        for m in (rep, dst, src):
            m.stop()
        shutil.rmtree(base, ignore_errors=True)
        if sys.exc_info()[0] is None:
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:<34} median {v:7.2f}s")
    print(f"ratio penstock/MariaDB replica: {med['penstock'] / med['MariaDB replica (START SLAVE)']:.2f}"
          f" (goal <= 0.75)")


if __name__ == "__main__":
    main()
