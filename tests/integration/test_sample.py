"""A realistic sample database (tests/integration/dvdrental.py, shaped like
PostgreSQL's DVD rental sample: keys drawing from sequences no column owns,
an enum, domains, a partitioned payment table with a partition in another
schema, a tsvector kept by a trigger, arrays, bytea, views) migrated into
PostgreSQL and into SQLite while rows change: every table equal at the end,
and in PostgreSQL the catalog equal to the source's.
"""
from conftest import wait_equal, wait_for
import dvdrental
from test_schema import catalog
from test_server import server, spec_for, transition_events  # noqa: F401


def views_and_triggers(d):
    q = d.execute
    user = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'penstock')"
    return {
        "views": q(f"SELECT n.nspname, c.relname, c.relkind, pg_get_viewdef(c.oid) FROM pg_class c "
                   f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') "
                   f"AND {user} ORDER BY 1, 2"),
        "triggers": q("SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled "
                      "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                      "WHERE NOT t.tgisinternal ORDER BY 1, 2"),
        "matview rows": q("SELECT * FROM rental_by_category ORDER BY 1"),
    }


def test_sample_database_into_postgresql_whole_schema_while_rows_change(db, target_db, make_job):
    dvdrental.create(db)
    p = make_job("dvd", target=target_db.url, snapshot={"parallel": 3})
    p.spec["target"]["schema"] = "full"
    p.start()
    p.wait_streaming(db, timeout=180)
    renter = dvdrental.Renter(db)
    renter.start()
    wait_for(lambda: renter.txns >= 60, 120, what="rentals")
    renter.stop()
    wait_equal(db, target_db, dvdrental.TABLES, timeout=120)
    log = p.stderr()
    assert "loaded public.payment:" in log and "in 4 units" in log, log
    assert p.stop() == 0
    a, b = catalog(db), catalog(target_db)
    for kind in a:
        if kind == "sequences":   # the source's moved on since the load: compare definitions
            a[kind] = [r[:9] for r in a[kind]]
            b[kind] = [r[:9] for r in b[kind]]
        assert b[kind] == a[kind], f"{kind} differ:\nsource {a[kind]}\ntarget {b[kind]}"
    assert views_and_triggers(target_db) == views_and_triggers(db)
    # a key that draws from a sequence nobody owns works in the target too
    assert target_db.value("SELECT pg_get_serial_sequence('actor', 'actor_id')") is None
    assert target_db.value("INSERT INTO actor (first_name, last_name) VALUES ('New', 'Actor') "
                           "RETURNING actor_id") > 200
    # the triggers are there and fire for the application, not for penstock's rows
    target_db.execute("INSERT INTO film (film_id, title, description, language_id) "
                      "VALUES (100000, 'Target Film', 'typed in the target', 1)")
    assert target_db.value("SELECT fulltext::text FROM film WHERE title = 'Target Film'") == \
        db.value("SELECT to_tsvector('english', 'Target Film typed in the target')::text")


def test_sample_database_into_sqlite_while_rows_change(db, tmp_path, make_job):
    dvdrental.create(db)
    lite = str(tmp_path / "dvd.db")
    p = make_job("dvdlite", target=f"sqlite://{lite}")
    p.start()
    p.wait_streaming(db, timeout=180)
    renter = dvdrental.Renter(db, seed=11)
    renter.start()
    wait_for(lambda: renter.txns >= 60, 120, what="rentals")
    renter.stop()
    wait_equal(db, None, dvdrental.TABLES, timeout=120, sqlite_path=lite)
    assert p.stop() == 0


def test_sample_database_migration_cutover_sets_sequences_nobody_owns(server, db, target_db):
    dvdrental.create(db)
    spec = spec_for(db, target_db.url, name="dvdmove", type="migration",
                    complete={"max_lag_ms": 2000})
    assert server.call("POST", "/v1/jobs", spec)[0] == 201
    server.call("POST", "/v1/jobs/dvdmove/start")
    server.wait_state("dvdmove", "ready_to_complete", timeout=180)
    # the application writes until the cutover: the sequences move on
    db.execute("INSERT INTO actor (first_name, last_name) SELECT 'Late', 'Actor' || g "
               "FROM generate_series(1, 25) g")
    db.execute("INSERT INTO category (name) VALUES ('Late')")
    p = server.cli("complete", "dvdmove", "--wait", check=0)
    assert "job dvdmove is completed" in p.stdout, (p.stdout, p.stderr)
    wait_equal(db, target_db, dvdrental.TABLES, timeout=10)
    for seq in ("actor_actor_id_seq", "category_category_id_seq", "payment_payment_id_seq"):
        assert target_db.value(f"SELECT last_value FROM {seq}") == \
            db.value(f"SELECT last_value FROM {seq}"), seq
    new_id = target_db.value("INSERT INTO actor (first_name, last_name) VALUES ('After', 'Cut') "
                             "RETURNING actor_id")
    assert new_id > db.value("SELECT max(actor_id) FROM actor")
    done = transition_events(server, "dvdmove")[-1]["reason"]
    assert "actor_actor_id_seq" in done, done
