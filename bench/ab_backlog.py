"""A/B of two penstock builds on the backlog of benchmark 2: each round
generates TXNS pgbench transactions (4 clients), then binaries A and B (each
a `sync` job with its own slot and target database, alternating who goes
first) catch up on the same backlog. Prints each one's wall time and the CPU
time of its walsender, its target backend and penstock itself, medians, and
B/A. For judging one change to the apply path on a noisy machine: CPU times
move less than wall times.

usage: ab_backlog.py PENSTOCK_A PENSTOCK_B [ROUNDS] [TXNS]
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
from conftest import PGBIN, Cluster, wait_for  # noqa: E402

BINS = {"A": sys.argv[1], "B": sys.argv[2]}
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
TXNS = int(sys.argv[4]) if len(sys.argv) > 4 else 100000
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]


def sql(cluster, db, text, params=None):
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def cpu_seconds(pid):
    """utime + stime of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        ticks = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
    return ticks / os.sysconf("SC_CLK_TCK")


def digest(cluster, db):
    return [sql(cluster, db, f"SELECT count(*), coalesce(sum(hashtext(t::text)), 0) FROM {t} t")
            for t in TABLES]


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    work = tempfile.mkdtemp(prefix="abbench-")
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}"
    pgb = [str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    wall = {k: [] for k in BINS}
    cpu = {k: [] for k in BINS}
    poll = None
    try:
        sql(cluster, "postgres", "ALTER SYSTEM SET autovacuum = off")
        sql(cluster, "postgres", "SELECT pg_reload_conf()")
        for db in ("src", "dst_a", "dst_b"):
            sql(cluster, "postgres", f"CREATE DATABASE {db}")
        subprocess.run(pgb + ["-i", "-s", "1", "-q", "src"], check=True, capture_output=True)
        sql(cluster, "src", "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
        cmds = {}
        for k, binary in BINS.items():
            spec = {"name": f"ab_{k.lower()}", "type": "sync", "source": {"url": f"{url}/src"},
                    "target": {"url": f"{url}/dst_{k.lower()}"}}
            with open(f"{work}/{k}.json", "w") as f:
                json.dump(spec, f)
            cmds[k] = [binary, "run", "--state-dir", f"{work}/state-{k}", f"{work}/{k}.json"]
            log = f"{work}/{k}-load.log"
            p = subprocess.Popen(cmds[k], stderr=open(log, "w"))
            wait_for(lambda: "; streaming, " in open(log).read(), 300, what=f"{k} to stream")
            p.terminate()
            assert p.wait() == 0, f"{k} failed: see {log}"
        poll = cluster.connect("src")
        poll.autocommit = True

        def reached(slot, end):
            with poll.cursor() as cur:
                cur.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                            "WHERE slot_name = %s", (end, slot))
                return cur.fetchone()[0]

        print(f"A {BINS['A']}\nB {BINS['B']}\nbacklog of {TXNS:,} pgbench transactions, "
              f"{ROUNDS} rounds", flush=True)
        for r in range(ROUNDS):
            subprocess.run(pgb + ["-n", "-c", "4", "-j", "2", "-t", str(TXNS // 4), "src"],
                           check=True, capture_output=True)
            end = sql(cluster, "src", "SELECT pg_current_wal_insert_lsn()::text")[0][0]
            for db in ("src", "dst_a", "dst_b"):
                sql(cluster, db, "VACUUM")
            sql(cluster, "postgres", "CHECKPOINT")
            for k in (["A", "B"] if r % 2 == 0 else ["B", "A"]):
                slot = f"penstock_ab_{k.lower()}"
                t0 = time.monotonic()
                p = subprocess.Popen(cmds[k], stderr=open(f"{work}/{k}-{r}.log", "w"))
                wait_for(lambda: reached(slot, end), 1200, 0.02, what=f"{k} to catch up")
                elapsed = time.monotonic() - t0
                walsender = sql(cluster, "src", "SELECT active_pid FROM pg_replication_slots "
                                "WHERE slot_name = %s", (slot,))[0][0]
                backends = sql(cluster, "postgres", "SELECT pid FROM pg_stat_activity WHERE "
                               "datname = %s AND backend_type = 'client backend'",
                               (f"dst_{k.lower()}",))
                used = (cpu_seconds(walsender), sum(cpu_seconds(b[0]) for b in backends),
                        cpu_seconds(p.pid))
                p.terminate()
                assert p.wait() == 0, f"{k} failed: see {work}/{k}-{r}.log"
                wall[k].append(elapsed)
                cpu[k].append(used)
                print(f"  round {r + 1}: {k} {elapsed:6.2f}s  CPU walsender {used[0]:.2f}s, "
                      f"target {used[1]:.2f}s, penstock {used[2]:.2f}s", flush=True)
        want = digest(cluster, "src")
        assert digest(cluster, "dst_a") == want and digest(cluster, "dst_b") == want, \
            "a target differs from the source"
    finally:
        if poll:
            poll.close()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
        if sys.exc_info()[0] is None:   # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
    for k in BINS:
        med = [statistics.median(x[i] for x in cpu[k]) for i in range(3)]
        print(f"{k}: median {statistics.median(wall[k]):.2f}s; CPU medians walsender "
              f"{med[0]:.2f}s, target {med[1]:.2f}s, penstock {med[2]:.2f}s")
    print(f"B/A wall: {statistics.median(wall['B']) / statistics.median(wall['A']):.2f}")


if __name__ == "__main__":
    main()
