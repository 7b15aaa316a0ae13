/* Unit tests of query: the strict query-string parser (decoding, what it refuses and which key it
 * names) and the regular-expression cost check (the accepted ARE subset and what is refused). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

static const char *const KEYS[] = {"name", "from", "to", "resolution"};
enum { K_NAME, K_FROM, K_TO, K_RES, K_N };

/* ---- query_parse: accepted ---- */

static void test_parse_accepts(void **state)
{
	(void)state;
	const struct {
		const char *in;
		const char *want[K_N]; /* NULL: absent */
	} cases[] = {
		{"", {NULL, NULL, NULL, NULL}},
		{"name=foo", {"foo", NULL, NULL, NULL}},
		{"name=foo.web&from=1355202720&to=1355202759&resolution=minute",
		 {"foo.web", "1355202720", "1355202759", "minute"}},
		{"resolution=h&name=x", {"x", NULL, NULL, "h"}},
		/* '+' is a space, %2B a plus */
		{"name=a+b", {"a b", NULL, NULL, NULL}},
		{"name=a%2Bb", {"a+b", NULL, NULL, NULL}},
		{"name=a%2bb", {"a+b", NULL, NULL, NULL}},
		{"from=2012-12-11+05%3A12%3A00+UTC", {NULL, "2012-12-11 05:12:00 UTC", NULL, NULL}},
		/* percent-encoded regex */
		{"name=my-app-%28prod%7Cstaging%29", {"my-app-(prod|staging)", NULL, NULL, NULL}},
		{"name=%5Efoo%5C.web%24", {"^foo\\.web$", NULL, NULL, NULL}},
		/* a percent-encoded key is the same key */
		{"na%6De=x", {"x", NULL, NULL, NULL}},
		/* valid multi-byte UTF-8: 2, 3 and 4 bytes, and the last code point */
		{"name=caf%C3%A9", {"caf\xc3\xa9", NULL, NULL, NULL}},
		{"name=%E2%82%AC%E2%82%AC", {"\xe2\x82\xac\xe2\x82\xac", NULL, NULL, NULL}},
		{"name=%F0%9F%98%80", {"\xf0\x9f\x98\x80", NULL, NULL, NULL}},
		{"name=%F4%8F%BF%BF", {"\xf4\x8f\xbf\xbf", NULL, NULL, NULL}},
		{"name=%ED%9F%BF", {"\xed\x9f\xbf", NULL, NULL, NULL}}, /* U+D7FF, just below the surrogates */
		/* empty values and pairs; a pair without '=' */
		{"name=", {"", NULL, NULL, NULL}},
		{"name", {"", NULL, NULL, NULL}},
		{"&&name=x&", {"x", NULL, NULL, NULL}},
		{"name=a=b", {"a=b", NULL, NULL, NULL}},
		/* unknown keys are ignored, even repeated */
		{"_=1&_=2&name=x&foo=bar", {"x", NULL, NULL, NULL}},
		{"Name=x&NAME=y", {NULL, NULL, NULL, NULL}}, /* keys are case-sensitive */
		{"=x&name=y", {"y", NULL, NULL, NULL}},
	};
	int failures = 0;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		QueryParams q;
		char err[200] = "", field[64] = "";
		if (!query_parse(cases[i].in, KEYS, K_N, &q, err, sizeof(err), field, sizeof(field))) {
			print_error("case %zu \"%s\": refused: %s (field %s)\n", i, cases[i].in, err, field);
			failures++;
			continue;
		}
		for (int k = 0; k < K_N; k++) {
			const char *want = cases[i].want[k], *got = q.val[k];
			if ((want == NULL) != (got == NULL) || (want && (strcmp(want, got) || q.len[k] != strlen(want)))) {
				print_error("case %zu \"%s\": %s = \"%s\", want \"%s\"\n", i, cases[i].in, KEYS[k],
					    got ? got : "(absent)", want ? want : "(absent)");
				failures++;
			}
		}
		query_free(&q);
	}
	assert_int_equal(failures, 0);
}

static void test_parse_null_is_no_parameters(void **state)
{
	(void)state;
	QueryParams q;
	char err[100], field[32];
	assert_true(query_parse(NULL, KEYS, K_N, &q, err, sizeof(err), field, sizeof(field)));
	for (int k = 0; k < K_N; k++)
		assert_null(q.val[k]);
	query_free(&q);
}

/* ---- query_parse: refused, with the key named ---- */

static void test_parse_refuses(void **state)
{
	(void)state;
	const struct {
		const char *in;
		const char *field; /* "" when no key can be named */
		const char *msg;   /* a substring of the message */
	} cases[] = {
		/* bad percent-encoding */
		{"name=%", "name", "percent-encoding"},
		{"name=%4", "name", "percent-encoding"},
		{"name=%zz", "name", "percent-encoding"},
		{"name=%4g", "name", "percent-encoding"},
		{"name=a%", "name", "percent-encoding"},
		{"name=x&from=%%31", "from", "percent-encoding"},
		{"n%ame=x", "n%ame", "percent-encoding"},
		/* NUL */
		{"name=a%00b", "name", "NUL"},
		{"name=%00", "name", "NUL"},
		{"to=1%00", "to", "NUL"},
		{"na%00me=x", "na%00me", "NUL"},
		/* invalid UTF-8 */
		{"name=%ff", "name", "UTF-8"},
		{"name=%fe", "name", "UTF-8"},
		{"name=%80", "name", "UTF-8"},            /* a lone continuation byte */
		{"name=%C3", "name", "UTF-8"},            /* truncated 2-byte */
		{"name=%C3x", "name", "UTF-8"},           /* lead without continuation */
		{"name=%E2%82", "name", "UTF-8"},         /* truncated 3-byte */
		{"name=%F0%9F%98", "name", "UTF-8"},      /* truncated 4-byte */
		{"name=%C0%AF", "name", "UTF-8"},         /* overlong '/' */
		{"name=%C1%BF", "name", "UTF-8"},         /* overlong */
		{"name=%E0%80%AF", "name", "UTF-8"},      /* overlong 3-byte */
		{"name=%F0%80%80%AF", "name", "UTF-8"},   /* overlong 4-byte */
		{"name=%ED%A0%80", "name", "UTF-8"},      /* U+D800, a surrogate */
		{"name=%ED%BF%BF", "name", "UTF-8"},      /* U+DFFF */
		{"name=%F4%90%80%80", "name", "UTF-8"},   /* U+110000 */
		{"name=%F5%80%80%80", "name", "UTF-8"},
		{"resolution=\xff", "resolution", "UTF-8"}, /* a raw byte */
		{"%ff=x", "%ff", "UTF-8"},                /* a bad key is named as sent */
		{"foo=%ff&name=x", "foo", "UTF-8"},       /* unknown keys are checked too */
		/* a key asked for, given twice */
		{"name=a&name=b", "name", "more than once"},
		{"name=a&name=a", "name", "more than once"},
		{"name=&name=b", "name", "more than once"},
		{"from=1&name=x&from=2", "from", "more than once"},
		{"name=a&na%6De=b", "name", "more than once"},
	};
	int failures = 0;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		QueryParams q;
		char err[200] = "", field[64] = "?";
		if (query_parse(cases[i].in, KEYS, K_N, &q, err, sizeof(err), field, sizeof(field))) {
			print_error("case %zu \"%s\": accepted\n", i, cases[i].in);
			query_free(&q);
			failures++;
			continue;
		}
		if (strcmp(field, cases[i].field) || !strstr(err, cases[i].msg)) {
			print_error("case %zu \"%s\": field \"%s\" message \"%s\"; want field \"%s\" and \"%s\"\n", i,
				    cases[i].in, field, err, cases[i].field, cases[i].msg);
			failures++;
		}
		if (q.buf || q.val[0]) {
			print_error("case %zu: refused but holds a buffer\n", i);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void test_parse_bounds_the_length(void **state)
{
	(void)state;
	char *qs = malloc(QUERY_MAX_BYTES + 2);
	assert_non_null(qs);
	memcpy(qs, "name=", 5);
	memset(qs + 5, 'a', QUERY_MAX_BYTES - 5);
	qs[QUERY_MAX_BYTES] = '\0';
	QueryParams q;
	char err[200], field[64];
	assert_true(query_parse(qs, KEYS, K_N, &q, err, sizeof(err), field, sizeof(field)));
	assert_int_equal(q.len[K_NAME], QUERY_MAX_BYTES - 5);
	query_free(&q);
	qs[QUERY_MAX_BYTES] = 'a';
	qs[QUERY_MAX_BYTES + 1] = '\0';
	assert_false(query_parse(qs, KEYS, K_N, &q, err, sizeof(err), field, sizeof(field)));
	assert_non_null(strstr(err, "8192"));
	assert_string_equal(field, "");
	free(qs);
}

static void test_parse_long_key_is_not_named(void **state)
{
	(void)state;
	char qs[200];
	memset(qs, 'k', 100);
	strcpy(qs + 100, "=%ff");
	QueryParams q;
	char err[200], field[16] = "?";
	assert_false(query_parse(qs, KEYS, K_N, &q, err, sizeof(err), field, sizeof(field)));
	assert_string_equal(field, "");
	assert_non_null(strstr(err, "a query parameter has invalid UTF-8"));
}

/* ---- query_regex_check ---- */

static void test_regex_accepts(void **state)
{
	(void)state;
	const char *cases[] = {
		"web",
		".",
		"my-app-(prod|staging)",
		"^foo\\.web\\.(requests|errors)$",
		"^my-app-[a-z]+\\.hits$",
		"(?:prod|staging)+",
		"(ab|cd)*x",
		"(abc){1,3}",
		"a{0,255}",
		"a{3}",
		"a{2,}",
		"a*?b+?c??d{1,2}?",
		"(a+)b(c*)",           /* quantifiers inside groups that are not quantified */
		"((ab)c)+",            /* nested groups without quantifiers inside */
		"[[:alpha:]]+\\d*",
		"[]a]+",               /* ']' first in a bracket is literal */
		"[^]a-z]",
		"[a\\]b]",
		"[(+*]+",              /* specials are literal in brackets */
		"[[.hyphen.]]",
		"[a-a]",               /* a range of one */
		"[0-9a-fA-F]+",
		"[a-]",                /* '-' last is literal */
		"[\xc3\xa9-\xc3\xbc]",   /* e-acute to u-umlaut: code points in order */
		"[[:xdigit:][:space:]]",
		"\\w+\\s\\W\\S\\D",
		"\\mfoo\\M\\yx\\Y\\Afoo\\Z",
		"\\x41\\u00e9\\U0001F600\\cA\\t\\n",
		"a{x",                 /* '{' not followed by a digit is a literal */
		"}]",
		"caf\xc3\xa9+",
		"\\\xc3\xa9",
		"",
	};
	int failures = 0;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char err[200] = "";
		if (!query_regex_check(cases[i], strlen(cases[i]), err, sizeof(err))) {
			print_error("case %zu \"%s\": refused: %s\n", i, cases[i], err);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void test_regex_refuses(void **state)
{
	(void)state;
	const struct {
		const char *in;
		size_t len; /* 0: strlen */
		const char *msg;
	} cases[] = {
		/* back-references */
		{"^((a+)\\2)+$", 0, "back-reference"},
		{"(a)\\1", 0, "back-reference"},
		{"(a)\\9", 0, "back-reference"},
		{"(?<x>a)\\k<x>", 0, "not supported"},
		{"(a)\\k", 0, "back-reference"},
		{"[\\1]", 0, "back-reference"},
		{"\\0", 0, "octal"},
		/* lookaround */
		{"foo(?=bar)", 0, "lookahead"},
		{"foo(?!bar)", 0, "lookahead"},
		{"(?<=foo)bar", 0, "lookahead"},
		{"(?<!foo)bar", 0, "lookahead"},
		/* embedded options and directors */
		{"(?i)foo", 0, "embedded options"},
		{"(?#comment)foo", 0, "embedded options"},
		{"(?", 0, "embedded options"},
		{"***:foo", 0, "directors"},
		{"***=foo", 0, "directors"},
		/* nested quantifiers */
		{"(a+)+", 0, "nested quantifiers"},
		{"(a*)*", 0, "nested quantifiers"},
		{"(a?)?", 0, "nested quantifiers"},
		{"(a|b*)+", 0, "nested quantifiers"},
		{"((ab)+c)*", 0, "nested quantifiers"},
		{"(a{2}){3}", 0, "nested quantifiers"},
		{"(?:a+)+", 0, "nested quantifiers"},
		{"(x(a+))*", 0, "nested quantifiers"},
		/* bounds */
		{"a{1,1000}", 0, "at most 255"},
		{"a{256}", 0, "at most 255"},
		{"a{99999999999999999999}", 0, "at most 255"},
		{"a{3,2}", 0, "m <= n"},
		{"a{1,x}", 0, "a bound"},
		{"a{1", 0, "a bound"},
		/* quantifier placement */
		{"a**", 0, "another quantifier"},
		{"a+*", 0, "another quantifier"},
		{"a*??", 0, "another quantifier"},
		{"a{2}{3}", 0, "another quantifier"},
		{"*a", 0, "something to repeat"},
		{"(*a)", 0, "something to repeat"},
		{"a|+b", 0, "something to repeat"},
		{"^*", 0, "something to repeat"},
		{"\\y+", 0, "something to repeat"},
		/* escapes */
		{"foo\\", 0, "backslash"},
		{"\\q", 0, "\\q"},
		{"\\p{L}", 0, "\\p"},
		{"\\xg", 0, "\\x"},
		{"\\u12", 0, "\\u"},
		{"\\U1234567", 0, "\\U"},
		{"\\c", 0, "\\c"},
		/* balance */
		{"(", 0, "unbalanced"},
		{"(a|b", 0, "unbalanced"},
		{"a)", 0, "unbalanced"},
		{"[a-z", 0, "unbalanced"},
		{"[]", 0, "unbalanced"},
		{"[[:alpha]", 0, "unbalanced"},
		{"[\\", 0, "backslash"},
		/* what PostgreSQL would refuse in a bracket */
		{"[z-a]", 0, "range"},
		{"x[9-0]", 0, "range"},
		{"[\xc3\xbc-\xc3\xa9]", 0, "range"},
		{"[[:foo:]]", 0, "character class"},
		{"[[:Alpha:]]", 0, "character class"},
		/* bytes */
		{"a\0b", 3, "UTF-8"},
		{"\xff", 0, "UTF-8"},
		{"caf\xc3", 0, "UTF-8"},
		{"\xed\xa0\x80", 0, "UTF-8"},
	};
	int failures = 0;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char err[200] = "";
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		if (query_regex_check(cases[i].in, len, err, sizeof(err))) {
			print_error("case %zu \"%s\": accepted\n", i, cases[i].in);
			failures++;
		} else if (!strstr(err, cases[i].msg)) {
			print_error("case %zu \"%s\": message \"%s\" lacks \"%s\"\n", i, cases[i].in, err, cases[i].msg);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

/* A group quantified inside but not itself quantified is fine: it does not nest. */
static void test_regex_inner_quantifier_without_outer_is_accepted(void **state)
{
	(void)state;
	char err[200];
	assert_true(query_regex_check("((a)+)", 6, err, sizeof(err)));
	assert_true(query_regex_check("((a)+)b", 7, err, sizeof(err)));
	assert_false(query_regex_check("((a)+)+", 7, err, sizeof(err)));
}

static void repeat(char *dst, const char *s, int times)
{
	dst[0] = '\0';
	for (int i = 0; i < times; i++)
		strcat(dst, s);
}

/* Many quantifiers, or bounds making many copies of an atom, are slow in PostgreSQL although
 * none nests. */
static void test_regex_bounds_the_size(void **state)
{
	(void)state;
	const struct {
		const char *unit;
		int times;
		bool ok;
	} cases[] = {
		{".*", 16, true},
		{".*", 17, false},
		{"(a|b)?", 16, true},
		{"(a|b)?", 17, false},
		{"[a-z]{0,255}", 1, true},   /* 254 copies */
		{"[a-z]{0,255}", 2, false},  /* 508 */
		{"(abc){85}", 1, true},      /* 252 */
		{"(abc){87}", 1, false},     /* 258 */
		{"(abc){255}", 1, false},
		{"(abcdef){1,}", 16, true},  /* {1,} copies nothing */
		{"(a(bc)d)", 200, true},     /* no quantifier at all */
		{"((ab){2}c){0,20}", 1, false}, /* nested */
		{"a{50}", 5, true},          /* 245 */
		{"a{50}", 6, false},         /* 294 */
	};
	int failures = 0;
	char re[4096], err[200];
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		repeat(re, cases[i].unit, cases[i].times);
		err[0] = '\0';
		if (query_regex_check(re, strlen(re), err, sizeof(err)) != cases[i].ok) {
			print_error("case %zu %s x %d: %s %s\n", i, cases[i].unit, cases[i].times,
				    cases[i].ok ? "refused" : "accepted", err);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void test_regex_bounds_group_depth(void **state)
{
	(void)state;
	char re[200], err[200];
	size_t n = 0;
	for (int i = 0; i < 32; i++)
		re[n++] = '(';
	re[n++] = 'a';
	for (int i = 0; i < 32; i++)
		re[n++] = ')';
	assert_true(query_regex_check(re, n, err, sizeof(err)));
	memmove(re + 1, re, n);
	re[0] = '(';
	re[++n] = ')';
	n++;
	assert_false(query_regex_check(re, n, err, sizeof(err)));
	assert_non_null(strstr(err, "too deeply"));
}

/* ---- query_utf8_valid ---- */

static void test_utf8(void **state)
{
	(void)state;
	assert_true(query_utf8_valid("", 0));
	assert_true(query_utf8_valid("abc", 3));
	assert_true(query_utf8_valid("\xc2\x80\xdf\xbf", 4));
	assert_true(query_utf8_valid("\xe0\xa0\x80\xef\xbf\xbf", 6));
	assert_true(query_utf8_valid("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8));
	assert_false(query_utf8_valid("\xc2", 1));
	assert_false(query_utf8_valid("\xc2\x80", 1)); /* the length is what counts */
	assert_false(query_utf8_valid("\xe0\x9f\xbf", 3));
	assert_false(query_utf8_valid("\xf0\x8f\xbf\xbf", 4));
	assert_false(query_utf8_valid("\xe1\x80\xc0", 3));
	assert_false(query_utf8_valid("a\0", 2));
}

/* A form body: the repeatable key collects every value in order, the others stay strict, and
 * the body is read to its length, not to a NUL. */
static void test_form_multi(void **state)
{
	(void)state;
	static const char *const keys[] = {"from", "until"};
	const char body[] = "target=a.b&from=-6h&target=sumSeries(a.*)&target=&until=now#";
	QueryParams q;
	char err[200], field[64];
	assert_true(query_parse_form(body, sizeof(body) - 2, keys, 2, "target", &q, err, sizeof(err), field,
				     sizeof(field)));
	assert_int_equal(q.nmulti, 3);
	assert_string_equal(q.multi[0], "a.b");
	assert_string_equal(q.multi[1], "sumSeries(a.*)");
	assert_string_equal(q.multi[2], "");
	assert_string_equal(q.val[0], "-6h");
	assert_string_equal(q.val[1], "now"); /* the '#' past len is not read */
	query_free(&q);

	assert_false(query_parse_form("from=1&from=2", 13, keys, 2, "target", &q, err, sizeof(err), field,
				      sizeof(field)));
	assert_non_null(strstr(err, "more than once"));
	assert_false(query_parse_form("target=a\0b", 10, keys, 2, "target", &q, err, sizeof(err), field,
				      sizeof(field)));
	assert_non_null(strstr(err, "NUL"));
	char many[QUERY_MAX_MULTI * 4 + 8] = "";
	for (int i = 0; i <= QUERY_MAX_MULTI; i++)
		strcat(many, "t=x&");
	assert_false(query_parse_form(many, strlen(many), keys, 2, "t", &q, err, sizeof(err), field, sizeof(field)));
	assert_non_null(strstr(err, "more than 64 times"));
	assert_false(query_parse_form("target=%zz", 10, keys, 2, "target", &q, err, sizeof(err), field,
				      sizeof(field)));
	assert_string_equal(field, "target");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_parse_null_is_no_parameters),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_parse_bounds_the_length),
		cmocka_unit_test(test_parse_long_key_is_not_named),
		cmocka_unit_test(test_regex_accepts),
		cmocka_unit_test(test_regex_refuses),
		cmocka_unit_test(test_regex_inner_quantifier_without_outer_is_accepted),
		cmocka_unit_test(test_regex_bounds_the_size),
		cmocka_unit_test(test_regex_bounds_group_depth),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_form_multi),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
