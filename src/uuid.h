/* UUIDs, version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids made
 * close in time sort close together and the unique index on id stays hot. */
#ifndef M2PG_UUID_H
#define M2PG_UUID_H

#include "common.h"

typedef struct Uuid {
	uint8_t b[16];
} Uuid;

#define UUID_STR_LEN 36

void uuid_v7(Uuid *u, int64_t unix_ms);
/* A name-based id: the same (name, source, time) always gives the same id, so a client's retry
 * of a measurement is stored once. Version 8 (RFC 9562): the first 48 bits are unix_ms, like a
 * version 7 id (the unique index stays hot and repair by write time finds it), the other 74
 * are SHA-1 of name, source (NULL: none) and unix_ms. */
void uuid_named(Uuid *u, const char *name, size_t name_len, const char *source, size_t source_len,
		int64_t unix_ms);
void uuid_format(const Uuid *u, char out[UUID_STR_LEN + 1]);
bool uuid_parse(const char *s, size_t len, Uuid *u) WARN_UNUSED;
int uuid_cmp(const Uuid *a, const Uuid *b);

#endif
