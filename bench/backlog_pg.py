"""Benchmark: apply a backlog of pgbench transactions already in the slot
into PostgreSQL, penstock (a `sync` job, resumed after its load) against
PostgreSQL's own logical replication (CREATE SUBSCRIPTION catching up the same
backlog, from a slot created at the same point). Each round generates a new
backlog (pgbench, 4 clients) held by both slots, then lets each consumer catch
up, in alternating order; both targets are checked equal to the source.

usage: backlog_pg.py PENSTOCK_BIN [ROUNDS] [TXNS]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import PGBIN, Cluster, wait_for  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
TXNS = int(sys.argv[3]) if len(sys.argv) > 3 else 40000
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]


def sql(cluster, db, text, fetch=False):
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            cur.execute(text)
            return cur.fetchall() if fetch else None
    finally:
        c.close()


def confirmed(cluster, slot):
    return sql(cluster, "src", f"SELECT confirmed_flush_lsn::text FROM pg_replication_slots "
               f"WHERE slot_name = '{slot}'", fetch=True)[0][0]


def reached(cluster, slot, end):
    return sql(cluster, "src", f"SELECT confirmed_flush_lsn >= '{end}'::pg_lsn FROM "
               f"pg_replication_slots WHERE slot_name = '{slot}'", fetch=True)[0][0]


def digest(cluster, db):
    return [sql(cluster, db, f"SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM {t} t",
                fetch=True)[0] for t in TABLES]


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    work = tempfile.mkdtemp(prefix="backlogbench-")
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}"
    pgb = [str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    times = {"penstock": [], "subscription": []}
    try:
        for db in ("src", "dst_penstock", "dst_sub"):
            sql(cluster, "postgres", f"CREATE DATABASE {db}")
        subprocess.run(pgb + ["-i", "-s", "1", "-q", "src"], check=True, capture_output=True)
        sql(cluster, "src", "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
        # penstock: load, then stop; its slot stays at the load's end.
        spec = {"name": "bl", "type": "sync", "source": {"url": f"{url}/src"},
                "target": {"url": f"{url}/dst_penstock"}}
        with open(f"{work}/spec.json", "w") as f:
            json.dump(spec, f)
        cmd = [BIN, "run", "--state-dir", f"{work}/state", f"{work}/spec.json"]
        p = subprocess.Popen(cmd, stderr=open(f"{work}/load.log", "w"))
        wait_for(lambda: "; streaming, " in open(f"{work}/load.log").read(), 300)
        p.terminate()
        assert p.wait() == 0
        # the subscription: same data and a slot at the same point (no writes meanwhile)
        schema = subprocess.run([str(PGBIN / "pg_dump"), "-h", "127.0.0.1", "-p",
                                 str(cluster.port), "-U", "postgres", "src"],
                                check=True, capture_output=True).stdout
        subprocess.run([str(PGBIN / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U",
                        "postgres", "-q", "-X", "dst_sub"], input=schema, check=True,
                       stdout=subprocess.DEVNULL)
        sql(cluster, "src", "CREATE PUBLICATION sub_pub FOR TABLE " + ", ".join(TABLES))
        sql(cluster, "src", "SELECT pg_create_logical_replication_slot('sub_slot', 'pgoutput')")
        sql(cluster, "dst_sub", f"CREATE SUBSCRIPTION sub CONNECTION 'host=127.0.0.1 "
            f"port={cluster.port} user=postgres dbname=src' PUBLICATION sub_pub WITH "
            f"(create_slot = false, slot_name = 'sub_slot', copy_data = false, enabled = false)")
        print(f"backlog: {TXNS:,} pgbench transactions (4 clients) per round; {ROUNDS} rounds",
              flush=True)
        for r in range(ROUNDS):
            subprocess.run(pgb + ["-n", "-c", "4", "-j", "2", "-t", str(TXNS // 4), "src"],
                           check=True, capture_output=True)
            end = sql(cluster, "src", "SELECT pg_current_wal_insert_lsn()::text", fetch=True)[0][0]
            order = ["penstock", "subscription"] if r % 2 == 0 else ["subscription", "penstock"]
            for who in order:
                t0 = time.monotonic()
                if who == "penstock":
                    p = subprocess.Popen(cmd, stderr=open(f"{work}/run{r}.log", "w"))
                    wait_for(lambda: reached(cluster, "penstock_bl", end), 1200, 0.01)
                    elapsed = time.monotonic() - t0
                    p.terminate()
                    assert p.wait() == 0
                else:
                    sql(cluster, "dst_sub", "ALTER SUBSCRIPTION sub ENABLE")
                    wait_for(lambda: reached(cluster, "sub_slot", end), 1200, 0.01)
                    elapsed = time.monotonic() - t0
                    sql(cluster, "dst_sub", "ALTER SUBSCRIPTION sub DISABLE")
                times[who].append(elapsed)
                print(f"  round {r + 1}: {who:<13} {elapsed:6.2f}s  {TXNS / elapsed:8,.0f} txn/s",
                      flush=True)
            want = digest(cluster, "src")
            assert digest(cluster, "dst_penstock") == want, "penstock target differs"
            wait_for(lambda: digest(cluster, "dst_sub") == want, 60)
    finally:
        try:
            sql(cluster, "dst_sub", "ALTER SUBSCRIPTION sub DISABLE")
            sql(cluster, "dst_sub", "ALTER SUBSCRIPTION sub SET (slot_name = NONE)")
            sql(cluster, "dst_sub", "DROP SUBSCRIPTION sub")
        except Exception:
            pass
        cluster.stop()
    mp, ms = statistics.median(times["penstock"]), statistics.median(times["subscription"])
    print(f"penstock     median {mp:6.2f}s  {TXNS / mp:8,.0f} txn/s")
    print(f"subscription median {ms:6.2f}s  {TXNS / ms:8,.0f} txn/s")
    print(f"ratio penstock/subscription: {mp / ms:.2f}")


if __name__ == "__main__":
    main()
