/* The read path.
 *
 * Rows mode (resolutions finer than an hour, or READ_AGGREGATE=0): every database streams the
 * matching rows sorted by (name, bucket, id), one at a time (libpq single-row mode). They are
 * merged as they arrive, like the merge step of a merge sort, so a metric stored in several
 * databases comes out as adjacent rows with the same id and counts once (the first database
 * in DATABASE_URLS wins if two copies differ). Each name's buckets are rolled up as its rows
 * pass, and the name is written out once its rows are over. Memory is bounded whatever the
 * range: a few thousand rows buffered per database (a database that runs ahead is paused and
 * its server blocks on its socket), one point per bucket of the name being rolled up, and one
 * chunk of JSON, written only when the client took the one before. The merge runs in slices
 * of at most PUMP_ROWS rows per pass of the loop, and the loop polls its sockets every few
 * callbacks (LOOP_CALLBACKS_PER_POLL), so /health and writes keep answering.
 *
 * Aggregate mode (hour and coarser): every database returns, per (name,
 * bucket of the resolution), the sums the rollup rules need, its row count and an
 * order-independent digest of the ids (two XORs of 64-bit hashes). Where every database that
 * answered reports the same count and digest for a group, it holds the same rows, so one
 * database's sums are the answer. The groups where they differ (a write still on its way, a
 * database that missed writes) are fetched as rows from those databases and merged row by row,
 * so the answer equals the rows-mode answer, up to the order of floating-point additions.
 * At an hour or a day, where a group is mostly one rollup row, each database returns the parts
 * of its groups unsorted (a rollup row, or the sums of rows not rolled up) and m2pg sorts and
 * adds them up (merge_aggregates); coarser groups come summed.
 *
 * Answers over 64 KiB go out in chunks, the next written only when the client has taken the
 * one before.
 *
 * Deadlines: the whole read has READ_TIMEOUT_MS. The aggregate phase gets half of it when a
 * database is slow; whoever answered by then takes part, the rest counts as not answered. */
#include "read.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfg.h"
#include "guard.h"
#include "jsonw.h"
#include "pgarr.h"
#include "query.h"
#include "rollup.h"
#include "schema.h"
#include "stats.h"
#include "tm.h"

#define STREAM_CHUNK_BYTES (64 * 1024)
/* Rows buffered per database before its stream pauses. Small: libpq makes each streamed row a
 * result of its own, about 2 KB. */
#define STREAM_BUFFER_ROWS 256
#define PUMP_ROWS 4096          /* rows merged per pass of the event loop */
/* A read first asks each database for at most this many rows as one result: most reads are
 * that small, and libpq's single-row mode costs several allocations a row (a read of 1,000
 * buckets took 1.5 times as long streamed). A database with more is asked again, streaming. */
#define PROBE_ROWS 5000
/* Rows or aggregate parts (about 700 bytes each in libpq's results) past which a read's
 * memory is worth handing back to the system once the worker is idle. */
#define TRIM_AFTER_ROWS 10000

/* One database's stream of rows in rows mode: a ring of single-row results. */
typedef struct RowStream {
	PGresult **ring; /* results of one row (streamed) or of many (a whole small answer) */
	size_t head, count;
	int pos;         /* the next row of the result at the head */
	bool started; /* delivered a row, or ended */
	bool ended;
	bool paused;
	uint64_t seen;
} RowStream;

/* A part's values, in this order: the columns of a row of sums after its name, source and
 * group. A part (SCHEMA_AGG_PARTS_SQL) sends them as one field, its rollup's vals: the row
 * count and digest as three int8, then, in its database's slice, a format byte and the rest,
 * with which row its last is (see ROLLUP_VALS_OF). */
enum { V_N, V_D0, V_D1, V_COUNT_N, V_COUNT_SUM, V_MEAN, V_MEDIAN = V_MEAN + 6, V_MIN = V_MEDIAN + 6, V_MAX, V_P95,
       V_P99, V_LAST, V_LAST_BUCKET, V_LAST_ID, PART_VALUES };
enum { AGG_NAME, AGG_SOURCE, AGG_G, AGG_VALUES, AGG_COLUMNS = AGG_VALUES + V_LAST + 1,
       AGG_PART_VALS = AGG_VALUES, AGG_PART_COLUMNS };
/* A part's vals: the digest (24 bytes), then the format byte and the values. */
#define PART_DIGEST_LEN 24
#define PART_VALS_FORMAT 1

/* Where a database's part of the values starts and ends, as parameters. */
typedef struct Slice {
	char lo[40], hi[40];
} Slice;

typedef enum { PHASE_ROWS, PHASE_AGG, PHASE_GROUP_ROWS, PHASE_ANSWER } Phase;

typedef struct ReadReq {
	Web *web;
	struct evhttp_request *req; /* NULL once answered */
	int64_t start_us;
	int64_t from_us, to_us;
	TmRes res;
	Phase phase;
	Rollup *rollup;
	int refs;
	int pending;     /* jobs of this phase not done yet */
	bool submitting;
	bool too_many;
	/* The aggregate phase asks for the parts of groups (an hour or a day), not their sums;
	 * more parts than READ_MAX_ROWS in a database asks again for the sums (parts_over). */
	bool parts, parts_over;
	/* Each database sends the values of its slice of the range (slices), or all of them
	 * (whole: since a database with a slice did not answer). */
	Slice *slices;
	bool whole;
	size_t rows_seen; /* parts and rows the read went through */
	bool agg_data_error; /* a database could not aggregate the rows (e.g. a float underflow) */
	struct event *timer;
	struct event *straggler; /* armed when only suspect databases are left to answer */
	char *regex;
	char *source_regex; /* NULL: any source */
	bool by_source;
	const ReadFormat *fmt;
	void *fmt_ctx;
	bool opened;  /* the format's opening is written */
	char from[40], to[40], limit[24], probe_limit[24];
	Buf names, lo, hi, sources; /* the group-rows statement's arrays */
	Buf key;                    /* a row's series key, by source: name, NUL, source */
	bool *ok;          /* per database: answered every phase so far */
	bool *busy;        /* per database: its job is still out */
	PGresult **agg;    /* per database: the aggregate phase's result, taken */
	/* rows mode */
	RowStream *streams;
	struct event *pump; /* runs read_pump() on the next pass of the loop */
	bool pump_ref;      /* the pump holds a reference until the answer is over */
	bool streaming;     /* the 200 and its headers are sent; the body goes in chunks */
	bool waiting_client; /* a chunk is out: the next waits until the client took it */
	bool writing;       /* the series' JSON is being written */
	bool have_series, have_last;
	size_t series_out;
	RollSeries series;
	Uuid last_id;
	int64_t last_bucket;
	Buf out;
	DbJob jobs[];
} ReadReq;

static void stream_drop(RowStream *st)
{
	for (; st->count; st->count--, st->head = (st->head + 1) % STREAM_BUFFER_ROWS)
		PQclear(st->ring[st->head]);
	st->pos = 0;
}

static void free_chunk(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* Frees the aggregate phase's results. */
static void agg_clear(ReadReq *rr)
{
	for (int i = 0; i < rr->web->ndbs; i++) {
		PQclear(rr->agg[i]); /* NULL is fine */
		rr->agg[i] = NULL;
	}
}

static void read_unref(ReadReq *rr)
{
	if (--rr->refs > 0)
		return;
	if (rr->timer)
		event_free(rr->timer);
	if (rr->straggler)
		event_free(rr->straggler);
	agg_clear(rr);
	rollup_free(rr->rollup);
	if (rr->streams) {
		for (int i = 0; i < rr->web->ndbs; i++) {
			RowStream *st = &rr->streams[i];
			rr->rows_seen += st->seen;
			stream_drop(st);
			free(st->ring);
		}
		free(rr->streams);
	}
	if (rr->pump)
		event_free(rr->pump);
	rollseries_free(&rr->series);
	buf_free(&rr->out);
	free(rr->ok);
	free(rr->busy);
	free(rr->agg);
	free(rr->slices);
	buf_free(&rr->names);
	buf_free(&rr->lo);
	buf_free(&rr->hi);
	buf_free(&rr->sources);
	buf_free(&rr->key);
	free(rr->regex);
	free(rr->source_regex);
	if (rr->fmt->free)
		rr->fmt->free(rr->fmt_ctx);
	if (rr->rows_seen >= TRIM_AFTER_ROWS)
		guard_trim_soon();
	free(rr);
}

static int answered(const ReadReq *rr)
{
	int n = 0;
	for (int i = 0; i < rr->web->ndbs; i++)
		n += rr->ok[i];
	return n;
}

static void stream_end(ReadReq *rr)
{
	struct evhttp_request *req = rr->req;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	rr->req = NULL;
	rr->web->inflight--;
	rr->web->reads_inflight--;
	if (evcon)
		guard_set_close_hook(evcon, NULL, NULL);
	reply_log(req, 200, rr->start_us);
	evhttp_send_reply_end(req); /* frees req when its client has gone */
	read_unref(rr);
}

static void stream_on_written(struct evhttp_connection *evcon, void *arg);

/* Sends b (emptied) as a chunk; last: the answer is complete. */
static void stream_send(ReadReq *rr, Buf *b, bool last)
{
	struct evbuffer *chunk = evbuffer_new();
	if (!chunk)
		fatal("at=oom");
	size_t len;
	char *p = buf_take(b, &len);
	if (evbuffer_add_reference(chunk, p, len, free_chunk, NULL) < 0)
		free(p);
	evhttp_send_reply_chunk_with_cb(rr->req, chunk, last ? NULL : stream_on_written, rr);
	evbuffer_free(chunk);
	if (last)
		stream_end(rr);
}

static void stream_on_written(struct evhttp_connection *evcon, void *arg)
{
	ReadReq *rr = arg;
	(void)evcon;
	if (!rr->req)
		return;
	rr->waiting_client = false;
	event_active(rr->pump, EV_TIMEOUT, 0);
}

/* The connection goes away mid-stream (client gone, timeout, shutdown). A request libevent
 * detached from it is ours to end (which frees it); one still attached is freed with the
 * connection. */
static void stream_on_close(void *arg)
{
	ReadReq *rr = arg;
	struct evhttp_request *req = rr->req;
	if (!req)
		return;
	rr->req = NULL;
	rr->web->inflight--;
	rr->web->reads_inflight--;
	log_info("at=request method=GET status=200 error=\"client gone mid-answer\"");
	if (!evhttp_request_get_connection(req))
		evhttp_send_reply_end(req);
	if (rr->pump) /* the pump lets the paused streams run out and lets go */
		event_active(rr->pump, EV_TIMEOUT, 0);
	read_unref(rr);
}

/* Sends the 200 and its headers; the body follows in chunks (stream_send). The caller holds a
 * reference for the stream, which stream_end() or stream_on_close() gives back. */
static void stream_start(ReadReq *rr)
{
	struct evhttp_request *req = rr->req;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (!evhttp_find_header(h, "M2pg-Databases")) {
		char dbs[32];
		snprintf(dbs, sizeof(dbs), "%d/%d", answered(rr), rr->web->ndbs);
		evhttp_add_header(h, "M2pg-Databases", dbs);
	}
	evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
	if (!(req->major > 1 || (req->major == 1 && req->minor >= 1)))
		evhttp_add_header(h, "Connection", "close"); /* no chunks: the end is the close */
	evhttp_send_reply_start(req, 200, "OK");
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	/* A chunk in one write: libevent's default of 16 KB took 4 writes and as many passes of
	 * the loop per chunk, 850 for an answer of 11 MB. */
	bufferevent_set_max_single_write(evhttp_connection_get_bufferevent(evcon), STREAM_CHUNK_BYTES);
	guard_set_close_hook(evcon, stream_on_close, rr);
	rr->streaming = true;
}

static void pump_init(ReadReq *rr);
static void pump_soon(ReadReq *rr);

/* The aggregate phases are over: the answer is written from the rollup by the pump. */
static void read_answer(ReadReq *rr)
{
	struct evhttp_request *req = rr->req;
	Web *w = rr->web;
	if (!req)
		return;
	if (rr->too_many || answered(rr) == 0) {
		w->inflight--;
		w->reads_inflight--;
		evtimer_del(rr->timer);
		rr->req = NULL;
		if (rr->too_many) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "the query matches more than %d rows in one database; narrow the name or the "
				 "time range",
				 cfg->read_max_rows);
			reply_error(req, 422, msg, NULL, -1, rr->start_us);
		} else {
			reply_error(req, 503, "no database answered the read", NULL, -1, rr->start_us);
		}
		return;
	}
	rollup_prepare(rr->rollup);
	rr->phase = PHASE_ANSWER;
	evtimer_del(rr->timer); /* the answer is known: what is left is writing it */
	evtimer_del(rr->straggler);
	pump_init(rr);
	pump_soon(rr);
}

/* One row of ROW_COLUMNS, decoded. */
typedef struct RowIn {
	Uuid id;
	bool has_id; /* rows of the original m2pg may lack an id: never merged with another */
	int64_t bucket_us;
	const char *name;
	size_t name_len;
	const char *source; /* NULL: unassigned */
	size_t source_len;
	uint8_t present;
	double v[METRIC_NSTATS];
} RowIn;

static bool decode_row(const PGresult *res, int r, RowIn *row)
{
	if (PQnfields(res) != SCHEMA_ROW_COLUMNS || PQgetisnull(res, r, SCHEMA_COL_BUCKET) ||
	    PQgetisnull(res, r, SCHEMA_COL_NAME) || PQgetlength(res, r, SCHEMA_COL_BUCKET) != 8)
		return false;
	row->has_id = !PQgetisnull(res, r, 0) && PQgetlength(res, r, 0) == 16;
	if (row->has_id)
		memcpy(row->id.b, PQgetvalue(res, r, 0), 16);
	else
		uuid_v7(&row->id, 0);
	row->bucket_us = (int64_t)pgarr_get64(PQgetvalue(res, r, 1)) + PG_EPOCH_US;
	row->name = PQgetvalue(res, r, 2);
	row->name_len = (size_t)PQgetlength(res, r, 2);
	row->source = PQgetisnull(res, r, SCHEMA_COL_SOURCE) ? NULL : PQgetvalue(res, r, SCHEMA_COL_SOURCE);
	row->source_len = row->source ? (size_t)PQgetlength(res, r, SCHEMA_COL_SOURCE) : 0;
	row->present = 0;
	for (int s = 0; s < METRIC_NSTATS; s++) {
		row->v[s] = 0;
		if (PQgetisnull(res, r, 3 + s) || PQgetlength(res, r, 3 + s) != 8)
			continue;
		row->v[s] = pgarr_double_bits(pgarr_get64(PQgetvalue(res, r, 3 + s)));
		row->present |= (uint8_t)(1u << s);
	}
	return true;
}

/* The key of the series a row belongs to: its name, or by source its name, a NUL and its
 * source (names hold no NUL, so keys sort as (name, source) with unassigned first). */
static void series_key(ReadReq *rr, const char *name, size_t name_len, const char *source, size_t source_len,
		       const char **key, size_t *len)
{
	if (!rr->by_source) {
		*key = name;
		*len = name_len;
		return;
	}
	buf_reset(&rr->key);
	buf_add(&rr->key, name, name_len);
	buf_addc(&rr->key, '\0');
	buf_add(&rr->key, source ? source : "", source_len);
	*key = rr->key.p;
	*len = rr->key.len;
}

/* Adds binary rows (ROW_COLUMNS) to the rollup; false when there are too many. */
static bool add_rows(ReadReq *rr, const PGresult *res)
{
	int n = PQntuples(res);
	if (n > cfg->read_max_rows || PQnfields(res) != SCHEMA_ROW_COLUMNS)
		return false;
	for (int r = 0; r < n; r++) {
		RowIn row;
		if (!decode_row(res, r, &row))
			continue;
		const char *key;
		size_t klen;
		series_key(rr, row.name, row.name_len, row.source, row.source_len, &key, &klen);
		if (!rollup_add(rr->rollup, &row.id, row.bucket_us, key, klen, row.present, row.v))
			return false;
	}
	return true;
}

/* ---------- rows mode: merging the databases' streams ---------- */

static int cmp_bytes(const char *a, size_t la, const char *b, size_t lb)
{
	int c = memcmp(a, b, la < lb ? la : lb);
	return c ? c : (la > lb) - (la < lb);
}

/* The order every database sends: name in byte order (COLLATE "C"), by source the source
 * (unassigned first), bucket, id (NULLs last). */
static int cmp_rows(bool by_source, const RowIn *a, const RowIn *b)
{
	int c = cmp_bytes(a->name, a->name_len, b->name, b->name_len);
	if (c)
		return c;
	if (by_source && (c = cmp_bytes(a->source ? a->source : "", a->source_len, b->source ? b->source : "",
					 b->source_len)))
		return c;
	if (a->bucket_us != b->bucket_us)
		return a->bucket_us < b->bucket_us ? -1 : 1;
	if (a->has_id != b->has_id)
		return a->has_id ? -1 : 1;
	return a->has_id ? uuid_cmp(&a->id, &b->id) : 0;
}

static void maybe_straggle(ReadReq *rr);

static void pump_fail(ReadReq *rr, int code, const char *msg);
static void pump_over(ReadReq *rr);

static void pump_soon(ReadReq *rr)
{
	if (rr->web->stopped) { /* the loop will not run again: end the answer now */
		if (rr->req)
			pump_fail(rr, 503, "shutting down");
		pump_over(rr);
		return;
	}
	event_active(rr->pump, EV_TIMEOUT, 0);
}

/* Moves past the row at the head of the stream. */
static void stream_pop(RowStream *st)
{
	if (++st->pos < PQntuples(st->ring[st->head]))
		return;
	PQclear(st->ring[st->head]);
	st->head = (st->head + 1) % STREAM_BUFFER_ROWS;
	st->count--;
	st->pos = 0;
}

/* Takes a result into the stream; false when the stream is full. */
static bool stream_push(RowStream *st, PGresult *res)
{
	if (PQntuples(res) == 0) {
		PQclear(res);
		return true;
	}
	st->ring[(st->head + st->count++) % STREAM_BUFFER_ROWS] = res;
	return st->count < STREAM_BUFFER_ROWS;
}

/* job->row: a database's next row. Buffered for the merge; a full buffer pauses the stream. */
static bool stream_row(DbJob *job, PGresult *row)
{
	ReadReq *rr = job->owner;
	int i = (int)(job - rr->jobs);
	RowStream *st = &rr->streams[i];
	if (!rr->req || !rr->ok[i] || rr->too_many) { /* the answer no longer needs it */
		PQclear(row);
		return true;
	}
	if (++st->seen > (uint64_t)cfg->read_max_rows) {
		rr->too_many = true;
		PQclear(row);
		pump_soon(rr);
		return true;
	}
	bool room = stream_push(st, row);
	if (!st->started) {
		st->started = true;
		db_mark_answered(rr->web->dbs[i]);
		maybe_straggle(rr); /* a suspect database still silent gets the straggler window */
	}
	pump_soon(rr);
	if (room)
		return true;
	st->paused = true;
	return false;
}

/* Sends what out holds as a chunk, starting the answer first if needed. */
static void pump_flush(ReadReq *rr, bool last)
{
	if (!rr->streaming) {
		rr->refs++; /* the stream's, given back by stream_end() or stream_on_close() */
		stream_start(rr);
	}
	rr->waiting_client = !last;
	stream_send(rr, &rr->out, last);
}

/* Writes the series being written until out is full; false while more is to come (the
 * client takes the chunk first). */
static bool pump_write(ReadReq *rr)
{
	if (!rr->opened) {
		rr->fmt->open(rr->fmt_ctx, &rr->out);
		rr->opened = true;
	}
	if (rr->writing && rr->fmt->series(rr->fmt_ctx, &rr->series, rr->series_out, &rr->out, STREAM_CHUNK_BYTES)) {
		rr->writing = false;
		rr->series_out++;
	}
	if (rr->out.len >= STREAM_CHUNK_BYTES) {
		pump_flush(rr, false);
		return false;
	}
	return !rr->writing;
}

/* The answer ends here, whichever way; the pump gives back its reference. */
static void pump_over(ReadReq *rr)
{
	for (int i = 0; rr->streams && i < rr->web->ndbs; i++) {
		RowStream *st = &rr->streams[i];
		stream_drop(st);
		if (st->paused) { /* let it run to its end, its rows dropped */
			st->paused = false;
			db_job_resume(rr->web->dbs[i], &rr->jobs[i]);
		}
	}
	if (rr->pump_ref) {
		rr->pump_ref = false;
		read_unref(rr);
	}
}

/* Ends the answer when the read stops early: an error status if nothing was sent yet, else the
 * connection is closed mid-answer so that the client sees an incomplete body, never a wrong
 * one. */
static void pump_fail(ReadReq *rr, int code, const char *msg)
{
	struct evhttp_request *req = rr->req;
	if (!rr->streaming) {
		rr->req = NULL;
		rr->web->inflight--;
		rr->web->reads_inflight--;
		evtimer_del(rr->timer);
		reply_error(req, code, msg, NULL, -1, rr->start_us);
		return;
	}
	log_warn("at=read-aborted error=\"%s\"", msg);
	stats_add(STATS_READS_ABORTED, 1);
	evhttp_connection_free(evhttp_request_get_connection(req)); /* runs stream_on_close */
}

/* Merges up to PUMP_ROWS rows of the databases' streams; false when it must wait (for a row,
 * the client, or the next pass of the loop), true once every stream ended. */
static bool pump_merge(ReadReq *rr)
{
	Web *w = rr->web;
	for (int budget = PUMP_ROWS; budget > 0; budget--) {
		/* Every live stream needs a row in hand (or its end) before the smallest is known. */
		int best = -1;
		RowIn head[CFG_MAX_DATABASES];
		for (int i = 0; i < w->ndbs; i++) {
			RowStream *st = &rr->streams[i];
			if (!rr->ok[i])
				continue;
			if (st->count == 0) {
				if (st->ended)
					continue;
				if (st->paused) {
					st->paused = false;
					db_job_resume(w->dbs[i], &rr->jobs[i]);
				}
				return false; /* its next row (or end) pumps again */
			}
			if (!decode_row(st->ring[st->head], st->pos, &head[i])) {
				stream_pop(st);
				i--; /* look at its next row */
				continue;
			}
			if (best < 0 || cmp_rows(rr->by_source, &head[i], &head[best]) < 0)
				best = i;
		}
		if (best < 0)
			return true; /* every stream ended */
		RowIn *row = &head[best];
		RowStream *st = &rr->streams[best];
		const char *key;
		size_t klen;
		series_key(rr, row->name, row->name_len, row->source, row->source_len, &key, &klen);
		bool same_series = rr->have_series && cmp_bytes(key, klen, rr->series.name.p, rr->series.name.len) == 0;
		bool dup = same_series && rr->have_last && row->has_id && uuid_cmp(&row->id, &rr->last_id) == 0 &&
			   row->bucket_us == rr->last_bucket;
		if (!dup) {
			if (!same_series && rr->have_series) {
				/* The series before is complete: write it out before this row starts the next. */
				rollseries_end(&rr->series);
				rr->have_series = false;
				rr->writing = true;
				if (!pump_write(rr))
					return false; /* the row stays at the head of its stream */
			}
			if (!same_series) {
				rollseries_begin(&rr->series, key, klen);
				rr->have_series = true;
			}
			rollseries_add(&rr->series, &row->id, row->bucket_us, row->present, row->v);
			rr->have_last = row->has_id;
			rr->last_id = row->id;
			rr->last_bucket = row->bucket_us;
		}
		stream_pop(st);
	}
	pump_soon(rr); /* a slice is done: let the loop serve others */
	return false;
}

static void read_pump(evutil_socket_t fd, short what, void *arg)
{
	ReadReq *rr = arg;
	Web *w = rr->web;
	(void)fd;
	(void)what;
	if (!rr->req) {
		pump_over(rr);
		return;
	}
	if (rr->waiting_client)
		return;
	if (rr->too_many) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "the query matches more than %d rows in one database; narrow the name or the time range",
			 cfg->read_max_rows);
		pump_fail(rr, 422, msg);
		pump_over(rr);
		return;
	}
	if (!pump_write(rr))
		return;
	if (rr->phase == PHASE_ANSWER) { /* series the rollup holds, one at a time */
		for (;;) {
			if (!rollup_next_series(rr->rollup, &rr->series))
				break;
			rr->writing = true;
			if (!pump_write(rr))
				return;
		}
	} else {
		if (!pump_merge(rr))
			return;
		/* Every stream ended: the last series, then the end of the answer. */
		if (rr->have_series) {
			rollseries_end(&rr->series);
			rr->have_series = false;
			rr->writing = true;
			if (!pump_write(rr))
				return;
		}
	}
	if (answered(rr) == 0) {
		pump_fail(rr, 503, "no database answered the read");
		pump_over(rr);
		return;
	}
	const char *bad = rr->fmt->close(rr->fmt_ctx, &rr->out, answered(rr), w->ndbs);
	if (bad) {
		pump_fail(rr, 400, bad);
		pump_over(rr);
		return;
	}
	if (rr->streaming) {
		pump_flush(rr, true);
	} else { /* small: one reply with its length */
		struct evhttp_request *req = rr->req;
		rr->req = NULL;
		w->inflight--;
		w->reads_inflight--;
		evtimer_del(rr->timer);
		char dbs[32];
		snprintf(dbs, sizeof(dbs), "%d/%d", answered(rr), w->ndbs);
		evhttp_add_header(evhttp_request_get_output_headers(req), "M2pg-Databases", dbs);
		reply_json(req, 200, &rr->out, rr->start_us);
	}
	pump_over(rr);
}

/* One part's values: pointers into its database's result. */
typedef struct PartVals {
	const char *v[PART_VALUES];
	int32_t len[PART_VALUES]; /* a NULL has length -1 or 0: not the 8 or 16 of a value */
} PartVals;

/* Whether a part's values came: outside its database's slice it sends only its row count and
 * digest. */
static bool part_has_vals(const PGresult *res, int r)
{
	return PQnfields(res) != AGG_PART_COLUMNS || PQgetlength(res, r, AGG_PART_VALS) > PART_DIGEST_LEN + 1;
}

/* A part's row count and digests (V_N to V_D1); false when they are not there. A 25th byte
 * of 1 and nothing after makes the part a day's digest (see PartRef.span). */
static bool part_digest(const PGresult *res, int r, PartVals *pv)
{
	if (PQnfields(res) != AGG_PART_COLUMNS) {
		for (int k = V_N; k <= V_D1; k++) {
			pv->v[k] = PQgetvalue(res, r, AGG_VALUES + k);
			pv->len[k] = PQgetlength(res, r, AGG_VALUES + k);
		}
		return true;
	}
	int len = PQgetlength(res, r, AGG_PART_VALS);
	const char *d = PQgetvalue(res, r, AGG_PART_VALS);
	if (len < PART_DIGEST_LEN || (len == PART_DIGEST_LEN + 1 && d[PART_DIGEST_LEN] != 1))
		return false;
	for (int k = V_N; k <= V_D1; k++) {
		pv->v[k] = d + 8 * k;
		pv->len[k] = 8;
	}
	return true;
}

/* A part's values; false when they are not there or not in the format this m2pg reads. */
static bool part_vals(const PGresult *res, int r, PartVals *pv)
{
	/* The values after V_D1: each 8 bytes but the last's id. */
	static const uint8_t widths[PART_VALUES - V_COUNT_N] = {
		8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 16};
	if (!part_digest(res, r, pv))
		return false;
	if (PQnfields(res) != AGG_PART_COLUMNS) {
		for (int k = V_COUNT_N; k <= V_LAST; k++) {
			pv->v[k] = PQgetvalue(res, r, AGG_VALUES + k);
			pv->len[k] = PQgetlength(res, r, AGG_VALUES + k);
		}
		pv->len[V_LAST_BUCKET] = pv->len[V_LAST_ID] = -1;
		return true;
	}
	size_t len = (size_t)PQgetlength(res, r, AGG_PART_VALS);
	const char *d = PQgetvalue(res, r, AGG_PART_VALS);
	if (len <= PART_DIGEST_LEN + 1 || d[PART_DIGEST_LEN] != PART_VALS_FORMAT)
		return false;
	return pgarr_flagged(d + PART_DIGEST_LEN + 1, len - PART_DIGEST_LEN - 1, PART_VALUES - V_COUNT_N, widths,
			     pv->v + V_COUNT_N, pv->len + V_COUNT_N);
}

static int64_t pv_i64(const PartVals *pv, int k)
{
	return pv->len[k] == 8 ? (int64_t)pgarr_get64(pv->v[k]) : 0;
}

static bool pv_f64(const PartVals *pv, int k, double *out)
{
	if (pv->len[k] != 8)
		return false;
	*out = pgarr_double_bits(pgarr_get64(pv->v[k]));
	return true;
}

static void agg_to_acc(const PartVals *pv, RollAcc *acc)
{
	memset(acc, 0, sizeof(*acc));
	acc->count_n = (uint32_t)pv_i64(pv, V_COUNT_N);
	pv_f64(pv, V_COUNT_SUM, &acc->count_sum);
	for (int k = 0; k < 2; k++) {
		int c = k == 0 ? V_MEAN : V_MEDIAN;
		RollMean *m = &acc->avg[k];
		m->n = (uint32_t)pv_i64(pv, c);
		pv_f64(pv, c + 1, &m->single);
		pv_f64(pv, c + 2, &m->wsum);
		pv_f64(pv, c + 3, &m->wcount);
		m->unweighted = (uint32_t)pv_i64(pv, c + 4);
		pv_f64(pv, c + 5, &m->plain);
	}
	for (int k = 0; k < 4; k++)
		if (pv_f64(pv, V_MIN + k, &acc->ext[k]))
			acc->ext_present |= (uint8_t)(1u << k);
	acc->has_last = pv_f64(pv, V_LAST, &acc->last);
	if (acc->has_last) {
		acc->last_bucket_us = pv_i64(pv, V_LAST_BUCKET);
		if (pv->len[V_LAST_ID] == 16)
			memcpy(acc->last_id.b, pv->v[V_LAST_ID], 16);
	}
}

static int cmp_col(const PGresult *a, int ra, const PGresult *b, int rb, int col)
{
	/* NULL (an unassigned source) sorts first, as the databases send it. */
	return cmp_bytes(PQgetvalue(a, ra, col), (size_t)PQgetlength(a, ra, col), PQgetvalue(b, rb, col),
			 (size_t)PQgetlength(b, rb, col));
}

/* One part of a group in one database's aggregate: a row of its answer. The parts of all
 * databases are sorted together by group (series, then group of the resolution), then
 * database. A series is numbered by the rollup, so that sorting compares integers: by name,
 * 100 names x 14 days of hours spent 13% of the read in memcmp. */
typedef struct PartRef {
	uint32_t series;
	int32_t row;
	int64_t g;
	int db;
	bool vals;         /* its values came; else its row count and digest alone */
	bool span;         /* at an hour: the digest of the UTC day from g, outside the database's slice */
	int64_t n, d0, d1; /* its row count and id digest */
} PartRef;

/* What the parts are sorted by: 16 bytes, which qsort moves itself, where a PartRef (48) it
 * sorts through pointers. idx is the part's place among all, so that ties keep the order
 * the parts were added in: by database. */
typedef struct PartKey {
	uint32_t series;
	uint32_t idx;
	int64_t g;
} PartKey;

static int cmp_keys(const void *pa, const void *pb)
{
	const PartKey *a = pa, *b = pb;
	if (a->series != b->series)
		return a->series < b->series ? -1 : 1;
	if (a->g != b->g)
		return a->g < b->g ? -1 : 1;
	return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Every answering database's parts, sorted by group then database; NULL (and 0) when none. */
static PartRef *sort_parts(ReadReq *rr, size_t *count)
{
	size_t n = 0;
	for (int i = 0; i < rr->web->ndbs; i++)
		if (rr->ok[i] && rr->agg[i])
			n += (size_t)PQntuples(rr->agg[i]);
	*count = 0;
	if (n == 0)
		return NULL;
	PartRef *refs = malloc(n * sizeof(*refs));
	if (!refs)
		fatal("at=oom");
	for (int i = 0; i < rr->web->ndbs; i++) {
		if (!rr->ok[i] || !rr->agg[i])
			continue;
		const PGresult *res = rr->agg[i];
		for (int r = 0, nr = PQntuples(res); r < nr; r++) {
			if (PQgetisnull(res, r, AGG_NAME) || PQgetlength(res, r, AGG_G) != 8)
				continue;
			bool vals = part_has_vals(res, r);
			PartVals pv;
			if ((!vals && rr->whole) || !part_digest(res, r, &pv))
				continue; /* as if it were not there: its group reads rows */
			bool span = PQnfields(res) == AGG_PART_COLUMNS &&
				    PQgetlength(res, r, AGG_PART_VALS) == PART_DIGEST_LEN + 1;
			if (span && (vals || rr->res != TM_HOUR))
				continue;
			bool has_source = !PQgetisnull(res, r, AGG_SOURCE);
			const char *key;
			size_t klen;
			series_key(rr, PQgetvalue(res, r, AGG_NAME), (size_t)PQgetlength(res, r, AGG_NAME),
				   has_source ? PQgetvalue(res, r, AGG_SOURCE) : NULL,
				   has_source ? (size_t)PQgetlength(res, r, AGG_SOURCE) : 0, &key, &klen);
			PartRef *p = &refs[(*count)++];
			p->series = rollup_series(rr->rollup, key, klen);
			p->row = r;
			p->g = (int64_t)pgarr_get64(PQgetvalue(res, r, AGG_G));
			p->db = i;
			p->vals = vals;
			p->span = span;
			p->n = pv_i64(&pv, V_N);
			p->d0 = pv_i64(&pv, V_D0);
			p->d1 = pv_i64(&pv, V_D1);
		}
	}
	if (*count > 1) {
		PartKey *keys = malloc(*count * sizeof(*keys));
		PartRef *sorted = malloc(*count * sizeof(*sorted));
		if (!keys || !sorted)
			fatal("at=oom");
		for (size_t k = 0; k < *count; k++)
			keys[k] = (PartKey){refs[k].series, (uint32_t)k, refs[k].g};
		qsort(keys, *count, sizeof(*keys), cmp_keys);
		for (size_t k = 0; k < *count; k++)
			sorted[k] = refs[keys[k].idx];
		free(keys);
		free(refs);
		refs = sorted;
	}
	return refs;
}

static void submit_phase(ReadReq *rr, Phase phase);

/* The UTC day of a time in PostgreSQL's microseconds (its epoch is a midnight). */
static int64_t pg_day(int64_t pg_us)
{
	const int64_t day = INT64_C(86400000000);
	return pg_us >= 0 ? pg_us / day : -((-pg_us + day - 1) / day);
}

/* Walks the databases' aggregates group by group (a group: one row of each database, or by
 * parts the rows of one name, source and group). A group every answering database has with
 * the same count and digest is final; any other goes to the group-rows phase, unless
 * RETENTION has removed its rows (its rollups are all that is left): then the database whose
 * rollups hold the most rows answers for it. */
static void merge_aggregates(ReadReq *rr)
{
	int ndbs = rr->web->ndbs;
	uint32_t ndiff = 0;
	int64_t rows_kept_from = cfg->retention_us ? now_wall_us() - cfg->retention_us : INT64_MIN;
	pgarr_begin(&rr->names, PGARR_OID_TEXT);
	pgarr_begin(&rr->lo, PGARR_OID_TIMESTAMPTZ);
	pgarr_begin(&rr->hi, PGARR_OID_TIMESTAMPTZ);
	pgarr_begin(&rr->sources, PGARR_OID_TEXT);
	bool null_source = false, need_values = false;
	size_t nparts;
	PartRef *parts = sort_parts(rr, &nparts);
	size_t day_end = 0; /* parts[..day_end): the series' UTC days judged so far */
	bool by_day = false; /* the day of parts[i] has a database's digest of the whole day */
	for (size_t i = 0, j; i < nparts; i = j) {
		if (i >= day_end) {
			/* At an hour, a database sends a day's digest for whole days outside its slice.
			 * Such a day agrees when every database's parts of it add up to the same
			 * count and digest; its hours are then final, and if it differs every
			 * database is asked for every hour (whole). */
			int64_t day = pg_day(parts[i].g);
			int64_t n[CFG_MAX_DATABASES] = {0}, d0[CFG_MAX_DATABASES] = {0}, d1[CFG_MAX_DATABASES] = {0};
			bool has[CFG_MAX_DATABASES] = {false};
			by_day = false;
			for (day_end = i; day_end < nparts && parts[day_end].series == parts[i].series &&
					  pg_day(parts[day_end].g) == day;
			     day_end++) {
				const PartRef *p = &parts[day_end];
				by_day |= p->span;
				has[p->db] = true;
				n[p->db] += p->n;
				d0[p->db] ^= p->d0;
				d1[p->db] ^= p->d1;
			}
			int ref = parts[i].db;
			for (int d = 0; by_day && d < ndbs; d++)
				if (rr->ok[d] && !(has[d] && n[d] == n[ref] && d0[d] == d0[ref] && d1[d] == d1[ref]))
					need_values = true;
			if (need_values)
				break;
		}
		int64_t n[CFG_MAX_DATABASES] = {0}, d0[CFG_MAX_DATABASES] = {0}, d1[CFG_MAX_DATABASES] = {0};
		bool has[CFG_MAX_DATABASES] = {false}, lacks[CFG_MAX_DATABASES] = {false};
		const PartRef *first = NULL;
		for (j = i; j < nparts && parts[j].series == parts[i].series && parts[j].g == parts[i].g; j++) {
			int d = parts[j].db;
			if (parts[j].span)
				continue;
			if (!first)
				first = &parts[j];
			has[d] = true;
			lacks[d] |= !parts[j].vals;
			n[d] += parts[j].n;
			d0[d] ^= parts[j].d0;
			d1[d] ^= parts[j].d1;
		}
		if (!first)
			continue; /* a day's digest alone: the day agreed, and nobody has this hour */
		int use = first->db, most = first->db;
		bool agree = true;
		for (int d = 0; d < ndbs; d++) {
			if (!rr->ok[d])
				continue;
			agree &= has[d] && n[d] == n[use] && d0[d] == d0[use] && d1[d] == d1[use];
			if (n[d] > n[most])
				most = d;
		}
		int64_t g = first->g + PG_EPOCH_US;
		int64_t hi = tm_next(g, rr->res) - 1;
		if (!agree && hi < rows_kept_from) {
			agree = true;
			use = most;
		}
		if (by_day) { /* the day agreed: the database that sent this hour's values answers */
			agree = true;
			for (use = 0; use < ndbs && !(has[use] && !lacks[use]); use++)
				;
		}
		if (agree && !by_day) {
			/* A database that agrees holds the same rows: the first that sent the group's
			 * values answers for it. */
			int ref = use;
			for (use = 0; use < ndbs; use++)
				if (has[use] && !lacks[use] && n[use] == n[ref] && d0[use] == d0[ref] && d1[use] == d1[ref])
					break;
		}
		if (agree) {
			if (use == ndbs) {
				need_values = true;
				break;
			}
			RollAcc acc = {0};
			bool decoded = true;
			for (size_t k = i; k < j && decoded; k++) {
				if (parts[k].db != use || parts[k].span)
					continue;
				PartVals pv;
				RollAcc part;
				if (!(decoded = part_vals(rr->agg[use], parts[k].row, &pv)))
					break;
				agg_to_acc(&pv, &part);
				rollup_acc_merge(&acc, &part);
			}
			if (decoded) {
				if (!rollup_add_group_of(rr->rollup, first->series, g, &acc)) {
					rr->too_many = true;
					break;
				}
				continue;
			}
			/* Values that are not in the format this m2pg reads: the group's rows answer. */
		}
		const PGresult *fr = rr->agg[first->db];
		int64_t lo = g > rr->from_us ? g : rr->from_us;
		pgarr_add_text(&rr->names, PQgetvalue(fr, first->row, AGG_NAME), (size_t)PQgetlength(fr, first->row, AGG_NAME));
		pgarr_add_timestamptz(&rr->lo, lo);
		pgarr_add_timestamptz(&rr->hi, hi < rr->to_us ? hi : rr->to_us);
		if (rr->by_source && !PQgetisnull(fr, first->row, AGG_SOURCE)) {
			pgarr_add_text(&rr->sources, PQgetvalue(fr, first->row, AGG_SOURCE),
				       (size_t)PQgetlength(fr, first->row, AGG_SOURCE));
		} else {
			pgarr_put32(&rr->sources, UINT32_MAX); /* NULL */
			null_source = true;
		}
		ndiff++;
	}
	free(parts);
	rr->rows_seen += nparts;
	if (need_values && !rr->too_many) {
		/* A database with a slice did not answer it: ask again, each for all values. */
		log_info("at=read-values-missing fallback=whole");
		agg_clear(rr);
		rollup_free(rr->rollup);
		rr->rollup = rollup_new(rr->res, (size_t)cfg->read_max_rows * (size_t)ndbs);
		rr->whole = true;
		submit_phase(rr, PHASE_AGG);
		return;
	}
	pgarr_end(&rr->names, ndiff, false);
	pgarr_end(&rr->lo, ndiff, false);
	pgarr_end(&rr->hi, ndiff, false);
	pgarr_end(&rr->sources, ndiff, null_source);
	agg_clear(rr);
	if (ndiff > 0 && !rr->too_many) {
		log_debug("at=read-groups-differ groups=%u", ndiff);
		submit_phase(rr, PHASE_GROUP_ROWS);
		return;
	}
	read_answer(rr);
}

/* Every job of the phase is done, or the phase ran out of time. */
static void rows_mode_init(ReadReq *rr);

static void phase_done(ReadReq *rr)
{
	if (!rr->req)
		return;
	if (rr->phase == PHASE_AGG && rr->agg_data_error && !rr->too_many) {
		for (int i = 0; i < rr->web->ndbs; i++)
			rr->ok[i] = !rr->busy[i];
		agg_clear(rr);
		rows_mode_init(rr);
		submit_phase(rr, PHASE_ROWS);
		return;
	}
	if (rr->phase == PHASE_AGG && rr->parts_over && !rr->too_many) {
		/* More parts than groups may be allowed: ask for the groups' sums. */
		log_debug("at=read-parts-over-limit fallback=sums");
		agg_clear(rr);
		rr->parts = rr->parts_over = false;
		submit_phase(rr, PHASE_AGG);
		return;
	}
	if (rr->phase == PHASE_AGG && !rr->too_many && answered(rr) > 0)
		merge_aggregates(rr);
	else
		read_answer(rr);
}

/* Some database answered this phase and every one still out is suspect: wait for those at
 * most STRAGGLER_MS more, not the whole timeout. */
static void maybe_straggle(ReadReq *rr)
{
	bool some_answered = false;
	for (int i = 0; i < rr->web->ndbs; i++) {
		/* Streamed rows: a database that sent its first row is answering. */
		bool started = rr->phase == PHASE_ROWS && rr->streams[i].started;
		if (rr->busy[i] && !started && db_health(rr->web->dbs[i]) == DB_UP)
			return;
		some_answered |= rr->ok[i] && (!rr->busy[i] || started);
	}
	if (!some_answered || evtimer_pending(rr->straggler, NULL))
		return;
	struct timeval tv = {cfg->straggler_ms / 1000, (cfg->straggler_ms % 1000) * 1000};
	evtimer_add(rr->straggler, &tv);
}

static void read_job_done(DbJob *job, DbOutcome *out)
{
	ReadReq *rr = job->owner;
	int i = (int)(job - rr->jobs);
	rr->busy[i] = false;
	/* A database already counted out (its phase timed out) answers too late: ignore it. */
	if (rr->req && rr->ok[i] && rr->phase == PHASE_ROWS && (out->ok || !out->client_fault)) {
		/* Streamed: the rows came through stream_row(); this is the end of them. */
		rr->pending--;
		RowStream *st = &rr->streams[i];
		int probe_max = cfg->read_max_rows < PROBE_ROWS ? cfg->read_max_rows : PROBE_ROWS;
		if (out->ok && !job->row && PQntuples(out->res) > probe_max) {
			if (cfg->read_max_rows <= PROBE_ROWS) {
				rr->too_many = true;
			} else { /* more than a small answer: ask again, streaming */
				job->row = stream_row;
				job->params[3] = rr->limit;
				rr->refs++;
				rr->pending++;
				rr->busy[i] = true;
				int64_t left_us = rr->start_us + (int64_t)cfg->read_timeout_ms * 1000 - now_mono_us();
				if (!db_submit(rr->web->dbs[i], job, left_us > 1000 ? (int)(left_us / 1000) : 1)) {
					rr->refs--;
					rr->pending--;
					rr->busy[i] = false;
					rr->ok[i] = false;
				}
			}
		} else if (out->ok) {
			db_mark_answered(rr->web->dbs[i]);
			if (!job->row) { /* the whole answer at once: the stream of one result */
				stream_push(st, out->res);
				out->res = NULL; /* taken */
			}
			st->ended = st->started = true;
		} else {
			if (st->started)
				log_warn("at=read-stream-failed db=%d rows=%llu error=\"%s\"", i + 1,
					 (unsigned long long)st->seen, out->error ? out->error : "");
			rr->ok[i] = false;
			stream_drop(st);
		}
		maybe_straggle(rr);
		pump_soon(rr);
	} else if (rr->req && rr->ok[i]) {
		rr->pending--;
		if (out->ok)
			db_mark_answered(rr->web->dbs[i]);
		if (out->ok) {
			if (rr->phase == PHASE_AGG) {
				rr->agg[i] = out->res; /* taken */
				out->res = NULL;
				if (PQnfields(rr->agg[i]) != (rr->parts ? AGG_PART_COLUMNS : AGG_COLUMNS))
					rr->too_many = true;
				else if (PQntuples(rr->agg[i]) > cfg->read_max_rows)
					*(rr->parts ? &rr->parts_over : &rr->too_many) = true;
			} else {
				rollup_set_source(rr->rollup, (unsigned)i);
				rr->rows_seen += (size_t)PQntuples(out->res);
				rr->too_many |= !add_rows(rr, out->res);
			}
		} else if (out->client_fault) {
			struct evhttp_request *req = rr->req;
			rr->req = NULL;
			rr->web->inflight--;
			rr->web->reads_inflight--;
			evtimer_del(rr->timer);
			char msg[300];
			snprintf(msg, sizeof(msg), "invalid query: %s", out->error);
			/* Both regexes passed query_regex_check(); should PostgreSQL still refuse one, its
			 * message does not say which. */
			bool regex = strstr(out->error, "regular expression") != NULL;
			reply_error(req, 400, msg, regex && !rr->source_regex ? "name" : NULL, -1, rr->start_us);
			if (rr->pump)
				pump_soon(rr); /* it gives its reference back */
		} else {
			/* Rows loaded without m2pg may hold values whose products underflow: such a
			 * read is answered from rows instead, which never multiplies in SQL. */
			if (rr->phase == PHASE_AGG && strncmp(out->sqlstate, "22", 2) == 0) {
				log_warn("at=read-agg-failed db=%d sqlstate=%s error=\"%s\" fallback=rows", i + 1,
					 out->sqlstate, out->error ? out->error : "");
				rr->agg_data_error = true;
			}
			rr->ok[i] = false;
		}
		if (rr->req && !rr->submitting && rr->pending == 0)
			phase_done(rr);
		else if (rr->req && !rr->submitting)
			maybe_straggle(rr);
	}
	read_unref(rr);
}

static void read_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	ReadReq *rr = arg;
	(void)fd;
	(void)what;
	/* Whoever has not answered this phase is out, and suspect from now on. */
	evtimer_del(rr->straggler);
	if (rr->phase == PHASE_ROWS) {
		/* A stream under way goes on: its deadline is its connection's (the janitor). */
		for (int i = 0; i < rr->web->ndbs; i++) {
			if (rr->busy[i] && rr->ok[i] && !rr->streams[i].started) {
				rr->ok[i] = false;
				db_mark_suspect(rr->web->dbs[i]);
			}
		}
		pump_soon(rr);
		return;
	}
	for (int i = 0; i < rr->web->ndbs; i++) {
		if (rr->busy[i]) {
			rr->ok[i] = false;
			db_mark_suspect(rr->web->dbs[i]);
		}
	}
	rr->pending = 0;
	int64_t left = rr->start_us + (int64_t)cfg->read_timeout_ms * 1000 - now_mono_us();
	if (rr->phase == PHASE_AGG && left > 0) {
		struct timeval tv = {left / 1000000, left % 1000000};
		evtimer_add(rr->timer, &tv);
	}
	phase_done(rr);
}

/* Where slice m of k starts: a group's start; at an hour the nearest UTC midnight, so that
 * the others send whole days as one digest each. */
static int64_t slice_bound(const ReadReq *rr, int m, int k)
{
	int64_t at = rr->from_us + (rr->to_us - rr->from_us) / k * m;
	if (rr->res == TM_HOUR)
		return tm_truncate(at + INT64_C(43200000000), TM_DAY);
	return tm_truncate(at, rr->res);
}

/* Gives each database of the aggregate phase the slice of the range whose values it sends:
 * the databases that are up share the range, in whole groups; a suspect one sends digests
 * only (the straggler window may count it out), unless none is up. All of them send all
 * values once a database with a slice did not answer it (whole). */
static void slice_range(ReadReq *rr)
{
	Web *w = rr->web;
	int holders[CFG_MAX_DATABASES], k = 0;
	for (int pass = 0; pass < 2 && k == 0; pass++)
		for (int i = 0; i < w->ndbs; i++) {
			snprintf(rr->slices[i].lo, sizeof(rr->slices[i].lo), "infinity");
			snprintf(rr->slices[i].hi, sizeof(rr->slices[i].hi), "infinity");
			if (rr->ok[i] && !rr->busy[i] && (pass == 1 || rr->whole || db_health(w->dbs[i]) == DB_UP))
				holders[k++] = i;
		}
	for (int m = 0; m < k; m++) {
		Slice *sl = &rr->slices[holders[m]];
		if (m == 0 || rr->whole)
			snprintf(sl->lo, sizeof(sl->lo), "-infinity");
		else
			tm_format_pg(slice_bound(rr, m, k), sl->lo);
		if (m + 1 < k && !rr->whole)
			tm_format_pg(slice_bound(rr, m + 1, k), sl->hi);
	}
}

static void submit_phase(ReadReq *rr, Phase phase)
{
	Web *w = rr->web;
	if (w->stopped) { /* shutting down: the loop will not run again */
		read_answer(rr);
		return;
	}
	rr->phase = phase;
	rr->submitting = true;
	evtimer_del(rr->straggler);
	int64_t left_us = rr->start_us + (int64_t)cfg->read_timeout_ms * 1000 - now_mono_us();
	int timeout_ms = left_us > 1000 ? (int)(left_us / 1000) : 1;
	/* The aggregate phase leaves half the time to fetch the rows of groups that differ. */
	int64_t phase_us = phase == PHASE_AGG ? left_us / 2 : left_us;
	if (phase_us < 1000)
		phase_us = 1000;
	struct timeval tv = {phase_us / 1000000, phase_us % 1000000};
	evtimer_add(rr->timer, &tv);
	if (phase == PHASE_AGG && rr->parts)
		slice_range(rr);
	for (int i = 0; i < w->ndbs; i++) {
		if (!rr->ok[i] || rr->busy[i])
			continue;
		DbJob *j = &rr->jobs[i];
		memset(j, 0, sizeof(*j));
		j->kind = DB_JOB_QUERY;
		j->done = read_job_done;
		j->owner = rr;
		j->params[0] = rr->regex;
		j->params[1] = rr->from;
		j->params[2] = rr->to;
		j->params[3] = rr->limit;
		j->params[4] = rr->source_regex; /* NULL: any source */
		j->nparams = 5;
		j->sql = rr->by_source ? SCHEMA_ROWS_BY_SOURCE_SQL : SCHEMA_ROWS_SQL;
		if (phase == PHASE_ROWS)
			j->params[3] = rr->probe_limit; /* a small answer comes whole; see PROBE_ROWS */
		if (phase == PHASE_AGG) {
			j->sql = rr->parts ? SCHEMA_AGG_PARTS_SQL : rr->by_source ? SCHEMA_AGG_BY_SOURCE_SQL : SCHEMA_AGG_SQL;
			j->params[4] = tm_res_unit(rr->res);
			j->params[5] = rr->source_regex;
			j->nparams = 6;
			if (rr->parts) {
				j->params[6] = rr->slices[i].lo;
				j->params[7] = rr->slices[i].hi;
				j->nparams = 8;
			}
		} else if (phase == PHASE_GROUP_ROWS) {
			j->sql = rr->by_source ? SCHEMA_GROUP_ROWS_BY_SOURCE_SQL : SCHEMA_GROUP_ROWS_SQL;
			j->params[0] = rr->names.p;
			j->params[1] = rr->lo.p;
			j->params[2] = rr->hi.p;
			j->lengths[0] = (int)rr->names.len;
			j->lengths[1] = (int)rr->lo.len;
			j->lengths[2] = (int)rr->hi.len;
			j->formats[0] = j->formats[1] = j->formats[2] = 1;
			if (rr->by_source) {
				j->params[4] = rr->sources.p;
				j->lengths[4] = (int)rr->sources.len;
				j->formats[4] = 1;
			}
		}
		rr->refs++;
		rr->pending++;
		rr->busy[i] = true;
		if (!db_submit(w->dbs[i], j, timeout_ms)) {
			rr->refs--;
			rr->pending--;
			rr->busy[i] = false;
			rr->ok[i] = false;
		}
	}
	rr->submitting = false;
	if (phase == PHASE_ROWS)
		pump_soon(rr); /* databases that refused the job are out: the pump sees who is left */
	else if (rr->req && rr->pending == 0)
		phase_done(rr);
	else if (rr->req)
		maybe_straggle(rr);
}

/* Sets the answer's writer up; the pump holds a reference until the answer is over. */
static void pump_init(ReadReq *rr)
{
	if (rr->pump)
		return;
	if (!(rr->pump = event_new(rr->web->base, -1, 0, read_pump, rr)))
		fatal("at=oom");
	rollseries_init(&rr->series, rr->res);
	rr->refs++;
	rr->pump_ref = true;
}

/* Sets a read up to stream rows. */
static void rows_mode_init(ReadReq *rr)
{
	size_t n = (size_t)rr->web->ndbs;
	if (!(rr->streams = calloc(n, sizeof(RowStream))))
		fatal("at=oom");
	for (size_t i = 0; i < n; i++)
		if (!(rr->streams[i].ring = malloc(STREAM_BUFFER_ROWS * sizeof(PGresult *))))
			fatal("at=oom");
	pump_init(rr);
}

void read_series(Web *w, struct evhttp_request *req, int64_t start_us, const ReadSpec *spec,
		 const ReadFormat *fmt, void *fmt_ctx)
{
	if (w->reads_inflight >= cfg->read_concurrency) {
		/* Each read holds memory and database time: past the cap, ask the client to come back
		 * rather than slow every read down. */
		if (fmt->free)
			fmt->free(fmt_ctx);
		stats_add(STATS_READS_REFUSED, 1);
		Buf b = {0};
		jsonw_error(&b, "too many reads in flight (READ_CONCURRENCY); retry shortly", NULL, -1);
		reply_503(req, &b, 1, start_us);
		return;
	}
	size_t n = (size_t)w->ndbs;
	ReadReq *rr = calloc(1, sizeof(*rr) + n * sizeof(DbJob));
	if (!rr || !(rr->regex = strdup(spec->name_regex)) ||
	    (spec->source_regex && !(rr->source_regex = strdup(spec->source_regex))) ||
	    !(rr->ok = calloc(n, sizeof(bool))) || !(rr->busy = calloc(n, sizeof(bool))) ||
	    !(rr->agg = calloc(n, sizeof(PGresult *))) || !(rr->slices = calloc(n, sizeof(Slice))))
		fatal("at=oom");
	rr->web = w;
	rr->req = req;
	rr->start_us = start_us;
	rr->from_us = spec->from_us;
	/* A whole second as the end takes in that second: a read to 23:59:59 holds a bucket at
	 * 23:59:59.5, and ends where the day's rollup does, which it can then use. */
	rr->to_us = spec->to_us % 1000000 == 0 && spec->to_us < TM_MAX_US ? spec->to_us + 999999 : spec->to_us;
	rr->res = spec->res;
	rr->by_source = spec->by_source;
	rr->fmt = fmt;
	rr->fmt_ctx = fmt_ctx;
	rr->rollup = rollup_new(spec->res, (size_t)cfg->read_max_rows * n);
	rr->refs = 1;
	for (size_t i = 0; i < n; i++)
		rr->ok[i] = true;
	tm_format_pg(spec->from_us, rr->from);
	tm_format_pg(rr->to_us, rr->to);
	snprintf(rr->limit, sizeof(rr->limit), "%d", cfg->read_max_rows + 1);
	snprintf(rr->probe_limit, sizeof(rr->probe_limit), "%d",
		 (cfg->read_max_rows < PROBE_ROWS ? cfg->read_max_rows : PROBE_ROWS) + 1);
	rr->timer = evtimer_new(w->base, read_on_timeout, rr);
	rr->straggler = evtimer_new(w->base, read_on_timeout, rr);
	if (!rr->timer || !rr->straggler)
		fatal("at=oom");
	w->inflight++;
	w->reads_inflight++;
	/* At minute resolution and finer a group rarely holds more than a row or two (l2met sends one
	 * summary a minute), where the aggregate costs the database more than sending the rows. */
	Phase phase = cfg->read_aggregate && spec->res >= TM_HOUR ? PHASE_AGG : PHASE_ROWS;
	/* A group of an hour or a day is mostly a single part; a week or more has many. */
	rr->parts = spec->res <= TM_DAY;
	if (phase == PHASE_ROWS)
		rows_mode_init(rr);
	submit_phase(rr, phase);
	read_unref(rr);
}

/* ---------- the catalogue's names ---------- */

typedef struct NamesReq {
	Web *web;
	struct evhttp_request *req; /* NULL once answered */
	int64_t start_us;
	ReadNamesDone done;
	void *ctx;
	size_t max;
	int refs, pending;
	bool submitting;
	char *regex;
	char limit[24];
	struct event *timer;     /* READ_TIMEOUT_MS, then STRAGGLER_MS once only suspects are left */
	bool *ok, *busy;
	PGresult **res;
	DbJob jobs[];
} NamesReq;

static void names_unref(NamesReq *nr)
{
	if (--nr->refs > 0)
		return;
	event_free(nr->timer);
	for (int i = 0; i < nr->web->ndbs; i++)
		PQclear(nr->res[i]);
	free(nr->res);
	free(nr->ok);
	free(nr->busy);
	free(nr->regex);
	free(nr);
}

/* Every database answered or ran out of time: merges the sorted lists, each name once. */
static void names_finish(NamesReq *nr)
{
	struct evhttp_request *req = nr->req;
	Web *w = nr->web;
	if (!req)
		return;
	nr->req = NULL;
	w->inflight--;
	evtimer_del(nr->timer);
	ReadNames out = {.ndbs = w->ndbs};
	int pos[CFG_MAX_DATABASES] = {0};
	for (int i = 0; i < w->ndbs; i++) {
		if (!nr->ok[i] || nr->busy[i] || !nr->res[i])
			continue;
		out.answered++;
		int rows = PQntuples(nr->res[i]);
		if (rows > 0) {
			uint64_t total = (uint64_t)pgarr_get64(PQgetvalue(nr->res[i], 0, 1));
			uint64_t matched = (uint64_t)pgarr_get64(PQgetvalue(nr->res[i], 0, 2));
			out.total = total > out.total ? total : out.total;
			out.matched = matched > out.matched ? matched : out.matched;
			if (PQgetisnull(nr->res[i], 0, 0))
				pos[i] = rows; /* none matched */
		}
	}
	if (out.answered == 0) {
		reply_error(req, 503, "no database answered the read", NULL, -1, nr->start_us);
		nr->done(nr->ctx, NULL, nr->start_us, NULL);
		return;
	}
	if (!(out.names = malloc((nr->max + 1) * sizeof(char *))))
		fatal("at=oom");
	for (;;) {
		int first = -1;
		for (int i = 0; i < w->ndbs; i++) {
			if (!nr->ok[i] || nr->busy[i] || !nr->res[i] || pos[i] >= PQntuples(nr->res[i]))
				continue;
			if (first < 0 || cmp_col(nr->res[i], pos[i], nr->res[first], pos[first], 0) < 0)
				first = i;
		}
		if (first < 0)
			break;
		PGresult *fr = nr->res[first];
		int frow = pos[first];
		for (int i = 0; i < w->ndbs; i++)
			if (i != first && nr->ok[i] && !nr->busy[i] && nr->res[i] && pos[i] < PQntuples(nr->res[i]) &&
			    cmp_col(nr->res[i], pos[i], fr, frow, 0) == 0)
				pos[i]++;
		pos[first]++;
		if (out.n == nr->max)
			break;
		out.names[out.n++] = PQgetvalue(fr, frow, 0);
	}
	nr->done(nr->ctx, req, nr->start_us, &out);
	free(out.names);
}

static void names_straggle(NamesReq *nr)
{
	bool some = false;
	for (int i = 0; i < nr->web->ndbs; i++) {
		if (nr->busy[i] && db_health(nr->web->dbs[i]) == DB_UP)
			return;
		some |= nr->ok[i] && !nr->busy[i];
	}
	if (!some)
		return;
	struct timeval tv = {cfg->straggler_ms / 1000, (cfg->straggler_ms % 1000) * 1000};
	evtimer_add(nr->timer, &tv);
}

static void names_job_done(DbJob *job, DbOutcome *out)
{
	NamesReq *nr = job->owner;
	int i = (int)(job - nr->jobs);
	nr->busy[i] = false;
	if (nr->req && nr->ok[i]) {
		nr->pending--;
		if (out->ok && PQnfields(out->res) == 3) {
			db_mark_answered(nr->web->dbs[i]);
			nr->res[i] = out->res; /* taken */
			out->res = NULL;
		} else {
			nr->ok[i] = false;
		}
		if (!nr->submitting && nr->pending == 0)
			names_finish(nr);
		else if (!nr->submitting)
			names_straggle(nr);
	}
	names_unref(nr);
}

static void names_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	NamesReq *nr = arg;
	(void)fd;
	(void)what;
	for (int i = 0; i < nr->web->ndbs; i++) {
		if (nr->busy[i]) {
			nr->ok[i] = false;
			db_mark_suspect(nr->web->dbs[i]);
		}
	}
	names_finish(nr);
}

void read_names(Web *w, struct evhttp_request *req, int64_t start_us, const char *regex, size_t max,
		ReadNamesDone done, void *ctx)
{
	size_t n = (size_t)w->ndbs;
	NamesReq *nr = calloc(1, sizeof(*nr) + n * sizeof(DbJob));
	if (!nr || (regex && !(nr->regex = strdup(regex))) || !(nr->ok = calloc(n, sizeof(bool))) ||
	    !(nr->busy = calloc(n, sizeof(bool))) || !(nr->res = calloc(n, sizeof(PGresult *))) ||
	    !(nr->timer = evtimer_new(w->base, names_on_timeout, nr)))
		fatal("at=oom");
	nr->web = w;
	nr->req = req;
	nr->start_us = start_us;
	nr->done = done;
	nr->ctx = ctx;
	nr->max = max;
	nr->refs = 1;
	snprintf(nr->limit, sizeof(nr->limit), "%zu", max);
	w->inflight++;
	struct timeval tv = {cfg->read_timeout_ms / 1000, (cfg->read_timeout_ms % 1000) * 1000};
	evtimer_add(nr->timer, &tv);
	nr->submitting = true;
	for (size_t i = 0; i < n && !w->stopped; i++) {
		DbJob *j = &nr->jobs[i];
		j->kind = DB_JOB_QUERY;
		j->done = names_job_done;
		j->owner = nr;
		j->sql = SCHEMA_NAMES_SQL;
		j->params[0] = nr->regex;
		j->params[1] = nr->limit;
		j->nparams = 2;
		nr->ok[i] = nr->busy[i] = true;
		nr->refs++;
		nr->pending++;
		if (!db_submit(w->dbs[i], j, cfg->read_timeout_ms)) {
			nr->ok[i] = nr->busy[i] = false;
			nr->refs--;
			nr->pending--;
		}
	}
	nr->submitting = false;
	if (nr->pending == 0)
		names_finish(nr);
	else
		names_straggle(nr);
	names_unref(nr);
}
