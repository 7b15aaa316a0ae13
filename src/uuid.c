/* UUID v7 generation and text forms. Random bits come from getrandom() through a small
 * per-thread pool, so making an id costs no system call in the common case. Within one
 * millisecond ids stay ordered: rand_a holds a counter seeded randomly each millisecond. */
#include "uuid.h"

#include <string.h>
#include <sys/random.h>

static _Thread_local uint8_t pool[4096];
static _Thread_local size_t pool_left;
static _Thread_local int64_t last_ms = -1;
static _Thread_local uint16_t seq;

static void random_bytes(uint8_t *out, size_t n)
{
	if (pool_left < n) {
		size_t got = 0;
		while (got < sizeof(pool)) {
			ssize_t r = getrandom(pool + got, sizeof(pool) - got, 0);
			if (r < 0)
				fatal("at=getrandom-failed");
			got += (size_t)r;
		}
		pool_left = sizeof(pool);
	}
	memcpy(out, pool + sizeof(pool) - pool_left, n);
	pool_left -= n;
}

void uuid_v7(Uuid *u, int64_t unix_ms)
{
	random_bytes(u->b + 6, 10);
	if (unix_ms <= last_ms) {
		unix_ms = last_ms;
		if (++seq > 0xfff) { /* counter ran out: borrow the next millisecond */
			unix_ms = ++last_ms;
			seq = (uint16_t)((u->b[6] << 8 | u->b[7]) & 0x3ff);
		}
	} else {
		last_ms = unix_ms;
		seq = (uint16_t)((u->b[6] << 8 | u->b[7]) & 0x3ff); /* leave room to count up */
	}
	for (int i = 0; i < 6; i++)
		u->b[i] = (uint8_t)(unix_ms >> (40 - 8 * i));
	u->b[6] = (uint8_t)(0x70 | (seq >> 8));
	u->b[7] = (uint8_t)seq;
	u->b[8] = (uint8_t)(0x80 | (u->b[8] & 0x3f));
}

void uuid_format(const Uuid *u, char out[UUID_STR_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u->b[i] >> 4];
		*p++ = hex[u->b[i] & 15];
	}
	*p = '\0';
}

bool uuid_parse(const char *s, size_t len, Uuid *u)
{
	if (len != UUID_STR_LEN)
		return false;
	int j = 0;
	for (size_t i = 0; i < len;) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
			i++;
			continue;
		}
		int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		u->b[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return true;
}

int uuid_cmp(const Uuid *a, const Uuid *b)
{
	return memcmp(a->b, b->b, 16);
}
