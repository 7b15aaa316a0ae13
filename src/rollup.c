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

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

typedef struct Row {
	Uuid id;
	int64_t bucket_us;
	int64_t group_us; /* start of the rollup bucket */
	uint32_t name;    /* index into names, then rank after sorting */
	uint8_t present;
	uint8_t source; /* the database it came from: of two copies of one id, the lower counts */
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
	uint8_t source; /* of the rows being added */
	Row *rows;
	size_t nrows, cap_rows;
	struct Agg *groups; /* aggregated by a database, then also those rolled up from rows */
	uint32_t *order;    /* after rollup_prepare: name index of each rank */
	size_t cursor;      /* the next group rollup_next_json() writes */
	size_t ngroups, cap_groups;
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
	free(r->groups);
	free(r->order);
	free(r->names);
	free(r->slots);
	buf_free(&r->name_bytes);
	free(r);
}

void rollup_set_source(Rollup *r, unsigned source)
{
	r->source = (uint8_t)source;
}

size_t rollup_count(const Rollup *r)
{
	return r->nrows + r->ngroups;
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
	uint32_t h = fnv1a32(name, len);
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
	row->source = r->source;
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
	int c = uuid_cmp(&x->id, &y->id);
	return c ? c : (x->source > y->source) - (x->source < y->source);
}

void rollup_acc_row(RollAcc *acc, const Uuid *id, int64_t bucket_us, uint8_t present,
		    const double v[METRIC_NSTATS])
{
	bool has_count = present & (1u << METRIC_COUNT);
	if (has_count) {
		acc->count_sum = acc->count_n ? acc->count_sum + v[METRIC_COUNT] : v[METRIC_COUNT];
		acc->count_n++;
	}
	for (int k = 0; k < 2; k++) {
		int i = k == 0 ? METRIC_MEAN : METRIC_MEDIAN;
		if (!(present & (1u << i)))
			continue;
		RollMean *m = &acc->avg[k];
		m->n++;
		m->single = v[i];
		m->plain += v[i];
		if (has_count) {
			m->wsum += v[i] * v[METRIC_COUNT];
			m->wcount += v[METRIC_COUNT];
		} else {
			m->unweighted++;
		}
	}
	static const int extremes[] = {METRIC_MIN, METRIC_MAX, METRIC_PERC95, METRIC_PERC99};
	for (int k = 0; k < 4; k++) {
		int i = extremes[k];
		if (!(present & (1u << i)))
			continue;
		bool better = i == METRIC_MIN ? v[i] < acc->ext[k] : v[i] > acc->ext[k];
		if (!(acc->ext_present & (1u << k)) || better)
			acc->ext[k] = v[i];
		acc->ext_present |= (uint8_t)(1u << k);
	}
	if (present & (1u << METRIC_LAST)) {
		if (!acc->has_last || bucket_us > acc->last_bucket_us ||
		    (bucket_us == acc->last_bucket_us && uuid_cmp(id, &acc->last_id) > 0)) {
			acc->last_bucket_us = bucket_us;
			acc->last_id = *id;
			acc->last = v[METRIC_LAST];
		}
		acc->has_last = true;
	}
}

void rollup_acc_merge(RollAcc *acc, const RollAcc *more)
{
	if (more->count_n) {
		acc->count_sum = acc->count_n ? acc->count_sum + more->count_sum : more->count_sum;
		acc->count_n += more->count_n;
	}
	for (int k = 0; k < 2; k++) {
		RollMean *m = &acc->avg[k];
		const RollMean *o = &more->avg[k];
		if (o->n == 0)
			continue;
		if (m->n == 0) {
			*m = *o;
			continue;
		}
		m->n += o->n;
		m->unweighted += o->unweighted;
		m->plain += o->plain;
		m->wsum += o->wsum;
		m->wcount += o->wcount;
	}
	for (int k = 0; k < 4; k++) {
		if (!(more->ext_present & (1u << k)))
			continue;
		bool better = k == 0 ? more->ext[k] < acc->ext[k] : more->ext[k] > acc->ext[k];
		if (!(acc->ext_present & (1u << k)) || better)
			acc->ext[k] = more->ext[k];
		acc->ext_present |= (uint8_t)(1u << k);
	}
	if (more->has_last &&
	    (!acc->has_last || more->last_bucket_us > acc->last_bucket_us ||
	     (more->last_bucket_us == acc->last_bucket_us && uuid_cmp(&more->last_id, &acc->last_id) > 0))) {
		acc->last_bucket_us = more->last_bucket_us;
		acc->last_id = more->last_id;
		acc->last = more->last;
		acc->has_last = true;
	}
}

typedef struct Agg {
	uint32_t name;
	int64_t group_us;
	uint8_t present;
	double v[METRIC_NSTATS];
} Agg;

/* The rollup rules, applied to one group's accumulator. */
static void acc_finish(const RollAcc *acc, Agg *agg)
{
	agg->present = 0;
	if (acc->count_n) {
		agg->v[METRIC_COUNT] = acc->count_sum;
		agg->present |= 1u << METRIC_COUNT;
	}
	for (int k = 0; k < 2; k++) {
		const RollMean *m = &acc->avg[k];
		int i = k == 0 ? METRIC_MEAN : METRIC_MEDIAN;
		if (m->n == 0)
			continue;
		if (m->n == 1)
			agg->v[i] = m->single; /* exactly as stored */
		else if (m->unweighted == 0 && m->wcount > 0)
			agg->v[i] = m->wsum / m->wcount;
		else
			agg->v[i] = m->plain / (double)m->n;
		agg->present |= (uint8_t)(1u << i);
	}
	static const int extremes[] = {METRIC_MIN, METRIC_MAX, METRIC_PERC95, METRIC_PERC99};
	for (int k = 0; k < 4; k++) {
		if (acc->ext_present & (1u << k)) {
			agg->v[extremes[k]] = acc->ext[k];
			agg->present |= (uint8_t)(1u << extremes[k]);
		}
	}
	if (acc->has_last) {
		agg->v[METRIC_LAST] = acc->last;
		agg->present |= 1u << METRIC_LAST;
	}
}

uint32_t rollup_series(Rollup *r, const char *name, size_t name_len)
{
	return intern(r, name, name_len);
}

bool rollup_add_group_of(Rollup *r, uint32_t series, int64_t group_us, const RollAcc *acc)
{
	if (r->ngroups >= r->max_rows)
		return false;
	r->groups = grow(r->groups, &r->cap_groups, r->ngroups + 1, sizeof(Agg));
	Agg *g = &r->groups[r->ngroups++];
	g->name = series;
	g->group_us = group_us;
	acc_finish(acc, g);
	return true;
}

bool rollup_add_group(Rollup *r, const char *name, size_t name_len, int64_t group_us, const RollAcc *acc)
{
	return rollup_add_group_of(r, intern(r, name, name_len), group_us, acc);
}

static int cmp_agg(const void *a, const void *b)
{
	const Agg *x = a, *y = b;
	if (x->name != y->name)
		return x->name < y->name ? -1 : 1;
	return (x->group_us > y->group_us) - (x->group_us < y->group_us);
}

/* A bucket's text, by the point's place in its series: the seed's shape writes each bucket
 * once per statistic. */
#define BUCKET_TEXTS 1024
struct RollBucketText {
	int64_t group_us;
	uint8_t len;
	char text[23];
};

/* Hot: a point per statistic and bucket, so no printf here. */
static void put_point(RollSeries *s, Buf *out, bool first, int64_t group_us, double v)
{
	static const char point[] = "{\"bucket\": ";
	static const char value[] = ", \"value\": ";
	buf_reserve(out, 2 + sizeof(point) + 24 + sizeof(value) + 32 + 1);
	char *p = out->p + out->len;
	if (!first) {
		*p++ = ',';
		*p++ = ' ';
	}
	memcpy(p, point, sizeof(point) - 1);
	p += sizeof(point) - 1;
	if (!s->btext) {
		if (!(s->btext = malloc(BUCKET_TEXTS * sizeof(*s->btext))))
			fatal("at=oom");
		for (size_t i = 0; i < BUCKET_TEXTS; i++)
			s->btext[i].len = 0;
	}
	struct RollBucketText *t = &s->btext[s->next % BUCKET_TEXTS]; /* the same point each statistic */
	if (t->len == 0 || t->group_us != group_us) {
		t->group_us = group_us;
		t->len = (uint8_t)jsonw_format_int(group_us / 1000000, t->text);
	}
	memcpy(p, t->text, t->len);
	p += t->len;
	memcpy(p, value, sizeof(value) - 1);
	p += sizeof(value) - 1;
	p += jsonw_format_double(v, p);
	*p++ = '}';
	*p = '\0';
	out->len = (size_t)(p - out->p);
}

static void put_stat_open(Buf *out, int stat)
{
	buf_adds(out, ", \"");
	buf_adds(out, metric_stat_names[stat]);
	buf_adds(out, "\": [");
}

/* The first block is small and comes from the heap: most series are short, and a block of a
 * megabyte per read (mmapped, so given back when freed) cost a read of 1,000 buckets a page
 * fault per 4 KB and doubled its time. Later blocks are a megabyte. */
#define SERIES_BLOCK_FIRST (32 * 1024)
#define SERIES_BLOCK (1024 * 1024)
#define SERIES_RECORD_MAX (10 + 2 + 8 * METRIC_NSTATS)

void rollseries_init(RollSeries *s, TmRes res)
{
	memset(s, 0, sizeof(*s));
	s->res = res;
	s->stat = -1;
}

void rollseries_free(RollSeries *s)
{
	buf_free(&s->name);
	free(s->btext);
	for (size_t i = 0; i < s->nblocks; i++)
		free(s->blocks[i]);
	free(s->blocks);
	memset(s, 0, sizeof(*s));
}

void rollseries_begin(RollSeries *s, const char *name, size_t len)
{
	buf_reset(&s->name);
	buf_add(&s->name, name, len);
	/* A long series' blocks go back now; the first is kept for the next name. */
	for (size_t i = 1; i < s->nblocks; i++)
		free(s->blocks[i]);
	s->nblocks = s->nblocks ? 1 : 0;
	s->used = sizeof(size_t);
	if (s->nblocks)
		memcpy(s->blocks[0], &s->used, sizeof(s->used));
	s->n = 0;
	s->last_group = 0;
	s->acc_open = false;
	s->stat = -1;
}

/* Buckets of a fixed width are stored as a count of widths since the previous one (1 byte for
 * a dense series); months and years as seconds. */
static int64_t series_unit(TmRes res)
{
	static const int64_t units[] = {1000000, 60000000, 3600000000, 86400000000, 604800000000};
	return res <= TM_WEEK ? units[res] : 1000000;
}

/* Appends a point: its bucket as a delta, then its values. */
static void series_append(RollSeries *s, int64_t group_us, const Agg *agg)
{
	/* Each block starts with the bytes it uses (a size_t), so the reader knows where it ends. */
	if (s->nblocks == 0 ||
	    s->used + SERIES_RECORD_MAX > (s->nblocks == 1 ? SERIES_BLOCK_FIRST : SERIES_BLOCK)) {
		if (s->nblocks == 0 || s->used > sizeof(size_t)) {
			uint8_t **b = realloc(s->blocks, (s->nblocks + 1) * sizeof(*b));
			if (!b || !(b[s->nblocks] = malloc(s->nblocks == 0 ? SERIES_BLOCK_FIRST : SERIES_BLOCK)))
				fatal("at=oom");
			s->blocks = b;
			s->nblocks++;
		}
		s->used = sizeof(size_t);
	}
	uint8_t *p = s->blocks[s->nblocks - 1] + s->used, *start = p;
	if (s->n == 0) /* weeks start on Mondays: whole weeks from the first, not from 1970 */
		s->first_group = s->last_group = group_us;
	int64_t d = (group_us - s->last_group) / series_unit(s->res);
	uint64_t z = ((uint64_t)d << 1) ^ (uint64_t)(d >> 63); /* zigzag */
	do {
		*p++ = (uint8_t)((z & 0x7f) | (z > 0x7f ? 0x80 : 0));
		z >>= 7;
	} while (z);
	s->last_group = group_us;
	uint8_t *masks = p;
	p += 2;
	masks[0] = agg->present;
	masks[1] = 0; /* bit i: value i is a float */
	for (int i = 0; i < METRIC_NSTATS; i++) {
		if (!(agg->present & (1u << i)))
			continue;
		float f = (float)agg->v[i];
		if ((double)f == agg->v[i] && !(agg->v[i] == 0 && signbit(agg->v[i]))) {
			memcpy(p, &f, 4);
			p += 4;
			masks[1] |= (uint8_t)(1u << i);
		} else {
			memcpy(p, &agg->v[i], 8);
			p += 8;
		}
	}
	s->used += (size_t)(p - start);
	memcpy(s->blocks[s->nblocks - 1], &s->used, sizeof(s->used));
	s->n++;
}

static void series_close_group(RollSeries *s)
{
	if (!s->acc_open)
		return;
	s->acc_open = false;
	Agg agg;
	acc_finish(&s->acc, &agg);
	series_append(s, s->acc_group, &agg);
}

/* Decodes the point at the reader's position and moves past it: statistic stat into *v, or
 * with stat < 0 every statistic into v[]. */
static uint8_t series_read(RollSeries *s, int stat, double *v)
{
	size_t end;
	memcpy(&end, s->blocks[s->rblock], sizeof(end));
	if (s->roff >= end) { /* records never straddle blocks: the next starts the next block */
		s->rblock++;
		s->roff = sizeof(size_t);
	}
	const uint8_t *p = s->blocks[s->rblock] + s->roff, *start = p;
	uint64_t z = 0;
	for (int shift = 0;; shift += 7) {
		z |= (uint64_t)(*p & 0x7f) << shift;
		if (!(*p++ & 0x80))
			break;
	}
	int64_t d = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
	s->rgroup += d * series_unit(s->res);
	uint8_t present = p[0], floats = p[1];
	p += 2;
	for (int i = 0; i < METRIC_NSTATS; i++) {
		if (!(present & (1u << i)))
			continue;
		if (floats & (1u << i)) {
			float f;
			memcpy(&f, p, 4);
			p += 4;
			if (i == stat)
				*v = f;
			else if (stat < 0)
				v[i] = f;
		} else {
			if (i == stat)
				memcpy(v, p, 8);
			else if (stat < 0)
				memcpy(&v[i], p, 8);
			p += 8;
		}
	}
	s->roff += (size_t)(p - start);
	return present;
}

void rollseries_add(RollSeries *s, const Uuid *id, int64_t bucket_us, uint8_t present,
		    const double v[METRIC_NSTATS])
{
	int64_t g = tm_truncate(bucket_us, s->res);
	if (s->acc_open && g != s->acc_group)
		series_close_group(s);
	if (!s->acc_open) {
		memset(&s->acc, 0, sizeof(s->acc));
		s->acc_group = g;
		s->acc_open = true;
	}
	rollup_acc_row(&s->acc, id, bucket_us, present, v);
}

void rollseries_end(RollSeries *s)
{
	series_close_group(s);
}

static void series_rewind(RollSeries *s)
{
	s->next = 0;
	s->rblock = 0;
	s->roff = sizeof(size_t);
	s->rgroup = s->first_group;
	s->wrote = false;
}

void rollseries_rewind(RollSeries *s)
{
	series_rewind(s);
}

bool rollseries_next(RollSeries *s, RollPoint *p)
{
	if (s->next >= s->n)
		return false;
	p->present = series_read(s, -1, p->v);
	p->group_us = s->rgroup;
	s->next++;
	return true;
}

bool rollseries_source(const RollSeries *s, const char **source, size_t *len)
{
	const char *nul = memchr(s->name.p, '\0', s->name.len);
	if (!nul)
		return false;
	*source = nul + 1;
	*len = s->name.len - (size_t)(nul + 1 - s->name.p);
	return true;
}

size_t rollseries_name_len(const RollSeries *s)
{
	const char *nul = memchr(s->name.p, '\0', s->name.len);
	return nul ? (size_t)(nul - s->name.p) : s->name.len;
}

/* The next statistic the writer writes from stat on (METRIC_NSTATS: none left). */
static int next_stat_out(const RollSeries *s, int stat)
{
	while (stat < METRIC_NSTATS && s->stats_out && !(s->stats_out & (1u << stat)))
		stat++;
	return stat;
}

bool rollseries_write(RollSeries *s, Buf *out, size_t want)
{
	if (s->stat < 0) {
		buf_adds(out, "{\"name\": ");
		jsonw_string(out, s->name.p, rollseries_name_len(s));
		s->stat = next_stat_out(s, 0);
		series_rewind(s);
		if (s->stat < METRIC_NSTATS)
			put_stat_open(out, s->stat);
	}
	while (s->stat < METRIC_NSTATS) {
		for (; s->next < s->n && out->len < want; s->next++) {
			double v = 0;
			uint8_t present = series_read(s, s->stat, &v);
			if (!(present & (1u << s->stat)))
				continue;
			put_point(s, out, !s->wrote, s->rgroup, v);
			s->wrote = true;
		}
		if (s->next < s->n)
			return false;
		buf_addc(out, ']');
		if ((s->stat = next_stat_out(s, s->stat + 1)) < METRIC_NSTATS) {
			series_rewind(s);
			put_stat_open(out, s->stat);
		}
	}
	buf_addc(out, '}');
	return true;
}

void rollup_prepare(Rollup *r)
{
	/* Rank names in byte order so groups sort by integers, not strings. */
	uint32_t *order = malloc((r->nnames + 1) * sizeof(uint32_t));
	uint32_t *rank = malloc((r->nnames + 1) * sizeof(uint32_t));
	if (!order || !rank)
		fatal("at=oom");
	for (uint32_t i = 0; i < r->nnames; i++)
		order[i] = i;
	if (r->nnames > 1)
		qsort_r(order, r->nnames, sizeof(uint32_t), cmp_name_index, r);
	for (uint32_t i = 0; i < r->nnames; i++)
		rank[order[i]] = i;
	for (size_t i = 0; i < r->nrows; i++)
		r->rows[i].name = rank[r->rows[i].name];
	if (r->nrows > 1) /* qsort's array must not be NULL, even for 0 items */
		qsort(r->rows, r->nrows, sizeof(Row), cmp_row);

	/* Rows roll up into groups beside those that came aggregated; duplicates (the same id
	 * from several databases) sort adjacent and count once. */
	size_t i = 0;
	while (i < r->nrows) {
		RollAcc acc = {0};
		const Row *first = &r->rows[i];
		for (; i < r->nrows && r->rows[i].name == first->name && r->rows[i].group_us == first->group_us; i++) {
			const Row *p = &r->rows[i];
			if (p != first && uuid_cmp(&p->id, &p[-1].id) == 0)
				continue;
			rollup_acc_row(&acc, &p->id, p->bucket_us, p->present, p->v);
		}
		r->groups = grow(r->groups, &r->cap_groups, r->ngroups + 1, sizeof(Agg));
		Agg *g = &r->groups[r->ngroups++];
		g->name = order[first->name]; /* back to the name's index, like aggregated groups */
		g->group_us = first->group_us;
		acc_finish(&acc, g);
	}
	for (size_t k = 0; k < r->ngroups; k++)
		r->groups[k].name = rank[r->groups[k].name];
	if (r->ngroups > 1)
		qsort(r->groups, r->ngroups, sizeof(Agg), cmp_agg);
	/* The rows are rolled into groups: give their memory back before the answer is written. */
	free(r->rows);
	r->rows = NULL;
	r->nrows = r->cap_rows = 0;
	free(rank);
	r->order = order;
	r->cursor = 0;
}

bool rollup_next_series(Rollup *r, RollSeries *s)
{
	size_t k = r->cursor;
	if (k >= r->ngroups)
		return false;
	const Name *n = &r->names[r->order[r->groups[k].name]];
	rollseries_begin(s, r->name_bytes.p + n->off, n->len);
	for (; k < r->ngroups && r->groups[k].name == r->groups[r->cursor].name; k++)
		series_append(s, r->groups[k].group_us, &r->groups[k]);
	r->cursor = k;
	return true;
}

void rollup_write_json(Rollup *r, Buf *out)
{
	rollup_prepare(r);
	RollSeries s;
	rollseries_init(&s, r->res);
	buf_addc(out, '[');
	for (size_t i = 0; rollup_next_series(r, &s); i++) {
		if (i)
			buf_adds(out, ",\n");
		rollseries_write(&s, out, SIZE_MAX);
	}
	buf_adds(out, "]\n");
	rollseries_free(&s);
}
