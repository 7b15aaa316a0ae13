/* Query strings and regular expressions from clients, checked before anything reaches a
 * database (see query.h for the rules).
 *
 * query_parse decodes in place into one buffer as large as the query string: each pair's key is
 * decoded at the write position, then overwritten by its value, and the position advances only
 * past the values of keys the caller asked for. A kept value plus its NUL is never longer than
 * its raw "key=value", so the buffer cannot overflow.
 *
 * query_regex_check is one pass over the pattern with a stack of open groups, each remembering
 * whether it holds a quantifier: a quantifier on a group that does is what lets a match try
 * exponentially many ways to split the input. */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_DEPTH_MAX 32
/* Measured on PostgreSQL 15 against 10,000 names: [a-z]{0,255}x takes 0.5 s and three such
 * bounds in a row 2 s (the automaton grows with the copies a bound makes; compiling sixteen of
 * them takes 0.3 s, sixty-four over 5 s); sixteen .* take 0.1 s, and 2,000 of them ran past a
 * 5 s statement_timeout on one short string. So: one bound's worth of copies, a few quantifiers. */
#define QUANT_MAX 16
#define COPIES_MAX 255

bool query_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		/* RFC 3629, table 3-7 of Unicode: the second byte's range rules out overlong forms,
		 * surrogates (ED A0..BF) and code points past U+10FFFF. */
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c == 0xe0)
			n = 2, lo = 0xa0;
		else if (c == 0xed)
			n = 2, hi = 0x9f;
		else if (c >= 0xe1 && c <= 0xef)
			n = 2;
		else if (c == 0xf0)
			n = 3, lo = 0x90;
		else if (c == 0xf4)
			n = 3, hi = 0x8f;
		else if (c >= 0xf1 && c <= 0xf3)
			n = 3;
		else
			return false;
		if (len - i - 1 < n)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return false;
		i += n + 1;
	}
	return true;
}

/* ---------- query strings ---------- */

typedef enum { DEC_OK, DEC_BAD_PERCENT, DEC_NUL, DEC_UTF8 } DecodeResult;

/* Decodes [s, end) into dst (room for end - s bytes); the result is never longer. */
static DecodeResult decode(const char *s, const char *end, char *dst, size_t *out_len)
{
	size_t n = 0;
	while (s < end) {
		char c = *s++;
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int h = end - s >= 2 ? hex_digit(s[0]) : -1;
			int l = h >= 0 ? hex_digit(s[1]) : -1;
			if (l < 0)
				return DEC_BAD_PERCENT;
			c = (char)(h * 16 + l);
			s += 2;
			if (c == 0)
				return DEC_NUL;
		}
		dst[n++] = c;
	}
	*out_len = n;
	return query_utf8_valid(dst, n) ? DEC_OK : DEC_UTF8;
}

/* A key is named in an error (it ends up in a JSON answer) only if it is short, valid UTF-8 and
 * free of control characters. */
static bool set_field(char *field, size_t fieldlen, const char *s, size_t len)
{
	if (len == 0 || len >= fieldlen || !query_utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	memcpy(field, s, len);
	field[len] = '\0';
	return true;
}

static const char *decode_problem(DecodeResult r)
{
	switch (r) {
	case DEC_BAD_PERCENT:
		return "bad percent-encoding (% must be followed by two hex digits)";
	case DEC_NUL:
		return "a NUL byte (%00)";
	case DEC_UTF8:
		return "invalid UTF-8";
	case DEC_OK:
		break;
	}
	return "";
}

static bool parse(const char *qs, size_t n, const char *const *keys, size_t nkeys, const char *multi,
		  QueryParams *out, char *err, size_t errlen, char *field, size_t fieldlen)
{
	memset(out, 0, sizeof(*out));
	if (fieldlen)
		field[0] = '\0';
	if (nkeys > QUERY_MAX_KEYS)
		nkeys = QUERY_MAX_KEYS;
	if (n == 0)
		return true;
	char *buf = malloc(n + 1);
	if (!buf)
		fatal("at=oom");
	size_t pos = 0;
	const char *p = qs, *end = qs + n;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *seg_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(seg_end - p));
		const char *key_end = eq ? eq : seg_end;
		const char *next = amp ? amp + 1 : end;
		if (seg_end == p) {
			p = next;
			continue;
		}
		size_t klen = 0;
		DecodeResult r = decode(p, key_end, buf + pos, &klen);
		if (r != DEC_OK) {
			set_field(field, fieldlen, p, (size_t)(key_end - p));
			snprintf(err, errlen, "a query parameter's name has %s", decode_problem(r));
			goto fail;
		}
		int idx = -1;
		for (size_t i = 0; i < nkeys && idx < 0; i++)
			if (strlen(keys[i]) == klen && memcmp(keys[i], buf + pos, klen) == 0)
				idx = (int)i;
		bool is_multi = multi && strlen(multi) == klen && memcmp(multi, buf + pos, klen) == 0;
		if (!set_field(field, fieldlen, buf + pos, klen))
			set_field(field, fieldlen, p, (size_t)(key_end - p));
		const char *shown = fieldlen && field[0] ? field : "a query parameter";
		if (idx >= 0 && out->val[idx]) {
			snprintf(err, errlen, "%s is given more than once", shown);
			goto fail;
		}
		if (is_multi && out->nmulti == QUERY_MAX_MULTI) {
			snprintf(err, errlen, "%s is given more than %d times", shown, QUERY_MAX_MULTI);
			goto fail;
		}
		size_t vlen = 0;
		if (eq) {
			r = decode(eq + 1, seg_end, buf + pos, &vlen);
			if (r != DEC_OK) {
				snprintf(err, errlen, "%s has %s", shown, decode_problem(r));
				goto fail;
			}
		}
		if (fieldlen)
			field[0] = '\0';
		if (idx >= 0 || is_multi) {
			buf[pos + vlen] = '\0';
			if (is_multi) {
				out->multi[out->nmulti] = buf + pos;
				out->multi_len[out->nmulti++] = vlen;
			} else {
				out->val[idx] = buf + pos;
				out->len[idx] = vlen;
			}
			pos += vlen + 1;
		}
		p = next;
	}
	out->buf = buf;
	return true;
fail:
	free(buf);
	memset(out, 0, sizeof(*out));
	return false;
}

bool query_parse(const char *qs, const char *const *keys, size_t nkeys, QueryParams *out, char *err,
		 size_t errlen, char *field, size_t fieldlen)
{
	size_t n = qs ? strnlen(qs, QUERY_MAX_BYTES + 1) : 0;
	if (n > QUERY_MAX_BYTES) {
		memset(out, 0, sizeof(*out));
		if (fieldlen)
			field[0] = '\0';
		snprintf(err, errlen, "the query string is longer than %d bytes", QUERY_MAX_BYTES);
		return false;
	}
	return parse(qs, n, keys, nkeys, NULL, out, err, errlen, field, fieldlen);
}

bool query_parse_form(const char *qs, size_t len, const char *const *keys, size_t nkeys, const char *multi,
		      QueryParams *out, char *err, size_t errlen, char *field, size_t fieldlen)
{
	if (len > QUERY_FORM_MAX_BYTES) {
		memset(out, 0, sizeof(*out));
		if (fieldlen)
			field[0] = '\0';
		snprintf(err, errlen, "the form is longer than %d bytes", QUERY_FORM_MAX_BYTES);
		return false;
	}
	if (qs && memchr(qs, '\0', len)) {
		memset(out, 0, sizeof(*out));
		if (fieldlen)
			field[0] = '\0';
		snprintf(err, errlen, "the form holds a NUL byte");
		return false;
	}
	return parse(qs, qs ? len : 0, keys, nkeys, multi, out, err, errlen, field, fieldlen);
}

void query_free(QueryParams *q)
{
	free(q->buf);
	memset(q, 0, sizeof(*q));
}

/* ---------- regular expressions ---------- */

typedef enum {
	LAST_NONE,       /* start, after '(' or '|': nothing a quantifier could apply to */
	LAST_ATOM,       /* a character, class, bracket or escape */
	LAST_GROUP,      /* a closed group */
	LAST_CONSTRAINT, /* ^ $ \m \M \y \Y \A \Z: no width, nothing to repeat */
	LAST_QUANT,      /* a quantifier; a '?' may still make it lazy */
	LAST_LAZY,       /* a lazy quantifier */
} Last;

typedef enum { ESC_ATOM, ESC_CONSTRAINT, ESC_BAD } EscKind;

static bool is_hex(char c)
{
	return hex_digit(c) >= 0;
}

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool fail_re(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	return false;
}

/* The escape starting at re[*i] == '\\'; advances *i past it. */
static EscKind check_escape(const char *re, size_t len, size_t *i, char *err, size_t errlen)
{
	size_t j = *i + 1;
	if (j >= len) {
		fail_re(err, errlen, "a regular expression cannot end with a backslash");
		return ESC_BAD;
	}
	char c = re[j++];
	EscKind kind = ESC_ATOM;
	if ((c >= '1' && c <= '9') || c == 'k') {
		fail_re(err, errlen, "back-references (\\1 to \\9, \\k) are not supported: they can make a match run for seconds");
		return ESC_BAD;
	} else if (c == '0') {
		fail_re(err, errlen, "octal escapes (\\0...) are not supported");
		return ESC_BAD;
	} else if (c == 'x') {
		size_t start = j;
		while (j < len && is_hex(re[j]) && j - start < 8)
			j++;
		if (j == start) {
			fail_re(err, errlen, "\\x must be followed by hex digits");
			return ESC_BAD;
		}
	} else if (c == 'u' || c == 'U') {
		size_t want = c == 'u' ? 4 : 8;
		for (size_t k = 0; k < want; k++, j++)
			if (j >= len || !is_hex(re[j])) {
				fail_re(err, errlen, c == 'u' ? "\\u must be followed by 4 hex digits"
							      : "\\U must be followed by 8 hex digits");
				return ESC_BAD;
			}
	} else if (c == 'c') {
		if (j >= len || (unsigned char)re[j] < 0x21 || (unsigned char)re[j] > 0x7e) {
			fail_re(err, errlen, "\\c must be followed by a printable ASCII character");
			return ESC_BAD;
		}
		j++;
	} else if (c && strchr("mMyYAZ", c)) {
		kind = ESC_CONSTRAINT;
	} else if (is_alnum(c) && !strchr("dswDSWntrfvaebB", c)) {
		snprintf(err, errlen, "the escape \\%c is not supported", c);
		return ESC_BAD;
	}
	/* Anything else escaped is itself; a multi-byte character is consumed whole. */
	while (j < len && ((unsigned char)re[j] & 0xc0) == 0x80)
		j++;
	*i = j;
	return kind;
}

/* The code point of the UTF-8 character at re[*j] (valid UTF-8: checked first); advances *j. */
static uint32_t next_char(const char *re, size_t len, size_t *j)
{
	unsigned char c = (unsigned char)re[*j];
	int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
	uint32_t cp = extra ? c & (0x3f >> extra) : c;
	(*j)++;
	for (int k = 0; k < extra && *j < len; k++, (*j)++)
		cp = cp << 6 | ((unsigned char)re[*j] & 0x3f);
	return cp;
}

/* The bracket expression starting at re[*i] == '['; advances *i past its ']'. PostgreSQL
 * refuses a range whose end comes before its start ([z-a]) and an unknown class ([[:foo:]]):
 * found here, so that the answer names the parameter that holds them. */
static bool check_bracket(const char *re, size_t len, size_t *i, char *err, size_t errlen)
{
	static const char *const classes[] = {"alnum", "alpha", "blank", "cntrl", "digit", "graph",
					      "lower", "print", "punct", "space", "upper", "xdigit"};
	size_t j = *i + 1;
	bool have_prev = false; /* prev: the last plain character, which may start a range */
	uint32_t prev = 0;
	if (j < len && re[j] == '^')
		j++;
	if (j < len && re[j] == ']') { /* a ']' first is a literal */
		j++;
		have_prev = true;
		prev = ']';
	}
	for (;;) {
		if (j >= len)
			return fail_re(err, errlen, "unbalanced brackets: a [ is not closed");
		char c = re[j];
		if (c == ']') {
			*i = j + 1;
			return true;
		}
		if (c == '[' && j + 1 < len && (re[j + 1] == ':' || re[j + 1] == '.' || re[j + 1] == '=')) {
			char d = re[j + 1];
			size_t k = j + 2;
			while (k + 1 < len && !(re[k] == d && re[k + 1] == ']'))
				k++;
			if (k + 1 >= len)
				return fail_re(err, errlen, "unbalanced brackets: a [: [. or [= is not closed");
			if (d == ':') {
				bool known = false;
				for (size_t n = 0; n < ARRAY_LEN(classes); n++)
					known |= strlen(classes[n]) == k - (j + 2) && memcmp(classes[n], re + j + 2, k - (j + 2)) == 0;
				if (!known)
					return fail_re(err, errlen,
						       "unknown character class in [: :] (alnum, alpha, blank, cntrl, digit, "
						       "graph, lower, print, punct, space, upper, xdigit)");
			}
			j = k + 2;
			have_prev = false;
		} else if (c == '\\') {
			if (check_escape(re, len, &j, err, errlen) == ESC_BAD)
				return false;
			have_prev = false;
		} else if (c == '-' && have_prev && j + 1 < len && re[j + 1] != ']' && re[j + 1] != '[' &&
			   re[j + 1] != '\\') {
			j++;
			uint32_t end = next_char(re, len, &j);
			if (end < prev)
				return fail_re(err, errlen, "invalid character range: its end comes before its start");
			have_prev = false;
		} else {
			prev = next_char(re, len, &j);
			have_prev = true;
		}
	}
}

bool query_regex_check(const char *re, size_t len, char *err, size_t errlen)
{
	if (!query_utf8_valid(re, len))
		return fail_re(err, errlen, "the regular expression must be UTF-8 without NUL bytes");
	if (len >= 3 && memcmp(re, "***", 3) == 0)
		return fail_re(err, errlen, "the directors ***: and ***= are not supported");
	bool has_quant[GROUP_DEPTH_MAX + 1] = {false}; /* [0] is the whole expression */
	size_t atoms[GROUP_DEPTH_MAX + 1] = {0};       /* atoms in each open group, copies included */
	size_t last_atoms = 0;                          /* atoms of the last atom or closed group */
	size_t copies = 0, nquant = 0;
	unsigned bound = 0; /* of the quantifier being read: the copies {m,n} makes */
	size_t depth = 0;
	Last last = LAST_NONE;
	bool group_quantified = false; /* of the last closed group */
	size_t i = 0;
	while (i < len) {
		char c = re[i];
		bool quant = false;
		switch (c) {
		case '\\': {
			EscKind k = check_escape(re, len, &i, err, errlen);
			if (k == ESC_BAD)
				return false;
			last = k == ESC_CONSTRAINT ? LAST_CONSTRAINT : LAST_ATOM;
			if (last == LAST_ATOM)
				atoms[depth]++, last_atoms = 1;
			continue;
		}
		case '[':
			if (!check_bracket(re, len, &i, err, errlen))
				return false;
			last = LAST_ATOM;
			atoms[depth]++, last_atoms = 1;
			continue;
		case '(':
			if (i + 1 < len && re[i + 1] == '?') {
				char d = i + 2 < len ? re[i + 2] : '\0';
				char e = i + 3 < len ? re[i + 3] : '\0';
				if (d == '=' || d == '!' || (d == '<' && (e == '=' || e == '!')))
					return fail_re(err, errlen, "lookahead and lookbehind ((?= (?! (?<= (?<!) are not supported");
				if (d != ':')
					return fail_re(err, errlen, "embedded options and comments ((?...)) are not supported; (?:...) is");
				i += 2;
			}
			if (depth == GROUP_DEPTH_MAX)
				return fail_re(err, errlen, "groups are nested too deeply");
			has_quant[++depth] = false;
			atoms[depth] = 0;
			last = LAST_NONE;
			i++;
			continue;
		case ')':
			if (depth == 0)
				return fail_re(err, errlen, "unbalanced parentheses: a ) has no (");
			group_quantified = has_quant[depth];
			last_atoms = atoms[depth--];
			has_quant[depth] |= group_quantified;
			atoms[depth] += last_atoms;
			last = LAST_GROUP;
			i++;
			continue;
		case '|':
			last = LAST_NONE;
			i++;
			continue;
		case '^':
		case '$':
			last = LAST_CONSTRAINT;
			i++;
			continue;
		case '?':
			if (last == LAST_QUANT) {
				last = LAST_LAZY;
				i++;
				continue;
			}
			quant = true;
			i++;
			break;
		case '*':
		case '+':
			quant = true;
			i++;
			break;
		case '{':
			if (i + 1 < len && re[i + 1] >= '0' && re[i + 1] <= '9') {
				/* Digits are counted, not just summed, so that no number can overflow. */
				unsigned m = 0, n = 0;
				bool big = false, has_n = false, comma = false;
				size_t j = i + 1;
				for (; j < len && re[j] >= '0' && re[j] <= '9'; j++)
					m = m > QUERY_REPEAT_MAX ? m : m * 10 + (unsigned)(re[j] - '0');
				if (j < len && re[j] == ',') {
					comma = true;
					for (j++; j < len && re[j] >= '0' && re[j] <= '9'; j++, has_n = true)
						n = n > QUERY_REPEAT_MAX ? n : n * 10 + (unsigned)(re[j] - '0');
				}
				if (j >= len || re[j] != '}')
					return fail_re(err, errlen, "a bound must be {m}, {m,} or {m,n}");
				big = m > QUERY_REPEAT_MAX || (has_n && n > QUERY_REPEAT_MAX);
				if (big)
					return fail_re(err, errlen, "the numbers of a bound {m,n} must be at most 255");
				if (comma && has_n && n < m)
					return fail_re(err, errlen, "a bound {m,n} needs m <= n");
				quant = true;
				bound = comma ? (has_n ? n : m + 1) : m;
				i = j + 1;
				break;
			}
			/* In an ARE a '{' not followed by a digit is an ordinary character. */
			last = LAST_ATOM;
			atoms[depth]++, last_atoms = 1;
			i++;
			continue;
		default:
			last = LAST_ATOM;
			atoms[depth]++, last_atoms = 1;
			i++;
			while (i < len && ((unsigned char)re[i] & 0xc0) == 0x80)
				i++;
			continue;
		}
		/* A quantifier. */
		if (!quant)
			continue;
		if (last == LAST_QUANT || last == LAST_LAZY)
			return fail_re(err, errlen, "a quantifier cannot follow another quantifier");
		if (last == LAST_NONE || last == LAST_CONSTRAINT)
			return fail_re(err, errlen, "a quantifier needs something to repeat before it");
		if (last == LAST_GROUP && group_quantified)
			return fail_re(err, errlen,
				       "nested quantifiers (a quantified group holding a quantifier, like (a+)+) are "
				       "not supported: they can make a match run for seconds");
		if (++nquant > QUANT_MAX)
			return fail_re(err, errlen, "at most 16 quantifiers are supported in one regular expression");
		if (bound > 1) {
			copies += last_atoms * (bound - 1);
			atoms[depth] += last_atoms * (bound - 1);
			if (copies > COPIES_MAX)
				return fail_re(err, errlen,
					       "bounds {m,n} may repeat at most 255 atoms in all (a{1,255} repeats one "
					       "254 times, (ab){3} two twice): more is slow to match");
		}
		bound = 0;
		has_quant[depth] = true;
		last = LAST_QUANT;
	}
	if (depth > 0)
		return fail_re(err, errlen, "unbalanced parentheses: a ( is not closed");
	return true;
}
