/*
 * schema.c — freeing the objects of penstock/schema.h.
 */
#include <stdlib.h>
#include <string.h>

#include "penstock/error.h"
#include "penstock/schema.h"

int ps_schema_object_copy(ps_schema_object *dst, const ps_schema_object *src)
{
	int rc = PS_OK;

#define DUP(f) \
	do { \
		dst->f = src->f ? strdup(src->f) : NULL; \
		if (src->f && !dst->f) \
			rc = PS_ENOMEM; \
	} while (0)
	memset(dst, 0, sizeof(*dst));
	dst->kind = src->kind;
	dst->must_exist = src->must_exist;
	DUP(what);
	DUP(schema);
	DUP(name);
	DUP(table);
	DUP(ident);
	DUP(catalog);
	DUP(sql);
#undef DUP
	if (rc == PS_OK && src->nroles) {
		dst->roles = calloc(src->nroles, sizeof(char *));
		if (!dst->roles)
			return PS_ENOMEM;
		for (size_t r = 0; r < src->nroles; r++) {
			dst->roles[r] = strdup(src->roles[r]);
			if (!dst->roles[r])
				return PS_ENOMEM;
			dst->nroles = r + 1;
		}
	}
	return rc;
}

void ps_schema_object_clear(ps_schema_object *o)
{
	free(o->what);
	free(o->schema);
	free(o->name);
	free(o->table);
	free(o->ident);
	free(o->catalog);
	free(o->sql);
	for (size_t r = 0; o->roles && r < o->nroles; r++)
		free(o->roles[r]);
	free(o->roles);
	memset(o, 0, sizeof(*o));
}

void ps_schema_objects_free(ps_schema_object *objects, size_t n)
{
	for (size_t i = 0; objects && i < n; i++)
		ps_schema_object_clear(&objects[i]);
	free(objects);
}

void ps_schema_free(ps_schema *s)
{
	if (!s)
		return;
	ps_schema_objects_free(s->objects, s->n);
	free(s->engine);
	free(s->skipped);
	free(s);
}
