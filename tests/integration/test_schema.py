"""Real PostgreSQL databases migrate whole (issue 14, points 1-3): every
object the selected tables need is created in the target, in dependency
order, with no manual step; the target's catalog is compared with the
source's object kind by object kind (their text forms: format_type,
pg_get_expr, pg_get_constraintdef, pg_get_indexdef, label order, sequence
values, partition bounds, comments), not only the rows.
"""
import json
import subprocess

import pytest

from conftest import BIN, wait_equal, wait_for

# --- the zoo: every item of point 1 ------------------------------------------------

ZOO = r"""
CREATE EXTENSION hstore;
CREATE EXTENSION citext;
CREATE EXTENSION ltree;
CREATE EXTENSION btree_gist;
CREATE SCHEMA zoo;
COMMENT ON SCHEMA zoo IS 'the zoo';
CREATE SCHEMA archive;
CREATE COLLATION zoo.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE COLLATION zoo.bytes (provider = libc, locale = 'C');
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
ALTER TYPE mood ADD VALUE 'meh' BEFORE 'ok';
COMMENT ON TYPE mood IS 'how an animal feels';
CREATE FUNCTION zoo.is_even(int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 % 2 = 0';
CREATE DOMAIN even_int AS int NOT NULL DEFAULT 0 CHECK (zoo.is_even(VALUE)) CHECK (VALUE >= 0);
CREATE DOMAIN short_text AS text COLLATE "C" CHECK (length(VALUE) < 20);
CREATE TYPE point3 AS (x float8, y float8, z float8);
CREATE TYPE tagged AS (label text COLLATE zoo.ci, m mood);
CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE SEQUENCE zoo.shared_ids START 1000 INCREMENT 5;
CREATE SEQUENCE standalone_seq AS integer MAXVALUE 99999 CYCLE;
COMMENT ON SEQUENCE standalone_seq IS 'codes';
CREATE FUNCTION zoo.next_code() RETURNS text LANGUAGE sql
BEGIN ATOMIC
  SELECT 'C-' || nextval('standalone_seq');
END;
CREATE TABLE zoo.animals (
  id bigint GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 10) PRIMARY KEY,
  code text NOT NULL DEFAULT zoo.next_code() UNIQUE,
  name text COLLATE zoo.ci NOT NULL,
  name_c text COLLATE "C",
  name_b text COLLATE zoo.bytes,
  mood mood DEFAULT 'ok',
  moods mood[] DEFAULT '{}',
  legs even_int,
  nick short_text,
  pos point3,
  tag tagged,
  tags tagged[],
  span floatrange,
  attrs hstore,
  email citext,
  path ltree,
  weight numeric(8,2) CHECK (weight > 0),
  weight_lb numeric GENERATED ALWAYS AS (weight * 2.2046) STORED,
  during tstzrange,
  CONSTRAINT animals_no_overlap EXCLUDE USING gist (name_c WITH =, during WITH &&)
);
COMMENT ON TABLE zoo.animals IS 'every animal';
COMMENT ON COLUMN zoo.animals.name IS 'case-insensitive name';
COMMENT ON COLUMN zoo.animals.weight_lb IS 'computed';
CREATE INDEX animals_path ON zoo.animals USING gist (path);
CREATE INDEX animals_attrs ON zoo.animals USING gin (attrs);
CREATE INDEX animals_lower ON zoo.animals (lower(name_c)) WHERE legs > 2;
COMMENT ON INDEX zoo.animals_path IS 'tree';
COMMENT ON CONSTRAINT animals_weight_check ON zoo.animals IS 'positive';
CREATE TABLE zoo.keepers (kid int PRIMARY KEY DEFAULT nextval('zoo.shared_ids'), name text);
CREATE TABLE zoo.feedings (
  fid int PRIMARY KEY DEFAULT nextval('zoo.shared_ids'),
  animal bigint NOT NULL REFERENCES zoo.animals ON DELETE CASCADE,
  keeper int REFERENCES zoo.keepers,
  at timestamptz DEFAULT now()
);
ALTER TABLE zoo.feedings ADD CONSTRAINT feedings_keeper_loose FOREIGN KEY (keeper)
  REFERENCES zoo.keepers NOT VALID;
COMMENT ON CONSTRAINT feedings_animal_fkey ON zoo.feedings IS 'who ate';
CREATE TABLE serial_owned (id serial PRIMARY KEY, v text);
CREATE TABLE zoo.visits (vid bigint, day date, animal bigint, note text,
  PRIMARY KEY (vid, day, animal)) PARTITION BY RANGE (day);
CREATE TABLE zoo.visits_2024 PARTITION OF zoo.visits
  FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE archive.visits_old PARTITION OF zoo.visits
  FOR VALUES FROM (MINVALUE) TO ('2024-01-01');
CREATE TABLE zoo.visits_rest PARTITION OF zoo.visits DEFAULT PARTITION BY LIST (animal);
CREATE TABLE zoo.visits_rest_low PARTITION OF zoo.visits_rest FOR VALUES IN (1, 2, 3);
CREATE TABLE zoo.visits_rest_other PARTITION OF zoo.visits_rest DEFAULT;
COMMENT ON TABLE archive.visits_old IS 'before 2024';
"""

ZOO_ROWS = r"""
INSERT INTO zoo.animals (name, name_c, name_b, mood, moods, legs, nick, pos, tag, tags, span,
                         attrs, email, path, weight, during)
SELECT 'Animal ' || g, 'c' || g, 'b' || g,
       (ARRAY['sad', 'meh', 'ok', 'happy'])[g % 4 + 1]::mood, ARRAY['ok', 'sad']::mood[],
       (g % 3) * 2, 'nick' || g, ROW(g, g / 2.0, -g)::point3, ROW('Tag' || g, 'happy')::tagged,
       ARRAY[ROW('x', 'ok')::tagged, NULL], numrange(g, g + 1.5)::text::floatrange,
       hstore('k', g::text), 'Mail' || g || '@Zoo.org', ('top.mid' || g % 5)::ltree,
       g * 1.25, tstzrange(now() + g * interval '1 day', now() + (g + 1) * interval '1 day')
FROM generate_series(1, 60) g;
INSERT INTO zoo.keepers (name) SELECT 'keeper ' || g FROM generate_series(1, 5) g;
INSERT INTO zoo.feedings (animal, keeper) SELECT a.id, (SELECT min(kid) FROM zoo.keepers)
FROM zoo.animals a;
INSERT INTO serial_owned (v) SELECT 'v' || g FROM generate_series(1, 7) g;
INSERT INTO zoo.visits SELECT g, DATE '2023-06-01' + g * 7, g % 6, 'visit ' || g
FROM generate_series(1, 120) g;
ANALYZE;
"""

ZOO_TABLES = ["zoo.animals", "zoo.keepers", "zoo.feedings", "public.serial_owned", "zoo.visits"]


def catalog(d):
    """The user objects of a database as comparable text, by kind."""
    q = d.execute
    user = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'penstock', 'pg_toast')"
    out = {}
    out["extensions"] = q("SELECT extname FROM pg_extension ORDER BY 1")
    out["schemas"] = q(f"SELECT nspname, obj_description(n.oid, 'pg_namespace') FROM pg_namespace n "
                       f"WHERE {user} ORDER BY 1")
    out["collations"] = q(
        f"SELECT n.nspname, c.collname, c.collprovider, c.colliculocale, c.collcollate, "
        f"c.collisdeterministic FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace "
        f"WHERE {user} ORDER BY 1, 2")
    out["enums"] = q(
        f"SELECT n.nspname, t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder), "
        f"obj_description(t.oid, 'pg_type') FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        f"JOIN pg_namespace n ON n.oid = t.typnamespace GROUP BY 1, 2, t.oid ORDER BY 1, 2")
    out["domains"] = q(
        f"SELECT n.nspname, t.typname, format_type(t.typbasetype, t.typtypmod), t.typnotnull, "
        f"t.typdefault, (SELECT collname FROM pg_collation WHERE oid = t.typcollation), "
        f"ARRAY(SELECT k.conname || ' ' || pg_get_constraintdef(k.oid) FROM pg_constraint k "
        f"WHERE k.contypid = t.oid ORDER BY 1) FROM pg_type t "
        f"JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'd' AND {user} "
        f"ORDER BY 1, 2")
    out["composites"] = q(
        f"SELECT n.nspname, t.typname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), "
        f"(SELECT collname FROM pg_collation WHERE oid = a.attcollation) FROM pg_type t "
        f"JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_class c ON c.oid = t.typrelid "
        f"AND c.relkind = 'c' JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
        f"WHERE {user} ORDER BY 1, 2, 3")
    out["ranges"] = q(
        f"SELECT n.nspname, t.typname, format_type(r.rngsubtype, NULL), "
        f"(SELECT opcname FROM pg_opclass WHERE oid = r.rngsubopc), r.rngsubdiff::regproc::text, "
        f"format_type(r.rngmultitypid, NULL) FROM pg_range r JOIN pg_type t ON t.oid = r.rngtypid "
        f"JOIN pg_namespace n ON n.oid = t.typnamespace WHERE {user} ORDER BY 1, 2")
    out["functions"] = q(
        f"SELECT n.nspname, p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
        f"JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {user} AND NOT EXISTS "
        f"(SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') ORDER BY 1, 2, 3")
    out["sequences"] = q(
        f"SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, "
        f"s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle, "
        f"pg_sequence_last_value(c.oid), obj_description(c.oid, 'pg_class') FROM pg_sequence s "
        f"JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"ORDER BY 1, 2")
    out["columns"] = q(
        f"SELECT n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), "
        f"a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, "
        f"(SELECT collname FROM pg_collation WHERE oid = a.attcollation), "
        f"col_description(c.oid, a.attnum) FROM pg_attribute a "
        f"JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        f"WHERE c.relkind IN ('r', 'p') AND {user} AND a.attnum > 0 AND NOT a.attisdropped "
        f"ORDER BY 1, 2, 3")
    out["tables"] = q(
        f"SELECT n.nspname, c.relname, c.relkind, pg_get_partkeydef(c.oid), "
        f"pg_get_expr(c.relpartbound, c.oid), obj_description(c.oid, 'pg_class') FROM pg_class c "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND {user} "
        f"ORDER BY 1, 2")
    out["constraints"] = q(
        f"SELECT n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid), k.convalidated, "
        f"obj_description(k.oid, 'pg_constraint') FROM pg_constraint k "
        f"JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE {user} ORDER BY 1, 2, 3")
    out["indexes"] = q(
        f"SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid), "
        f"obj_description(i.indexrelid, 'pg_class') FROM pg_index i "
        f"JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE {user} ORDER BY 1, 2, 3")
    return out


def assert_same_catalog(source, target, kinds=None):
    a, b = catalog(source), catalog(target)
    for kind in kinds or a:
        assert b[kind] == a[kind], f"{kind} differ:\nsource {a[kind]}\ntarget {b[kind]}"


def run_check(tmp_path, spec):
    path = tmp_path / "check.json"
    path.write_text(json.dumps(spec))
    p = subprocess.run([BIN, "check", "--json", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode in (0, 4), p.stderr
    return p.returncode, {it["id"]: it for it in json.loads(p.stdout)["items"]}


# --- tests ---------------------------------------------------------------------------

def test_type_and_object_zoo_arrives_as_on_the_source(db, target_db, make_job):
    db.execute(ZOO)
    db.execute(ZOO_ROWS)
    p = make_job("zoo", target=target_db.url, snapshot={"parallel": 3})
    rc, items = run_check(p.workdir, dict(p.spec))
    assert rc == 0, items
    assert items["target.extensions"]["result"] == "passed"
    assert items["target.types"]["result"] == "passed"
    p.start()
    p.wait_streaming(db, timeout=120)
    log = p.stderr()
    assert "after the load:" in log, log
    wait_equal(db, target_db, ZOO_TABLES)
    # every object kind, and the sequences at the source's values
    assert_same_catalog(db, target_db)
    # the partitioned table was loaded one partition a unit
    assert "loaded zoo.visits: 120 rows in 4 units" in log, log

    # changes afterwards, through every kind of column
    db.execute("UPDATE zoo.animals SET mood = 'meh', tag = ROW('Changed', 'sad'), "
               "attrs = attrs || hstore('x', 'y'), pos = ROW(0, 0, 0), weight = weight + 1 "
               "WHERE id IN (SELECT id FROM zoo.animals ORDER BY id LIMIT 10)")
    db.execute("DELETE FROM zoo.animals WHERE id = (SELECT max(id) FROM zoo.animals)")
    db.execute("INSERT INTO zoo.animals (name, legs, weight) VALUES ('ALPHA', 4, 3)")
    db.execute("UPDATE zoo.visits SET day = DATE '2024-03-01' WHERE vid = 3")   # moves partition
    db.execute("INSERT INTO zoo.visits VALUES (500, DATE '2030-01-01', 2, 'future')")
    db.execute("DELETE FROM zoo.visits WHERE vid = 100")
    db.execute("INSERT INTO zoo.keepers (name) VALUES ('new keeper')")
    wait_equal(db, target_db, ZOO_TABLES)
    # generated columns were computed by the target from the copied ones
    assert target_db.execute("SELECT id, weight_lb FROM zoo.animals ORDER BY id") == \
        db.execute("SELECT id, weight_lb FROM zoo.animals ORDER BY id")
    # the case-insensitive collation still means what it meant: 'alpha' is 'ALPHA'
    assert target_db.value("SELECT count(*) FROM zoo.animals WHERE name = 'alpha'") == 1
    # the foreign keys are there and valid (the NOT VALID one stays not valid)
    assert target_db.execute("SELECT conname, convalidated FROM pg_constraint "
                             "WHERE contype = 'f' ORDER BY 1") == \
        [("feedings_animal_fkey", True), ("feedings_keeper_fkey", True),
         ("feedings_keeper_loose", False)]
    assert_same_catalog(db, target_db, ["columns", "constraints", "indexes", "tables"])
    assert p.stop() == 0


def test_foreign_keys_not_valid_and_none(db, target_db, make_job, cluster):
    db.execute("CREATE TABLE parent (id int PRIMARY KEY)")
    db.execute("CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES parent)")
    db.execute("INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1)")
    p = make_job("fk", target=target_db.url, type="snapshot")
    p.spec["target"]["foreign_keys"] = "not_valid"
    rc, _, err = p.run_to_exit()
    assert rc == 0, err
    assert target_db.execute("SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f'") \
        == [("child_p_fkey", False)]
    other = cluster.new_database()
    try:
        p = make_job("fk2", target=other.url, type="snapshot")
        p.spec["target"]["foreign_keys"] = "none"
        rc, _, err = p.run_to_exit()
        assert rc == 0, err
        assert other.value("SELECT count(*) FROM pg_constraint WHERE contype = 'f'") == 0
        assert other.value("SELECT count(*) FROM child") == 1
    finally:
        other.conn.close()


def test_a_selected_table_brings_only_what_it_needs(db, target_db, make_job):
    """Filtering to some tables still brings every object they depend on,
    and nothing they do not: a foreign key to a table left out is left out
    and said so."""
    db.execute("CREATE TYPE color AS ENUM ('red', 'green')")
    db.execute("CREATE TYPE unused AS ENUM ('x')")
    db.execute("CREATE SEQUENCE ids")
    db.execute("CREATE TABLE other (id int PRIMARY KEY)")
    db.execute("CREATE TABLE picked (id int PRIMARY KEY DEFAULT nextval('ids'), c color, "
               "o int REFERENCES other)")
    db.execute("INSERT INTO other VALUES (1); INSERT INTO picked (c, o) VALUES ('red', 1)")
    p = make_job("pick", target=target_db.url, type="snapshot",
                 tables={"include": ["public.picked"]})
    rc, _, err = p.run_to_exit()
    assert rc == 0, err
    assert "foreign key picked_o_fkey on public.picked (it references public.other, which the " \
           "job does not select)" in err
    assert target_db.execute("SELECT typname FROM pg_type WHERE typtype = 'e'") == [("color",)]
    assert target_db.value("SELECT to_regclass('public.ids')::text") == "ids"
    assert target_db.value("SELECT to_regclass('public.other')") is None
    assert target_db.execute("SELECT c::text FROM picked") == [("red",)]


def test_extension_that_may_not_be_created_fails_the_precheck_with_the_fix(db, target_db, make_job):
    db.execute("CREATE EXTENSION hstore")
    db.execute("CREATE TABLE h (id int PRIMARY KEY, a hstore)")
    p = make_job("ext", target=target_db.url)
    p.spec["target"]["create_extensions"] = False
    rc, items = run_check(p.workdir, dict(p.spec))
    assert rc == 4
    it = items["target.extensions"]
    assert it["result"] == "failed"
    assert "extension hstore (needed by public.h)" in it["message"]
    assert 'CREATE EXTENSION "hstore";' in it["fix"]
    # the run refuses it the same way, naming it, and creates nothing
    rc, _, err = p.run_to_exit()
    assert rc != 0
    assert "extension hstore" in err and "create_extensions" in err
    assert target_db.value("SELECT to_regclass('public.h')") is None
    # the fix works
    target_db.execute('CREATE EXTENSION "hstore"')
    rc, items = run_check(p.workdir, dict(p.spec))
    assert rc == 0, items
    # and by default penstock creates it itself
    target_db.execute("DROP EXTENSION hstore")
    p.spec["target"]["create_extensions"] = True
    p.spec["type"] = "snapshot"
    rc, _, err = p.run_to_exit()
    assert rc == 0, err
    assert target_db.value("SELECT count(*) FROM pg_extension WHERE extname = 'hstore'") == 1


def test_target_schema_bare_creates_the_tables_only(db, target_db, make_job):
    db.execute("CREATE TYPE color AS ENUM ('red', 'green')")
    db.execute("CREATE TABLE t (id int PRIMARY KEY, c color)")
    p = make_job("bare", target=target_db.url, type="snapshot")
    p.spec["target"]["schema"] = "bare"
    rc, _, err = p.run_to_exit()
    assert rc != 0
    assert "column c of public.t has type color, which does not exist in the target" in err
    target_db.execute("CREATE TYPE color AS ENUM ('red', 'green')")
    rc, _, err = p.run_to_exit()
    assert rc == 0, err


def test_full_schema_brings_policies_grants_triggers_to_roles_that_exist(tmp_path, db, target_db,
                                                                        make_job):
    """target.schema full: row level security and its policies, grants, a
    trigger that fires ALWAYS on the source is created as an ordinary one
    (it must not fire on the rows penstock applies: its audit rows arrive
    as data), a disabled trigger stays disabled; into a server that lacks
    the role, the grant and the policy naming it are left out, said so."""
    import os
    import shutil
    import tempfile
    from conftest import Cluster
    role = f"reader_{db.name}"
    db.execute(f'CREATE ROLE "{role}"')
    try:
        db.execute(f"""
            CREATE TABLE docs (id int PRIMARY KEY, owner text NOT NULL, body text);
            CREATE TABLE audit (n bigserial PRIMARY KEY, what text);
            ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
            ALTER TABLE docs FORCE ROW LEVEL SECURITY;
            CREATE POLICY own_docs ON docs FOR SELECT TO "{role}" USING (owner = current_user);
            CREATE POLICY all_admin ON docs AS RESTRICTIVE FOR ALL TO PUBLIC USING (true);
            GRANT SELECT ON docs TO "{role}";
            CREATE FUNCTION log_doc() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN INSERT INTO audit (what) VALUES ('doc ' || NEW.id); RETURN NEW; END $$;
            CREATE TRIGGER docs_audit AFTER INSERT ON docs FOR EACH ROW EXECUTE FUNCTION log_doc();
            ALTER TABLE docs ENABLE ALWAYS TRIGGER docs_audit;
            CREATE TRIGGER docs_off BEFORE UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION log_doc();
            ALTER TABLE docs DISABLE TRIGGER docs_off;
            CREATE VIEW doc_titles AS SELECT id, left(body, 10) AS title FROM docs;
            GRANT SELECT ON doc_titles TO "{role}";
            INSERT INTO docs VALUES (1, 'ann', 'first'), (2, 'bob', 'second');
        """)
        p = make_job("full", target=target_db.url)
        p.spec["target"]["schema"] = "full"
        p.start()
        p.wait_streaming(db)
        db.execute("INSERT INTO docs VALUES (3, 'cy', 'third')")     # audit row on the source
        wait_equal(db, target_db, ["public.docs", "public.audit"])
        assert p.stop() == 0
        assert "trigger docs_audit on public.docs: it fires ALWAYS on the source" in p.stderr()
        pol = "SELECT policyname, permissive, roles::text, cmd, qual FROM pg_policies ORDER BY 1"
        assert target_db.execute(pol) == db.execute(pol)
        rls = "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = 'docs'"
        assert target_db.execute(rls) == [(True, True)]
        for obj in ("docs", "doc_titles"):
            assert target_db.value("SELECT has_table_privilege(%s, %s, 'SELECT')", (role, obj))
        assert target_db.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal "
                                 "ORDER BY 1") == [("docs_audit", "O"), ("docs_off", "D")]

        # a server without the role: the grant and the policy for it are left out
        base = tempfile.mkdtemp(prefix="penstock-other-")
        os.chmod(base, 0o755)        # the server runs as postgres
        other = Cluster(base)
        try:
            od = other.new_database()
            q = make_job("full2", target=od.url, type="snapshot")
            q.spec["target"]["schema"] = "full"
            rc, _, err = q.run_to_exit()
            assert rc == 0, err
            assert f"policy own_docs on public.docs: left out, role {role} does not exist" in err
            assert f"left out, role {role} does not exist in the target" in err
            assert od.execute("SELECT policyname FROM pg_policies") == [("all_admin",)]
            assert od.value("SELECT count(*) FROM docs") == 3
            od.conn.close()
        finally:
            other.stop()
            shutil.rmtree(base, ignore_errors=True)
    finally:
        for d in (db, target_db):
            d.execute(f'DROP OWNED BY "{role}"')
        db.execute(f'DROP ROLE "{role}"')
