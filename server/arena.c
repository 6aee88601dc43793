/*
 * server/arena.c: call memory.  A handler builds its response from many
 * small allocations; they all die together when the reply is sent, so one
 * bump allocator per call replaces a free() per field.
 */
#include <stdlib.h>
#include <string.h>

#include "srv_int.h"

#define CHUNK_MIN 4096

struct srv_chunk {
	struct srv_chunk *next;
	max_align_t data[];
};

void *
srv_arena_alloc(struct srv_arena *a, size_t size)
{
	size_t align = sizeof(max_align_t);
	size_t need = (size + align - 1) / align * align;
	struct srv_chunk *c;
	void *p;

	if (need < size || a->total + need > SRV_CALL_MEM_MAX)
		return NULL;
	if (a->head == NULL || a->cap - a->used < need) {
		size_t cap = need > CHUNK_MIN ? need : CHUNK_MIN;

		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->next = a->head;
		a->head = c;
		a->used = 0;
		a->cap = cap;
	}
	p = (char *)a->head->data + a->used;
	a->used += need;
	a->total += need;
	memset(p, 0, size);
	return p;
}

void
srv_arena_free(struct srv_arena *a)
{
	struct srv_chunk *c = a->head;

	while (c != NULL) {
		struct srv_chunk *next = c->next;

		free(c);
		c = next;
	}
	memset(a, 0, sizeof(*a));
}

void *
srv_call_alloc(struct srv_call *call, size_t size)
{
	return srv_arena_alloc(&call->arena, size);
}

char *
srv_call_strdup(struct srv_call *call, const char *s)
{
	size_t n;
	char *p;

	if (s == NULL)
		s = "";
	n = strlen(s) + 1;
	p = srv_arena_alloc(&call->arena, n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}
