"""Benchmark 6 (issue 18): penstock into Kafka, against penstock into JSON
lines in the same run.

  backlog  a backlog of TXNS pgbench transactions already in the slots,
           consumed by a `cdc` job into JSON-lines files and by a `cdc` job
           into Kafka (librdkafka's mock cluster, tests/tools/kafka_mock, on
           loopback) with transactions on (delivery exactly_once, the
           default), each timed from its start until its slot confirms the
           backlog's end; the order rotates per round. Goal: Kafka at least
           0.8 x the JSON-lines throughput.
  bigtxn   one source transaction inserting BIG_ROWS rows of 200-byte
           payloads, streamed into Kafka with transactions on; penstock's
           peak RSS (VmHWM). Goal: under 100 MiB.

Both check what arrived: every change is a record in the topics (the high
watermarks of the mock's partitions; no transaction is aborted in a clean
run). Values are schemaless (target.schemas false), as the JSON lines are:
with the JSON converter's schema each record carries its table's schema,
several times the row's size, which measures the mock's memory more than
penstock (SCHEMAS=1 measures it anyway).

usage: kafka.py PENSTOCK_BIN [ROUNDS] [TXNS] [BIG_ROWS]
ONLY=backlog or ONLY=bigtxn runs one of them.
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
from confluent_kafka import Consumer, TopicPartition  # noqa: E402

BIN = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
TXNS = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
BIG_ROWS = int(sys.argv[4]) if len(sys.argv) > 4 else 5000000
TOOLS = os.environ.get("PENSTOCK_TOOLS", os.path.join(os.path.dirname(BIN), "tools"))
SCHEMAS = os.environ.get("SCHEMAS") == "1"
CHANGES_PER_TXN = 4   # pgbench TPC-B: 3 updates and 1 insert
TABLES = ["pgbench_accounts", "pgbench_branches", "pgbench_tellers", "pgbench_history"]


class Mock:
    def __init__(self):
        self.proc = subprocess.Popen([os.path.join(TOOLS, "kafka_mock"), "--topic",
                                      "penstock.checkpoints:1"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.bootstrap = self.proc.stdout.readline().strip()

    def records(self, prefix):
        """Records in the topics of prefix: the sum of their high watermarks."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "bench"})
        try:
            md = c.list_topics(timeout=10)
            total = 0
            for name, t in md.topics.items():
                if name.startswith(prefix + "."):
                    for p in t.partitions:
                        total += c.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
            return total
        finally:
            c.close()

    def stop(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(60)


def sql(cluster, db, text, fetch=False):
    c = cluster.connect(db)
    try:
        with c.cursor() as cur:
            cur.execute(text)
            return cur.fetchall() if fetch else None
    finally:
        c.close()


def reached(conn, slot, end):
    with conn.cursor() as cur:
        cur.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                    "WHERE slot_name = %s", (end, slot))
        return cur.fetchone()[0]


def job(work, name, spec):
    with open(f"{work}/{name}.json", "w") as f:
        json.dump(spec, f)
    return [BIN, "run", "--state-dir", f"{work}/state", f"{work}/{name}.json"]


def until_streaming(cmd, log):
    p = subprocess.Popen(cmd, stderr=open(log, "w"))
    wait_for(lambda: "; streaming, " in open(log).read(), 300, what=f"{cmd[-1]} to stream")
    return p


def vm(pid, field):
    with open(f"/proc/{pid}/status") as f:
        return int(next(x for x in f if x.startswith(field + ":")).split()[1])


def backlog(cluster, mock, work, url):
    pgb = [str(PGBIN / "pgbench"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
    sql(cluster, "postgres", "CREATE DATABASE src")
    subprocess.run(pgb + ["-i", "-s", "1", "-q", "src"], check=True, capture_output=True)
    sql(cluster, "src", "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
    jobs = {
        "penstock -> jsonl": job(work, "jsonl", {
            "name": "bljsonl", "type": "cdc", "source": {"url": f"{url}/src"},
            "target": {"url": f"jsonl://{work}/events"}}),
        "penstock -> kafka": job(work, "kafka", {
            "name": "blkafka", "type": "cdc", "source": {"url": f"{url}/src"},
            "target": {"url": f"kafka://{mock.bootstrap}/?topic_prefix=bl", "schemas": SCHEMAS}}),
    }
    slots = {"penstock -> jsonl": "penstock_bljsonl", "penstock -> kafka": "penstock_blkafka"}
    for w, cmd in jobs.items():
        p = until_streaming(cmd, f"{work}/{w.split()[-1]}-setup.log")
        p.terminate()
        assert p.wait() == 0
    print(f"backlog: {TXNS:,} pgbench transactions (4 clients, {TXNS * CHANGES_PER_TXN:,} changes)"
          f" per round, {ROUNDS} rounds; Kafka: transactions on, schemas "
          f"{'on' if SCHEMAS else 'off'}", flush=True)
    times = {w: [] for w in jobs}
    rss = {w: [] for w in jobs}
    cpu = {w: [] for w in jobs}
    conn = cluster.connect("src")
    conn.autocommit = True
    records_before = 0
    for r in range(ROUNDS):
        subprocess.run(pgb + ["-n", "-c", "4", "-j", "2", "-t", str(TXNS // 4), "src"],
                       check=True, capture_output=True)
        end = sql(cluster, "src", "SELECT pg_current_wal_insert_lsn()::text", fetch=True)[0][0]
        sql(cluster, "src", "VACUUM")
        sql(cluster, "postgres", "CHECKPOINT")
        order = list(jobs) if r % 2 == 0 else list(reversed(list(jobs)))
        for who in order:
            t0 = time.monotonic()
            p = subprocess.Popen(jobs[who], stderr=open(f"{work}/run{r}-{who.split()[-1]}.log", "w"))
            wait_for(lambda: reached(conn, slots[who], end), 1800, 0.02, what=f"{who} to catch up")
            elapsed = time.monotonic() - t0
            rss[who].append(vm(p.pid, "VmHWM"))
            with open(f"/proc/{p.pid}/stat") as f:
                ticks = sum(int(x) for x in f.read().rsplit(")", 1)[1].split()[11:13])
            cpu[who].append(ticks / os.sysconf("SC_CLK_TCK"))
            p.terminate()
            assert p.wait() == 0, f"{who} failed"
            times[who].append(elapsed)
            print(f"  round {r + 1}: {who:<20} {elapsed:6.2f}s  "
                  f"{TXNS * CHANGES_PER_TXN / elapsed:9,.0f} changes/s  (CPU {cpu[who][-1]:.2f}s)",
                  flush=True)
        records = mock.records("bl")
        assert records - records_before == TXNS * CHANGES_PER_TXN, \
            f"Kafka: {records - records_before} records, expected {TXNS * CHANGES_PER_TXN}"
        records_before = records
    conn.close()
    med = {w: statistics.median(v) for w, v in times.items()}
    for w in jobs:
        print(f"{w:<20} median {med[w]:6.2f}s  {TXNS / med[w]:8,.0f} txn/s  "
              f"{TXNS * CHANGES_PER_TXN / med[w]:9,.0f} changes/s  peak RSS "
              f"{max(rss[w]) // 1024} MiB, CPU {statistics.median(cpu[w]):.2f}s")
    print(f"ratio kafka / jsonl throughput: {med['penstock -> jsonl'] / med['penstock -> kafka']:.2f}"
          f"  (goal >= 0.8)")


def bigtxn(cluster, mock, work, url):
    sql(cluster, "postgres", "CREATE DATABASE big")
    s = cluster.connect("big")
    s.autocommit = True
    cur = s.cursor()
    cur.execute("CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL)")
    cmd = job(work, "big", {"name": "big", "type": "cdc", "source": {"url": f"{url}/big"},
                            "target": {"url": f"kafka://{mock.bootstrap}/?topic_prefix=big",
                                       "schemas": SCHEMAS}})
    log = f"{work}/big.log"
    p = until_streaming(cmd, log)
    try:
        print(f"one transaction inserting {BIG_ROWS:,} rows of 200-byte payloads, streamed into "
              f"Kafka with transactions on", flush=True)
        t0 = time.monotonic()
        cur.execute("INSERT INTO big SELECT g, rpad(g::text || ':', 200, 'x') "
                    "FROM generate_series(1, %s) g", (BIG_ROWS,))
        cur.execute("SELECT pg_current_wal_insert_lsn()::text")
        end = cur.fetchone()[0]
        peak = [0]

        def done():
            peak[0] = max(peak[0], vm(p.pid, "VmRSS"))
            assert p.poll() is None, f"penstock exited: see {log}"
            return reached(s, "penstock_big", end)
        wait_for(done, 7200, 0.2, what="penstock to produce the transaction")
        elapsed = time.monotonic() - t0
        hwm = vm(p.pid, "VmHWM")
    finally:
        p.terminate()
        p.wait()
        s.close()
    records = mock.records("big")
    assert records == BIG_ROWS, f"Kafka holds {records} records, expected {BIG_ROWS}"
    print(f"penstock produced it {elapsed:.1f} s after the insert began "
          f"({BIG_ROWS / elapsed:,.0f} rows/s), one Kafka transaction")
    print(f"penstock peak RSS (VmHWM) {hwm / 1024:.0f} MiB (largest VmRSS sampled "
          f"{peak[0] / 1024:.0f} MiB; goal < 100 MiB)")


def main():
    base = tempfile.mkdtemp(prefix="penstock-bench-")
    os.chmod(base, 0o755)
    cluster = Cluster(base)
    work = tempfile.mkdtemp(prefix="kafkabench-")
    os.chmod(work, 0o755)
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}"
    only = os.environ.get("ONLY", "backlog,bigtxn")
    ok = False
    try:
        if "backlog" in only:
            mock = Mock()
            try:
                backlog(cluster, mock, work, url)
            finally:
                mock.stop()
        if "bigtxn" in only:
            mock = Mock()
            try:
                bigtxn(cluster, mock, work, url)
            finally:
                mock.stop()
        ok = True
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)   # a cluster is GBs; leave none behind
        if ok:                                    # on a failure, keep the logs it names
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs kept in {work}")


if __name__ == "__main__":
    main()
