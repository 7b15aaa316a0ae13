/* Writing JSON by hand into a Buf: shortest round-trip numbers and escaped strings.
 * The hot read path writes thousands of points; a DOM would cost an allocation each. */
#ifndef M2PG_JSONW_H
#define M2PG_JSONW_H

#include "buf.h"

/* Shortest decimal form that reads back as the same double (integers without a point).
 * buf must hold 32 bytes; returns the length. */
size_t jsonw_format_double(double v, char *buf);
void jsonw_double(Buf *b, double v);
/* Decimal digits of v into buf (>= 21 bytes); returns the length. */
size_t jsonw_format_int(int64_t v, char *buf);
void jsonw_string(Buf *b, const char *s, size_t len);
/* {"error": msg[, "field": field][, "index": index]} ; field NULL and index < 0 leave them out. */
void jsonw_error(Buf *b, const char *msg, const char *field, long index);

#endif
