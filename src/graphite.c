/* Graphite's render API without I/O: globs over dotted paths and their PostgreSQL pre-filter,
 * Graphite's time forms, the target language, the functions over in-memory series,
 * consolidation for maxDataPoints and the JSON of /render and /functions.
 *
 * Invariants: a parsed GraphiteExpr has been checked whole (function names, argument count and
 * types, path patterns, intervals, function names given as strings), so evaluation can only
 * fail on what the data causes. Every series owns its strings and values; a function consumes
 * the lists its arguments evaluate to and appends new or modified series to its output only
 * once nothing can fail any more, so a failed evaluation leaves the caller's list as it was.
 * A null point is NAN throughout.
 *
 * Where the code departs from graphite-web 1.1 it says so (movingAverage's window, summarize's
 * last bucket, the maxDataPoints bands, aliasByNode reading the metric path). */
#include "graphite.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "query.h"
#include "tm.h"

/* ---------- small helpers ---------- */

static void *gmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		fatal("at=oom bytes=%zu", n);
	return p;
}

static void *gcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		fatal("at=oom bytes=%zu", n * size);
	return p;
}

static char *gstrndup(const char *s, size_t n)
{
	char *p = gmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *gstrdup(const char *s)
{
	return gstrndup(s, strlen(s));
}

/* printf into a new string. */
PRINTF_LIKE(1, 2)
static char *gprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = gmalloc(n > 0 ? (size_t)n + 1 : 1);
	va_start(ap, fmt);
	vsnprintf(p, n > 0 ? (size_t)n + 1 : 1, fmt, ap);
	va_end(ap);
	return p;
}

static char *buf_str(Buf *b)
{
	if (!b->len) { /* buf_reserve alone leaves no terminator */
		buf_free(b);
		return gstrdup("");
	}
	size_t n;
	return buf_take(b, &n);
}

/* The character at s[*i]: a code point for well-formed UTF-8, else the byte itself, so that any
 * input has a meaning. Advances *i. */
static uint32_t u8_next(const char *str, size_t len, size_t *i)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[*i];
	int extra = c >= 0xf0 && c < 0xf8 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
	if (extra == 0 || *i + (size_t)extra >= len) {
		(*i)++;
		return c;
	}
	uint32_t cp = c & (0x3fu >> extra);
	for (int k = 1; k <= extra; k++) {
		unsigned char d = s[*i + (size_t)k];
		if ((d & 0xc0) != 0x80) {
			(*i)++;
			return c;
		}
		cp = cp << 6 | (d & 0x3fu);
	}
	*i += (size_t)extra + 1;
	return cp;
}

static bool is_alnum_ascii(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* UTF-8 without C0/C1 control characters or DEL, as metric names are; with spaces, also tab,
 * newline and carriage return (a target typed on several lines). */
static bool text_valid(const char *s, size_t len, bool spaces)
{
	if (!query_utf8_valid(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && !(spaces && is_space((char)c))) || c == 0x7f ||
		    (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] <= 0x9f))
			return false;
	}
	return true;
}

/* ---------- patterns ---------- */

/* A class starting at g[i] == '[': the index after its ']', or 0 when it is not closed. */
static size_t class_end(const char *g, size_t glen, size_t i)
{
	size_t j = i + 1;
	if (j < glen && (g[j] == '!' || g[j] == '^'))
		j++;
	if (j < glen && g[j] == ']') /* a ']' first is a member */
		j++;
	while (j < glen && g[j] != ']')
		j++;
	return j < glen ? j + 1 : 0;
}

/* A member of a class: the characters lo..hi, written at g[at..end) (the range's second end
 * at g[hi_at..end)). */
typedef struct ClassMember {
	uint32_t lo, hi;
	size_t at, lo_end, hi_at, end;
	bool range;
} ClassMember;

/* Where the members of the class at g[i] == '[' start, and whether it is negated. */
static size_t class_body(const char *g, size_t i, bool *neg)
{
	*neg = g[i + 1] == '!' || g[i + 1] == '^';
	return i + 1 + *neg;
}

/* The next member before stop (the closing ']'); a '-' first or last is a member. */
static bool class_next(const char *g, size_t stop, size_t *j, ClassMember *m)
{
	if (*j >= stop)
		return false;
	m->at = *j;
	m->lo = m->hi = u8_next(g, stop, j);
	m->lo_end = m->hi_at = *j;
	m->range = *j + 1 < stop && g[*j] == '-';
	if (m->range) {
		m->hi_at = ++*j;
		m->hi = u8_next(g, stop, j);
	}
	m->end = *j;
	return true;
}

/* cp is in the class g[i..end) (g[i] == '[', g[end-1] == ']'). */
static bool class_has(const char *g, size_t i, size_t end, uint32_t cp)
{
	bool neg, in = false;
	size_t j = class_body(g, i, &neg);
	ClassMember m;
	while (class_next(g, end - 1, &j, &m))
		in |= cp >= m.lo && cp <= m.hi;
	return in != neg;
}

bool graphite_pattern_check(const char *p, size_t len, char *err, size_t errlen)
{
	if (len == 0) {
		snprintf(err, errlen, "a path pattern cannot be empty");
		return false;
	}
	if (len > GRAPHITE_PATTERN_MAX) {
		snprintf(err, errlen, "a path pattern is at most %d bytes", GRAPHITE_PATTERN_MAX);
		return false;
	}
	if (!text_valid(p, len, false)) {
		snprintf(err, errlen, "a path pattern must be UTF-8 without control characters");
		return false;
	}
	bool in_brace = false;
	size_t seg_start = 0;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (c == '[') {
			size_t end = class_end(p, len, i);
			if (!end) {
				snprintf(err, errlen, "unbalanced brackets: the [ at offset %zu is not closed", i);
				return false;
			}
			bool neg;
			size_t j = class_body(p, i, &neg);
			ClassMember m;
			while (class_next(p, end - 1, &j, &m)) {
				if (m.lo == '.' || m.hi == '.') {
					snprintf(err, errlen, "a [...] cannot hold '.' (offset %zu): '.' separates segments",
						 m.at);
					return false;
				}
				if (m.hi < m.lo) {
					snprintf(err, errlen, "the range at offset %zu in [...] ends before it starts", m.at);
					return false;
				}
			}
			i = end - 1;
		} else if (c == ']') {
			snprintf(err, errlen, "unbalanced brackets: the ] at offset %zu has no [", i);
			return false;
		} else if (c == '{') {
			if (in_brace) {
				snprintf(err, errlen, "braces cannot be nested (offset %zu)", i);
				return false;
			}
			in_brace = true;
		} else if (c == '}') {
			if (!in_brace) {
				snprintf(err, errlen, "unbalanced braces: the } at offset %zu has no {", i);
				return false;
			}
			in_brace = false;
		} else if (c == '.') {
			if (in_brace) {
				snprintf(err, errlen, "a {...} cannot hold '.' (offset %zu): '.' separates segments", i);
				return false;
			}
			if (i == seg_start) {
				snprintf(err, errlen, "a path pattern cannot have an empty segment (offset %zu)", i);
				return false;
			}
			seg_start = i + 1;
		}
	}
	if (in_brace) {
		snprintf(err, errlen, "unbalanced braces: a { is not closed");
		return false;
	}
	if (seg_start == len) {
		snprintf(err, errlen, "a path pattern cannot end with '.'");
		return false;
	}
	return true;
}

size_t graphite_nsegs(const char *s, size_t len)
{
	size_t n = 1;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '.';
	return n;
}

bool graphite_seg(const char *s, size_t len, long i, const char **seg, size_t *seglen)
{
	size_t n = graphite_nsegs(s, len);
	if (i < 0)
		i += (long)n;
	if (i < 0 || (size_t)i >= n)
		return false;
	size_t start = 0, k = 0;
	for (size_t j = 0; j <= len; j++) {
		if (j < len && s[j] != '.')
			continue;
		if (k++ == (size_t)i) {
			*seg = s + start;
			*seglen = j - start;
			return true;
		}
		start = j + 1;
	}
	return false;
}

/* ---------- glob matching: a Thompson simulation over positions in the glob ---------- */

enum { G_LIT, G_STAR, G_ANY, G_CLASS, G_OPEN, G_ALT, G_CLOSE };
#define GLOB_WORDS ((GRAPHITE_PATTERN_MAX + 1 + 63) / 64)

typedef struct Glob {
	const char *g;
	size_t len;
	uint8_t kind[GRAPHITE_PATTERN_MAX];
	uint16_t to[GRAPHITE_PATTERN_MAX]; /* class: its end; ',' : after the '}'; '{': its '}' */
} Glob;

/* Marks what each byte of the glob is. An unclosed '[' or '{' stays a literal character. */
static void glob_prepare(Glob *G, const char *g, size_t len)
{
	G->g = g;
	G->len = len;
	memset(G->kind, G_LIT, len);
	size_t open = SIZE_MAX;
	for (size_t i = 0; i < len; i++) {
		char c = g[i];
		if (c == '*') {
			G->kind[i] = G_STAR;
		} else if (c == '?') {
			G->kind[i] = G_ANY;
		} else if (c == '[') {
			size_t end = class_end(g, len, i);
			if (end) {
				G->kind[i] = G_CLASS;
				G->to[i] = (uint16_t)end;
				for (size_t j = i + 1; j < end; j++) /* members, not structure */
					G->kind[j] = G_LIT;
				i = end - 1;
			}
		} else if (c == '{' && open == SIZE_MAX) {
			open = i;
		} else if (c == '}' && open != SIZE_MAX) {
			G->kind[open] = G_OPEN;
			G->to[open] = (uint16_t)i;
			G->kind[i] = G_CLOSE;
			for (size_t j = open + 1; j < i; j++) {
				if (g[j] == ',' && G->kind[j] == G_LIT) {
					G->kind[j] = G_ALT;
					G->to[j] = (uint16_t)(i + 1);
				} else if (G->kind[j] == G_CLASS) {
					j = G->to[j] - 1u;
				}
			}
			open = SIZE_MAX;
		}
	}
}

/* Adds state pos to set with its epsilon closure (star skipped, brace entered or left). A state
 * is pushed only while it is not in the set, and each one pushes its successors once: at most
 * one per position plus one per alternative, so the stack below cannot overflow. */
static void glob_add(const Glob *G, uint64_t *set, size_t pos)
{
	uint16_t stack[2 * (GRAPHITE_PATTERN_MAX + 1)];
	size_t sp = 0;
#define PUSH(q)                                                                                                  \
	do {                                                                                                     \
		size_t q_ = (q);                                                                                 \
		if (!(set[q_ / 64] & (UINT64_C(1) << (q_ % 64))))                                                \
			stack[sp++] = (uint16_t)q_;                                                              \
	} while (0)
	PUSH(pos);
	while (sp) {
		size_t p = stack[--sp];
		if (set[p / 64] & (UINT64_C(1) << (p % 64)))
			continue;
		set[p / 64] |= UINT64_C(1) << (p % 64);
		if (p == G->len)
			continue;
		switch (G->kind[p]) {
		case G_STAR:
		case G_CLOSE:
			PUSH(p + 1);
			break;
		case G_ALT:
			PUSH(G->to[p]);
			break;
		case G_OPEN:
			PUSH(p + 1);
			for (size_t j = p + 1; j < G->to[p]; j++) {
				if (G->kind[j] == G_ALT)
					PUSH(j + 1);
				else if (G->kind[j] == G_CLASS)
					j = G->to[j] - 1u;
			}
			break;
		default:
			break;
		}
	}
#undef PUSH
}

bool graphite_glob_match(const char *glob, size_t glen, const char *s, size_t slen)
{
	if (glen > GRAPHITE_PATTERN_MAX)
		return false;
	bool plain = true;
	for (size_t i = 0; i < glen && plain; i++)
		plain = !strchr("*?[{", glob[i]);
	if (plain)
		return glen == slen && memcmp(glob, s, glen) == 0;
	Glob G;
	glob_prepare(&G, glob, glen);
	uint64_t cur[GLOB_WORDS], next[GLOB_WORDS];
	size_t words = glen / 64 + 1;
	memset(cur, 0, words * sizeof(uint64_t));
	glob_add(&G, cur, 0);
	size_t i = 0;
	while (i < slen) {
		uint32_t cp = u8_next(s, slen, &i);
		memset(next, 0, words * sizeof(uint64_t));
		bool any = false;
		for (size_t w = 0; w < words; w++) {
			for (uint64_t bits = cur[w]; bits; bits &= bits - 1) {
				size_t p = w * 64 + (size_t)__builtin_ctzll(bits);
				if (p >= glen)
					continue;
				switch (G.kind[p]) {
				case G_STAR:
					glob_add(&G, next, p);
					any = true;
					break;
				case G_ANY:
					glob_add(&G, next, p + 1);
					any = true;
					break;
				case G_CLASS:
					if (class_has(glob, p, G.to[p], cp)) {
						glob_add(&G, next, G.to[p]);
						any = true;
					}
					break;
				case G_LIT: {
					size_t q = p;
					if (u8_next(glob, glen, &q) == cp) {
						glob_add(&G, next, q);
						any = true;
					}
					break;
				}
				default:
					break;
				}
			}
		}
		if (!any)
			return false;
		memcpy(cur, next, words * sizeof(uint64_t));
	}
	return (cur[glen / 64] >> (glen % 64)) & 1;
}

bool graphite_path_match(const char *pattern, size_t plen, const char *path, size_t len)
{
	size_t n = graphite_nsegs(pattern, plen);
	if (graphite_nsegs(path, len) != n)
		return false;
	size_t ps = 0, ss = 0;
	for (size_t k = 0; k < n; k++) {
		const char *pe = memchr(pattern + ps, '.', plen - ps);
		const char *se = memchr(path + ss, '.', len - ss);
		size_t pl = pe ? (size_t)(pe - pattern) - ps : plen - ps;
		size_t sl = se ? (size_t)(se - path) - ss : len - ss;
		if (!graphite_glob_match(pattern + ps, pl, path + ss, sl))
			return false;
		ps += pl + 1;
		ss += sl + 1;
	}
	return true;
}

/* ---------- the PostgreSQL pre-filter ---------- */

/* A literal character in an ARE: a backslash before any ASCII punctuation (in an ARE a
 * backslash before a non-alphanumeric character always means that character). */
static void re_literal(Buf *b, const char *s, size_t n)
{
	unsigned char c = (unsigned char)s[0];
	if (c < 0x80 && !is_alnum_ascii(c) && c != '_')
		buf_addc(b, '\\');
	buf_add(b, s, n);
}

/* The class g[i..end) as a bracket expression that never matches '.', or [^.] when a range
 * has a non-alphanumeric end (PostgreSQL's rules for those are not worth the risk: the regex
 * is only a pre-filter). */
static void re_class(Buf *b, const char *g, size_t i, size_t end)
{
	bool neg;
	size_t j = class_body(g, i, &neg), mark = b->len;
	ClassMember m;
	buf_adds(b, neg ? "[^." : "[");
	while (class_next(g, end - 1, &j, &m)) {
		if (!m.range) {
			re_literal(b, g + m.at, m.end - m.at);
		} else if (is_alnum_ascii((unsigned char)g[m.at]) && is_alnum_ascii((unsigned char)g[m.hi_at])) {
			buf_add(b, g + m.at, m.lo_end - m.at);
			buf_addc(b, '-');
			buf_add(b, g + m.hi_at, m.end - m.hi_at);
		} else {
			b->len = mark;
			b->p[b->len] = '\0';
			buf_adds(b, "[^.]");
			return;
		}
	}
	buf_addc(b, ']');
}

/* Quantifiers segment g[0..len) costs: one per run of '*'. */
static int seg_quantifiers(const char *g, size_t len)
{
	int q = 0;
	for (size_t i = 0; i < len; i++)
		if (g[i] == '*' && (i == 0 || g[i - 1] != '*'))
			q++;
	return q;
}

static void re_segment(Buf *b, const char *g, size_t len)
{
	Glob G;
	glob_prepare(&G, g, len);
	size_t i = 0;
	while (i < len) {
		switch (G.kind[i]) {
		case G_STAR:
			if (i == 0 || G.kind[i - 1] != G_STAR)
				buf_adds(b, "[^.]*");
			i++;
			break;
		case G_ANY:
			buf_adds(b, "[^.]");
			i++;
			break;
		case G_CLASS:
			re_class(b, g, i, G.to[i]);
			i = G.to[i];
			break;
		case G_OPEN:
			buf_adds(b, "(?:");
			i++;
			break;
		case G_ALT:
			buf_addc(b, '|');
			i++;
			break;
		case G_CLOSE:
			buf_addc(b, ')');
			i++;
			break;
		default: {
			size_t at = i;
			u8_next(g, len, &i);
			re_literal(b, g + at, i - at);
			break;
		}
		}
	}
}

bool graphite_glob_regex(const char *pattern, int nsegs, Buf *out, char *err, size_t errlen)
{
	buf_reset(out);
	size_t len = strlen(pattern);
	if (!graphite_pattern_check(pattern, len, err, errlen))
		return false;
	buf_reserve(out, 0);
	out->p[0] = '\0'; /* "" is an answer too */
	if (nsegs <= 0)
		return true;
	size_t total = graphite_nsegs(pattern, len);
	size_t want = (size_t)nsegs < total ? (size_t)nsegs : total;
	int budget = GRAPHITE_REGEX_QUANTIFIERS;
	buf_addc(out, '^');
	for (size_t k = 0; k < want; k++) {
		const char *seg;
		size_t n;
		if (!graphite_seg(pattern, len, (long)k, &seg, &n))
			break;
		int q = seg_quantifiers(seg, n);
		if (q > budget) { /* looser: the segments so far, and that more follow */
			if (k == 0)
				buf_reset(out);
			else
				buf_adds(out, "\\.");
			return true;
		}
		budget -= q;
		if (k > 0)
			buf_adds(out, "\\.");
		re_segment(out, seg, n);
	}
	buf_adds(out, "(\\.|$)");
	return true;
}

/* ---------- time ---------- */

static const struct {
	const char *name;
	int64_t secs;
} time_units[] = {
	{"s", 1},           {"sec", 1},        {"secs", 1},        {"second", 1},      {"seconds", 1},
	{"m", 60},          {"min", 60},       {"mins", 60},       {"minute", 60},     {"minutes", 60},
	{"h", 3600},        {"hour", 3600},    {"hours", 3600},    {"d", 86400},       {"day", 86400},
	{"days", 86400},    {"w", 604800},     {"week", 604800},   {"weeks", 604800},  {"mon", 2592000},
	{"month", 2592000}, {"months", 2592000}, {"y", 31536000}, {"year", 31536000}, {"years", 31536000},
};

#define OFFSET_MAX INT64_C(400000000000) /* beyond any distance between two instants we accept */

/* One or more "<digits><unit>" (lower case) into seconds. */
static bool parse_amounts(const char *s, size_t len, int64_t *out)
{
	int64_t total = 0;
	size_t i = 0;
	if (len == 0)
		return false;
	while (i < len) {
		size_t d = i;
		int64_t num = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (i - d >= 12)
				return false;
			num = num * 10 + (s[i++] - '0');
		}
		if (i == d)
			return false;
		size_t u = i;
		while (i < len && s[i] >= 'a' && s[i] <= 'z')
			i++;
		int64_t unit = 0;
		for (size_t k = 0; k < ARRAY_LEN(time_units) && !unit; k++)
			if (strlen(time_units[k].name) == i - u && memcmp(time_units[k].name, s + u, i - u) == 0)
				unit = time_units[k].secs;
		if (!unit)
			return false;
		int64_t v;
		if (__builtin_mul_overflow(num, unit, &v) || v > OFFSET_MAX)
			return false;
		total += v;
		if (total > OFFSET_MAX)
			return false;
	}
	*out = total;
	return true;
}

/* s lowered into buf (at most n - 1 bytes) without '_', ',' and ' ', as Graphite reads times. */
static bool time_text(const char *s, char *buf, size_t n, size_t *len)
{
	size_t k = 0;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		if (c == '_' || c == ',' || c == ' ')
			continue;
		if (k + 1 >= n)
			return false;
		buf[k++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	buf[k] = '\0';
	*len = k;
	return true;
}

bool graphite_parse_interval(const char *s, int64_t *out_s)
{
	char t[64];
	size_t len;
	int64_t v;
	if (!time_text(s, t, sizeof(t), &len) || !parse_amounts(t, len, &v) || v <= 0)
		return false;
	*out_s = v;
	return true;
}

static bool all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int64_t digits_value(const char *s, size_t len)
{
	int64_t v = 0;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* YYYYMMDD as a date in 1970..9999 into seconds at midnight UTC. */
static bool parse_yyyymmdd(const char *s, int64_t *out)
{
	static const unsigned mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (!all_digits(s, 8))
		return false;
	int64_t y = digits_value(s, 4);
	unsigned m = (unsigned)digits_value(s + 4, 2), d = (unsigned)digits_value(s + 6, 2);
	if (y < 1970 || m < 1 || m > 12 || d < 1)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[m - 1] + (m == 2 && leap))
		return false;
	*out = tm_days_from_civil(y, m, d) * 86400;
	return true;
}

/* A reference time: "" or "now", HH:MMYYYYMMDD, YYYYMMDD, or Unix seconds. */
static bool parse_reference(const char *s, size_t len, int64_t now_s, int64_t *out)
{
	if (len == 0 || (len == 3 && memcmp(s, "now", 3) == 0)) {
		*out = now_s;
		return true;
	}
	if (len == 13 && s[2] == ':' && all_digits(s, 2) && all_digits(s + 3, 10)) {
		int64_t h = digits_value(s, 2), mi = digits_value(s + 3, 2), day;
		if (h > 23 || mi > 59 || !parse_yyyymmdd(s + 5, &day))
			return false;
		*out = day + h * 3600 + mi * 60;
		return true;
	}
	if (!all_digits(s, len))
		return false;
	if (len == 8 && parse_yyyymmdd(s, out))
		return true;
	if (len > 12)
		return false;
	*out = digits_value(s, len);
	return true;
}

bool graphite_parse_time(const char *s, int64_t now_s, int64_t *out_s)
{
	char t[64];
	size_t len;
	if (!time_text(s, t, sizeof(t), &len) || len == 0)
		return false;
	size_t split = len;
	for (size_t i = 0; i < len && split == len; i++)
		if (t[i] == '+' || t[i] == '-')
			split = i;
	int64_t ref, off = 0;
	if (!parse_reference(t, split, now_s, &ref))
		return false;
	if (split < len) {
		if (!parse_amounts(t + split + 1, len - split - 1, &off))
			return false;
		if (t[split] == '-')
			off = -off;
	}
	int64_t v = ref + off;
	if (ref < -OFFSET_MAX || ref > OFFSET_MAX || v < 0 || v > GRAPHITE_TIME_MAX)
		return false;
	*out_s = v;
	return true;
}

/* ---------- series and lists ---------- */

static void series_free(GraphiteSeries *s)
{
	free(s->name);
	free(s->path);
	free(s->expr);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Moves *s (its pointers) to the end of l and clears *s. */
static GraphiteSeries *list_push(GraphiteList *l, GraphiteSeries *s)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		GraphiteSeries *p = realloc(l->s, cap * sizeof(*p));
		if (!p)
			fatal("at=oom series=%zu", cap);
		l->s = p;
		l->cap = cap;
	}
	GraphiteSeries *dst = &l->s[l->n++];
	*dst = *s;
	memset(s, 0, sizeof(*s));
	return dst;
}

static void list_truncate(GraphiteList *l, size_t n)
{
	while (l->n > n)
		series_free(&l->s[--l->n]);
}

/* Moves every series of from to the end of to; from ends empty. */
static void list_move(GraphiteList *to, GraphiteList *from)
{
	for (size_t i = 0; i < from->n; i++)
		list_push(to, &from->s[i]);
	graphite_list_free(from);
}

GraphiteSeries *graphite_list_add(GraphiteList *l, const char *name, const char *path, int64_t start, int64_t step,
				  size_t n)
{
	GraphiteSeries s = {0};
	s.name = gstrdup(name);
	s.path = gstrdup(path ? path : name);
	s.start = start;
	s.step = step;
	s.n = n;
	s.v = gmalloc(n * sizeof(double));
	for (size_t i = 0; i < n; i++)
		s.v[i] = NAN;
	return list_push(l, &s);
}

void graphite_list_free(GraphiteList *l)
{
	list_truncate(l, 0);
	free(l->s);
	memset(l, 0, sizeof(*l));
}

/* ---------- merging points ---------- */

typedef struct Acc {
	double sum, min, max, first, last;
	size_t count;
} Acc;

static void acc_reset(Acc *a)
{
	memset(a, 0, sizeof(*a));
}

static void acc_add(Acc *a, double v)
{
	if (isnan(v))
		return;
	if (a->count == 0) {
		a->min = a->max = a->first = v;
	} else {
		if (v < a->min)
			a->min = v;
		if (v > a->max)
			a->max = v;
	}
	a->last = v;
	a->sum += v;
	a->count++;
}

/* Graphite's safe* functions: null when every input was null. */
static double acc_value(const Acc *a, GraphiteAgg f)
{
	if (a->count == 0)
		return NAN;
	switch (f) {
	case GRAPHITE_SUM:
		return a->sum;
	case GRAPHITE_MIN:
		return a->min;
	case GRAPHITE_MAX:
		return a->max;
	case GRAPHITE_LAST:
		return a->last;
	case GRAPHITE_FIRST:
		return a->first;
	case GRAPHITE_COUNT:
		return (double)a->count;
	case GRAPHITE_AVERAGE:
	default:
		return a->sum / (double)a->count;
	}
}

static const struct {
	const char *name;
	GraphiteAgg agg;
} agg_names[] = {
	{"sum", GRAPHITE_SUM},   {"total", GRAPHITE_SUM},     {"average", GRAPHITE_AVERAGE},
	{"avg", GRAPHITE_AVERAGE}, {"max", GRAPHITE_MAX},     {"min", GRAPHITE_MIN},
	{"last", GRAPHITE_LAST}, {"current", GRAPHITE_LAST},  {"first", GRAPHITE_FIRST},
	{"count", GRAPHITE_COUNT},
};

static bool agg_lookup(const char *name, GraphiteAgg *out)
{
	for (size_t i = 0; i < ARRAY_LEN(agg_names); i++)
		if (strcmp(agg_names[i].name, name) == 0) {
			*out = agg_names[i].agg;
			return true;
		}
	return false;
}

/* summarize's functions and consolidateBy's (Graphite's two lists). */
static const char *const summarize_funcs[] = {"average", "avg",  "count", "current", "last",
					      "max",     "min",  "sum",   "total"};
static const char *const consolidate_funcs[] = {"average", "avg", "first", "last", "max", "min", "sum"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

/* ---------- the parsed target ---------- */

typedef enum { GE_PATH, GE_CALL, GE_NUMBER, GE_STRING, GE_BOOL, GE_NONE } GeKind;

typedef enum {
	P_SERIES,      /* a path or a call */
	P_STRING,      /* any quoted string */
	P_INTERVAL,    /* a quoted interval: "1h" */
	P_AGGFUNC,     /* a quoted summarize function */
	P_CONSOLIDATE, /* a quoted consolidateBy function */
	P_FLOAT,       /* a number */
	P_INTEGER,     /* a whole number */
	P_NODE,        /* a whole number indexing a path */
	P_BOOL,
	P_WINDOW, /* a whole number of points >= 1, or a quoted interval */
	P_TOTAL,  /* asPercent's total: a number, a series, or None */
} PKind;

typedef struct Param {
	const char *name;
	PKind kind;
	bool required, multiple;
	const char *json; /* what follows "required" in /functions: default, options, suggestions */
} Param;

struct GraphiteExpr;
typedef struct Ev Ev;
typedef bool (*EvalFn)(const struct GraphiteExpr *call, Ev *ev, GraphiteList *out);

typedef struct Func {
	const char *name;
	const char *signature;
	const char *group;
	const char *desc;
	EvalFn eval;
	GraphiteAgg agg; /* the aggregating functions: which one */
	Param params[4];
} Func;

struct GraphiteExpr {
	GeKind kind;
	bool is_int;
	bool b;
	double num;
	char *text; /* the pattern, the string's value, or the number as written */
	const Func *fn;
	struct GraphiteExpr **args; /* CALL: one slot per parameter (NULL: not given), then the
				     * rest of a variadic last parameter */
	size_t nargs;
};

void graphite_expr_free(GraphiteExpr *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nargs; i++)
		graphite_expr_free(e->args[i]);
	free(e->args);
	free(e->text);
	free(e);
}

static bool fn_alias(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
/* A node index within what a path can have, so that the cast is defined. */
static long node_index(double v)
{
	return v > 1e6 ? 1000000 : v < -1e6 ? -1000000 : (long)v;
}

static bool fn_alias_by_node(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_alias_by_metric(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_aggregate(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_scale(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_offset(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_summarize(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_consolidate_by(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_moving_average(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_derivative(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_non_negative_derivative(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_per_second(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_as_percent(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_highest_max(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_sort_by_maxima(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_limit(const GraphiteExpr *call, Ev *ev, GraphiteList *out);
static bool fn_constant_line(const GraphiteExpr *call, Ev *ev, GraphiteList *out);

/* ---------- the function table ---------- */

#define SERIES(name) {name, P_SERIES, true, false, NULL}
#define SERIES_MANY(name) {name, P_SERIES, true, true, NULL}
#define AGG_DESC(what)                                                                                           \
	"Combines every series of its arguments into one whose points are the " what " of the series' points "   \
	"at the same time (null where they are all null). Series of different steps are first brought to the "  \
	"least common multiple of their steps, each merged with its consolidation function. The result is "      \
	"named after the arguments' paths as written: " 

static const Func funcs[] = {
	{"alias", "alias(seriesList, newName)", "Alias",
	 "Names every series newName.\n\nExample: alias(app.web.latency.mean, \"web latency\")", fn_alias, 0,
	 {SERIES("seriesList"), {"newName", P_STRING, true, false, NULL}}},
	{"aliasByMetric", "aliasByMetric(seriesList)", "Alias",
	 "Names every series after the last node of its metric path: app.web.latency.mean becomes mean.", fn_alias_by_metric,
	 0, {SERIES("seriesList")}},
	{"aliasByNode", "aliasByNode(seriesList, *nodes)", "Alias",
	 "Names every series after the given nodes of its metric path (0 is the first, -1 the last), joined by "
	 "dots; a node the path does not have is empty. aliasByNode(app.*.latency.mean, 1) names app.web.latency.mean "
	 "web. Nodes are read from the metric path the series came from, also after alias().",
	 fn_alias_by_node, 0, {SERIES("seriesList"), {"nodes", P_NODE, true, true, NULL}}},
	{"asPercent", "asPercent(seriesList, total=None)", "Combine",
	 "Each point as a percentage of a total: with no total, of the sum of all the series at that time; with a "
	 "number, of that number; with a series, of that series; with as many series as the first argument, each "
	 "series of the one with the same rank by name. A null or zero total gives null.\n\nExamples: "
	 "asPercent(app.*.requests.count), asPercent(app.web.errors.count, 1500), "
	 "asPercent(app.web.errors.count, app.web.requests.count)",
	 fn_as_percent, 0, {SERIES("seriesList"), {"total", P_TOTAL, false, false, NULL}}},
	{"averageSeries", "averageSeries(*seriesLists)", "Combine", AGG_DESC("average") "averageSeries(app.*.latency.mean).",
	 fn_aggregate, GRAPHITE_AVERAGE, {SERIES_MANY("seriesLists")}},
	{"avg", "avg(*seriesLists)", "Combine", "Short for averageSeries.", fn_aggregate, GRAPHITE_AVERAGE,
	 {SERIES_MANY("seriesLists")}},
	{"constantLine", "constantLine(value)", "Special",
	 "A series of value at every step of the range, named as value is written. Grafana's Save & test of a "
	 "Graphite data source renders constantLine(100).",
	 fn_constant_line, 0, {{"value", P_FLOAT, true, false, NULL}}},
	{"consolidateBy", "consolidateBy(seriesList, consolidationFunc)", "Special",
	 "Sets how points are merged when a series has more points than maxDataPoints, or is combined with series "
	 "of a coarser step: sum, average (avg), max, min, first or last. The default is average.\n\nExample: "
	 "consolidateBy(app.web.requests.count, 'sum')",
	 fn_consolidate_by, 0,
	 {SERIES("seriesList"),
	  {"consolidationFunc", P_CONSOLIDATE, true, false,
	   "\"options\": [\"average\", \"avg\", \"first\", \"last\", \"max\", \"min\", \"sum\"]"}}},
	{"derivative", "derivative(seriesList)", "Transform",
	 "The difference between each point and the one before it; null after a null and at the first point. See "
	 "perSecond for a rate.",
	 fn_derivative, 0, {SERIES("seriesList")}},
	{"highestMax", "highestMax(seriesList, n)", "Filter Series",
	 "The n series with the highest maximum, highest first (ties keep their order).", fn_highest_max, 0,
	 {SERIES("seriesList"), {"n", P_INTEGER, true, false, NULL}}},
	{"limit", "limit(seriesList, n)", "Filter Series", "The first n series.", fn_limit, 0,
	 {SERIES("seriesList"), {"n", P_INTEGER, true, false, NULL}}},
	{"maxSeries", "maxSeries(*seriesLists)", "Combine", AGG_DESC("maximum") "maxSeries(app.*.latency.max).",
	 fn_aggregate, GRAPHITE_MAX, {SERIES_MANY("seriesLists")}},
	{"minSeries", "minSeries(*seriesLists)", "Combine", AGG_DESC("minimum") "minSeries(app.*.latency.min).",
	 fn_aggregate, GRAPHITE_MIN, {SERIES_MANY("seriesLists")}},
	{"movingAverage", "movingAverage(seriesList, windowSize)", "Calculate",
	 "The average of the non-null points in a window ending at each point, that point included: windowSize is "
	 "a number of points or an interval such as '5min' (interval / step points, at least one). Points before "
	 "the requested range are not read, so the first points of the graph average the fewer points the range "
	 "holds.\n\nExamples: movingAverage(app.web.latency.mean, 10), movingAverage(app.web.latency.mean, '1h')",
	 fn_moving_average, 0,
	 {SERIES("seriesList"),
	  {"windowSize", P_WINDOW, true, false,
	   "\"suggestions\": [5, 7, 10, \"1min\", \"5min\", \"10min\", \"30min\", \"1hour\"]"}}},
	{"nonNegativeDerivative", "nonNegativeDerivative(seriesList, maxValue=None, minValue=None)", "Transform",
	 "derivative for counters: where the value goes down the counter was reset and the point is null, unless "
	 "maxValue is given, in which case the counter wrapped past maxValue (the difference is maxValue + 1 + "
	 "value - previous, less minValue when given); with only minValue it restarted from minValue. Points above "
	 "maxValue or below minValue are null.",
	 fn_non_negative_derivative, 0,
	 {SERIES("seriesList"), {"maxValue", P_FLOAT, false, false, NULL}, {"minValue", P_FLOAT, false, false, NULL}}},
	{"offset", "offset(seriesList, factor)", "Transform",
	 "Adds factor to every point.\n\nExample: offset(app.web.queue.mean, -5)",
	 fn_offset, 0, {SERIES("seriesList"), {"factor", P_FLOAT, true, false, NULL}}},
	{"perSecond", "perSecond(seriesList, maxValue=None, minValue=None)", "Transform",
	 "nonNegativeDerivative divided by the step in seconds (rounded to 6 decimals): the rate per second of a "
	 "counter.",
	 fn_per_second, 0,
	 {SERIES("seriesList"), {"maxValue", P_FLOAT, false, false, NULL}, {"minValue", P_FLOAT, false, false, NULL}}},
	{"scale", "scale(seriesList, factor)", "Transform",
	 "Multiplies every point by factor.\n\nExample: scale(app.web.latency.mean, 0.001)",
	 fn_scale, 0, {SERIES("seriesList"), {"factor", P_FLOAT, true, false, NULL}}},
	{"sortByMaxima", "sortByMaxima(seriesList)", "Sorting",
	 "The series in descending order of their maximum (series without points last).", fn_sort_by_maxima, 0,
	 {SERIES("seriesList")}},
	{"sum", "sum(*seriesLists)", "Combine", "Short for sumSeries.", fn_aggregate, GRAPHITE_SUM,
	 {SERIES_MANY("seriesLists")}},
	{"sumSeries", "sumSeries(*seriesLists)", "Combine", AGG_DESC("sum") "sumSeries(app.*.requests.count).",
	 fn_aggregate, GRAPHITE_SUM, {SERIES_MANY("seriesLists")}},
	{"summarize", "summarize(seriesList, intervalString, func='sum', alignToFrom=False)", "Transform",
	 "Merges the points of each interval into one: func is sum (the default), avg or average, max, min, last "
	 "or count (the non-null points); an interval without points is null. Intervals start at multiples of the "
	 "interval since 1970-01-01 UTC, or at the series' start with alignToFrom.\n\nExamples: "
	 "summarize(app.web.requests.count, '1h'), summarize(app.web.latency.max, '1d', 'max')",
	 fn_summarize, 0,
	 {SERIES("seriesList"),
	  {"intervalString", P_INTERVAL, true, false, "\"suggestions\": [\"10min\", \"1h\", \"1d\"]"},
	  {"func", P_AGGFUNC, false, false,
	   "\"default\": \"sum\", \"options\": [\"average\", \"avg\", \"count\", \"current\", \"last\", \"max\", "
	   "\"min\", \"sum\", \"total\"]"},
	  {"alignToFrom", P_BOOL, false, false, "\"default\": false"}}},
};
static const size_t nfuncs = ARRAY_LEN(funcs);

static const Func *func_find(const char *name, size_t len)
{
	for (size_t i = 0; i < nfuncs; i++)
		if (strlen(funcs[i].name) == len && memcmp(funcs[i].name, name, len) == 0)
			return &funcs[i];
	return NULL;
}

static size_t func_nparams(const Func *f)
{
	size_t n = 0;
	while (n < ARRAY_LEN(f->params) && f->params[n].name)
		n++;
	return n;
}

/* ---------- the parser ---------- */

typedef struct Parser {
	const char *s;
	size_t len, pos;
	int nodes;
	char *err;
	size_t errlen;
} Parser;

PRINTF_LIKE(2, 3)
static void *pfail(Parser *p, const char *fmt, ...)
{
	if (p->err[0]) /* the first problem found is the one reported */
		return NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return NULL;
}

static GraphiteExpr *new_node(Parser *p, GeKind kind)
{
	if (++p->nodes > GRAPHITE_NODES_MAX)
		return pfail(p, "a target has at most %d functions, paths and constants", GRAPHITE_NODES_MAX);
	GraphiteExpr *e = gcalloc(1, sizeof(*e));
	e->kind = kind;
	return e;
}

static void skip_ws(Parser *p)
{
	while (p->pos < p->len && is_space(p->s[p->pos]))
		p->pos++;
}

static bool is_ident(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum_ascii((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* -?digits(.digits)?([eE][+-]?digits)? */
static bool is_number(const char *s, size_t len, bool *is_int)
{
	size_t i = 0;
	*is_int = true;
	if (i < len && s[i] == '-')
		i++;
	size_t d = i;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == d)
		return false;
	if (i < len && s[i] == '.') {
		*is_int = false;
		d = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		*is_int = false;
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		d = i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return false;
	}
	return i == len;
}

static bool word_is(const char *s, size_t len, const char *w)
{
	if (strlen(w) != len)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
		if (c != w[i])
			return false;
	}
	return true;
}

static void unknown_function(Parser *p, const char *name, size_t len)
{
	Buf b = {0};
	buf_addf(&b, "unknown function %.*s; supported: ", (int)(len > 64 ? 64 : len), name);
	for (size_t i = 0; i < nfuncs; i++)
		buf_addf(&b, "%s%s", i ? ", " : "", funcs[i].name);
	pfail(p, "%s", b.p);
	buf_free(&b);
}

static GraphiteExpr *parse_arg(Parser *p, int depth);

static bool bind_args(Parser *p, GraphiteExpr *call, GraphiteExpr **pos_args, size_t npos, const char **kw_names,
		      size_t *kw_lens, GraphiteExpr **kw_args, size_t nkw);

static GraphiteExpr *parse_call(Parser *p, const Func *fn, int depth)
{
	if (depth > GRAPHITE_DEPTH_MAX)
		return pfail(p, "a target nests at most %d function calls", GRAPHITE_DEPTH_MAX);
	GraphiteExpr *call = new_node(p, GE_CALL);
	if (!call)
		return NULL;
	call->fn = fn;
	size_t open = p->pos++;
	GraphiteExpr *pos_args[GRAPHITE_ARGS_MAX], *kw_args[GRAPHITE_ARGS_MAX];
	const char *kw_names[GRAPHITE_ARGS_MAX];
	size_t kw_lens[GRAPHITE_ARGS_MAX], npos = 0, nkw = 0;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == ')') {
		p->pos++;
	} else {
		for (;;) {
			if (npos + nkw == GRAPHITE_ARGS_MAX) {
				pfail(p, "%s: at most %d arguments", fn->name, GRAPHITE_ARGS_MAX);
				goto fail;
			}
			skip_ws(p);
			/* name = value */
			size_t k = p->pos;
			while (k < p->len && (is_alnum_ascii((unsigned char)p->s[k]) || p->s[k] == '_'))
				k++;
			size_t name_at = p->pos, name_len = k - p->pos;
			while (k < p->len && is_space(p->s[k]))
				k++;
			bool kw = is_ident(p->s + name_at, name_len) && k < p->len && p->s[k] == '=';
			if (kw)
				p->pos = k + 1;
			GraphiteExpr *a = parse_arg(p, depth);
			if (!a)
				goto fail;
			if (kw) {
				kw_names[nkw] = p->s + name_at;
				kw_lens[nkw] = name_len;
				kw_args[nkw++] = a;
			} else if (nkw) {
				graphite_expr_free(a);
				pfail(p, "%s: an argument without a name follows a named one (offset %zu)", fn->name, name_at);
				goto fail;
			} else {
				pos_args[npos++] = a;
			}
			skip_ws(p);
			if (p->pos >= p->len) {
				pfail(p, "unbalanced parentheses: the ( of %s at offset %zu is not closed", fn->name, open);
				goto fail;
			}
			char c = p->s[p->pos++];
			if (c == ')')
				break;
			if (c != ',') {
				pfail(p, "%s: expected ',' or ')' at offset %zu, found '%c'", fn->name, p->pos - 1, c);
				goto fail;
			}
		}
	}
	if (bind_args(p, call, pos_args, npos, kw_names, kw_lens, kw_args, nkw))
		return call;
	graphite_expr_free(call);
	return NULL;
fail:
	for (size_t i = 0; i < npos; i++)
		graphite_expr_free(pos_args[i]);
	for (size_t i = 0; i < nkw; i++)
		graphite_expr_free(kw_args[i]);
	graphite_expr_free(call);
	return NULL;
}

static GraphiteExpr *parse_string(Parser *p)
{
	char q = p->s[p->pos];
	size_t open = p->pos++;
	Buf b = {0};
	buf_reserve(&b, 0);
	while (p->pos < p->len && p->s[p->pos] != q) {
		if (p->s[p->pos] == '\\' && p->pos + 1 < p->len)
			p->pos++;
		if ((unsigned char)p->s[p->pos] < 0x20) { /* it would end up in a series' name */
			buf_free(&b);
			return pfail(p, "a string cannot hold control characters (offset %zu)", p->pos);
		}
		buf_addc(&b, p->s[p->pos++]);
	}
	if (p->pos >= p->len) {
		buf_free(&b);
		return pfail(p, "unclosed string: the %c at offset %zu has no match", q, open);
	}
	p->pos++;
	GraphiteExpr *e = new_node(p, GE_STRING);
	if (!e) {
		buf_free(&b);
		return NULL;
	}
	e->text = buf_str(&b);
	return e;
}

static GraphiteExpr *parse_arg(Parser *p, int depth)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return pfail(p, "unexpected end of the target: an argument is missing");
	char c = p->s[p->pos];
	if (c == '\'' || c == '"')
		return parse_string(p);
	size_t start = p->pos;
	int braces = 0;
	while (p->pos < p->len) {
		char d = p->s[p->pos];
		if (d == '{')
			braces++;
		else if (d == '}' && braces > 0)
			braces--;
		else if ((d == ',' && braces == 0) || strchr("()='\"", d) || is_space(d))
			break;
		p->pos++;
	}
	size_t len = p->pos - start;
	const char *tok = p->s + start;
	if (len == 0) {
		if (c == ',' || c == ')')
			return pfail(p, "an argument is missing at offset %zu", start);
		return pfail(p, "unexpected '%c' at offset %zu", c, start);
	}
	size_t after = p->pos;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '(') {
		if (!is_ident(tok, len))
			return pfail(p, "'%.*s' is not a function name (offset %zu)", (int)(len > 64 ? 64 : len), tok,
				     start);
		const Func *fn = func_find(tok, len);
		if (!fn) {
			unknown_function(p, tok, len);
			return NULL;
		}
		return parse_call(p, fn, depth + 1);
	}
	p->pos = after;
	GraphiteExpr *e;
	bool is_int;
	if (is_number(tok, len, &is_int)) {
		if (!(e = new_node(p, GE_NUMBER)))
			return NULL;
		e->text = gstrndup(tok, len);
		e->is_int = is_int;
		errno = 0;
		if (is_int)
			e->num = (double)strtoll(e->text, NULL, 10);
		else
			e->num = strtod(e->text, NULL);
		if (errno == ERANGE || !isfinite(e->num)) {
			graphite_expr_free(e);
			return pfail(p, "the number %.*s is out of range", (int)(len > 64 ? 64 : len), tok);
		}
		return e;
	}
	if (word_is(tok, len, "true") || word_is(tok, len, "false")) {
		if (!(e = new_node(p, GE_BOOL)))
			return NULL;
		e->b = word_is(tok, len, "true");
		return e;
	}
	if (word_is(tok, len, "none"))
		return new_node(p, GE_NONE);
	char why[160];
	if (!graphite_pattern_check(tok, len, why, sizeof(why)))
		return pfail(p, "the path %.*s: %s", (int)(len > 128 ? 128 : len), tok, why);
	if (!(e = new_node(p, GE_PATH)))
		return NULL;
	e->text = gstrndup(tok, len);
	return e;
}

/* Interval strings where a window may carry a sign, as Graphite takes its absolute value. */
static bool window_interval(const char *s, int64_t *secs)
{
	if (s[0] == '-' || s[0] == '+')
		s++;
	return graphite_parse_interval(s, secs);
}

static bool check_arg(Parser *p, const Func *fn, const Param *pa, GraphiteExpr *e)
{
	const char *name = fn->name, *arg = pa->name;
	int64_t secs;
	switch (pa->kind) {
	case P_SERIES:
		if (e->kind != GE_PATH && e->kind != GE_CALL)
			return pfail(p, "%s: argument %s must be a series (a path or a function call)", name, arg), false;
		return true;
	case P_STRING:
		if (e->kind != GE_STRING)
			return pfail(p, "%s: argument %s must be a quoted string", name, arg), false;
		return true;
	case P_INTERVAL:
		if (e->kind != GE_STRING || !graphite_parse_interval(e->text, &secs))
			return pfail(p, "%s: argument %s must be a quoted interval like '1h', '5min' or '1d'", name, arg),
			       false;
		return true;
	case P_AGGFUNC:
		if (e->kind != GE_STRING || !in_list(e->text, summarize_funcs, ARRAY_LEN(summarize_funcs)))
			return pfail(p, "%s: argument %s must be one of 'sum', 'avg', 'average', 'max', 'min', 'last', "
					"'count' (also 'total', 'current')", name, arg),
			       false;
		return true;
	case P_CONSOLIDATE:
		if (e->kind != GE_STRING || !in_list(e->text, consolidate_funcs, ARRAY_LEN(consolidate_funcs)))
			return pfail(p, "%s: argument %s must be one of 'sum', 'average', 'avg', 'max', 'min', 'first', "
					"'last'", name, arg),
			       false;
		return true;
	case P_FLOAT:
		if (e->kind != GE_NUMBER)
			return pfail(p, "%s: argument %s must be a number", name, arg), false;
		return true;
	case P_INTEGER:
	case P_NODE:
		if (e->kind != GE_NUMBER || !e->is_int)
			return pfail(p, "%s: argument %s must be a whole number", name, arg), false;
		return true;
	case P_BOOL:
		if (e->kind != GE_BOOL)
			return pfail(p, "%s: argument %s must be true or false", name, arg), false;
		return true;
	case P_WINDOW:
		if (e->kind == GE_NUMBER && e->is_int && e->num >= 1)
			return true;
		if (e->kind == GE_STRING && window_interval(e->text, &secs))
			return true;
		return pfail(p, "%s: argument %s must be a number of points (1 or more) or a quoted interval like '5min'",
			     name, arg),
		       false;
	case P_TOTAL:
		if (e->kind == GE_NUMBER || e->kind == GE_PATH || e->kind == GE_CALL)
			return true;
		if (e->kind == GE_STRING) { /* Grafana quotes what its editor does not know as a number */
			bool is_int;
			size_t n = strlen(e->text);
			if (is_number(e->text, n, &is_int)) {
				e->kind = GE_NUMBER;
				e->is_int = is_int;
				e->num = strtod(e->text, NULL);
				if (isfinite(e->num))
					return true;
			}
		}
		return pfail(p, "%s: argument %s must be a number, a series or None", name, arg), false;
	}
	return false;
}

static bool bind_args(Parser *p, GraphiteExpr *call, GraphiteExpr **pos_args, size_t npos, const char **kw_names,
		      size_t *kw_lens, GraphiteExpr **kw_args, size_t nkw)
{
	const Func *fn = call->fn;
	size_t np = func_nparams(fn);
	bool variadic = np && fn->params[np - 1].multiple;
	size_t i;
	if (!variadic && npos > np) {
		pfail(p, "%s takes at most %zu argument%s: %s", fn->name, np, np == 1 ? "" : "s", fn->signature);
		goto fail;
	}
	call->nargs = npos > np ? npos : np;
	call->args = gcalloc(call->nargs, sizeof(*call->args));
	for (i = 0; i < npos; i++) {
		call->args[i] = pos_args[i];
		pos_args[i] = NULL;
	}
	for (i = 0; i < nkw; i++) {
		size_t j = 0;
		while (j < np && !(strlen(fn->params[j].name) == kw_lens[i] &&
				   memcmp(fn->params[j].name, kw_names[i], kw_lens[i]) == 0))
			j++;
		if (j == np || fn->params[j].multiple) {
			pfail(p, "%s has no parameter %.*s to name: %s", fn->name, (int)(kw_lens[i] > 64 ? 64 : kw_lens[i]),
			      kw_names[i], fn->signature);
			goto fail;
		}
		if (call->args[j]) {
			pfail(p, "%s: argument %s is given twice", fn->name, fn->params[j].name);
			goto fail;
		}
		call->args[j] = kw_args[i];
		kw_args[i] = NULL;
	}
	for (i = 0; i < call->nargs; i++) {
		const Param *pa = &fn->params[i < np ? i : np - 1];
		GraphiteExpr *a = call->args[i];
		if (a && a->kind == GE_NONE && !pa->multiple) { /* None: not given */
			graphite_expr_free(a);
			call->args[i] = a = NULL;
		}
		if (!a) {
			if (pa->required) {
				pfail(p, "%s: argument %s is missing: %s", fn->name, pa->name, fn->signature);
				goto fail;
			}
			continue;
		}
		if (!check_arg(p, fn, pa, a))
			goto fail;
	}
	return true;
fail:
	for (i = 0; i < npos; i++)
		graphite_expr_free(pos_args[i]);
	for (i = 0; i < nkw; i++)
		graphite_expr_free(kw_args[i]);
	return false;
}

bool graphite_parse(const char *target, GraphiteExpr **out, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	*out = NULL;
	size_t len = strnlen(target, GRAPHITE_TARGET_MAX + 1);
	if (len > GRAPHITE_TARGET_MAX) {
		snprintf(err, errlen, "a target is at most %d bytes", GRAPHITE_TARGET_MAX);
		return false;
	}
	if (!text_valid(target, len, true)) {
		snprintf(err, errlen, "a target must be UTF-8 without control characters");
		return false;
	}
	Parser p = {.s = target, .len = len, .err = err, .errlen = errlen};
	skip_ws(&p);
	if (p.pos == len) {
		snprintf(err, errlen, "a target cannot be empty");
		return false;
	}
	GraphiteExpr *e = parse_arg(&p, 0);
	if (!e) {
		if (!err[0])
			snprintf(err, errlen, "invalid target");
		return false;
	}
	skip_ws(&p);
	if (p.pos < len) {
		if (target[p.pos] == ')')
			pfail(&p, "unbalanced parentheses: the ) at offset %zu has no (", p.pos);
		else
			pfail(&p, "unexpected '%c' at offset %zu", target[p.pos], p.pos);
		graphite_expr_free(e);
		return false;
	}
	if (e->kind != GE_PATH && e->kind != GE_CALL) {
		graphite_expr_free(e);
		snprintf(err, errlen, "a target must be a path or a function call");
		return false;
	}
	*out = e;
	return true;
}

static size_t collect_paths(const GraphiteExpr *e, const char **all, size_t n)
{
	if (!e)
		return n;
	if (e->kind == GE_PATH) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(all[i], e->text) == 0)
				return n;
		all[n] = e->text;
		return n + 1;
	}
	for (size_t i = 0; i < e->nargs; i++)
		n = collect_paths(e->args[i], all, n);
	return n;
}

size_t graphite_paths(const GraphiteExpr *e, const char **paths, size_t max)
{
	const char *all[GRAPHITE_NODES_MAX]; /* a target has no more paths than nodes */
	size_t n = collect_paths(e, all, 0);
	for (size_t i = 0; i < n && i < max; i++)
		paths[i] = all[i];
	return n;
}

/* ---------- evaluation ---------- */

struct Ev {
	GraphiteFetch fetch;
	void *ctx;
	char *err;
	size_t errlen;
	const GraphiteRange *range; /* NULL: functions that make series of their own fail */
};

PRINTF_LIKE(2, 3)
static bool ev_fail(Ev *ev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ev->err, ev->errlen, fmt, ap);
	va_end(ap);
	return false;
}

static bool eval_into(const GraphiteExpr *e, Ev *ev, GraphiteList *out)
{
	if (e->kind == GE_CALL)
		return e->fn->eval(e, ev, out);
	size_t before = out->n;
	if (!ev->fetch(ev->ctx, e->text, out, ev->err, ev->errlen)) {
		list_truncate(out, before);
		if (!ev->err[0])
			ev_fail(ev, "fetching %s failed", e->text);
		return false;
	}
	for (size_t i = before; i < out->n; i++) {
		GraphiteSeries *s = &out->s[i];
		if (!s->name || s->step <= 0 || (s->n && !s->v) || s->n > GRAPHITE_POINTS_MAX) {
			list_truncate(out, before);
			return ev_fail(ev, "fetching %s gave a malformed series", e->text);
		}
		if (!s->path)
			s->path = gstrdup(s->name);
		free(s->expr);
		s->expr = gstrdup(e->text);
	}
	return true;
}

/* Gives s a new name (taking it); Graphite also makes it the pathExpression of most results. */
static void set_name(GraphiteSeries *s, char *name, bool as_expr)
{
	if (as_expr) {
		free(s->expr);
		s->expr = gstrdup(name);
	}
	free(s->name);
	s->name = name;
}

static double *new_values(size_t n)
{
	double *v = gmalloc(n * sizeof(double));
	for (size_t i = 0; i < n; i++)
		v[i] = NAN;
	return v;
}

/* Graphite's %g of a float, and str() of a number as written (1500, 0.5, 1500.0). */
static char *number_text(const GraphiteExpr *e)
{
	if (e->is_int) /* Python's ints print whole, however long */
		return gstrdup(e->text);
	char tmp[40];
	size_t n = jsonw_format_double(e->num, tmp);
	if (!strpbrk(tmp, ".en"))
		memcpy(tmp + n, ".0", 3);
	return gstrdup(tmp);
}

/* Unique expressions of the series, joined by ',': Graphite's formatPathExpressions. */
static void join_exprs(Buf *b, GraphiteSeries *const *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(s[j]->expr, s[i]->expr) == 0;
		if (seen)
			continue;
		if (b->len && b->p[b->len - 1] != '(')
			buf_addc(b, ',');
		buf_adds(b, s[i]->expr);
	}
}

/* The first path inside a name like sumSeries(scale(a.*,2),b): a.*. Graphite reads nodes of a
 * combined series from it. */
static char *first_path(const char *name)
{
	const char *p = name;
	for (;;) {
		const char *q = p;
		while (is_alnum_ascii((unsigned char)*q) || *q == '_')
			q++;
		if (q > p && *q == '(')
			p = q + 1;
		else
			break;
	}
	const char *q = p;
	int braces = 0;
	while (*q && !((*q == ',' || *q == ')') && braces == 0)) {
		braces += *q == '{' ? 1 : *q == '}' && braces ? -1 : 0;
		q++;
	}
	return gstrndup(p, (size_t)(q - p));
}

typedef struct Grid {
	int64_t start, step;
	size_t n;
} Grid;

static int64_t gcd64(int64_t a, int64_t b)
{
	while (b) {
		int64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Graphite's normalize(): the least common multiple of the steps and the earliest start. */
static bool grid_of(GraphiteSeries *const *s, size_t n, Grid *g, Ev *ev)
{
	int64_t step = s[0]->step, start = s[0]->start, end = s[0]->start;
	for (size_t i = 0; i < n; i++) {
		int64_t a = step, b = s[i]->step, l;
		if (__builtin_mul_overflow(a / gcd64(a, b), b, &l) ||
		    (l > GRAPHITE_STEP_MAX && l != a && l != b))
			return ev_fail(ev, "series with steps of %llds and %llds cannot be combined: their least common "
				       "multiple is over a year", (long long)a, (long long)b);
		step = l;
		if (s[i]->start < start)
			start = s[i]->start;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t e = s[i]->start + (int64_t)s[i]->n * s[i]->step;
		if (e > end)
			end = e;
	}
	int64_t cells = end > start ? (end - start + step - 1) / step : 0;
	if (cells > GRAPHITE_POINTS_MAX)
		return ev_fail(ev, "combining series would make more than %d points", GRAPHITE_POINTS_MAX);
	g->start = start;
	g->step = step;
	g->n = (size_t)cells;
	return true;
}

/* s's points on grid g, those falling in one cell merged by s's consolidate function. */
static double *on_grid(const GraphiteSeries *s, const Grid *g)
{
	double *out = new_values(g->n);
	Acc a;
	acc_reset(&a);
	size_t cur = SIZE_MAX;
	for (size_t k = 0; k < s->n; k++) {
		size_t j = (size_t)((s->start + (int64_t)k * s->step - g->start) / g->step);
		if (j >= g->n)
			break;
		if (j != cur) {
			if (cur != SIZE_MAX)
				out[cur] = acc_value(&a, s->consolidate);
			acc_reset(&a);
			cur = j;
		}
		acc_add(&a, s->v[k]);
	}
	if (cur != SIZE_MAX)
		out[cur] = acc_value(&a, s->consolidate);
	return out;
}

static GraphiteSeries **series_ptrs(GraphiteList *l)
{
	GraphiteSeries **p = gmalloc(l->n * sizeof(*p));
	for (size_t i = 0; i < l->n; i++)
		p[i] = &l->s[i];
	return p;
}

/* Evaluates argument i (a series argument) into l. */
static bool arg_series(const GraphiteExpr *call, size_t i, Ev *ev, GraphiteList *l)
{
	return eval_into(call->args[i], ev, l);
}

/* ---------- the functions ---------- */

static bool fn_alias(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++)
		set_name(&in.s[i], gstrdup(call->args[1]->text), false);
	list_move(out, &in);
	return true;
}

/* Node i of the series' metric path ("" when there is none, as Graphite gives). Graphite reads
 * the nodes of the series' name instead; the two differ only after a rename (alias), where the
 * metric path is what a user means. */
static void add_node(Buf *b, const GraphiteSeries *s, long node)
{
	const char *seg;
	size_t n;
	if (graphite_seg(s->path, strlen(s->path), node, &seg, &n))
		buf_add(b, seg, n);
}

static bool fn_alias_by_node(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		Buf b = {0};
		for (size_t k = 1; k < call->nargs; k++) {
			if (k > 1)
				buf_addc(&b, '.');
			add_node(&b, &in.s[i], node_index(call->args[k]->num));
		}
		set_name(&in.s[i], buf_str(&b), false);
	}
	list_move(out, &in);
	return true;
}

static bool fn_alias_by_metric(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		Buf b = {0};
		add_node(&b, &in.s[i], -1);
		set_name(&in.s[i], buf_str(&b), false);
	}
	list_move(out, &in);
	return true;
}

static const char *agg_series_name(GraphiteAgg a)
{
	switch (a) {
	case GRAPHITE_SUM:
		return "sumSeries";
	case GRAPHITE_MAX:
		return "maxSeries";
	case GRAPHITE_MIN:
		return "minSeries";
	default:
		return "averageSeries";
	}
}

static bool fn_aggregate(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	for (size_t i = 0; i < call->nargs; i++)
		if (!arg_series(call, i, ev, &in)) {
			graphite_list_free(&in);
			return false;
		}
	if (in.n == 0)
		return true; /* Graphite answers nothing rather than an empty line */
	GraphiteSeries **ps = series_ptrs(&in);
	Grid g;
	if (!grid_of(ps, in.n, &g, ev)) {
		free(ps);
		graphite_list_free(&in);
		return false;
	}
	double **vals = gmalloc(in.n * sizeof(*vals));
	for (size_t i = 0; i < in.n; i++)
		vals[i] = on_grid(ps[i], &g);
	GraphiteSeries r = {0};
	r.start = g.start;
	r.step = g.step;
	r.n = g.n;
	r.v = new_values(g.n);
	for (size_t j = 0; j < g.n; j++) {
		Acc a;
		acc_reset(&a);
		for (size_t i = 0; i < in.n; i++)
			acc_add(&a, vals[i][j]);
		r.v[j] = acc_value(&a, call->fn->agg);
	}
	Buf b = {0};
	buf_addf(&b, "%s(", agg_series_name(call->fn->agg));
	join_exprs(&b, ps, in.n);
	buf_addc(&b, ')');
	r.name = buf_str(&b);
	r.expr = gstrdup(r.name);
	r.path = first_path(r.name);
	for (size_t i = 0; i < in.n; i++)
		free(vals[i]);
	free(vals);
	free(ps);
	graphite_list_free(&in);
	list_push(out, &r);
	return true;
}

/* scale and offset: every point times f, or plus f. */
static bool linear(const GraphiteExpr *call, Ev *ev, GraphiteList *out, bool times)
{
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	double f = call->args[1]->num;
	for (size_t i = 0; i < in.n; i++) {
		GraphiteSeries *s = &in.s[i];
		for (size_t k = 0; k < s->n; k++)
			s->v[k] = times ? s->v[k] * f : s->v[k] + f;
		set_name(s, gprintf("%s(%s,%g)", times ? "scale" : "offset", s->name, f), true);
	}
	list_move(out, &in);
	return true;
}

static bool fn_scale(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	return linear(call, ev, out, true);
}

static bool fn_offset(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	return linear(call, ev, out, false);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* Buckets of the interval aligned to its multiples from the epoch (or to the series' start with
 * alignToFrom). Unlike graphite-web, no empty bucket is added after a series that ends on a
 * bucket boundary. */
static bool fn_summarize(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	int64_t iv = 0;
	if (!graphite_parse_interval(call->args[1]->text, &iv))
		return ev_fail(ev, "summarize: bad interval");
	const char *fname = call->args[2] ? call->args[2]->text : "sum";
	bool align_from = call->args[3] && call->args[3]->b;
	GraphiteAgg f = GRAPHITE_SUM;
	(void)agg_lookup(fname, &f);
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		const GraphiteSeries *s = &in.s[i];
		int64_t t0 = align_from ? s->start : floor_div(s->start, iv) * iv;
		int64_t end = s->start + (int64_t)s->n * s->step;
		int64_t nb = s->n ? (end - t0 + iv - 1) / iv : 0;
		if (nb > GRAPHITE_POINTS_MAX) {
			graphite_list_free(&in);
			return ev_fail(ev, "summarize: interval %s makes more than %d points", call->args[1]->text,
				       GRAPHITE_POINTS_MAX);
		}
	}
	for (size_t i = 0; i < in.n; i++) {
		GraphiteSeries *s = &in.s[i];
		int64_t t0 = align_from ? s->start : floor_div(s->start, iv) * iv;
		int64_t end = s->start + (int64_t)s->n * s->step;
		size_t nb = s->n ? (size_t)((end - t0 + iv - 1) / iv) : 0;
		double *v = new_values(nb);
		Acc a;
		acc_reset(&a);
		size_t cur = SIZE_MAX;
		for (size_t k = 0; k < s->n; k++) {
			size_t j = (size_t)((s->start + (int64_t)k * s->step - t0) / iv);
			if (j != cur) {
				if (cur != SIZE_MAX)
					v[cur] = acc_value(&a, f);
				acc_reset(&a);
				cur = j;
			}
			acc_add(&a, s->v[k]);
		}
		if (cur != SIZE_MAX)
			v[cur] = acc_value(&a, f);
		free(s->v);
		s->v = v;
		s->n = nb;
		s->start = t0;
		s->step = iv;
		set_name(s, gprintf("summarize(%s, \"%s\", \"%s\"%s)", s->name, call->args[1]->text, fname,
				    align_from ? ", true" : ""),
			 true);
	}
	list_move(out, &in);
	return true;
}

static bool fn_consolidate_by(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteAgg f = GRAPHITE_AVERAGE;
	(void)agg_lookup(call->args[1]->text, &f);
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		GraphiteSeries *s = &in.s[i];
		s->consolidate = f;
		set_name(s, gprintf("consolidateBy(%s,\"%s\")", s->name, call->args[1]->text), true);
	}
	list_move(out, &in);
	return true;
}

/* The mean of the non-null points among the window's last points, the current one included
 * (graphite-web 1.1 averages the points before the current one, which draws the average one
 * step late: its issue 2632). Nothing before the range is fetched, so the first window-1
 * points average what the range holds. A window given as an interval covers interval/step
 * points, at least one. The sums never subtract (two stacks), so a huge value leaving the
 * window cannot spoil the small ones after it. */
static void moving_average(GraphiteSeries *s, size_t w)
{
	size_t n = s->n;
	double *out = new_values(n), *fsum = gmalloc(n * sizeof(double));
	size_t *fcnt = gmalloc(n * sizeof(size_t));
	size_t mid = 0, bcnt = 0;
	double bsum = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isnan(s->v[i])) {
			bsum += s->v[i];
			bcnt++;
		}
		size_t lo = i + 1 >= w ? i + 1 - w : 0;
		if (lo >= mid) { /* the front stack is empty: rebuild it from the window */
			double fs = 0;
			size_t fc = 0;
			for (size_t k = i + 1; k-- > lo;) {
				if (!isnan(s->v[k])) {
					fs += s->v[k];
					fc++;
				}
				fsum[k] = fs;
				fcnt[k] = fc;
			}
			mid = i + 1;
			bsum = 0;
			bcnt = 0;
		}
		size_t cnt = fcnt[lo] + bcnt;
		if (cnt)
			out[i] = (fsum[lo] + bsum) / (double)cnt;
	}
	free(fsum);
	free(fcnt);
	free(s->v);
	s->v = out;
}

static bool fn_moving_average(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	const GraphiteExpr *w = call->args[1];
	int64_t secs = 0;
	if (w->kind == GE_STRING && !window_interval(w->text, &secs))
		return ev_fail(ev, "movingAverage: bad window");
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		GraphiteSeries *s = &in.s[i];
		size_t pts;
		if (w->kind == GE_NUMBER)
			pts = w->num > (double)GRAPHITE_POINTS_MAX ? GRAPHITE_POINTS_MAX : (size_t)w->num;
		else
			pts = secs / s->step > 0 ? (size_t)(secs / s->step) : 1;
		moving_average(s, pts);
		if (w->kind == GE_NUMBER)
			set_name(s, gprintf("movingAverage(%s,%s)", s->name, w->text), true);
		else
			set_name(s, gprintf("movingAverage(%s,\"%s\")", s->name, w->text), true);
	}
	list_move(out, &in);
	return true;
}

static bool fn_derivative(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		GraphiteSeries *s = &in.s[i];
		double prev = NAN;
		for (size_t k = 0; k < s->n; k++) {
			double v = s->v[k];
			s->v[k] = v - prev; /* NAN when either is null */
			prev = v;
		}
		set_name(s, gprintf("derivative(%s)", s->name), true);
	}
	list_move(out, &in);
	return true;
}

/* Graphite's _nonNegativeDelta: a counter that went down wrapped at maxValue (or restarted from
 * minValue) when one is given, else the point is null; a value past a bound is null and starts
 * afresh. */
static double non_negative_delta(double v, double *prev, const GraphiteExpr *max, const GraphiteExpr *min)
{
	if ((max && v > max->num) || (min && v < min->num)) {
		*prev = NAN;
		return NAN;
	}
	double p = *prev;
	*prev = v;
	if (isnan(p) || isnan(v))
		return NAN;
	if (v >= p)
		return v - p;
	if (max)
		return max->num + 1 + v - p - (min ? min->num : 0);
	if (min)
		return v - min->num;
	return NAN;
}

static bool fn_non_negative_derivative(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		GraphiteSeries *s = &in.s[i];
		double prev = NAN;
		for (size_t k = 0; k < s->n; k++)
			s->v[k] = non_negative_delta(s->v[k], &prev, call->args[1], call->args[2]);
		set_name(s, gprintf("nonNegativeDerivative(%s)", s->name), true);
	}
	list_move(out, &in);
	return true;
}

/* Python's round(x, 6), which perSecond applies. */
static double round6(double x)
{
	if (!isfinite(x) || fabs(x) >= 1e15)
		return x;
	return nearbyint(x * 1e6) / 1e6;
}

static bool fn_per_second(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	for (size_t i = 0; i < in.n; i++) {
		GraphiteSeries *s = &in.s[i];
		double prev = NAN;
		for (size_t k = 0; k < s->n; k++)
			s->v[k] = round6(non_negative_delta(s->v[k], &prev, call->args[1], call->args[2]) / (double)s->step);
		set_name(s, gprintf("perSecond(%s)", s->name), true);
	}
	list_move(out, &in);
	return true;
}

static double percent(double v, double total)
{
	if (isnan(v) || isnan(total) || total == 0)
		return NAN;
	return v / total * 100.0;
}

/* A new series named name on grid g, values owned. */
static void push_new(GraphiteList *out, char *name, const char *path, const Grid *g, double *v)
{
	GraphiteSeries r = {0};
	r.name = name;
	r.expr = gstrdup(name);
	r.path = gstrdup(path);
	r.start = g->start;
	r.step = g->step;
	r.n = g->n;
	r.v = v;
	list_push(out, &r);
}

typedef struct Ranked {
	double key;
	size_t index;
	const char *name;
} Ranked;

static int by_name(const void *a, const void *b)
{
	const Ranked *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

static bool as_percent_pairs(GraphiteList *in, GraphiteList *tot, Ev *ev, GraphiteList *res)
{
	size_t n = in->n;
	Ranked *a = gmalloc(n * sizeof(*a)), *b = gmalloc(n * sizeof(*b));
	for (size_t i = 0; i < n; i++) {
		a[i] = (Ranked){0, i, in->s[i].name};
		b[i] = (Ranked){0, i, tot->s[i].name};
	}
	qsort(a, n, sizeof(*a), by_name);
	qsort(b, n, sizeof(*b), by_name);
	bool ok = true;
	for (size_t i = 0; i < n && ok; i++) {
		GraphiteSeries *pair[2] = {&in->s[a[i].index], &tot->s[b[i].index]};
		Grid g;
		if (!(ok = grid_of(pair, 2, &g, ev)))
			break;
		double *x = on_grid(pair[0], &g), *t = on_grid(pair[1], &g);
		for (size_t j = 0; j < g.n; j++)
			x[j] = percent(x[j], t[j]);
		free(t);
		push_new(res, gprintf("asPercent(%s,%s)", pair[0]->name, pair[1]->name), pair[0]->path, &g, x);
	}
	free(a);
	free(b);
	return ok;
}

static bool fn_as_percent(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	const GraphiteExpr *total = call->args[1];
	GraphiteList in = {0}, tot = {0}, res = {0};
	GraphiteSeries **ps = NULL;
	bool ok = false;
	if (!arg_series(call, 0, ev, &in))
		return false;
	if (total && (total->kind == GE_PATH || total->kind == GE_CALL)) {
		if (!eval_into(total, ev, &tot))
			goto done;
		if (tot.n != 1 && tot.n != in.n) {
			ev_fail(ev, "asPercent: the total must be one series or as many series as the first argument "
				    "(%zu), not %zu", in.n, tot.n);
			goto done;
		}
		if (tot.n == in.n && (in.n != 1 || tot.n != 1)) {
			ok = as_percent_pairs(&in, &tot, ev, &res);
			goto done;
		}
	}
	if (in.n == 0) {
		ok = true;
		goto done;
	}
	/* One total for every series: the sum of them all, a number, or one series. */
	size_t n = in.n + tot.n;
	ps = gmalloc(n * sizeof(*ps));
	for (size_t i = 0; i < in.n; i++)
		ps[i] = &in.s[i];
	if (tot.n)
		ps[in.n] = &tot.s[0];
	Grid g;
	if (!grid_of(ps, n, &g, ev))
		goto done;
	double *t = NULL;
	char *ttext;
	if (tot.n) {
		t = on_grid(&tot.s[0], &g);
		ttext = gstrdup(tot.s[0].name);
	} else if (total) {
		ttext = number_text(total);
	} else {
		t = new_values(g.n);
		double **vals = gmalloc(in.n * sizeof(*vals));
		for (size_t i = 0; i < in.n; i++)
			vals[i] = on_grid(&in.s[i], &g);
		for (size_t j = 0; j < g.n; j++) {
			Acc a;
			acc_reset(&a);
			for (size_t i = 0; i < in.n; i++)
				acc_add(&a, vals[i][j]);
			t[j] = acc_value(&a, GRAPHITE_SUM);
		}
		for (size_t i = 0; i < in.n; i++)
			free(vals[i]);
		free(vals);
		Buf b = {0};
		buf_adds(&b, "sumSeries(");
		join_exprs(&b, ps, in.n);
		buf_addc(&b, ')');
		ttext = buf_str(&b);
	}
	for (size_t i = 0; i < in.n; i++) {
		double *x = on_grid(&in.s[i], &g);
		for (size_t j = 0; j < g.n; j++)
			x[j] = percent(x[j], t ? t[j] : total->num);
		push_new(&res, gprintf("asPercent(%s,%s)", in.s[i].name, ttext), in.s[i].path, &g, x);
	}
	free(t);
	free(ttext);
	ok = true;
done:
	free(ps);
	graphite_list_free(&in);
	graphite_list_free(&tot);
	if (ok)
		list_move(out, &res);
	else
		graphite_list_free(&res);
	return ok;
}

static int by_key_desc(const void *a, const void *b)
{
	const Ranked *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? 1 : -1;
	return (x->index > y->index) - (x->index < y->index);
}

/* Python's seriesList[:n]: a negative n leaves out the last -n. */
static size_t slice_len(size_t len, double n)
{
	if (n >= 0)
		return n < (double)len ? (size_t)n : len;
	return -n < (double)len ? len - (size_t)-n : 0;
}

/* Moves l's series to out in the order of r (by index), the first keep of them; frees the rest. */
static void move_ranked(GraphiteList *l, const Ranked *r, size_t keep, GraphiteList *out)
{
	for (size_t i = 0; i < l->n; i++)
		if (i < keep)
			list_push(out, &l->s[r[i].index]);
	graphite_list_free(l);
}

/* Descending by maximum, stably; a series without a point sorts last (Graphite's -inf). */
static bool rank_by_max(const GraphiteExpr *call, Ev *ev, GraphiteList *in, Ranked **r)
{
	if (!arg_series(call, 0, ev, in))
		return false;
	*r = gmalloc(in->n * sizeof(**r));
	for (size_t i = 0; i < in->n; i++) {
		Acc a;
		acc_reset(&a);
		for (size_t k = 0; k < in->s[i].n; k++)
			acc_add(&a, in->s[i].v[k]);
		(*r)[i] = (Ranked){a.count ? a.max : -INFINITY, i, NULL};
	}
	qsort(*r, in->n, sizeof(**r), by_key_desc);
	return true;
}

static bool fn_highest_max(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	Ranked *r;
	if (!rank_by_max(call, ev, &in, &r))
		return false;
	move_ranked(&in, r, slice_len(in.n, call->args[1]->num), out);
	free(r);
	return true;
}

static bool fn_sort_by_maxima(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	Ranked *r;
	if (!rank_by_max(call, ev, &in, &r))
		return false;
	move_ranked(&in, r, in.n, out);
	free(r);
	return true;
}

/* Graphite gives three points across the range; here, like every series of a render, one per
 * step. */
static bool fn_constant_line(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	if (!ev->range)
		return ev_fail(ev, "constantLine: there is no time range to draw it over");
	const GraphiteRange *r = ev->range;
	if (r->n > GRAPHITE_POINTS_MAX)
		return ev_fail(ev, "constantLine: more than %d points", GRAPHITE_POINTS_MAX);
	GraphiteSeries *c = graphite_list_add(out, call->args[0]->text, NULL, r->start, r->step, r->n);
	for (size_t k = 0; k < r->n; k++)
		c->v[k] = call->args[0]->num;
	free(c->expr);
	c->expr = gprintf("constantLine(%s)", call->args[0]->text);
	return true;
}

static bool fn_limit(const GraphiteExpr *call, Ev *ev, GraphiteList *out)
{
	GraphiteList in = {0};
	if (!arg_series(call, 0, ev, &in))
		return false;
	list_truncate(&in, slice_len(in.n, call->args[1]->num));
	list_move(out, &in);
	return true;
}

bool graphite_eval(const GraphiteExpr *e, GraphiteFetch fetch, void *ctx, GraphiteList *out, char *err,
		   size_t errlen)
{
	return graphite_eval_range(e, NULL, fetch, ctx, out, err, errlen);
}

bool graphite_eval_range(const GraphiteExpr *e, const GraphiteRange *range, GraphiteFetch fetch, void *ctx,
			 GraphiteList *out, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	Ev ev = {fetch, ctx, err, errlen, range};
	size_t before = out->n;
	if (eval_into(e, &ev, out))
		return true;
	list_truncate(out, before);
	if (!err[0])
		snprintf(err, errlen, "evaluation failed");
	return false;
}

/* ---------- output ---------- */

void graphite_consolidate(GraphiteSeries *s, size_t max_points)
{
	if (max_points == 0 || s->n <= max_points)
		return;
	size_t n = s->n;
	if (max_points == 1) {
		Acc a;
		acc_reset(&a);
		for (size_t k = 0; k < n; k++)
			acc_add(&a, s->v[k]);
		s->v[0] = acc_value(&a, s->consolidate);
		s->step *= (int64_t)n;
		s->n = 1;
		return;
	}
	size_t per = (n + max_points - 1) / max_points;
	int64_t w = s->step * (int64_t)per;
	int64_t t0 = floor_div(s->start, w) * w;
	size_t groups = (size_t)((s->start + (int64_t)(n - 1) * s->step - t0) / w) + 1;
	size_t skip = 0; /* leading points left out with the partial first group */
	if (groups > max_points) {
		t0 += w;
		groups--;
		while (skip < n && s->start + (int64_t)skip * s->step < t0)
			skip++;
	}
	double *v = new_values(groups);
	Acc a;
	acc_reset(&a);
	size_t cur = SIZE_MAX;
	for (size_t k = skip; k < n; k++) {
		size_t j = (size_t)((s->start + (int64_t)k * s->step - t0) / w);
		if (j != cur) {
			if (cur != SIZE_MAX)
				v[cur] = acc_value(&a, s->consolidate);
			acc_reset(&a);
			cur = j;
		}
		acc_add(&a, s->v[k]);
	}
	if (cur != SIZE_MAX)
		v[cur] = acc_value(&a, s->consolidate);
	free(s->v);
	s->v = v;
	s->n = groups;
	s->start = t0;
	s->step = w;
}

void graphite_write_json(const GraphiteList *l, Buf *out)
{
	buf_addc(out, '[');
	for (size_t i = 0; i < l->n; i++) {
		const GraphiteSeries *s = &l->s[i];
		buf_adds(out, i ? ", {\"target\": " : "{\"target\": ");
		jsonw_string(out, s->name, strlen(s->name));
		buf_adds(out, ", \"datapoints\": [");
		char t[24];
		for (size_t k = 0; k < s->n; k++) {
			buf_adds(out, k ? ", [" : "[");
			jsonw_double(out, s->v[k]); /* null for NAN */
			buf_adds(out, ", ");
			buf_add(out, t, jsonw_format_int(s->start + (int64_t)k * s->step, t));
			buf_addc(out, ']');
		}
		buf_adds(out, "]}");
	}
	buf_addc(out, ']');
}

static const char *param_type(PKind k)
{
	switch (k) {
	case P_SERIES:
	case P_TOTAL: /* Grafana then sends what the user types unquoted: a number or a series */
		return "seriesList";
	case P_INTERVAL:
		return "interval";
	case P_AGGFUNC:
		return "aggFunc";
	case P_FLOAT:
		return "float";
	case P_INTEGER:
		return "integer";
	case P_NODE:
		return "node";
	case P_BOOL:
		return "boolean";
	case P_WINDOW:
		return "intOrInterval";
	case P_STRING:
	case P_CONSOLIDATE:
	default:
		return "string";
	}
}

void graphite_functions_json(Buf *out)
{
	buf_addc(out, '{');
	for (size_t i = 0; i < nfuncs; i++) {
		const Func *f = &funcs[i];
		if (i)
			buf_adds(out, ", ");
		jsonw_string(out, f->name, strlen(f->name));
		buf_adds(out, ": {\"name\": ");
		jsonw_string(out, f->name, strlen(f->name));
		buf_adds(out, ", \"function\": ");
		jsonw_string(out, f->signature, strlen(f->signature));
		buf_adds(out, ", \"description\": ");
		jsonw_string(out, f->desc, strlen(f->desc));
		buf_adds(out, ", \"module\": \"graphite.render.functions\", \"group\": ");
		jsonw_string(out, f->group, strlen(f->group));
		buf_adds(out, ", \"params\": [");
		size_t np = func_nparams(f);
		for (size_t k = 0; k < np; k++) {
			const Param *p = &f->params[k];
			buf_adds(out, k ? ", {\"name\": " : "{\"name\": ");
			jsonw_string(out, p->name, strlen(p->name));
			buf_addf(out, ", \"type\": \"%s\", \"required\": %s", param_type(p->kind),
				 p->required ? "true" : "false");
			if (p->multiple)
				buf_adds(out, ", \"multiple\": true");
			if (p->json)
				buf_addf(out, ", %s", p->json);
			buf_addc(out, '}');
		}
		buf_adds(out, "]}");
	}
	buf_addc(out, '}');
}
