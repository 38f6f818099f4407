/*
 * test_url.c — unit tests for core/url.c: every scheme's good forms with
 * each component checked, the error cases with a phrase of their message,
 * that no message repeats a password, the redacted forms and host_port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "penstock/url.h"

/* Parses text expecting success; fails the test with the message if not. */
static void parse_ok(ps_url *u, const char *text)
{
	ps_error err;
	int rc;

	ps_error_clear(&err);
	rc = ps_url_parse(u, text, &err);
	if (rc != 0)
		fail_msg("'%s' did not parse: %s", text, err.message);
	assert_int_equal(err.code, PS_OK);
}

/* Parses text expecting PS_EINVAL with phrase in the message. */
static void parse_fails(const char *text, const char *phrase)
{
	ps_url u;
	ps_error err;
	int rc;

	ps_error_clear(&err);
	rc = ps_url_parse(&u, text, &err);
	if (rc != PS_EINVAL)
		fail_msg("'%s': expected PS_EINVAL, got %d", text, rc);
	assert_int_equal(err.code, PS_EINVAL);
	if (!strstr(err.message, phrase))
		fail_msg("'%s': message '%s' lacks '%s'", text, err.message, phrase);
}

/* Parses text expecting failure, and checks the message lacks secret. */
static void parse_fails_without(const char *text, const char *phrase, const char *secret)
{
	ps_url u;
	ps_error err;

	ps_error_clear(&err);
	assert_int_equal(ps_url_parse(&u, text, &err), PS_EINVAL);
	if (!strstr(err.message, phrase))
		fail_msg("'%s': message '%s' lacks '%s'", text, err.message, phrase);
	if (strstr(err.message, secret) || strstr(err.context, secret))
		fail_msg("'%s': message '%s' repeats the secret", text, err.message);
}

static void test_postgresql_full(void **state)
{
	ps_url u;

	parse_ok(&u, "postgresql://repl@db1.example.com:6543/app?sslmode=require&application_name=penstock");
	assert_string_equal(u.syntax->canonical, "postgresql");
	assert_string_equal(u.scheme_name, "postgresql");
	assert_string_equal(u.user, "repl");
	assert_string_equal(u.host, "db1.example.com");
	assert_int_equal(u.port, 6543);
	assert_string_equal(u.dbname, "app");
	assert_string_equal(u.path, "");
	assert_false(u.is_stdout);
	assert_int_equal(u.nparams, 2);
	assert_string_equal(u.params[0].key, "sslmode");
	assert_string_equal(u.params[0].value, "require");
	assert_string_equal(ps_url_param_get(&u, "sslmode"), "require");
	assert_string_equal(ps_url_param_get(&u, "application_name"), "penstock");
	assert_null(ps_url_param_get(&u, "connect_timeout"));
	assert_string_equal(u.redacted,
	                    "postgresql://repl@db1.example.com:6543/app?sslmode=require&application_name=penstock");
}

static void test_postgresql_minimal_forms(void **state)
{
	ps_url u;

	parse_ok(&u, "postgres://h/db");
	assert_string_equal(u.syntax->canonical, "postgresql");
	assert_string_equal(u.scheme_name, "postgresql");
	assert_string_equal(u.user, "");
	assert_string_equal(u.host, "h");
	assert_int_equal(u.port, 0);
	assert_string_equal(u.dbname, "db");
	assert_int_equal(u.nparams, 0);
	assert_string_equal(u.redacted, "postgresql://h/db");

	parse_ok(&u, "postgresql://");
	assert_string_equal(u.host, "");
	assert_string_equal(u.dbname, "");
	assert_int_equal(u.port, 0);
	assert_string_equal(u.redacted, "postgresql://");

	parse_ok(&u, "postgresql:///app");
	assert_string_equal(u.host, "");
	assert_string_equal(u.dbname, "app");

	parse_ok(&u, "postgresql://repl@:5433");
	assert_string_equal(u.user, "repl");
	assert_string_equal(u.host, "");
	assert_int_equal(u.port, 5433);

	parse_ok(&u, "POSTGRESQL://h:1/");
	assert_string_equal(u.scheme_name, "postgresql");
	assert_int_equal(u.port, 1);
	assert_string_equal(u.dbname, "");

	parse_ok(&u, "postgresql://h:65535?connect_timeout=5&&");
	assert_int_equal(u.port, 65535);
	assert_int_equal(u.nparams, 1);
	assert_string_equal(ps_url_param_get(&u, "connect_timeout"), "5");
}

static void test_ipv6(void **state)
{
	ps_url u;
	char hp[64];

	parse_ok(&u, "postgresql://repl@[::1]:5432/app");
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 5432);
	assert_string_equal(u.dbname, "app");
	assert_string_equal(u.redacted, "postgresql://repl@[::1]:5432/app");
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "[::1]:5432");

	parse_ok(&u, "postgresql://[fe80::1]/x");
	assert_string_equal(u.host, "fe80::1");
	assert_int_equal(u.port, 0);

	parse_fails("postgresql://[::1/app", "closing ']'");
	parse_fails("postgresql://[]:5432/app", "empty");
	parse_fails("postgresql://[::1]x/app", "after ']'");
	parse_fails("postgresql://::1/app", "brackets");
}

static void test_percent_decoding(void **state)
{
	ps_url u;

	parse_ok(&u, "postgresql://us%40er@%2Fvar%2Frun%2Fpostgresql/my%20db?application_name=a%26b&opt%69ons=-c%20x%3D1");
	assert_string_equal(u.user, "us@er");
	assert_string_equal(u.host, "/var/run/postgresql");
	assert_string_equal(u.dbname, "my db");
	assert_string_equal(ps_url_param_get(&u, "application_name"), "a&b");
	assert_string_equal(ps_url_param_get(&u, "options"), "-c x=1");
	/* A %3A in the user is a colon in the name, not a password separator. */
	parse_ok(&u, "postgresql://a%3Ab@h/db");
	assert_string_equal(u.user, "a:b");

	parse_fails("postgresql://h/db%2", "invalid percent-escape in dbname");
	parse_fails("postgresql://h/db%zz", "invalid percent-escape in dbname");
	parse_fails("postgresql://u%g1@h/db", "invalid percent-escape in user");
	parse_fails("postgresql://h%/db", "invalid percent-escape in host");
	parse_fails("postgresql://h/db?sslmode=%", "invalid percent-escape in query parameter 'sslmode'");
	parse_fails("postgresql://h/db?ssl%mode=x", "invalid percent-escape in query parameter name");
	parse_fails("postgresql://h/d%00b", "%00");
	parse_fails("sqlite:///tmp/a%2", "invalid percent-escape");
}

static void test_port_errors(void **state)
{
	parse_fails("postgresql://h:99999/db", "port '99999' is not a number from 1 to 65535");
	parse_fails("postgresql://h:0/db", "port '0' is not a number from 1 to 65535");
	parse_fails("postgresql://h:-1/db", "is not a number from 1 to 65535");
	parse_fails("postgresql://h:+5/db", "is not a number from 1 to 65535");
	parse_fails("postgresql://h:12ab/db", "is not a number from 1 to 65535");
	parse_fails("postgresql://h:99999999999999999999999/db", "is not a number from 1 to 65535");
	parse_fails("postgresql://h:/db", "port is empty");
	parse_fails("postgresql://h1:5432,h2:5432/db", "more than one host");
}

static void test_password_refused(void **state)
{
	parse_fails_without("postgresql://repl:S3cretPw@db1:5432/app",
	                    "put the password in password_env or password_file, not in the URL",
	                    "S3cretPw");
	parse_fails_without("postgresql://repl:S3c@ret@db1/app", "password_env", "S3c");
	parse_fails_without("postgresql://:S3cretPw@db1/app", "password_env", "S3cretPw");
	parse_fails_without("mysql://root:S3cretPw@db1/app", "password_env", "S3cretPw");
	parse_fails_without("postgresql://db1/app?password=S3cretPw",
	                    "put the password in password_env or password_file", "S3cretPw");
	parse_fails_without("postgresql://db1/app?sslpassword=S3cretPw", "password_env", "S3cretPw");
	parse_fails_without("postgresql://db1/app?pass%77ord=S3cretPw", "password_env", "S3cretPw");
	/* Forgotten '@': the password would be read as a port; not echoed. */
	parse_fails_without("postgresql://repl:S3cretPw/app", "port", "S3cretPw");
	/* Password with bad escapes is still refused before decoding. */
	parse_fails_without("postgresql://u:S3c%zz@h/db", "password_env", "S3c");
}

static void test_mysql(void **state)
{
	ps_url u;
	char hp[64];

	parse_ok(&u, "mysql://root@db2:3307/shop");
	assert_string_equal(u.syntax->canonical, "mysql");
	assert_string_equal(u.scheme_name, "mysql");
	assert_string_equal(u.user, "root");
	assert_string_equal(u.host, "db2");
	assert_int_equal(u.port, 3307);
	assert_string_equal(u.dbname, "shop");
	assert_string_equal(u.redacted, "mysql://root@db2:3307/shop");

	parse_ok(&u, "mysql://db2/shop");
	assert_int_equal(u.port, 0);
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "db2:3306");

	parse_fails("mysql:///shop", "mysql URL needs a host");
	parse_fails("mysql://root@/shop", "mysql URL needs a host");
	parse_fails("mysql:db2", "mysql://");
}

static void test_sqlite(void **state)
{
	ps_url u;

	parse_ok(&u, "sqlite:///var/lib/pen%20stock/out.db");
	assert_string_equal(u.syntax->canonical, "sqlite");
	assert_string_equal(u.scheme_name, "sqlite");
	assert_string_equal(u.path, "/var/lib/pen stock/out.db");
	assert_string_equal(u.host, "");
	assert_string_equal(u.user, "");
	assert_string_equal(u.dbname, "");
	assert_int_equal(u.port, 0);
	assert_string_equal(u.redacted, "sqlite:///var/lib/pen%20stock/out.db");

	parse_fails("sqlite://data/out.db", "three slashes");
	parse_fails("sqlite://localhost/tmp/out.db", "sqlite:///absolute/path.db");
	parse_fails("sqlite:out.db", "three slashes");
	parse_fails("sqlite:///", "sqlite URL has no path");
	parse_fails("sqlite://", "sqlite URL has no path");
}

static void test_jsonl(void **state)
{
	ps_url u;
	char hp[64];

	parse_ok(&u, "jsonl:-");
	assert_string_equal(u.syntax->canonical, "jsonl");
	assert_string_equal(u.scheme_name, "jsonl");
	assert_true(u.is_stdout);
	assert_string_equal(u.path, "");
	assert_string_equal(u.redacted, "jsonl:-");
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "standard output");

	parse_ok(&u, "jsonl:///var/out?max_file_bytes=1048576");
	assert_false(u.is_stdout);
	assert_string_equal(u.path, "/var/out");
	assert_string_equal(ps_url_param_get(&u, "max_file_bytes"), "1048576");
	assert_string_equal(u.redacted, "jsonl:///var/out?max_file_bytes=1048576");

	parse_ok(&u, "jsonl:///var/out");
	assert_string_equal(u.redacted, "jsonl:///var/out");

	parse_fails("jsonl:out", "jsonl:///absolute/dir");
	parse_fails("jsonl:", "jsonl:- for standard output");
	parse_fails("jsonl://out/dir", "jsonl:///absolute/dir");
	parse_fails("jsonl:///", "jsonl:///absolute/dir");
	parse_fails("jsonl:-x", "jsonl:- takes nothing");
}

static void test_kafka(void **state)
{
	ps_url u;
	char hp[64];

	parse_ok(&u, "kafka://k1:9092,k2:9093/?topic_prefix=pen.orders");
	assert_string_equal(u.syntax->canonical, "kafka");
	assert_string_equal(u.scheme_name, "kafka");
	assert_string_equal(u.host, "k1:9092,k2:9093");
	assert_int_equal(u.port, 0);
	assert_string_equal(ps_url_param_get(&u, "topic_prefix"), "pen.orders");
	assert_string_equal(u.redacted, "kafka://k1:9092,k2:9093/?topic_prefix=pen.orders");
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "k1:9092,k2:9093");

	parse_ok(&u, "kafka://k1:9092");
	assert_string_equal(u.host, "k1:9092");
	assert_int_equal(u.nparams, 0);

	parse_fails("kafka:///?topic_prefix=x", "kafka URL needs brokers");
	parse_fails("kafka://k1:9092/topic", "no path");
}

static void test_scheme_errors(void **state)
{
	parse_fails("http://h/x",
	            "unknown URL scheme 'http'; use postgresql://, mysql://, sqlite:///, jsonl:// or kafka://");
	parse_fails("db1:5432/app", "unknown URL scheme 'db1'");
	parse_fails("/var/lib/x.db", "no scheme");
	parse_fails("localhost", "no scheme");
	parse_fails("", "empty");
	parse_fails("postgresql:h/db", "postgresql://");
	parse_fails("postgresql://h/d b", "space");
}

static void test_component_too_long(void **state)
{
	char text[2048];
	char big[600];

	memset(big, 'a', 300);
	big[300] = '\0';
	snprintf(text, sizeof(text), "postgresql://%s/db", big);
	parse_fails(text, "host is longer than 255 bytes");
	snprintf(text, sizeof(text), "kafka://%s/", big);
	parse_fails(text, "host is longer than 255 bytes");
	snprintf(text, sizeof(text), "postgresql://%s@h/db", big);
	parse_fails(text, "user is longer than 127 bytes");
	snprintf(text, sizeof(text), "postgresql://h/%s", big);
	parse_fails(text, "dbname is longer than 127 bytes");
	snprintf(text, sizeof(text), "postgresql://h/db?options=%s", big);
	parse_fails(text, "query parameter 'options' is longer than 255 bytes");
	snprintf(text, sizeof(text), "postgresql://h/db?%s=1", big);
	parse_fails(text, "query parameter name is longer than 63 bytes");
	memset(big, 'b', 599);
	big[599] = '\0';
	snprintf(text, sizeof(text), "sqlite:///%s/%s", big, big);
	parse_fails(text, "database path is longer than 1023 bytes");
	/* Exactly at the limit fits. */
	memset(big, 'c', 255);
	big[255] = '\0';
	snprintf(text, sizeof(text), "postgresql://%s/db", big);
	{
		ps_url u;

		parse_ok(&u, text);
		assert_int_equal((int)strlen(u.host), 255);
	}
}

static void test_query_errors(void **state)
{
	char text[1024];
	size_t used;
	int i;

	used = (size_t)snprintf(text, sizeof(text), "postgresql://h/db?");
	for (i = 0; i < PS_URL_MAX_PARAMS; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, "k%d=v&", i);
	{
		ps_url u;

		parse_ok(&u, text);
		assert_int_equal(u.nparams, PS_URL_MAX_PARAMS);
		assert_string_equal(ps_url_param_get(&u, "k15"), "v");
	}
	snprintf(text + used, sizeof(text) - used, "extra=1");
	parse_fails(text, "more than 16 query parameters");
	parse_fails("postgresql://h/db?sslmode", "has no '='");
	parse_fails("postgresql://h/db?=x", "empty name");
	parse_fails("postgresql://h/db?sslmode=a&sslmode=b", "'sslmode' is given twice");
	/* Found by tests/fuzz/fuzz_url.c: a name is quoted as decoded, and a
	 * decoded control byte (here ESC, a unit separator and a newline) went
	 * into the one-line message as it was. */
	parse_fails("postgresql://h/db?a%1Bb=1&a%1Bb=2", "query parameter 'a?b' is given twice");
	parse_fails("postgresql://h/db?a%1Fb%0A=1&a%1Fb%0A=2", "query parameter 'a?b?' is given twice");
	parse_fails("postgresql://h/db?my%7Fpassword=1", "(query parameter 'my?password')");
	parse_fails("postgresql://h/db?k%1B=%zz", "invalid percent-escape in query parameter 'k?'");
}

static void test_host_port(void **state)
{
	ps_url u;
	char hp[64];

	parse_ok(&u, "postgresql://127.0.0.1:5432/app");
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "127.0.0.1:5432");

	parse_ok(&u, "postgresql://db1/app");
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "db1:5432");

	parse_ok(&u, "postgresql:///app");
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "local socket:5432");

	parse_ok(&u, "postgresql://:6000/app");
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "local socket:6000");

	parse_ok(&u, "sqlite:///tmp/x.db");
	ps_url_host_port(&u, hp, sizeof(hp));
	assert_string_equal(hp, "/tmp/x.db");

	/* Truncates safely into a small buffer. */
	parse_ok(&u, "postgresql://127.0.0.1:5432/app");
	ps_url_host_port(&u, hp, 5);
	assert_string_equal(hp, "127.");
}

static void test_redacted(void **state)
{
	ps_url u;

	parse_ok(&u, "postgresql://repl@127.0.0.1:5432/app?sslmode=require");
	assert_string_equal(u.redacted, "postgresql://repl@127.0.0.1:5432/app?sslmode=require");
	parse_ok(&u, "postgres://us%40er@h/my%20db?application_name=a%26b");
	assert_string_equal(u.redacted, "postgresql://us%40er@h/my%20db?application_name=a%26b");
}

static void test_failed_parse_leaves_no_fields(void **state)
{
	ps_url u;
	ps_error err;

	assert_int_equal(ps_url_parse(&u, "postgresql://repl@h:99999/app", &err), PS_EINVAL);
	assert_string_equal(u.user, "");
	assert_string_equal(u.host, "");
	assert_string_equal(u.redacted, "");
	/* err may be NULL. */
	assert_int_equal(ps_url_parse(&u, "nope", NULL), PS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postgresql_full),
		cmocka_unit_test(test_postgresql_minimal_forms),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_port_errors),
		cmocka_unit_test(test_password_refused),
		cmocka_unit_test(test_mysql),
		cmocka_unit_test(test_sqlite),
		cmocka_unit_test(test_jsonl),
		cmocka_unit_test(test_kafka),
		cmocka_unit_test(test_scheme_errors),
		cmocka_unit_test(test_component_too_long),
		cmocka_unit_test(test_query_errors),
		cmocka_unit_test(test_host_port),
		cmocka_unit_test(test_redacted),
		cmocka_unit_test(test_failed_parse_leaves_no_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
