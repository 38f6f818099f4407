/*
 * envelope_schema.c — the schema-change event of the event sinks (issue 15;
 * docs/events.md "Schema changes"): one JSON line, like a change event but
 * with op "s", saying a table's definition changed and what its columns
 * are from the next event on.
 *
 *   {"before":null,"after":null,"op":"s","ts_ms":N,
 *    "source":{"connector":..,"db":..,"schema":..,"table":..,"lsn":N,
 *              "txId":N,"ts_ms":N},
 *    "schema":{"columns":[{"name":..,"type":..,"ordinal":N,"key":B,
 *                          "nullable":B,"default":..}],
 *              "changes":[{"change":"added"|"dropped"|"renamed"|"type",
 *                          "column":..,...}],   (added: "fill", what older rows
 *                          hold, when known; else the rows come again)
 *              "partitions":[..]},
 *    ["reprocessing":true]}
 *
 * A shape (ps_envelope_shape) is what a consumer was last told of a table:
 * column names, type ids and modifiers and, when the source gave them,
 * ordinals and type names. The event's changes compare the new columns with
 * it by ordinal where both have one (a renamed column keeps it), else by
 * name. Existing event lines are unchanged: this is a new kind of line.
 * Written with jansson: it is rare, not on the hot path.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sink/envelope.h"

void ps_envelope_shape_clear(ps_envelope_shape *sh)
{
	for (int i = 0; i < sh->n; i++) {
		free(sh->cols[i].name);
		free(sh->cols[i].type);
	}
	free(sh->cols);
	memset(sh, 0, sizeof(*sh));
}

int ps_envelope_shape_of(ps_envelope_shape *sh, const ps_table *t, const ps_table_def *def)
{
	memset(sh, 0, sizeof(*sh));
	sh->cols = calloc((size_t)t->ncolumns + 1, sizeof(*sh->cols));
	if (!sh->cols)
		return PS_ENOMEM;
	for (int i = 0; i < t->ncolumns; i++) {
		ps_envelope_shape_col *c = &sh->cols[i];
		const ps_column_def *cd = def && def->table->ncolumns == t->ncolumns ? &def->columns[i]
		                                                                      : NULL;

		c->name = strdup(t->columns[i].name ? t->columns[i].name : "");
		c->type = cd && cd->sql_type ? strdup(cd->sql_type) : NULL;
		c->type_id = t->columns[i].type_id;
		c->type_mod = t->columns[i].type_mod;
		c->ordinal = cd ? cd->ordinal : 0;
		sh->n = i + 1;
		if (!c->name || (cd && cd->sql_type && !c->type))
			return PS_ENOMEM;
	}
	return PS_OK;
}

bool ps_envelope_shape_equal(const ps_envelope_shape *a, const ps_envelope_shape *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->cols[i].name, b->cols[i].name) != 0 ||
		    a->cols[i].type_id != b->cols[i].type_id || a->cols[i].type_mod != b->cols[i].type_mod)
			return false;
	return true;
}

json_t *ps_envelope_shape_json(const ps_envelope_shape *sh)
{
	json_t *a = json_array();

	for (int i = 0; a && i < sh->n; i++) {
		const ps_envelope_shape_col *c = &sh->cols[i];
		json_t *o = json_pack("{s:s, s:I, s:i, s:i}", "n", c->name, "id", (json_int_t)c->type_id,
		                      "mod", (int)c->type_mod, "o", c->ordinal);
		if (o && c->type)
			json_object_set_new(o, "t", json_string(c->type));
		json_array_append_new(a, o);
	}
	return a;
}

int ps_envelope_shape_from_json(ps_envelope_shape *sh, json_t *a)
{
	json_t *v;
	size_t i;

	memset(sh, 0, sizeof(*sh));
	if (!json_is_array(a))
		return PS_EPROTO;
	sh->cols = calloc(json_array_size(a) + 1, sizeof(*sh->cols));
	if (!sh->cols)
		return PS_ENOMEM;
	json_array_foreach(a, i, v) {
		ps_envelope_shape_col *c = &sh->cols[i];
		const char *type = json_string_value(json_object_get(v, "t"));

		c->name = strdup(json_string_value(json_object_get(v, "n")) ?
		                 json_string_value(json_object_get(v, "n")) : "");
		c->type = type ? strdup(type) : NULL;
		c->type_id = (uint32_t)json_integer_value(json_object_get(v, "id"));
		c->type_mod = (int32_t)json_integer_value(json_object_get(v, "mod"));
		c->ordinal = (int)json_integer_value(json_object_get(v, "o"));
		sh->n = (int)i + 1;
		if (!c->name || (type && !c->type))
			return PS_ENOMEM;
	}
	return PS_OK;
}

/* The previous column that is new column i: same ordinal, else same name. */
static int previous_of(const ps_envelope_shape *prev, const ps_envelope_shape *now, int i,
                       const bool *taken)
{
	for (int j = 0; now->cols[i].ordinal > 0 && j < prev->n; j++)
		if (!taken[j] && prev->cols[j].ordinal == now->cols[i].ordinal)
			return j;
	for (int j = 0; j < prev->n; j++)
		if (!taken[j] && strcmp(prev->cols[j].name, now->cols[i].name) == 0 &&
		    !(now->cols[i].ordinal > 0 && prev->cols[j].ordinal > 0))
			return j;
	return -1;
}

static json_t *type_json(const ps_envelope_shape_col *c)
{
	return c->type ? json_string(c->type) : json_integer(c->type_id);
}

/* What rows older than added column i hold in it ("fill"): its value, null,
 * or nothing when only the source can tell (the rows come again). */
static void put_fill(json_t *o, const ps_table_def *def, int i)
{
	const ps_column_def *cd;

	if (!o || !def || i >= def->table->ncolumns)
		return;
	cd = &def->columns[i];
	if (cd->fill == PS_FILL_VALUE && cd->fill_value)
		json_object_set_new(o, "fill", json_string(cd->fill_value));
	else if (cd->fill == PS_FILL_NULL)
		json_object_set_new(o, "fill", json_null());
}

/* The changes from prev to now (NULL prev: none known). */
static json_t *changes_json(const ps_envelope_shape *prev, const ps_envelope_shape *now,
                            const ps_table_def *def)
{
	json_t *a = json_array();
	bool *taken;

	if (!a || !prev)
		return a;
	taken = calloc((size_t)prev->n + 1, sizeof(bool));
	if (!taken) {
		json_decref(a);
		return NULL;
	}
	for (int i = 0; i < now->n; i++) {
		int j = previous_of(prev, now, i, taken);
		const ps_envelope_shape_col *n = &now->cols[i];

		if (j < 0) {
			json_t *o = json_pack("{s:s, s:s, s:o}", "change", "added", "column", n->name,
			                      "type", type_json(n));
			put_fill(o, def && def->table->ncolumns == now->n ? def : NULL, i);
			json_array_append_new(a, o);
			continue;
		}
		taken[j] = true;
		if (strcmp(prev->cols[j].name, n->name) != 0)
			json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "change", "renamed", "column",
			                                   n->name, "from", prev->cols[j].name));
		if (prev->cols[j].type_id != n->type_id || prev->cols[j].type_mod != n->type_mod)
			json_array_append_new(a, json_pack("{s:s, s:s, s:o, s:o}", "change", "type", "column",
			                                   n->name, "from", type_json(&prev->cols[j]),
			                                   "to", type_json(n)));
	}
	for (int j = 0; j < prev->n; j++)
		if (!taken[j])
			json_array_append_new(a, json_pack("{s:s, s:s}", "change", "dropped", "column",
			                                   prev->cols[j].name));
	free(taken);
	return a;
}

/* The new columns as consumers read them. */
static json_t *columns_json(const ps_table_change *tc, const ps_envelope_shape *now)
{
	const ps_table_def *def = tc->def && tc->def->table->ncolumns == tc->table->ncolumns ? tc->def
	                                                                                    : NULL;
	json_t *a = json_array();

	for (int i = 0; a && i < now->n; i++) {
		const ps_envelope_shape_col *c = &now->cols[i];
		json_t *o = json_pack("{s:s, s:o, s:b}", "name", c->name, "type", type_json(c), "key",
		                      def ? def->table->columns[i].is_key : tc->table->columns[i].is_key);

		if (o && c->ordinal)
			json_object_set_new(o, "ordinal", json_integer(c->ordinal));
		if (o && def) {
			json_object_set_new(o, "nullable", json_boolean(!def->columns[i].not_null));
			if (def->columns[i].default_expr)
				json_object_set_new(o, "default", json_string(def->columns[i].default_expr));
			if (def->columns[i].labels) {
				json_t *l = json_array();
				for (int k = 0; l && k < def->columns[i].nlabels; k++)
					json_array_append_new(l, json_string(def->columns[i].labels[k]));
				json_object_set_new(o, "labels", l);
			}
		}
		json_array_append_new(a, o);
	}
	return a;
}

int ps_envelope_render_schema(ps_buf *buf, const char *connector, const char *source_db,
                              const ps_txn *txn, const ps_table_change *tc,
                              const ps_envelope_shape *previous, const ps_envelope_shape *now,
                              int64_t now_ms, ps_error *err)
{
	const ps_table *t = tc->table;
	json_t *ev = json_object(), *source, *schema, *parts;
	char *text = NULL;
	int rc = PS_OK;

	source = json_pack("{s:s?, s:s?, s:s, s:s, s:I, s:I, s:I}", "connector", connector,
	                   "db", source_db, "schema", t->schema, "table", t->name,
	                   "lsn", (json_int_t)tc->lsn, "txId", (json_int_t)(txn ? txn->xid : 0),
	                   "ts_ms", (json_int_t)(txn ? txn->commit_time_us / 1000 : 0));
	schema = json_pack("{s:o, s:o}", "columns", columns_json(tc, now), "changes",
	                   changes_json(previous, now, tc->def));
	if (schema && tc->def && tc->def->npartitions) {
		parts = json_array();
		for (int i = 0; parts && i < tc->def->npartitions; i++) {
			const ps_partition_def *p = &tc->def->partitions[i];
			json_array_append_new(parts, json_pack("{s:s?, s:s?, s:s?}", "schema", p->schema,
			                                       "table", p->name, "bound", p->bound));
		}
		json_object_set_new(schema, "partitions", parts);
	}
	if (!ev || !source || !schema) {
		json_decref(source);
		json_decref(schema);
		rc = PS_ENOMEM;
		goto cleanup;
	}
	json_object_set_new(ev, "before", json_null());
	json_object_set_new(ev, "after", json_null());
	json_object_set_new(ev, "op", json_string("s"));
	json_object_set_new(ev, "ts_ms", json_integer(now_ms));
	json_object_set_new(ev, "source", source);
	json_object_set_new(ev, "schema", schema);
	if (txn && txn->reprocessing)
		json_object_set_new(ev, "reprocessing", json_true());
	text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text) {
		rc = PS_ENOMEM;
		goto cleanup;
	}
	rc = ps_buf_puts(buf, text);
	if (rc == PS_OK)
		rc = ps_buf_putc(buf, '\n');
cleanup:
	free(text);
	json_decref(ev);
	if (rc != PS_OK)
		return ps_error_set(err, rc, "cannot render the schema event of %s.%s", t->schema,
		                    t->name);
	return PS_OK;
}

bool ps_envelope_shape_needs_rows(const ps_envelope_shape *prev, const ps_envelope_shape *now,
                                  const ps_table_def *def)
{
	bool *taken = calloc((size_t)prev->n + 1, sizeof(bool));
	bool needs = false;

	if (!taken)
		return true;
	for (int i = 0; i < now->n && !needs; i++) {
		int j = previous_of(prev, now, i, taken);

		if (j >= 0) {
			taken[j] = true;
			needs = prev->cols[j].type_id != now->cols[i].type_id ||
			        prev->cols[j].type_mod != now->cols[i].type_mod;
		} else {
			needs = !def || def->table->ncolumns != now->n ||
			        def->columns[i].fill == PS_FILL_UNKNOWN;
		}
	}
	free(taken);
	return needs;
}
