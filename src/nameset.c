/* Open addressing over FNV-1a hashes; each name is one allocation. */
#include "nameset.h"

#include <stdlib.h>
#include <string.h>

typedef struct Slot {
	char *name; /* NULL: empty */
	uint32_t len;
	uint32_t hash;
} Slot;

struct NameSet {
	Slot *slots;
	size_t nslots; /* a power of two, at least twice count */
	size_t count;
	size_t max;
};

NameSet *nameset_new(size_t max)
{
	NameSet *s = calloc(1, sizeof(*s));
	if (!s)
		fatal("at=oom");
	s->max = max;
	return s;
}

void nameset_clear(NameSet *s)
{
	for (size_t i = 0; i < s->nslots; i++)
		free(s->slots[i].name);
	free(s->slots);
	s->slots = NULL;
	s->nslots = s->count = 0;
}

void nameset_free(NameSet *s)
{
	if (!s)
		return;
	nameset_clear(s);
	free(s);
}

static Slot *find(const NameSet *s, const char *name, size_t len, uint32_t h)
{
	size_t mask = s->nslots - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		Slot *sl = &s->slots[i];
		if (!sl->name || (sl->hash == h && sl->len == len && memcmp(sl->name, name, len) == 0))
			return sl;
	}
}

bool nameset_has(const NameSet *s, const char *name, size_t len)
{
	if (!s->count)
		return false;
	return find(s, name, len, fnv1a32(name, len))->name != NULL;
}

static void grow(NameSet *s)
{
	Slot *old = s->slots;
	size_t n = s->nslots;
	s->nslots = n ? n * 2 : 64;
	s->slots = calloc(s->nslots, sizeof(Slot));
	if (!s->slots)
		fatal("at=oom");
	for (size_t i = 0; i < n; i++)
		if (old[i].name)
			*find(s, old[i].name, old[i].len, old[i].hash) = old[i];
	free(old);
}

void nameset_add(NameSet *s, const char *name, size_t len)
{
	if (nameset_has(s, name, len))
		return;
	if (s->count >= s->max)
		nameset_clear(s);
	if ((s->count + 1) * 2 > s->nslots)
		grow(s);
	uint32_t h = fnv1a32(name, len);
	Slot *sl = find(s, name, len, h);
	sl->name = strndup(name, len);
	if (!sl->name)
		fatal("at=oom");
	sl->len = (uint32_t)len;
	sl->hash = h;
	s->count++;
}
