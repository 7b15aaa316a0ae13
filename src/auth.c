/* API tokens and the Authorization header. Invariants:
 * - Configured tokens are printable ASCII without space, ':' or ',', 1 to AUTH_TOKEN_MAX bytes,
 *   distinct, and stored zero-padded to AUTH_TOKEN_MAX bytes, so a presented token (no longer
 *   than that) is compared with every configured one over the full width: the work done is the
 *   same whichever token matches and however many bytes agree. Only the presented input, which
 *   the client knows already, steers branches (header and base64 parsing, its length).
 * - No message carries a token, a scope text or a header; copies of secrets on the stack and the
 *   table itself are wiped after use. */
#include "auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Basic credentials decode to user:token; Librato's users are emails (at most 254 bytes), so
 * this leaves ample room, and the decoder needs no allocation. */
#define BASIC_MAX 1024

typedef struct Token {
	uint8_t bytes[AUTH_TOKEN_MAX]; /* zero-padded: tokens hold no NUL */
	uint32_t len;
	uint32_t scopes; /* AuthScope bits */
} Token;

struct AuthTokens {
	size_t count;
	Token tok[];
};

static const char TOKEN_RULE[] = "tokens are printable ASCII without space, ':' or ','";

static bool fail(char *err, size_t errlen, const char *fmt, ...) PRINTF_LIKE(3, 4);
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool parse_entry(const char *p, size_t len, int pos, Token *t, char *err, size_t errlen)
{
	const char *colon = memchr(p, ':', len);
	size_t tlen = colon ? (size_t)(colon - p) : len;
	if (tlen == 0)
		return fail(err, errlen, "API_TOKENS: entry %d has no token before ':'", pos);
	if (tlen > AUTH_TOKEN_MAX)
		return fail(err, errlen, "API_TOKENS: entry %d: the token is longer than %d bytes", pos,
			    AUTH_TOKEN_MAX);
	for (size_t i = 0; i < tlen; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == ' ')
			return fail(err, errlen, "API_TOKENS: entry %d: the token has a space (%s)", pos,
				    TOKEN_RULE);
		if (c < 0x21 || c > 0x7e)
			return fail(err, errlen,
				    "API_TOKENS: entry %d: the token has a byte outside printable ASCII (%s)",
				    pos, TOKEN_RULE);
	}
	t->scopes = AUTH_READ | AUTH_WRITE;
	if (colon) {
		const char *s = colon + 1;
		size_t slen = len - tlen - 1;
		if (memchr(s, ':', slen))
			return fail(err, errlen, "API_TOKENS: entry %d has more than one ':' (%s)", pos,
				    TOKEN_RULE);
		if (slen == 4 && memcmp(s, "read", 4) == 0)
			t->scopes = AUTH_READ;
		else if (slen == 5 && memcmp(s, "write", 5) == 0)
			t->scopes = AUTH_WRITE;
		else
			return fail(err, errlen,
				    "API_TOKENS: entry %d: the scope after ':' must be read or write", pos);
	}
	memcpy(t->bytes, p, tlen);
	t->len = (uint32_t)tlen;
	return true;
}

bool auth_parse(const char *spec, AuthTokens **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!spec || !*spec)
		return true;
	AuthTokens *t = calloc(1, sizeof(*t) + AUTH_MAX_TOKENS * sizeof(Token));
	if (!t)
		fatal("at=oom");
	const char *p = spec;
	for (int pos = 1;; pos++) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		while (len > 0 && is_space(p[0])) {
			p++;
			len--;
		}
		while (len > 0 && is_space(p[len - 1]))
			len--;
		/* whitespace alone is an empty entry too: better to refuse to start than to run open */
		if (len == 0) {
			fail(err, errlen, "API_TOKENS: entry %d is empty", pos);
			goto bad;
		}
		if (t->count == AUTH_MAX_TOKENS) {
			fail(err, errlen, "API_TOKENS: more than %d tokens", AUTH_MAX_TOKENS);
			goto bad;
		}
		Token *tok = &t->tok[t->count];
		if (!parse_entry(p, len, pos, tok, err, errlen))
			goto bad;
		for (size_t i = 0; i < t->count; i++) {
			if (t->tok[i].len == tok->len && memcmp(t->tok[i].bytes, tok->bytes, tok->len) == 0) {
				fail(err, errlen, "API_TOKENS: entries %zu and %d hold the same token", i + 1,
				     pos);
				goto bad;
			}
		}
		t->count++;
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = t;
	return true;
bad:
	auth_free(t);
	return false;
}

void auth_free(AuthTokens *t)
{
	if (!t)
		return;
	explicit_bzero(t, sizeof(*t) + AUTH_MAX_TOKENS * sizeof(Token));
	free(t);
}

size_t auth_count(const AuthTokens *t)
{
	return t ? t->count : 0;
}

/* Strict base64 (RFC 4648, section 4): the standard alphabet, whole quanta, '=' only as the
 * last one or two characters, and the bits the padding drops must be zero, so every input has
 * one spelling. Writes at most cap bytes; false on any deviation or when cap is too small. */
static bool b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	if (n % 4 != 0)
		return false;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char c = s[i + k];
			int d;
			if (c >= 'A' && c <= 'Z')
				d = c - 'A';
			else if (c >= 'a' && c <= 'z')
				d = c - 'a' + 26;
			else if (c >= '0' && c <= '9')
				d = c - '0' + 52;
			else if (c == '+')
				d = 62;
			else if (c == '/')
				d = 63;
			else if (c == '=' && i + 4 == n && k >= 2)
				d = -1;
			else
				return false;
			if (d < 0)
				pad++;
			else if (pad) /* a character after '=' */
				return false;
			v = v << 6 | (uint32_t)(d < 0 ? 0 : d);
		}
		if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))
			return false;
		size_t nbytes = 3 - (size_t)pad;
		if (cap - o < nbytes)
			return false;
		for (size_t k = 0; k < nbytes; k++)
			out[o++] = (uint8_t)(v >> (16 - 8 * k));
	}
	*outlen = o;
	return true;
}

/* 1 when the padded buffers and lengths agree, else 0, after the same work either way. */
static uint32_t same_token(const uint8_t *padded, uint32_t len, const Token *t)
{
	uint32_t d = 0;
	for (size_t i = 0; i < AUTH_TOKEN_MAX; i++)
		d |= (uint32_t)(padded[i] ^ t->bytes[i]);
	d |= len ^ t->len; /* both at most AUTH_TOKEN_MAX, so d stays far below 2^31 */
	__asm__("" : "+r"(d)); /* keep the compiler from turning what follows into a branch */
	return ((d - 1) >> 31) & 1;
}

static AuthResult check_token(const AuthTokens *t, const char *tok, size_t len, AuthScope need)
{
	if (len == 0)
		return AUTH_MISSING;
	if (len > AUTH_TOKEN_MAX) /* the client knows its token's length: nothing leaks here */
		return AUTH_UNKNOWN;
	uint8_t padded[AUTH_TOKEN_MAX] = {0};
	memcpy(padded, tok, len);
	uint32_t matched = 0, scopes = 0;
	for (size_t i = 0; i < t->count; i++) {
		uint32_t m = same_token(padded, (uint32_t)len, &t->tok[i]);
		matched |= m;
		scopes |= (0u - m) & t->tok[i].scopes;
	}
	explicit_bzero(padded, sizeof(padded));
	if (!matched)
		return AUTH_UNKNOWN;
	return (scopes & (uint32_t)need) == (uint32_t)need ? AUTH_OK : AUTH_FORBIDDEN;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

AuthResult auth_check(const AuthTokens *t, const char *authorization, AuthScope need)
{
	if (!t)
		return AUTH_OK;
	if (!authorization)
		return AUTH_MISSING;
	const char *p = authorization;
	size_t n = strlen(p);
	while (n > 0 && is_blank(p[0])) {
		p++;
		n--;
	}
	while (n > 0 && is_blank(p[n - 1]))
		n--;
	size_t slen = 0;
	while (slen < n && !is_blank(p[slen]))
		slen++;
	if (slen == 0)
		return AUTH_MISSING;
	const char *cred = p + slen;
	size_t clen = n - slen;
	while (clen > 0 && is_blank(cred[0])) {
		cred++;
		clen--;
	}
	if (slen == 6 && strncasecmp(p, "bearer", 6) == 0)
		return check_token(t, cred, clen, need);
	if (slen != 5 || strncasecmp(p, "basic", 5) != 0)
		return AUTH_UNKNOWN; /* a scheme we do not take */
	if (clen == 0)
		return AUTH_MISSING;
	uint8_t plain[BASIC_MAX];
	size_t plen;
	AuthResult r = AUTH_UNKNOWN;
	if (b64_decode(cred, clen, plain, sizeof(plain), &plen)) {
		const uint8_t *colon = memchr(plain, ':', plen);
		if (colon) { /* the user is ignored; RFC 7617 puts no ':' in it, so split at the first */
			size_t user = (size_t)(colon - plain);
			r = check_token(t, (const char *)colon + 1, plen - user - 1, need);
		}
	}
	explicit_bzero(plain, sizeof(plain));
	return r;
}
