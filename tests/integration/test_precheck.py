"""`penstock check`: the prechecks, through the real binary, against real
PostgreSQL servers and SQLite files.

Each failure is provoked for real (a second cluster with wal_level=replica,
a role without privileges, a table without a key, a target table with rows,
a port nobody listens on), and where the report gives SQL as the fix, the
test runs that SQL and checks again: the fix must be exact.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile

import pytest

from conftest import BIN, PGTMP, Cluster  # noqa: F401  (Cluster: how clusters start)

EXIT_OK, EXIT_USAGE, EXIT_CHECK_FAILED = 0, 2, 4


def run_check(tmp_path, spec, env=None, as_json=True):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    args = [BIN, "check"] + (["--json"] if as_json else []) + [str(path)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, **(env or {})))
    report = json.loads(p.stdout) if as_json and p.returncode in (EXIT_OK, EXIT_CHECK_FAILED) else None
    return p.returncode, report, p


def items(report):
    return {it["id"]: it for it in report["items"]}


def spec_for(db, target_url, name="pc", type="sync", **extra):
    spec = {"name": name, "type": type, "source": {"url": db.url}, "target": {"url": target_url}}
    spec.update(extra)
    return spec


def failed_ids(report):
    return sorted(it["id"] for it in report["items"]
                  if it["result"] == "failed" and it["level"] == "error")


def has_output_plugin_setting(db):
    return db.value("SELECT count(*) FROM pg_settings WHERE name = 'output_plugin_libraries'") > 0


# --- a good setup ------------------------------------------------------------

def test_good_setup_passes_and_creates_nothing(tmp_path, db, target_db):
    db.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    db.execute("CREATE TABLE audit (at timestamptz, what text)")
    db.execute("ALTER TABLE audit REPLICA IDENTITY FULL")
    db.execute("INSERT INTO orders VALUES (1, 'a'), (2, 'b')")
    rc, report, p = run_check(tmp_path, spec_for(db, target_db.url))
    assert rc == EXIT_OK, p.stdout + p.stderr
    assert report["passed"] is True
    got = items(report)
    for required in ("source.connect", "source.version", "source.wal_level", "source.slots",
                     "source.replication_privilege", "source.publication_privilege",
                     "source.tables", "source.select_privilege", "source.replica_identity",
                     "source.output_plugin", "target.connect", "target.writable",
                     "target.tables", "target.types"):
        assert required in got, required
    for it in report["items"]:
        if it["id"] == "source.output_plugin" and not has_output_plugin_setting(db):
            assert it["result"] == "skipped" and "output_plugin_libraries" in it["message"]
        elif it["id"] == "source.excess_privileges":
            # the tests connect as the superuser: more than a job needs, a warning
            # (a role with only what it needs: test_privileges.py)
            assert it["level"] == "warning" and it["result"] == "failed", it
            assert "superuser" in it["message"], it
        else:
            assert it["result"] == "passed", it
        assert it["fix"] is None or it["result"] != "passed"
    assert "public.audit" in got["source.tables"]["message"]
    assert "public.orders" in got["source.tables"]["message"]
    # read-only: no slot, no publication, no schema, no table anywhere
    assert db.value("SELECT count(*) FROM pg_replication_slots "
                    "WHERE database = current_database()") == 0
    assert db.value("SELECT count(*) FROM pg_publication") == 0
    assert target_db.value("SELECT count(*) FROM pg_namespace WHERE nspname = 'penstock'") == 0
    assert target_db.value("SELECT count(*) FROM pg_class WHERE relname IN ('orders', 'audit')") == 0


def test_table_output_and_exit_status(tmp_path, db, target_db):
    db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    db.execute("CREATE TABLE nokey (v int)")
    # tables.keyless refuse: a table without a key blocks the job (issue 14
    # made insert-only capture the default; test_keyless.py covers that)
    rc, _, p = run_check(tmp_path, spec_for(db, target_db.url, tables={"keyless": "refuse"}), as_json=False)
    assert rc == EXIT_CHECK_FAILED
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "LEVEL", "RESULT", "MESSAGE"]
    row = [i for i, l in enumerate(lines) if l.startswith("source.replica_identity")][0]
    assert lines[row].split()[1:3] == ["error", "failed"]
    assert lines[row + 1].strip() == 'fix: ALTER TABLE "public"."nokey" REPLICA IDENTITY FULL;'
    assert lines[-1].startswith("FAILED")


# --- source ------------------------------------------------------------------

@pytest.fixture
def replica_cluster():
    """A second cluster started with wal_level=replica, torn down afterwards."""
    base = tempfile.mkdtemp(prefix="penstock-pc-")
    os.chmod(base, 0o755)
    port = int(subprocess.check_output([str(PGTMP), "freeport"]).decode())
    d = os.path.join(base, "pg")
    subprocess.run([str(PGTMP), "start", d, str(port), "wal_level=replica"], check=True)
    yield port
    subprocess.run([str(PGTMP), "stop", d], check=False)
    shutil.rmtree(base, ignore_errors=True)


def test_wal_level_replica_fails(tmp_path, replica_cluster, target_db):
    import psycopg2
    c = psycopg2.connect(host="127.0.0.1", port=replica_cluster, dbname="postgres", user="postgres")
    c.autocommit = True
    with c.cursor() as cur:
        cur.execute("SHOW wal_level")
        assert cur.fetchone()[0] == "replica"
        cur.execute("CREATE TABLE t (id int PRIMARY KEY)")
    c.close()
    spec = {"name": "pc", "type": "sync",
            "source": {"url": f"postgresql://postgres@127.0.0.1:{replica_cluster}/postgres"},
            "target": {"url": target_db.url}}
    rc, report, p = run_check(tmp_path, spec)
    assert rc == EXIT_CHECK_FAILED, p.stderr
    it = items(report)["source.wal_level"]
    assert it["result"] == "failed" and it["level"] == "error"
    assert "'replica'" in it["message"]
    assert it["fix"].startswith("ALTER SYSTEM SET wal_level = logical;")
    assert failed_ids(report) == ["source.wal_level"]


@pytest.fixture
def app_role(db):
    """A login role with a password and no privileges (scram on 127.0.0.1)."""
    name = f"app_{db.name}"
    password = "pc-Secret-" + db.name
    db.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD %s', (password,))
    yield name, password
    db.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
               "WHERE database = current_database() AND NOT active")
    db.execute(f'DROP OWNED BY "{name}"')
    db.execute(f'DROP ROLE "{name}"')


def test_missing_replication_and_select_privileges(tmp_path, db, target_db, app_role):
    role, password = app_role
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    spec = spec_for(db, f"sqlite://{tmp_path}/out.db")
    spec["source"] = {"url": f"postgresql://{role}@127.0.0.1:{db.cluster.port}/{db.name}",
                      "password_env": "PC_SRC_PW"}
    env = {"PC_SRC_PW": password}
    rc, report, p = run_check(tmp_path, spec, env)
    assert rc == EXIT_CHECK_FAILED, p.stderr
    assert password not in p.stdout and password not in p.stderr
    got = items(report)
    assert got["source.connect"]["result"] == "passed"
    assert got["source.replication_privilege"]["result"] == "failed"
    assert got["source.replication_privilege"]["fix"] == f'ALTER ROLE "{role}" REPLICATION;'
    assert got["source.select_privilege"]["result"] == "failed"
    assert "public.t" in got["source.select_privilege"]["message"]
    assert got["source.select_privilege"]["fix"] == f'GRANT SELECT ON "public"."t" TO "{role}";'
    # the role owns no table, so it may not publish them either
    assert got["source.publication_privilege"]["result"] == "failed"

    # the fixes are exact SQL: run them and check again
    db.execute(got["source.replication_privilege"]["fix"])
    db.execute(got["source.select_privilege"]["fix"])
    rc, report, p = run_check(tmp_path, spec, env)
    got = items(report)
    assert got["source.replication_privilege"]["result"] == "passed", got["source.replication_privilege"]
    assert got["source.select_privilege"]["result"] == "passed"
    assert password not in p.stdout and password not in p.stderr


def test_wrong_password_is_a_failed_connect(tmp_path, db, target_db, app_role):
    role, password = app_role
    spec = spec_for(db, target_db.url)
    spec["source"] = {"url": f"postgresql://{role}@127.0.0.1:{db.cluster.port}/{db.name}",
                      "password_env": "PC_SRC_PW"}
    rc, report, p = run_check(tmp_path, spec, {"PC_SRC_PW": "not-" + password})
    assert rc == EXIT_CHECK_FAILED
    got = items(report)
    assert got["source.connect"]["result"] == "failed"
    assert "password" in got["source.connect"]["message"]
    assert got["source.wal_level"]["result"] == "skipped"
    assert got["source.tables"]["result"] == "skipped"
    # without the source's tables the target's table items are not guessed
    assert got["target.tables"]["result"] == "skipped"
    assert password not in p.stdout and password not in p.stderr
    # an unset password variable is a failed connect naming the field
    rc, report, p = run_check(tmp_path, spec, {})
    assert rc == EXIT_CHECK_FAILED
    assert "source.password_env" in items(report)["source.connect"]["message"]


def test_table_without_key_fails_until_fixed(tmp_path, db, target_db):
    db.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    db.execute("CREATE TABLE loose (a int, b text)")
    rc, report, _ = run_check(tmp_path, spec_for(db, target_db.url, tables={"keyless": "refuse"}))
    assert rc == EXIT_CHECK_FAILED
    it = items(report)["source.replica_identity"]
    assert it["result"] == "failed"
    assert "public.loose" in it["message"] and "public.keyed" not in it["message"]
    assert it["fix"] == 'ALTER TABLE "public"."loose" REPLICA IDENTITY FULL;'
    db.execute(it["fix"])
    rc, report, _ = run_check(tmp_path, spec_for(db, target_db.url, tables={"keyless": "refuse"}))
    assert rc == EXIT_OK, report
    assert items(report)["source.replica_identity"]["result"] == "passed"


def test_pattern_matching_nothing(tmp_path, db, target_db):
    db.execute("CREATE TABLE present (id int PRIMARY KEY)")
    spec = spec_for(db, target_db.url,
                    tables={"include": ["public.present", "public.absent", "nosuch.*"]})
    rc, report, _ = run_check(tmp_path, spec)
    assert rc == EXIT_CHECK_FAILED
    it = items(report)["source.tables"]
    assert it["result"] == "failed"
    assert 'tables.include[1] "public.absent"' in it["message"]
    assert 'tables.include[2] "nosuch.*"' in it["message"]
    assert "tables.include[0]" not in it["message"]
    assert "1 table selected: public.present" in it["message"]
    assert failed_ids(report) == ["source.tables"]


# --- target ------------------------------------------------------------------

def test_pg_target_table_not_empty(tmp_path, db, target_db):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    target_db.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    target_db.execute("INSERT INTO t VALUES (7, 'old')")
    rc, report, _ = run_check(tmp_path, spec_for(db, target_db.url))
    assert rc == EXIT_CHECK_FAILED
    it = items(report)["target.tables"]
    assert it["result"] == "failed" and "public.t" in it["message"]
    assert it["fix"].startswith('TRUNCATE "public"."t";')
    assert '"truncate_before_load": true' in it["fix"]
    assert failed_ids(report) == ["target.tables"]
    # truncate_before_load accepts it, and the check changed nothing
    spec = spec_for(db, target_db.url)
    spec["target"]["truncate_before_load"] = True
    rc, report, _ = run_check(tmp_path, spec)
    assert rc == EXIT_OK
    assert target_db.value("SELECT count(*) FROM t") == 1
    # a cdc job loads nothing: rows in the target are fine
    rc, report, _ = run_check(tmp_path, spec_for(db, target_db.url, type="cdc"))
    assert rc == EXIT_OK, report
    # the fix itself
    target_db.execute(it["fix"].split(";")[0])
    rc, report, _ = run_check(tmp_path, spec_for(db, target_db.url))
    assert rc == EXIT_OK


def test_pg_target_missing_table_and_type(tmp_path, db, target_db):
    # target.schema bare: penstock creates the tables only, so the types
    # must be in the target already (issue 14 made creating them the
    # default; test_schema.py covers that)
    def bare_spec():
        spec = spec_for(db, target_db.url)
        spec["target"]["schema"] = "bare"
        return spec

    db.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
    db.execute("CREATE TABLE m (id int PRIMARY KEY, md mood, mds mood[])")
    rc, report, _ = run_check(tmp_path, bare_spec())
    assert rc == EXIT_CHECK_FAILED
    it = items(report)["target.types"]
    assert it["result"] == "failed"
    assert "type mood (of public.m)" in it["message"] and "mood[]" in it["message"]
    # create_tables never: the table must exist instead
    spec = bare_spec()
    spec["target"]["create_tables"] = "never"
    rc, report, _ = run_check(tmp_path, spec)
    got = items(report)
    assert got["target.tables"]["result"] == "failed"
    assert "public.m does not exist" in got["target.tables"]["message"]
    assert got["target.types"]["result"] == "passed"
    target_db.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
    rc, report, _ = run_check(tmp_path, bare_spec())
    assert rc == EXIT_OK, report


def test_sqlite_target_table_not_empty(tmp_path, db):
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    db.execute("CREATE TABLE u (id int PRIMARY KEY)")
    path = tmp_path / "target.db"
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    c.execute("INSERT INTO t VALUES (1, 'x')")
    c.execute("CREATE TABLE u (id INTEGER PRIMARY KEY)")
    c.commit()
    c.close()
    rc, report, _ = run_check(tmp_path, spec_for(db, f"sqlite://{path}"))
    assert rc == EXIT_CHECK_FAILED
    got = items(report)
    assert got["target.connect"]["result"] == "passed"
    assert got["target.writable"]["result"] == "passed"
    it = got["target.tables"]
    assert it["result"] == "failed"
    assert it["message"].startswith("t already holds rows")
    assert it["fix"].startswith('DELETE FROM "t";')
    c = sqlite3.connect(path)
    c.execute(it["fix"].split(";")[0])
    c.commit()
    c.close()
    rc, report, _ = run_check(tmp_path, spec_for(db, f"sqlite://{path}"))
    assert rc == EXIT_OK, report


def test_target_not_reachable(tmp_path, db):
    db.execute("CREATE TABLE t (id int PRIMARY KEY)")
    port = int(subprocess.check_output([str(PGTMP), "freeport"]).decode())
    rc, report, _ = run_check(tmp_path, spec_for(db, f"postgresql://postgres@127.0.0.1:{port}/x"))
    assert rc == EXIT_CHECK_FAILED
    got = items(report)
    assert got["target.connect"]["result"] == "failed"
    assert f"127.0.0.1:{port}" in got["target.connect"]["message"]
    assert got["target.connect"]["fix"]
    for dependent in ("target.writable", "target.tables", "target.types"):
        assert got[dependent]["result"] == "skipped"
    assert failed_ids(report) == ["target.connect"]
    # a SQLite file in a directory that does not exist
    rc, report, _ = run_check(tmp_path, spec_for(db, f"sqlite://{tmp_path}/nodir/x.db"))
    assert rc == EXIT_CHECK_FAILED
    assert items(report)["target.connect"]["result"] == "failed"


# --- checks.skip ---------------------------------------------------------------

def test_skip_list_turns_failure_into_skipped(tmp_path, db, target_db):
    db.execute("CREATE TABLE loose (a int)")
    spec = spec_for(db, target_db.url, checks={"skip": ["source.replica_identity"]}, tables={"keyless": "refuse"})
    rc, report, _ = run_check(tmp_path, spec)
    assert rc == EXIT_OK
    assert report["passed"] is True
    it = items(report)["source.replica_identity"]
    assert it["result"] == "skipped"
    assert "checks.skip" in it["message"] and "public.loose" in it["message"]


def test_bad_skip_id_is_a_spec_error(tmp_path, db, target_db):
    spec = spec_for(db, target_db.url, checks={"skip": ["source.slots", "x"]})
    rc, report, p = run_check(tmp_path, spec)
    assert rc == EXIT_USAGE
    assert 'checks.skip[1]: unknown check "x"; known: ' in p.stderr
    assert "source.replica_identity" in p.stderr
    assert p.stdout == ""
