#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_binlog.c (tests/fuzz/corpus/binlog/) from
the real MariaDB binlogs in tests/data/binlog/ (make_fixtures.py there):
each whole file, and for every event its file's FORMAT_DESCRIPTION, the
TABLE_MAP a rows event needs, and the event itself — each behind the
fuzzer's flags byte (see fuzz_binlog.c).

    python3 tests/fuzz/make_corpus_binlog.py
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "binlog")
OUT = os.path.join(HERE, "corpus", "binlog")
REPAIR, EXT = 2, 4


def events(path):
    data = open(path, "rb").read()
    assert data[:4] == b"\xfebin"
    pos = 4
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos + 9)
        yield data[pos:pos + length]
        pos += length


def write(seed):
    name = hashlib.sha1(seed).hexdigest()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(seed)


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if not old.startswith(("regress-", "found-")):  # findings and long runs' inputs stay
            os.unlink(os.path.join(OUT, old))
    n = 0
    for name in sorted(os.listdir(DATA)):
        if name.endswith(".py"):
            continue
        evs = list(events(os.path.join(DATA, name)))
        write(bytes([0]) + b"".join(evs))
        write(bytes([REPAIR | EXT]) + b"".join(evs))
        n += 2
        fde, table_maps = evs[0], {}
        for ev in evs[1:]:
            kind = ev[4]
            if kind == 19:                              # TABLE_MAP
                table_maps[ev[19:25]] = ev
                continue
            seed = fde
            if kind in (23, 24, 25, 166, 167, 168):     # rows: with their table
                seed += table_maps[ev[19:25]]
            write(bytes([REPAIR | EXT]) + seed + ev)
            n += 1
    print(n, "seeds in", OUT)


if __name__ == "__main__":
    main()
