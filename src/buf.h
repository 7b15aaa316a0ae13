/* A growable byte buffer (in the spirit of Redis's sds, without the header tricks).
 * Allocation failure is fatal: every caller bounds its input, so running out of memory here
 * means the process is already lost. */
#ifndef M2PG_BUF_H
#define M2PG_BUF_H

#include "common.h"

typedef struct Buf {
	char *p;
	size_t len;
	size_t cap;
} Buf;

void buf_reserve(Buf *b, size_t extra);
void buf_add(Buf *b, const void *data, size_t n);
void buf_addf(Buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
static inline void buf_addc(Buf *b, char c)
{
	if (b->len + 2 > b->cap)
		buf_reserve(b, 1);
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}
static inline void buf_adds(Buf *b, const char *s);
void buf_reset(Buf *b);
void buf_free(Buf *b);
/* Hands the bytes to the caller (who frees them) and leaves b empty. */
char *buf_take(Buf *b, size_t *len);

#include <string.h>
static inline void buf_adds(Buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

#endif
