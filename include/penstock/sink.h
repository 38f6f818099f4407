/*
 * penstock/sink.h — the contract of a sink (target) plugin.
 *
 * A sink receives the items of change.h in commit order on exactly one thread,
 * the applier, which owns its connections:
 *
 *     open ─► { begin ─► write* ─► commit }* ─► flush ─► ... ─► close
 *
 * Invariants a sink must keep:
 *   1. After flush returns 0, everything written so far survives a crash of
 *      penstock and of the machine (fsync for files, COMMIT for databases).
 *   2. A value of kind PS_VALUE_UNCHANGED is never written as a value.
 *   3. When txn->reprocessing is set, applying the transaction again must not
 *      duplicate it (transactional sinks) or must mark it (event sinks).
 *
 * Checkpoints: a transactional sink implements checkpoint_load/_store and
 * keeps the checkpoint in the target, written in the same target transaction
 * as the data it describes. Other sinks leave them NULL; the core then keeps
 * the checkpoint in the state directory, written after flush.
 */
#ifndef PENSTOCK_SINK_H
#define PENSTOCK_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "penstock/change.h"
#include "penstock/error.h"

#define PS_SINK_ABI_VERSION 1

typedef struct ps_sink ps_sink; /* defined by each plugin */

/* Borrowed for the duration of open only: a sink copies what it keeps. */
typedef struct ps_sink_config {
	const char *job_name;
	const char *url;          /* as in the spec; never holds a password */
	const char *password;     /* NULL, or from password_env/_file: never log */
	const char *connector;    /* source's envelope name, e.g. "postgresql" */
	const char *source_db;    /* source database name, for envelopes */
} ps_sink_config;

typedef struct ps_sink_ops {
	int abi_version;                 /* PS_SINK_ABI_VERSION */
	const char *name;                /* plugin name, e.g. "jsonl" */
	const char *const *url_schemes;  /* NULL-terminated */

	/* Required. Opens the target (creates the directory, connects). */
	int (*open)(ps_sink **out, const ps_sink_config *cfg, ps_error *err);
	/* Optional. A source transaction starts. */
	int (*begin)(ps_sink *sink, const ps_txn *txn, ps_error *err);
	/* Required. One change of the current transaction; txn as at BEGIN. */
	int (*write)(ps_sink *sink, const ps_txn *txn, const ps_change *change,
	             ps_error *err);
	/* Optional. The source transaction committed at txn->position. */
	int (*commit)(ps_sink *sink, const ps_txn *txn, ps_error *err);
	/* Required. Make everything written so far durable (invariant 1). */
	int (*flush)(ps_sink *sink, ps_error *err);
	/* Optional pair: checkpoint kept in the target. load sets *json to a
	 * malloc'd string or NULL when there is none. store happens inside the
	 * open target transaction, before flush commits it. */
	int (*checkpoint_load)(ps_sink *sink, char **json, ps_error *err);
	int (*checkpoint_store)(ps_sink *sink, const char *json, ps_error *err);
	/* Required. Frees everything; does not flush; sink may be NULL. */
	void (*close)(ps_sink *sink);
} ps_sink_ops;

#endif
