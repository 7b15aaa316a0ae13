/* gc and repair.
 *
 * Repair compares the databases window by window: first each database's row count and id
 * digest for the whole range (the same two XORs of id hashes reads use); a range that differs
 * is split in 16 and each part compared again, down to windows of an hour, whose ids are then
 * fetched and compared; then it copies each missing row from a database that has
 * it, with the web process's insert (without ON CONFLICT, and with ON CONFLICT DO NOTHING
 * should a row have arrived meanwhile), so running it twice copies nothing the second time. It
 * never looks before the retention cutoff, so a row gc deleted is never copied back.
 *
 * A range of buckets is first compared by the hour rollups, where they serve in every
 * database (whole hours after each kept_from, before each watermark, dirty in none): per hour
 * the row count and id digest of metrics_hour, the same as of the rows; for the hours that
 * differ, per (name, source, hour) group; then only the differing groups' ids are read, each
 * database at once (a thread each). A window of buckets is a range scan, which reads a whole
 * partition per window when rows are stored by series (160 rows copied a second on 864k rows).
 * A day's differing groups are read by group (an index descent each) where they are few, and by
 * one scan of their hours where they hold much of the rows (a descent per group costs a page per
 * row when rows are stored by time). The rest of the range (its edges, the hours after a
 * watermark, dirty hours, before a kept_from) is compared by windows. A row repair copies marks
 * its hour dirty, and the next rollup computes it again; `m2pg repair` rolls up first.
 *
 * Windows are ranges of buckets, or ranges of the time rows were written: m2pg's ids are
 * UUIDv7, whose first 48 bits are the Unix milliseconds of the write, and PostgreSQL orders
 * uuids bytewise, so `id >= v7(t0) AND id < v7(t1)` (the rest of the bits zero) is a range
 * scan of each partition's unique index on (id, bucket) holding exactly the ids made in
 * [t0, t1). That finds a late metric (an old bucket written now) whose hint was lost, which a
 * look back by bucket never reaches. Ids a client chose that are not v7 land anywhere in that order: only a range of
 * buckets (`m2pg repair --from --to`) covers them.
 *
 * gc makes the partitions of metrics for the days ahead, drops the partitions whose every
 * bucket is older than RETENTION (a DROP costs the same whatever it holds, and leaves no dead
 * rows to vacuum), deletes the older rows of the others (the one holding the cutoff, the
 * default partition, a legacy one) in batches of GC_BATCH (short transactions, no long locks),
 * then repairs the buckets of the last REPAIR_LOOKBACK and the rows written in it,
 * then sleeps GC_INTERVAL. A database that is down or hung is skipped and tried again next
 * cycle. */
#include "maint.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "pgarr.h"
#include "pgsync.h"
#include "schema.h"
#include "tm.h"

#define WINDOW_US (INT64_C(3600) * 1000000)
#define HOUR_US (INT64_C(3600) * 1000000)
#define DAY_US (24 * HOUR_US)
/* Differing groups whose ids one statement reads: up to this many groups or rows (the most
 * any database's rollups count), whichever comes first. */
#define GROUPS_CHUNK 4000
#define GROUP_ROWS_CHUNK 100000
/* Where the differing groups of a day hold at least 1/RANGE_RATIO of its rows, their ids are
 * read by one scan of their hours (at most RANGE_ROWS rows a scan, fetched RANGE_FETCH at a
 * time) rather than by group: an index descent per group measured about 1.6 us a row with rows
 * stored by series and 3 to 13 us stored by time, a scan about 0.2 us. */
#define RANGE_RATIO 8
#define RANGE_ROWS 4000000
#define RANGE_FETCH_S "100000"
/* A clean day whose series differ in more than 1/SERIES_RATIO of its series is compared hour by
 * hour rather than by series (repair_day_series). */
#define SERIES_RATIO 4
#define WRITTEN_WINDOW_US (INT64_C(60) * 1000000) /* a minute of writes: ~300k ids at 5k/s */
#define CLOCK_SKEW_US (INT64_C(60) * 1000000)    /* web processes' clocks ahead of ours */
#define GC_BATCH 10000
#define COPY_CHUNK 5000
/* Inserts of copied rows in flight per database, each on a connection of its own: an insert
 * into old partitions costs 11 to 25 us a row on the server (an index page per row, written
 * whole to the WAL the first time after a checkpoint), one at a time left a core idle. */
#define COPY_CONNS 2
#define SPLIT 16
/* An hour is rolled up once it ended this long ago: l2met sends each minute's summary within
 * seconds of its end, so most hours are rolled up once; a later write marks its hour dirty. */
#define ROLLUP_DELAY_US (INT64_C(5) * 60 * 1000000)
/* A day of hours per statement: a late write into an hour being computed waits for that
 * statement's commit (the dirty hour's row lock), a few seconds at most even on a first run. */
#define ROLLUP_BATCH_HOURS 24
#define ROLLUP_POLL_NS 20000000L
/* A conversion reads the whole table once (and a table of the original m2pg is rewritten to
 * its new types): an operator runs `m2pg migrate` for it and waits. */
#define MIGRATE_TIMEOUT_MS (24 * 3600 * 1000)

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static void catch_stop_signals(void)
{
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: a sleep ends at once */
	sigaction(SIGINT, &sa, NULL);
}

/* Repair's insert of copied rows, sent on one of the database's copy connections and not
 * waited for yet: the next chunk's fetch, the next day's comparison and the other connection's
 * insert run meanwhile. libpq holds the statement from the send on. */
typedef struct PendingCopy {
	bool sent;
	int src;
	/* Sent as SCHEMA_INSERT_NEW_SQL, without ON CONFLICT: the database lacked every row a
	 * moment ago, and the probe of the unique index before each row, the speculative insertion
	 * and the RETURNING that counts them took a fifth of the insert (8,640 rows, 81 to 135 ms
	 * against 62 to 77). Should a row have arrived meanwhile (a hint, another repair), the
	 * statement stored nothing and is sent again as SCHEMA_COPY_SQL: ins is kept for that. */
	SchemaInsert ins;
} PendingCopy;

typedef struct Maint {
	PGconn *conn[CFG_MAX_DATABASES];
	PGconn *copy_conn[CFG_MAX_DATABASES][COPY_CONNS]; /* repair's inserts, opened at their first */
	bool no_copy_conn[CFG_MAX_DATABASES][COPY_CONNS]; /* it could not be opened: its inserts go on conn */
	PendingCopy pending[CFG_MAX_DATABASES][COPY_CONNS];
	int copy_next[CFG_MAX_DATABASES]; /* the copy connection of the next insert */
	/* An insert of copied rows failed: no more copies go there, and repair exits 1. The
	 * database is still compared, and still a source for the others. */
	bool refused[CFG_MAX_DATABASES];
	uint64_t copied[CFG_MAX_DATABASES];
	uint64_t windows, differing;
	uint64_t hours, groups;	    /* hours compared by rollups, groups found differing */
	uint64_t days;		    /* of those hours, whole UTC days compared by their day rollups */
	uint64_t series_days;	    /* of those days, the ones that differed, compared by series */
	int64_t repair_started_us; /* monotonic */
} Maint;

static void maint_connect(Maint *m)
{
	for (int i = 0; i < cfg->ndatabases; i++) {
		if (m->conn[i])
			continue;
		char err[300], label[128];
		cfg_db_label(cfg->database_urls[i], label, sizeof(label));
		m->conn[i] = pgs_connect(cfg->database_urls[i], cfg->connect_timeout_ms, true, err, sizeof(err));
		if (!m->conn[i])
			log_warn("at=maint-skip db=%d host=%s error=\"%s\"", i + 1, label, err);
	}
}

static void copy_finish_all(Maint *m);

static void maint_close(Maint *m)
{
	copy_finish_all(m);
	for (int i = 0; i < cfg->ndatabases; i++) {
		if (m->conn[i])
			PQfinish(m->conn[i]);
		m->conn[i] = NULL;
		for (int k = 0; k < COPY_CONNS; k++) {
			if (m->copy_conn[i][k])
				PQfinish(m->copy_conn[i][k]);
			m->copy_conn[i][k] = NULL;
		}
	}
}

static PGresult *run(Maint *m, int i, const char *what, const char *sql, int n, const char *const *values,
		     const int *lengths, const int *formats, bool binary)
{
	char err[300];
	PGresult *r = pgs_exec(&m->conn[i], sql, n, values, lengths, formats, binary, cfg->maint_timeout_ms, err,
			       sizeof(err));
	if (!r)
		log_warn("at=maint-error db=%d step=%s error=\"%s\"%s", i + 1, what, err,
			 m->conn[i] ? "" : " connection=closed");
	return r;
}

/* ---------- repair ---------- */

static void rollup_database(Maint *m, int i, int64_t now);

typedef struct Each {
	Maint *m;
	int i;
	const char *what, *sql;
	int n;
	const char *const *values;
	const int *lengths, *formats;
	bool binary;
	PGresult *r;
} Each;

static void *each_run(void *arg)
{
	Each *e = arg;
	e->r = run(e->m, e->i, e->what, e->sql, e->n, e->values, e->lengths, e->formats, e->binary);
	return NULL;
}

/* Runs one statement on every database in[], at once: a thread per database, each with its
 * own connection (the servers work in parallel, and the wait is the slowest one's, not the
 * sum). One that fails leaves in[]. Returns how many answered. */
static int run_each(Maint *m, bool in[CFG_MAX_DATABASES], const char *what, const char *sql, int n,
		    const char *const *values, const int *lengths, const int *formats, bool binary,
		    PGresult *res[CFG_MAX_DATABASES])
{
	Each e[CFG_MAX_DATABASES];
	pthread_t t[CFG_MAX_DATABASES];
	bool started[CFG_MAX_DATABASES] = {0};
	for (int i = 0; i < cfg->ndatabases; i++) {
		e[i] = (Each){m, i, what, sql, n, values, lengths, formats, binary, NULL};
		if (!in[i] || !m->conn[i] || stopping)
			continue;
		started[i] = pthread_create(&t[i], NULL, each_run, &e[i]) == 0;
		if (!started[i])
			each_run(&e[i]);
	}
	int alive = 0;
	for (int i = 0; i < cfg->ndatabases; i++) {
		if (started[i])
			pthread_join(t[i], NULL);
		res[i] = e[i].r;
		in[i] = res[i] != NULL;
		alive += in[i];
	}
	return alive;
}

static void clear_each(PGresult *res[CFG_MAX_DATABASES])
{
	for (int i = 0; i < cfg->ndatabases; i++)
		if (res[i])
			PQclear(res[i]);
}

static int cmp_uuid(const void *a, const void *b)
{
	return uuid_cmp(a, b);
}

typedef struct IdSet {
	Uuid *ids;
	size_t n;
	const PGresult *r; /* when set, the rows of the ids (row[k] for ids[k]); else fetched */
	int *row;
} IdSet;

static bool has_id(const IdSet *s, const Uuid *id)
{
	return s->n && bsearch(id, s->ids, s->n, sizeof(Uuid), cmp_uuid) != NULL;
}

static void copy_done(Maint *m, int src, int dst, PGresult *w, int64_t all)
{
	uint64_t copied = PQntuples(w) != 1 ? 0 : all >= 0 ? (uint64_t)all : strtoull(PQgetvalue(w, 0, 1), NULL, 10);
	m->copied[dst] += copied;
	log_info("at=repair-copy db=%d from_db=%d rows=%llu", dst + 1, src + 1, (unsigned long long)copied);
	PQclear(w);
}

/* Waits for the insert in flight on database dst's copy connection k, if any. */
static void copy_finish(Maint *m, int dst, int k)
{
	PendingCopy *p = &m->pending[dst][k];
	if (!p->sent)
		return;
	char err[300];
	PGresult *w = pgs_wait(&m->copy_conn[dst][k], cfg->maint_timeout_ms, err, sizeof(err));
	/* pgs_wait's error text starts with the SQLSTATE; 23505: unique_violation */
	if (!w && m->copy_conn[dst][k] && strncmp(err, "sqlstate 23505", 14) == 0) {
		log_info("at=repair-insert-retry db=%d rows=%u error=\"%s\"", dst + 1, p->ins.n, err);
		const char *iv[SCHEMA_INSERT_PARAMS];
		int il[SCHEMA_INSERT_PARAMS], ifm[SCHEMA_INSERT_PARAMS];
		schema_insert_params(&p->ins, iv, il, ifm);
		w = pgs_exec(&m->copy_conn[dst][k], SCHEMA_COPY_SQL, SCHEMA_INSERT_PARAMS, iv, il, ifm, false,
			     cfg->maint_timeout_ms, err, sizeof(err));
		if (w)
			copy_done(m, p->src, dst, w, -1);
	} else if (w) {
		copy_done(m, p->src, dst, w, p->ins.n);
	}
	if (!w) {
		log_warn("at=maint-error db=%d step=repair-insert error=\"%s\"", dst + 1, err);
		m->refused[dst] = true;
	}
	schema_insert_free(&p->ins);
	p->sent = false;
}

static void copy_finish_all(Maint *m)
{
	for (int i = 0; i < cfg->ndatabases; i++)
		for (int k = 0; k < COPY_CONNS; k++)
			copy_finish(m, i, k);
}

/* Database dst's copy connection k, opened at its first insert; NULL when it cannot be had (it
 * is then not tried again: its inserts go on the database's own connection). */
static PGconn *copy_conn(Maint *m, int dst, int k)
{
	if (m->copy_conn[dst][k] || m->no_copy_conn[dst][k])
		return m->copy_conn[dst][k];
	char err[300];
	PGconn *c = pgs_connect(cfg->database_urls[dst], cfg->connect_timeout_ms, false, err, sizeof(err));
	PGresult *r = c ? pgs_exec(&c, "SET jit = off", 0, NULL, NULL, NULL, false, cfg->maint_timeout_ms, err,
				   sizeof(err))
			: NULL;
	if (r)
		PQclear(r);
	if (!c || !r) {
		log_warn("at=maint-error db=%d step=repair-copy-connect error=\"%s\"", dst + 1, err);
		if (c)
			PQfinish(c);
		m->no_copy_conn[dst][k] = true;
		return NULL;
	}
	return m->copy_conn[dst][k] = c;
}

/* Copies n rows of r (row[k], or the first n when row is NULL; columns as SCHEMA_COPY_SQL
 * takes them) from database src to database dst. The insert is sent on one of dst's copy
 * connections, in turn, and waited for when that connection's turn comes again (or at
 * copy_finish_all): an insert took as long as the fetch and the day's comparison together,
 * which now run alongside it, with another insert. The rows of two inserts are distinct, and
 * the hours they mark dirty are taken in order (m2pg_rollup_mark): they do not wait for each
 * other but for an hour both mark. */
static void copy_send(Maint *m, int src, int dst, const PGresult *r, const int *row, size_t n)
{
	int slot = m->copy_next[dst];
	m->copy_next[dst] = (slot + 1) % COPY_CONNS;
	copy_finish(m, dst, slot);
	if (!m->conn[dst] || m->refused[dst])
		return;
	Metric *ms = calloc(n + 1, sizeof(Metric));
	if (!ms)
		fatal("at=oom");
	SchemaInsert ins = {0};
	schema_insert_begin(&ins); /* the generation unknown: every name of the rows is added */
	for (size_t i = 0; i < n; i++) {
		Metric *x = &ms[i];
		int k = row ? row[i] : (int)i;
		memcpy(x->id.b, PQgetvalue(r, k, 0), 16);
		x->bucket_us = (int64_t)pgarr_get64(PQgetvalue(r, k, 1)) + PG_EPOCH_US;
		x->name = PQgetvalue(r, k, 2);
		x->name_len = (uint16_t)PQgetlength(r, k, 2);
		if (!PQgetisnull(r, k, 11)) {
			x->source = PQgetvalue(r, k, 11);
			x->source_len = (uint8_t)PQgetlength(r, k, 11);
		}
		for (int s = 0; s < METRIC_NSTATS; s++) {
			if (PQgetisnull(r, k, 3 + s))
				continue;
			x->v[s] = pgarr_double_bits(pgarr_get64(PQgetvalue(r, k, 3 + s)));
			x->present |= (uint8_t)(1u << s);
		}
		schema_insert_add(&ins, x, true);
	}
	schema_insert_end(&ins); /* the statement's arrays hold copies: the rows may go */
	free(ms);
	const char *iv[SCHEMA_INSERT_PARAMS];
	int il[SCHEMA_INSERT_PARAMS], ifm[SCHEMA_INSERT_PARAMS];
	schema_insert_params(&ins, iv, il, ifm);
	PGconn *c = copy_conn(m, dst, slot);
	char err[300];
	if (c && pgs_send(&m->copy_conn[dst][slot], SCHEMA_INSERT_NEW_SQL, SCHEMA_INSERT_PARAMS, iv, il, ifm, false,
			  cfg->maint_timeout_ms, err, sizeof(err))) {
		m->pending[dst][slot] = (PendingCopy){.sent = true, .src = src, .ins = ins};
		return; /* ins is freed when the insert is done */
	}
	if (c) /* the copy connection broke: the insert goes on the database's own */
		log_warn("at=maint-error db=%d step=repair-insert error=\"%s\" connection=closed", dst + 1, err);
	PGresult *w = run(m, dst, "repair-insert", SCHEMA_COPY_SQL, SCHEMA_INSERT_PARAMS, iv, il, ifm, false);
	if (w)
		copy_done(m, src, dst, w, -1);
	else
		m->refused[dst] = true;
	schema_insert_free(&ins);
}

/* Copies the rows with these ids and buckets in [lo, hi) (text timestamptz) from database src
 * to database dst. Each id is looked up in the unique index of each partition in range: as
 * `id = ANY (...)`, 1,600 ids made the planner scan whole partitions (290 ms, against 40 ms). */
static void copy_rows(Maint *m, int src, int dst, const Uuid *ids, size_t n, const char *lo, const char *hi)
{
	if (m->refused[dst])
		return;
	Buf arr = {0};
	pgarr_begin(&arr, PGARR_OID_UUID);
	for (size_t i = 0; i < n; i++) {
		pgarr_put32(&arr, 16);
		buf_add(&arr, ids[i].b, 16);
	}
	pgarr_end(&arr, (uint32_t)n, false);
	const char *values[] = {arr.p, lo, hi};
	int lengths[] = {(int)arr.len, 0, 0}, formats[] = {1, 0, 0};
	PGresult *r = run(m, src, "repair-fetch", SCHEMA_REPAIR_FETCH_SQL, 3, values, lengths, formats, true);
	buf_free(&arr);
	if (r)
		copy_send(m, src, dst, r, NULL, (size_t)PQntuples(r));
	PQclear(r);
}

static void format_bucket(int64_t us, char out[40])
{
	tm_format_pg(us, out);
}

/* The smallest v7 id made at that microsecond's millisecond: its time, every other bit 0. */
static void format_written(int64_t us, char out[40])
{
	Uuid u = {{0}};
	int64_t ms = us / 1000;
	for (int i = 0; i < 6; i++)
		u.b[i] = (uint8_t)(ms >> (40 - 8 * i));
	uuid_format(&u, out);
}

/* What a window is a range of. $1 and $2 its bounds, $3 the retention cutoff. */
typedef struct RepairKey {
	const char *what; /* in logs */
	const char *digest_sql, *ids_sql;
	int nparams;
	int64_t leaf_us; /* windows this wide have their ids compared */
	void (*format)(int64_t us, char out[40]);
} RepairKey;

#define DIGEST_COLUMNS "SELECT count(*), coalesce(bit_xor(uuid_hash_extended(id, 0)), 0), " \
		       "coalesce(bit_xor(uuid_hash_extended(id, 1)), 0) FROM metrics "

static const RepairKey BY_BUCKET = {
	"bucket",
	DIGEST_COLUMNS "WHERE bucket >= $1 AND bucket < $2",
	"SELECT id FROM metrics WHERE bucket >= $1 AND bucket < $2",
	2, WINDOW_US, format_bucket,
};

/* Without RETENTION the digest is an index-only scan of the unique indexes on (id, bucket).
 * With it, the cutoff keeps a row gc deleted (an old bucket) from coming back from a database gc has not
 * reached yet. */
static const RepairKey BY_WRITTEN = {
	"written",
	DIGEST_COLUMNS "WHERE id >= $1::uuid AND id < $2::uuid",
	"SELECT id FROM metrics WHERE id >= $1::uuid AND id < $2::uuid",
	2, WRITTEN_WINDOW_US, format_written,
};

static const RepairKey BY_WRITTEN_KEPT = {
	"written",
	DIGEST_COLUMNS "WHERE id >= $1::uuid AND id < $2::uuid AND bucket >= $3",
	"SELECT id FROM metrics WHERE id >= $1::uuid AND id < $2::uuid AND bucket >= $3",
	3, WRITTEN_WINDOW_US, format_written,
};

/* Compares [lo, hi) and repairs what differs; windows wider than the key's leaf are split in
 * SPLIT. */
static void repair_window(Maint *m, const RepairKey *key, int64_t lo, int64_t hi)
{
	int n = cfg->ndatabases, alive = 0;
	char from[40], to[40], cut[40];
	key->format(lo, from);
	key->format(hi, to);
	tm_format_pg(cfg->retention_us ? now_wall_us() - cfg->retention_us : 0, cut);
	const char *params[] = {from, to, cut};
	char digest[CFG_MAX_DATABASES][96];
	bool in[CFG_MAX_DATABASES];
	PGresult *res[CFG_MAX_DATABASES];
	for (int i = 0; i < n; i++)
		in[i] = m->conn[i] != NULL;
	run_each(m, in, "repair-digest", key->digest_sql, key->nparams, params, NULL, NULL, false, res);
	for (int i = 0; i < n; i++) {
		digest[i][0] = '\0';
		if (!res[i])
			continue;
		snprintf(digest[i], sizeof(digest[i]), "%s/%s/%s", PQgetvalue(res[i], 0, 0), PQgetvalue(res[i], 0, 1),
			 PQgetvalue(res[i], 0, 2));
		alive++;
	}
	clear_each(res);
	m->windows++;
	if (alive < 2)
		return;
	bool same = true;
	const char *first = NULL;
	for (int i = 0; i < n; i++) {
		if (!digest[i][0])
			continue;
		if (!first)
			first = digest[i];
		else
			same &= strcmp(first, digest[i]) == 0;
	}
	if (same)
		return;
	if (hi - lo > key->leaf_us) { /* narrow down: only the parts that differ are looked into */
		int64_t step = (hi - lo + SPLIT - 1) / SPLIT;
		for (int64_t a = lo; a < hi && !stopping; a += step)
			repair_window(m, key, a, a + step < hi ? a + step : hi);
		return;
	}
	m->differing++;
	char a[40], b[40]; /* times in the log, whatever the key: logfmt values have no spaces */
	tm_format_rfc3339(lo, a);
	tm_format_rfc3339(hi, b);
	log_info("at=repair-window-differs by=%s from=%s to=%s", key->what, a, b);

	IdSet sets[CFG_MAX_DATABASES] = {{0}};
	for (int i = 0; i < n; i++)
		in[i] = digest[i][0] != '\0';
	run_each(m, in, "repair-ids", key->ids_sql, key->nparams, params, NULL, NULL, true, res);
	for (int i = 0; i < n; i++) {
		PGresult *r = res[i];
		if (!r) {
			digest[i][0] = '\0';
			continue;
		}
		sets[i].n = (size_t)PQntuples(r);
		sets[i].ids = malloc((sets[i].n + 1) * sizeof(Uuid));
		if (!sets[i].ids)
			fatal("at=oom");
		for (size_t k = 0; k < sets[i].n; k++)
			memcpy(sets[i].ids[k].b, PQgetvalue(r, (int)k, 0), 16);
		PQclear(r);
		qsort(sets[i].ids, sets[i].n, sizeof(Uuid), cmp_uuid);
	}
	/* For every database, what the others have and it lacks, fetched from the first that has it. */
	for (int dst = 0; dst < n; dst++) {
		if (!digest[dst][0])
			continue;
		for (int src = 0; src < n; src++) {
			if (src == dst || !digest[src][0])
				continue;
			Uuid *missing = malloc((sets[src].n + 1) * sizeof(Uuid));
			if (!missing)
				fatal("at=oom");
			size_t nm = 0;
			for (size_t k = 0; k < sets[src].n; k++) {
				const Uuid *id = &sets[src].ids[k];
				bool earlier = false; /* an earlier source has it: copied from there */
				for (int e = 0; e < src && !earlier; e++)
					earlier = e != dst && digest[e][0] && has_id(&sets[e], id);
				if (!earlier && !has_id(&sets[dst], id))
					missing[nm++] = *id;
			}
			for (size_t k = 0; k < nm && m->conn[src] && m->conn[dst]; k += COPY_CHUNK)
				copy_rows(m, src, dst, missing + k, nm - k < COPY_CHUNK ? nm - k : COPY_CHUNK,
					  key == &BY_BUCKET ? from : "-infinity", key == &BY_BUCKET ? to : "infinity");
			free(missing);
		}
	}
	for (int i = 0; i < n; i++)
		free(sets[i].ids);
}

/* ---------- repair by rollups ---------- */

/* A binary timestamptz as Unix microseconds; the infinities stay at the ends. */
static int64_t get_ts(const PGresult *r, int row, int col)
{
	int64_t v = (int64_t)pgarr_get64(PQgetvalue(r, row, col));
	return v == INT64_MIN || v == INT64_MAX ? v : v + PG_EPOCH_US;
}

static int64_t hour_floor(int64_t us)
{
	int64_t f = us / HOUR_US * HOUR_US;
	return f > us ? f - HOUR_US : f;
}

static int64_t hour_ceil(int64_t us)
{
	int64_t f = hour_floor(us);
	return f == us ? f : f + HOUR_US;
}

/* Appends v to an array of *n items that has room for *cap. */
static void push_i64(int64_t **a, size_t *n, size_t *cap, int64_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		if (!(*a = realloc(*a, *cap * sizeof(int64_t))))
			fatal("at=oom");
	}
	(*a)[(*n)++] = v;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The hours the rollups serve in every database compared: [lo, hi) less the dirty ones. */
typedef struct Cover {
	int64_t lo, hi;
	int64_t *dirty; /* sorted, unique */
	size_t ndirty;
	bool in[CFG_MAX_DATABASES]; /* compared: connected, and answered each statement so far */
} Cover;

static bool is_dirty(const Cover *c, int64_t hour)
{
	return c->ndirty && bsearch(&hour, c->dirty, c->ndirty, sizeof(int64_t), cmp_i64) != NULL;
}

/* The hours of [from, end) that the rollups serve in every database. The range is rounded
 * out to whole hours, which the rollups compare at no cost in rows (a part of an hour was
 * compared by reading its rows: half a second for the last 59 minutes of a day stored in
 * series order), but never back past cutoff, where gc deletes. */
static void rollup_cover(Maint *m, int64_t from, int64_t end, int64_t cutoff, Cover *c)
{
	char a[40], b[40];
	tm_format_pg(hour_floor(from), a);
	tm_format_pg(end, b);
	const char *params[] = {a, b};
	size_t cap = 0;
	c->lo = hour_floor(from) >= cutoff ? hour_floor(from) : hour_ceil(from);
	c->hi = hour_ceil(end);
	for (int i = 0; i < cfg->ndatabases; i++) {
		c->in[i] = false;
		if (!m->conn[i])
			continue;
		PGresult *r = run(m, i, "repair-state", SCHEMA_REPAIR_STATE_SQL, 2, params, NULL, NULL, true);
		if (!r)
			continue;
		c->in[i] = true;
		if (PQntuples(r) == 0)
			c->hi = c->lo; /* no rollups at all */
		for (int k = 0; k < PQntuples(r); k++) {
			if (k == 0) {
				int64_t wm = get_ts(r, 0, 0), kf = get_ts(r, 0, 1);
				if (wm < c->hi)
					c->hi = wm == INT64_MIN ? wm : hour_floor(wm);
				if (kf > c->lo)
					c->lo = kf == INT64_MAX ? kf : hour_ceil(kf);
			}
			if (!PQgetisnull(r, k, 2))
				push_i64(&c->dirty, &c->ndirty, &cap, get_ts(r, k, 2));
		}
		PQclear(r);
	}
	if (c->ndirty > 1)
		qsort(c->dirty, c->ndirty, sizeof(int64_t), cmp_i64);
	size_t u = 0;
	for (size_t k = 0; k < c->ndirty; k++)
		if (!u || c->dirty[u - 1] != c->dirty[k])
			c->dirty[u++] = c->dirty[k];
	c->ndirty = u;
}

typedef struct IdList {
	Uuid *ids;
	int *row; /* the rows of the ids in the source's IdSet.r, when it has them */
	size_t n, cap;
} IdList;

static void idlist_add(IdList *l, const Uuid *id, int row)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		l->ids = realloc(l->ids, l->cap * sizeof(Uuid));
		l->row = realloc(l->row, l->cap * sizeof(int));
		if (!l->ids || !l->row)
			fatal("at=oom");
	}
	l->row[l->n] = row;
	l->ids[l->n++] = *id;
}

/* Differing groups, as the arrays of the ids statement. */
typedef struct Groups {
	Buf name, lo, hi, source;
	uint32_t n;
	bool source_null;
	int64_t first, last; /* the hours of the first and last group */
	int64_t rows;	     /* the rows of the groups, the most any database counts */
} Groups;

static void groups_reset(Groups *g)
{
	pgarr_begin(&g->name, PGARR_OID_TEXT);
	pgarr_begin(&g->lo, PGARR_OID_TIMESTAMPTZ);
	pgarr_begin(&g->hi, PGARR_OID_TIMESTAMPTZ);
	pgarr_begin(&g->source, PGARR_OID_TEXT);
	g->n = 0;
	g->rows = 0;
	g->source_null = false;
}

/* Adds the group of row k of a result of SCHEMA_REPAIR_GROUPS_SQL, of that many rows. */
static void groups_add(Groups *g, const PGresult *r, int k, int64_t rows)
{
	int64_t hour = get_ts(r, k, 0);
	g->rows += rows;
	if (!g->n)
		g->first = hour;
	g->last = hour;
	pgarr_add_text(&g->name, PQgetvalue(r, k, 1), (size_t)PQgetlength(r, k, 1));
	pgarr_add_timestamptz(&g->lo, hour);
	pgarr_add_timestamptz(&g->hi, hour + HOUR_US);
	if (PQgetisnull(r, k, 2)) {
		pgarr_put32(&g->source, UINT32_MAX); /* -1: NULL */
		g->source_null = true;
	} else {
		pgarr_add_text(&g->source, PQgetvalue(r, k, 2), (size_t)PQgetlength(r, k, 2));
	}
	g->n++;
}

/* Copies to each database in[] the ids it lacks (its set sorted) from the first database that
 * has them: from the rows that database's set has, or looking them up in [lo, hi). */
static void copy_missing(Maint *m, IdSet sets[CFG_MAX_DATABASES], const bool in[CFG_MAX_DATABASES], const char *lo,
			 const char *hi)
{
	int n = cfg->ndatabases;
	IdList miss[CFG_MAX_DATABASES][CFG_MAX_DATABASES] = {{{0}}}; /* [dst][src] */
	size_t pos[CFG_MAX_DATABASES] = {0};
	for (;;) {
		const Uuid *low = NULL;
		for (int i = 0; i < n; i++)
			if (in[i] && pos[i] < sets[i].n && (!low || uuid_cmp(&sets[i].ids[pos[i]], low) < 0))
				low = &sets[i].ids[pos[i]];
		if (!low)
			break;
		Uuid id = *low;
		bool have[CFG_MAX_DATABASES] = {0};
		int src = -1;
		size_t first = 0, last = 0; /* src's entries of the id */
		for (int i = 0; i < n; i++) {
			/* An id stored with two buckets comes twice; both rows are copied. */
			if (src < 0)
				first = pos[i];
			while (in[i] && pos[i] < sets[i].n && uuid_cmp(&sets[i].ids[pos[i]], &id) == 0) {
				if (src < 0)
					src = i;
				have[i] = true;
				pos[i]++;
			}
			if (src == i)
				last = pos[i];
		}
		for (int dst = 0; dst < n; dst++) {
			if (!in[dst] || have[dst])
				continue;
			if (!sets[src].r)
				idlist_add(&miss[dst][src], &id, -1);
			for (size_t k = first; sets[src].r && k < last; k++)
				idlist_add(&miss[dst][src], &sets[src].ids[k], sets[src].row[k]);
		}
	}
	for (int dst = 0; dst < n; dst++)
		for (int src = 0; src < n; src++) {
			IdList *l = &miss[dst][src];
			for (size_t k = 0; k < l->n && m->conn[src] && m->conn[dst] && !stopping; k += COPY_CHUNK) {
				size_t chunk = l->n - k < COPY_CHUNK ? l->n - k : COPY_CHUNK;
				if (sets[src].r)
					copy_send(m, src, dst, sets[src].r, l->row + k, chunk);
				else
					copy_rows(m, src, dst, l->ids + k, chunk, lo, hi);
			}
			free(l->ids);
			free(l->row);
		}
}

static void idset_add_result(IdSet *set, size_t *cap, const PGresult *r)
{
	size_t rows = (size_t)PQntuples(r);
	if (set->n + rows > *cap) {
		*cap = set->n + rows > *cap * 2 ? set->n + rows : *cap * 2;
		set->ids = realloc(set->ids, (*cap + 1) * sizeof(Uuid));
		if (!set->ids)
			fatal("at=oom");
	}
	for (size_t k = 0; k < rows; k++)
		memcpy(set->ids[set->n++].b, PQgetvalue(r, (int)k, 0), 16);
}

typedef struct IdRow {
	Uuid id;
	int row;
} IdRow;

static int cmp_id_row(const void *a, const void *b)
{
	return uuid_cmp(&((const IdRow *)a)->id, &((const IdRow *)b)->id);
}

/* The set of the ids of r's rows (the id first), with the rows: sorted here rather than by the
 * server, whose sort of 60,000 ids spilled to disk. */
static void idset_of_rows(IdSet *set, const PGresult *r)
{
	size_t rows = (size_t)PQntuples(r);
	IdRow *e = malloc((rows + 1) * sizeof(IdRow));
	set->ids = malloc((rows + 1) * sizeof(Uuid));
	set->row = malloc((rows + 1) * sizeof(int));
	if (!e || !set->ids || !set->row)
		fatal("at=oom");
	for (size_t k = 0; k < rows; k++) {
		memcpy(e[k].id.b, PQgetvalue(r, (int)k, 0), 16);
		e[k].row = (int)k;
	}
	qsort(e, rows, sizeof(IdRow), cmp_id_row);
	for (size_t k = 0; k < rows; k++) {
		set->ids[k] = e[k].id;
		set->row[k] = e[k].row;
	}
	set->n = rows;
	set->r = r;
	free(e);
}

/* One database's ids of the differing groups of a range, through a cursor: the range may hold
 * more rows than one result should. The planner expects a group to hold a row or so, and would
 * descend the index once per group: the transaction leaves it the hash join alone, for all of
 * the cursor's rows. */
typedef struct RangeFetch {
	Maint *m;
	int i;
	const char *const *values;
	const int *lengths, *formats;
	IdSet set;
	bool ok;
} RangeFetch;

static void *range_fetch(void *arg)
{
	RangeFetch *f = arg;
	Maint *m = f->m;
	size_t cap = 0;
	PGresult *r = run(m, f->i, "repair-range",
			  "BEGIN; SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off; "
			  "SET LOCAL cursor_tuple_fraction = 1",
			  0, NULL, NULL, NULL, false);
	if (!r)
		return NULL;
	PQclear(r);
	r = run(m, f->i, "repair-range", SCHEMA_REPAIR_RANGE_IDS_SQL, 6, f->values, f->lengths, f->formats, false);
	bool ok = r != NULL;
	while (r && !stopping) {
		PQclear(r);
		r = run(m, f->i, "repair-range", "FETCH FORWARD " RANGE_FETCH_S " FROM m2pg_repair_ids", 0, NULL, NULL,
			NULL, true);
		ok = r != NULL;
		if (r && PQntuples(r) == 0)
			break;
		if (r)
			idset_add_result(&f->set, &cap, r);
	}
	if (r)
		PQclear(r);
	r = m->conn[f->i] ? run(m, f->i, "repair-range", ok ? "COMMIT" : "ROLLBACK", 0, NULL, NULL, NULL, false) : NULL;
	if (r)
		PQclear(r);
	f->ok = ok && r && !stopping;
	if (f->ok && f->set.n) /* here, each database's in its thread: a million ids take 0.2 s */
		qsort(f->set.ids, f->set.n, sizeof(Uuid), cmp_uuid);
	return NULL;
}

/* Reads the ids of the groups from every database compared (by group, or by one scan of the
 * hours they are in), and copies what each lacks. */
static void repair_groups(Maint *m, Cover *c, Groups *g, bool by_range)
{
	int n = cfg->ndatabases;
	char a[40], b[40];
	tm_format_rfc3339(g->first, a);
	tm_format_rfc3339(g->last + HOUR_US, b);
	log_info("at=repair-groups-differ by=%s from=%s to=%s groups=%u rows=%lld", by_range ? "range" : "group", a, b,
		 g->n, (long long)g->rows);
	m->groups += g->n;
	pgarr_end(&g->name, g->n, false);
	pgarr_end(&g->lo, g->n, false);
	pgarr_end(&g->hi, g->n, false);
	pgarr_end(&g->source, g->n, g->source_null);
	tm_format_pg(g->first, a);
	tm_format_pg(g->last + HOUR_US, b);
	const char *values[] = {g->name.p, g->lo.p, g->hi.p, g->source.p, a, b};
	int lengths[] = {(int)g->name.len, (int)g->lo.len, (int)g->hi.len, (int)g->source.len, 0, 0};
	int formats[] = {1, 1, 1, 1, 0, 0};
	IdSet sets[CFG_MAX_DATABASES] = {{0}};
	int alive = 0;
	if (by_range) {
		RangeFetch f[CFG_MAX_DATABASES];
		pthread_t t[CFG_MAX_DATABASES];
		bool started[CFG_MAX_DATABASES] = {0};
		for (int i = 0; i < n; i++) {
			f[i] = (RangeFetch){m, i, values, lengths, formats, {0}, false};
			if (!c->in[i] || !m->conn[i] || stopping)
				continue;
			started[i] = pthread_create(&t[i], NULL, range_fetch, &f[i]) == 0;
			if (!started[i])
				range_fetch(&f[i]);
		}
		for (int i = 0; i < n; i++) {
			if (started[i])
				pthread_join(t[i], NULL);
			sets[i] = f[i].set;
			c->in[i] = f[i].ok;
			alive += c->in[i];
		}
	}
	/* By group the rows come whole (the statement reads each one's heap tuple for its id
	 * anyway), and what a database lacks is copied from them: fetching them again by id cost
	 * 25 us a row. By range they may be millions: ids only, and the missing rows fetched. */
	PGresult *res[CFG_MAX_DATABASES] = {0};
	if (!by_range) {
		alive = run_each(m, c->in, "repair-ids", SCHEMA_REPAIR_IDS_SQL, 6, values, lengths, formats, true, res);
		for (int i = 0; i < n; i++)
			if (res[i])
				idset_of_rows(&sets[i], res[i]);
	}
	if (alive >= 2)
		copy_missing(m, sets, c->in, a, b);
	for (int i = 0; i < n; i++) {
		free(sets[i].ids);
		free(sets[i].row);
	}
	clear_each(res);
	groups_reset(g);
}

/* Orders the rows of SCHEMA_REPAIR_GROUPS_SQL as the statement does. */
static int cmp_group(const PGresult *x, int i, const PGresult *y, int j)
{
	int64_t a = get_ts(x, i, 0), b = get_ts(y, j, 0);
	if (a != b)
		return a < b ? -1 : 1;
	for (int col = 1; col <= 2; col++) {
		bool xn = PQgetisnull(x, i, col), yn = PQgetisnull(y, j, col);
		if (xn || yn) {
			if (xn != yn)
				return xn ? -1 : 1;
			continue;
		}
		int xl = PQgetlength(x, i, col), yl = PQgetlength(y, j, col);
		int d = memcmp(PQgetvalue(x, i, col), PQgetvalue(y, j, col), (size_t)(xl < yl ? xl : yl));
		if (d || xl != yl)
			return d ? d : xl < yl ? -1 : 1;
	}
	return 0;
}

static int cmp_group_rows(const void *a, const void *b, void *arg)
{
	const PGresult *r = arg;
	return cmp_group(r, *(const int *)a, r, *(const int *)b);
}

/* A differing group: its row in one database's result of SCHEMA_REPAIR_GROUPS_SQL. */
typedef struct GroupRef {
	const PGresult *r;
	int k;
	int64_t rows; /* the most any database counts */
} GroupRef;

/* The groups (bucket, name, source) that differ between the databases' results of
 * SCHEMA_REPAIR_GROUPS_SQL's columns (or that one lacks), in cmp_group's order. Each result is
 * sorted here: the server's sort of a day's 24,000 groups by name in byte order took most of
 * the statement's 70 ms. Returns how many, *differing their rows, *hours the distinct buckets. */
static size_t differing_groups(PGresult *res[CFG_MAX_DATABASES], int alive, GroupRef **out, int64_t *differing,
			       int64_t *hours)
{
	int n = cfg->ndatabases;
	GroupRef *refs = NULL;
	size_t nrefs = 0, cap = 0;
	int pos[CFG_MAX_DATABASES] = {0};
	int *ord[CFG_MAX_DATABASES] = {0};
	*differing = *hours = 0;
	for (int i = 0; i < n; i++) {
		if (!res[i])
			continue;
		int rows = PQntuples(res[i]);
		ord[i] = malloc(((size_t)rows + 1) * sizeof(int));
		if (!ord[i])
			fatal("at=oom");
		for (int k = 0; k < rows; k++)
			ord[i][k] = k;
		qsort_r(ord[i], (size_t)rows, sizeof(int), cmp_group_rows, res[i]);
	}
#define AT(i) ord[i][pos[i]]
	while (alive >= 2) {
		int low = -1;
		for (int i = 0; i < n; i++)
			if (res[i] && pos[i] < PQntuples(res[i]) &&
			    (low < 0 || cmp_group(res[i], AT(i), res[low], AT(low)) < 0))
				low = i;
		if (low < 0)
			break;
		const PGresult *lr = res[low];
		int lk = AT(low);
		bool same = true;
		int64_t rows = 0;
		for (int i = 0; i < n; i++) {
			if (!res[i])
				continue;
			if (pos[i] < PQntuples(res[i]) && cmp_group(res[i], AT(i), lr, lk) == 0) {
				for (int col = 3; col <= 5; col++) /* rows, h1, h2: binary int8 */
					same &= memcmp(PQgetvalue(res[i], AT(i), col), PQgetvalue(lr, lk, col), 8) == 0;
				int64_t r = (int64_t)pgarr_get64(PQgetvalue(res[i], AT(i), 3));
				rows = r > rows ? r : rows;
				if (i != low)
					pos[i]++;
			} else {
				same = false;
			}
		}
		pos[low]++;
		if (same)
			continue;
		*differing += rows;
		*hours += !nrefs || get_ts(refs[nrefs - 1].r, refs[nrefs - 1].k, 0) != get_ts(lr, lk, 0);
		if (nrefs == cap) {
			cap = cap ? cap * 2 : 256;
			refs = realloc(refs, cap * sizeof(GroupRef));
			if (!refs)
				fatal("at=oom");
		}
		refs[nrefs++] = (GroupRef){lr, lk, rows};
	}
#undef AT
	for (int i = 0; i < n; i++)
		free(ord[i]);
	*out = refs;
	return nrefs;
}

/* Repairs the hour groups that differ in res (SCHEMA_REPAIR_GROUPS_SQL's columns, of one UTC
 * day): by group, or by one scan from the first hour to the last where the differing groups
 * hold at least 1/RANGE_RATIO of the span's rows. Returns how many hours differ. */
static int64_t repair_differing(Maint *m, Cover *c, PGresult *res[CFG_MAX_DATABASES], int alive, int64_t span_rows)
{
	GroupRef *refs;
	int64_t differing, hours;
	size_t nrefs = differing_groups(res, alive, &refs, &differing, &hours);
	bool by_range = differing * RANGE_RATIO >= span_rows;
	Groups g = {0};
	groups_reset(&g);
	for (size_t k = 0; k < nrefs && !stopping; k++) {
		/* A scan is split between hours only, where it holds RANGE_ROWS; groups at GROUPS_CHUNK
		 * or GROUP_ROWS_CHUNK. */
		if (g.n && (by_range ? g.rows >= RANGE_ROWS && get_ts(refs[k].r, refs[k].k, 0) != g.last
				     : g.n == GROUPS_CHUNK || g.rows >= GROUP_ROWS_CHUNK))
			repair_groups(m, c, &g, by_range);
		groups_add(&g, refs[k].r, refs[k].k, refs[k].rows);
	}
	if (g.n && !stopping)
		repair_groups(m, c, &g, by_range);
	free(refs);
	buf_free(&g.name);
	buf_free(&g.lo);
	buf_free(&g.hi);
	buf_free(&g.source);
	return hours;
}

/* The groups of these hours (of one UTC day) whose rows or digest differ (or that a database
 * lacks), repaired. */
static void repair_hours(Maint *m, Cover *c, const int64_t *hours, size_t nh, int64_t span_rows)
{
	Buf arr = {0};
	pgarr_begin(&arr, PGARR_OID_TIMESTAMPTZ);
	for (size_t k = 0; k < nh; k++)
		pgarr_add_timestamptz(&arr, hours[k]);
	pgarr_end(&arr, (uint32_t)nh, false);
	const char *values[] = {arr.p};
	int lengths[] = {(int)arr.len}, formats[] = {1};
	PGresult *res[CFG_MAX_DATABASES];
	int alive = run_each(m, c->in, "repair-groups", SCHEMA_REPAIR_GROUPS_SQL, 1, values, lengths, formats, true, res);
	buf_free(&arr);
	repair_differing(m, c, res, alive, span_rows);
	clear_each(res);
}

/* A clean UTC day whose totals differ: its series (name, source) are compared by their day
 * rollups, and only the hours of the names whose series differ are read. A day that two
 * series of 1,000 missed was read as 24,000 hour groups a database (85 ms), and compared
 * hour by hour before that (100 ms); now as 1,000 series and the 48 groups of two names.
 * Where more than 1/SERIES_RATIO of the series differ (a database down for an hour), the
 * hours narrow it better: false, and the day is left to be compared hour by hour. */
static bool repair_day_series(Maint *m, Cover *c, int64_t day, int64_t span_rows)
{
	char a[40], b[40];
	tm_format_pg(day, a);
	tm_format_pg(day + DAY_US, b);
	const char *p1[] = {a};
	PGresult *res[CFG_MAX_DATABASES];
	int alive = run_each(m, c->in, "repair-series", SCHEMA_REPAIR_DAY_SERIES_SQL, 1, p1, NULL, NULL, true, res);
	GroupRef *refs;
	int64_t differing, hours;
	size_t nrefs = differing_groups(res, alive, &refs, &differing, &hours);
	Buf names = {0};
	pgarr_begin(&names, PGARR_OID_TEXT);
	uint32_t nn = 0;
	for (size_t k = 0; k < nrefs; k++) {
		const PGresult *r = refs[k].r;
		int len = PQgetlength(r, refs[k].k, 1);
		/* sorted by name: a name's series (its sources) are neighbours */
		if (k && PQgetlength(refs[k - 1].r, refs[k - 1].k, 1) == len &&
		    memcmp(PQgetvalue(refs[k - 1].r, refs[k - 1].k, 1), PQgetvalue(r, refs[k].k, 1), (size_t)len) == 0)
			continue;
		pgarr_put32(&names, (uint32_t)len);
		buf_add(&names, PQgetvalue(r, refs[k].k, 1), (size_t)len);
		nn++;
	}
	pgarr_end(&names, nn, false);
	int series = 0;
	for (int i = 0; i < cfg->ndatabases; i++)
		series = res[i] && PQntuples(res[i]) > series ? PQntuples(res[i]) : series;
	free(refs);
	clear_each(res);
	if (alive >= 2 && (int64_t)nn * SERIES_RATIO > series) {
		buf_free(&names);
		return false;
	}
	m->series_days += alive >= 2;
	if (nn && alive >= 2 && !stopping) {
		const char *p3[] = {a, b, names.p};
		int lengths[] = {0, 0, (int)names.len}, formats[] = {0, 0, 1};
		alive = run_each(m, c->in, "repair-groups", SCHEMA_REPAIR_SERIES_GROUPS_SQL, 3, p3, lengths, formats, true,
				 res);
		m->differing += (uint64_t)repair_differing(m, c, res, alive, span_rows);
		clear_each(res);
	}
	buf_free(&names);
	return true;
}

/* The hours that differ, and each hour with rows: the hour and the most any database counts. */
typedef struct Diff {
	int64_t *differ;
	size_t nd, cap;
	int64_t (*rows)[2];
	size_t nrows, rcap;
} Diff;

/* Walks the databases' totals per hour or day (sorted results of bucket, n, h1, h2) side by
 * side, calling fn for each bucket with whether every database has the same totals, and the
 * most rows any counts. A bucket a database has no rollup of holds no rows there: zeros. */
static void walk_totals(PGresult *res[CFG_MAX_DATABASES], void (*fn)(void *, int64_t, bool, int64_t), void *arg)
{
	int n = cfg->ndatabases;
	int pos[CFG_MAX_DATABASES] = {0};
	for (;;) {
		int64_t at = INT64_MAX;
		for (int i = 0; i < n; i++)
			if (res[i] && pos[i] < PQntuples(res[i]) && get_ts(res[i], pos[i], 0) < at)
				at = get_ts(res[i], pos[i], 0);
		if (at == INT64_MAX)
			break;
		static const char zero[8];
		const char *first[3] = {NULL, NULL, NULL};
		bool same = true;
		int64_t most = 0;
		for (int i = 0; i < n; i++) {
			if (!res[i])
				continue;
			bool has = pos[i] < PQntuples(res[i]) && get_ts(res[i], pos[i], 0) == at;
			for (int col = 1; col <= 3; col++) {
				const char *v = has ? PQgetvalue(res[i], pos[i], col) : zero;
				if (!first[col - 1])
					first[col - 1] = v;
				else
					same &= memcmp(first[col - 1], v, 8) == 0;
			}
			int64_t r = has ? (int64_t)pgarr_get64(PQgetvalue(res[i], pos[i], 1)) : 0;
			most = r > most ? r : most;
			pos[i] += has;
		}
		fn(arg, at, same, most);
	}
}

typedef struct HourWalk {
	Cover *c;
	Diff *d;
} HourWalk;

static void on_hour(void *arg, int64_t hour, bool same, int64_t most)
{
	HourWalk *w = arg;
	Diff *d = w->d;
	if (d->nrows == d->rcap) {
		d->rcap = d->rcap ? d->rcap * 2 : 256;
		if (!(d->rows = realloc(d->rows, d->rcap * sizeof(*d->rows))))
			fatal("at=oom");
	}
	d->rows[d->nrows][0] = hour;
	d->rows[d->nrows++][1] = most;
	if (!same && !is_dirty(w->c, hour))
		push_i64(&d->differ, &d->nd, &d->cap, hour);
}

/* Runs the totals statement sql over [lo, hi) in every database compared and, when two or
 * more answered, walks them with fn. Returns how many answered. */
static int run_totals(Maint *m, Cover *c, const char *what, const char *sql, int64_t lo, int64_t hi,
		      void (*fn)(void *, int64_t, bool, int64_t), void *arg)
{
	char a[40], b[40];
	tm_format_pg(lo, a);
	tm_format_pg(hi, b);
	const char *params[] = {a, b};
	PGresult *res[CFG_MAX_DATABASES];
	int alive = run_each(m, c->in, what, sql, 2, params, NULL, NULL, true, res);
	if (alive >= 2)
		walk_totals(res, fn, arg);
	clear_each(res);
	return alive;
}

/* Compares the hours of [lo, hi) into d; false when fewer than two databases answered. */
static bool compare_hours(Maint *m, Cover *c, int64_t lo, int64_t hi, Diff *d)
{
	HourWalk w = {c, d};
	return run_totals(m, c, "repair-hours", SCHEMA_REPAIR_HOURS_SQL, lo, hi, on_hour, &w) >= 2;
}

typedef struct DayWalk {
	Cover *c;
	int64_t *check; /* days whose hours are compared: they hold a dirty hour */
	size_t n, cap;
	int64_t *series; /* clean days that differ, and their rows: their series are compared */
	size_t ns, scap;
} DayWalk;

static bool day_has_dirty(const Cover *c, int64_t day)
{
	for (size_t k = 0; k < c->ndirty; k++)
		if (c->dirty[k] >= day && c->dirty[k] < day + DAY_US)
			return true;
	return false;
}

static void on_day(void *arg, int64_t day, bool same, int64_t most)
{
	DayWalk *w = arg;
	if (day_has_dirty(w->c, day)) {
		push_i64(&w->check, &w->n, &w->cap, day);
	} else if (!same) {
		push_i64(&w->series, &w->ns, &w->scap, day);
		push_i64(&w->series, &w->ns, &w->scap, most);
	}
}

/* Compares the covered hours' totals and repairs the hours that differ. Whole UTC days are
 * compared first by their day rollups, which gc computes from the day's hours: an hour
 * rollup row per (name, source, hour) is 24 times the reading, and a repair that found
 * nothing over 14 days of 1,000 series spent 750 of its 980 ms summing them. A clean day whose
 * totals differ is narrowed to its series that differ (repair_day_series); a day that holds a
 * dirty hour (whose day rollup is not to be trusted) is compared hour by hour, and so are the
 * hours at the edges, outside whole days. */
static void repair_covered(Maint *m, Cover *c)
{
	Diff d = {0};
	int64_t d0 = c->lo % DAY_US == 0 ? c->lo : (c->lo / DAY_US + 1) * DAY_US, d1 = c->hi / DAY_US * DAY_US;
	DayWalk w = {.c = c};
	bool ok = true;
	if (c->lo < c->hi && c->lo > 0 && d0 < d1) {
		ok = run_totals(m, c, "repair-days", SCHEMA_REPAIR_DAYS_SQL, d0, d1, on_day, &w) >= 2;
		if (ok)
			m->days += (uint64_t)((d1 - d0) / DAY_US);
	} else {
		d0 = d1 = c->hi; /* no whole day: every hour is compared */
	}
	for (size_t k = 0; ok && k + 1 < w.ns && !stopping; k += 2)
		if (!repair_day_series(m, c, w.series[k], w.series[k + 1]))
			push_i64(&w.check, &w.n, &w.cap, w.series[k]);
	free(w.series);
	if (w.n > 1)
		qsort(w.check, w.n, sizeof(int64_t), cmp_i64);
	/* The hours to compare, in order: before the first whole day, the days to check, after
	 * the last whole day. */
	if (ok && c->lo < d0)
		ok = compare_hours(m, c, c->lo, d0, &d);
	for (size_t k = 0; ok && k < w.n; k++) {
		size_t e = k;
		while (e + 1 < w.n && w.check[e + 1] == w.check[e] + DAY_US)
			e++;
		ok = compare_hours(m, c, w.check[k], w.check[e] + DAY_US, &d);
		k = e;
	}
	if (ok && d1 < c->hi && d1 >= d0)
		ok = compare_hours(m, c, d1, c->hi, &d);
	free(w.check);
	if (ok && c->lo < c->hi) {
		uint64_t hours = (uint64_t)((c->hi - c->lo) / HOUR_US);
		for (size_t k = 0; k < c->ndirty; k++)
			hours -= c->dirty[k] >= c->lo && c->dirty[k] < c->hi;
		m->hours += hours;
		m->differing += d.nd;
	}
	/* A UTC day at a time: the partitions of metrics are whole days, so each copy looks its
	 * ids up in one. */
	for (size_t k = 0, e, h = 0; ok && k < d.nd && !stopping; k = e) {
		for (e = k + 1; e < d.nd && d.differ[e] / DAY_US == d.differ[k] / DAY_US; e++)
			;
		int64_t span = 0;
		for (; h < d.nrows && d.rows[h][0] <= d.differ[e - 1]; h++)
			span += d.rows[h][0] >= d.differ[k] ? d.rows[h][1] : 0;
		repair_hours(m, c, d.differ + k, e - k, span);
	}
	free(d.rows);
	free(d.differ);
}

/* The earliest bucket any database holds (perhaps an hour early), or -1. */
static int64_t earliest(Maint *m)
{
	int64_t best = -1;
	for (int i = 0; i < cfg->ndatabases; i++) {
		if (!m->conn[i])
			continue;
		PGresult *r = run(m, i, "repair-earliest", SCHEMA_REPAIR_EARLIEST_SQL, 0, NULL, NULL, NULL, false);
		if (!r)
			continue;
		if (!PQgetisnull(r, 0, 0)) {
			int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			if (best < 0 || v < best)
				best = v;
		}
		PQclear(r);
	}
	return best;
}

/* Repair's statements are many and short: JIT compiling measured 140 ms for a statement that
 * ran in 1 ms (on tables not yet analyzed, whose estimates are large). */
static void repair_begin(Maint *m)
{
	if (m->repair_started_us)
		return;
	m->repair_started_us = now_mono_us();
	for (int i = 0; i < cfg->ndatabases; i++) {
		PGresult *r = m->conn[i] ? run(m, i, "repair-setup", "SET jit = off", 0, NULL, NULL, NULL, false) : NULL;
		if (r)
			PQclear(r);
	}
}

static void repair_range(Maint *m, int64_t from, int64_t to)
{
	repair_begin(m);
	int64_t cutoff = cfg->retention_us ? now_wall_us() - cfg->retention_us : 0;
	if (from < cutoff)
		from = cutoff; /* what gc deleted must not come back */
	char a[40], b[40];
	tm_format_rfc3339(from, a);
	tm_format_rfc3339(to, b);
	log_info("at=repair-start by=bucket from=%s to=%s", a, b);
	if (from > to)
		return;
	int64_t end = to + 1;
	Cover c = {0};
	rollup_cover(m, from, end, cutoff, &c);
	if (c.lo < c.hi) {
		repair_covered(m, &c);
		/* The rest by windows: before the covered hours, the dirty hours among them, after. */
		if (from < c.lo && !stopping)
			repair_window(m, &BY_BUCKET, from, c.lo);
		for (size_t k = 0; k < c.ndirty && !stopping;) {
			int64_t lo = c.dirty[k++], hi = lo + HOUR_US;
			if (lo < c.lo || lo >= c.hi)
				continue;
			while (k < c.ndirty && c.dirty[k] == hi && hi < c.hi) {
				hi += HOUR_US;
				k++;
			}
			repair_window(m, &BY_BUCKET, lo, hi);
		}
		from = c.hi;
	}
	if (from < end && !stopping)
		repair_window(m, &BY_BUCKET, from, end);
	free(c.dirty);
	copy_finish_all(m);
}

/* The rows written since `since`, whatever their buckets (v7 ids only). */
static void repair_written(Maint *m, int64_t since)
{
	int64_t to = now_wall_us() + CLOCK_SKEW_US;
	char a[40], b[40];
	tm_format_rfc3339(since, a);
	tm_format_rfc3339(to, b);
	repair_begin(m);
	log_info("at=repair-start by=written from=%s to=%s", a, b);
	repair_window(m, cfg->retention_us ? &BY_WRITTEN_KEPT : &BY_WRITTEN, since, to);
	copy_finish_all(m);
}

static void repair_summary(const Maint *m)
{
	char copied[512];
	size_t off = 0;
	for (int i = 0; i < cfg->ndatabases && off < sizeof(copied); i++)
		off += (size_t)snprintf(copied + off, sizeof(copied) - off, " copied_db%d=%llu", i + 1,
					(unsigned long long)m->copied[i]);
	int64_t ms = m->repair_started_us ? (now_mono_us() - m->repair_started_us) / 1000 : 0;
	log_info("at=repair-done windows=%llu hours=%llu days=%llu series_days=%llu differing=%llu groups=%llu%s "
		 "measure#m2pg.repair.ms=%lld",
		 (unsigned long long)m->windows, (unsigned long long)m->hours, (unsigned long long)m->days,
		 (unsigned long long)m->series_days, (unsigned long long)m->differing,
		 (unsigned long long)m->groups, copied, (long long)ms);
}

int maint_repair(int argc, char **argv)
{
	int64_t from = -1, to = now_wall_us(), written = -1;
	bool by_bucket = false;
	for (int i = 0; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = false;
		if (v && (strcmp(argv[i], "--from") == 0 || strcmp(argv[i], "--to") == 0)) {
			ok = tm_parse(v, strlen(v), strcmp(argv[i], "--from") == 0 ? &from : &to);
			by_bucket = true;
		} else if (v && strcmp(argv[i], "--written-since") == 0) {
			ok = tm_parse_duration(v, &written) && written > 0;
		}
		if (!ok) {
			fprintf(stderr, "m2pg repair: usage: m2pg repair [--from TIME] [--to TIME] "
					"[--written-since DURATION] (TIME: Unix seconds or RFC 3339; "
					"DURATION: like 90m, 12h, 2d)\n");
			return 2;
		}
		i++;
	}
	catch_stop_signals();
	Maint m = {0};
	maint_connect(&m);
	/* --written-since alone compares only what was written since; with --from or --to too,
	 * both. */
	if (written > 0)
		repair_written(&m, now_wall_us() - written);
	if (written < 0 || by_bucket) {
		/* Rollups first: the hours they cover are compared without reading rows. */
		int64_t now = now_wall_us();
		for (int i = 0; i < cfg->ndatabases && !stopping; i++)
			if (m.conn[i])
				rollup_database(&m, i, now);
		repair_begin(&m);
		if (from < 0 && (from = earliest(&m)) >= 0)
			from = hour_floor(from); /* nothing is before it: its hour is whole */
		if (from >= 0 && from <= to && !stopping)
			repair_range(&m, from, to);
	}
	repair_summary(&m);
	int alive = 0;
	for (int i = 0; i < cfg->ndatabases; i++)
		alive += m.conn[i] != NULL && !m.refused[i];
	maint_close(&m);
	return alive == cfg->ndatabases ? 0 : 1;
}

/* ---------- gc ---------- */

/* Makes the partitions from now to PARTITION_AHEAD days ahead that are missing. */
static void make_partitions(Maint *m, int i, const char *step)
{
	char ahead[16], days[16];
	snprintf(ahead, sizeof(ahead), "%d", cfg->partition_ahead);
	snprintf(days, sizeof(days), "%d", cfg->partition_days);
	const char *params[] = {ahead, days};
	PGresult *r = run(m, i, step, SCHEMA_PARTITIONS_MAKE_SQL, 2, params, NULL, NULL, false);
	if (!r)
		return;
	for (int k = 0; k < PQntuples(r); k++)
		log_info("at=partition-created db=%d partition=%s moved=%s", i + 1, PQgetvalue(r, k, 0),
			 PQgetvalue(r, k, 1));
	PQclear(r);
}

/* Deletes the rows of one partition (table) before cut, GC_BATCH at a time: ctids are per
 * partition, hence a partition at a time and never through metrics. With by_name (the cutoff
 * early in a partition's range: few of its rows go), they are found name by name, through the
 * index on (name, bucket): each distinct name found by one descent (a loose index scan), then
 * its rows before cut by another. Rows stored by time are found as fast by the bucket's BRIN
 * index, but rows stored by series fill every block range with every bucket: the BRIN scan then
 * read the whole partition, 940 ms for one of 1.44 million rows, where the walk of its 10,000
 * names took 110 ms. */
static uint64_t gc_delete(Maint *m, int i, const char *table, const char *cut, bool by_name)
{
	char batch[16];
	snprintf(batch, sizeof(batch), "%d", GC_BATCH);
	const char *params[] = {cut, batch};
	char *sql = NULL;
	uint64_t total = 0;
	char *quoted = PQescapeIdentifier(m->conn[i], table, strlen(table));
	int rc = !quoted ? -1
		 : by_name
		     ? asprintf(&sql,
				"DELETE FROM %s WHERE ctid = ANY (ARRAY(WITH RECURSIVE n(name) AS ("
				"(SELECT name FROM %s ORDER BY name LIMIT 1) UNION ALL "
				"SELECT (SELECT p.name FROM %s p WHERE p.name > n.name ORDER BY p.name LIMIT 1) "
				"FROM n WHERE n.name IS NOT NULL) "
				"SELECT r.ctid FROM n CROSS JOIN LATERAL "
				"(SELECT p.ctid FROM %s p WHERE p.name = n.name AND p.bucket < $1) r LIMIT $2))",
				quoted, quoted, quoted, quoted)
		     : asprintf(&sql, "DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE bucket < $1 LIMIT $2))",
				quoted, quoted);
	if (rc < 0)
		fatal("at=oom");
	PQfreemem(quoted);
	while (!stopping && m->conn[i]) {
		PGresult *r = run(m, i, "gc-delete", sql, 2, params, NULL, NULL, false);
		if (!r)
			break;
		uint64_t n = strtoull(PQcmdTuples(r), NULL, 10);
		PQclear(r);
		total += n;
		if (n < GC_BATCH)
			break;
	}
	free(sql);
	return total;
}

/* Drops a partition whose every bucket is older than the cutoff. A DROP waits for the
 * statements using metrics and holds back the ones that come after it: lock_timeout bounds
 * that wait, and a partition not dropped now is dropped by the next cycle. */
static bool gc_drop(Maint *m, int i, const char *table, const char *est_rows)
{
	char *sql = NULL;
	char *quoted = PQescapeIdentifier(m->conn[i], table, strlen(table));
	if (!quoted || asprintf(&sql, "SET LOCAL lock_timeout = '5s'; DROP TABLE %s", quoted) < 0)
		fatal("at=oom");
	PQfreemem(quoted);
	PGresult *r = run(m, i, "gc-drop-partition", sql, 0, NULL, NULL, NULL, false);
	free(sql);
	if (!r)
		return false;
	PQclear(r);
	log_info("at=gc-drop-partition db=%d partition=%s est_rows=%s", i + 1, table, est_rows);
	return true;
}

static void gc_database(Maint *m, int i, int64_t cutoff)
{
	char cut[40];
	tm_format_pg(cutoff, cut);
	const char *params[] = {cut};
	uint64_t total = 0;
	int dropped = 0;
	int64_t start = now_mono_us();
	PGresult *parts = run(m, i, "gc-partitions", SCHEMA_PARTITIONS_OLD_SQL, 1, params, NULL, NULL, false);
	for (int k = 0; parts && k < PQntuples(parts) && !stopping && m->conn[i]; k++) {
		const char *table = PQgetvalue(parts, k, 0);
		bool is_default = PQgetvalue(parts, k, 1)[0] == 't';
		bool expired = !is_default && PQgetvalue(parts, k, 3)[0] == 't';
		if (expired && gc_drop(m, i, table, PQgetvalue(parts, k, 2)))
			dropped++;
		else if (!expired)
			total += gc_delete(m, i, table, cut, PQgetvalue(parts, k, 4)[0] == 't');
	}
	if (parts)
		PQclear(parts);
	char shown[40];
	tm_format_rfc3339(cutoff, shown);
	log_info("at=gc db=%d cutoff=%s deleted=%llu dropped_partitions=%d measure#m2pg.gc.ms=%lld", i + 1, shown,
		 (unsigned long long)total, dropped, (long long)((now_mono_us() - start) / 1000));
}

/* ---------- rollups ---------- */

/* Brings a database's hour and day rollups up to date: claims the hours closed before
 * now - ROLLUP_DELAY and the dirty ones (m2pg_rollup_claim), waits until the writes to
 * metrics open at that moment have ended (so that the rows they wrote before the claim are seen,
 * and those after it marked the hour dirty again), then computes the hours, a day of them per
 * statement. Hours left claimed (a wait that timed out, a failure) are claimed again next time. */
static void rollup_database(Maint *m, int i, int64_t now)
{
	int64_t start = now_mono_us();
	char until[40], cut[40] = "-infinity";
	tm_format_pg(now - ROLLUP_DELAY_US, until);
	if (cfg->retention_us)
		tm_format_pg(now - cfg->retention_us, cut);
	const char *params[] = {until, cut};
	PGresult *hours = run(m, i, "rollup-claim", SCHEMA_ROLLUP_CLAIM_SQL, 2, params, NULL, NULL, false);
	if (!hours)
		return;
	int n = PQntuples(hours), done = 0, failed = 0;
	PGresult *writers = n ? run(m, i, "rollup-writers", SCHEMA_ROLLUP_WRITERS_SQL, 0, NULL, NULL, NULL, false) : NULL;
	bool waited = n == 0;
	for (int64_t deadline = now_mono_us() + (int64_t)cfg->maint_timeout_ms * 1000; writers && !stopping;) {
		const char *w[] = {PQgetvalue(writers, 0, 0)};
		PGresult *left = run(m, i, "rollup-wait", SCHEMA_ROLLUP_WRITERS_LEFT_SQL, 1, w, NULL, NULL, false);
		if (!left)
			break;
		waited = strcmp(PQgetvalue(left, 0, 0), "0") == 0;
		PQclear(left);
		if (waited || now_mono_us() > deadline)
			break;
		struct timespec ts = {0, ROLLUP_POLL_NS};
		nanosleep(&ts, NULL);
	}
	if (!waited && writers) /* a failed query is logged by run() */
		log_warn("at=rollup-wait-timeout db=%d hours=%d", i + 1, n);
	if (writers)
		PQclear(writers);
	Buf arr = {0};
	for (int k = 0; waited && k < n && !stopping && m->conn[i];) {
		buf_reset(&arr);
		buf_addc(&arr, '{');
		for (int b = 0; b < ROLLUP_BATCH_HOURS && k < n; b++, k++) {
			if (b)
				buf_addc(&arr, ',');
			buf_addf(&arr, "\"%s\"", PQgetvalue(hours, k, 0));
		}
		buf_addc(&arr, '}');
		const char *a[] = {arr.p};
		PGresult *r = run(m, i, "rollup-compute", SCHEMA_ROLLUP_COMPUTE_SQL, 1, a, NULL, NULL, false);
		if (!r)
			break;
		done += atoi(PQgetvalue(r, 0, 0));
		failed += atoi(PQgetvalue(r, 0, 1));
		PQclear(r);
	}
	buf_free(&arr);
	PQclear(hours);
	if (cfg->rollup_retention_us && m->conn[i]) {
		char rcut[40], shown[40];
		tm_format_pg(now - cfg->rollup_retention_us, rcut);
		tm_format_rfc3339(now - cfg->rollup_retention_us, shown);
		const char *p[] = {rcut};
		PGresult *r = run(m, i, "rollup-expire", SCHEMA_ROLLUP_EXPIRE_SQL, 1, p, NULL, NULL, false);
		if (r) {
			if (strcmp(PQgetvalue(r, 0, 0), "0") != 0)
				log_info("at=rollup-expire db=%d cutoff=%s removed=%s", i + 1, shown, PQgetvalue(r, 0, 0));
			PQclear(r);
		}
	}
	if (n || failed)
		log_info("at=rollup db=%d claimed=%d rolled_up=%d failed=%d measure#m2pg.rollup.ms=%lld", i + 1, n, done,
			 failed, (long long)((now_mono_us() - start) / 1000));
}

/* Puts back into the catalogue the names that have rows but no entry (rows loaded by SQL or
 * COPY, an edit behind m2pg's back with triggers off, a restore): reads match the regex
 * against the catalogue, so such rows would be invisible. Only the partitions written since
 * their last fill are scanned. */
static void gc_fill_names(Maint *m, int i)
{
	int64_t start = now_mono_us();
	PGresult *r = run(m, i, "names-fill", SCHEMA_NAMES_FILL_SQL, 0, NULL, NULL, NULL, false);
	if (!r)
		return;
	log_info("at=names-fill db=%d added=%s scanned=%s partitions=%s measure#m2pg.names_fill.ms=%lld", i + 1,
		 PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
		 (long long)((now_mono_us() - start) / 1000));
	PQclear(r);
}

typedef struct GcJob {
	Maint *m;
	int i;
	int64_t now;
} GcJob;

/* One database's part of a cycle: partitions ahead, names, retention, rollups. It touches only
 * its own connection. */
static void *gc_one(void *arg)
{
	const GcJob *j = arg;
	Maint *m = j->m;
	int i = j->i;
	if (m->conn[i])
		make_partitions(m, i, "gc-partitions-ahead");
	if (m->conn[i] && !stopping)
		gc_fill_names(m, i);
	if (cfg->retention_us && m->conn[i] && !stopping)
		gc_database(m, i, j->now - cfg->retention_us);
	if (m->conn[i] && !stopping)
		rollup_database(m, i, j->now);
	return NULL;
}

/* The databases are independent servers: each one's part runs in its own thread, so a cycle
 * takes the slowest database's time, not the sum (a name fill of 0.7 s, a partition drop of
 * 0.3 s at 20 million rows each). Repair, which compares them, comes after. */
static void gc_cycle(void)
{
	Maint m = {0};
	maint_connect(&m);
	int64_t now = now_wall_us();
	GcJob jobs[CFG_MAX_DATABASES];
	pthread_t t[CFG_MAX_DATABASES];
	bool started[CFG_MAX_DATABASES] = {0};
	for (int i = 0; i < cfg->ndatabases && !stopping; i++) {
		jobs[i] = (GcJob){&m, i, now};
		if (!m.conn[i])
			continue;
		started[i] = pthread_create(&t[i], NULL, gc_one, &jobs[i]) == 0;
		if (!started[i])
			gc_one(&jobs[i]);
	}
	for (int i = 0; i < cfg->ndatabases; i++)
		if (started[i])
			pthread_join(t[i], NULL);
	if (cfg->repair_lookback_us && !stopping) {
		repair_range(&m, now - cfg->repair_lookback_us, now);
		if (!stopping)
			repair_written(&m, now - cfg->repair_lookback_us);
		repair_summary(&m);
	}
	maint_close(&m);
}

int maint_gc(int argc, char **argv)
{
	bool once = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--once") != 0) {
			fprintf(stderr, "m2pg gc: usage: m2pg gc [--once]\n");
			return 2;
		}
		once = true;
	}
	catch_stop_signals();
	log_info("at=gc-start retention=%llds interval=%llds repair_lookback=%llds",
		 (long long)(cfg->retention_us / 1000000), (long long)(cfg->gc_interval_us / 1000000),
		 (long long)(cfg->repair_lookback_us / 1000000));
	while (!stopping) {
		gc_cycle();
		if (once)
			break;
		struct timespec ts = {cfg->gc_interval_us / 1000000, (cfg->gc_interval_us % 1000000) * 1000};
		while (!stopping && nanosleep(&ts, &ts) != 0)
			;
	}
	log_info("at=exit status=0");
	return 0;
}

/* ---------- migrate ---------- */

int maint_migrate(int argc, char **argv)
{
	(void)argv;
	if (argc > 0) {
		fprintf(stderr, "m2pg migrate: usage: m2pg migrate\n");
		return 2;
	}
	Maint m = {0};
	int failed = 0;
	for (int i = 0; i < cfg->ndatabases; i++) {
		char err[300], label[128], msg[512];
		cfg_db_label(cfg->database_urls[i], label, sizeof(label));
		m.conn[i] = pgs_connect(cfg->database_urls[i], cfg->connect_timeout_ms, false, err, sizeof(err));
		if (!m.conn[i]) {
			log_error("at=migrate-skip db=%d host=%s error=\"%s\"", i + 1, label, err);
			failed++;
			continue;
		}
		int64_t start = now_mono_us();
		PGresult *r = pgs_exec(&m.conn[i], "SET statement_timeout = 0", 0, NULL, NULL, NULL, false,
				       cfg->maint_timeout_ms, err, sizeof(err));
		if (r) {
			PQclear(r);
			r = pgs_exec(&m.conn[i], SCHEMA_MIGRATE_SQL, 0, NULL, NULL, NULL, false, MIGRATE_TIMEOUT_MS, err,
				     sizeof(err));
		}
		if (!r || PQntuples(r) != 1) {
			log_error("at=migrate-error db=%d host=%s error=\"%s\"", i + 1, label, r ? "no report" : err);
			if (r)
				PQclear(r);
			failed++;
			continue;
		}
		const char *did = PQgetvalue(r, 0, 0);
		log_info("at=migrate db=%d host=%s did=\"%s\" measure#m2pg.migrate.ms=%lld", i + 1, label,
			 log_quote(msg, sizeof(msg), *did ? did : "nothing: already partitioned"),
			 (long long)((now_mono_us() - start) / 1000));
		PQclear(r);
		make_partitions(&m, i, "migrate-partitions");
		if (!m.conn[i])
			failed++;
	}
	maint_close(&m);
	return failed ? 1 : 0;
}
