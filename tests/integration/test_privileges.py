"""Least privilege (issue 21, item 4; docs/privileges.md): a trickle-feed job
whose source role has only LOGIN, REPLICATION and SELECT on its tables, with
publications an administrator made and owns. penstock uses them as they are,
never changes or drops them, refuses ones that would hide changes, asks the
owner for a table that joins the selection (and loses nothing once the owner
did it), and warns when the role holds more than the job needs."""
import json
import os
import re
import subprocess
import uuid

import pytest

from conftest import BIN, Penstock, Writer, wait_equal

TABLES = ["public.w_items", "public.w_history"]


@pytest.fixture
def feeder(db):
    """A role with LOGIN and REPLICATION only; the caller grants SELECT."""
    name = "feeder_" + uuid.uuid4().hex[:8]
    password = uuid.uuid4().hex
    db.execute(f'CREATE ROLE "{name}" LOGIN REPLICATION PASSWORD %s', (password,))
    yield name, password
    db.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
               "WHERE database = current_database() AND NOT active")
    db.execute(f'DROP OWNED BY "{name}"')
    db.execute(f'DROP ROLE "{name}"')


def admin_publications(db, job, keyed, keyless):
    """What the administrator runs (docs/privileges.md): both publications,
    owned by the administrator."""
    db.execute(f"CREATE PUBLICATION penstock_{job} FOR TABLE {', '.join(keyed)} "
               f"WITH (publish = 'insert, update, delete, truncate', "
               f"publish_via_partition_root = true)")
    db.execute(f"CREATE PUBLICATION penstock_{job}_inserts "
               + (f"FOR TABLE {', '.join(keyless)} " if keyless else "")
               + "WITH (publish = 'insert, truncate', publish_via_partition_root = true)")


def job_for(tmp_path, db, role, password, target_url, name="feed", type="sync", **extra):
    spec = {"name": name, "type": type,
            "source": {"url": f"postgresql://{role}@127.0.0.1:{db.cluster.port}/{db.name}",
                       "password_env": "FEED_PW"},
            "target": {"url": target_url}}
    spec.update(extra)
    return Penstock(tmp_path, spec, env={"FEED_PW": password})


def check(p):
    p.write_spec()
    r = subprocess.run([BIN, "check", "--json", str(p.spec_path)], capture_output=True,
                       text=True, timeout=120, env=p.env)
    assert r.returncode in (0, 4), r.stderr
    return r.returncode, {it["id"]: it for it in json.loads(r.stdout)["items"]}, r


def until_caught_up(p):
    rc, _, err = p.run_to_exit(timeout=180, args=("--until", "caught-up"))
    return rc, err


def pub_tables(db, pub):
    return sorted(r[0] for r in db.execute(
        "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
        (pub,)))


def test_trickle_runs_with_replication_and_select_only(tmp_path, db, target_db, feeder):
    role, password = feeder
    Writer.create_tables(db)
    db.execute(f'GRANT SELECT ON w_items, w_history TO "{role}"')
    # w_history has REPLICA IDENTITY FULL: it goes into the main publication
    admin_publications(db, "feed", ["w_items", "w_history"], [])
    p = job_for(tmp_path, db, role, password, target_db.url)

    rc, got, r = check(p)
    assert rc == 0, r.stdout
    assert got["source.publication_privilege"]["result"] == "passed"
    assert "uses it as it is" in got["source.publication_privilege"]["message"]
    assert got["source.excess_privileges"]["result"] == "passed", got["source.excess_privileges"]
    assert password not in r.stdout + r.stderr

    writer = Writer(db)
    writer.start()
    try:
        for _ in range(3):
            rc, err = until_caught_up(p)
            assert rc == 0, err
            assert "processed the range" in err
    finally:
        writer.stop()
    rc, err = until_caught_up(p)
    assert rc == 0, err
    assert "used as it is" in err
    assert password not in err
    wait_equal(db, target_db, TABLES, timeout=5)
    # the administrator's publications are as they were, and still the admin's
    assert pub_tables(db, "penstock_feed") == sorted(TABLES)
    assert db.value("SELECT pubowner::regrole::text FROM pg_publication "
                    "WHERE pubname = 'penstock_feed'") == "postgres"


def test_a_table_that_joins_waits_for_the_owner_and_loses_nothing(tmp_path, db, target_db,
                                                                    feeder):
    role, password = feeder
    db.execute("CREATE TABLE a (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 100) g")
    db.execute(f'GRANT SELECT ON a TO "{role}"')
    admin_publications(db, "join", ["a"], [])
    p = job_for(tmp_path, db, role, password, target_db.url, name="join")
    rc, err = until_caught_up(p)
    assert rc == 0, err

    # a table comes into the selection (public.*) between two runs
    db.execute("CREATE TABLE b (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 50) g")
    db.execute(f'GRANT SELECT ON b TO "{role}"')
    db.execute("UPDATE a SET v = 'changed' WHERE id <= 10")
    rc, err = until_caught_up(p)
    assert rc != 0, err
    m = re.search(r"Have its owner run: (ALTER PUBLICATION [^;]*;)", err)
    assert m, err
    assert "public.b" in err or '"b"' in m.group(1)
    assert pub_tables(db, "penstock_join") == ["public.a"]     # not changed by penstock

    # the owner runs exactly what the message says; rows keep coming meanwhile
    db.execute(m.group(1))
    db.execute("INSERT INTO b VALUES (51, 'after the owner added it')")
    db.execute("DELETE FROM b WHERE id = 2")
    db.execute("UPDATE b SET v = 'updated' WHERE id = 3")
    rc, err = until_caught_up(p)
    assert rc == 0, err
    # the backfill's chunks lie past the range's bound: caught up means copied
    assert "the backfill is done: the range now ends at" in err, err
    wait_equal(db, target_db, ["public.a", "public.b"], timeout=5)
    db.execute("INSERT INTO b VALUES (52, 'next run')")
    rc, err = until_caught_up(p)
    assert rc == 0, err
    wait_equal(db, target_db, ["public.a", "public.b"], timeout=5)


def test_a_publication_that_would_hide_changes_is_refused_with_the_owners_fix(tmp_path, db,
                                                                              target_db, feeder):
    role, password = feeder
    db.execute("CREATE TABLE a (id int PRIMARY KEY, v text)")
    db.execute("CREATE TABLE b (id int PRIMARY KEY, v text)")
    db.execute(f'GRANT SELECT ON a, b TO "{role}"')
    # missing b, a row filter on a, no deletes
    db.execute("CREATE PUBLICATION penstock_bad FOR TABLE a WHERE (id > 10) "
               "WITH (publish = 'insert, update')")
    p = job_for(tmp_path, db, role, password, target_db.url, name="bad")
    rc, got, r = check(p)
    assert rc == 4, r.stdout
    item = got["source.publication_privilege"]
    assert item["result"] == "failed"
    for words in ("lists other tables", "'insert, update'", "row filter",
                  "publish_via_partition_root is off", "penstock_bad_inserts does not exist"):
        assert words in item["message"], item["message"]
    # the fix is the owner's SQL: run it and check again
    db.execute(item["fix"])
    rc, got, r = check(p)
    assert got["source.publication_privilege"]["result"] == "passed", got["source.publication_privilege"]
    assert rc == 0, r.stdout


def test_a_snapshot_job_leaves_the_administrators_publications(tmp_path, db, target_db, feeder):
    role, password = feeder
    db.execute("CREATE TABLE a (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 20) g")
    db.execute(f'GRANT SELECT ON a TO "{role}"')
    admin_publications(db, "snap", ["a"], [])
    p = job_for(tmp_path, db, role, password, target_db.url, name="snap", type="snapshot")
    rc, _, err = p.run_to_exit(timeout=180)
    assert rc == 0, err
    assert "belong to another role and are left for it" in err
    wait_equal(db, target_db, ["public.a"], timeout=5)
    assert db.value("SELECT count(*) FROM pg_publication WHERE pubname LIKE 'penstock_snap%'") == 2
    assert db.value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'penstock_snap'") == 0


def test_privileges_beyond_the_job_are_a_warning(tmp_path, db, target_db, feeder):
    role, password = feeder
    db.execute("CREATE TABLE a (id int PRIMARY KEY, v text)")
    db.execute(f'GRANT SELECT, INSERT, DELETE ON a TO "{role}"')
    db.execute(f'ALTER ROLE "{role}" CREATEDB')
    admin_publications(db, "much", ["a"], [])
    p = job_for(tmp_path, db, role, password, target_db.url, name="much")
    rc, got, r = check(p)
    assert rc == 0, r.stdout          # a warning does not block the job
    item = got["source.excess_privileges"]
    assert item["level"] == "warning" and item["result"] == "failed"
    assert "CREATEDB" in item["message"] and "public.a" in item["message"]
    db.execute(item["fix"])
    rc, got, r = check(p)
    assert got["source.excess_privileges"]["result"] == "passed", got["source.excess_privileges"]

    # the superuser the tests use holds more than any job needs
    p.spec["source"] = {"url": db.url}
    rc, got, r = check(p)
    assert got["source.excess_privileges"]["result"] == "failed"
    assert "superuser" in got["source.excess_privileges"]["message"]
