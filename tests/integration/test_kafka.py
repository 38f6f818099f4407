"""PostgreSQL to Kafka (issue 18), end to end, against librdkafka's mock
cluster kept alive by tests/tools/kafka_mock on loopback ports, read by a
real read_committed consumer (python3-confluent-kafka):

- every operation and the type zoo arrive with the exact keys, values,
  tombstones and partitions (murmur2 of the key bytes, computed here), the
  transaction metadata and the truncate events; the flattened mode likewise;
- a crash at each fault point and kill -9 at random moments under concurrent
  writes: every change is in the topics exactly once;
- broker down and injected request errors (Produce, EndTxn, InitProducerId),
  a fatal producer and fencing, through `penstock server`: the job goes
  failed (or failed_permanently for fencing), retries, and nothing is lost;
- prechecks, figures in job show and /metrics, secrets never shown;
- a column added under writes: every event after it carries the new field
  (payload and schema), none before it, nothing lost; a MariaDB source's
  events carry Debezium's MySQL source block.

The mock of librdkafka 2.0.2 writes no transaction markers: a read_committed
consumer there also sees the records of transactions that were aborted or
never committed. Every record penstock writes carries the header
penstock.batch (which producer, which of its transactions), the checkpoint
record of a transaction too; a transaction is committed only if its
checkpoint record was delivered before it. So these tests read the mock as a
real broker would show it: they drop the records of batches whose
checkpoint record is not in the checkpoint topic (docs/kafka.md, "Testing").
tests/unit/test_kafka.c proves the same runs exactly once against an
in-memory Kafka with real read_committed semantics, and proves this rule.
"""
import base64
import collections
import json
import os
import pathlib
import random
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING

from conftest import BIN, CANONICAL, Writer, wait_for, lsn_int
from test_server import Server, transition_events, transitions

TOOLS = pathlib.Path(os.environ.get("PENSTOCK_TOOLS",
                                    pathlib.Path(__file__).resolve().parents[2] / "build" / "tools"))
CHECKPOINTS = "penstock.checkpoints"
FAST_RETRY = {"initial_backoff_ms": 200, "max_backoff_ms": 1000}


# --- the mock cluster ---------------------------------------------------------------

class KafkaMock:
    """tests/tools/kafka_mock: a mock cluster and its fault commands."""

    def __init__(self, brokers=1):
        self.proc = subprocess.Popen(
            [str(TOOLS / "kafka_mock"), "--brokers", str(brokers), "--topic", f"{CHECKPOINTS}:1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.bootstrap = self.proc.stdout.readline().strip()
        assert self.bootstrap, "kafka_mock printed no bootstrap servers"

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        assert answer == "ok", f"kafka_mock {line!r}: {answer}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(30)


@pytest.fixture
def kafka():
    k = KafkaMock()
    yield k
    k.stop()


# --- reading it as a consumer would ------------------------------------------------

Record = collections.namedtuple("Record", "topic partition offset key value headers")


def consumer(bootstrap):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "penstock-test",
                     "isolation.level": "read_committed", "enable.auto.commit": False,
                     "enable.partition.eof": True, "auto.offset.reset": "earliest"})


def topics(bootstrap):
    c = consumer(bootstrap)
    try:
        md = c.list_topics(timeout=10)
        return {name: len(t.partitions) for name, t in md.topics.items() if not t.error}
    finally:
        c.close()


def read_topic(bootstrap, topic, timeout=30):
    """Every record of topic, partition by partition in offset order, as a
    read_committed consumer sees it now."""
    nparts = topics(bootstrap).get(topic)
    if not nparts:
        return []
    c = consumer(bootstrap)
    out = []
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(nparts)])
        ended = set()
        deadline = time.monotonic() + timeout
        while len(ended) < nparts:
            assert time.monotonic() < deadline, f"timed out reading {topic}"
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(m.partition())
                    continue
                raise AssertionError(f"reading {topic}: {m.error()}")
            out.append(Record(m.topic(), m.partition(), m.offset(), m.key(), m.value(),
                              dict((k, v) for k, v in (m.headers() or []))))
    finally:
        c.close()
    return sorted(out, key=lambda r: (r.partition, r.offset))


def assert_nothing_dropped(bootstrap, topic):
    """librdkafka 2.0.2's mock keeps at most 5 MiB (or 100,000 message sets)
    per partition and drops the oldest beyond that, as retention would: a
    test that wrote more could not see everything it wrote. Every partition
    must still start at offset 0."""
    c = consumer(bootstrap)
    try:
        for p in range(topics(bootstrap).get(topic, 0)):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assert low == 0, (f"the mock dropped the first {low} of {high} records of {topic} "
                              f"[{p}] (its 5 MiB per partition limit): write less in this test")
    finally:
        c.close()


def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2)."""
    length = len(data)
    m = 0x5bd1e995
    h = (0x9747b28c ^ length) & 0xffffffff
    for i in range(length // 4):
        k = data[4 * i] | data[4 * i + 1] << 8 | data[4 * i + 2] << 16 | data[4 * i + 3] << 24
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff
        h ^= k
    tail = length & ~3
    rem = length % 4
    if rem == 3:
        h ^= data[tail + 2] << 16
    if rem >= 2:
        h ^= data[tail + 1] << 8
    if rem >= 1:
        h ^= data[tail]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h


def java_partition(key, nparts):
    return (murmur2(key) & 0x7fffffff) % nparts


def committed_batches(bootstrap):
    """The batches whose checkpoint record is in the checkpoint topic."""
    return {r.headers.get("penstock.batch") for r in read_topic(bootstrap, CHECKPOINTS)}


def as_committed(records, batches):
    """The records a real broker would show read_committed (module doc)."""
    return [r for r in records if r.headers.get("penstock.batch") in batches]


def payload(raw):
    """A value or key with or without the JSON converter's schema."""
    if raw is None:
        return None
    v = json.loads(raw)
    return v["payload"] if isinstance(v, dict) and set(v) == {"schema", "payload"} else v


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# --- running penstock ---------------------------------------------------------------

class Run:
    """`penstock run` on a spec with a Kafka target."""

    def __init__(self, workdir, spec):
        self.workdir = pathlib.Path(workdir)
        self.spec = spec
        self.proc = None
        self.n = 0

    def start(self, env=None):
        self.n += 1
        (self.workdir / "spec.json").write_text(json.dumps(self.spec))
        self.log = self.workdir / f"run.{self.n}.log"
        self.proc = subprocess.Popen(
            [BIN, "run", "--state-dir", str(self.workdir / "state"), str(self.workdir / "spec.json")],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
            env=dict(os.environ, **(env or {})))
        return self

    def text(self):
        return self.log.read_text()

    def wait_streaming(self, timeout=60):
        def ready():
            assert self.proc.poll() is None, f"penstock exited: {self.text()}"
            return "; streaming, " in self.text()
        wait_for(ready, timeout, what="penstock to stream")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def kill(self):
        self.proc.kill()
        self.proc.wait(30)


def kafka_spec(db, kafka, name, prefix, type="cdc", tables=None, **target):
    t = {"url": f"kafka://{kafka.bootstrap}/?topic_prefix={prefix}"}
    t.update(target)
    spec = {"name": name, "type": type, "source": {"url": db.url}, "target": t}
    if tables:
        spec["tables"] = {"include": tables}
    return spec


def sentinel_seen(db, kafka, prefix, marker, timeout=60):
    """Writes a row into public.sentinel and waits until a read_committed
    consumer sees it: everything committed before it is in the topics."""
    db.execute("INSERT INTO sentinel VALUES (%s)", (marker,))

    def seen():
        recs = read_topic(kafka.bootstrap, f"{prefix}.public.sentinel")
        return any((payload(r.value) or {}).get("after", payload(r.value) or {}).get("id") == marker
                   for r in recs if r.value)
    wait_for(seen, timeout, interval=0.2, what=f"sentinel {marker} in Kafka")


# --- every operation and the type zoo ----------------------------------------------

ZOO = """CREATE TABLE zoo (
  id int PRIMARY KEY, s2 smallint, i8 bigint, n numeric(12,3), nv numeric, f4 real,
  f8 double precision, b boolean, t text, vc varchar(10), ch char(3), d date, tm time,
  ts timestamp, tz timestamptz, u uuid, j json, jb jsonb, by bytea, iv interval, arr int[])"""
ZOO_ROWS = [
    "(1, 7, 9000000000, 12.345, 3.14159265358979, 1.5, 2.25, true, 'hé \"q\"', 'v', 'ab', "
    "'2024-02-29', '13:45:00.25', '2024-02-29 13:45:00.123456', '2024-02-29 13:45:00+02', "
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2]}', '{\"b\": null}', '\\x00ff10', "
    "'1 day 02:03:04', '{1,2,3}')",
    "(2, -7, -1, -0.500, 0, -0.0, 1e300, false, '', NULL, NULL, '1999-12-31', '00:00:00', "
    "'1999-12-31 23:59:59', '1999-12-31 23:59:59.5+00', NULL, 'null', '[]', '\\x', '-1 mons', "
    "'{}')",
]
SCHEMA_TYPES = {"id": "int32", "s2": "int16", "i8": "int64", "n": "string", "nv": "string",
                "f4": "float", "f8": "double", "b": "boolean", "t": "string", "vc": "string",
                "ch": "string", "d": "string", "tm": "string", "ts": "string", "tz": "string",
                "u": "string", "j": "string", "jb": "string", "by": "bytes", "iv": "string",
                "arr": "string"}
SCHEMA_NAMES = {"d": "io.debezium.time.IsoDate", "tm": "io.debezium.time.IsoTime",
                "ts": "io.debezium.time.IsoTimestamp", "tz": "io.debezium.time.ZonedTimestamp",
                "u": "io.debezium.data.Uuid", "j": "io.debezium.data.Json",
                "jb": "io.debezium.data.Json"}


def expected_row(db, table, where):
    """The row as penstock's Kafka events spell it, from PostgreSQL's own
    text output: numbers as numbers, decimals as strings, dates and times
    ISO 8601 UTC, bytes base64, the rest as text (docs/kafka.md)."""
    with db.cluster.connect(db.name) as c:
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute(CANONICAL)
            cur.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
                        "ORDER BY attnum", (table,))
            cols = cur.fetchall()
            cur.execute("SELECT " + ", ".join(
                f"CASE WHEN \"{n}\" IS NULL THEN NULL ELSE format('%s', \"{n}\") END"
                for n, _ in cols) + f" FROM {table} WHERE {where}")
            row = cur.fetchone()
    out = {}
    for (name, typ), text in zip(cols, row):
        if text is None:
            out[name] = None
        elif typ in ("integer", "smallint", "bigint"):
            out[name] = int(text)
        elif typ in ("real", "double precision"):
            out[name] = float(text)
        elif typ == "boolean":
            out[name] = text == "t"
        elif typ == "date":
            out[name] = text + "Z"
        elif typ.startswith("time without"):
            out[name] = text + "Z"
        elif typ.startswith("timestamp without"):
            out[name] = text.replace(" ", "T") + "Z"
        elif typ.startswith("timestamp with"):
            assert text.endswith("+00"), text
            out[name] = text[:-3].replace(" ", "T") + "Z"
        elif typ == "bytea":
            out[name] = base64.b64encode(bytes.fromhex(text[2:])).decode()
        else:
            out[name] = text
    return out


def key_bytes(prefix, table, value, schemas=True):
    """What Kafka Connect's JSON converter writes for an int4 key id."""
    key = {"id": value}
    if not schemas:
        return compact(key)
    return compact({"schema": {"type": "struct", "fields": [
        {"type": "int32", "optional": False, "field": "id"}], "optional": False,
        "name": f"{prefix}.public.{table}.Key"}, "payload": key})


def assert_partitions(bootstrap, topic, records):
    nparts = topics(bootstrap)[topic]
    for r in records:
        if r.key is not None:
            assert r.partition == java_partition(r.key, nparts), (r.key, r.partition, nparts)


def test_every_operation_and_the_type_zoo(db, kafka, tmp_path):
    db.execute(ZOO)
    db.execute("CREATE TABLE nokey (a int, b text)")
    db.execute("ALTER TABLE nokey REPLICA IDENTITY FULL")
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    run = Run(tmp_path, kafka_spec(db, kafka, "zoo", "app", transaction_metadata=True,
                                   truncate_events=True, heartbeat_interval_ms=300)).start()
    run.wait_streaming()
    db.execute("INSERT INTO zoo VALUES " + ", ".join(ZOO_ROWS))        # one transaction
    after_insert = {1: expected_row(db, "zoo", "id = 1"), 2: expected_row(db, "zoo", "id = 2")}
    db.execute("UPDATE zoo SET t = 'changed', n = 1 WHERE id = 1")
    after_update = expected_row(db, "zoo", "id = 1")
    db.execute("UPDATE zoo SET id = 10 WHERE id = 1")                  # the key changes
    after_move = expected_row(db, "zoo", "id = 10")
    db.execute("DELETE FROM zoo WHERE id = 2")
    db.execute("INSERT INTO nokey VALUES (1, 'x'), (2, 'y')")
    db.execute("DELETE FROM nokey WHERE a = 1")
    db.execute("TRUNCATE nokey")
    sentinel_seen(db, kafka, "app", 1)
    assert run.stop() == 0

    batches = committed_batches(kafka.bootstrap)
    recs = read_topic(kafka.bootstrap, "app.public.zoo")
    assert as_committed(recs, batches) == recs        # a clean run: every batch committed
    assert_partitions(kafka.bootstrap, "app.public.zoo", recs)
    by_key = collections.defaultdict(list)
    for r in recs:
        by_key[r.key].append(r)
    k1, k2, k10 = (key_bytes("app", "zoo", i) for i in (1, 2, 10))
    assert set(by_key) == {k1, k2, k10}

    # key 1: create, update, then the key change's delete and tombstone
    ev = [payload(r.value) for r in by_key[k1]]
    assert [e and e["op"] for e in ev] == ["c", "u", "d", None]
    assert ev[0]["after"] == after_insert[1] and ev[0]["before"] is None
    assert ev[1]["after"] == after_update
    assert ev[2]["after"] is None and ev[2]["before"]["id"] == 1
    assert by_key[k1][2].headers["__debezium.newkey"] == k10
    assert by_key[k1][3].value is None                       # the tombstone, right after
    assert by_key[k1][3].offset == by_key[k1][2].offset + 1
    # key 10: the create of the moved row
    ev = [payload(r.value) for r in by_key[k10]]
    assert [e["op"] for e in ev] == ["c"] and ev[0]["after"] == after_move
    assert by_key[k10][0].headers["__debezium.oldkey"] == k1
    # key 2: create, delete (key-only before: REPLICA IDENTITY DEFAULT), tombstone
    ev = [payload(r.value) for r in by_key[k2]]
    assert [e and e["op"] for e in ev] == ["c", "d", None]
    assert ev[0]["after"] == after_insert[2]
    assert ev[1]["before"] == dict({c: None for c in after_insert[2]}, id=2)

    # the envelope: Debezium's source block, schema with the JSON converter
    first = json.loads(by_key[k1][0].value)
    src = first["payload"]["source"]
    assert src["connector"] == "postgresql" and src["name"] == "app" and src["db"] == db.name
    assert src["schema"] == "public" and src["table"] == "zoo" and src["snapshot"] == "false"
    assert isinstance(src["lsn"], int) and src["sequence"] == f'[null,"{src["lsn"]}"]'
    assert isinstance(src["txId"], int) and isinstance(src["ts_ms"], int)
    assert first["schema"]["name"] == "app.public.zoo.Envelope"
    after_schema = first["schema"]["fields"][1]
    assert after_schema["field"] == "after" and after_schema["name"] == "app.public.zoo.Value"
    types = {f["field"]: f["type"] for f in after_schema["fields"]}
    assert types == SCHEMA_TYPES
    names = {f["field"]: f.get("name") for f in after_schema["fields"] if f.get("name")}
    assert names == SCHEMA_NAMES
    # both inserts were one source transaction: one transaction block id
    tx = [payload(r.value)["transaction"] for r in (by_key[k1][0], by_key[k2][0])]
    assert tx[0]["id"] == tx[1]["id"] and {t["total_order"] for t in tx} == {1, 2}

    # the keyless table: null keys, no tombstone for a null key, truncate event
    nk = read_topic(kafka.bootstrap, "app.public.nokey")
    assert all(r.key is None for r in nk)
    ops = sorted(payload(r.value)["op"] for r in nk)
    assert ops == ["c", "c", "d", "t"]
    assert len([r for r in nk if r.value is None]) == 0

    # transaction metadata: BEGIN and END per source transaction, with counts
    txn = [payload(r.value) for r in read_topic(kafka.bootstrap, "app.transaction")]
    ends = {t["id"]: t for t in txn if t["status"] == "END"}
    begins = {t["id"] for t in txn if t["status"] == "BEGIN"}
    assert begins == set(ends)
    assert ends[tx[0]["id"]]["event_count"] == 2
    assert ends[tx[0]["id"]]["data_collections"] == [{"data_collection": "public.zoo",
                                                      "event_count": 2}]

    # heartbeats, also while the source is idle
    beats = read_topic(kafka.bootstrap, "__debezium-heartbeat.app")
    assert len(beats) >= 2
    assert payload(beats[0].key) == {"serverName": "app"}
    assert json.loads(beats[0].key)["schema"]["name"] == "io.debezium.connector.common.ServerNameKey"
    assert isinstance(payload(beats[-1].value)["ts_ms"], int)


def test_flattened_mode(db, kafka, tmp_path):
    db.execute("CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(8,2))")
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    run = Run(tmp_path, kafka_spec(db, kafka, "flat", "flat", flatten=True, schemas=False,
                                   truncate_events=True)).start()
    run.wait_streaming()
    db.execute("INSERT INTO items VALUES (1, 'one', 1.50), (2, 'two', 2.00)")
    db.execute("UPDATE items SET name = 'uno' WHERE id = 1")
    db.execute("DELETE FROM items WHERE id = 2")
    db.execute("TRUNCATE items")                               # dropped, as ExtractNewRecordState does
    sentinel_seen(db, kafka, "flat", 1)
    assert run.stop() == 0
    recs = read_topic(kafka.bootstrap, "flat.public.items")
    assert_partitions(kafka.bootstrap, "flat.public.items", recs)
    by_key = collections.defaultdict(list)
    for r in recs:
        by_key[r.key].append(r)
    k1, k2 = key_bytes("flat", "items", 1, schemas=False), key_bytes("flat", "items", 2, schemas=False)
    assert set(by_key) == {k1, k2}
    rows = [json.loads(r.value) for r in by_key[k1]]
    assert [(r["id"], r["name"], r["price"], r["__op"], r["__deleted"]) for r in rows] == [
        (1, "one", "1.50", "c", "false"), (1, "uno", "1.50", "u", "false")]
    assert all(isinstance(r["__source_ts_ms"], int) and isinstance(r["__lsn"], int) for r in rows)
    assert list(rows[0]) == ["id", "name", "price", "__deleted", "__op", "__source_ts_ms", "__lsn"]
    d = [json.loads(r.value) if r.value else None for r in by_key[k2]]
    assert d[0]["__op"] == "c" and d[1]["__op"] == "d" and d[1]["__deleted"] == "true"
    assert d[1]["id"] == 2 and d[1]["name"] is None            # the key-only row before
    assert d[2] is None                                          # the tombstone stays
    assert len(recs) == 5


# --- exactly once under crashes ------------------------------------------------------

def replay_items(records):
    """w_items as its events leave it: per key, its partition's last record."""
    state = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        if r.value is None:
            continue
        e = payload(r.value)
        key = str(payload(r.key)["id"])
        if e["op"] == "d":
            state.pop(key, None)
        else:
            a = e["after"]
            state[key] = (str(a["id"]), str(a["v"]), a["pad"])
    return state


def check_exactly_once(db, kafka, prefix):
    """Every change in w_items and w_history exactly once (the batch rule of
    the module doc applied), and the topics replay to the source's rows.
    Returns how many records the batch rule dropped."""
    for t in (CHECKPOINTS, f"{prefix}.public.w_items", f"{prefix}.public.w_history"):
        assert_nothing_dropped(kafka.bootstrap, t)
    batches = committed_batches(kafka.bootstrap)
    items_all = read_topic(kafka.bootstrap, f"{prefix}.public.w_items")
    hist_all = read_topic(kafka.bootstrap, f"{prefix}.public.w_history")
    items, hist = as_committed(items_all, batches), as_committed(hist_all, batches)
    assert_partitions(kafka.bootstrap, f"{prefix}.public.w_items", items)
    seen = collections.Counter()
    for r in items + hist:
        if r.value is None:
            continue
        e = payload(r.value)
        # a change by its log position; a load row by its key (or, without
        # one, its row: the seed rows of w_history are distinct)
        ident = (r.topic, e["op"], e["source"]["lsn"] if e["op"] != "r" else
                 r.key or json.dumps(e["after"], sort_keys=True))
        seen[ident] += 1
    twice = [i for i, n in seen.items() if n > 1]
    assert not twice, f"{len(twice)} changes more than once, e.g. {twice[:3]}"
    want = {r[0]: r for r in db.execute("SELECT id::text, v::text, pad FROM w_items")}
    got = replay_items(items)
    if got != want:   # say what the topics hold about the first differences
        print(f"records: w_items {len(items_all)} ({len(items)} committed), w_history "
              f"{len(hist_all)} ({len(hist)} committed); w_history rows in the topics "
              f"{sum(1 for r in hist if r.value)}, in the source "
              f"{db.value('SELECT count(*) FROM w_history')}")
        for mk in sorted(set(want) ^ set(got), key=str)[:2]:
            print("DIFFERS", mk, want.get(mk), got.get(mk))
            for r in items_all:
                if f'"id":{mk}' in str(r.key) + str(r.headers):
                    print("  ", r.partition, r.offset, r.key, r.headers,
                          payload(r.value)["op"] if r.value else "tombstone",
                          "committed" if r.headers.get("penstock.batch") in batches else "dropped")
    assert got == want, (len(got), len(want),
                         sorted(set(got.items()) ^ set(want.items()), key=str)[:6])
    hist_rows = collections.Counter(
        (str(payload(r.value)["after"]["k"]), payload(r.value)["after"]["note"])
        for r in hist if r.value)
    want_hist = collections.Counter((str(k), n) for k, n in
                                    db.execute("SELECT k, note FROM w_history"))
    assert hist_rows == want_hist, (sum(hist_rows.values()), sum(want_hist.values()))
    return len(items_all) + len(hist_all) - len(items) - len(hist)


def test_crash_at_each_fault_point_and_kill_9_under_writes_exactly_once(db, kafka, tmp_path):
    Writer.create_tables(db, rows=300)
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    spec = kafka_spec(db, kafka, "eo", "eo", type="sync",
                      tables=["public.w_items", "public.w_history", "public.sentinel"],
                      schemas=False)
    run = Run(tmp_path, spec)
    writer = Trickle(db)      # paced: the mock keeps 5 MiB a partition (assert_nothing_dropped)
    writer.start()
    rng = random.Random(18)
    deaths = []
    try:
        run.start()
        run.wait_streaming()                    # the load is done: kills hit the stream
        for fault in ["apply.batch.before_commit:crash@3", "apply.batch.after_commit:crash@3",
                      "kafka.txn.before_commit:crash@3", "source.read:crash@200"]:
            run.kill()
            run.start(env={"PENSTOCK_FAULT": fault})
            run.proc.wait(120)
            assert run.proc.returncode == -signal.SIGKILL, run.text()
            assert "crashing as PENSTOCK_FAULT asks" in run.text()
            deaths.append(fault)
            run.start()
            run.wait_streaming()
        for i in range(4):                      # kill -9 at random moments
            done = writer.w.txns
            wait_for(lambda: writer.w.txns > done + rng.randrange(5, 60), 60, what="writes")
            time.sleep(rng.uniform(0.0, 0.3))   # a random moment, not a wait
            run.kill()
            deaths.append(f"kill -9 #{i + 1}")
            run.start()
            run.wait_streaming()
        done = writer.w.txns
        wait_for(lambda: writer.w.txns > done + 50, 60, what="more writes")
    finally:
        writer.stop()
    sentinel_seen(db, kafka, "eo", 1)
    assert run.stop() == 0
    try:
        dropped = check_exactly_once(db, kafka, "eo")
    except AssertionError:
        for n in range(1, run.n + 1):    # what each run said, for the record
            print(f"--- run {n}:\n" + (tmp_path / f"run.{n}.log").read_text()[-3000:])
        raise
    print(f"exactly once after {len(deaths)} deaths ({', '.join(deaths)}); "
          f"{writer.w.txns} source transactions; {dropped} records of uncommitted batches "
          f"that the mock still shows were dropped by the batch rule")


def test_crash_during_the_load_resumes_and_marks_what_it_repeats(db, kafka, tmp_path):
    """snapshot.unit.commit: the load dies with a unit's records sent but its
    transaction not committed. The restart copies the unfinished units under
    a new snapshot and replays the log between the two snapshots: no change is
    lost, none is produced twice, and the changes of that window that a
    re-copied unit already holds are marked reprocessing (the core's
    ILUPDATE window; docs/checkpoints.md)."""
    Writer.create_tables(db, rows=3000)
    db.execute("ANALYZE")
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    spec = kafka_spec(db, kafka, "ld", "ld", type="sync", schemas=False,
                      tables=["public.w_items", "public.w_history", "public.sentinel"])
    spec["snapshot"] = {"chunk_rows": 1000}
    run = Run(tmp_path, spec)
    writer = Trickle(db)
    writer.start()
    try:
        # units in order: sentinel, w_history, then w_items in 3 key ranges: the
        # 4th leaves w_items with one unit done under the first snapshot
        run.start(env={"PENSTOCK_FAULT": "snapshot.unit.commit:crash@4"})
        run.proc.wait(120)
        assert run.proc.returncode == -signal.SIGKILL, run.text()
        run.start()
        run.wait_streaming()
        assert "resuming the initial load under a new snapshot" in run.text()
        done = writer.w.txns
        wait_for(lambda: writer.w.txns > done + 50, 60, what="writes")
    finally:
        writer.stop()
    sentinel_seen(db, kafka, "ld", 1)
    assert run.stop() == 0
    for t in (CHECKPOINTS, "ld.public.w_items", "ld.public.w_history"):
        assert_nothing_dropped(kafka.bootstrap, t)
    batches = committed_batches(kafka.bootstrap)
    items = as_committed(read_topic(kafka.bootstrap, "ld.public.w_items"), batches)
    hist = as_committed(read_topic(kafka.bootstrap, "ld.public.w_history"), batches)
    want = {r[0]: r for r in db.execute("SELECT id::text, v::text, pad FROM w_items")}
    assert replay_items(items) == want
    seen = collections.Counter()
    rows = collections.Counter()
    marked = 0
    for r in items + hist:
        if r.value is None:
            continue
        e = payload(r.value)
        seen[(r.topic, e["op"], e["source"]["lsn"] if e["op"] != "r" else
              r.key or json.dumps(e["after"], sort_keys=True))] += 1
        marked += e.get("reprocessing") is True
        if r.topic.endswith("w_history"):
            rows[(str(e["after"]["k"]), e["after"]["note"], e.get("reprocessing") is True)] += 1
    assert max(seen.values()) == 1, [i for i, n in seen.items() if n > 1][:3]
    # every source row once; a repeat only as a marked change of the window
    got = collections.Counter()
    for (k, note, repro), n in rows.items():
        if repro and (k, note, False) in rows:
            continue
        got[(k, note)] += n
    want_hist = collections.Counter((str(k), n) for k, n in db.execute("SELECT k, note FROM w_history"))
    assert got == want_hist
    assert marked > 0


# --- failures through the server ------------------------------------------------------

@pytest.fixture
def kserver(tmp_path, kafka):
    """A server torn down before the mock cluster (its jobs' deletion talks
    to the brokers)."""
    s = Server(tmp_path / "state").start()
    yield s
    s.stop()


def start_kafka_job(server, spec):
    status, job = server.call("POST", "/v1/jobs", spec)
    assert status == 201, job
    assert server.call("POST", f"/v1/jobs/{spec['name']}/start")[0] == 202
    wait_for(lambda: server.job(spec["name"])["phase"] == "streaming", 120, what="streaming")


def failed_then_running(server, name, timeout=120):
    """Waits for the job to fail, then to stream again; returns the failed job."""
    seen = {}

    def failed():
        j = server.job(name)
        if j["state"] == "failed":
            seen["job"] = j
            return True
        assert j["state"] in ("running", "starting"), j
        return False
    wait_for(failed, timeout, interval=0.05, what=f"{name} failed")
    wait_for(lambda: server.job(name)["state"] == "running" and
             server.job(name)["phase"] == "streaming", timeout, what=f"{name} running again")
    return seen["job"]


class Trickle(threading.Thread):
    """A steady trickle of small transactions on w_items and w_history."""

    def __init__(self, database):
        super().__init__(daemon=True)
        self.w = Writer(database)
        self.halt = threading.Event()

    def run(self):
        c = self.w.database.cluster.connect(self.w.database.name)
        c.autocommit = False
        with c.cursor() as cur:
            while not self.halt.is_set():
                self.w.write(cur)
                c.commit()
                self.w.txns += 1
                self.halt.wait(0.01)
        c.close()

    def stop(self):
        self.halt.set()
        self.join(30)


@pytest.mark.parametrize("fault", [
    "errors Produce 1 UNKNOWN",                       # a record refused: abortable
    "errors EndTxn 1 UNKNOWN",                        # the commit refused: abortable
    "errors InitProducerId 12 COORDINATOR_LOAD_IN_PROGRESS",  # init times out, then works
    "down all",                                       # the brokers go away for a while
])
def test_broker_faults_fail_the_job_which_retries_and_loses_nothing(db, kafka, kserver, fault):
    Writer.create_tables(db, rows=100)
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    spec = kafka_spec(db, kafka, "orders", "srv", type="sync",
                      tables=["public.w_items", "public.w_history", "public.sentinel"],
                      schemas=False, timeout_ms=3000, transaction_timeout_ms=20000)
    spec["retry"] = FAST_RETRY
    trickle = Trickle(db)
    trickle.start()
    try:
        start_kafka_job(kserver, spec)
        wait_for(lambda: trickle.w.txns > 20, 60, what="writes")
        if fault.startswith("errors InitProducerId"):
            # only a new producer asks for an id: make the running one fail first
            kafka.cmd("errors EndTxn 1 UNKNOWN")
        kafka.cmd(fault)
        if fault == "down all":
            job = kserver.wait_state("orders", "failed", timeout=90)
            done = trickle.w.txns
            wait_for(lambda: trickle.w.txns > done + 20, 60, what="writes while down")
            kafka.cmd("up all")
            wait_for(lambda: kserver.job("orders")["state"] == "running" and
                     kserver.job("orders")["phase"] == "streaming", 120, what="running again")
        else:
            job = failed_then_running(kserver, "orders")
        err = job["last_error"]
        assert err["retryable"] is True, err
        assert err["engine_code_kind"] == "Kafka error", err
        done = trickle.w.txns
        wait_for(lambda: trickle.w.txns > done + 20, 60, what="writes after")
    finally:
        trickle.stop()
    sentinel_seen(db, kafka, "srv", 1)
    path = transitions(kserver, "orders")
    assert "failed" in path and path[-1] == "running" and "failed_permanently" not in path, path
    check_exactly_once(db, kafka, "srv")
    # the figures: job show and /metrics
    shown = kserver.cli("show", "orders", check=0).stdout
    assert "target      messages_produced" in shown, shown
    status, text = kserver.call("GET", "/metrics")
    assert "penstock_target_messages_produced_total{job=\"orders\"}" in text
    assert "penstock_target_transactions_committed_total{job=\"orders\"}" in text
    assert "penstock_target_delivery_latency_ms{job=\"orders\"}" in text


def test_retriable_produce_errors_are_retried_by_the_producer(db, kafka, kserver):
    Writer.create_tables(db, rows=50)
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    spec = kafka_spec(db, kafka, "orders", "rt", type="sync",
                      tables=["public.w_items", "public.w_history", "public.sentinel"],
                      schemas=False)
    start_kafka_job(kserver, spec)
    kafka.cmd("errors Produce 5 NOT_ENOUGH_REPLICAS")
    db.execute("INSERT INTO w_items VALUES (5000, 1, 'x')")
    sentinel_seen(db, kafka, "rt", 1)
    assert "failed" not in transitions(kserver, "orders")
    check_exactly_once(db, kafka, "rt")


def test_a_fatal_producer_is_rebuilt_by_the_retry(db, kafka, tmp_path):
    Writer.create_tables(db, rows=50)
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    server = Server(tmp_path / "state", env_extra={"PENSTOCK_FAULT": "kafka.producer.fatal:error@40"})
    server.start()
    try:
        spec = kafka_spec(db, kafka, "orders", "fat", type="sync",
                          tables=["public.w_items", "public.w_history", "public.sentinel"],
                          schemas=False)
        spec["retry"] = FAST_RETRY
        trickle = Trickle(db)
        trickle.start()
        try:
            start_kafka_job(server, spec)
            # the 40th record may come while the job loads: read the history
            wait_for(lambda: "failed" in transitions(server, "orders") and
                     server.job("orders")["state"] == "running" and
                     server.job("orders")["phase"] == "streaming", 120, what="failed, then running")
            failed = [e for e in transition_events(server, "orders") if e["to"] == "failed"]
            assert "builds a new producer" in failed[0]["reason"], failed
            assert "failed_permanently" not in transitions(server, "orders")
            done = trickle.w.txns
            wait_for(lambda: trickle.w.txns > done + 20, 60, what="writes after")
        finally:
            trickle.stop()
        sentinel_seen(db, kafka, "fat", 1)
        check_exactly_once(db, kafka, "fat")
        assert "the producer is made fatal as PENSTOCK_FAULT asks" in server.logtext()
    finally:
        server.stop()


def test_fencing_fails_the_job_for_good_naming_the_cause(db, kafka, kserver):
    db.execute("CREATE TABLE items (id int PRIMARY KEY)")
    spec = kafka_spec(db, kafka, "orders", "fence", tables=["public.items"])
    spec["retry"] = FAST_RETRY
    start_kafka_job(kserver, spec)
    kafka.cmd("errors EndTxn 1 PRODUCER_FENCED")
    db.execute("INSERT INTO items VALUES (1)")
    job = kserver.wait_state("orders", "failed_permanently", timeout=60)
    err = job["last_error"]
    assert err["retryable"] is False and err["class"] == "invalid", err
    assert "another penstock is running job 'orders'" in err["message"], err
    assert err["kafka_error"] == "_FENCED", err
    shown = kserver.cli("show", "orders", check=0).stdout
    assert "another penstock" in shown and "recover" in shown


# --- at least once ---------------------------------------------------------------------

def test_at_least_once_marks_what_a_restart_repeats(db, kafka, tmp_path):
    Writer.create_tables(db, rows=50)
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    run = Run(tmp_path, kafka_spec(db, kafka, "alo", "alo", type="sync", schemas=False,
                                   delivery="at_least_once",
                                   tables=["public.w_items", "public.w_history",
                                           "public.sentinel"]))
    writer = Writer(db)
    writer.start()
    try:
        run.start()
        run.wait_streaming()
        run.kill()
        run.start(env={"PENSTOCK_FAULT": "apply.batch.before_commit:crash@2"})
        run.proc.wait(120)
        run.start()
        run.wait_streaming()
        assert "are marked \"reprocessing\": true" in run.text()
        done = writer.txns
        wait_for(lambda: writer.txns > done + 30, 60, what="writes")
    finally:
        writer.stop()
    sentinel_seen(db, kafka, "alo", 1)
    assert run.stop() == 0
    assert (tmp_path / "state" / "jobs" / "alo" / "checkpoint.json").exists()
    assert_nothing_dropped(kafka.bootstrap, "alo.public.w_items")
    recs = read_topic(kafka.bootstrap, "alo.public.w_items")
    want = {r[0]: r for r in db.execute("SELECT id::text, v::text, pad FROM w_items")}
    assert replay_items(recs) == want
    assert any(r.value and payload(r.value).get("reprocessing") is True for r in recs)


# --- prechecks and secrets ---------------------------------------------------------------

def check(spec, tmp_path, env=None):
    path = tmp_path / "check.json"
    path.write_text(json.dumps(spec))
    p = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, **(env or {})))
    return p, json.loads(p.stdout) if p.stdout.strip().startswith("{") else None


def items_by_id(report):
    return {i["id"]: i for i in report["items"]}


def test_prechecks(db, kafka, tmp_path):
    db.execute("CREATE TABLE items (id int PRIMARY KEY)")
    p, report = check(kafka_spec(db, kafka, "pc", "pc", tables=["public.items"]), tmp_path)
    assert report, p.stderr
    items = items_by_id(report)
    assert items["target.connect"]["result"] == "passed", items
    # the mock names no controller: nothing can be created or described by
    # request, which the checks say instead of passing
    assert items["target.topics"]["level"] == "warning", items
    assert "cannot create topics by request" in items["target.topics"]["message"]
    assert items["target.checkpoint_topic"]["level"] == "warning", items
    assert "cleanup.policy=compact" in items["target.checkpoint_topic"]["fix"]
    # brokers that do not answer
    spec = kafka_spec(db, kafka, "pc", "pc", tables=["public.items"], timeout_ms=1500)
    spec["target"]["url"] = "kafka://127.0.0.1:1/?topic_prefix=pc"
    p, report = check(spec, tmp_path)
    items = items_by_id(report)
    assert items["target.connect"]["result"] == "failed" and items["target.connect"]["fix"]
    assert items["target.topics"]["result"] == "skipped"


def test_secrets_never_shown(db, kafka, tmp_path):
    db.execute("CREATE TABLE items (id int PRIMARY KEY)")
    secret = "s3cr3t-kafka-Pa55"
    spec = kafka_spec(db, kafka, "sec", "sec", tables=["public.items"], timeout_ms=1500,
                      security_protocol="sasl_plaintext", sasl_mechanism="PLAIN",
                      sasl_username="penstock", password_env="KAFKA_PW")
    env = {"KAFKA_PW": secret}
    p, report = check(spec, tmp_path, env)
    assert secret not in p.stdout + p.stderr
    run = Run(tmp_path, spec)
    run.start(env=env)
    run.proc.wait(120)                      # the mock speaks no SASL: the run fails
    assert run.proc.returncode != 0
    assert secret not in run.text()
    server = Server(tmp_path / "srvstate", env_extra=env).start()
    try:
        status, job = server.call("POST", "/v1/jobs", spec)
        assert status == 201, job
        server.call("POST", "/v1/jobs/sec/start")
        server.wait_state("sec", "failed", "failed_permanently", "check_failed", "running",
                          timeout=60)
        for text in (json.dumps(server.job("sec")), server.call("GET", "/metrics")[1],
                     server.cli("show", "sec").stdout, server.logtext()):
            assert secret not in str(text)
    finally:
        server.stop()
    # a password with nothing to use it for is refused, without showing it
    spec2 = kafka_spec(db, kafka, "sec2", "sec2", tables=["public.items"], password_env="KAFKA_PW")
    run2 = Run(tmp_path / "r2", spec2)
    (tmp_path / "r2").mkdir()
    run2.start(env=env)
    run2.proc.wait(60)
    assert run2.proc.returncode != 0 and "nothing to use it for" in run2.text()
    assert secret not in run2.text()


# --- schema changes (issue 15) -------------------------------------------------------

class Inserter(threading.Thread):
    """Inserts rows (id, v) into ddl_t, one transaction each, until stopped."""

    def __init__(self, database):
        super().__init__(daemon=True)
        self.database = database
        self.halt = threading.Event()
        self.n = 0

    def run(self):
        c = self.database.cluster.connect(self.database.name)
        c.autocommit = True
        with c.cursor() as cur:
            while not self.halt.is_set():
                self.n += 1
                cur.execute("INSERT INTO ddl_t (id, v) VALUES (%s, %s)", (self.n, f"v{self.n}"))
                self.halt.wait(0.005)
        c.close()

    def stop(self):
        self.halt.set()
        self.join(30)


def test_a_column_added_under_writes_is_in_every_event_after_it(db, kafka, tmp_path):
    """ALTER TABLE ADD COLUMN while rows are being inserted: each event
    before the ALTER has the old fields, each after it the new one, in its
    payload and in its value's schema (the JSON converter's schema of the
    new definition), and every inserted row is in the topic exactly once."""
    db.execute("CREATE TABLE ddl_t (id int PRIMARY KEY, v text)")
    db.execute("CREATE TABLE sentinel (id int PRIMARY KEY)")
    spec = kafka_spec(db, kafka, "ddl", "ddl", tables=["public.ddl_t", "public.sentinel"])
    run = Run(tmp_path, spec)
    ins = Inserter(db)
    run.start()
    run.wait_streaming()
    ins.start()
    try:
        wait_for(lambda: ins.n > 50, 60, what="inserts before the ALTER")
        # the LSN inside the ALTER's transaction: an insert waits for its lock,
        # so each one with a lower LSN committed before it, each later one after
        with db.cluster.connect(db.name) as c:
            with c.cursor() as cur:
                cur.execute("ALTER TABLE ddl_t ADD COLUMN extra int DEFAULT 7")
                cur.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
                alter_lsn = int(cur.fetchone()[0])
            c.commit()
        done = ins.n
        wait_for(lambda: ins.n > done + 50, 60, what="inserts after the ALTER")
    finally:
        ins.stop()
    sentinel_seen(db, kafka, "ddl", 1)
    assert run.stop() == 0, run.text()

    topic = "ddl.public.ddl_t"
    assert_nothing_dropped(kafka.bootstrap, topic)
    recs = as_committed(read_topic(kafka.bootstrap, topic), committed_batches(kafka.bootstrap))
    before = after = 0
    ids = collections.Counter()
    for r in recs:
        v = json.loads(r.value)
        e = v["payload"]
        assert e["op"] == "c", e
        after_fields = next(f for f in v["schema"]["fields"] if f["field"] == "after")["fields"]
        names = [f["field"] for f in after_fields]
        ids[e["after"]["id"]] += 1
        if e["source"]["lsn"] < alter_lsn:
            before += 1
            assert names == ["id", "v"] and "extra" not in e["after"], (e, names)
        else:
            after += 1
            assert names == ["id", "v", "extra"], names
            assert e["after"]["extra"] == 7, e
            assert next(f for f in after_fields if f["field"] == "extra")["type"] == "int32"
    want = {r[0] for r in db.execute("SELECT id FROM ddl_t")}
    assert set(ids) == want, (len(ids), len(want))
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]
    assert before > 0 and after > 0, (before, after)
    print(f"{before} events before the ALTER without the column, {after} after it with it; "
          f"{len(want)} rows each exactly once")


# --- a MySQL/MariaDB source (issue 16) -------------------------------------------------

def test_mariadb_changes_carry_debeziums_mysql_source_block(mariadb, kafka, tmp_path):
    """From a MariaDB binlog, each event's source is Debezium's MySQL
    connector's block, with the binlog file, the rows event's offset, the
    row's index in it, server id, GTID and (include_query) the statement, as
    the JSON-lines events have them; its schema is the MySQL Source's."""
    mariadb.execute("DROP DATABASE IF EXISTS d")
    mariadb.execute("CREATE DATABASE d")
    mariadb.execute("CREATE TABLE acct (id INT PRIMARY KEY, note VARCHAR(40))", database="d")
    spec = {"name": "my", "type": "cdc",
            "source": {"url": f"mysql://root@127.0.0.1:{mariadb.port}/", "include_query": True},
            "target": {"url": f"kafka://{kafka.bootstrap}/?topic_prefix=my"},
            "tables": {"include": ["d.*"]}}
    run = Run(tmp_path, spec)
    run.start()
    run.wait_streaming()
    stmt = "INSERT INTO acct VALUES (10, 'a'), (11, 'b')"
    mariadb.execute(stmt, database="d")
    status = mariadb.execute("SHOW MASTER STATUS")[0]
    gtid = mariadb.execute("SELECT @@gtid_binlog_pos")[0][0]
    wait_for(lambda: len([r for r in read_topic(kafka.bootstrap, "my.d.acct") if r.value]) >= 2,
             60, interval=0.2, what="2 events")
    assert run.stop() == 0, run.text()
    recs = sorted((json.loads(r.value) for r in read_topic(kafka.bootstrap, "my.d.acct")
                   if r.value), key=lambda v: v["payload"]["after"]["id"])
    assert len(recs) == 2, recs
    for i, v in enumerate(recs):
        s = v["payload"]["source"]
        assert s["connector"] == "mysql" and s["db"] == "d" and s["table"] == "acct", s
        assert s["file"] == status[0] and 4 < s["pos"] < status[1], (s, status)
        assert s["server_id"] == 1 and s["gtid"] == gtid and s["row"] == i, s
        assert s["query"] == stmt and s["thread"] is None, s
        assert "lsn" not in s and "schema" not in s, s
        src_schema = next(f for f in v["schema"]["fields"] if f["field"] == "source")
        assert src_schema["name"] == "io.debezium.connector.mysql.Source"
        assert set(s) <= {f["field"] for f in src_schema["fields"]}, s
        assert v["payload"]["after"] == {"id": 10 + i, "note": "ab"[i]}
    assert recs[0]["payload"]["source"]["pos"] == recs[1]["payload"]["source"]["pos"]


# --- trickle feeds: net changes, a topic per operation (issue 21) -------------------

def committed_events(kafka, topic):
    """The committed records of topic, by partition in offset order."""
    return as_committed(read_topic(kafka.bootstrap, topic), committed_batches(kafka.bootstrap))


def test_net_changes_over_a_range_equal_the_source(db, kafka, make_penstock):
    from test_trickle import run_range
    from test_trickle_net import apply_events, play_scenarios, rows, setup_table
    setup_table(db)
    db.conn.commit()
    p = make_penstock("knet", target=f"kafka://{kafka.bootstrap}/?topic_prefix=kn")
    p.spec["target"]["changes"] = "net"
    _, start, _, _ = run_range(p)                      # the slot; an empty range
    before = rows(db)
    play_scenarios(db)
    after = rows(db)
    # killed mid-range: nothing of the range was produced (not even records
    # of an open transaction, which the mock would show)
    rc, _, err = p.run_to_exit(timeout=120, extra_env={"PENSTOCK_FAULT": "source.read:crash@30"},
                               args=("--until", "caught-up"))
    assert rc != 0 and "crashing as PENSTOCK_FAULT asks" in err, err
    assert read_topic(kafka.bootstrap, "kn.public.t") == []
    # the next run redoes the whole range
    frm, to, changes, err = run_range(p)
    assert frm == start, err
    records = committed_events(kafka, "kn.public.t")
    assert records == read_topic(kafka.bootstrap, "kn.public.t")   # one committed batch
    events = [payload(r.value) for r in records if r.value is not None]
    assert changes > len(events), err
    # one event per key, each carrying the range; keys as without net
    keys = [e["after"]["id"] if e["after"] else e["before"]["id"] for e in events]
    assert len(keys) == len(set(keys)), events
    assert all(e["range"] == {"from": frm, "to": to} for e in events), events
    for r in records:
        k = payload(r.key)["id"]
        assert r.key == key_bytes("kn", "t", k)
        if r.value is not None:
            e = payload(r.value)
            want = {(False, True): "c", (True, True): "u", (True, False): "d"}[
                (k in before, k in after)]
            assert e["op"] == want, (k, e)
    # a delete is followed by its tombstone (same key, same partition)
    for i, r in enumerate(records):
        if r.value is not None and payload(r.value)["op"] == "d":
            nxt = records[i + 1]
            assert nxt.value is None and nxt.key == r.key and nxt.partition == r.partition
    assert sum(r.value is None for r in records) == sum(e["op"] == "d" for e in events)
    # the events applied to the rows before the range give the source's rows
    # (per key: one event, so the order across partitions does not matter)
    assert apply_events(before, events) == after
    # the range was one Kafka transaction with its checkpoint: the next
    # range starts at its end and holds nothing
    frm2, _, changes2, _ = run_range(p)
    assert frm2 == to and changes2 == 0
    assert len(committed_events(kafka, "kn.public.t")) == len(records)


def test_topics_by_operation_together_are_the_unsplit_stream(db, kafka, make_penstock, tmp_path):
    from test_trickle import run_range
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v text, n int)")
    db.conn.commit()
    one = make_penstock("kone", target=f"kafka://{kafka.bootstrap}/?topic_prefix=ko")
    split = make_penstock("ksplit", target=f"kafka://{kafka.bootstrap}/?topic_prefix=ks")
    split.workdir = tmp_path / "splitwork"
    split.workdir.mkdir()
    split.state_dir = split.workdir / "state"
    split.spec["target"].update({"split": "operation", "truncate_events": True})
    one.spec["target"]["truncate_events"] = True
    run_range(one)
    run_range(split)
    for i in range(1, 121):
        db.execute("INSERT INTO t VALUES (%s, %s, %s)", (i, f"v{i}", i))
        if i % 3 == 0:
            db.execute("UPDATE t SET n = n + 1 WHERE id = %s", (i - 1,))
        if i % 7 == 0:
            db.execute("DELETE FROM t WHERE id = %s", (i - 2,))
        if i % 11 == 0:
            db.execute("UPDATE t SET id = id + 1000 WHERE id = %s", (i,))   # a key change
        db.conn.commit()
    db.execute("TRUNCATE t")
    db.conn.commit()
    bound = db.value("SELECT pg_current_wal_insert_lsn()::text")
    run_range(one, until=bound)
    run_range(split, until=bound)
    whole = committed_events(kafka, "ko.public.t")
    names = topics(kafka.bootstrap)
    assert "ks.public.t" not in names
    by_kind = {kind: committed_events(kafka, f"ks.public.t.{kind}")
               for kind in ("insert", "update", "delete", "truncate")}
    want = {"insert": "c", "update": "u", "delete": "d", "truncate": "t"}
    for kind, recs in by_kind.items():
        assert recs, kind
        for i, r in enumerate(recs):
            if r.value is None:     # a tombstone, right after its delete
                assert kind == "delete" and recs[i - 1].key == r.key and recs[i - 1].value
            else:
                assert payload(r.value)["op"] == want[kind], (kind, r)
                assert r.headers.get("penstock.position"), r.headers

    def view(r):
        v = payload(r.value)
        if v is not None:
            v = dict(v)
            v.pop("ts_ms")
            v.pop("ts_us", None)
            v.pop("ts_ns", None)
            v["source"] = {k: x for k, x in v["source"].items() if k != "name"}
        return json.dumps([r.key and payload(r.key), v], sort_keys=True)
    union = [r for recs in by_kind.values() for r in recs]
    assert sorted(map(view, union)) == sorted(map(view, whole))

    # merged by (penstock.position, source.lsn), the events of each key come
    # in the order of the unsplit topic
    def order(r):
        return (lsn_int(r.headers["penstock.position"].decode()), payload(r.value)["source"]["lsn"])
    merged = sorted((r for r in union if r.value is not None), key=order)
    per_key = collections.defaultdict(list)
    for r in merged:
        per_key[json.dumps(payload(r.key))].append(view(r))
    whole_per_key = collections.defaultdict(list)
    for r in whole:
        if r.value is not None:
            whole_per_key[json.dumps(payload(r.key))].append(view(r))
    assert per_key == whole_per_key
