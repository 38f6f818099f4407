/*
 * test_core.c — unit tests for the core modules that hold no server:
 *
 *   queue       core/queue.c: FIFO order, bounds by count and by bytes,
 *               ownership on refusal, close/drain, two threads, destroy,
 *               a ring that grows with the queue's depth.
 *   CDC marker  core/checkpoint.c: allowed and refused transitions, names.
 *   checkpoint  core/checkpoint.c: identity fingerprint, store/load round
 *               trip, file modes, corrupt files, match messages, state dir.
 *   fault       core/fault.c: PENSTOCK_FAULT parsing and firing.
 *   plugin      core/plugin.c: ABI and required-callback validation, lookup.
 *
 * Run under ASan too (make SAN=address): the queue tests rely on it to prove
 * that refused items are not freed and that destroy frees what is queued.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/errclass.h"
#include "core/fault.h"
#include "core/plugin.h"
#include "core/queue.h"
#include "core/spec.h"

extern const ps_source_ops ps_source_pg;
extern const ps_source_ops ps_source_mysql;
extern const ps_sink_ops ps_sink_jsonl;
extern const ps_sink_ops ps_sink_mysql;
extern const ps_sink_ops ps_sink_kafka;

/* Fails the test with the message when haystack lacks needle. */
static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s'\n  does not contain '%s'", haystack, needle);
}

/* --- helpers: temporary directories --------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		fail_msg("cannot stat '%s'", path);
	return st.st_mode & 07777;
}

static void write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, strlen(data), f), strlen(data));
	assert_int_equal(fclose(f), 0);
}

/* ========================================================================= */
/* queue                                                                      */
/* ========================================================================= */

/* Item i of a repeating BEGIN, CHANGE, CHANGE, COMMIT stream; the sequence
 * number travels in txn.xid (BEGIN/COMMIT) or in the change's lsn. */
static ps_read_item make_item(uint64_t i)
{
	ps_read_item it;
	char content[32];

	memset(&it, 0, sizeof(it));
	switch (i % 4) {
	case 0:
		it.kind = PS_READ_BEGIN;
		it.txn.xid = i;
		break;
	case 3:
		it.kind = PS_READ_COMMIT;
		it.txn.xid = i;
		snprintf(it.txn.position, sizeof(it.txn.position), "0/%llX", (unsigned long long)i);
		break;
	default:
		it.kind = PS_READ_CHANGE;
		snprintf(content, sizeof(content), "m%llu", (unsigned long long)i);
		it.change = ps_change_new_message(true, "seq", content, (uint32_t)strlen(content), i);
		break;
	}
	return it;
}

/* 0 when it is item i as made by make_item, else 1. Frees its change. */
static int check_item(ps_read_item *it, uint64_t i)
{
	char content[32];
	int bad = 0;

	switch (i % 4) {
	case 0:
		bad = it->kind != PS_READ_BEGIN || it->txn.xid != i || it->change;
		break;
	case 3:
		snprintf(content, sizeof(content), "0/%llX", (unsigned long long)i);
		bad = it->kind != PS_READ_COMMIT || it->txn.xid != i || it->change ||
		      strcmp(it->txn.position, content) != 0;
		break;
	default:
		snprintf(content, sizeof(content), "m%llu", (unsigned long long)i);
		bad = it->kind != PS_READ_CHANGE || !it->change || it->change->lsn != i ||
		      it->change->op != PS_OP_MESSAGE ||
		      strcmp(it->change->message_content, content) != 0;
		break;
	}
	ps_change_free(it->change);
	it->change = NULL;
	return bad;
}

static void test_queue_fifo(void **state)
{
	ps_queue q;
	ps_read_item it;
	uint64_t pushed = 0, popped = 0;

	assert_int_equal(ps_queue_init(&q, 16, 1 << 20), PS_OK);
	/* Rounds of varying depth, so the ring wraps around many times. */
	for (int round = 0; round < 500; round++) {
		int depth = 1 + round % 16;

		for (int k = 0; k < depth; k++) {
			it = make_item(pushed);
			assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
			assert_null(it.change); /* ownership moved into the queue */
			pushed++;
		}
		assert_int_equal(ps_queue_count(&q), pushed - popped);
		/* Leave one behind every other round. */
		while (popped < pushed - (uint64_t)(round % 2)) {
			assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
			if (check_item(&it, popped))
				fail_msg("item %llu out of order", (unsigned long long)popped);
			popped++;
		}
	}
	while (popped < pushed) {
		assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
		assert_int_equal(check_item(&it, popped), 0);
		popped++;
	}
	assert_int_equal(ps_queue_count(&q), 0);
	assert_int_equal(q.bytes, 0);
	assert_int_equal(ps_queue_pop(&q, &it, 0), PS_ETIMEOUT);
	ps_queue_destroy(&q);
}

/* The ring is allocated as the queue deepens. A queue bounded at 65,536
 * items whose depth stays small keeps a small ring however many items pass
 * (a ring of the whole bound, walked through by head and tail, became
 * resident in full: 12 MiB a job); growing while the items wrap around the
 * ring's end keeps their order; at the bound, count still refuses. */
static void test_queue_ring_grows_on_demand(void **state)
{
	ps_queue q;
	ps_read_item it;
	uint64_t pushed = 0, popped = 0;

	(void)state;
	assert_int_equal(ps_queue_init(&q, 65536, 1 << 30), PS_OK);
	for (int i = 0; i < 200000; i++) {   /* depth 1..8, three times the bound */
		for (int k = 0; k <= i % 8; k++) {
			it = make_item(pushed++);
			assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
		}
		while (popped < pushed) {
			assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
			assert_int_equal(check_item(&it, popped++), 0);
		}
	}
	assert_true(pushed > 3 * 65536);
	assert_true(q.slots < 1024);
	size_t small = q.slots;

	/* Leave the head mid-ring, then deepen past several doublings. */
	for (int k = 0; k < 100; k++) {
		it = make_item(pushed++);
		assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	}
	for (int k = 0; k < 60; k++) {
		assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
		assert_int_equal(check_item(&it, popped++), 0);
	}
	while (pushed - popped < 65536) {
		it = make_item(pushed++);
		assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	}
	assert_int_equal(q.slots, 65536);
	assert_true(small < q.slots);
	it = make_item(pushed);
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_ETIMEOUT);   /* the count bound holds */
	assert_int_equal(check_item(&it, pushed), 0);                /* still ours */
	while (popped < pushed) {
		assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
		if (check_item(&it, popped))
			fail_msg("item %llu out of order", (unsigned long long)popped);
		popped++;
	}
	assert_int_equal(q.bytes, 0);
	ps_queue_destroy(&q);
}

static ps_read_item message_item(const char *content)
{
	ps_read_item it;

	memset(&it, 0, sizeof(it));
	it.kind = PS_READ_CHANGE;
	it.change = ps_change_new_message(false, "p", content, (uint32_t)strlen(content), 7);
	assert_non_null(it.change);
	return it;
}

/* Pushing it into a full queue times out and leaves the change with us. */
static void push_refused(ps_queue *q, const char *content, int timeout_ms, int want_rc)
{
	ps_read_item it = message_item(content);
	ps_change *mine = it.change;

	assert_int_equal(ps_queue_push(q, &it, timeout_ms), want_rc);
	assert_ptr_equal(it.change, mine);
	/* Still alive (ASan would report a use after free here). */
	assert_string_equal(it.change->message_content, content);
	ps_change_free(it.change);
}

static void test_queue_full_by_count(void **state)
{
	ps_queue q;
	ps_read_item it;

	assert_int_equal(ps_queue_init(&q, 3, 1 << 20), PS_OK);
	for (int i = 0; i < 3; i++) {
		it = message_item("x");
		assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	}
	push_refused(&q, "refused", 0, PS_ETIMEOUT);
	push_refused(&q, "refused after waiting", 20, PS_ETIMEOUT);
	/* A BEGIN without a change is refused too. */
	memset(&it, 0, sizeof(it));
	it.kind = PS_READ_BEGIN;
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_ETIMEOUT);
	assert_int_equal(ps_queue_count(&q), 3);

	/* Room again after one pop. */
	assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
	ps_change_free(it.change);
	it = message_item("y");
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	assert_null(it.change);
	ps_queue_destroy(&q);
}

static void test_queue_full_by_bytes(void **state)
{
	ps_queue q;
	ps_read_item it = message_item("0123456789");
	size_t one = sizeof(ps_read_item) + it.change->mem_size;

	/* Room for exactly two such items; plenty of slots. */
	assert_int_equal(ps_queue_init(&q, 64, 2 * one), PS_OK);
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	it = message_item("0123456789");
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	assert_int_equal(q.bytes, 2 * one);
	push_refused(&q, "0123456789", 0, PS_ETIMEOUT);
	push_refused(&q, "a", 5, PS_ETIMEOUT);
	memset(&it, 0, sizeof(it));
	it.kind = PS_READ_COMMIT;
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_ETIMEOUT);
	assert_int_equal(ps_queue_count(&q), 2);

	assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
	ps_change_free(it.change);
	assert_int_equal(q.bytes, one);
	it = message_item("0123456789");
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	ps_queue_destroy(&q);
}

static void test_queue_oversized_item(void **state)
{
	ps_queue q;
	char big[4096];
	ps_read_item it;

	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(ps_queue_init(&q, 8, 1024), PS_OK);
	it = message_item(big);
	assert_true(sizeof(ps_read_item) + it.change->mem_size > 1024);
	/* Empty queue: admitted although larger than the bound. */
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	assert_null(it.change);
	/* Not empty any more: the next item waits, even a small one. */
	push_refused(&q, big, 0, PS_ETIMEOUT);
	push_refused(&q, "s", 0, PS_ETIMEOUT);
	assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
	assert_int_equal(it.change->message_len, sizeof(big) - 1);
	ps_change_free(it.change);
	assert_int_equal(q.bytes, 0);
	it = message_item(big);
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	ps_queue_destroy(&q);
}

static void test_queue_close(void **state)
{
	ps_queue q;
	ps_read_item it;

	assert_int_equal(ps_queue_init(&q, 3, 1 << 20), PS_OK);
	for (uint64_t i = 0; i < 3; i++) {
		it = make_item(i);
		assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	}
	ps_queue_close(&q);
	/* Closed (and full): stopped, not timed out; the change stays ours. */
	push_refused(&q, "late", 50, PS_ESTOPPED);
	/* Pops drain in order, then report stopped without waiting. */
	for (uint64_t i = 0; i < 3; i++) {
		assert_int_equal(ps_queue_pop(&q, &it, 1000), PS_OK);
		assert_int_equal(check_item(&it, i), 0);
	}
	assert_int_equal(ps_queue_pop(&q, &it, 60000), PS_ESTOPPED);
	assert_int_equal(ps_queue_pop(&q, &it, 0), PS_ESTOPPED);
	/* Closed and empty: still no push. */
	push_refused(&q, "later", 0, PS_ESTOPPED);
	ps_queue_destroy(&q);
}

#define THREAD_ITEMS 100000

typedef struct pc_state {
	ps_queue *q;
	uint64_t produced;
	uint64_t consumed;
	uint64_t first_bad;     /* sequence number of the first wrong item */
	int bad;
	int producer_rc;
	int consumer_rc;
} pc_state;

static void *producer(void *arg)
{
	pc_state *s = arg;

	for (uint64_t i = 0; i < THREAD_ITEMS; i++) {
		ps_read_item it = make_item(i);
		int rc;

		do
			rc = ps_queue_push(s->q, &it, 100);
		while (rc == PS_ETIMEOUT);
		if (rc != PS_OK) {
			ps_change_free(it.change);
			s->producer_rc = rc;
			break;
		}
		s->produced++;
	}
	ps_queue_close(s->q);
	return NULL;
}

static void *consumer(void *arg)
{
	pc_state *s = arg;
	ps_read_item it;
	int rc;

	for (;;) {
		rc = ps_queue_pop(s->q, &it, 100);
		if (rc == PS_ETIMEOUT)
			continue;
		if (rc != PS_OK)
			break;
		if (check_item(&it, s->consumed) && !s->bad) {
			s->bad = 1;
			s->first_bad = s->consumed;
		}
		s->consumed++;
	}
	s->consumer_rc = rc;
	return NULL;
}

static void test_queue_threads(void **state)
{
	ps_queue q;
	pc_state s;
	pthread_t tp, tc;
	ps_read_item probe = make_item(1);

	/* Capacity 8, and a byte bound of about four changes, so both bounds
	 * make the producer wait. */
	assert_int_equal(ps_queue_init(&q, 8, 4 * (sizeof(ps_read_item) + probe.change->mem_size)),
	                 PS_OK);
	ps_change_free(probe.change);
	memset(&s, 0, sizeof(s));
	s.q = &q;
	assert_int_equal(pthread_create(&tc, NULL, consumer, &s), 0);
	assert_int_equal(pthread_create(&tp, NULL, producer, &s), 0);
	assert_int_equal(pthread_join(tp, NULL), 0);
	assert_int_equal(pthread_join(tc, NULL), 0);

	assert_int_equal(s.producer_rc, PS_OK);
	assert_int_equal(s.produced, THREAD_ITEMS);
	if (s.bad)
		fail_msg("item %llu arrived out of order", (unsigned long long)s.first_bad);
	assert_int_equal(s.consumed, THREAD_ITEMS);
	assert_int_equal(s.consumer_rc, PS_ESTOPPED);
	assert_int_equal(ps_queue_count(&q), 0);
	assert_true(q.peak_bytes <= q.max_bytes);
	ps_queue_destroy(&q);
}

static void test_queue_destroy_frees(void **state)
{
	ps_queue q;
	ps_read_item it;
	ps_table *t = ps_table_new(42, 1);
	ps_value v = {PS_VALUE_TEXT, 3, "abc"};

	assert_non_null(t);
	assert_int_equal(ps_table_set_names(t, "public", "t"), PS_OK);
	assert_int_equal(ps_table_set_column(t, 0, "c", 25, -1, PS_TYPE_TEXT, true), PS_OK);
	assert_int_equal(ps_queue_init(&q, 4, 1 << 20), PS_OK);
	/* Move head off slot 0 so that destroy has to walk a wrapped ring. */
	for (uint64_t i = 0; i < 3; i++) {
		it = make_item(i);
		assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
		assert_int_equal(ps_queue_pop(&q, &it, 0), PS_OK);
		assert_int_equal(check_item(&it, i), 0);
	}
	for (int i = 0; i < 3; i++) {
		memset(&it, 0, sizeof(it));
		it.kind = PS_READ_CHANGE;
		it.change = ps_change_new(PS_OP_INSERT, t, &v, NULL, false, (uint64_t)i);
		assert_non_null(it.change);
		assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	}
	it = message_item("queued message");
	assert_int_equal(ps_queue_push(&q, &it, 0), PS_OK);
	assert_int_equal(ps_queue_count(&q), 4);
	assert_int_equal(atomic_load(&t->refs), 4);
	/* Destroy frees the queued changes, which drop their table references;
	 * LeakSanitizer checks the message change. */
	ps_queue_destroy(&q);
	assert_int_equal(atomic_load(&t->refs), 1);
	assert_null(q.ring);
	ps_queue_destroy(&q); /* twice is harmless */
	ps_table_unref(t);
}

/* ========================================================================= */
/* CDC marker                                                                 */
/* ========================================================================= */

static void test_cdc_transitions(void **state)
{
	static const int allowed[][2] = {
		{PS_CDC_INITIAL, PS_CDC_ILSTART}, {PS_CDC_INITIAL, PS_CDC_TFSTART},
		{PS_CDC_TFSTART, PS_CDC_TFEND},   {PS_CDC_TFSTART, PS_CDC_TFREDO},
		{PS_CDC_TFEND, PS_CDC_TFSTART},   {PS_CDC_TFREDO, PS_CDC_TFSTART},
		{PS_CDC_TFREDO, PS_CDC_TFEND},    {PS_CDC_ILSTART, PS_CDC_ILEND},
		{PS_CDC_ILEND, PS_CDC_ILUPDATE},  {PS_CDC_ILUPDATE, PS_CDC_TFSTART},
		{PS_CDC_ERROR, PS_CDC_INITIAL},
	};
	static const int refused[][2] = {
		{PS_CDC_TFSTART, PS_CDC_ILEND},   {PS_CDC_INITIAL, PS_CDC_TFEND},
		{PS_CDC_TFEND, PS_CDC_ILSTART},   {PS_CDC_ILEND, PS_CDC_ILSTART},
		{PS_CDC_INITIAL, PS_CDC_ILEND},   {PS_CDC_INITIAL, PS_CDC_TFREDO},
		{PS_CDC_TFEND, PS_CDC_TFREDO},    {PS_CDC_TFEND, PS_CDC_INITIAL},
		{PS_CDC_TFSTART, PS_CDC_INITIAL}, {PS_CDC_ERROR, PS_CDC_TFSTART},
		{PS_CDC_ERROR, PS_CDC_TFEND},     {PS_CDC_ILUPDATE, PS_CDC_ILSTART},
	};
	static const int out_of_range[][2] = {
		{-1, PS_CDC_ILSTART}, {PS_CDC_ERROR + 1, PS_CDC_INITIAL},
		{PS_CDC_INITIAL, -1}, {PS_CDC_INITIAL, PS_CDC_ERROR + 1},
		{PS_CDC_TFSTART, 100}, {1000, 1000}, {-5, PS_CDC_ERROR},
	};

	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		int from = allowed[i][0], to = allowed[i][1];

		if (ps_cdc_transition(from, to) != to)
			fail_msg("%s -> %s refused", ps_cdc_state_name(from), ps_cdc_state_name(to));
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		int from = refused[i][0], to = refused[i][1];

		if (ps_cdc_transition(from, to) != PS_CDC_ERROR)
			fail_msg("%s -> %s allowed", ps_cdc_state_name(from), ps_cdc_state_name(to));
	}
	for (int from = PS_CDC_INITIAL; from <= PS_CDC_ERROR; from++)
		assert_int_equal(ps_cdc_transition(from, PS_CDC_ERROR), PS_CDC_ERROR);
	for (size_t i = 0; i < sizeof(out_of_range) / sizeof(out_of_range[0]); i++)
		assert_int_equal(ps_cdc_transition(out_of_range[i][0], out_of_range[i][1]),
		                 PS_CDC_ERROR);
}

static void test_cdc_names(void **state)
{
	static const char *const names[] = {
		"INITIAL", "ILSTART", "ILEND", "ILUPDATE", "TFSTART", "TFEND", "TFREDO", "ERROR"
	};
	int out;

	for (int s = PS_CDC_INITIAL; s <= PS_CDC_ERROR; s++) {
		assert_string_equal(ps_cdc_state_name(s), names[s]);
		out = -1;
		assert_int_equal(ps_cdc_state_parse(ps_cdc_state_name(s), &out), PS_OK);
		assert_int_equal(out, s);
	}
	out = 123;
	assert_int_equal(ps_cdc_state_parse("BOGUS", &out), PS_EINVAL);
	assert_int_equal(out, 123);
	assert_int_equal(ps_cdc_state_parse("", &out), PS_EINVAL);
	assert_int_equal(ps_cdc_state_parse("tfstart", &out), PS_EINVAL);
	assert_int_equal(ps_cdc_state_parse("TFSTART ", &out), PS_EINVAL);
	assert_string_equal(ps_cdc_state_name(-1), "ERROR");
	assert_string_equal(ps_cdc_state_name(PS_CDC_ERROR + 1), "ERROR");
}

/* ========================================================================= */
/* checkpoint                                                                 */
/* ========================================================================= */

#define SRC_URL "postgresql://repl@db1:5432/app"
#define DST_URL "jsonl:///var/out"
#define INCL "[\"public.*\"]"
#define EXCL "[\"public.audit_*\"]"

static ps_spec *make_spec(const char *src, const char *dst, const char *include,
                          const char *exclude, const char *resume)
{
	char text[2048];
	ps_spec *spec = NULL;
	ps_error err;

	snprintf(text, sizeof(text),
	         "{\"name\": \"orders\", \"type\": \"cdc\", \"source\": {\"url\": \"%s\"}, "
	         "\"target\": {\"url\": \"%s\"}, \"tables\": {\"include\": %s, \"exclude\": %s}, "
	         "\"resume\": \"%s\"}", src, dst, include, exclude, resume);
	ps_error_clear(&err);
	if (ps_spec_parse(&spec, text, strlen(text), "t.json", &err) != PS_OK)
		fail_msg("spec did not parse: %s\n%s", err.message, text);
	return spec;
}

static void identity_of(ps_identity *id, const char *src, const char *dst,
                        const char *include, const char *exclude, const char *resume)
{
	ps_spec *spec = make_spec(src, dst, include, exclude, resume);

	ps_identity_from_spec(id, spec);
	ps_spec_free(spec);
}

static void test_identity(void **state)
{
	ps_identity base, again, other;

	identity_of(&base, SRC_URL, DST_URL, INCL, EXCL, "if_exists");
	assert_string_equal(base.source, "postgresql://db1:5432/app");
	assert_null(strstr(base.source, "repl"));
	assert_string_equal(base.target, DST_URL);
	assert_string_equal(base.tables, "include=public.*;exclude=public.audit_*");
	assert_int_equal(strlen(base.fingerprint), 16);
	assert_int_equal(strspn(base.fingerprint, "0123456789abcdef"), 16);

	identity_of(&again, SRC_URL, DST_URL, INCL, EXCL, "if_exists");
	assert_string_equal(again.fingerprint, base.fingerprint);

	/* Same job, in what the fingerprint covers. */
	identity_of(&other, "postgresql://someone_else@db1:5432/app", DST_URL, INCL, EXCL,
	            "if_exists");
	assert_string_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, SRC_URL, DST_URL, INCL, EXCL, "never");
	assert_string_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, SRC_URL, DST_URL, INCL, EXCL, "always");
	assert_string_equal(other.fingerprint, base.fingerprint);

	/* A different job. */
	identity_of(&other, "postgresql://repl@db2:5432/app", DST_URL, INCL, EXCL, "if_exists");
	assert_string_not_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, "postgresql://repl@db1:5433/app", DST_URL, INCL, EXCL, "if_exists");
	assert_string_not_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, "postgresql://repl@db1:5432/app2", DST_URL, INCL, EXCL, "if_exists");
	assert_string_not_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, SRC_URL, "jsonl:///var/other", INCL, EXCL, "if_exists");
	assert_string_not_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, SRC_URL, DST_URL, "[\"sales.*\"]", EXCL, "if_exists");
	assert_string_not_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, SRC_URL, DST_URL, "[\"public.*\", \"sales.*\"]", EXCL, "if_exists");
	assert_string_not_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, SRC_URL, DST_URL, INCL, "[]", "if_exists");
	assert_string_not_equal(other.fingerprint, base.fingerprint);
	identity_of(&other, SRC_URL, DST_URL, INCL, "[\"public.log\"]", "if_exists");
	assert_string_not_equal(other.fingerprint, base.fingerprint);
}


/* checkpoint.h: ps_identity.target is the "target URL, redacted, without
 * user", but ps_identity_from_spec copies the redacted URL with its user, so
 * changing only the target user changes the fingerprint and refuses resume. */
static void test_identity_target_user(void **state)
{
	ps_identity a, b;

	identity_of(&a, SRC_URL, "postgresql://app@dst:5432/db", INCL, EXCL, "if_exists");
	identity_of(&b, SRC_URL, "postgresql://other@dst:5432/db", INCL, EXCL, "if_exists");
	assert_null(strstr(a.target, "app@"));
	assert_string_equal(a.fingerprint, b.fingerprint);
}

static void fill_checkpoint(ps_checkpoint *ck, const char *job)
{
	ps_spec *spec = make_spec(SRC_URL, DST_URL, INCL, EXCL, "if_exists");

	memset(ck, 0, sizeof(*ck));
	snprintf(ck->job, sizeof(ck->job), "%s", job);
	ps_identity_from_spec(&ck->identity, spec);
	ps_spec_free(spec);
	snprintf(ck->source_server_id, sizeof(ck->source_server_id), "7301234567890123456");
	ck->cdc_state = PS_CDC_TFSTART;
	snprintf(ck->position, sizeof(ck->position), "0/16B3F10");
	/* the source's engine state (PostgreSQL: slot and publication), opaque */
	ck->source_state = strdup("{\"publication\":\"penstock_pub\",\"slot\":\"penstock_orders\"}");
	ck->target_state = strdup("{\"epoch\":3}");
	assert_non_null(ck->source_state);
	assert_non_null(ck->target_state);
	/* Canonical form (compact, sorted keys), as load returns it. */
	ck->spec_json = strdup("{\"name\":\"orders\",\"tables\":{\"include\":[\"public.*\"]},"
	                       "\"type\":\"cdc\"}");
	assert_non_null(ck->spec_json);
}

static void test_checkpoint_round_trip(void **state)
{
	char dir[] = "/tmp/penstock-test-ck-XXXXXX";
	char path[1200], jobdir[1100];
	ps_checkpoint ck, got;
	bool found = false;
	ps_error err;
	DIR *d;
	struct dirent *e;
	int entries = 0;

	assert_non_null(mkdtemp(dir));
	umask(022);
	fill_checkpoint(&ck, "orders");
	ps_error_clear(&err);
	assert_int_equal(ps_checkpoint_store(&ck, dir, &err), PS_OK);
	assert_int_equal(strlen(ck.updated_at), 20);

	ps_checkpoint_path(path, sizeof(path), dir, "orders");
	snprintf(jobdir, sizeof(jobdir), "%s/jobs/orders", dir);
	{
		char want[1200];

		snprintf(want, sizeof(want), "%s/checkpoint.json", jobdir);
		assert_string_equal(path, want);
	}
	assert_int_equal(mode_of(path), 0600);
	assert_int_equal(mode_of(jobdir), 0700);
	/* Only the checkpoint: no temporary file left behind. */
	d = opendir(jobdir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		assert_string_equal(e->d_name, "checkpoint.json");
		entries++;
	}
	closedir(d);
	assert_int_equal(entries, 1);

	assert_int_equal(ps_checkpoint_load(&got, &found, dir, "orders", &err), PS_OK);
	assert_true(found);
	assert_string_equal(got.job, ck.job);
	assert_string_equal(got.identity.source, ck.identity.source);
	assert_string_equal(got.identity.target, ck.identity.target);
	assert_string_equal(got.identity.tables, ck.identity.tables);
	assert_string_equal(got.identity.fingerprint, ck.identity.fingerprint);
	assert_string_equal(got.source_server_id, "7301234567890123456");
	assert_int_equal(got.cdc_state, PS_CDC_TFSTART);
	assert_string_equal(got.position, "0/16B3F10");
	assert_string_equal(got.source_state,
	                    "{\"publication\":\"penstock_pub\",\"slot\":\"penstock_orders\"}");
	assert_string_equal(got.target_state, "{\"epoch\":3}");
	assert_non_null(got.spec_json);
	assert_string_equal(got.spec_json, ck.spec_json);
	assert_string_equal(got.updated_at, ck.updated_at);
	assert_int_equal(ps_checkpoint_match(&got, &ck.identity, &err), PS_OK);
	ps_checkpoint_free(&got);
	assert_null(got.spec_json);

	/* Every CDC state survives; a rewrite replaces the file atomically. */
	for (int s = PS_CDC_INITIAL; s <= PS_CDC_ERROR; s++) {
		ck.cdc_state = s;
		snprintf(ck.position, sizeof(ck.position), "0/%X", 0x100 + s);
		assert_int_equal(ps_checkpoint_store(&ck, dir, &err), PS_OK);
		assert_int_equal(ps_checkpoint_load(&got, &found, dir, "orders", &err), PS_OK);
		assert_true(found);
		assert_int_equal(got.cdc_state, s);
		assert_string_equal(got.position, ck.position);
		ps_checkpoint_free(&got);
	}
	assert_int_equal(mode_of(path), 0600);

	/* No spec: loads as NULL. */
	free(ck.spec_json);
	ck.spec_json = NULL;
	assert_int_equal(ps_checkpoint_store(&ck, dir, &err), PS_OK);
	assert_int_equal(ps_checkpoint_load(&got, &found, dir, "orders", &err), PS_OK);
	assert_true(found);
	assert_null(got.spec_json);
	ps_checkpoint_free(&got);

	/* Remove, then there is none; removing again is fine. */
	assert_int_equal(ps_checkpoint_remove(dir, "orders", &err), PS_OK);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(ps_checkpoint_load(&got, &found, dir, "orders", &err), PS_OK);
	assert_false(found);
	assert_int_equal(ps_checkpoint_remove(dir, "orders", &err), PS_OK);
	ps_checkpoint_free(&ck);
	rm_rf(dir);
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

/* The load's per-table unit progress survives text and back unchanged. */
static void test_checkpoint_tables_text(void **state)
{
	ps_checkpoint ck, back;
	ps_error err;
	char *text, *again;

	memset(&ck, 0, sizeof(ck));
	snprintf(ck.job, sizeof(ck.job), "j");
	ck.cdc_state = PS_CDC_ILSTART;
	snprintf(ck.position, sizeof(ck.position), "0/10");
	ck.ntables = 2;
	ck.tables = calloc(2, sizeof(ps_ck_table));
	ck.tables[0].schema = xstrdup("public");
	ck.tables[0].name = xstrdup("big");
	ck.tables[0].created = true;
	ck.tables[0].estimated_rows = 1000000;
	ck.tables[0].nbounds = 2;
	ck.tables[0].bounds = calloc(2, sizeof(ps_key_bound));
	for (int i = 0; i < 2; i++) {
		ck.tables[0].bounds[i].nvalues = 2;
		ck.tables[0].bounds[i].values = calloc(2, sizeof(char *));
		ck.tables[0].bounds[i].values[0] = xstrdup(i ? "500" : "250");
		ck.tables[0].bounds[i].values[1] = xstrdup(i ? "tab\there \"q\"" : "");
	}
	ck.tables[0].nunits = 3;
	ck.tables[0].units = calloc(3, sizeof(ps_ck_unit));
	ck.tables[0].units[1].done = true;
	ck.tables[0].units[1].rows = 250;
	snprintf(ck.tables[0].units[1].point, PS_POSITION_MAX, "0/20");
	ck.tables[1].schema = xstrdup("s");
	ck.tables[1].name = xstrdup("small");
	ck.tables[1].finished = true;
	ck.tables[1].estimated_rows = -1;
	ck.tables[1].nunits = 1;
	ck.tables[1].units = calloc(1, sizeof(ps_ck_unit));
	ck.tables[1].units[0].done = true;
	snprintf(ck.tables[1].units[0].point, PS_POSITION_MAX, "0/10");

	text = ps_checkpoint_to_text(&ck);
	assert_non_null(text);
	ps_error_clear(&err);
	assert_int_equal(ps_checkpoint_from_text(&back, text, "test", &err), PS_OK);
	assert_int_equal(back.cdc_state, PS_CDC_ILSTART);
	assert_int_equal(back.ntables, 2);
	assert_string_equal(back.tables[0].name, "big");
	assert_true(back.tables[0].created);
	assert_false(back.tables[0].finished);
	assert_int_equal(back.tables[0].nbounds, 2);
	assert_string_equal(back.tables[0].bounds[1].values[1], "tab\there \"q\"");
	assert_string_equal(back.tables[0].bounds[0].values[1], "");
	assert_false(back.tables[0].units[0].done);
	assert_true(back.tables[0].units[1].done);
	assert_int_equal(back.tables[0].units[1].rows, 250);
	assert_string_equal(back.tables[0].units[1].point, "0/20");
	assert_true(back.tables[1].finished);
	assert_int_equal(back.tables[1].estimated_rows, -1);
	/* the same text again: nothing lost or added */
	snprintf(back.updated_at, sizeof(back.updated_at), "%s", ck.updated_at);
	again = ps_checkpoint_to_text(&back);
	assert_string_equal(again, text);
	free(again);
	free(text);

	/* a unit list that does not match its bounds is refused */
	ps_checkpoint_free(&ck);
	assert_int_equal(ps_checkpoint_from_text(&ck, "{\"format\": 1, "
	                 "\"identity\": {}, \"cdc_state\": \"ILSTART\", \"tables\": [{\"schema\": "
	                 "\"a\", \"name\": \"b\", \"bounds\": [[\"1\"]], \"units\": [{}]}]}", "test", &err),
	                 PS_ECHECKPOINT);
	assert_non_null(strstr(err.message, "tables[0] is malformed"));
	ps_checkpoint_free(&back);
}

/* issue 14: a partitioned table's units are its partitions (parts). */
static void test_checkpoint_partition_units(void **state)
{
	ps_checkpoint ck, back;
	ps_error err;
	char *text, *again;

	(void)state;
	memset(&ck, 0, sizeof(ck));
	snprintf(ck.job, sizeof(ck.job), "j");
	ck.cdc_state = PS_CDC_ILSTART;
	snprintf(ck.position, sizeof(ck.position), "0/10");
	ck.ntables = 1;
	ck.tables = calloc(1, sizeof(ps_ck_table));
	ck.tables[0].schema = xstrdup("public");
	ck.tables[0].name = xstrdup("payment");
	ck.tables[0].nunits = 3;
	ck.tables[0].units = calloc(3, sizeof(ps_ck_unit));
	ck.tables[0].parts = calloc(3, sizeof(char *));
	ck.tables[0].parts[0] = xstrdup("archive.payment_old");
	ck.tables[0].parts[1] = xstrdup("public.payment_p1");
	ck.tables[0].parts[2] = xstrdup("public.payment \"odd\"");
	ck.tables[0].units[1].done = true;
	ck.tables[0].units[1].rows = 7;
	snprintf(ck.tables[0].units[1].point, PS_POSITION_MAX, "0/20");

	text = ps_checkpoint_to_text(&ck);
	assert_non_null(text);
	ps_error_clear(&err);
	assert_int_equal(ps_checkpoint_from_text(&back, text, "test", &err), PS_OK);
	assert_int_equal(back.tables[0].nunits, 3);
	assert_int_equal(back.tables[0].nbounds, 0);
	assert_non_null(back.tables[0].parts);
	assert_string_equal(back.tables[0].parts[0], "archive.payment_old");
	assert_string_equal(back.tables[0].parts[2], "public.payment \"odd\"");
	assert_true(back.tables[0].units[1].done);
	snprintf(back.updated_at, sizeof(back.updated_at), "%s", ck.updated_at);
	again = ps_checkpoint_to_text(&back);
	assert_string_equal(again, text);
	free(again);
	free(text);
	ps_checkpoint_free(&back);

	/* parts that do not match the units, or with bounds, are refused */
	assert_int_equal(ps_checkpoint_from_text(&back, "{\"format\": 1, \"identity\": {}, "
	                 "\"cdc_state\": \"ILSTART\", \"tables\": [{\"schema\": \"a\", "
	                 "\"name\": \"b\", \"bounds\": [], \"units\": [{}, {}], "
	                 "\"parts\": [\"a.p\"]}]}", "test", &err), PS_ECHECKPOINT);
	ps_checkpoint_free(&back);
	assert_int_equal(ps_checkpoint_from_text(&back, "{\"format\": 1, \"identity\": {}, "
	                 "\"cdc_state\": \"ILSTART\", \"tables\": [{\"schema\": \"a\", "
	                 "\"name\": \"b\", \"bounds\": [[\"1\"]], \"units\": [{}, {}], "
	                 "\"parts\": [\"a.p\", \"a.q\"]}]}", "test", &err), PS_ECHECKPOINT);
	ps_checkpoint_free(&back);
	ps_checkpoint_free(&ck);
}

static void test_checkpoint_none(void **state)
{
	char dir[] = "/tmp/penstock-test-ck-XXXXXX";
	char missing[256];
	ps_checkpoint got;
	bool found = true;
	ps_error err;

	assert_non_null(mkdtemp(dir));
	ps_error_clear(&err);
	assert_int_equal(ps_checkpoint_load(&got, &found, dir, "orders", &err), PS_OK);
	assert_false(found);
	assert_int_equal(err.code, PS_OK);
	assert_null(got.spec_json);

	/* A state directory that does not exist yet is no checkpoint either. */
	snprintf(missing, sizeof(missing), "%s/not/there", dir);
	found = true;
	assert_int_equal(ps_checkpoint_load(&got, &found, missing, "orders", &err), PS_OK);
	assert_false(found);
	assert_int_equal(ps_checkpoint_remove(missing, "orders", &err), PS_OK);
	assert_int_equal(ps_checkpoint_remove(dir, "orders", &err), PS_OK);
	rm_rf(dir);
}

/* Writes text as the checkpoint of job "orders" and expects it refused. */
static void corrupt_fails(const char *dir, const char *text, const char *phrase)
{
	char path[1200], jobdir[1100];
	ps_checkpoint got;
	bool found = true;
	ps_error err;

	snprintf(jobdir, sizeof(jobdir), "%s/jobs/orders", dir);
	ps_error_clear(&err);
	assert_int_equal(ps_state_dir_ensure(jobdir, &err), PS_OK);
	ps_checkpoint_path(path, sizeof(path), dir, "orders");
	write_file(path, text);
	assert_int_equal(ps_checkpoint_load(&got, &found, dir, "orders", &err), PS_ECHECKPOINT);
	assert_false(found);
	assert_int_equal(err.code, PS_ECHECKPOINT);
	assert_contains(err.message, path);
	assert_contains(err.message, phrase);
	ps_checkpoint_free(&got);
}

static void test_checkpoint_corrupt(void **state)
{
	char dir[] = "/tmp/penstock-test-ck-XXXXXX";

	assert_non_null(mkdtemp(dir));
	corrupt_fails(dir, "garbage \x01\x02 not json", "is unreadable");
	corrupt_fails(dir, "", "is unreadable");
	corrupt_fails(dir, "{\"format\": 1, \"job\": \"orders\"", "is unreadable");
	corrupt_fails(dir, "[1, 2, 3]", "not a penstock checkpoint of format 1");
	/* jansson accepts only an object or array at the top. */
	corrupt_fails(dir, "\"a string\"", "is unreadable");
	corrupt_fails(dir, "{\"job\": \"orders\"}", "not a penstock checkpoint of format 1");
	corrupt_fails(dir, "{\"format\": 2, \"identity\": {}, \"cdc_state\": \"TFEND\"}",
	              "not a penstock checkpoint of format 1");
	corrupt_fails(dir, "{\"format\": 1, \"identity\": [], \"cdc_state\": \"TFEND\"}",
	              "not a penstock checkpoint of format 1");
	corrupt_fails(dir, "{\"format\": 1, \"identity\": {}, \"cdc_state\": 4}",
	              "not a penstock checkpoint of format 1");
	corrupt_fails(dir, "{\"format\": 1, \"identity\": {}, \"cdc_state\": \"SIDEWAYS\"}",
	              "unknown cdc_state 'SIDEWAYS'");
	corrupt_fails(dir, "{\"format\": 1, \"format\": 1, \"identity\": {}, \"cdc_state\": \"TFEND\"}",
	              "is unreadable");
	rm_rf(dir);
}

/* Found by tests/fuzz/fuzz_checkpoint.c: a field longer than its slot was
 * cut, in the middle of a UTF-8 character if need be, and the checkpoint
 * then wrote back without that field (jansson refuses the broken text):
 * without its identity, the next run could not read it at all. A field
 * penstock never writes that long is now refused, naming it. */
static void test_checkpoint_field_too_long(void **state)
{
	char text[4096], job[80], target[1700], point[200];
	ps_checkpoint ck;
	ps_error err;
	char *back;

	/* "ab" then 'é' (2 bytes) until past the 63 bytes of the job's slot */
	job[0] = 'a';
	job[1] = 'b';
	for (int i = 0; i < 35; i++) {
		job[2 + 2 * i] = (char)0xc3;
		job[3 + 2 * i] = (char)0xa9;
	}
	job[72] = '\0';
	snprintf(text, sizeof(text), "{\"format\": 1, \"identity\": {}, \"cdc_state\": \"TFEND\", "
	         "\"job\": \"%s\"}", job);
	ps_error_clear(&err);
	assert_int_equal(ps_checkpoint_from_text(&ck, text, "of job 'x' in the target", &err),
	                 PS_ECHECKPOINT);
	assert_contains(err.message, "of job 'x' in the target");
	assert_contains(err.message, "job is longer than penstock writes it");
	assert_null(ck.tables);

	memset(target, 'x', sizeof(target) - 1);
	target[sizeof(target) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"format\": 1, \"identity\": {\"target\": \"%s\"}, "
	         "\"cdc_state\": \"TFEND\"}", target);
	assert_int_equal(ps_checkpoint_from_text(&ck, text, "t", &err), PS_ECHECKPOINT);
	assert_contains(err.message, "identity.target is longer");

	memset(point, '1', sizeof(point) - 1);
	point[sizeof(point) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"format\": 1, \"identity\": {}, \"cdc_state\": "
	         "\"ILSTART\", \"tables\": [{\"schema\": \"a\", \"name\": \"b\", \"bounds\": [], "
	         "\"units\": [{\"done_at\": \"%s\", \"rows\": 1}]}]}", point);
	assert_int_equal(ps_checkpoint_from_text(&ck, text, "t", &err), PS_ECHECKPOINT);
	assert_contains(err.message, "tables[0] is malformed");
	assert_null(ck.tables);

	/* at its slot's size less one, a field is read, and written back whole */
	job[62] = '\0';            /* "ab" and 30 whole 'é': 62 bytes */
	snprintf(text, sizeof(text), "{\"format\": 1, \"identity\": {\"target\": \"%.*s\"}, "
	         "\"cdc_state\": \"TFEND\", \"job\": \"%s\"}", 1535, target, job);
	assert_int_equal(ps_checkpoint_from_text(&ck, text, "t", &err), PS_OK);
	assert_string_equal(ck.job, job);
	assert_int_equal(strlen(ck.identity.target), 1535);
	back = ps_checkpoint_to_text(&ck);
	assert_non_null(back);
	assert_non_null(strstr(back, job));
	assert_non_null(strstr(back, "\"target\":\"xxx"));
	free(back);
	ps_checkpoint_free(&ck);
}

static void test_checkpoint_match(void **state)
{
	ps_checkpoint ck;
	ps_identity id;
	ps_error err;

	fill_checkpoint(&ck, "orders");
	ps_error_clear(&err);

	identity_of(&id, SRC_URL, DST_URL, INCL, EXCL, "if_exists");
	assert_int_equal(ps_checkpoint_match(&ck, &id, &err), PS_OK);
	/* Only the user differs: the same job. */
	identity_of(&id, "postgresql://other@db1:5432/app", DST_URL, INCL, EXCL, "never");
	assert_int_equal(ps_checkpoint_match(&ck, &id, &err), PS_OK);

	identity_of(&id, SRC_URL, DST_URL, "[\"sales.*\"]", EXCL, "if_exists");
	ps_error_clear(&err);
	assert_int_equal(ps_checkpoint_match(&ck, &id, &err), PS_ECHECKPOINT);
	assert_int_equal(err.code, PS_ECHECKPOINT);
	assert_contains(err.message, "job 'orders'");
	assert_contains(err.message, "tables were include=public.*;exclude=public.audit_*, "
	                             "now include=sales.*;exclude=public.audit_*");
	assert_null(strstr(err.message, "source was"));
	assert_null(strstr(err.message, "target was"));
	assert_contains(err.message, "\"resume\": \"never\"");

	identity_of(&id, "postgresql://repl@db2:5432/app", DST_URL, INCL, EXCL, "if_exists");
	assert_int_equal(ps_checkpoint_match(&ck, &id, &err), PS_ECHECKPOINT);
	assert_contains(err.message,
	                "source was postgresql://db1:5432/app, now postgresql://db2:5432/app");
	assert_null(strstr(err.message, "target was"));
	assert_null(strstr(err.message, "tables were"));

	identity_of(&id, SRC_URL, "jsonl:///var/other", INCL, EXCL, "if_exists");
	assert_int_equal(ps_checkpoint_match(&ck, &id, &err), PS_ECHECKPOINT);
	assert_contains(err.message, "target was jsonl:///var/out, now jsonl:///var/other");
	assert_null(strstr(err.message, "source was"));
	assert_null(strstr(err.message, "tables were"));

	/* All three at once: each is named. */
	identity_of(&id, "postgresql://repl@db2:5432/app", "jsonl:///var/other", "[\"sales.*\"]",
	            "[]", "if_exists");
	assert_int_equal(ps_checkpoint_match(&ck, &id, &err), PS_ECHECKPOINT);
	assert_contains(err.message, "source was postgresql://db1:5432/app, now postgresql://db2:5432/app");
	assert_contains(err.message, "target was jsonl:///var/out, now jsonl:///var/other");
	assert_contains(err.message, "tables were include=public.*;exclude=public.audit_*, "
	                             "now include=sales.*;exclude=");

	/* Parts equal but fingerprint not (e.g. edited file): still refused. */
	identity_of(&id, SRC_URL, DST_URL, INCL, EXCL, "if_exists");
	snprintf(ck.identity.fingerprint, sizeof(ck.identity.fingerprint), "0000000000000000");
	assert_int_equal(ps_checkpoint_match(&ck, &id, &err), PS_ECHECKPOINT);
	assert_contains(err.message, "fingerprint differs");
	ps_checkpoint_free(&ck);
}

static void test_state_dir_ensure(void **state)
{
	char base[] = "/tmp/penstock-test-sd-XXXXXX";
	char path[512];
	ps_error err;

	assert_non_null(mkdtemp(base));
	umask(022);
	ps_error_clear(&err);

	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(ps_state_dir_ensure(path, &err), PS_OK);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof(path), "%s/a/b", base);
	assert_int_equal(mode_of(path), 0700);
	snprintf(path, sizeof(path), "%s/a", base);
	assert_int_equal(mode_of(path), 0700);
	/* Again: nothing to do. */
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(ps_state_dir_ensure(path, &err), PS_OK);
	assert_int_equal(mode_of(path), 0700);

	/* An existing directory open to others is tightened. */
	snprintf(path, sizeof(path), "%s/open", base);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(chmod(path, 0755), 0);
	assert_int_equal(mode_of(path), 0755);
	assert_int_equal(ps_state_dir_ensure(path, &err), PS_OK);
	assert_int_equal(mode_of(path), 0700);

	/* A file where the directory should be. */
	snprintf(path, sizeof(path), "%s/file", base);
	write_file(path, "x");
	assert_int_equal(ps_state_dir_ensure(path, &err), PS_EIO);
	assert_contains(err.message, "is not a directory");
	snprintf(path, sizeof(path), "%s/file/sub", base);
	assert_int_not_equal(ps_state_dir_ensure(path, &err), PS_OK);

	assert_int_equal(ps_state_dir_ensure("", &err), PS_EINVAL);
	rm_rf(base);
}

/* Restores an environment variable as it was. */
static void restore_env(const char *name, const char *saved)
{
	if (saved)
		setenv(name, saved, 1);
	else
		unsetenv(name);
}

static void test_state_dir_resolve(void **state)
{
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	char *sd = getenv("PENSTOCK_STATE_DIR") ? strdup(getenv("PENSTOCK_STATE_DIR")) : NULL;
	char buf[512];
	ps_error err;

	ps_error_clear(&err);
	setenv("HOME", "/home/tester", 1);
	setenv("PENSTOCK_STATE_DIR", "/from/env", 1);
	assert_int_equal(ps_state_dir_resolve(buf, sizeof(buf), "/explicit", &err), PS_OK);
	assert_string_equal(buf, "/explicit");
	assert_int_equal(ps_state_dir_resolve(buf, sizeof(buf), NULL, &err), PS_OK);
	assert_string_equal(buf, "/from/env");
	assert_int_equal(ps_state_dir_resolve(buf, sizeof(buf), "", &err), PS_OK);
	assert_string_equal(buf, "/from/env");

	unsetenv("PENSTOCK_STATE_DIR");
	assert_int_equal(ps_state_dir_resolve(buf, sizeof(buf), NULL, &err), PS_OK);
	assert_string_equal(buf, "/home/tester/.local/state/penstock");
	setenv("PENSTOCK_STATE_DIR", "", 1);
	assert_int_equal(ps_state_dir_resolve(buf, sizeof(buf), NULL, &err), PS_OK);
	assert_string_equal(buf, "/home/tester/.local/state/penstock");
	assert_int_equal(ps_state_dir_resolve(buf, sizeof(buf), "/explicit", &err), PS_OK);
	assert_string_equal(buf, "/explicit");

	unsetenv("HOME");
	unsetenv("PENSTOCK_STATE_DIR");
	assert_int_equal(ps_state_dir_resolve(buf, sizeof(buf), NULL, &err), PS_EINVAL);
	assert_contains(err.message, "--state-dir");

	restore_env("HOME", home);
	restore_env("PENSTOCK_STATE_DIR", sd);
	free(home);
	free(sd);
}

/* ========================================================================= */
/* fault points                                                               */
/* ========================================================================= */

static int fault_init_with(const char *value, ps_error *err)
{
	if (value)
		setenv("PENSTOCK_FAULT", value, 1);
	else
		unsetenv("PENSTOCK_FAULT");
	ps_error_clear(err);
	return ps_fault_init(err);
}

static void test_fault_nth(void **state)
{
	ps_error err;

	assert_int_equal(fault_init_with("source.read:error@3", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	assert_int_equal(ps_fault_hit("apply.batch.before_commit", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	assert_int_equal(ps_fault_hit("snapshot.unit.commit", &err), PS_OK);
	ps_error_clear(&err);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_EFAULT);
	assert_int_equal(err.code, PS_EFAULT);
	assert_contains(err.message, "source.read");
	assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ps_fault_hit("apply.batch.after_commit", &err), PS_OK);

	/* Default n is 1. */
	assert_int_equal(fault_init_with("apply.batch.after_commit:error", &err), PS_OK);
	assert_int_equal(ps_fault_hit("apply.batch.after_commit", &err), PS_EFAULT);
	assert_int_equal(ps_fault_hit("apply.batch.after_commit", &err), PS_OK);

	/* Re-init resets the counters. */
	assert_int_equal(fault_init_with("source.read:error@2", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_EFAULT);
	assert_int_equal(fault_init_with("source.read:error@2", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_EFAULT);
	unsetenv("PENSTOCK_FAULT");
}

static void test_fault_two(void **state)
{
	ps_error err;

	assert_int_equal(fault_init_with("source.read:error@2,apply.batch.before_commit:error",
	                                 &err), PS_OK);
	assert_int_equal(ps_fault_hit("apply.batch.before_commit", &err), PS_EFAULT);
	assert_contains(err.message, "apply.batch.before_commit");
	assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_EFAULT);
	assert_contains(err.message, "source.read");
	assert_int_equal(ps_fault_hit("apply.batch.before_commit", &err), PS_OK);
	assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	unsetenv("PENSTOCK_FAULT");
}


/* fault.h: "n is which hit fires". With two faults on one point, the second
 * one's counter misses the hit on which the first one fired (ps_fault_hit
 * returns before counting the later entries), so @3 fires on the 4th hit. */
static void test_fault_same_point_twice(void **state)
{
	ps_error err;

	assert_int_equal(fault_init_with("snapshot.unit.commit:error@1,snapshot.unit.commit:error@3",
	                                 &err), PS_OK);
	assert_int_equal(ps_fault_hit("snapshot.unit.commit", &err), PS_EFAULT);
	assert_int_equal(ps_fault_hit("snapshot.unit.commit", &err), PS_OK);
	assert_int_equal(ps_fault_hit("snapshot.unit.commit", &err), PS_EFAULT);
	assert_int_equal(ps_fault_hit("snapshot.unit.commit", &err), PS_OK);
	unsetenv("PENSTOCK_FAULT");
}

static void fault_bad(const char *value, const char *phrase)
{
	ps_error err;

	if (fault_init_with(value, &err) != PS_EINVAL)
		fail_msg("PENSTOCK_FAULT=%s accepted", value);
	assert_int_equal(err.code, PS_EINVAL);
	assert_contains(err.message, "PENSTOCK_FAULT");
	assert_contains(err.message, phrase);
}

static void test_fault_bad_values(void **state)
{
	ps_error err;

	fault_bad("source.write:error", "unknown point 'source.write'");
	fault_bad("source.write:error", "known: source.read, apply.batch.before_commit");
	fault_bad("source.read:explode", "action 'explode' is not error or crash");
	fault_bad("source.read:", "action '' is not error or crash");
	fault_bad("source.read:error@0", "'@0' is not a positive count");
	fault_bad("source.read:error@x", "'@x' is not a positive count");
	fault_bad("source.read:error@-2", "'@-2' is not a positive count");
	fault_bad("source.read:error@2x", "'@2x' is not a positive count");
	fault_bad("source.read:error@", "is not a positive count");
	fault_bad("source.read", "'source.read' is not <point>:<error|crash>[@<n>]");
	fault_bad(":error", "bad point");
	fault_bad("source.read:error,bogus", "'bogus' is not <point>:<error|crash>[@<n>]");
	fault_bad("source.read:error,,source.read:error@2", "is not <point>");

	/* Unset or empty: no faults at all. */
	assert_int_equal(fault_init_with(NULL, &err), PS_OK);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
		assert_int_equal(ps_fault_hit("apply.batch.before_commit", &err), PS_OK);
	}
	assert_int_equal(fault_init_with("source.read:error", &err), PS_OK);
	assert_int_equal(fault_init_with("", &err), PS_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ps_fault_hit("source.read", &err), PS_OK);
	unsetenv("PENSTOCK_FAULT");
}

static void test_fault_crash(void **state)
{
	pid_t pid;
	int status = 0;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		ps_error err;

		setenv("PENSTOCK_FAULT", "source.read:crash@2", 1);
		if (ps_fault_init(&err) != PS_OK)
			_exit(2);
		if (ps_fault_hit("source.read", &err) != PS_OK)
			_exit(3);
		ps_fault_hit("source.read", &err);
		_exit(4); /* not reached when the crash fires */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFSIGNALED(status))
		fail_msg("child exited with %d instead of dying of SIGKILL",
		         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

/* ========================================================================= */
/* plugins                                                                    */
/* ========================================================================= */

static void test_plugin_check_source(void **state)
{
	static const char *const required[] = {
		"open", "prepare", "start", "read", "ack", "position_compare", "close"
	};
	ps_source_ops ops;
	ps_error err;
	char want[256];

	ps_error_clear(&err);
	assert_int_equal(ps_plugin_check_source(&ps_source_pg, &err), PS_OK);

	ops = ps_source_pg;
	ops.abi_version = PS_SOURCE_ABI_VERSION + 1;
	assert_int_equal(ps_plugin_check_source(&ops, &err), PS_EINVAL);
	snprintf(want, sizeof(want), "source plugin pg has ABI version %d, this build needs %d",
	         PS_SOURCE_ABI_VERSION + 1, PS_SOURCE_ABI_VERSION);
	assert_string_equal(err.message, want);
	ops.abi_version = 0;
	assert_int_equal(ps_plugin_check_source(&ops, &err), PS_EINVAL);

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		ops = ps_source_pg;
		switch (i) {
		case 0: ops.open = NULL; break;
		case 1: ops.prepare = NULL; break;
		case 2: ops.start = NULL; break;
		case 3: ops.read = NULL; break;
		case 4: ops.ack = NULL; break;
		case 5: ops.position_compare = NULL; break;
		default: ops.close = NULL; break;
		}
		ps_error_clear(&err);
		assert_int_equal(ps_plugin_check_source(&ops, &err), PS_EINVAL);
		snprintf(want, sizeof(want), "source plugin pg lacks required callback %s",
		         required[i]);
		assert_string_equal(err.message, want);
	}

	/* Optional callbacks may be NULL. */
	ops = ps_source_pg;
	ops.current_position = NULL;
	ops.position_distance = NULL;
	ops.drop = NULL;
	assert_int_equal(ps_plugin_check_source(&ops, &err), PS_OK);

	ops = ps_source_pg;
	ops.url_schemes = NULL;
	assert_int_equal(ps_plugin_check_source(&ops, &err), PS_EINVAL);
	assert_contains(err.message, "url_schemes");
}

static void test_plugin_check_sink(void **state)
{
	static const char *const required[] = {"open", "write", "flush", "close"};
	ps_sink_ops ops;
	ps_error err;
	char want[256];

	ps_error_clear(&err);
	assert_int_equal(ps_plugin_check_sink(&ps_sink_jsonl, &err), PS_OK);

	ops = ps_sink_jsonl;
	ops.abi_version = PS_SINK_ABI_VERSION + 1;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_EINVAL);
	snprintf(want, sizeof(want), "sink plugin jsonl has ABI version %d, this build needs %d",
	         PS_SINK_ABI_VERSION + 1, PS_SINK_ABI_VERSION);
	assert_string_equal(err.message, want);

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		ops = ps_sink_jsonl;
		switch (i) {
		case 0: ops.open = NULL; break;
		case 1: ops.write = NULL; break;
		case 2: ops.flush = NULL; break;
		default: ops.close = NULL; break;
		}
		ps_error_clear(&err);
		assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_EINVAL);
		snprintf(want, sizeof(want), "sink plugin jsonl lacks required callback %s",
		         required[i]);
		assert_string_equal(err.message, want);
	}

	/* Optional begin/commit may be NULL (jsonl has them for net changes). */
	ops = ps_sink_jsonl;
	ops.begin = NULL;
	ops.commit = NULL;
	ops.range = NULL;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_OK);
}

/* A plugin's own fault points: accepted once a registered plugin declares
 * them, listed in the refusal of an unknown one, and only under the
 * plugin's name. */
static void test_fault_points_of_plugins(void **state)
{
	static const char *const points[] = {"jsonl.before_write", NULL};
	static const char *const foreign[] = {"apply.mine", NULL};
	ps_sink_ops ops = ps_sink_jsonl;
	const ps_sink_ops *sinks[] = {&ops, NULL};
	ps_error err;

	(void)state;
	ps_error_clear(&err);
	fault_bad("jsonl.before_write:error", "unknown point 'jsonl.before_write'");
	ops.fault_points = points;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_OK);
	ps__plugin_set_tables_for_tests(NULL, NULL, sinks);
	assert_int_equal(fault_init_with("jsonl.before_write:error@2", &err), PS_OK);
	assert_int_equal(ps_fault_hit("jsonl.before_write", &err), PS_OK);
	assert_int_equal(ps_fault_hit("jsonl.before_write", &err), PS_EFAULT);
	fault_bad("jsonl.after_write:error", "known: source.read, apply.batch.before_commit, "
	          "apply.batch.after_commit, snapshot.unit.commit, checkpoint.after_flush, "
	          "jsonl.before_write");
	ps__plugin_set_tables_for_tests(NULL, NULL, NULL);
	/* the built-in Kafka sink declares its two */
	assert_int_equal(fault_init_with("kafka.txn.before_commit:error,kafka.producer.fatal:error",
	                                 &err), PS_OK);
	assert_int_equal(fault_init_with("", &err), PS_OK);
	ops.fault_points = foreign;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_EINVAL);
	assert_contains(err.message, "declares fault point 'apply.mine', which is not jsonl.<point>");
	unsetenv("PENSTOCK_FAULT");
}

/* Stand-ins to make a sink with only one of the checkpoint pair. */
static int fake_ck_load(ps_sink *sink, char **json, ps_error *err)
{
	*json = NULL;
	return PS_OK;
}

static int fake_ck_store(ps_sink *sink, const char *json, ps_error *err)
{
	return PS_OK;
}

static int fake_ck_delete(ps_sink *s, ps_error *err)
{
	return PS_OK;
}

static void test_plugin_checkpoint_pair(void **state)
{
	ps_sink_ops ops = ps_sink_jsonl;
	ps_error err;

	ps_error_clear(&err);
	ops.checkpoint_load = fake_ck_load;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_EINVAL);
	assert_contains(err.message, "checkpoint_load/_store");
	ops.checkpoint_load = NULL;
	ops.checkpoint_store = fake_ck_store;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_EINVAL);
	ops.checkpoint_load = fake_ck_load;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_EINVAL);
	ops.checkpoint_delete = fake_ck_delete;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_OK);
	/* checkpoint_kept only with the group (the Kafka sink has both) */
	assert_int_equal(ps_plugin_check_sink(&ps_sink_kafka, &err), PS_OK);
	assert_non_null(ps_sink_kafka.checkpoint_kept);
	ops = ps_sink_jsonl;
	ops.checkpoint_kept = ps_sink_kafka.checkpoint_kept;
	assert_int_equal(ps_plugin_check_sink(&ops, &err), PS_EINVAL);
	assert_contains(err.message, "checkpoint_kept needs them");
}


/* Stand-ins for the optional groups added with issue 13. */
static int fake_state_save(ps_sink *sink, char **json, ps_error *err)
{
	*json = NULL;
	return PS_OK;
}

static int fake_state_restore(ps_sink *sink, const char *json, ps_error *err)
{
	return PS_OK;
}

/* Every optional group is all or nothing, and a plugin's option
 * declarations must be usable: the registry refuses the plugin otherwise. */
static void test_plugin_groups_and_options(void **state)
{
	static const char *const no_choices[] = {NULL};
	static const char *const choices[] = {"a", "b", NULL};
	ps_source_ops src = ps_source_pg;
	ps_sink_ops snk = ps_sink_jsonl;
	ps_option_def opts[2] = {{0}};
	ps_error err;

	ps_error_clear(&err);
	src.mark = NULL;     /* retable and chunk_read without mark */
	assert_int_equal(ps_plugin_check_source(&src, &err), PS_EINVAL);
	assert_contains(err.message, "live table group");
	src.retable = NULL;
	src.chunk_read = NULL;
	/* selection_check and redescribe need the live table group (issue 15) */
	assert_int_equal(ps_plugin_check_source(&src, &err), PS_EINVAL);
	assert_contains(err.message, "selection_check and redescribe need the live table group");
	src.selection_check = NULL;
	src.redescribe = NULL;
	assert_int_equal(ps_plugin_check_source(&src, &err), PS_OK);

	snk.state_save = fake_state_save;
	snk.state_restore = NULL;   /* JSON lines has the pair (issue 15): one half of it */
	assert_int_equal(ps_plugin_check_sink(&snk, &err), PS_EINVAL);
	assert_contains(err.message, "state_save/_restore");
	snk.state_restore = fake_state_restore;
	assert_int_equal(ps_plugin_check_sink(&snk, &err), PS_OK);

	/* options: a known kind, a choice with choices and its default among
	 * them, integer bounds around the default */
	snk = ps_sink_jsonl;
	snk.options = opts;
	opts[0] = (ps_option_def){.name = "x", .kind = 99};
	assert_int_equal(ps_plugin_check_sink(&snk, &err), PS_EINVAL);
	assert_contains(err.message, "declares option x badly");
	opts[0] = (ps_option_def){.name = "x", .kind = PS_OPTION_CHOICE, .choices = no_choices};
	assert_int_equal(ps_plugin_check_sink(&snk, &err), PS_EINVAL);
	opts[0] = (ps_option_def){.name = "x", .kind = PS_OPTION_CHOICE, .choices = choices,
	                          .default_text = "c"};
	assert_int_equal(ps_plugin_check_sink(&snk, &err), PS_EINVAL);
	opts[0].default_text = "b";
	assert_int_equal(ps_plugin_check_sink(&snk, &err), PS_OK);
	opts[0] = (ps_option_def){.name = "n", .kind = PS_OPTION_INTEGER, .min = 1, .max = 10,
	                          .default_int = 0};
	assert_int_equal(ps_plugin_check_sink(&snk, &err), PS_EINVAL);
	opts[0].default_int = 5;
	assert_int_equal(ps_plugin_check_sink(&snk, &err), PS_OK);
}

/* A plugin records its engine's code and the class it gives it; the core
 * decides by that class, not by the message, and shows the code under its
 * kind. A class the plugin does not know leaves the core's rules. */
static void test_engine_errors(void **state)
{
	ps_error err;
	char key[PS_ENGINE_CODE_MAX];

	ps_error_set(&err, PS_ESERVER, "Deadlock found when trying to get lock");
	ps_error_set_engine(&err, "MySQL error", "1213", PS_ERRCLASS_CONFLICT);
	assert_string_equal(err.engine_code, "1213");
	assert_int_equal(ps_errclass_of(&err), PS_ERRCLASS_CONFLICT);
	assert_true(ps_error_retryable(&err));
	ps_error_engine_key(&err, key, sizeof(key));
	assert_string_equal(key, "mysql_error");

	ps_error_set(&err, PS_ECONNECT, "lost");
	ps_error_set_engine(&err, "Kafka error", "_UNKNOWN_THING", -1);
	assert_int_equal(ps_errclass_of(&err), PS_ERRCLASS_CONNECTION);   /* by code */
	ps_error_clear(&err);
	assert_string_equal(err.engine_code, "");
	ps_error_engine_key(&err, key, sizeof(key));
	assert_string_equal(key, "");
}

/* The URL parser knows schemes only from the syntaxes engines declare. */
static void test_url_syntaxes_from_the_registry(void **state)
{
	char list[256];
	const ps_url_syntax *s = ps_url_syntax_find("POSTGRES", 8);

	assert_non_null(s);
	assert_string_equal(s->canonical, "postgresql");
	assert_int_equal(s->default_port, 5432);
	s = ps_url_syntax_find("mariadb", 7);
	assert_non_null(s);
	assert_string_equal(s->canonical, "mysql");
	assert_null(ps_url_syntax_find("http", 4));
	ps_url_schemes_list(list, sizeof(list));
	assert_string_equal(list, "postgresql://, mysql://, sqlite:///, jsonl:// or kafka://");
}

static void test_plugin_lookup(void **state)
{
	ps_error err;

	ps_error_clear(&err);
	assert_ptr_equal(ps_plugin_source_for("postgresql", &err), &ps_source_pg);
	assert_ptr_equal(ps_plugin_sink_for("jsonl", &err), &ps_sink_jsonl);
	assert_int_equal(err.code, PS_OK);

	assert_ptr_equal(ps_plugin_sink_for("kafka", &err), &ps_sink_kafka);
	assert_ptr_equal(ps_plugin_sink_for("mysql", &err), &ps_sink_mysql);
	assert_int_equal(err.code, PS_OK);

	ps_error_clear(&err);
	assert_ptr_equal(ps_plugin_source_for("mysql", &err), &ps_source_mysql);
	assert_int_equal(err.code, PS_OK);
	assert_null(ps_plugin_source_for("kafka", &err));
	assert_int_equal(err.code, PS_EINVAL);
	assert_contains(err.message, "kafka:// sources are not supported by this build");
	assert_contains(err.message, "supported: postgresql://, mysql://");
	assert_null(ps_plugin_sink_for("", &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_fifo),
		cmocka_unit_test(test_queue_ring_grows_on_demand),
		cmocka_unit_test(test_queue_full_by_count),
		cmocka_unit_test(test_queue_full_by_bytes),
		cmocka_unit_test(test_queue_oversized_item),
		cmocka_unit_test(test_queue_close),
		cmocka_unit_test(test_queue_threads),
		cmocka_unit_test(test_queue_destroy_frees),
		cmocka_unit_test(test_cdc_transitions),
		cmocka_unit_test(test_cdc_names),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_identity_target_user),
		cmocka_unit_test(test_checkpoint_round_trip),
		cmocka_unit_test(test_checkpoint_none),
		cmocka_unit_test(test_checkpoint_tables_text),
		cmocka_unit_test(test_checkpoint_partition_units),
		cmocka_unit_test(test_checkpoint_corrupt),
		cmocka_unit_test(test_checkpoint_field_too_long),
		cmocka_unit_test(test_checkpoint_match),
		cmocka_unit_test(test_state_dir_ensure),
		cmocka_unit_test(test_state_dir_resolve),
		cmocka_unit_test(test_fault_nth),
		cmocka_unit_test(test_fault_two),
		cmocka_unit_test(test_fault_same_point_twice),
		cmocka_unit_test(test_fault_bad_values),
		cmocka_unit_test(test_fault_crash),
		cmocka_unit_test(test_plugin_check_source),
		cmocka_unit_test(test_plugin_check_sink),
		cmocka_unit_test(test_plugin_checkpoint_pair),
		cmocka_unit_test(test_fault_points_of_plugins),
		cmocka_unit_test(test_plugin_lookup),
		cmocka_unit_test(test_plugin_groups_and_options),
		cmocka_unit_test(test_engine_errors),
		cmocka_unit_test(test_url_syntaxes_from_the_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
