#!/usr/bin/python3
"""Writes the seed corpora of the harnesses that read text:

  url/         fuzz_url.c: every URL in the unit tests (tests/unit/*.c, string
               literals after the preprocessor, so macros are expanded), the
               integration tests and docs/, good and bad, as written (flags
               byte 0) and, for the good ones, with a secret in the userinfo
               (flags 1)
  spec/        fuzz_spec.c: every JSON object with a "name" or a "source" in
               the unit tests' string literals and docs/'s ```json blocks,
               plus the shapes the integration tests build
  checkpoint/  fuzz_checkpoint.c: checkpoints of real runs of build/penstock
               against a throwaway PostgreSQL 15 (scripts/pgtmp.sh): a cdc
               job's bounded run into JSON lines, a sync job's load cut short
               by a crash after its second copy unit and then finished, a sync
               job into SQLite (the checkpoint row in the target); and the
               unit tests' checkpoint literals
  api/         fuzz_api.c: docs/api.md's request bodies behind the byte of
               their route, the unit tests' bodies, and the spec seeds as
               create and PATCH bodies

    make && /usr/bin/python3 tests/fuzz/make_corpus_text.py
"""
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PGTMP = os.path.join(ROOT, "scripts", "pgtmp.sh")
BIN = os.environ.get("PENSTOCK_BIN", os.path.join(ROOT, "build", "penstock"))

LITERALS = re.compile(r'"(?:[^"\\\n]|\\.)*"(?:\s*"(?:[^"\\\n]|\\.)*")*')
ONE = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
URL = re.compile(r"\b(?:postgres(?:ql)?|mysql|mariadb|sqlite|jsonl|kafka)(?::-|://[^\s\"'`)<>|\\]*)")

PKGS = ["libpq", "jansson", "sqlite3", "libmicrohttpd", "libcurl", "libmariadb", "zlib", "cmocka"]
ROUTE = {"create": 0, "patch": 1, "action": 2, "complete": 3, "recover": 4, "compare": 5}


def c_strings(path):
    """The string literals of a C file after the preprocessor, adjacent ones
    joined, decoded."""
    cflags = subprocess.run(["pkg-config", "--cflags", *PKGS], check=True, capture_output=True,
                            text=True).stdout.split()
    pre = subprocess.run(["cc", "-E", "-P", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "include"),
                          "-I" + os.path.join(ROOT, "src"), *cflags, path],
                         check=True, capture_output=True, text=True).stdout
    for run in LITERALS.finditer(pre):
        raw = "".join(m.group(1) for m in ONE.finditer(run.group(0)))
        try:
            yield raw.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except (UnicodeDecodeError, UnicodeEncodeError):
            continue


def json_blocks(path):
    text = open(path, encoding="utf-8").read()
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        yield block


def objects(texts):
    for t in texts:
        t = t.strip()
        if not t.startswith("{"):
            continue
        try:
            yield t, json.loads(t)
        except ValueError:
            yield t, None        # a broken one is a seed too


class Corpus:
    def __init__(self, name):
        self.dir = os.path.join(HERE, "corpus", name)
        os.makedirs(self.dir, exist_ok=True)
        for old in os.listdir(self.dir):
            if not old.startswith(("regress-", "found-")):  # findings and long runs' inputs stay
                os.unlink(os.path.join(self.dir, old))
        self.n = 0

    def add(self, seed):
        if isinstance(seed, str):
            seed = seed.encode("utf-8", "surrogateescape")
        path = os.path.join(self.dir, hashlib.sha1(seed).hexdigest())
        if not os.path.exists(path):
            open(path, "wb").write(seed)
            self.n += 1


def unit_sources():
    return sorted(glob.glob(os.path.join(ROOT, "tests", "unit", "*.c")))


def docs():
    return sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


# --- URLs --------------------------------------------------------------------

def urls():
    found = set()
    for path in unit_sources():
        for s in c_strings(path):
            if os.path.basename(path) == "test_url.c" and len(s) < 600:
                found.add(s)             # every literal of the URL tests, bad ones too
            found.update(URL.findall(s))
    for path in docs() + sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "*.py"))):
        found.update(URL.findall(open(path, encoding="utf-8").read()))
    return sorted(u for u in found if u and "{" not in u)


# --- specs -------------------------------------------------------------------

INTEGRATION_SHAPES = [
    {"name": "job", "type": "cdc", "source": {"url": "postgresql://postgres@127.0.0.1:5432/t1_1"},
     "target": {"url": "jsonl:///tmp/out"}},
    {"name": "load", "type": "sync", "source": {"url": "postgresql://postgres@127.0.0.1:5432/t1_1",
                                                 "slot": "penstock_load", "publication": "pub_load"},
     "target": {"url": "sqlite:///tmp/t.db", "create_tables": "drop_and_create"},
     "tables": {"include": ["public.*"], "exclude": ["public.skip_*"]},
     "snapshot": {"parallel": 2, "chunk_rows": 1000}},
    {"name": "mig", "type": "migration",
     "source": {"url": "postgresql://repl@127.0.0.1:5432/src", "password_env": "SRC_PW"},
     "target": {"url": "postgresql://app@127.0.0.1:5432/dst?sslmode=disable",
                "password_file": "/run/secrets/dst", "truncate_before_load": True},
     "complete": {"max_lag_ms": 2000}, "retry": {"initial_backoff_ms": 100,
                                                 "max_backoff_ms": 1000, "max_attempts": 5},
     "limits": {"rows_per_sec": 1000, "bytes_per_sec": 1048576}, "resume": "never",
     "checks": {"skip": ["source.slots"]}},
    {"name": "snap", "type": "snapshot", "source": {"url": "postgres://[::1]/app"},
     "target": {"url": "jsonl:-"}},
    {"name": "k", "type": "cdc", "source": {"url": "postgresql://db1/app"},
     "target": {"url": "kafka://k1:9092,k2:9092/?topic_prefix=app"}},
    {"name": "my", "type": "cdc", "source": {"url": "mysql://repl@127.0.0.1:3306/app"},
     "target": {"url": "jsonl:///tmp/out"}},
]


def specs():
    texts = []
    for path in unit_sources():
        if os.path.basename(path) in ("test_spec.c", "test_server.c", "test_core.c",
                                      "test_backfill.c", "test_precheck.c"):
            texts.extend(c_strings(path))
    for path in docs():
        texts.extend(json_blocks(path))
    out = []
    for text, doc in objects(texts):
        if doc is None or (isinstance(doc, dict) and ("name" in doc or "source" in doc)
                           and "format" not in doc):
            out.append(text)
    out.extend(json.dumps(s) for s in INTEGRATION_SHAPES)
    return out


# --- checkpoints -------------------------------------------------------------

def run(args, spec, state, env=None, check=True):
    path = os.path.join(state, "..", spec["name"] + ".json")
    with open(path, "w") as f:
        json.dump(spec, f)
    p = subprocess.run([BIN, "run", "--state-dir", state, *args, path],
                       env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                       timeout=120)
    if check and p.returncode != 0:
        raise RuntimeError(f"penstock run {spec['name']}: exit {p.returncode}: {p.stderr}")
    return p


def read_file_checkpoint(state, job):
    return open(os.path.join(state, "jobs", job, "checkpoint.json")).read()


def real_checkpoints():
    import psycopg2

    tmp = tempfile.mkdtemp(prefix="ckcorpus-")
    os.chmod(tmp, 0o755)
    port = subprocess.check_output([PGTMP, "freeport"]).decode().strip()
    subprocess.run([PGTMP, "start", os.path.join(tmp, "pg"), port], check=True)
    out = []
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres", user="postgres")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE TABLE orders (id int PRIMARY KEY, note text);"
                    "INSERT INTO orders SELECT g, 'note ' || g FROM generate_series(1, 3500) g;"
                    "CREATE TABLE lines (id int PRIMARY KEY, amount numeric(10,2));"
                    "INSERT INTO lines SELECT g, g / 7.0 FROM generate_series(1, 2500) g;"
                    "CREATE TABLE nokey (a int, b text); INSERT INTO nokey VALUES (1, 'x');"
                    "ALTER TABLE nokey REPLICA IDENTITY FULL; ANALYZE;")
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        state = os.path.join(tmp, "state")
        os.makedirs(state)

        cdc = {"name": "feed", "type": "cdc", "source": {"url": url},
               "target": {"url": f"jsonl://{tmp}/feed"}, "tables": {"include": ["public.orders"]}}
        run(["--until", "caught-up"], cdc, state)
        cur.execute("INSERT INTO orders VALUES (5000, 'new')")
        run(["--until", "caught-up"], cdc, state)
        out.append(read_file_checkpoint(state, "feed"))

        load = {"name": "load", "type": "sync", "source": {"url": url},
                "target": {"url": f"jsonl://{tmp}/load"}, "snapshot": {"chunk_rows": 1000,
                                                                        "parallel": 1}}
        run([], load, state, {"PENSTOCK_FAULT": "snapshot.unit.commit:crash@2"}, check=False)
        out.append(read_file_checkpoint(state, "load"))
        run(["--until", "caught-up"], load, state)
        out.append(read_file_checkpoint(state, "load"))

        db = os.path.join(tmp, "lite.db")
        lite = {"name": "lite", "type": "sync", "source": {"url": url},
                "target": {"url": f"sqlite://{db}"}, "snapshot": {"chunk_rows": 1000}}
        run(["--until", "caught-up"], lite, state)
        with sqlite3.connect(db) as c:
            tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                              "AND name LIKE '%checkpoint%'")]
            for t in tables:
                for row in c.execute(f'SELECT * FROM "{t}"'):
                    out.extend(v for v in row if isinstance(v, str) and v.startswith("{"))
        conn.close()
    finally:
        subprocess.run([PGTMP, "stop", os.path.join(tmp, "pg")], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def checkpoints():
    texts = []
    for path in unit_sources():
        for text, doc in objects(c_strings(path)):
            if doc is None and '"format"' in text or isinstance(doc, dict) and "format" in doc:
                texts.append(text)
    real = real_checkpoints()
    # a backfill under way (issue 15: a table that came into the selection),
    # as core/backfill.c keeps it in the spec beside the tables in force
    for text in list(real):
        doc = json.loads(text)
        spec = doc.get("spec") or {}
        if "tables_in_force" in spec:
            spec["tables_in_force"] = spec["tables_in_force"] + ["public.came_in"]
            spec["backfill"] = [{"table": "public.came_in", "after": ["42"], "rows": 41,
                                 "chunks": 1},
                                {"table": "public.nokey", "after": None, "rows": 0, "chunks": 0}]
            real.append(json.dumps(doc, indent=2, sort_keys=True))
            # fuzz_checkpoint's fixed selection: a two-column key half way
            spec["tables_in_force"] = ["public.orders"]
            spec["backfill"] = [{"table": "sales.lines", "after": ["1", "2"], "rows": 3,
                                 "chunks": 1},
                                {"table": "public.orders", "after": None, "rows": 0,
                                 "chunks": 0}]
            real.append(json.dumps(doc, indent=2, sort_keys=True))
    # a MariaDB source's checkpoint: its position and the table shapes it
    # keeps as engine state (issue 16)
    if real:
        doc = json.loads(real[0])
        doc["position"] = "binlog.000003:1234/0-1-57,1-2-9"
        doc["source_server_id"] = "1"
        doc["source_state"] = {"shapes": [{"db": "shop", "table": "orders", "columns": "3:l,f,s",
                                           "marks": ""}]}
        real.append(json.dumps(doc, indent=2, sort_keys=True))
        doc["position"] = "0-1-57"
        real.append(json.dumps(doc, indent=2, sort_keys=True))
    return texts + real


# --- API bodies --------------------------------------------------------------

def api_bodies():
    bodies = []
    text = open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8").read()
    # the request examples: a route line, then a ```json block
    for m in re.finditer(r"(POST|PATCH) /v1/jobs(\S*)[^\n]*\n(?:[^\n]*\n){0,6}?```json\n(.*?)```",
                         text, re.S):
        method, path, body = m.group(1), m.group(2), m.group(3)
        sub = path.rsplit("/", 1)[-1] if path.count("/") >= 2 else ""
        route = ("patch" if method == "PATCH" else "create" if not path.strip("/")
                 else sub if sub in ROUTE else "action")
        bodies.append((route, body))
    bodies += [
        ("action", ""), ("action", '{"reason": "maintenance window"}'),
        ("complete", ""), ("complete", '{"compare": "count", "reason": "cutover"}'),
        ("complete", '{"compare": true}'),
        ("recover", '{"strategy": "retry"}'),
        ("recover", '{"strategy": "skip", "position": "0/16B3F10", "reason": "data loss ok"}'),
        ("recover", '{"strategy": "skip", "position": "latest"}'),
        ("recover", '{"strategy": "resync", "tables": ["public.orders", "sales.lines"]}'),
        ("compare", ""), ("compare", '{"mode": "sample", "sample_percent": 5, "chunk_rows": 500, '
                                     '"max_report": 10, "repair": true, "tables": ["public.*"]}'),
        ("patch", '{"limits": {"rows_per_sec": 500}, "tables": {"exclude": null}}'),
        ("patch", '{"source": {"slot": "other"}, "snapshot": {"parallel": 8}}'),
        ("patch", '{"name": "renamed"}'),
    ]
    return bodies


def main():
    cu = Corpus("url")
    for u in urls():
        cu.add(b"\0" + u.encode("utf-8", "surrogateescape"))
        m = re.match(r"([a-z]+)://([^/?@]*)(.*)", u)
        if m:
            cu.add(b"\x01" + m.group(2).encode() + b"|" + m.group(3).encode())
    cs = Corpus("spec")
    spec_texts = specs()
    for s in spec_texts:
        cs.add(s)
    cc = Corpus("checkpoint")
    for c in checkpoints():
        cc.add(c)
    ca = Corpus("api")
    for route, body in api_bodies():
        ca.add(bytes([ROUTE[route]]) + body.encode())
    for s in spec_texts:
        ca.add(bytes([ROUTE["create"]]) + s.encode("utf-8", "surrogateescape"))
    for i, shape in enumerate(INTEGRATION_SHAPES):
        patch = {k: v for k, v in shape.items() if k not in ("name",)}
        ca.add(bytes([ROUTE["patch"] + 6 * (i % 3)]) + json.dumps(patch).encode())
    for c in (cu, cs, cc, ca):
        print(c.n, "seeds in", os.path.relpath(c.dir, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
