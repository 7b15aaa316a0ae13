/* A bounded set of strings: the metric names a database is known to have in its catalogue,
 * so that the write path sends a name to the catalogue only the first time. Pure. */
#ifndef M2PG_NAMESET_H
#define M2PG_NAMESET_H

#include "common.h"

typedef struct NameSet NameSet;

/* At most max names are kept; adding one more empties the set first (the catalogue insert is
 * idempotent, so forgetting costs a few redundant inserts, never a wrong answer). */
NameSet *nameset_new(size_t max);
void nameset_free(NameSet *s);
bool nameset_has(const NameSet *s, const char *name, size_t len);
void nameset_add(NameSet *s, const char *name, size_t len);
void nameset_clear(NameSet *s);

#endif
