#!/usr/bin/env python3
"""Regenerates the binlog fixtures of tests/unit/test_binlog.c from a real
MariaDB server (a throwaway one, see tests/integration/mariadb.py):

    python3 tests/data/binlog/make_fixtures.py

  basic.000001       every column type with boundary values, NULLs, zero
                     dates, update/delete, a minimal-image update, a MyISAM
                     table (QUERY COMMIT), a prefix primary key, per-column
                     charsets; ends with the ROTATE of FLUSH BINARY LOGS
  basic.000002       the next file: FORMAT_DESCRIPTION, GTID_LIST, ...
  compressed.000001  the same kinds of changes with log_bin_compress=ON

The unit tests hold the expected values, written from the SQL below (not
from the decoder). Changing this SQL means changing them too.
"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
from mariadb import MariaDB  # noqa: E402

BASIC = [
    "CREATE DATABASE d",
    """CREATE TABLE d.t (id INT PRIMARY KEY,
        ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
        mi MEDIUMINT, miu MEDIUMINT UNSIGNED, ii INT, iiu INT UNSIGNED,
        bi BIGINT, biu BIGINT UNSIGNED,
        d1 DECIMAL(65,30), d0 DECIMAL(65,0), d2 DECIMAL(10,2),
        f4 FLOAT, f8 DOUBLE, dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL,
        tm TIME(6), tm0 TIME, tm1 TIME(1), y YEAR, b1 BIT(1), b64 BIT(64),
        c CHAR(10), cl CHAR(4) CHARACTER SET latin1, vc VARCHAR(20), tx TEXT,
        bin4 BINARY(4), vb VARBINARY(10), bl BLOB,
        e ENUM('a','b'), s SET('x','y','z'), j JSON, g POINT,
        u UUID, i6 INET6, i4 INET4) DEFAULT CHARSET=utf8mb4""",
    # 1: minimum values
    """INSERT INTO d.t VALUES (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0,
        -9223372036854775808, 0,
        '-99999999999999999999999999999999999.999999999999999999999999999999',
        '-99999999999999999999999999999999999999999999999999999999999999999',
        '-0.50', -1.5, -0.1, '1000-01-01', '1000-01-01 00:00:00.000001',
        '1970-01-01 00:00:01', '-838:59:59.999999', '-838:59:59', '-00:00:00.5', 1901,
        b'0', 0, '', '', '', '', 0x61620000, '', '', 'a', '', '[]',
        ST_GeomFromText('POINT(1 2)'), '00000000-0000-0000-0000-000000000000', '::', '0.0.0.0')""",
    # 2: maximum values
    """INSERT INTO d.t VALUES (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647,
        4294967295, 9223372036854775807, 18446744073709551615,
        '12345678901234567890.123456789012345678901234567890',
        '99999999999999999999999999999999999999999999999999999999999999999',
        '99999999.99', 3.4028234e38, 1.7976931348623157e308, '9999-12-31',
        '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.000001',
        '838:59:59', '-01:02:03.4', 2155, b'1', 0xFFFFFFFFFFFFFFFF, 'héllo', '€ÿ',
        'emoji 😀', 'text', 0xFFFFFFFF, 0x00ff, 0x000102, 'b', 'x,z', '{"a": 1}',
        ST_GeomFromText('POINT(0 0)'), '12345678-9abc-1ef0-8234-56789abcdef0',
        '1:0:1:1:1:1:1:1', '255.255.255.255')""",
    # 3: every column NULL but the key
    "INSERT INTO d.t (id) VALUES (3)",
    # 4: zero dates (sql_mode '')
    """INSERT INTO d.t (id, dt, dtm, ts, y, i6, e) VALUES
        (4, '0000-00-00', '2024-00-10 00:00:00', 0, 0, '::ffff:1.2.3.4', '')""",
    "UPDATE d.t SET vc = 'new', ii = ii + 1 WHERE id = 1",
    "DELETE FROM d.t WHERE id = 3",
    "SET SESSION binlog_row_image = 'MINIMAL'",
    "UPDATE d.t SET iiu = 7 WHERE id = 2",
    "SET SESSION binlog_row_image = 'FULL'",
    "CREATE TABLE d.m (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
    "INSERT INTO d.m VALUES (1, 1)",
    "CREATE TABLE d.pk (a VARCHAR(50), b INT, c TEXT, PRIMARY KEY (b, a(5)))",
    "INSERT INTO d.pk VALUES ('abcdefg', 1, 'c')",
    """CREATE TABLE d.cs (id INT PRIMARY KEY, a CHAR(1) CHARACTER SET latin1,
        b VARCHAR(5) CHARACTER SET utf8mb3, c TEXT CHARACTER SET ascii,
        d CHAR(2) CHARACTER SET binary, e ENUM('x', '€') CHARACTER SET latin1,
        f SET('y', 'é') CHARACTER SET utf8mb3, g ENUM('z') CHARACTER SET ascii)""",
    "INSERT INTO d.cs VALUES (1, '€', 'é', 'a', 'b', '€', 'y,é', 'z')",
    "FLUSH BINARY LOGS",
    "INSERT INTO d.m VALUES (2, 2)",
]

COMPRESSED = [
    "SET GLOBAL log_bin_compress = ON",
    "SET GLOBAL log_bin_compress_min_len = 10",
    "FLUSH BINARY LOGS",
    "CREATE DATABASE d",
    "CREATE TABLE d.z (id INT PRIMARY KEY, v VARCHAR(200), n INT) /* a long DDL statement */",
    "INSERT INTO d.z VALUES (1, REPEAT('abc', 50), 1), (2, 'two', NULL)",
    "UPDATE d.z SET v = 'changed', n = 5 WHERE id = 1",
    "DELETE FROM d.z WHERE id = 2",
    "SET GLOBAL log_bin_compress = OFF",
    "FLUSH BINARY LOGS",
]


def run(sqls, copies):
    with tempfile.TemporaryDirectory() as tmp:
        m = MariaDB(tmp).start()
        try:
            c = m.connect()
            with c.cursor() as cur:
                cur.execute("SET time_zone = '+00:00', sql_mode = ''")
                for sql in sqls:
                    cur.execute(sql)
            c.close()
            files = m.binlog_files()
            m.stop()
            for index, name in copies:
                shutil.copyfile(files[index], os.path.join(HERE, name))
                print(name, os.path.getsize(os.path.join(HERE, name)), "bytes")
        finally:
            m.stop()


if __name__ == "__main__":
    run(BASIC, [(0, "basic.000001"), (1, "basic.000002")])
    run(COMPRESSED, [(1, "compressed.000001")])
