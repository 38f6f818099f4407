"""Bad input and refused checkpoints: clear errors, documented exit codes."""
import json
import os
import subprocess

from conftest import BIN


def run(args, **kw):
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=60, **kw)


def run_spec(tmp_path, spec):
    """Writes spec to tmp_path/spec.json and runs it with its own state dir."""
    f = tmp_path / "spec.json"
    f.write_text(json.dumps(spec))
    return run(["run", "--state-dir", str(tmp_path / "s"), str(f)])


def test_bad_spec_names_the_field_and_exits_2(tmp_path):
    spec = {"name": "bad", "type": "cdc", "source": {"url": "postgresql://x@127.0.0.1/db"},
            "target": {"url": "jsonl:-"}, "tables": {"include": ["public.a", "public.b", 3]}}
    r = run_spec(tmp_path, spec)
    assert r.returncode == 2
    assert "tables.include[2]: expected a string, got number" in r.stderr
    spec["tables"] = {"inclde": ["public.*"]}
    r = run_spec(tmp_path, spec)
    assert r.returncode == 2 and "tables.inclde: unknown field" in r.stderr
    f = tmp_path / "spec.json"
    f.write_text('{"name": "bad",\n "type": }')
    r = run(["run", str(f)])
    assert r.returncode == 2 and "spec.json:2:" in r.stderr
    r = run(["run", str(tmp_path / "missing.json")])
    assert r.returncode == 2 and "missing.json" in r.stderr
    r = run(["run"])
    assert r.returncode == 2 and "usage" in r.stderr
    r = run(["frobnicate"])
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr


def test_password_in_url_is_refused(tmp_path):
    spec = {"name": "pw", "type": "cdc", "source": {"url": "postgresql://u:hunter2@127.0.0.1/db"},
            "target": {"url": "jsonl:-"}}
    r = run_spec(tmp_path, spec)
    assert r.returncode == 2
    assert "source.url" in r.stderr and "password_env" in r.stderr
    assert "hunter2" not in r.stderr


def test_unreachable_source_names_host_and_port(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                   # nothing listens there now
    spec = {"name": "gone", "type": "cdc", "source": {"url": f"postgresql://u@127.0.0.1:{port}/db"},
            "target": {"url": "jsonl:-"}}
    r = run_spec(tmp_path, spec)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "Connection refused" in lines[0]


def test_table_without_identity_is_refused_with_the_fix(db, make_penstock):
    db.execute("CREATE TABLE keyless (x int)")
    # tables.keyless refuse: by default (issue 14) such a table is captured
    # insert-only instead (test_keyless.py)
    p = make_penstock("keyless", tables={"keyless": "refuse"})
    rc, _, err = p.run_to_exit()
    assert rc == 2
    assert "public.keyless" in err and "REPLICA IDENTITY FULL" in err


def test_checkpoint_of_another_definition_is_refused(db, make_penstock):
    db.execute("CREATE TABLE a (id int PRIMARY KEY)")
    db.execute("CREATE TABLE b (id int PRIMARY KEY)")
    p = make_penstock("fp", tables={"include": ["public.a"]})
    p.start()
    p.wait_streaming(db)
    assert p.stop() == 0
    p.spec["tables"] = {"include": ["public.a", "public.b"]}
    rc, _, err = p.run_to_exit()
    assert rc == 3
    assert "different job definition" in err
    assert "tables were include=public.a;exclude=, now include=public.a,public.b" in err
    assert '"resume": "never"' in err
    # resume: never starts over and is accepted.
    p.spec["resume"] = "never"
    p.start()
    p.wait_streaming(db)
    assert p.stop() == 0
    assert "discarding the checkpoint" in p.stderr()


def test_resume_always_without_checkpoint_is_refused(db, make_penstock):
    db.execute("CREATE TABLE a (id int PRIMARY KEY)")
    p = make_penstock("always", resume="always")
    rc, _, err = p.run_to_exit()
    assert rc == 3
    assert "has no checkpoint" in err and '"if_exists"' in err


def test_lost_slot_is_refused_not_silently_recreated(db, make_penstock):
    db.execute("CREATE TABLE a (id int PRIMARY KEY)")
    p = make_penstock("lost")
    p.start()
    p.wait_streaming(db)
    assert p.stop() == 0
    db.execute("SELECT pg_drop_replication_slot('penstock_lost')")
    rc, _, err = p.run_to_exit()
    assert rc == 3
    assert "slot penstock_lost no longer exists" in err


def test_wal_level_replica_is_refused_with_the_fix(tmp_path):
    import subprocess as sp
    from conftest import PGTMP
    import shutil
    import tempfile
    port = int(sp.check_output([str(PGTMP), "freeport"]).decode())
    base = tempfile.mkdtemp(prefix="penstock-it-")   # the server's account must reach it
    os.chmod(base, 0o755)
    d = os.path.join(base, "pg")
    sp.run([str(PGTMP), "start", str(d), str(port), "wal_level=replica"], check=True)
    try:
        spec = {"name": "wl", "type": "cdc",
                "source": {"url": f"postgresql://postgres@127.0.0.1:{port}/postgres"},
                "target": {"url": "jsonl:-"}}
        r = run_spec(tmp_path, spec)
        assert r.returncode == 2
        assert "wal_level" in r.stderr and "ALTER SYSTEM SET wal_level = logical" in r.stderr
    finally:
        sp.run([str(PGTMP), "stop", str(d)])
        shutil.rmtree(base, ignore_errors=True)
