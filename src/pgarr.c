/* Binary array building and big-endian decoding for libpq's binary format. */
#include "pgarr.h"

#include <endian.h>
#include <string.h>

void pgarr_put32(Buf *b, uint32_t v)
{
	unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			      (unsigned char)v};
	buf_add(b, p, 4);
}

void pgarr_put64(Buf *b, uint64_t v)
{
	pgarr_put32(b, (uint32_t)(v >> 32));
	pgarr_put32(b, (uint32_t)v);
}

void pgarr_patch32(Buf *b, size_t at, uint32_t v)
{
	b->p[at] = (char)(v >> 24);
	b->p[at + 1] = (char)(v >> 16);
	b->p[at + 2] = (char)(v >> 8);
	b->p[at + 3] = (char)v;
}

void pgarr_begin(Buf *b, uint32_t oid)
{
	buf_reset(b);
	pgarr_put32(b, 1);
	pgarr_put32(b, 0);
	pgarr_put32(b, oid);
	pgarr_put32(b, 0);
	pgarr_put32(b, 1);
}

void pgarr_end(Buf *b, uint32_t n, bool has_null)
{
	if (n == 0) { /* an empty array has no dimensions */
		b->len = 12;
		pgarr_patch32(b, 0, 0);
		return;
	}
	pgarr_patch32(b, 4, has_null);
	pgarr_patch32(b, 12, n);
}

void pgarr_add_text(Buf *b, const char *s, size_t len)
{
	pgarr_put32(b, (uint32_t)len);
	buf_add(b, s, len);
}

void pgarr_add_timestamptz(Buf *b, int64_t unix_us)
{
	pgarr_put32(b, 8);
	pgarr_put64(b, (uint64_t)(unix_us - PG_EPOCH_US));
}


bool pgarr_flagged(const char *p, size_t len, int n, const uint8_t *widths, const char **vals, int32_t *lens)
{
	size_t at = 0;
	for (int k = 0; k < n; k++) {
		if (at == len || (uint8_t)p[at] > 1)
			return false;
		if (!p[at++]) {
			vals[k] = p + at;
			lens[k] = -1;
			continue;
		}
		if (len - at < widths[k])
			return false;
		vals[k] = p + at;
		lens[k] = widths[k];
		at += widths[k];
	}
	return at == len;
}
