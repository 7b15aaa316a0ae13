/* Strict parsing of URL query strings and a cost check of the regular expressions clients send.
 * Pure: no I/O, links alone in unit tests and fuzz targets.
 *
 * Query strings: '&'-separated "key=value" pairs; '+' is a space, "%XX" a byte. A pair without
 * '=' has an empty value and empty pairs are skipped. Rejected (false, with a message and the
 * offending key): a query string over QUERY_MAX_BYTES, bad percent-encoding ("%", "%4", "%zz"),
 * a decoded NUL byte, invalid UTF-8 (overlong forms, surrogates, past U+10FFFF, truncated
 * sequences) in any key or value, and a key the caller asked for given more than once. Keys the
 * caller did not ask for are checked the same way, then ignored.
 *
 * Regular expressions (query_regex_check): the subset of PostgreSQL's AREs (the `~` operator)
 * that cannot run for long. Accepted:
 *   literals; escaped characters (`\.`, `\\`, `\(`, ...); `.`; bracket expressions `[a-z]`,
 *   `[^0-9]`, `[[:alpha:]]`; the escapes \d \s \w \D \S \W, \n \t \r \f \v \a \e \b \B,
 *   \xhh \uhhhh \Uhhhhhhhh \cX; anchors `^` `$` and the constraints \m \M \y \Y \A \Z;
 *   alternation `|`; groups `(...)` and `(?:...)`; quantifiers `*` `+` `?` `{m}` `{m,}` `{m,n}`
 *   (m, n <= 255; lazy forms `*?` `+?` `??` `{m,n}?`) on an atom, or on a group that contains no
 *   quantifier; at most 16 quantifiers, and bounds that repeat at most 255 atoms in all
 *   (a{1,255} repeats one atom 254 times, (ab){3} two atoms twice).
 * Rejected: back-references (\1..\9, \k<name>), lookahead and lookbehind ((?= (?! (?<= (?<!),
 * embedded options and comments ((?i) (?#...)), the directors ***: and ***=, a quantified group
 * holding a quantifier ((a+)+, (a*)*), more quantifiers or repeated atoms than above (they
 * make PostgreSQL's automaton slow to build), a quantifier after a quantifier or with nothing to
 * repeat, bounds over 255, octal escapes, escapes PostgreSQL does not know, unbalanced
 * parentheses or brackets, a trailing backslash, NUL and invalid UTF-8.
 * PostgreSQL still has the last word on syntax (it answers SQLSTATE 2201B); this check is about
 * cost: what passes it runs in time linear in the names it is matched against. */
#ifndef M2PG_QUERY_H
#define M2PG_QUERY_H

#include "common.h"

#define QUERY_MAX_BYTES 8192
#define QUERY_MAX_KEYS 8
#define QUERY_MAX_MULTI 64              /* values of the one key that may repeat */
#define QUERY_FORM_MAX_BYTES (256 * 1024) /* a form-encoded body */
#define QUERY_REPEAT_MAX 255 /* PostgreSQL's own bound (DUPMAX) */

typedef struct QueryParams {
	/* val[i] is the decoded value of the caller's keys[i], NUL-terminated, or NULL when the key
	 * is absent; len[i] its length. The values live in buf, freed by query_free(). */
	const char *val[QUERY_MAX_KEYS];
	size_t len[QUERY_MAX_KEYS];
	/* query_parse_form(): the values of the repeatable key, in order. */
	const char *multi[QUERY_MAX_MULTI];
	size_t multi_len[QUERY_MAX_MULTI];
	size_t nmulti;
	char *buf;
} QueryParams;

/* Parses qs (may be NULL: no parameters) looking for the nkeys (<= QUERY_MAX_KEYS) keys given.
 * On failure writes a message into err and the offending key into field ("" when there is no
 * key to name), and out holds nothing to free. On success the caller calls query_free(out).
 * One allocation. */
bool query_parse(const char *qs, const char *const *keys, size_t nkeys, QueryParams *out, char *err,
		 size_t errlen, char *field, size_t fieldlen) WARN_UNUSED;
/* The same for a form-encoded body or a query string of len bytes (not NUL-terminated; at most
 * QUERY_FORM_MAX_BYTES), where the key multi (may be NULL) may be given up to QUERY_MAX_MULTI
 * times, as Graphite's target is. */
bool query_parse_form(const char *qs, size_t len, const char *const *keys, size_t nkeys, const char *multi,
		      QueryParams *out, char *err, size_t errlen, char *field, size_t fieldlen) WARN_UNUSED;
void query_free(QueryParams *q);

/* Bytes [s, s+len) are well-formed UTF-8 (RFC 3629) without NUL. */
bool query_utf8_valid(const char *s, size_t len);

/* re[0..len) is in the accepted subset above; otherwise false with a message in err. */
bool query_regex_check(const char *re, size_t len, char *err, size_t errlen) WARN_UNUSED;

#endif
