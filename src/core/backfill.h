/*
 * backfill.h — tables added to and removed from a running job.
 *
 * The server changes a running job's table patterns through its live
 * controls (pipeline.h ps_live). The reader thread notices, asks the source
 * to deliver the new set of tables (source.h retable), which writes a
 * marker into the log in the same source transaction; the applier thread
 * makes the change take effect when the stream brings it that marker, so
 * that the change has a clear position in the log:
 *
 *   - a removed table's changes before the marker are applied, none after
 *     it; its target data is left alone;
 *   - an added table's changes come after the marker. A job with a target
 *     copy (migration, sync) creates it in the target as a load would and
 *     backfills it in key-ordered chunks between watermarks while the other
 *     tables keep streaming (backfill.c); a cdc job only applies its changes.
 *
 * The tables in force and the unfinished backfills are part of the
 * checkpoint (in its spec, see backfill.c), so a restart resumes both.
 *
 * Threads: ps_backfill_reader on the reader thread (it uses the source),
 * everything else on the applier thread (it uses the sink, the checkpoint
 * and the identity); they meet under the backfill's own mutex.
 */
#ifndef PS_CORE_BACKFILL_H
#define PS_CORE_BACKFILL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "core/checkpoint.h"
#include "core/pipeline.h"
#include "core/plugin.h"
#include "core/ratelimit.h"
#include "core/status.h"

typedef struct ps_backfill ps_backfill;

typedef struct ps_backfill_config {
	const ps_spec *spec;          /* the run's spec: name, type, target table options */
	ps_src *src;                  /* reader thread (and ps_backfill_begin) */
	ps_snk *snk;                  /* applier thread */
	ps_live *live;                /* the patterns asked for; busy */
	ps_checkpoint *ck;            /* applier: its identity and spec follow the tables */
	ps_identity *identity;        /* applier: the run's identity, kept equal to ck's */
	ps_ratelimit *rl;             /* chunk rows take from the apply path's bucket */
	atomic_int *stop;
	ps_run_status *status;        /* optional: backfill progress among the tables */
	/* Optional: a table change took effect, or a backfill ended (a sentence). */
	void (*on_event)(const char *text, void *payload);
	void *payload;
} ps_backfill_config;

int ps_backfill_new(ps_backfill **out, const ps_backfill_config *cfg, ps_error *err);
void ps_backfill_free(ps_backfill *bf);

/*
 * Whether a checkpoint whose fingerprint differs from the job's may still be
 * resumed: only the tables differ, its spec says which tables were in force,
 * and the initial load is behind it. ps_backfill_begin then applies the
 * difference.
 */
bool ps_backfill_tables_only(const ps_checkpoint *ck, const ps_identity *id);

/*
 * Before streaming, on the applier thread, with the source prepared:
 * compares the tables in force at the checkpoint (ck_spec_json, its spec;
 * NULL when starting afresh) with the spec's, applies the difference (a
 * removed table's changes after the checkpoint are not applied; an added
 * table is prepared and backfilled) and resumes unfinished backfills. Sets
 * the checkpoint's identity and spec for the tables in force.
 */
int ps_backfill_begin(ps_backfill *bf, const char *ck_spec_json, bool resuming, ps_error *err);

/* Reader thread, between transactions: starts a table change that was
 * asked for; reads the next chunk of a backfill that wants one. */
int ps_backfill_reader(ps_backfill *bf, ps_error *err);

/* Applier thread. */
typedef enum ps_backfill_route {
	PS_BF_APPLY = 0,   /* apply as usual */
	PS_BF_REDO,        /* apply idempotently (reprocessing): its table is being backfilled */
	PS_BF_SKIP         /* do not apply: its table is no longer selected */
} ps_backfill_route;

/* How to apply a change of the stream (records the keys it touches while a
 * chunk's window is open). */
int ps_backfill_route_change(ps_backfill *bf, const ps_change *c);
/* Whether c is a penstock marker (never written to the sink). */
bool ps_backfill_is_mark(const ps_change *c);
/* A marker reached the applier inside the source transaction txn (as at
 * BEGIN): a table change takes effect, a chunk's window opens or closes. */
int ps_backfill_on_mark(ps_backfill *bf, const ps_txn *txn, const ps_change *c, ps_error *err);

/* A table's definition changed in the stream (source.h PS_READ_TABLE), inside
 * source transaction txn (as at BEGIN): the sink follows when the table is in
 * force, and a backfill of it follows the new def (backfill.c note 8); may
 * take tc->def. */
int ps_backfill_on_table(ps_backfill *bf, const ps_txn *txn, ps_table_change *tc,
                         ps_error *err);
/* Reader thread: a PS_READ_TABLE item is on its way; a table shown under a
 * new name makes the next selection check come at once (note 7). */
void ps_backfill_table_seen(ps_backfill *bf, const ps_table_change *tc);

#endif
