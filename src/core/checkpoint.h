/*
 * checkpoint.h — where a job stands, so that a restart resumes exactly there.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Content: job name, a fingerprint of the job definition (source identity,
 *    target identity, table set, each as its plugin tells it) with the parts
 *    it was computed from (so a mismatch can say what differs), the source
 *    server's identity, the CDC marker, the committed position, the source's
 *    and the target's engine state (opaque JSON objects their plugins own:
 *    PostgreSQL's slot and publication, a MySQL GTID list and table shapes,
 *    a producer's state), and the spec in force when the run began (no
 *    secrets: specs hold only the *names* of password variables and files).
 *    A checkpoint written before the engine states existed has none; its
 *    other fields are read as always.
 * 2. Place: non-transactional targets keep it in the state directory as
 *    <state_dir>/jobs/<job>/checkpoint.json, written atomically (write to a
 *    temporary file, fsync, rename, fsync the directory); directories are
 *    0700 and files 0600.
 * 3. CDC marker (seed 002): INITIAL -> ILSTART -> ILEND -> ILUPDATE ->
 *    TFSTART <-> TFEND, TFREDO when a range is processed again after a run
 *    that did not end cleanly, ERROR on an impossible transition. A
 *    checkpoint written while a run is in progress says TFSTART: events past
 *    its position may already be in the target. A clean stop writes TFEND:
 *    nothing was written past the position.
 */
#ifndef PS_CORE_CHECKPOINT_H
#define PS_CORE_CHECKPOINT_H

#include <stdbool.h>

#include "core/spec.h"
#include "penstock/tabledef.h"
#include "penstock/change.h"
#include "penstock/error.h"

typedef enum ps_cdc_state {
	PS_CDC_INITIAL = 0,
	PS_CDC_ILSTART,
	PS_CDC_ILEND,
	PS_CDC_ILUPDATE,
	PS_CDC_TFSTART,
	PS_CDC_TFEND,
	PS_CDC_TFREDO,
	PS_CDC_ERROR
} ps_cdc_state;

const char *ps_cdc_state_name(int state);
int ps_cdc_state_parse(const char *name, int *out);
/* The state after `from` when `to` is requested: `to` when allowed, else
 * PS_CDC_ERROR. */
int ps_cdc_transition(int from, int to);

/* What a job definition is, for the fingerprint. */
typedef struct ps_identity {
	char source[512];     /* as the source plugin tells it, e.g.
	                         "postgresql://host:port/dbname" (no user, no secret) */
	char target[1536];    /* as the sink plugin tells it, e.g. the redacted URL */
	char tables[2048];    /* "include=a,b;exclude=c" */
	char fingerprint[17]; /* 64-bit FNV-1a of the three, hex */
} ps_identity;

void ps_identity_from_spec(ps_identity *id, const ps_spec *spec);

/* Replaces *slot with a copy of text (NULL clears it); PS_ENOMEM on failure
 * (the old value is kept). For source_state and target_state. */
int ps_checkpoint_set_text(char **slot, const char *text);

/* Initial-load progress of one copy unit: a key range of a table. */
typedef struct ps_ck_unit {
	bool done;                      /* its target transaction committed */
	char point[PS_POSITION_MAX];    /* snapshot point it was copied at */
	long long rows;                 /* rows copied */
} ps_ck_unit;

/* Initial-load progress of one table. Unit i covers
 * bounds[i-1] <= key < bounds[i] (open at both ends); nunits = nbounds + 1.
 * A partitioned table's units may instead be its partitions (issue 14):
 * then parts[i] names unit i's partition ("schema.name"), nbounds is 0
 * and nunits the number of partitions. */
typedef struct ps_ck_table {
	char *schema, *name;
	bool created;                   /* penstock created it in the target */
	bool finished;                  /* keys and indexes built (table_finish) */
	long long estimated_rows;
	size_t nbounds;
	ps_key_bound *bounds;
	size_t nunits;
	ps_ck_unit *units;
	char **parts;                   /* NULL, or nunits partition names */
} ps_ck_table;

typedef struct ps_checkpoint {
	char job[64];
	ps_identity identity;
	char source_server_id[64];   /* PG system identifier; "" if unknown */
	int cdc_state;               /* ps_cdc_state */
	char position[PS_POSITION_MAX];
	char *source_state;          /* malloc'd JSON object text owned by the source
	                                plugin (source.h), or NULL */
	char *target_state;          /* the same for the sink (sink.h state_save) */
	char *spec_json;             /* malloc'd canonical spec, may be NULL */
	char range_from[PS_POSITION_MAX]; /* the last processing range a bounded run */
	char range_to[PS_POSITION_MAX];   /* finished, (from, to]; "" when none */
	char updated_at[32];         /* ISO 8601 UTC, set by store */
	size_t ntables;              /* initial load: per table progress; 0 outside */
	ps_ck_table *tables;
} ps_checkpoint;

/* Frees spec_json, the engine states and the tables; the struct itself
 * stays usable (zeroed there). */
void ps_checkpoint_free(ps_checkpoint *ck);
void ps_checkpoint_clear_tables(ps_checkpoint *ck);

/* The checkpoint as JSON text (malloc'd, NULL on OOM); stamps updated_at.
 * Parse it back with origin naming where it came from in messages. */
char *ps_checkpoint_to_text(ps_checkpoint *ck);
int ps_checkpoint_from_text(ps_checkpoint *out, const char *text, const char *origin,
                            ps_error *err);

/* mkdir -p with mode 0700; tightens an existing directory that is group- or
 * world-accessible (and says so in the log). */
int ps_state_dir_ensure(const char *dir, ps_error *err);
/* Resolves the state directory: explicit, else $PENSTOCK_STATE_DIR, else
 * $HOME/.local/state/penstock. */
int ps_state_dir_resolve(char *buf, size_t len, const char *explicit_dir, ps_error *err);

/* *found = false and PS_OK when there is no checkpoint. A file that exists
 * but cannot be parsed is PS_ECHECKPOINT naming the file. */
int ps_checkpoint_load(ps_checkpoint *out, bool *found, const char *state_dir,
                       const char *job, ps_error *err);
int ps_checkpoint_store(ps_checkpoint *ck, const char *state_dir, ps_error *err);
int ps_checkpoint_remove(const char *state_dir, const char *job, ps_error *err);
void ps_checkpoint_path(char *buf, size_t len, const char *state_dir, const char *job);

/* --- where the checkpoint lives (sink.h: transactional targets keep it in
 * the target, the others in the state directory) ------------------------- */
struct ps_snk;
/* Loads this job's checkpoint from the target when the sink keeps
 * checkpoints, else from the state directory. */
int ps_checkpoint_fetch(ps_checkpoint *out, bool *found, struct ps_snk *snk,
                        const char *state_dir, const char *job, ps_error *err);
/* Makes the data written to the sink and the checkpoint durable together:
 * transactional sink: store in the open target transaction, then flush
 * (commit); otherwise flush, then write the file. */
int ps_checkpoint_commit(ps_checkpoint *ck, struct ps_snk *snk, const char *state_dir,
                         ps_error *err);
/* Removes the job's checkpoint wherever it is (committing in the target). */
int ps_checkpoint_discard(struct ps_snk *snk, const char *state_dir, const char *job,
                          ps_error *err);

/* PS_OK when ck was written for this identity; else PS_ECHECKPOINT with a
 * message naming each part that differs and what to do. */
int ps_checkpoint_match(const ps_checkpoint *ck, const ps_identity *id, ps_error *err);

#endif
