/* PostgreSQL's binary formats, for parameters sent and results read without text parsing:
 * one-dimensional arrays (ndim, has-null flag, element type, length, lower bound, then each
 * element as a length, -1 for NULL, and its bytes) and big-endian scalars. Pure. */
#ifndef M2PG_PGARR_H
#define M2PG_PGARR_H

#include <endian.h>

#include "buf.h"

#define PGARR_OID_FLOAT8 701
#define PGARR_OID_TEXT 25
#define PGARR_OID_TIMESTAMPTZ 1184
#define PGARR_OID_UUID 2950
#define PG_EPOCH_US (INT64_C(946684800) * 1000000) /* 2000-01-01, PostgreSQL's epoch */

void pgarr_put32(Buf *b, uint32_t v);
void pgarr_put64(Buf *b, uint64_t v);
void pgarr_patch32(Buf *b, size_t at, uint32_t v);
/* Starts an array of element type oid in b (emptied first). */
void pgarr_begin(Buf *b, uint32_t oid);
/* Ends it once its n elements were added. */
void pgarr_end(Buf *b, uint32_t n, bool has_null);
void pgarr_add_text(Buf *b, const char *s, size_t len);
void pgarr_add_timestamptz(Buf *b, int64_t unix_us);

/* n values one after the other, each a byte 0 (NULL) or 1 followed by widths[k] bytes (as m2pg's
 * SQL builds them from send functions). Points vals[k] at value k's bytes and sets lens[k] (-1:
 * NULL); false when p is not exactly n such values. */
bool pgarr_flagged(const char *p, size_t len, int n, const uint8_t *widths, const char **vals, int32_t *lens);

/* Inline: a read decodes several of these per row of each database. */
static inline uint64_t pgarr_get64(const char *p)
{
	uint64_t v;
	__builtin_memcpy(&v, p, sizeof(v));
	return be64toh(v);
}
/* A float8 column value, or false when it is NULL (or not 8 bytes). */
static inline double pgarr_double_bits(uint64_t bits)
{
	double d;
	__builtin_memcpy(&d, &bits, sizeof(d));
	return d;
}

#endif
