/*
 * schema.c — freeing the objects of penstock/schema.h.
 */
#include <stdlib.h>

#include "penstock/schema.h"

void ps_schema_objects_free(ps_schema_object *objects, size_t n)
{
	for (size_t i = 0; objects && i < n; i++) {
		ps_schema_object *o = &objects[i];

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
	}
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
