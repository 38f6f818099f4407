"""Issue 15: what announcing table definitions costs. N tables (default 300),
a cdc job into JSON lines; one transaction inserts a row into each table,
three times: right after the job starts (every table's first definition in
the run: announced and described), again (known: nothing to describe), and
after a restart (first definitions again). Prints the time from each commit
to the last event written.

Without the batched description of first sights (src/source/pg/pg_ddl.c note
5) the first and third took 20-22 s for 300 tables on a busy 2-core machine;
with it, under a second.

usage: ddl_first_sight.py PENSTOCK_BIN [N]
"""
import os
import pathlib
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "integration"))
if len(sys.argv) > 1:
    os.environ["PENSTOCK_BIN"] = sys.argv[1]
import conftest  # noqa: E402
from conftest import Cluster, Penstock, wait_for  # noqa: E402

N = int(sys.argv[2]) if len(sys.argv) > 2 else 300


def main():
    base = tempfile.mkdtemp(prefix="penstock-ddl-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    try:
        db = cluster.new_database()
        db.execute("; ".join(f"CREATE TABLE t{i} (id int PRIMARY KEY, v int)" for i in range(N)))
        work = pathlib.Path(base) / "job"
        work.mkdir()
        p = Penstock(work, {"name": "bench", "type": "cdc", "source": {"url": db.url},
                            "target": {"url": f"jsonl://{work}/out"}})

        def burst(k):
            db.execute("BEGIN; " + "; ".join(f"INSERT INTO t{i} VALUES ({k}, {k})"
                                             for i in range(N)) + "; COMMIT")
            t0 = time.monotonic()
            wait_for(lambda: sum(1 for e in p.events() if e["op"] == "c") >= k * N, 600,
                     what=f"burst {k}")
            return time.monotonic() - t0

        p.start()
        p.wait_streaming(db)
        first = burst(1)
        known = burst(2)
        p.stop()
        p.start()
        p.wait_streaming(db)
        restarted = burst(3)
        p.stop()
        print(f"{N} tables: first definitions {first:.2f} s, known {known:.2f} s, "
              f"after a restart {restarted:.2f} s")
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
