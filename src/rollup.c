/* Rollup rules, per (name, bucket of the resolution), over rows de-duplicated by id:
 *   count            sum
 *   mean, median     count-weighted mean (unweighted when a row lacks a count or all
 *                    counts are 0)
 *   min              min
 *   max, perc95/99   max (for percentiles an upper bound)
 *   last             the value of the row with the latest bucket (ties: the greatest id,
 *                    which for v7 ids is the latest written)
 * A statistic with a single value in a group is returned exactly as stored; NULLs are left
 * out; a statistic with no value in a group has no point there.
 *
 * Rows are kept in one array and names interned in one hash table, so memory is about
 * 110 bytes a row, bounded by max_rows. */
#include "rollup.h"

#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

typedef struct Row {
	Uuid id;
	int64_t bucket_us;
	int64_t group_us; /* start of the rollup bucket */
	uint32_t name;    /* index into names, then rank after sorting */
	uint8_t present;
	double v[METRIC_NSTATS];
} Row;

typedef struct Name {
	uint32_t off; /* into r->name_bytes */
	uint32_t len;
	uint32_t hash;
} Name;

struct Rollup {
	TmRes res;
	size_t max_rows;
	Row *rows;
	size_t nrows, cap_rows;
	Name *names;
	size_t nnames, cap_names;
	uint32_t *slots; /* open addressing: name index + 1, 0 = empty */
	size_t nslots;
	Buf name_bytes;
};

Rollup *rollup_new(TmRes res, size_t max_rows)
{
	Rollup *r = calloc(1, sizeof(*r));
	if (!r)
		fatal("at=oom");
	r->res = res;
	r->max_rows = max_rows;
	return r;
}

void rollup_free(Rollup *r)
{
	if (!r)
		return;
	free(r->rows);
	free(r->names);
	free(r->slots);
	buf_free(&r->name_bytes);
	free(r);
}

size_t rollup_count(const Rollup *r)
{
	return r->nrows;
}

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return p;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	void *q = realloc(p, c * size);
	if (!q)
		fatal("at=oom items=%zu", c);
	*cap = c;
	return q;
}

static uint32_t hash_bytes(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void rehash(Rollup *r, size_t nslots)
{
	free(r->slots);
	r->slots = calloc(nslots, sizeof(uint32_t));
	if (!r->slots)
		fatal("at=oom");
	r->nslots = nslots;
	for (size_t i = 0; i < r->nnames; i++) {
		size_t s = r->names[i].hash & (nslots - 1);
		while (r->slots[s])
			s = (s + 1) & (nslots - 1);
		r->slots[s] = (uint32_t)i + 1;
	}
}

static uint32_t intern(Rollup *r, const char *name, size_t len)
{
	uint32_t h = hash_bytes(name, len);
	if (r->nslots) {
		for (size_t s = h & (r->nslots - 1); r->slots[s]; s = (s + 1) & (r->nslots - 1)) {
			Name *n = &r->names[r->slots[s] - 1];
			if (n->hash == h && n->len == len &&
			    memcmp(r->name_bytes.p + n->off, name, len) == 0)
				return r->slots[s] - 1;
		}
	}
	r->names = grow(r->names, &r->cap_names, r->nnames + 1, sizeof(Name));
	Name *n = &r->names[r->nnames++];
	n->off = (uint32_t)r->name_bytes.len;
	n->len = (uint32_t)len;
	n->hash = h;
	buf_add(&r->name_bytes, name, len);
	buf_addc(&r->name_bytes, '\0');
	if (r->nnames * 2 > r->nslots)
		rehash(r, r->nslots ? r->nslots * 2 : 64);
	else {
		size_t s = h & (r->nslots - 1);
		while (r->slots[s])
			s = (s + 1) & (r->nslots - 1);
		r->slots[s] = (uint32_t)r->nnames;
	}
	return (uint32_t)r->nnames - 1;
}

bool rollup_add(Rollup *r, const Uuid *id, int64_t bucket_us, const char *name, size_t name_len,
		uint8_t present, const double v[METRIC_NSTATS])
{
	if (r->nrows >= r->max_rows)
		return false;
	r->rows = grow(r->rows, &r->cap_rows, r->nrows + 1, sizeof(Row));
	Row *row = &r->rows[r->nrows++];
	row->id = *id;
	row->bucket_us = bucket_us;
	row->group_us = tm_truncate(bucket_us, r->res);
	row->name = intern(r, name, name_len);
	row->present = present;
	memcpy(row->v, v, sizeof(row->v));
	return true;
}

static int cmp_name_index(const void *a, const void *b, void *ctx)
{
	const Rollup *r = ctx;
	const Name *x = &r->names[*(const uint32_t *)a], *y = &r->names[*(const uint32_t *)b];
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(r->name_bytes.p + x->off, r->name_bytes.p + y->off, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int cmp_row(const void *a, const void *b)
{
	const Row *x = a, *y = b;
	if (x->name != y->name)
		return x->name < y->name ? -1 : 1;
	if (x->group_us != y->group_us)
		return x->group_us < y->group_us ? -1 : 1;
	return uuid_cmp(&x->id, &y->id);
}

typedef struct Agg {
	int64_t group_us;
	uint8_t present;
	double v[METRIC_NSTATS];
} Agg;

/* Weighted mean of stat i over rows [a, b); exact when one row has it. */
static bool weighted(const Row *a, const Row *b, int i, double *out)
{
	double sum = 0, wsum = 0, plain = 0;
	size_t n = 0;
	bool weighable = true;
	const Row *only = NULL;
	for (const Row *p = a; p < b; p++) {
		if (!(p->present & (1u << i)))
			continue;
		only = p;
		n++;
		plain += p->v[i];
		if (p->present & (1u << METRIC_COUNT)) {
			sum += p->v[i] * p->v[METRIC_COUNT];
			wsum += p->v[METRIC_COUNT];
		} else {
			weighable = false;
		}
	}
	if (n == 0)
		return false;
	if (n == 1)
		*out = only->v[i];
	else if (weighable && wsum > 0)
		*out = sum / wsum;
	else
		*out = plain / (double)n;
	return true;
}

/* Rolls rows [a, b) (one group, duplicates already removed) into agg. */
static void roll_group(const Row *a, const Row *b, Agg *agg)
{
	agg->group_us = a->group_us;
	agg->present = 0;
	const Row *last = NULL;
	for (const Row *p = a; p < b; p++) {
		for (int i = 0; i < METRIC_NSTATS; i++) {
			if (!(p->present & (1u << i)) || i == METRIC_MEAN || i == METRIC_MEDIAN)
				continue;
			double v = p->v[i];
			bool first = !(agg->present & (1u << i));
			switch (i) {
			case METRIC_COUNT:
				agg->v[i] = first ? v : agg->v[i] + v;
				break;
			case METRIC_MIN:
				agg->v[i] = first || v < agg->v[i] ? v : agg->v[i];
				break;
			case METRIC_LAST:
				if (!last || p->bucket_us > last->bucket_us ||
				    (p->bucket_us == last->bucket_us && uuid_cmp(&p->id, &last->id) > 0))
					last = p;
				agg->v[i] = last->v[i];
				break;
			default: /* max, perc95, perc99 */
				agg->v[i] = first || v > agg->v[i] ? v : agg->v[i];
				break;
			}
			agg->present |= (uint8_t)(1u << i);
		}
	}
	if (weighted(a, b, METRIC_MEAN, &agg->v[METRIC_MEAN]))
		agg->present |= 1u << METRIC_MEAN;
	if (weighted(a, b, METRIC_MEDIAN, &agg->v[METRIC_MEDIAN]))
		agg->present |= 1u << METRIC_MEDIAN;
}

static void write_name(Buf *out, const char *name, size_t len, const Agg *aggs, size_t n)
{
	buf_adds(out, "{\"name\": ");
	jsonw_string(out, name, len);
	for (int i = 0; i < METRIC_NSTATS; i++) {
		buf_adds(out, ", \"");
		buf_adds(out, metric_stat_names[i]);
		buf_adds(out, "\": [");
		bool first = true;
		for (size_t k = 0; k < n; k++) {
			if (!(aggs[k].present & (1u << i)))
				continue;
			int64_t secs = aggs[k].group_us / 1000000;
			buf_addf(out, "%s{\"bucket\": %lld, \"value\": ", first ? "" : ", ", (long long)secs);
			jsonw_double(out, aggs[k].v[i]);
			buf_addc(out, '}');
			first = false;
		}
		buf_addc(out, ']');
	}
	buf_addc(out, '}');
}

void rollup_write_json(Rollup *r, Buf *out)
{
	/* Rank names in byte order so rows sort by integers, not strings. */
	uint32_t *order = malloc((r->nnames + 1) * sizeof(uint32_t));
	uint32_t *rank = malloc((r->nnames + 1) * sizeof(uint32_t));
	if (!order || !rank)
		fatal("at=oom");
	for (uint32_t i = 0; i < r->nnames; i++)
		order[i] = i;
	qsort_r(order, r->nnames, sizeof(uint32_t), cmp_name_index, r);
	for (uint32_t i = 0; i < r->nnames; i++)
		rank[order[i]] = i;
	for (size_t i = 0; i < r->nrows; i++)
		r->rows[i].name = rank[r->rows[i].name];
	qsort(r->rows, r->nrows, sizeof(Row), cmp_row);

	/* Drop duplicates: the same id sorts adjacent (same name, same bucket). */
	size_t w = 0;
	for (size_t i = 0; i < r->nrows; i++) {
		if (w > 0 && uuid_cmp(&r->rows[w - 1].id, &r->rows[i].id) == 0 &&
		    r->rows[w - 1].name == r->rows[i].name)
			continue;
		r->rows[w++] = r->rows[i];
	}
	r->nrows = w;

	Agg *aggs = NULL;
	size_t cap_aggs = 0;
	buf_addc(out, '[');
	size_t i = 0;
	while (i < r->nrows) {
		uint32_t name = r->rows[i].name;
		size_t naggs = 0;
		while (i < r->nrows && r->rows[i].name == name) {
			size_t j = i;
			while (j < r->nrows && r->rows[j].name == name &&
			       r->rows[j].group_us == r->rows[i].group_us)
				j++;
			aggs = grow(aggs, &cap_aggs, naggs + 1, sizeof(Agg));
			roll_group(&r->rows[i], &r->rows[j], &aggs[naggs++]);
			i = j;
		}
		const Name *n = &r->names[order[name]];
		if (out->p[out->len - 1] != '[')
			buf_adds(out, ",\n");
		write_name(out, r->name_bytes.p + n->off, n->len, aggs, naggs);
	}
	buf_adds(out, "]\n");
	free(aggs);
	free(order);
	free(rank);
}
