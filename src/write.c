/* The write path, shared by every front-end: admission, the fan-out of a parsed batch to every
 * database, the answer once the first commits (or a 503 saying whether anything may be
 * stored), and hints for the databases that failed it.
 *
 * Every evhttp request is answered exactly once: a request object stays ours until
 * evhttp_send_reply(), even when its client has gone (libevent then frees it), so a WriteReq
 * keeps `req` until it answers and clears it right after. The WriteReq itself lives until
 * the last database job referring to it has finished (refs). */
#include "write.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "hint.h"
#include "jsonw.h"
#include "stats.h"

/* Per database, how a write ended for it; decides the hints once every database is done. */
typedef enum { WDB_PENDING, WDB_COMMITTED, WDB_FAILED, WDB_SKIPPED } WriteDbState;

typedef struct WriteReq {
	Web *web;
	struct evhttp_request *req; /* NULL once answered */
	MetricBatch batch;
	WriteStored stored;
	int64_t start_us;
	int refs;
	int submitted, committed, failed;
	bool submitting;
	bool acked;         /* answered 201 */
	bool maybe_applied; /* a failed insert may have committed anyway */
	struct event *timer;
	WriteDbState *dbstate;
	DbJob jobs[];
} WriteReq;

/* Once no database has the write any more: every database that failed or was skipped gets the
 * metrics as hints, but only when another committed them. A write that no database committed
 * was answered 503 and is not stored later behind the client's back. */
static void write_settle(WriteReq *wr)
{
	Web *w = wr->web;
	for (int i = 0; i < w->ndbs; i++) {
		if (wr->dbstate[i] != WDB_FAILED && wr->dbstate[i] != WDB_SKIPPED)
			continue;
		w->writes_failed[i] += wr->batch.n;
		if (wr->committed > 0)
			hints_add(w->hints[i], wr->batch.m, wr->batch.n, wr->acked);
	}
}

static void write_unref(WriteReq *wr)
{
	if (--wr->refs > 0)
		return;
	write_settle(wr);
	if (wr->timer)
		event_free(wr->timer);
	metric_batch_free(&wr->batch);
	free(wr->dbstate);
	free(wr);
}

/* stored: "false" (nothing of it is stored, or will be) or "\"unknown\"" (it may still land). */
static void write_refuse(WriteReq *wr, const char *error, const char *stored, int retry_after_s)
{
	struct evhttp_request *req = wr->req;
	if (!req)
		return;
	wr->req = NULL;
	wr->web->inflight--;
	if (wr->timer)
		evtimer_del(wr->timer);
	stats_add(stored[0] == 'f' ? STATS_WRITES_REFUSED : STATS_WRITES_UNKNOWN, wr->batch.n);
	Buf b = {0};
	buf_adds(&b, "{\"error\": ");
	jsonw_string(&b, error, strlen(error));
	buf_addf(&b, ", \"stored\": %s}\n", stored);
	reply_503(req, &b, retry_after_s, wr->start_us);
}

static void write_answer(WriteReq *wr)
{
	struct evhttp_request *req = wr->req;
	if (!req)
		return;
	wr->req = NULL;
	wr->acked = true;
	stats_add(STATS_METRICS_ACCEPTED, wr->batch.n);
	wr->web->inflight--;
	if (wr->timer)
		evtimer_del(wr->timer);
	wr->stored(req, &wr->batch, wr->start_us);
}

/* Every database that took the write has failed it. */
static void write_all_failed(WriteReq *wr)
{
	if (wr->maybe_applied)
		write_refuse(wr, "no database confirmed the write; it may still have been stored",
			     "\"unknown\"", 1);
	else
		write_refuse(wr, "no database accepted the write", "false", 1);
}

static void write_job_done(DbJob *job, DbOutcome *out)
{
	WriteReq *wr = job->owner;
	int i = (int)(job - wr->jobs);
	if (out->ok) {
		wr->committed++;
		wr->dbstate[i] = WDB_COMMITTED;
		write_answer(wr);
	} else {
		wr->failed++;
		wr->dbstate[i] = WDB_FAILED;
		wr->maybe_applied |= out->maybe_applied;
		/* Counted and logged per database by the summary (web_on_summary), not per write:
		 * with a database down that would be a line per request. */
		log_debug("at=write-failed db=%d metrics=%zu sqlstate=%s error=\"%s\"", i + 1, job->n,
			  out->sqlstate[0] ? out->sqlstate : "none", out->error ? out->error : "");
		if (!wr->submitting && wr->failed == wr->submitted && wr->committed == 0)
			write_all_failed(wr);
	}
	write_unref(wr);
}

static void write_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	write_refuse(arg, "no database committed the write within WRITE_TIMEOUT_MS; it may still be stored",
		     "\"unknown\"", 1);
}

/* Half the write timeout: what is queued must commit with room to spare for the batch being
 * parsed, the loop's other work and the measured rate's error. */
static bool db_admits(Db *db, size_t n)
{
	return db_health(db) != DB_DOWN && db_can_commit(db, n, cfg->write_timeout_ms / 2);
}

static bool write_admissible(Web *w, size_t n)
{
	for (int i = 0; i < w->ndbs; i++)
		if (db_admits(w->dbs[i], n))
			return true;
	return false;
}

const char *write_body(Web *w, struct evhttp_request *req, int64_t start_us, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	*len = evbuffer_get_length(in);
	if (*len > WRITE_BODY_MAX) {
		reply_error(req, 413, "the body is larger than 8 MiB", NULL, -1, start_us);
		return NULL;
	}
	/* Overloaded: refuse before parsing. Under a flood of large batches, parsing bodies only
	 * to refuse them took the CPU the databases needed to commit the ones admitted. */
	if (!write_admissible(w, 1)) { /* counted by route and status: its metrics are unknown */
		Buf b = {0};
		buf_adds(&b, "{\"error\": \"the databases are down or cannot take more writes in time; "
			     "nothing was stored\", \"stored\": false}\n");
		reply_503(req, &b, 1, start_us);
		return NULL;
	}
	const char *body = (const char *)evbuffer_pullup(in, -1);
	return body ? body : "";
}

void write_submit(Web *w, struct evhttp_request *req, int64_t start_us, MetricBatch *batch, WriteStored stored)
{
	WriteReq *wr = calloc(1, sizeof(*wr) + (size_t)w->ndbs * sizeof(DbJob));
	if (!wr || !(wr->dbstate = calloc((size_t)w->ndbs, sizeof(WriteDbState))))
		fatal("at=oom");
	wr->web = w;
	wr->req = req;
	wr->batch = *batch; /* taken */
	memset(batch, 0, sizeof(*batch));
	wr->stored = stored;
	wr->start_us = start_us;
	wr->refs = 1;
	w->inflight++;

	/* Admission: a database takes the write only if it is up and can commit it, after what it
	 * already holds, within WRITE_TIMEOUT_MS at its measured rate. If none can, the write is
	 * refused now and nothing of it is stored, rather than queued to time out. */
	bool admit[CFG_MAX_DATABASES];
	int admitted = 0;
	for (int i = 0; i < w->ndbs; i++) {
		admit[i] = db_admits(w->dbs[i], wr->batch.n);
		admitted += admit[i];
	}
	if (admitted == 0) {
		w->writes_refused += wr->batch.n;
		for (int i = 0; i < w->ndbs; i++)
			wr->dbstate[i] = WDB_PENDING; /* no hints: nothing was committed */
		write_refuse(wr, "the databases are down or cannot take more writes in time; nothing was stored",
			     "false", 1);
		write_unref(wr);
		return;
	}
	bool fresh = true; /* no id from the client (Librato's are named after the metric) */
	for (size_t k = 0; k < wr->batch.n && fresh; k++)
		fresh = !wr->batch.m[k].has_id;
	wr->submitting = true;
	for (int i = 0; i < w->ndbs; i++) {
		DbJob *j = &wr->jobs[i];
		j->kind = DB_JOB_INSERT;
		j->fresh = fresh;
		j->done = write_job_done;
		j->owner = wr;
		j->metrics = wr->batch.m;
		j->n = wr->batch.n;
		if (!admit[i]) {
			wr->dbstate[i] = WDB_SKIPPED;
			continue;
		}
		wr->refs++;
		wr->submitted++;
		if (!db_submit(w->dbs[i], j, cfg_write_patience_ms())) {
			wr->refs--;
			wr->submitted--;
			wr->dbstate[i] = WDB_SKIPPED;
		}
	}
	wr->submitting = false;
	if (wr->req && wr->submitted == 0) {
		w->writes_refused += wr->batch.n;
		write_refuse(wr, "every database's queue is full; nothing was stored", "false", 1);
	} else if (wr->req && wr->failed == wr->submitted && wr->committed == 0) {
		write_all_failed(wr);
	}
	if (wr->req) {
		wr->timer = evtimer_new(w->base, write_on_timeout, wr);
		struct timeval tv = {cfg->write_timeout_ms / 1000, (cfg->write_timeout_ms % 1000) * 1000};
		if (!wr->timer || evtimer_add(wr->timer, &tv) < 0)
			fatal("at=event-add-failed");
	}
	write_unref(wr);
}

