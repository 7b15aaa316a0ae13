/* Librato's POST /v1/metrics bodies (JSON, and the legacy form encoding) read into one
 * MetricBatch. Both encodings are first read into Raw measurements (strings still pointing into
 * the parsed body, numbers only type-checked); build() then applies one set of rules to both,
 * so a form field and its JSON twin are refused with the same words. Names and sources are
 * copied into the batch's arena last, once the arena's size is known, so the batch costs two
 * allocations and no pointer into the arena ever moves.
 *
 * Rules beyond the metric model's (metric.c): names follow Librato's rule, which is also the
 * rule for sources (1..255 of A-Z a-z 0-9 . : - _); measure_time is whole Unix seconds; numbers
 * may come as JSON strings holding a decimal number (older l2met sends them so); a gauge has value, or count (a whole number >= 1) and sum; every error is a 400, and its field
 * names the place in the body: gauges[2].name, gauges.web.hits.value, measure_time. */
#include "librato.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm.h"

/* A form may spread 10,000 measurements over many fields (attributes included), but one byte
 * per field ("a&b&c") must not make a small body cost a large array. */
#define FORM_PAIRS_MAX (METRIC_BATCH_MAX * 20)
#define FORM_INDEX_MAX 10000
#define FIELD_SIZE sizeof(((MetricError *)0)->field)

#define NAME_RULE "name must be 1 to 255 characters of A-Z a-z 0-9 . : - _"
#define SOURCE_RULE "source must be 1 to 255 characters of A-Z a-z 0-9 . : - _"
#define TIME_FORM "measure_time must be Unix seconds, as a number or a string of digits"
#define TIME_RANGE "measure_time must be between 1970 and 9999"

typedef enum { LIST_GAUGES, LIST_COUNTERS, NLISTS } List;
static const char *const list_names[NLISTS] = {"gauges", "counters"};
static const char *const list_kinds[NLISTS] = {"a gauge", "a counter"};

/* Fields of a measurement; the numeric ones first, indexing Raw.num. */
enum {
	F_VALUE,
	F_COUNT,
	F_SUM,
	F_MIN,
	F_MAX,
	F_SUM_SQUARES,
	F_PERIOD,
	F_NNUM,
	F_NAME = F_NNUM,
	F_SOURCE,
	F_MEASURE_TIME,
	F_ATTRIBUTES,
	F_IGNORED, /* keys this reader does not know, and what attributes hold */
	F_WHOLE = -1, /* the measurement itself, in an error */
};
static const char *const field_names[F_IGNORED] = {
	"value", "count", "sum", "min", "max", "sum_squares", "period", "name", "source", "measure_time",
	"attributes",
};
#define BIT(f) (1u << (f))
/* The numeric fields each list knows; a counter's "count" is an unknown key, so ignored. */
static const unsigned list_fields[NLISTS] = {
	BIT(F_VALUE) | BIT(F_COUNT) | BIT(F_SUM) | BIT(F_MIN) | BIT(F_MAX) | BIT(F_SUM_SQUARES) | BIT(F_PERIOD),
	BIT(F_VALUE) | BIT(F_PERIOD),
};

/* Where a measurement sits in the body, to name it in errors. NULL: the top level. */
typedef struct Where {
	List list;
	long index;      /* position in its list */
	const char *key; /* hash form: the key (its name); NULL: a list, named by index */
	size_t key_len;
} Where;

/* A measurement as read, before its rules are checked. */
typedef struct Raw {
	const char *name, *source; /* NULL: not given */
	size_t name_len, source_len;
	bool has_time;
	double time; /* Unix seconds, not yet truncated nor checked */
	unsigned have; /* BIT(f): num[f] was given */
	double num[F_NNUM];
} Raw;

/* What the top level gives every measurement that does not say otherwise. */
typedef struct Defaults {
	int64_t time_s;
	const char *source;
	size_t source_len;
} Defaults;

/* ---------- errors ---------- */

/* Copies s into dst as printable ASCII (anything else becomes '?'): a field is echoed in a JSON
 * answer, and cutting a UTF-8 sequence in half would make that answer invalid. */
static char *put_clean(char *dst, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		*dst++ = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	return dst;
}

/* "gauges[2].name", "gauges.web.hits.name", "measure_time"; f == F_WHOLE names the measurement.
 * A long hash key is cut, with "...", so that the field it names still shows. */
static void field_of(const Where *w, int f, char out[FIELD_SIZE])
{
	const size_t room = FIELD_SIZE - 1;
	const char *fname = f >= 0 ? field_names[f] : NULL;
	if (!w) {
		snprintf(out, room + 1, "%s", fname ? fname : "");
		return;
	}
	if (!w->key) {
		snprintf(out, room + 1, "%s[%ld]%s%s", list_names[w->list], w->index, fname ? "." : "",
			 fname ? fname : "");
		return;
	}
	size_t head = strlen(list_names[w->list]) + 1, tail = fname ? strlen(fname) + 1 : 0;
	size_t key_len = w->key_len;
	bool cut = head + key_len + tail > room;
	if (cut)
		key_len = room - head - tail - 3;
	char *p = out;
	p += sprintf(p, "%s.", list_names[w->list]);
	p = put_clean(p, w->key, key_len);
	if (cut)
		p += sprintf(p, "...");
	if (fname)
		p += sprintf(p, ".%s", fname);
	*p = '\0';
}

static bool vfail(MetricError *err, long index, const char *field, const char *fmt, va_list ap)
{
	err->status = 400;
	err->index = index;
	snprintf(err->field, sizeof(err->field), "%s", field);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return false;
}

PRINTF_LIKE(3, 4)
static bool fail(MetricError *err, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(err, -1, field, fmt, ap);
	va_end(ap);
	return false;
}

/* An error about field f of the measurement at w (w NULL: a top-level field). */
PRINTF_LIKE(4, 5)
static bool fail_at(MetricError *err, const Where *w, int f, const char *fmt, ...)
{
	char field[sizeof(err->field)];
	field_of(w, f, field);
	va_list ap;
	va_start(ap, fmt);
	vfail(err, w ? w->index : -1, field, fmt, ap);
	va_end(ap);
	return false;
}

/* ---------- the rules, for both encodings ---------- */

/* A string of digits (clients built on form data send measure_time so) as a number. Past 15
 * digits the double is inexact, but then it is far outside the years allowed anyway. */
static bool digits_value(const char *s, size_t len, double *out)
{
	if (len == 0)
		return false;
	double v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool check_time(double secs, const Where *w, int64_t *out, MetricError *err)
{
	double whole = trunc(secs);
	int64_t us;
	if (!tm_from_unix(whole, &us))
		return fail_at(err, w, F_MEASURE_TIME, TIME_RANGE);
	*out = (int64_t)whole;
	return true;
}

/* A number that becomes a mean or median (value, sum / count) must not be so small that a
 * product of two underflows: PostgreSQL makes that an error (see metric.c). */
static bool tiny(double v)
{
	return v != 0 && fabs(v) < METRIC_VALUE_MIN;
}

static bool check_numbers(const Raw *r, const Where *w, MetricError *err)
{
	for (int f = 0; f < F_NNUM; f++) {
		if (!(r->have & BIT(f)))
			continue;
		double v = r->num[f];
		/* sum_squares and period are read and dropped: any finite number will do. */
		if (f == F_SUM_SQUARES || f == F_PERIOD) {
			if (!isfinite(v))
				return fail_at(err, w, f, "%s must be a number", field_names[f]);
		} else if (!isfinite(v) || fabs(v) > METRIC_VALUE_MAX) {
			return fail_at(err, w, f, "%s must be between -1e100 and 1e100", field_names[f]);
		}
	}
	if ((r->have & BIT(F_VALUE)) && tiny(r->num[F_VALUE]))
		return fail_at(err, w, F_VALUE, "value must be 0 or of magnitude at least 1e-100");
	return true;
}

static bool check_gauge(const Raw *r, const Where *w, MetricError *err)
{
	const unsigned summary = BIT(F_COUNT) | BIT(F_SUM) | BIT(F_MIN) | BIT(F_MAX) | BIT(F_SUM_SQUARES);
	if (r->have & BIT(F_VALUE)) {
		for (int f = F_COUNT; f <= F_SUM_SQUARES; f++)
			if (r->have & summary & BIT(f))
				return fail_at(err, w, f,
					       "a gauge with value cannot also have count, sum, min, max or "
					       "sum_squares");
		return true;
	}
	if (!(r->have & (BIT(F_COUNT) | BIT(F_SUM))))
		return fail_at(err, w, F_VALUE, "a gauge needs value, or count and sum");
	if (!(r->have & BIT(F_COUNT)))
		return fail_at(err, w, F_COUNT, "count is required with sum");
	if (!(r->have & BIT(F_SUM)))
		return fail_at(err, w, F_SUM, "sum is required with count");
	double count = r->num[F_COUNT], sum = r->num[F_SUM];
	if (count < 1 || count != floor(count))
		return fail_at(err, w, F_COUNT, "count must be a whole number of at least 1");
	if ((r->have & BIT(F_MIN)) && (r->have & BIT(F_MAX)) && r->num[F_MIN] > r->num[F_MAX])
		return fail_at(err, w, F_MIN, "min must not be more than max");
	double mean = sum / count;
	if (sum != 0 && (mean == 0 || tiny(mean)))
		return fail_at(err, w, F_SUM, "sum / count must be 0 or of magnitude at least 1e-100");
	return true;
}

/* Checks r and fills m, its name and source still pointing into the body (see relocate()). */
static bool build(const Raw *r, const Where *w, const Defaults *d, Metric *m, size_t *arena,
		  MetricError *err)
{
	if (!r->name)
		return fail_at(err, w, F_NAME, "name is required");
	/* Librato's rule for names is the rule for sources. */
	if (!metric_source_valid(r->name, r->name_len))
		return fail_at(err, w, F_NAME, NAME_RULE);
	int64_t secs = d->time_s;
	if (r->has_time && !check_time(r->time, w, &secs, err))
		return false;
	const char *source = d->source;
	size_t source_len = d->source_len;
	if (r->source) {
		if (!metric_source_valid(r->source, r->source_len))
			return fail_at(err, w, F_SOURCE, SOURCE_RULE);
		source = r->source;
		source_len = r->source_len;
	}
	if (!check_numbers(r, w, err))
		return false;
	if (w->list == LIST_COUNTERS && !(r->have & BIT(F_VALUE)))
		return fail_at(err, w, F_VALUE, "value is required");
	if (w->list == LIST_GAUGES && !check_gauge(r, w, err))
		return false;

	memset(m, 0, sizeof(*m));
	m->name = r->name;
	m->name_len = (uint16_t)r->name_len;
	m->source = source;
	m->source_len = (uint8_t)source_len;
	m->bucket_us = secs * 1000000;
	m->has_id = true;
	uuid_named(&m->id, r->name, r->name_len, source, source_len, secs * 1000);
	*arena += r->name_len + 1 + (source ? source_len + 1 : 0);
	if (r->have & BIT(F_VALUE)) {
		for (int i = 0; i < METRIC_NSTATS; i++)
			m->v[i] = r->num[F_VALUE];
		m->v[METRIC_COUNT] = 1;
		m->present = (uint8_t)((1u << METRIC_NSTATS) - 1);
		return true;
	}
	m->v[METRIC_COUNT] = r->num[F_COUNT];
	m->v[METRIC_MEAN] = r->num[F_SUM] / r->num[F_COUNT];
	m->present = 1u << METRIC_COUNT | 1u << METRIC_MEAN;
	if (r->have & BIT(F_MIN)) {
		m->v[METRIC_MIN] = r->num[F_MIN];
		m->present |= 1u << METRIC_MIN;
	}
	if (r->have & BIT(F_MAX)) {
		m->v[METRIC_MAX] = r->num[F_MAX];
		m->present |= 1u << METRIC_MAX;
	}
	return true;
}

/* Copies every name and source into one arena of the size build() added up. */
static void relocate(MetricBatch *out, size_t arena_size)
{
	out->arena = malloc(arena_size ? arena_size : 1);
	if (!out->arena)
		fatal("at=oom arena=%zu", arena_size);
	char *p = out->arena;
	for (size_t i = 0; i < out->n; i++) {
		Metric *m = &out->m[i];
		memcpy(p, m->name, m->name_len);
		p[m->name_len] = '\0';
		m->name = p;
		p += m->name_len + 1;
		if (m->source) {
			memcpy(p, m->source, m->source_len);
			p[m->source_len] = '\0';
			m->source = p;
			p += m->source_len + 1;
		}
	}
}

static void alloc_metrics(MetricBatch *out, size_t n)
{
	out->n = n;
	out->m = calloc(n, sizeof(Metric));
	if (!out->m)
		fatal("at=oom metrics=%zu", n);
}

/* Whole seconds at or before us, also for an instant before 1970. */
static int64_t floor_secs(int64_t us)
{
	return us / 1000000 - (us % 1000000 < 0);
}

static bool no_measurements(MetricError *err)
{
	return fail(err, "", "no gauges or counters");
}

/* Both encodings: at least one measurement, at most a batch. */
static bool count_ok(size_t n, MetricError *err)
{
	if (n == 0)
		return no_measurements(err);
	if (n > METRIC_BATCH_MAX)
		return fail(err, "", "a post holds at most %d gauges and counters", METRIC_BATCH_MAX);
	return true;
}

/* ---------- JSON ---------- */

static bool json_time(json_t *v, const Where *w, bool *has, double *secs, MetricError *err)
{
	*has = v && !json_is_null(v);
	if (!*has)
		return true;
	if (json_is_number(v)) {
		*secs = json_number_value(v);
		return true;
	}
	if (json_is_string(v) && digits_value(json_string_value(v), json_string_length(v), secs))
		return true;
	return fail_at(err, w, F_MEASURE_TIME, TIME_FORM);
}

/* A source given as JSON: not there or null leaves *s NULL. Its rule is checked by build(). */
static bool json_source(json_t *v, const Where *w, const char **s, size_t *len, MetricError *err)
{
	*s = NULL;
	*len = 0;
	if (!v || json_is_null(v))
		return true;
	if (!json_is_string(v))
		return fail_at(err, w, F_SOURCE, SOURCE_RULE);
	*s = json_string_value(v);
	*len = json_string_length(v);
	return true;
}

/* One measurement object; in hash form (w->key set) the key is its name. */
static bool decimal_value(const char *s, size_t len, double *out);

static bool json_measurement(json_t *o, const Where *w, Raw *r, MetricError *err)
{
	memset(r, 0, sizeof(*r));
	if (!json_is_object(o))
		return fail_at(err, w, F_WHOLE, "%s must be a JSON object", list_kinds[w->list]);
	if (w->key) {
		/* A "name" inside is ignored: the key says it. */
		r->name = w->key;
		r->name_len = w->key_len;
	} else {
		json_t *n = json_object_get(o, "name");
		if (n && !json_is_null(n)) {
			if (!json_is_string(n))
				return fail_at(err, w, F_NAME, NAME_RULE);
			r->name = json_string_value(n);
			r->name_len = json_string_length(n);
		}
	}
	if (!json_time(json_object_get(o, "measure_time"), w, &r->has_time, &r->time, err) ||
	    !json_source(json_object_get(o, "source"), w, &r->source, &r->source_len, err))
		return false;
	for (int f = 0; f < F_NNUM; f++) {
		if (!(list_fields[w->list] & BIT(f)))
			continue;
		json_t *v = json_object_get(o, field_names[f]);
		if (!v || json_is_null(v))
			continue;
		/* Older l2met versions send every number as a string ("count": "5",
		 * "sum": "140.00000"): a string holding a decimal number counts as one. */
		if (json_is_number(v))
			r->num[f] = json_number_value(v);
		else if (!json_is_string(v) || !decimal_value(json_string_value(v), json_string_length(v), &r->num[f]))
			return fail_at(err, w, f, "%s must be a number", field_names[f]);
		r->have |= BIT(f);
	}
	json_t *attributes = json_object_get(o, "attributes");
	if (attributes && !json_is_null(attributes) && !json_is_object(attributes))
		return fail_at(err, w, F_ATTRIBUTES, "attributes must be an object");
	return true;
}

static bool json_list(json_t *list, List which, const Defaults *d, MetricBatch *out, size_t *k,
		      size_t *arena, MetricError *err)
{
	Raw r;
	json_t *o;
	if (json_is_array(list)) {
		size_t i;
		json_array_foreach(list, i, o) {
			Where w = {.list = which, .index = (long)i};
			if (!json_measurement(o, &w, &r, err) || !build(&r, &w, d, &out->m[(*k)++], arena, err))
				return false;
		}
	} else if (json_is_object(list)) {
		/* jansson keeps keys in the order of the body, so the position is the client's. */
		const char *key;
		size_t key_len;
		long i = 0;
		json_object_keylen_foreach(list, key, key_len, o) {
			Where w = {.list = which, .index = i++, .key = key, .key_len = key_len};
			if (!json_measurement(o, &w, &r, err) || !build(&r, &w, d, &out->m[(*k)++], arena, err))
				return false;
		}
	}
	return true;
}

static bool json_parse(const char *body, size_t len, int64_t now_us, MetricBatch *out, MetricError *err)
{
	size_t ws = 0;
	while (ws < len && (body[ws] == ' ' || body[ws] == '\t' || body[ws] == '\r' || body[ws] == '\n'))
		ws++;
	if (ws == len)
		return no_measurements(err);

	json_error_t jerr;
	/* Duplicate keys are refused: in hash form a second "web.hits" would silently replace the
	 * first. NUL in strings is refused too: no name or source may hold one. */
	json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES,
				  &jerr);
	if (!root)
		return fail(err, "", "malformed JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
	bool ok = false;
	if (!json_is_object(root)) {
		fail(err, "", "the body must be a JSON object with gauges or counters");
		goto done;
	}

	Defaults d = {.time_s = floor_secs(now_us)};
	bool has_time;
	double secs;
	if (!json_time(json_object_get(root, "measure_time"), NULL, &has_time, &secs, err) ||
	    (has_time && !check_time(secs, NULL, &d.time_s, err)) ||
	    !json_source(json_object_get(root, "source"), NULL, &d.source, &d.source_len, err))
		goto done;
	if (d.source && !metric_source_valid(d.source, d.source_len)) {
		fail(err, "source", SOURCE_RULE);
		goto done;
	}

	json_t *lists[NLISTS];
	size_t n = 0;
	for (int l = 0; l < NLISTS; l++) {
		lists[l] = json_object_get(root, list_names[l]);
		if (!lists[l] || json_is_null(lists[l]))
			continue;
		if (json_is_array(lists[l]))
			n += json_array_size(lists[l]);
		else if (json_is_object(lists[l]))
			n += json_object_size(lists[l]);
		else {
			fail(err, list_names[l], "%s must be an array or an object", list_names[l]);
			goto done;
		}
	}
	if (!count_ok(n, err))
		goto done;

	alloc_metrics(out, n);
	size_t k = 0, arena = 0;
	for (int l = 0; l < NLISTS; l++)
		if (!json_list(lists[l], (List)l, &d, out, &k, &arena, err))
			goto done;
	relocate(out, arena); /* before the tree the names point into goes */
	ok = true;
done:
	json_decref(root);
	return ok;
}

/* ---------- the form encoding ---------- */

/* One key=value of the form, decoded. list < 0: a top-level key. */
typedef struct Pair {
	const char *key, *val; /* NUL-terminated */
	size_t key_len, val_len;
	int32_t index;
	int8_t list;
	int8_t field;
} Pair;

typedef enum { DEC_OK, DEC_BAD_PERCENT, DEC_NUL } DecodeResult;

/* Decodes [*s, end) into dst (never longer); on failure *s is the offending byte. */
static DecodeResult decode(const char **s, const char *end, char *dst, size_t *out_len)
{
	size_t n = 0;
	for (const char *p = *s; p < end; p++) {
		char c = *p;
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int h = end - p >= 3 ? hex_digit(p[1]) : -1;
			int l = h >= 0 ? hex_digit(p[2]) : -1;
			if (l < 0) {
				*s = p;
				return DEC_BAD_PERCENT;
			}
			c = (char)(h * 16 + l);
			if (c == 0) {
				*s = p;
				return DEC_NUL;
			}
			p += 2;
		} else if (c == 0) {
			*s = p;
			return DEC_NUL;
		}
		dst[n++] = c;
	}
	dst[n] = '\0';
	*out_len = n;
	return DEC_OK;
}

static bool decode_fail(DecodeResult r, size_t at, MetricError *err)
{
	if (r == DEC_BAD_PERCENT)
		return fail(err, "", "bad percent-encoding at offset %zu (%% must be followed by two hex digits)", at);
	return fail(err, "", "a NUL byte at offset %zu", at);
}

/* A form key named in an error: cleaned and cut like a hash key. */
static void key_field(const Pair *p, char out[FIELD_SIZE])
{
	const size_t room = FIELD_SIZE - 1;
	size_t len = p->key_len;
	bool cut = len > room;
	char *q = put_clean(out, p->key, cut ? room - 3 : len);
	if (cut)
		q += sprintf(q, "...");
	*q = '\0';
}

static bool key_fail(const Pair *p, const char *msg, MetricError *err)
{
	char field[sizeof(err->field)];
	key_field(p, field);
	return fail(err, field, "%s", msg);
}

static bool key_is(const Pair *p, const char *s)
{
	return p->key_len == strlen(s) && memcmp(p->key, s, p->key_len) == 0;
}

/* Classifies a key: measure_time, source, gauges[N][field] (with anything after
 * [attributes]), counters[N][field], or an ignored key. */
static bool form_key(Pair *p, MetricError *err)
{
	static const char *const shapes[NLISTS] = {"a key must look like gauges[0][name]",
						   "a key must look like counters[0][name]"};
	const char *k = p->key;
	size_t n = p->key_len;
	p->list = -1;
	p->index = -1;
	p->field = F_IGNORED;
	if (key_is(p, "measure_time")) {
		p->field = F_MEASURE_TIME;
		return true;
	}
	if (key_is(p, "source")) {
		p->field = F_SOURCE;
		return true;
	}
	int list = -1;
	size_t i = 0;
	for (int l = 0; l < NLISTS; l++) {
		size_t ln = strlen(list_names[l]);
		if (n >= ln && memcmp(k, list_names[l], ln) == 0 && (n == ln || k[ln] == '[')) {
			list = l;
			i = ln;
		}
	}
	if (list < 0)
		return true; /* "gaugesX", "attributes[...]": not ours */
	if (i == n || ++i == n)
		return key_fail(p, shapes[list], err);
	size_t start = i;
	long index = 0;
	while (i < n && k[i] >= '0' && k[i] <= '9') {
		if (index < FORM_INDEX_MAX)
			index = index * 10 + (k[i] - '0');
		i++;
	}
	if (i == start || i == n || k[i] != ']')
		return key_fail(p, shapes[list], err);
	if (index >= FORM_INDEX_MAX)
		return key_fail(p, "the index must be a whole number below 10000", err);
	if (++i == n || k[i] != '[')
		return key_fail(p, shapes[list], err);
	const char *name = k + ++i;
	const char *close = memchr(name, ']', n - i);
	if (!close)
		return key_fail(p, shapes[list], err);
	size_t name_len = (size_t)(close - name);
	bool at_end = close + 1 == k + n;
	p->list = (int8_t)list;
	p->index = (int32_t)index;
	for (int f = 0; f < F_ATTRIBUTES; f++) { /* gauges[N][attributes]...: ignored */
		if (strlen(field_names[f]) != name_len || memcmp(field_names[f], name, name_len) != 0)
			continue;
		if (f < F_NNUM && !(list_fields[list] & BIT(f)))
			break; /* unknown to this list: ignored */
		if (!at_end)
			return key_fail(p, shapes[list], err);
		p->field = (int8_t)f;
		break;
	}
	return true;
}

static int key_cmp(const Pair *a, const Pair *b)
{
	int c = memcmp(a->key, b->key, a->key_len < b->key_len ? a->key_len : b->key_len);
	if (c)
		return c;
	return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

/* Top-level keys first, then gauges and counters by index and field; 0 means the same key,
 * also when spelled apart (gauges[1][name] and gauges[01][name]). */
static int pair_cmp(const void *va, const void *vb)
{
	const Pair *a = va, *b = vb;
	if (a->list != b->list)
		return a->list < b->list ? -1 : 1;
	if (a->list >= 0) {
		if (a->index != b->index)
			return a->index < b->index ? -1 : 1;
		if (a->field != b->field)
			return a->field < b->field ? -1 : 1;
		if (a->field != F_IGNORED)
			return 0;
	}
	return key_cmp(a, b);
}

static bool dup_fail(const Pair *p, MetricError *err)
{
	char field[sizeof(err->field)];
	if (p->list >= 0 && p->field != F_IGNORED) {
		Where w = {.list = (List)p->list, .index = p->index};
		field_of(&w, p->field, field);
	} else {
		key_field(p, field);
	}
	err->status = 400;
	err->index = p->list >= 0 ? p->index : -1;
	snprintf(err->field, sizeof(err->field), "%s", field);
	snprintf(err->msg, sizeof(err->msg), "%s is given more than once", field);
	return false;
}

/* A decimal number: [+-]digits[.digits][e[+-]digits], digits on at least one side of the
 * point. strtod alone would also take hex, inf, nan and leading spaces. */
static bool decimal_value(const char *s, size_t len, double *out)
{
	size_t i = 0, digits = 0;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (!digits)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t exp_start = i;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == exp_start)
			return false;
	}
	if (i != len)
		return false;
	*out = strtod(s, NULL); /* s is NUL-terminated right after len bytes */
	return true;
}

/* The pairs of one measurement, [p, end), into r. */
static bool form_measurement(const Pair *p, const Pair *end, const Where *w, Raw *r, MetricError *err)
{
	memset(r, 0, sizeof(*r));
	for (; p < end; p++) {
		switch (p->field) {
		case F_IGNORED:
			break;
		case F_NAME:
			r->name = p->val;
			r->name_len = p->val_len;
			break;
		case F_SOURCE:
			r->source = p->val;
			r->source_len = p->val_len;
			break;
		case F_MEASURE_TIME:
			if (!digits_value(p->val, p->val_len, &r->time))
				return fail_at(err, w, F_MEASURE_TIME, TIME_FORM);
			r->has_time = true;
			break;
		default:
			if (!decimal_value(p->val, p->val_len, &r->num[p->field]))
				return fail_at(err, w, p->field, "%s must be a number", field_names[p->field]);
			r->have |= BIT(p->field);
		}
	}
	return true;
}

/* Splits, decodes and classifies the pairs; counts the measurements (distinct list and index). */
static bool form_pairs(const char *body, size_t len, char *buf, Pair *pairs, size_t *npairs,
		       MetricError *err)
{
	const char *s = body, *end = body + len;
	size_t k = 0;
	while (s < end) {
		const char *amp = memchr(s, '&', (size_t)(end - s));
		if (!amp)
			amp = end;
		if (amp > s) {
			Pair *p = &pairs[k++];
			const char *eq = memchr(s, '=', (size_t)(amp - s));
			const char *key_end = eq ? eq : amp, *at = s;
			DecodeResult r = decode(&at, key_end, buf, &p->key_len);
			if (r != DEC_OK)
				return decode_fail(r, (size_t)(at - body), err);
			p->key = buf;
			buf += p->key_len + 1;
			at = eq ? eq + 1 : amp;
			r = decode(&at, amp, buf, &p->val_len);
			if (r != DEC_OK)
				return decode_fail(r, (size_t)(at - body), err);
			p->val = buf;
			buf += p->val_len + 1;
			if (!form_key(p, err))
				return false;
		}
		if (amp == end)
			break;
		s = amp + 1;
	}
	*npairs = k;
	return true;
}

static bool form_parse(const char *body, size_t len, int64_t now_us, MetricBatch *out, MetricError *err)
{
	size_t max_pairs = 0;
	for (size_t i = 0; i < len; i++)
		if (body[i] != '&' && (i + 1 == len || body[i + 1] == '&'))
			max_pairs++; /* the last byte of each non-empty pair */
	if (max_pairs == 0)
		return no_measurements(err);
	if (max_pairs > FORM_PAIRS_MAX)
		return fail(err, "", "a form body holds at most %d fields", FORM_PAIRS_MAX);

	/* Decoded, a pair is no longer than its raw bytes; each key and value gains a NUL. */
	char *buf = malloc(len + 2 * max_pairs);
	Pair *pairs = malloc(max_pairs * sizeof(Pair));
	if (!buf || !pairs)
		fatal("at=oom form=%zu", len);
	bool ok = false;
	size_t npairs = 0;
	if (!form_pairs(body, len, buf, pairs, &npairs, err))
		goto done;
	qsort(pairs, npairs, sizeof(Pair), pair_cmp);

	Defaults d = {.time_s = floor_secs(now_us)};
	size_t n = 0;
	for (size_t i = 0; i < npairs; i++) {
		const Pair *p = &pairs[i];
		if (i > 0 && pair_cmp(&pairs[i - 1], p) == 0) {
			dup_fail(p, err);
			goto done;
		}
		if (p->list >= 0) {
			if (i == 0 || pairs[i - 1].list != p->list || pairs[i - 1].index != p->index)
				n++;
		} else if (p->field == F_MEASURE_TIME) {
			double secs;
			if (!digits_value(p->val, p->val_len, &secs)) {
				fail(err, "measure_time", TIME_FORM);
				goto done;
			}
			if (!check_time(secs, NULL, &d.time_s, err))
				goto done;
		} else if (p->field == F_SOURCE) {
			if (!metric_source_valid(p->val, p->val_len)) {
				fail(err, "source", SOURCE_RULE);
				goto done;
			}
			d.source = p->val;
			d.source_len = p->val_len;
		}
	}
	if (!count_ok(n, err))
		goto done;

	alloc_metrics(out, n);
	size_t k = 0, arena = 0;
	for (size_t i = 0; i < npairs;) {
		if (pairs[i].list < 0) {
			i++;
			continue;
		}
		size_t j = i + 1;
		while (j < npairs && pairs[j].list == pairs[i].list && pairs[j].index == pairs[i].index)
			j++;
		Where w = {.list = (List)pairs[i].list, .index = pairs[i].index};
		Raw r;
		if (!form_measurement(&pairs[i], &pairs[j], &w, &r, err) ||
		    !build(&r, &w, &d, &out->m[k++], &arena, err))
			goto done;
		i = j;
	}
	relocate(out, arena);
	ok = true;
done:
	free(pairs);
	free(buf);
	return ok;
}

bool librato_parse(const char *body, size_t len, bool form, int64_t now_us, MetricBatch *out,
		   MetricError *err)
{
	memset(out, 0, sizeof(*out));
	bool ok = form ? form_parse(body, len, now_us, out, err) : json_parse(body, len, now_us, out, err);
	if (!ok)
		metric_batch_free(out);
	return ok;
}
