/* Unit tests of auth: parsing API_TOKENS (and that no message shows a token), and checking
 * Authorization headers as Librato clients (Basic, email:token) and others (Bearer) send them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth.h"

/* Base64 for building headers too long to write out; the cases written out by hand were made
 * with another encoder, so the module's decoder is not checked against this one alone. */
static void b64(const char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = a[v >> 18];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = i + 1 < n ? a[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

static AuthTokens *parse_ok(const char *spec)
{
	AuthTokens *t = (AuthTokens *)1;
	char err[256] = "";
	bool ok = auth_parse(spec, &t, err, sizeof(err));
	if (!ok)
		print_error("rejected: %s\n", err);
	assert_true(ok);
	return t;
}

static void test_parse_off(void **state)
{
	(void)state;
	const char *specs[] = {NULL, ""};
	for (size_t i = 0; i < ARRAY_LEN(specs); i++) {
		AuthTokens *t = parse_ok(specs[i]);
		assert_null(t);
		assert_int_equal(auth_count(t), 0);
		/* auth off: everything passes, even without a header */
		assert_int_equal(auth_check(t, NULL, AUTH_WRITE), AUTH_OK);
		assert_int_equal(auth_check(t, "Bearer whatever", AUTH_READ), AUTH_OK);
		auth_free(t);
	}
}

static void test_parse_valid(void **state)
{
	(void)state;
	const struct {
		const char *spec;
		size_t count;
		const char *bearer; /* a token in it, and what it may do */
		AuthResult read, write;
	} cases[] = {
		{"tok1,tok2:read,tok3:write", 3, "tok1", AUTH_OK, AUTH_OK},
		{"tok1,tok2:read,tok3:write", 3, "tok2", AUTH_OK, AUTH_FORBIDDEN},
		{"tok1,tok2:read,tok3:write", 3, "tok3", AUTH_FORBIDDEN, AUTH_OK},
		{"solo", 1, "solo", AUTH_OK, AUTH_OK},
		{" tok1 , tok2:read\t,\ntok3:write\r\n", 3, "tok2", AUTH_OK, AUTH_FORBIDDEN},
		{"  tok1  ", 1, "tok1", AUTH_OK, AUTH_OK},
		{"!\"#$%&'()*+-./0123456789;<=>?@AZ[\\]^_`az{|}~", 1,
		 "!\"#$%&'()*+-./0123456789;<=>?@AZ[\\]^_`az{|}~", AUTH_OK, AUTH_OK},
		{"a:read,b:read,c", 3, "c", AUTH_OK, AUTH_OK},
		{"x", 1, "x", AUTH_OK, AUTH_OK},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		AuthTokens *t = parse_ok(cases[i].spec);
		assert_non_null(t);
		assert_int_equal(auth_count(t), cases[i].count);
		char h[512];
		snprintf(h, sizeof(h), "Bearer %s", cases[i].bearer);
		assert_int_equal(auth_check(t, h, AUTH_READ), cases[i].read);
		assert_int_equal(auth_check(t, h, AUTH_WRITE), cases[i].write);
		assert_int_equal(auth_check(t, "Bearer tok", AUTH_READ), AUTH_UNKNOWN);
		auth_free(t);
	}
}

/* The limits themselves are accepted: 64 tokens, a token of 256 bytes. */
static void test_parse_limits(void **state)
{
	(void)state;
	char spec[64 * 8];
	size_t o = 0;
	for (int i = 0; i < AUTH_MAX_TOKENS; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "%st%02d", i ? "," : "", i);
	AuthTokens *t = parse_ok(spec);
	assert_int_equal(auth_count(t), 64);
	assert_int_equal(auth_check(t, "Bearer t00", AUTH_WRITE), AUTH_OK);
	assert_int_equal(auth_check(t, "Bearer t63", AUTH_WRITE), AUTH_OK);
	assert_int_equal(auth_check(t, "Bearer t64", AUTH_WRITE), AUTH_UNKNOWN);
	auth_free(t);

	char longtok[AUTH_TOKEN_MAX + 1];
	memset(longtok, 'k', AUTH_TOKEN_MAX);
	longtok[AUTH_TOKEN_MAX] = '\0';
	t = parse_ok(longtok);
	char h[AUTH_TOKEN_MAX + 16];
	snprintf(h, sizeof(h), "Bearer %s", longtok);
	assert_int_equal(auth_check(t, h, AUTH_READ), AUTH_OK);
	h[strlen(h) - 1] = '\0'; /* 255 bytes */
	assert_int_equal(auth_check(t, h, AUTH_READ), AUTH_UNKNOWN);
	snprintf(h, sizeof(h), "Bearer %sk", longtok); /* 257 bytes */
	assert_int_equal(auth_check(t, h, AUTH_READ), AUTH_UNKNOWN);
	auth_free(t);
}

static void test_parse_invalid(void **state)
{
	(void)state;
	static char too_many[70 * 10], too_long[AUTH_TOKEN_MAX + 32];
	size_t o = 0;
	for (int i = 0; i < AUTH_MAX_TOKENS + 1; i++)
		o += (size_t)snprintf(too_many + o, sizeof(too_many) - o, "%ssekrit%02d", i ? "," : "", i);
	memcpy(too_long, "ok,sekrit", 9);
	memset(too_long + 9, 'x', AUTH_TOKEN_MAX - 5); /* 257 bytes in entry 2 */
	too_long[9 + AUTH_TOKEN_MAX - 5] = '\0';

	const char rule[] = "(tokens are printable ASCII without space, ':' or ',')";
	char spaced[128], outside[128], colons[128];
	snprintf(spaced, sizeof(spaced), "API_TOKENS: entry %%d: the token has a space %s", rule);
	snprintf(outside, sizeof(outside),
		 "API_TOKENS: entry %%d: the token has a byte outside printable ASCII %s", rule);
	snprintf(colons, sizeof(colons), "API_TOKENS: entry %%d has more than one ':' %s", rule);
	const char *scope = "API_TOKENS: entry %d: the scope after ':' must be read or write";
	const char *empty = "API_TOKENS: entry %d is empty";

	const struct {
		const char *spec;
		const char *fmt; /* the message, with %d the entry */
		int pos;
		const char *secret; /* must not show in the message */
	} cases[] = {
		{"sekrit1,,sekrit2", empty, 2, "sekrit"},
		{",sekrit1", empty, 1, "sekrit"},
		{"sekrit1,", empty, 2, "sekrit"},
		{"sekrit1, ,sekrit2", empty, 2, "sekrit"},
		{"   ", empty, 1, "   "},
		{",", empty, 1, ","},
		{"sekrit1:admin", scope, 1, "sekrit"},
		{"sekrit1:admin", scope, 1, "admin"},
		{"ok,sekrit1:", scope, 2, "sekrit"},
		{"sekrit1:READ", scope, 1, "sekrit"},
		{"sekrit1:readwrite", scope, 1, "sekrit"},
		{"sekrit1: read", scope, 1, "sekrit"},
		{"sekrit1:read:write", colons, 1, "sekrit"},
		{"sek:rit:1", colons, 1, "sek"},
		{":read", "API_TOKENS: entry %d has no token before ':'", 1, "read"},
		{"ok, :write", "API_TOKENS: entry %d has no token before ':'", 2, "write"},
		{"sek rit1", spaced, 1, "sek"},
		{"sekrit1 :read", spaced, 1, "sekrit"},
		{"ok,sek rit2", spaced, 2, "sek"},
		{"sek\trit1", outside, 1, "sek"},
		{"sekrit1\x01", outside, 1, "sekrit"},
		{"sekrit\x7f", outside, 1, "sekrit"},
		{"sekr\xc3\xa9t", outside, 1, "sekr"},
		{"sekrit1,other,sekrit1", "API_TOKENS: entries 1 and %d hold the same token", 3, "sekrit"},
		{"sekrit1:read,sekrit1:write", "API_TOKENS: entries 1 and %d hold the same token", 2,
		 "sekrit"},
		{"sekrit1, sekrit1", "API_TOKENS: entries 1 and %d hold the same token", 2, "sekrit"},
		{too_many, "API_TOKENS: more than 64 tokens", 0, "sekrit"},
		{too_long, "API_TOKENS: entry %d: the token is longer than 256 bytes", 2, "sekrit"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		AuthTokens *t = (AuthTokens *)1;
		char err[256] = "", want[256];
		snprintf(want, sizeof(want), cases[i].fmt, cases[i].pos);
		bool ok = auth_parse(cases[i].spec, &t, err, sizeof(err));
		if (ok || strcmp(err, want) != 0)
			print_error("case %zu: ok=%d err=%s\n", i, ok, err);
		assert_false(ok);
		assert_null(t);
		assert_string_equal(err, want);
		assert_null(strstr(err, cases[i].secret));
	}
}

/* A message buffer too small, or none, is no reason to crash. */
static void test_parse_small_err(void **state)
{
	(void)state;
	AuthTokens *t;
	char err[8];
	assert_false(auth_parse("a,,b", &t, err, sizeof(err)));
	assert_string_equal(err, "API_TOK");
	assert_false(auth_parse("a,,b", &t, NULL, 0));
	assert_null(t);
}

#define CONFIG "secrettoken,reader:read,writer:write,???~~~,abc:read,abcdef:write"

static void test_check(void **state)
{
	(void)state;
	AuthTokens *t = parse_ok(CONFIG);
	const struct {
		const char *header;
		AuthResult read, write;
	} cases[] = {
		/* no token */
		{NULL, AUTH_MISSING, AUTH_MISSING},
		{"", AUTH_MISSING, AUTH_MISSING},
		{"  \t ", AUTH_MISSING, AUTH_MISSING},
		{"Basic", AUTH_MISSING, AUTH_MISSING},
		{"Basic   ", AUTH_MISSING, AUTH_MISSING},
		{"Bearer", AUTH_MISSING, AUTH_MISSING},
		{"Bearer   ", AUTH_MISSING, AUTH_MISSING},
		{"Basic bWVAZXhhbXBsZS5jb206", AUTH_MISSING, AUTH_MISSING}, /* me@example.com: */
		{"Basic Og==", AUTH_MISSING, AUTH_MISSING},                 /* : */
		/* Basic as Librato clients send it: me@example.com:secrettoken */
		{"Basic bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=", AUTH_OK, AUTH_OK},
		{"basic bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=", AUTH_OK, AUTH_OK},
		{"BASIC bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=", AUTH_OK, AUTH_OK},
		{"bAsIc bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=", AUTH_OK, AUTH_OK},
		{"  Basic    bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=  ", AUTH_OK, AUTH_OK},
		{"Basic OnNlY3JldHRva2Vu", AUTH_OK, AUTH_OK},       /* :secrettoken, empty user */
		{"Basic YTpzZWNyZXR0b2tlbg==", AUTH_OK, AUTH_OK},   /* a:secrettoken, two '=' */
		{"Basic dTo/Pz9+fn4=", AUTH_OK, AUTH_OK},           /* u:???~~~, '+' and '/' */
		/* Bearer */
		{"Bearer secrettoken", AUTH_OK, AUTH_OK},
		{"bearer secrettoken", AUTH_OK, AUTH_OK},
		{"BEARER secrettoken", AUTH_OK, AUTH_OK},
		{"Bearer    secrettoken   ", AUTH_OK, AUTH_OK},
		{"Bearer\tsecrettoken", AUTH_OK, AUTH_OK},
		{"Bearer ???~~~", AUTH_OK, AUTH_OK},
		/* scopes */
		{"Basic bWVAZXhhbXBsZS5jb206cmVhZGVy", AUTH_OK, AUTH_FORBIDDEN}, /* reader */
		{"Basic bWVAZXhhbXBsZS5jb206d3JpdGVy", AUTH_FORBIDDEN, AUTH_OK}, /* writer */
		{"Bearer reader", AUTH_OK, AUTH_FORBIDDEN},
		{"Bearer writer", AUTH_FORBIDDEN, AUTH_OK},
		/* configured tokens that are prefixes of each other keep their own scopes */
		{"Bearer abc", AUTH_OK, AUTH_FORBIDDEN},
		{"Bearer abcdef", AUTH_FORBIDDEN, AUTH_OK},
		{"Bearer abcd", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Bearer abcdefg", AUTH_UNKNOWN, AUTH_UNKNOWN},
		/* unknown tokens */
		{"Bearer nottoken", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Bearer secret", AUTH_UNKNOWN, AUTH_UNKNOWN},       /* a prefix of a token */
		{"Bearer secrettokenX", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* a token is a prefix of it */
		{"Bearer SECRETTOKEN", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Bearer secret token", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Bearer read", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic dTpzZWNyZXQ=", AUTH_UNKNOWN, AUTH_UNKNOWN},         /* u:secret */
		{"Basic dTpzZWNyZXR0b2tlblg=", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* u:secrettokenX */
		{"Basic dTpzZWNyZXR0b2tlbgA=", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* u:secrettoken NUL */
		{"Basic dTpzZWNyZXR0b2tlbiA=", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* u:secrettoken SP */
		{"Basic dTogc2VjcmV0dG9rZW4=", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* u: secrettoken */
		{"Basic dTpzZWNyZXR0b2tlbjp4", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* u:secrettoken:x */
		{"Basic YTpiOnNlY3JldHRva2Vu", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* a:b:secrettoken */
		{"Basic dTpyZWFkZXI=", AUTH_OK, AUTH_FORBIDDEN},            /* u:reader */
		/* malformed */
		{"Basic bWVAZXhhbXBsZS5jb20=", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* no ':' */
		{"Bearer bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic secrettoken", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Bearersecrettoken", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basicbbb", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Digest secrettoken", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Token secrettoken", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"secrettoken", AUTH_UNKNOWN, AUTH_UNKNOWN},
		/* base64 that a lenient decoder would take */
		{"Basic bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4", AUTH_UNKNOWN, AUTH_UNKNOWN},   /* no '=' */
		{"Basic bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4==", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* extra = */
		{"Basic YTpzZWNyZXR0b2tlbg=", AUTH_UNKNOWN, AUTH_UNKNOWN},    /* one '=' short */
		{"Basic YTpzZWNyZXR0b2tlbg", AUTH_UNKNOWN, AUTH_UNKNOWN},     /* no '=' */
		{"Basic bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW5=", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* bits */
		{"Basic YTpzZWNyZXR0b2tlbh==", AUTH_UNKNOWN, AUTH_UNKNOWN},   /* dropped bits not 0 */
		{"Basic bWVAZXhh bXBsZS5jb206c2VjcmV0dG9rZW4=", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* space */
		{"Basic bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=!", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=\n", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic !bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic bWVAZXhhbXBsZS5jb206c2VjcmV0dG9rZW4=AAAA", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic dTo_Pz9-fn4=", AUTH_UNKNOWN, AUTH_UNKNOWN}, /* URL-safe alphabet */
		{"Basic Og==Og==", AUTH_UNKNOWN, AUTH_UNKNOWN},     /* padding inside */
		{"Basic OnNl=3Jl", AUTH_UNKNOWN, AUTH_UNKNOWN},     /* '=' then data */
		{"Basic ====", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic O===", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic =", AUTH_UNKNOWN, AUTH_UNKNOWN},
		{"Basic YTpzZWNyZXR0b2tlbg==,", AUTH_UNKNOWN, AUTH_UNKNOWN},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		AuthResult r = auth_check(t, cases[i].header, AUTH_READ);
		AuthResult w = auth_check(t, cases[i].header, AUTH_WRITE);
		if (r != cases[i].read || w != cases[i].write)
			print_error("case %zu (%s): read %d, write %d\n", i,
				    cases[i].header ? cases[i].header : "NULL", r, w);
		assert_int_equal(r, cases[i].read);
		assert_int_equal(w, cases[i].write);
	}
	auth_free(t);
}

/* A route needing both scopes takes only a bare token. */
static void test_check_both_scopes(void **state)
{
	(void)state;
	AuthTokens *t = parse_ok(CONFIG);
	AuthScope both = (AuthScope)(AUTH_READ | AUTH_WRITE);
	assert_int_equal(auth_check(t, "Bearer secrettoken", both), AUTH_OK);
	assert_int_equal(auth_check(t, "Bearer reader", both), AUTH_FORBIDDEN);
	assert_int_equal(auth_check(t, "Bearer writer", both), AUTH_FORBIDDEN);
	auth_free(t);
}

/* Long Basic credentials: a long user name with the longest token still works; a token one
 * byte too long, or credentials too long to be real, are refused. */
static void test_check_long_basic(void **state)
{
	(void)state;
	static char tok[AUTH_TOKEN_MAX + 2], plain[2048], header[4096];
	memset(tok, 'k', AUTH_TOKEN_MAX);
	tok[AUTH_TOKEN_MAX] = '\0';
	AuthTokens *t = parse_ok(tok);
	const struct {
		size_t user_len, tok_len;
		AuthResult want;
	} cases[] = {
		{14, AUTH_TOKEN_MAX, AUTH_OK},
		{254, AUTH_TOKEN_MAX, AUTH_OK},
		{0, AUTH_TOKEN_MAX, AUTH_OK},
		{254, AUTH_TOKEN_MAX + 1, AUTH_UNKNOWN},
		{254, AUTH_TOKEN_MAX - 1, AUTH_UNKNOWN},
		{1500, AUTH_TOKEN_MAX, AUTH_UNKNOWN},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		memset(plain, 'u', cases[i].user_len);
		plain[cases[i].user_len] = ':';
		memset(plain + cases[i].user_len + 1, 'k', cases[i].tok_len);
		size_t n = cases[i].user_len + 1 + cases[i].tok_len;
		memcpy(header, "Basic ", 6);
		b64(plain, n, header + 6);
		AuthResult r = auth_check(t, header, AUTH_WRITE);
		if (r != cases[i].want)
			print_error("case %zu: got %d\n", i, r);
		assert_int_equal(r, cases[i].want);
	}
	auth_free(t);
}

/* Every one of many tokens is found, the last as well as the first. */
static void test_check_every_token(void **state)
{
	(void)state;
	char spec[64 * 16];
	size_t o = 0;
	for (int i = 0; i < AUTH_MAX_TOKENS; i++)
		o += (size_t)snprintf(spec + o, sizeof(spec) - o, "%stoken-%02d%s", i ? "," : "", i,
				      i % 3 == 1 ? ":read" : i % 3 == 2 ? ":write" : "");
	AuthTokens *t = parse_ok(spec);
	for (int i = 0; i < AUTH_MAX_TOKENS; i++) {
		char h[64];
		snprintf(h, sizeof(h), "Bearer token-%02d", i);
		assert_int_equal(auth_check(t, h, AUTH_READ), i % 3 == 2 ? AUTH_FORBIDDEN : AUTH_OK);
		assert_int_equal(auth_check(t, h, AUTH_WRITE), i % 3 == 1 ? AUTH_FORBIDDEN : AUTH_OK);
	}
	assert_int_equal(auth_check(t, "Bearer token-64", AUTH_READ), AUTH_UNKNOWN);
	assert_int_equal(auth_check(t, "Bearer token-6", AUTH_READ), AUTH_UNKNOWN);
	auth_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_off),
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_parse_invalid),
		cmocka_unit_test(test_parse_small_err),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_both_scopes),
		cmocka_unit_test(test_check_long_basic),
		cmocka_unit_test(test_check_every_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
