/* Validation of posted metrics. Invalid input never gets past here, so nothing downstream
 * (the databases included) ever sees a metric that breaks these rules:
 *   bucket  Unix seconds, RFC 3339 or "YYYY-MM-DD HH:MM:SS UTC", years 1970..9999;
 *   name    1..255 bytes of UTF-8 without control characters;
 *   stats   numbers or null within +-1e100 (count, mean, median: 0 or of magnitude at
 *           least 1e-100), at least one present, count >= 0;
 *   source  optional, 1..255 characters of A-Z a-z 0-9 . : - _ (as Librato allows);
 *   id      optional, a UUID chosen by the client so that a retry is stored once. */
#include "metric.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm.h"

const char *const metric_stat_names[METRIC_NSTATS] = {
	"count", "mean", "median", "min", "max", "perc95", "perc99", "last",
};

PRINTF_LIKE(4, 5)
static bool fail(MetricError *err, long index, const char *field, const char *fmt, ...)
{
	err->status = 422;
	err->index = index;
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return false;
}

bool metric_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > METRIC_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		/* U+0080..U+009F (C1 controls) are encoded as C2 80..C2 9F. */
		if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] <= 0x9f)
			return false;
	}
	return true;
}

bool metric_source_valid(const char *s, size_t len)
{
	if (len == 0 || len > METRIC_SOURCE_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == ':' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static bool parse_bucket(json_t *v, long index, int64_t *us, MetricError *err)
{
	if (!v || json_is_null(v))
		return fail(err, index, "bucket", "bucket is required");
	if (json_is_number(v)) {
		if (!tm_from_unix(json_number_value(v), us))
			return fail(err, index, "bucket", "bucket must be between 1970 and 9999");
		return true;
	}
	if (json_is_string(v)) {
		if (!tm_parse(json_string_value(v), json_string_length(v), us))
			return fail(err, index, "bucket",
				    "bucket must be Unix seconds, RFC 3339 or 'YYYY-MM-DD HH:MM:SS UTC', "
				    "between 1970 and 9999");
		return true;
	}
	return fail(err, index, "bucket", "bucket must be a number or a string");
}

static bool parse_one(json_t *o, long index, Metric *m, char **arena, MetricError *err)
{
	if (!json_is_object(o))
		return fail(err, index, NULL, "a metric must be a JSON object");

	json_t *name = json_object_get(o, "name");
	if (!name || json_is_null(name))
		return fail(err, index, "name", "name is required");
	if (!json_is_string(name))
		return fail(err, index, "name", "name must be a string");
	size_t nlen = json_string_length(name);
	if (!metric_name_valid(json_string_value(name), nlen))
		return fail(err, index, "name",
			    "name must be 1 to 255 bytes of UTF-8 without control characters");

	if (!parse_bucket(json_object_get(o, "bucket"), index, &m->bucket_us, err))
		return false;

	m->present = 0;
	for (int i = 0; i < METRIC_NSTATS; i++) {
		json_t *v = json_object_get(o, metric_stat_names[i]);
		m->v[i] = 0;
		if (!v || json_is_null(v))
			continue;
		if (!json_is_number(v))
			return fail(err, index, metric_stat_names[i], "%s must be a number",
				    metric_stat_names[i]);
		double d = json_number_value(v);
		/* Bounded so that sums of products (the weighted means) can never overflow. */
		/* Bounded so that sums of products (the weighted means) can never overflow. */
		if (!isfinite(d) || fabs(d) > METRIC_VALUE_MAX)
			return fail(err, index, metric_stat_names[i], "%s must be a number between -1e100 and 1e100",
				    metric_stat_names[i]);
		/* count, mean and median are multiplied together by aggregate reads: a product of
		 * two tiny values underflows, which PostgreSQL makes an error. */
		if (i <= METRIC_MEDIAN && d != 0 && fabs(d) < METRIC_VALUE_MIN)
			return fail(err, index, metric_stat_names[i],
				    "%s must be 0 or of magnitude at least 1e-100", metric_stat_names[i]);
		if (i == METRIC_COUNT && d < 0)
			return fail(err, index, "count", "count must not be negative");
		m->v[i] = d;
		m->present |= (uint8_t)(1u << i);
	}
	if (!m->present)
		return fail(err, index, NULL,
			    "a metric needs at least one of count, mean, median, min, max, perc95, "
			    "perc99, last");

	json_t *source = json_object_get(o, "source");
	size_t slen = 0;
	if (source && !json_is_null(source)) {
		if (!json_is_string(source) ||
		    !metric_source_valid(json_string_value(source), slen = json_string_length(source)))
			return fail(err, index, "source",
				    "source must be 1 to 255 characters of A-Z a-z 0-9 . : - _");
	}

	json_t *id = json_object_get(o, "id");
	m->has_id = id && !json_is_null(id);
	if (m->has_id && (!json_is_string(id) ||
			  !uuid_parse(json_string_value(id), json_string_length(id), &m->id)))
		return fail(err, index, "id", "id must be a UUID like 01890a5d-ac96-774b-bcce-b302099a8057");

	memcpy(*arena, json_string_value(name), nlen);
	(*arena)[nlen] = '\0';
	m->name = *arena;
	m->name_len = (uint16_t)nlen;
	*arena += nlen + 1;
	m->source = NULL;
	m->source_len = 0;
	if (slen) {
		memcpy(*arena, json_string_value(source), slen);
		(*arena)[slen] = '\0';
		m->source = *arena;
		m->source_len = (uint8_t)slen;
		*arena += slen + 1;
	}
	return true;
}

/* Bytes the arena needs for a metric's name and source, each with its NUL. */
static size_t arena_one(json_t *o)
{
	json_t *n = json_object_get(o, "name"), *s = json_object_get(o, "source");
	return (json_is_string(n) ? json_string_length(n) + 1 : 1) + (json_is_string(s) ? json_string_length(s) + 1 : 0);
}

static size_t arena_size(json_t *root)
{
	size_t total = 0, i;
	json_t *o;
	if (json_is_object(root))
		return arena_one(root);
	json_array_foreach(root, i, o)
		total += arena_one(o);
	return total;
}

bool metric_parse_body(const char *body, size_t len, MetricBatch *out, MetricError *err)
{
	json_error_t jerr;
	memset(out, 0, sizeof(*out));
	json_t *root = json_loadb(body, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
	if (!root) {
		err->status = 400;
		err->index = -1;
		err->field[0] = '\0';
		snprintf(err->msg, sizeof(err->msg), "malformed JSON at line %d column %d: %s",
			 jerr.line, jerr.column, jerr.text);
		return false;
	}
	bool ok = false;
	size_t n = 1;
	if (json_is_array(root)) {
		n = json_array_size(root);
		if (n == 0) {
			fail(err, -1, NULL, "the batch is empty");
			goto done;
		}
		if (n > METRIC_BATCH_MAX) {
			fail(err, -1, NULL, "a batch holds at most %d metrics", METRIC_BATCH_MAX);
			goto done;
		}
	} else if (!json_is_object(root)) {
		fail(err, -1, NULL, "the body must be a metric object or an array of them");
		goto done;
	}

	out->is_array = json_is_array(root);
	out->n = n;
	out->m = calloc(n, sizeof(Metric));
	out->arena = malloc(arena_size(root));
	if (!out->m || !out->arena)
		fatal("at=oom metrics=%zu", n);
	char *arena = out->arena;
	int64_t now_ms = now_wall_us() / 1000;
	for (size_t i = 0; i < n; i++) {
		json_t *o = out->is_array ? json_array_get(root, i) : root;
		if (!parse_one(o, out->is_array ? (long)i : -1, &out->m[i], &arena, err))
			goto done;
		if (!out->m[i].has_id)
			uuid_v7(&out->m[i].id, now_ms);
	}
	ok = true;
done:
	json_decref(root);
	if (!ok)
		metric_batch_free(out);
	return ok;
}

void metric_batch_free(MetricBatch *b)
{
	free(b->m);
	free(b->arena);
	memset(b, 0, sizeof(*b));
}
