/*
 * test_errclass.c — core/errclass.c with the PostgreSQL plugins' SQLSTATE
 * classes (util/pgconn.c): every error a source or sink meets is classed by
 * SQLSTATE, errno and code (never by message text), over a table of cases;
 * and the retry backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/errclass.h"
#include "util/myconn.h"
#include "util/pgconn.h"

typedef struct errcase {
	int code;
	const char *sqlstate;
	int sys_errno;
	int cls;
	bool retryable;
} errcase;

static const errcase CASES[] = {
	/* connections lost or refused, servers restarting */
	{PS_ECONNECT, "", 0, PS_ERRCLASS_CONNECTION, true},          /* libpq CONNECTION_BAD */
	{PS_ECONNECT, "08006", 0, PS_ERRCLASS_CONNECTION, true},     /* connection_failure */
	{PS_ESERVER, "08P01", 0, PS_ERRCLASS_CONNECTION, true},      /* protocol_violation, class 08 */
	{PS_ECONNECT, "57P01", 0, PS_ERRCLASS_CONNECTION, true},     /* admin_shutdown */
	{PS_ECONNECT, "57P02", 0, PS_ERRCLASS_CONNECTION, true},     /* crash_shutdown */
	{PS_ESERVER, "57P03", 0, PS_ERRCLASS_CONNECTION, true},      /* cannot_connect_now */
	{PS_EIO, "", 0, PS_ERRCLASS_CONNECTION, true},               /* lost, no errno */
	{PS_EIO, "", ECONNRESET, PS_ERRCLASS_CONNECTION, true},
	{PS_EIO, "", ECONNREFUSED, PS_ERRCLASS_CONNECTION, true},
	{PS_EIO, "", EPIPE, PS_ERRCLASS_CONNECTION, true},
	{PS_EIO, "", EHOSTUNREACH, PS_ERRCLASS_CONNECTION, true},
	{PS_ERR, "", ECONNRESET, PS_ERRCLASS_CONNECTION, true},      /* errno beats a vague code */
	/* timeouts */
	{PS_ETIMEOUT, "", 0, PS_ERRCLASS_TIMEOUT, true},
	{PS_EIO, "", ETIMEDOUT, PS_ERRCLASS_TIMEOUT, true},
	{PS_ESERVER, "57014", 0, PS_ERRCLASS_TIMEOUT, true},         /* statement_timeout */
	/* conflicts */
	{PS_ESERVER, "40001", 0, PS_ERRCLASS_CONFLICT, true},        /* serialization_failure */
	{PS_ESERVER, "40P01", 0, PS_ERRCLASS_CONFLICT, true},        /* deadlock_detected */
	{PS_ESERVER, "55P03", 0, PS_ERRCLASS_CONFLICT, true},        /* lock_not_available */
	{PS_ESERVER, "55006", 0, PS_ERRCLASS_CONFLICT, true},        /* object_in_use (slot busy) */
	/* resources */
	{PS_ESERVER, "53100", 0, PS_ERRCLASS_RESOURCES, true},       /* disk_full */
	{PS_ESERVER, "53200", 0, PS_ERRCLASS_RESOURCES, true},       /* out_of_memory */
	{PS_ESERVER, "53300", 0, PS_ERRCLASS_RESOURCES, true},       /* too_many_connections */
	{PS_ESERVER, "58030", 0, PS_ERRCLASS_RESOURCES, true},       /* io_error */
	{PS_EIO, "", ENOSPC, PS_ERRCLASS_RESOURCES, true},           /* local disk full */
	/* injected, interrupted */
	{PS_EFAULT, "", 0, PS_ERRCLASS_INJECTED, true},
	{PS_EFAULT, "42501", 0, PS_ERRCLASS_INJECTED, true},         /* the fault says what it is */
	{PS_ESTOPPED, "", 0, PS_ERRCLASS_INTERRUPTED, true},
	/* slot and log lost */
	{PS_ESERVER, "42704", 0, PS_ERRCLASS_SLOT_LOST, false},      /* START_REPLICATION, no slot */
	{PS_ESERVER, "55000", 0, PS_ERRCLASS_SLOT_LOST, false},      /* slot invalidated */
	{PS_ESERVER, "58P01", 0, PS_ERRCLASS_LOG_LOST, false},       /* WAL segment removed */
	/* permissions */
	{PS_ESERVER, "42501", 0, PS_ERRCLASS_PERMISSION, false},
	{PS_ECONNECT, "28P01", 0, PS_ERRCLASS_PERMISSION, false},    /* SQLSTATE beats the code */
	{PS_EIO, "", EACCES, PS_ERRCLASS_PERMISSION, false},
	{PS_EIO, "", EROFS, PS_ERRCLASS_PERMISSION, false},
	/* target schema incompatible */
	{PS_ESERVER, "42P01", 0, PS_ERRCLASS_SCHEMA, false},         /* undefined_table */
	{PS_ESERVER, "42703", 0, PS_ERRCLASS_SCHEMA, false},         /* undefined_column */
	{PS_ESERVER, "42804", 0, PS_ERRCLASS_SCHEMA, false},         /* datatype_mismatch */
	{PS_ESERVER, "23502", 0, PS_ERRCLASS_SCHEMA, false},         /* not_null_violation */
	{PS_ESERVER, "23505", 0, PS_ERRCLASS_SCHEMA, false},         /* unique_violation */
	{PS_ESERVER, "22001", 0, PS_ERRCLASS_SCHEMA, false},         /* string_data_right_truncation */
	{PS_ESERVER, "0A000", 0, PS_ERRCLASS_SCHEMA, false},         /* feature_not_supported */
	/* checkpoint, spec, anything else */
	{PS_ECHECKPOINT, "", 0, PS_ERRCLASS_CHECKPOINT, false},      /* fingerprint mismatch, slot gone */
	{PS_EINVAL, "", 0, PS_ERRCLASS_INVALID, false},
	{PS_ESERVER, "3D000", 0, PS_ERRCLASS_INVALID, false},        /* no such database */
	{PS_ESERVER, "XX000", 0, PS_ERRCLASS_INTERNAL, false},
	{PS_ESERVER, "", 0, PS_ERRCLASS_INTERNAL, false},            /* refused, no SQLSTATE */
	{PS_ESERVER, "P0001", 0, PS_ERRCLASS_INTERNAL, false},       /* unknown SQLSTATE: permanent */
	{PS_EPROTO, "", 0, PS_ERRCLASS_INTERNAL, false},
	{PS_ENOMEM, "", 0, PS_ERRCLASS_INTERNAL, false},
	{PS_ERR, "", 0, PS_ERRCLASS_INTERNAL, false},
	{PS_ERR, "", EBADF, PS_ERRCLASS_INTERNAL, false},            /* an errno we do not know */
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
		const errcase *c = &CASES[i];
		ps_error err;
		int cls;

		ps_error_clear(&err);
		err.code = c->code;
		pg_error_sqlstate(&err, c->sqlstate);
		err.sys_errno = c->sys_errno;
		cls = ps_errclass_of(&err);
		if (cls != c->cls || ps_error_retryable(&err) != c->retryable)
			fail_msg("case %zu (code %s, sqlstate '%s', errno %d): class %s, expected %s", i,
			         ps_error_code_name(c->code), c->sqlstate, c->sys_errno,
			         ps_errclass_name(cls), ps_errclass_name(c->cls));
		assert_non_null(ps_errclass_hint(cls));
	}
}

/* The message never decides: the same fields with a frightening text, or
 * a reassuring one, land in the same class. */
static void test_message_does_not_decide(void **state)
{
	ps_error a, b;

	(void)state;
	ps_error_set(&a, PS_ESERVER, "connection lost, please retry");
	pg_error_sqlstate(&a, "42501");
	ps_error_set(&b, PS_ECONNECT, "permission denied for table orders; slot does not exist");
	assert_int_equal(ps_errclass_of(&a), PS_ERRCLASS_PERMISSION);
	assert_false(ps_error_retryable(&a));
	assert_int_equal(ps_errclass_of(&b), PS_ERRCLASS_CONNECTION);
	assert_true(ps_error_retryable(&b));
}

/* MySQL / MariaDB errnos, classed by util/myconn.c like the SQLSTATEs. */
static void test_mysql_classes(void **state)
{
	static const struct {
		unsigned int code;
		int cls;
	} cases[] = {
		{2013, PS_ERRCLASS_CONNECTION},   /* lost connection during query */
		{2003, PS_ERRCLASS_CONNECTION},   /* cannot connect */
		{2026, PS_ERRCLASS_CONNECTION},   /* another client-library error: transport */
		{1053, PS_ERRCLASS_CONNECTION},   /* server shutdown */
		{1213, PS_ERRCLASS_CONFLICT},     /* deadlock */
		{1205, PS_ERRCLASS_CONFLICT},     /* lock wait timeout */
		{1969, PS_ERRCLASS_TIMEOUT},      /* max_statement_time */
		{1040, PS_ERRCLASS_RESOURCES},    /* too many connections */
		{1236, PS_ERRCLASS_LOG_LOST},     /* binlog purged */
		{1045, PS_ERRCLASS_PERMISSION},   /* access denied */
		{1142, PS_ERRCLASS_PERMISSION},
		{1049, PS_ERRCLASS_INVALID},      /* unknown database */
		{1146, PS_ERRCLASS_SCHEMA},       /* no such table */
		{1062, PS_ERRCLASS_SCHEMA},       /* duplicate entry */
		{1406, PS_ERRCLASS_SCHEMA},       /* data too long */
	};
	ps_error err;
	char key[PS_ENGINE_CODE_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(my_errclass_of(cases[i].code), cases[i].cls);
	assert_int_equal(my_errclass_of(1064), -1);   /* syntax: nobody's weather */
	ps_error_set(&err, PS_ESERVER, "Deadlock found when trying to get lock");
	ps_error_set_engine(&err, MY_CODE_KIND, "1213", my_errclass_of(1213));
	assert_true(ps_error_retryable(&err));
	ps_error_engine_key(&err, key, sizeof(key));
	assert_string_equal(key, "mysql_error");
	ps_error_set(&err, PS_ESERVER, "You have an error in your SQL syntax");
	ps_error_set_engine(&err, MY_CODE_KIND, "1064", my_errclass_of(1064));
	assert_int_equal(ps_errclass_of(&err), PS_ERRCLASS_INTERNAL);   /* unknown: permanent */
}

static void test_names_and_hints(void **state)
{
	(void)state;
	for (int c = 0; c < PS_ERRCLASS_COUNT; c++) {
		assert_true(strlen(ps_errclass_name(c)) > 0);
		assert_true(strlen(ps_errclass_hint(c)) > 20);
	}
	assert_string_equal(ps_errclass_name(PS_ERRCLASS_SLOT_LOST), "slot_lost");
	assert_string_equal(ps_errclass_name(-1), "internal");
	assert_non_null(strstr(ps_errclass_hint(PS_ERRCLASS_SLOT_LOST), "resync"));
	assert_int_equal(pg_errclass_of_sqlstate("0800"), -1);     /* not five characters */
	assert_int_equal(pg_errclass_of_sqlstate(NULL), -1);
	assert_int_equal(pg_errclass_of_sqlstate("HV000"), -1);    /* a class we do not know */
}

static void test_backoff(void **state)
{
	(void)state;
	/* random 0: no jitter; doubling from initial, capped */
	assert_int_equal(ps_retry_backoff_ms(1000, 60000, 1, 0), 1000);
	assert_int_equal(ps_retry_backoff_ms(1000, 60000, 2, 0), 2000);
	assert_int_equal(ps_retry_backoff_ms(1000, 60000, 3, 0), 4000);
	assert_int_equal(ps_retry_backoff_ms(1000, 60000, 7, 0), 60000);
	assert_int_equal(ps_retry_backoff_ms(1000, 60000, 1000000, 0), 60000);
	/* jitter takes off at most a quarter, never goes above the cap */
	for (uint32_t r = 0; r < 5000; r += 7) {
		int64_t w = ps_retry_backoff_ms(1000, 60000, 3, r * 2654435761u);
		assert_true(w >= 3000 && w <= 4000);
		w = ps_retry_backoff_ms(1000, 60000, 40, r * 2654435761u);
		assert_true(w >= 45000 && w <= 60000);
	}
	/* a cap below the initial wait, zero or negative inputs */
	assert_int_equal(ps_retry_backoff_ms(5000, 100, 1, 0), 5000);
	assert_int_equal(ps_retry_backoff_ms(0, 0, 1, 0), 1);
	assert_true(ps_retry_backoff_ms(1, 1, 3, 12345) >= 1);
	assert_int_equal(ps_retry_backoff_ms(100, 250, 3, 0), 250);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_message_does_not_decide),
		cmocka_unit_test(test_names_and_hints),
		cmocka_unit_test(test_mysql_classes),
		cmocka_unit_test(test_backoff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
