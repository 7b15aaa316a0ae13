/* UUID v7 generation, name-based v8 ids and text forms. Random bits come from getrandom()
 * through a small per-thread pool, so making an id costs no system call in the common case.
 * Within one millisecond ids stay ordered: rand_a holds a counter seeded randomly each
 * millisecond. A name-based id is a pure function of its inputs (SHA-1, written here: it
 * serves as a well-spread hash, not for security, and one function does not warrant a
 * crypto library). */
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

/* SHA-1 (FIPS 180-4) of the concatenation of parts, enough for the few short inputs of a name. */
typedef struct Sha1 {
	uint32_t h[5];
	uint8_t block[64];
	size_t fill;  /* bytes in block */
	uint64_t len; /* bytes hashed so far */
} Sha1;

static uint32_t rol(uint32_t x, int n)
{
	return x << n | x >> (32 - n);
}

static void sha1_block(Sha1 *c)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)c->block[4 * i] << 24 | (uint32_t)c->block[4 * i + 1] << 16 |
		       (uint32_t)c->block[4 * i + 2] << 8 | c->block[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = c->h[0], b = c->h[1], d = c->h[3], e = c->h[4], cc = c->h[2];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20)
			f = (b & cc) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ cc ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & cc) | (b & d) | (cc & d), k = 0x8f1bbcdc;
		else
			f = b ^ cc ^ d, k = 0xca62c1d6;
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = cc;
		cc = rol(b, 30);
		b = a;
		a = t;
	}
	c->h[0] += a;
	c->h[1] += b;
	c->h[2] += cc;
	c->h[3] += d;
	c->h[4] += e;
}

static void sha1_init(Sha1 *c)
{
	static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
	memcpy(c->h, h0, sizeof(h0));
	c->fill = 0;
	c->len = 0;
}

static void sha1_update(Sha1 *c, const void *data, size_t n)
{
	const uint8_t *p = data;
	c->len += n;
	while (n) {
		size_t k = sizeof(c->block) - c->fill;
		if (k > n)
			k = n;
		memcpy(c->block + c->fill, p, k);
		c->fill += k;
		p += k;
		n -= k;
		if (c->fill == sizeof(c->block)) {
			sha1_block(c);
			c->fill = 0;
		}
	}
}

static void sha1_final(Sha1 *c, uint8_t out[20])
{
	uint64_t bits = c->len * 8;
	static const uint8_t pad[64] = {0x80};
	sha1_update(c, pad, 1 + (119 - c->fill % 64) % 64); /* to 56 mod 64 */
	uint8_t be[8];
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha1_update(c, be, 8);
	for (int i = 0; i < 20; i++)
		out[i] = (uint8_t)(c->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* The hashed bytes: PREFIX, name, NUL, source (or NO_SOURCE, a byte no source can hold), NUL,
 * then unix_ms as 8 bytes big-endian. The prefix keeps these ids apart from any other use of
 * SHA-1 over names; changing any of this changes every id, so retries across a version
 * boundary would be stored twice. */
#define NAMED_PREFIX "m2pg-named-id-v1"
#define NO_SOURCE "\x01"

void uuid_named(Uuid *u, const char *name, size_t name_len, const char *source, size_t source_len,
		int64_t unix_ms)
{
	Sha1 c;
	uint8_t digest[20], ms[8];
	for (int i = 0; i < 8; i++)
		ms[i] = (uint8_t)((uint64_t)unix_ms >> (56 - 8 * i));
	sha1_init(&c);
	sha1_update(&c, NAMED_PREFIX, strlen(NAMED_PREFIX));
	sha1_update(&c, name, name_len);
	sha1_update(&c, "", 1);
	if (source)
		sha1_update(&c, source, source_len);
	else
		sha1_update(&c, NO_SOURCE, 1);
	sha1_update(&c, "", 1);
	sha1_update(&c, ms, sizeof(ms));
	sha1_final(&c, digest);

	for (int i = 0; i < 6; i++)
		u->b[i] = ms[i + 2];
	memcpy(u->b + 6, digest, 10);
	u->b[6] = (uint8_t)(0x80 | (u->b[6] & 0x0f)); /* version 8 */
	u->b[8] = (uint8_t)(0x80 | (u->b[8] & 0x3f)); /* variant 10 */
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
