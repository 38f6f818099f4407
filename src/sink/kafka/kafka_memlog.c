/*
 * kafka_memlog.c — the in-memory Kafka cluster for tests (see
 * kafka_memlog.h for what it models).
 *
 * NOTES ON THE DESIGN
 *
 *  1. A transactional id has an epoch and at most one open transaction (a
 *     number and the partitions it wrote). A producer handle remembers the
 *     epoch it opened at; a call made with an older epoch is fenced.
 *  2. A record's visibility is its state: open, committed or aborted. The
 *     last stable offset of a partition is the offset of its first open
 *     record; read_committed readers see the committed records before it.
 *  3. Delivery is immediate: a produce that succeeds is acknowledged at
 *     once (latency 0) through the config's on_delivery.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "sink/kafka/kafka_memlog.h"

typedef struct mem_part {
	kf_memrec *recs;
	size_t n, cap;
	kf_memrec *view;          /* read_committed copy handed to readers */
} mem_part;

typedef struct mem_topic {
	char *name;
	int nparts;
	mem_part *parts;
} mem_topic;

typedef struct mem_tid {
	char *id;
	int epoch;
	uint64_t open_txn;        /* 0: none open */
} mem_tid;

typedef struct mem_inject {
	char op[16];
	kf_errkind kind;
	int code;
	int count;
} mem_inject;

struct kf_memstore {
	bool aborted_visible;
	int default_partitions;
	mem_topic *topics;
	size_t ntopics;
	mem_tid *tids;
	size_t ntids;
	uint64_t next_txn;
	bool crashing;            /* producers end nothing themselves (a kill -9) */
	mem_inject inject[8];
	size_t ninject;
	uint64_t committed, aborted;
	uint32_t rr;              /* round robin for records without a key */
};

struct kf_log {
	kf_memstore *s;
	char *tid;                /* NULL: idempotent */
	int epoch;
	bool in_txn;
	uint64_t txn;
	void (*on_delivery)(void *, int, size_t, int64_t);
	void *opaque;
	bool fatal;
};

static kf_memstore *g_store;

/* --- the store ------------------------------------------------------------------ */

kf_memstore *kf_memstore_new(bool aborted_visible, int default_partitions)
{
	kf_memstore *s = calloc(1, sizeof(*s));

	if (s) {
		s->aborted_visible = aborted_visible;
		s->default_partitions = default_partitions > 0 ? default_partitions : 1;
		s->next_txn = 1;
	}
	return s;
}

void kf_memstore_free(kf_memstore *s)
{
	if (!s)
		return;
	for (size_t t = 0; t < s->ntopics; t++) {
		for (int p = 0; p < s->topics[t].nparts; p++) {
			mem_part *mp = &s->topics[t].parts[p];
			for (size_t i = 0; i < mp->n; i++) {
				free(mp->recs[i].key);
				free(mp->recs[i].value);
				free(mp->recs[i].batch);
			}
			free(mp->recs);
			free(mp->view);
		}
		free(s->topics[t].parts);
		free(s->topics[t].name);
	}
	free(s->topics);
	for (size_t i = 0; i < s->ntids; i++)
		free(s->tids[i].id);
	free(s->tids);
	if (g_store == s)
		g_store = NULL;
	free(s);
}

void kf_memstore_use(kf_memstore *s)
{
	g_store = s;
}

void kf_memstore_crash(kf_memstore *s, bool on)
{
	s->crashing = on;
}

void kf_memstore_inject(kf_memstore *s, const char *op, kf_errkind kind, int code, int count)
{
	if (s->ninject == sizeof(s->inject) / sizeof(s->inject[0]))
		return;
	snprintf(s->inject[s->ninject].op, sizeof(s->inject[0].op), "%s", op);
	s->inject[s->ninject].kind = kind;
	s->inject[s->ninject].code = code;
	s->inject[s->ninject].count = count;
	s->ninject++;
}

void kf_memstore_counts(kf_memstore *s, uint64_t *committed, uint64_t *aborted)
{
	*committed = s->committed;
	*aborted = s->aborted;
}

static mem_topic *topic_find(kf_memstore *s, const char *name)
{
	for (size_t i = 0; i < s->ntopics; i++)
		if (strcmp(s->topics[i].name, name) == 0)
			return &s->topics[i];
	return NULL;
}

static mem_topic *topic_get(kf_memstore *s, const char *name, int nparts)
{
	mem_topic *t = topic_find(s, name), *more;

	if (t)
		return t;
	more = realloc(s->topics, (s->ntopics + 1) * sizeof(*more));
	if (!more)
		return NULL;
	s->topics = more;
	t = &s->topics[s->ntopics];
	t->nparts = nparts > 0 ? nparts : s->default_partitions;
	t->name = strdup(name);
	t->parts = calloc((size_t)t->nparts, sizeof(*t->parts));
	if (!t->name || !t->parts) {
		free(t->name);
		free(t->parts);
		return NULL;
	}
	s->ntopics++;
	return t;
}

int kf_memstore_partitions(kf_memstore *s, const char *topic)
{
	mem_topic *t = topic_find(s, topic);

	return t ? t->nparts : 0;
}

const char *kf_memstore_topic(kf_memstore *s, size_t i)
{
	return i < s->ntopics ? s->topics[i].name : NULL;
}

size_t kf_memstore_read(kf_memstore *s, const char *topic, int partition, bool read_committed,
                        const kf_memrec **recs)
{
	mem_topic *t = topic_find(s, topic);
	mem_part *mp;
	size_t n = 0;

	*recs = NULL;
	if (!t || partition < 0 || partition >= t->nparts)
		return 0;
	mp = &t->parts[partition];
	if (!read_committed || s->aborted_visible) {
		*recs = mp->recs;
		return mp->n;
	}
	free(mp->view);
	mp->view = malloc((mp->n + 1) * sizeof(*mp->view));
	if (!mp->view)
		return 0;
	for (size_t i = 0; i < mp->n; i++) {
		if (mp->recs[i].state == KF_REC_OPEN)
			break;   /* the last stable offset (note 2) */
		if (mp->recs[i].state == KF_REC_COMMITTED)
			mp->view[n++] = mp->recs[i];
	}
	*recs = mp->view;
	return n;
}

static mem_tid *tid_get(kf_memstore *s, const char *id)
{
	mem_tid *more;

	for (size_t i = 0; i < s->ntids; i++)
		if (strcmp(s->tids[i].id, id) == 0)
			return &s->tids[i];
	more = realloc(s->tids, (s->ntids + 1) * sizeof(*more));
	if (!more)
		return NULL;
	s->tids = more;
	memset(&s->tids[s->ntids], 0, sizeof(*s->tids));
	s->tids[s->ntids].id = strdup(id);
	if (!s->tids[s->ntids].id)
		return NULL;
	return &s->tids[s->ntids++];
}

/* Ends transaction txn everywhere: committed or aborted. */
static void txn_end(kf_memstore *s, uint64_t txn, bool commit)
{
	for (size_t t = 0; t < s->ntopics; t++)
		for (int p = 0; p < s->topics[t].nparts; p++) {
			mem_part *mp = &s->topics[t].parts[p];
			for (size_t i = 0; i < mp->n; i++)
				if (mp->recs[i].txn == txn && mp->recs[i].state == KF_REC_OPEN)
					mp->recs[i].state = commit ? KF_REC_COMMITTED : KF_REC_ABORTED;
		}
	if (commit)
		s->committed++;
	else
		s->aborted++;
}

/* --- Kafka's murmur2 ------------------------------------------------------------ */

int32_t kf_murmur2_partition(const void *key, size_t len, int partitions)
{
	const unsigned char *d = key;
	const uint32_t m = 0x5bd1e995;
	uint32_t h = 0x9747b28cu ^ (uint32_t)len;
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		uint32_t k = (uint32_t)d[i] | (uint32_t)d[i + 1] << 8 | (uint32_t)d[i + 2] << 16 |
		             (uint32_t)d[i + 3] << 24;
		k *= m;
		k ^= k >> 24;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len & 3) {
	case 3: h ^= (uint32_t)d[i + 2] << 16; /* fall through */
	case 2: h ^= (uint32_t)d[i + 1] << 8;  /* fall through */
	case 1: h ^= d[i]; h *= m;
	default: break;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return (int32_t)((h & 0x7fffffffu) % (uint32_t)partitions);
}

/* --- the producer ------------------------------------------------------------- */

static kf_errkind injected(kf_memstore *s, const char *op, ps_error *err)
{
	for (size_t i = 0; i < s->ninject; i++) {
		mem_inject *in = &s->inject[i];
		if (in->count > 0 && strcmp(in->op, op) == 0) {
			in->count--;
			return ps__kafka_error(err, in->kind, in->code, op, "injected by the test");
		}
	}
	return KF_OK;
}

/* A call by l: refused when l was fenced, crashed or went fatal. */
static kf_errkind usable(kf_log *l, const char *op, ps_error *err)
{
	mem_tid *t;

	if (l->fatal)
		return ps__kafka_error(err, KF_FATAL, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, op,
		                       "the producer is in a fatal state");
	if (l->tid) {
		t = tid_get(l->s, l->tid);
		if (t && t->epoch != l->epoch)
			return ps__kafka_error(err, KF_FENCED, RD_KAFKA_RESP_ERR__FENCED, op,
			                       "producer fenced by a newer instance");
	}
	return injected(l->s, op, err);
}

static kf_errkind mem_open(kf_log **out, const kf_log_config *cfg, ps_error *err)
{
	kf_memstore *s = g_store;
	kf_log *l;
	kf_errkind kind;
	mem_tid *t;

	*out = NULL;
	if (!s) {
		ps_error_set(err, PS_EINVAL, "no in-memory Kafka store in use");
		return KF_PERMANENT;
	}
	kind = injected(s, "open", err);
	if (kind != KF_OK)
		return kind;
	l = calloc(1, sizeof(*l));
	if (!l || (cfg->transactional_id && !(l->tid = strdup(cfg->transactional_id)))) {
		free(l);
		ps_error_set(err, PS_ENOMEM, "out of memory");
		return KF_PERMANENT;
	}
	l->s = s;
	l->on_delivery = cfg->on_delivery;
	l->opaque = cfg->opaque;
	if (l->tid) {
		/* InitProducerId: bump the epoch, end what the last one left open */
		t = tid_get(s, l->tid);
		if (!t) {
			free(l->tid);
			free(l);
			ps_error_set(err, PS_ENOMEM, "out of memory");
			return KF_PERMANENT;
		}
		if (t->open_txn) {
			txn_end(s, t->open_txn, false);
			t->open_txn = 0;
		}
		l->epoch = ++t->epoch;
	}
	*out = l;
	return KF_OK;
}

static kf_errkind mem_ensure_topic(kf_log *l, const char *topic, int partitions, int replication,
                                   bool compacted, char *note, size_t note_len, ps_error *err)
{
	(void)replication;
	(void)compacted;
	if (note_len)
		note[0] = '\0';
	if (!topic_get(l->s, topic, partitions)) {
		ps_error_set(err, PS_ENOMEM, "out of memory");
		return KF_PERMANENT;
	}
	return KF_OK;
}

static kf_errkind mem_begin(kf_log *l, ps_error *err)
{
	kf_errkind kind = usable(l, "begin", err);

	if (kind != KF_OK)
		return kind;
	if (l->in_txn) {
		ps_error_set(err, PS_EINVAL, "a transaction is already open");
		return KF_PERMANENT;
	}
	l->in_txn = true;
	l->txn = l->s->next_txn++;
	tid_get(l->s, l->tid)->open_txn = l->txn;
	return KF_OK;
}

static char *dup_bytes(const void *p, size_t n)
{
	char *c = malloc(n + 1);

	if (c) {
		memcpy(c, p, n);
		c[n] = '\0';
	}
	return c;
}

static kf_errkind mem_produce(kf_log *l, const char *topic, int32_t partition, const void *key,
                              size_t klen, const void *value, size_t vlen,
                              const kf_header *headers, size_t nheaders, ps_error *err)
{
	kf_errkind kind = usable(l, "produce", err);
	mem_topic *t;
	mem_part *mp;
	kf_memrec r = {0};

	if (kind != KF_OK)
		return kind;
	if (l->tid && !l->in_txn) {
		ps_error_set(err, PS_EINVAL, "produce outside a transaction");
		return KF_PERMANENT;
	}
	t = topic_get(l->s, topic, -1);
	if (!t)
		goto oom;
	if (partition < 0)
		partition = key ? kf_murmur2_partition(key, klen, t->nparts)
		                : (int32_t)(l->s->rr++ % (uint32_t)t->nparts);
	if (partition >= t->nparts) {
		ps_error_set(err, PS_EINVAL, "partition %d of %s does not exist", (int)partition, topic);
		return KF_PERMANENT;
	}
	mp = &t->parts[partition];
	if (mp->n == mp->cap) {
		size_t cap = mp->cap ? mp->cap * 2 : 64;
		kf_memrec *more = realloc(mp->recs, cap * sizeof(*more));
		if (!more)
			goto oom;
		mp->recs = more;
		mp->cap = cap;
	}
	if ((key && !(r.key = dup_bytes(key, klen))) || (value && !(r.value = dup_bytes(value, vlen))))
		goto oom_rec;
	for (size_t i = 0; i < nheaders; i++)
		if (strcmp(headers[i].name, "penstock.batch") == 0 &&
		    !(r.batch = dup_bytes(headers[i].value, headers[i].len)))
			goto oom_rec;
	r.klen = key ? klen : 0;
	r.vlen = value ? vlen : 0;
	r.txn = l->tid ? l->txn : 0;
	r.state = l->tid ? KF_REC_OPEN : KF_REC_COMMITTED;
	mp->recs[mp->n++] = r;
	if (l->on_delivery)
		l->on_delivery(l->opaque, 0, r.klen + r.vlen, 0);
	return KF_OK;
oom_rec:
	free(r.key);
	free(r.value);
	free(r.batch);
oom:
	ps_error_set(err, PS_ENOMEM, "out of memory");
	return KF_PERMANENT;
}

static kf_errkind mem_flush(kf_log *l, ps_error *err)
{
	return usable(l, "flush", err);
}

static kf_errkind mem_end(kf_log *l, bool commit, ps_error *err)
{
	kf_errkind kind = usable(l, commit ? "commit" : "abort", err);

	if (kind != KF_OK)
		return kind;
	if (!l->in_txn) {
		ps_error_set(err, PS_EINVAL, "no transaction is open");
		return KF_PERMANENT;
	}
	txn_end(l->s, l->txn, commit);
	tid_get(l->s, l->tid)->open_txn = 0;
	l->in_txn = false;
	return KF_OK;
}

static kf_errkind mem_commit(kf_log *l, ps_error *err)
{
	return mem_end(l, true, err);
}

static kf_errkind mem_abort(kf_log *l, ps_error *err)
{
	if (l->s->crashing)   /* a killed process sends no EndTxn */
		return ps__kafka_error(err, KF_FATAL, RD_KAFKA_RESP_ERR__DESTROY, "abort",
		                       "the process was killed (test)");
	return mem_end(l, false, err);
}

static void mem_poll(kf_log *l)
{
	(void)l;
}

static kf_errkind mem_read_last(kf_log *l, const char *topic, int32_t partition, const void *key,
                                size_t klen, char **value, size_t *vlen, ps_error *err)
{
	const kf_memrec *recs;
	size_t n = kf_memstore_read(l->s, topic, partition, true, &recs);
	const kf_memrec *last = NULL;

	(void)err;
	*value = NULL;
	*vlen = 0;
	for (size_t i = 0; i < n; i++)
		if (recs[i].key && recs[i].klen == klen && memcmp(recs[i].key, key, klen) == 0)
			last = &recs[i];
	if (last && last->value) {
		*value = dup_bytes(last->value, last->vlen);
		*vlen = last->vlen;
	}
	return KF_OK;
}

static void mem_make_fatal(kf_log *l, const char *reason)
{
	(void)reason;
	l->fatal = true;
}

static void mem_close(kf_log *l)
{
	if (!l)
		return;
	free(l->tid);
	free(l);
}

const kf_log_ops ps__kafka_memlog = {
	.name = "memory",
	.open = mem_open,
	.ensure_topic = mem_ensure_topic,
	.begin = mem_begin,
	.produce = mem_produce,
	.flush = mem_flush,
	.commit = mem_commit,
	.abort = mem_abort,
	.poll = mem_poll,
	.read_last = mem_read_last,
	.make_fatal = mem_make_fatal,
	.close = mem_close,
};
