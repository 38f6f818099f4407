"""Initial load PostgreSQL -> PostgreSQL through the raw path (binary COPY
passed through undecoded): every row of every table equal to the source,
tables with types that binary COPY cannot carry between databases copied row
by row instead and still equal, the path of each table in the log, and a
crash at a unit commit during a binary load resumed without a duplicate."""
import re

import pytest

from conftest import wait_equal
from test_load import TABLES, make_schema
from test_recovery import crash_then_resume

# More built-in types than the zoo of test_stream: arrays (multi-dimensional,
# with NULLs) of numeric, timestamptz, jsonb, bytea and interval; a range;
# char(n); a geometric type; and a bytea of ~1 MB, bigger than one piece of
# the passthrough (64 KiB), next to the ~2 MB TOASTed texts of public.docs.
ZOO2 = """
CREATE TABLE zoo2 (
  id bigint PRIMARY KEY, nums numeric[], stamps timestamptz[], docs jsonb[],
  blobs bytea[], spans interval[], grid int[][], r int4range, c5 char(5),
  pt point, tag "char", nm name, big bytea, note varchar(30) NOT NULL DEFAULT ''
)"""
ZOO2_ROWS = """
INSERT INTO zoo2 (id) VALUES (1);
INSERT INTO zoo2 VALUES (2, '{1.5,NULL,-0.000001,NaN}', '{"2024-02-29 23:59:59.999999+00",NULL,infinity}',
  ARRAY['{"a": [1, null]}'::jsonb, NULL, '"x"'], '{"\\\\x00ff",NULL,"\\\\x"}', '{"1 day",NULL,"-00:00:01"}',
  '{{1,2},{NULL,4}}', '[3,7)', 'ab', '(1.5,-2)', 'q', 'a name', '\\x00010203', E'tab\\there');
INSERT INTO zoo2 (id, big, note) SELECT 3, decode(string_agg(md5(i::text || random()::text), ''), 'hex'),
  'one big bytea' FROM generate_series(1, 65000) i;
INSERT INTO zoo2 (id, nums, r, c5, note) SELECT g, ARRAY[g * 1.25, g], int4range(g, g + 10), 'r' || (g % 10),
  'row ' || g FROM generate_series(4, 2000) g;
"""
ALL = TABLES + ["public.zoo2"]


def paths(log):
    """{table: "raw" | "row by row"} from the load's log lines."""
    out = {}
    for m in re.finditer(r"initial load: (\S+) is copied (raw|row by row)", log):
        out[m.group(1)] = m.group(2)
    return out


def test_type_zoo_loads_raw_and_equals_the_source(db, target_db, make_job):
    make_schema(db)
    db.execute(ZOO2)
    db.execute(ZOO2_ROWS)
    db.execute("ANALYZE")
    p = make_job("bin", target=target_db.url, snapshot={"chunk_rows": 1000, "parallel": 3})
    p.start()
    p.wait_streaming(db)
    wait_equal(db, target_db, ALL)
    log = p.stderr()
    assert paths(log) == {t: "raw" for t in ALL}, log
    assert "postgresql-binary-copy/15" in log
    # every unit went the same way, and the rows were counted on the way
    m = re.search(r"loaded public.zoo2: 2000 rows in (\d+) units, keys and indexes built "
                  r"\([0-9.]+ s, raw, \d+ to \d+ rows a unit\)", log)
    assert m and int(m.group(1)) > 1, log
    assert target_db.value("SELECT octet_length(big) FROM zoo2 WHERE id = 3") == \
        db.value("SELECT octet_length(big) FROM zoo2 WHERE id = 3")
    # changes after the load still apply on top of what the raw path wrote
    db.execute("UPDATE zoo2 SET nums = nums || 9.75::numeric, note = 'changed' WHERE id = 2")
    db.execute("DELETE FROM zoo2 WHERE id = 3")
    wait_equal(db, target_db, ["public.zoo2"])
    assert p.stop() == 0


def test_user_types_and_different_target_types_fall_back_to_rows(db, target_db, make_job):
    for d in (db, target_db):   # the types exist on both sides, under different OIDs
        d.execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')")
        d.execute("CREATE DOMAIN cheerful AS mood CHECK (VALUE <> 'sad')")
    assert db.value("SELECT 'mood'::regtype::oid") != target_db.value("SELECT 'mood'::regtype::oid")
    db.execute("CREATE TABLE moods (id int PRIMARY KEY, m mood, c cheerful, ms mood[])")
    db.execute("INSERT INTO moods SELECT g, (ARRAY['sad','ok','happy'])[g % 3 + 1]::mood, "
               "CASE WHEN g % 4 = 0 THEN NULL ELSE 'happy'::cheerful END, ARRAY['ok', NULL]::mood[] "
               "FROM generate_series(1, 500) g")
    # same names, other types in an existing target table: the target's
    # bigint would read four bytes of int as garbage, so rows it is
    db.execute("CREATE TABLE widened (id int PRIMARY KEY, v varchar(10))")
    db.execute("INSERT INTO widened SELECT g, 'v' || g FROM generate_series(1, 300) g")
    target_db.execute("CREATE TABLE widened (id bigint PRIMARY KEY, v text)")
    # an existing target table with the very same types goes raw
    db.execute("CREATE TABLE same (id int PRIMARY KEY, v text, n numeric(12,2))")
    db.execute("INSERT INTO same SELECT g, 'v' || g, g / 3.0 FROM generate_series(1, 300) g")
    target_db.execute("CREATE TABLE same (id int PRIMARY KEY, v text, n numeric(12,2))")
    tables = ["public.moods", "public.widened", "public.same"]
    p = make_job("fallback", target=target_db.url, snapshot={"parallel": 2})
    p.start()
    p.wait_streaming(db)
    wait_equal(db, target_db, tables)
    log = p.stderr()
    assert paths(log) == {"public.moods": "row by row", "public.widened": "row by row",
                          "public.same": "raw"}, log
    assert re.search(r"public.moods is copied row by row: column m has type mood, which is "
                     r"not built in", log), log
    assert "public.widened is copied row by row: column id is bigint in the target, " \
           "integer in the source" in log, log
    assert p.stop() == 0


@pytest.mark.parametrize("fault", ["snapshot.unit.commit:crash@1",
                                   "snapshot.unit.commit:crash@3"])
def test_crash_at_unit_commit_during_a_binary_load_resumes(fault, db, target_db, make_job):
    first, second = crash_then_resume(db, make_job, target_db.url, fault, target=target_db)
    # the crash at the first unit's commit may come before the other worker
    # has started on the second table: each table's path is logged by
    # whichever run copies it first
    before = paths(first)
    assert before and set(before.values()) == {"raw"}, first
    assert "resuming the initial load under a new snapshot" in second
    again = paths(second)   # the units left are copied raw again
    assert again and set(again.values()) == {"raw"}, second
    assert {**before, **again} == {"public.w_history": "raw", "public.w_items": "raw"}
    # the table without a key has each row once: wait_equal compared them
    # as multisets; the counts say the same once more
    assert target_db.value("SELECT count(*) FROM w_history") == \
        db.value("SELECT count(*) FROM w_history")
    assert target_db.value("SELECT count(*) FROM (SELECT k, note, count(*) FROM w_history "
                           "GROUP BY 1, 2 HAVING count(*) > 1) d") == 0
