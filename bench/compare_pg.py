"""Benchmark: `penstock compare --mode full` of pgbench_accounts at scale
SCALE (1M rows at 10) PostgreSQL -> PostgreSQL, with equal tables and with
three differing rows (one changed, one deleted, one added in the target),
next to `pgcopydb compare data` on the same tables in the same run.

The pgcopydb in Debian bookworm (0.10) has no `compare` command (it came in
0.14). When it is missing the script says so and measures instead a floor:
one whole-table digest per side, run on both servers at once (count and md5
of every row's text in key order) — what any in-database check must at
least do, and which only says "equal or not", never which rows.

Each tool runs ROUNDS times, alternating; medians and ratios are printed,
and every result is checked (equal -> equal, three rows -> those three keys).

usage: compare_pg.py PENSTOCK_BIN [ROUNDS] [SCALE]
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from conftest import PGBIN, Cluster  # noqa: E402  (the test harness's throwaway server)

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
SCALE = int(sys.argv[3]) if len(sys.argv) > 3 else 10
TABLE = "pgbench_accounts"
ENV = dict(os.environ, PATH=f"{PGBIN}:{os.environ['PATH']}")


def url(cluster, db):
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{db}"


def psql(cluster, db, sql, **kw):
    return subprocess.run([str(PGBIN / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h",
                           "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-d", db,
                           "-c", sql], check=True, capture_output=True, text=True, **kw).stdout


def setup(cluster):
    psql(cluster, "postgres", "CREATE DATABASE src")
    psql(cluster, "postgres", "CREATE DATABASE dst")
    subprocess.run([str(PGBIN / "pgbench"), "-i", "-s", str(SCALE), "-q", "-h", "127.0.0.1",
                    "-p", str(cluster.port), "-U", "postgres", "src"], check=True,
                   capture_output=True)
    psql(cluster, "dst", f"CREATE TABLE {TABLE} (aid int NOT NULL, bid int, abalance int, "
                         "filler char(84))")
    out = subprocess.Popen([str(PGBIN / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p",
                            str(cluster.port), "-U", "postgres", "-d", "src", "-c",
                            f"COPY {TABLE} TO STDOUT"], stdout=subprocess.PIPE)
    subprocess.run([str(PGBIN / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(cluster.port),
                    "-U", "postgres", "-d", "dst", "-c", f"COPY {TABLE} FROM STDIN"],
                   stdin=out.stdout, check=True)
    out.stdout.close()
    out.wait()
    psql(cluster, "dst", f"ALTER TABLE {TABLE} ADD PRIMARY KEY (aid)")
    psql(cluster, "dst", f"VACUUM ANALYZE {TABLE}")
    psql(cluster, "src", f"VACUUM ANALYZE {TABLE}")


def make_different(cluster):
    n = SCALE * 100000
    psql(cluster, "dst", f"UPDATE {TABLE} SET abalance = abalance + 1 WHERE aid = {n // 3}; "
                         f"DELETE FROM {TABLE} WHERE aid = {2 * n // 3}; "
                         f"INSERT INTO {TABLE} VALUES ({n + 1}, 1, 0, 'x')")
    return {("different", str(n // 3)), ("missing_in_target", str(2 * n // 3)),
            ("extra_in_target", str(n + 1))}


def run_penstock(cluster, expect):
    t0 = time.monotonic()
    p = subprocess.run([BIN, "compare", "--json", "--source", url(cluster, "src"), "--target",
                        url(cluster, "dst"), "--tables", TABLE, "--mode", "full"],
                       capture_output=True, text=True)
    dt = time.monotonic() - t0
    rep = json.loads(p.stdout)
    got = {(d["kind"], d["key"]["aid"]) for d in rep["tables"][0]["differences"]}
    assert p.returncode == (0 if not expect else 1), p.stderr
    assert got == expect, got
    return dt


def have_pgcopydb_compare():
    p = subprocess.run(["pgcopydb", "compare", "data", "--help"], capture_output=True, text=True,
                       env=ENV)
    return p.returncode == 0 and "unknown command" not in p.stderr + p.stdout


def run_pgcopydb(cluster, expect, work):
    d = os.path.join(work, "pgcopydb")
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.monotonic()
    p = subprocess.run(["pgcopydb", "compare", "data", "--source", url(cluster, "src"),
                        "--target", url(cluster, "dst"), "--dir", d], capture_output=True,
                       text=True, env=ENV)
    dt = time.monotonic() - t0
    # it exits non-zero when the data differs
    assert (p.returncode == 0) == (not expect), p.stderr[-2000:]
    return dt


def run_floor(cluster, expect, work):
    sql = (f"SELECT count(*) || ' ' || md5(string_agg({TABLE}::text, E'\\n' ORDER BY aid)) "
           f"FROM {TABLE}")
    out = {}

    def one(db):
        out[db] = psql(cluster, db, sql)
    t0 = time.monotonic()
    ts = [threading.Thread(target=one, args=(db,)) for db in ("src", "dst")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    assert (out["src"] == out["dst"]) == (not expect)
    return dt


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-compare-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    try:
        setup(cluster)
        peer_name = "pgcopydb compare data"
        peer = run_pgcopydb
        if not have_pgcopydb_compare():
            v = subprocess.run(["pgcopydb", "--version"], capture_output=True, text=True,
                               env=ENV)
            m = re.search(r"pgcopydb version (\S+)", v.stdout + v.stderr)
            print(f"note: pgcopydb {m.group(1) if m else '?'} has no `compare` "
                  "command (added in pgcopydb 0.14); measuring the whole-table digest floor "
                  "instead")
            peer_name = "whole-table digest floor"
            peer = run_floor
        results = {}
        for case in ("equal", "3 rows differ"):
            expect = make_different(cluster) if case != "equal" else set()
            times = {"penstock": [], peer_name: []}
            for _ in range(ROUNDS):
                times["penstock"].append(run_penstock(cluster, expect))
                times[peer_name].append(peer(cluster, expect, base))
            results[case] = {k: statistics.median(v) for k, v in times.items()}
            print(f"{case}: " + ", ".join(f"{k} {', '.join(f'{x:.2f}' for x in v)} s"
                                          for k, v in times.items()))
        print(f"\nfull compare of {TABLE}, scale {SCALE} ({SCALE * 100000} rows), "
              f"medians of {ROUNDS}:")
        for case, r in results.items():
            print(f"  {case:14s} penstock {r['penstock']:.2f} s   {peer_name} "
                  f"{r[peer_name]:.2f} s   ratio penstock/peer "
                  f"{r['penstock'] / r[peer_name]:.2f}")
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
