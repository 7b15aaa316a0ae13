/* HTTP handlers. Every evhttp request is answered exactly once: a request object stays ours
 * until evhttp_send_reply(), even when its client has gone (libevent then frees it), so each
 * WriteReq/ReadReq keeps `req` until it answers and clears it right after. The request state
 * itself lives until the last database job referring to it has finished (refs). */
#include "web.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfg.h"
#include "guard.h"
#include "jsonw.h"
#include "hint.h"
#include "read.h"
#include "stats.h"

/* A batch of 10,000 metrics with every field at its longest (255-byte names, ids, all eight
 * statistics at 23 characters, RFC 3339 buckets with nanoseconds) is about 6.2 MB. */
#define MAX_BODY_BYTES (8 * 1024 * 1024)
#define MAX_HEADER_BYTES (16 * 1024)
#define MAX_REGEX_BYTES 4096

/* ---------- POST /metrics ---------- */

/* Per database, how a write ended for it; decides the hints once every database is done. */
typedef enum { WDB_PENDING, WDB_COMMITTED, WDB_FAILED, WDB_SKIPPED } WriteDbState;

typedef struct WriteReq {
	Web *web;
	struct evhttp_request *req; /* NULL once answered */
	MetricBatch batch;
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
	Buf b = {0};
	buf_reserve(&b, wr->batch.n * (UUID_STR_LEN + 4) + 4);
	if (wr->batch.is_array)
		buf_addc(&b, '[');
	for (size_t i = 0; i < wr->batch.n; i++) {
		char id[UUID_STR_LEN + 1];
		uuid_format(&wr->batch.m[i].id, id);
		buf_adds(&b, i ? ", \"" : "\"");
		buf_add(&b, id, UUID_STR_LEN);
		buf_addc(&b, '"');
	}
	buf_adds(&b, wr->batch.is_array ? "]\n" : "\n");
	reply_json(req, 201, &b, wr->start_us);
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

static void handle_write(Web *w, struct evhttp_request *req, int64_t start_us)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > MAX_BODY_BYTES) {
		reply_error(req, 413, "the body is larger than 8 MiB", NULL, -1, start_us);
		return;
	}
	/* Overloaded: refuse before parsing. Under a flood of large batches, parsing bodies only
	 * to refuse them took the CPU the databases needed to commit the ones admitted. */
	if (!write_admissible(w, 1)) { /* counted by route and status: its metrics are unknown */
		Buf b = {0};
		buf_adds(&b, "{\"error\": \"the databases are down or cannot take more writes in time; "
			     "nothing was stored\", \"stored\": false}\n");
		reply_503(req, &b, 1, start_us);
		return;
	}
	const char *body = (const char *)evbuffer_pullup(in, -1);
	MetricBatch batch;
	MetricError err;
	if (!metric_parse_body(body ? body : "", len, &batch, &err)) {
		reply_error(req, err.status, err.msg, err.field[0] ? err.field : NULL, err.index, start_us);
		return;
	}
	WriteReq *wr = calloc(1, sizeof(*wr) + (size_t)w->ndbs * sizeof(DbJob));
	if (!wr || !(wr->dbstate = calloc((size_t)w->ndbs, sizeof(WriteDbState))))
		fatal("at=oom");
	wr->web = w;
	wr->req = req;
	wr->batch = batch;
	wr->start_us = start_us;
	wr->refs = 1;
	w->inflight++;

	/* Admission: a database takes the write only if it is up and can commit it, after what it
	 * already holds, within WRITE_TIMEOUT_MS at its measured rate. If none can, the write is
	 * refused now and nothing of it is stored, rather than queued to time out. */
	bool admit[CFG_MAX_DATABASES];
	int admitted = 0;
	for (int i = 0; i < w->ndbs; i++) {
		admit[i] = db_admits(w->dbs[i], batch.n);
		admitted += admit[i];
	}
	if (admitted == 0) {
		w->writes_refused += batch.n;
		for (int i = 0; i < w->ndbs; i++)
			wr->dbstate[i] = WDB_PENDING; /* no hints: nothing was committed */
		write_refuse(wr, "the databases are down or cannot take more writes in time; nothing was stored",
			     "false", 1);
		write_unref(wr);
		return;
	}
	wr->submitting = true;
	for (int i = 0; i < w->ndbs; i++) {
		DbJob *j = &wr->jobs[i];
		j->kind = DB_JOB_INSERT;
		j->done = write_job_done;
		j->owner = wr;
		j->metrics = batch.m;
		j->n = batch.n;
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
		w->writes_refused += batch.n;
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

/* ---------- routing ---------- */

static void handle_health(Web *w, struct evhttp_request *req, int64_t start_us)
{
	int up = 0;
	for (int i = 0; i < w->ndbs; i++)
		up += db_connected(w->dbs[i]) > 0;
	Buf b = {0};
	buf_addf(&b, "{\"status\": \"ok\", \"databases\": %d, \"connected\": %d, \"states\": [", w->ndbs, up);
	for (int i = 0; i < w->ndbs; i++) {
		Db *db = w->dbs[i];
		buf_addf(&b, "%s{\"db\": %d, \"host\": ", i ? ", " : "", i + 1);
		jsonw_string(&b, db_label(db), strlen(db_label(db)));
		buf_addf(&b, ", \"state\": \"%s\", \"connections\": %d, \"queued\": %zu, \"hints\": %zu}",
			 db_health_name(db_health(db)), db_connected(db), db_queued_metrics(db),
			 hints_count(w->hints[i]));
	}
	buf_adds(&b, "]}\n");
	reply_json(req, 200, &b, start_us);
}

/* GET /stats: the process's counters, and this worker's view of each database. */
static void handle_stats(Web *w, struct evhttp_request *req, int64_t start_us)
{
	Buf b = {0};
	stats_render(&b);
	buf_adds(&b, "# HELP m2pg_database_state Each database's health as this worker sees it (1: current).\n"
		     "# TYPE m2pg_database_state gauge\n");
	for (int i = 0; i < w->ndbs; i++)
		for (int h = DB_UP; h <= DB_DOWN; h++)
			buf_addf(&b, "m2pg_database_state{db=\"%d\",state=\"%s\"} %d\n", i + 1,
				 db_health_name((DbHealth)h), db_health(w->dbs[i]) == (DbHealth)h);
	static const char *const gauges[][2] = {
		{"m2pg_database_connections", "Connections ready for work."},
		{"m2pg_database_queued_metrics", "Metrics waiting for or in an insert."},
		{"m2pg_hints", "Metrics waiting as hints for a database that failed them."},
		{"m2pg_hints_dropped_total", "Hints dropped past HINTS_MAX (counter)."},
	};
	for (size_t g = 0; g < ARRAY_LEN(gauges); g++) {
		buf_addf(&b, "# HELP %s %s\n# TYPE %s %s\n", gauges[g][0], gauges[g][1], gauges[g][0],
			 g == 3 ? "counter" : "gauge");
		for (int i = 0; i < w->ndbs; i++) {
			uint64_t v = g == 0 ? (uint64_t)db_connected(w->dbs[i])
				     : g == 1 ? db_queued_metrics(w->dbs[i])
				     : g == 2 ? hints_count(w->hints[i])
						: hints_dropped(w->hints[i]);
			buf_addf(&b, "%s{db=\"%d\"} %llu\n", gauges[g][0], i + 1, (unsigned long long)v);
		}
	}
	buf_addf(&b, "# HELP m2pg_reads_in_flight Reads being answered by this worker.\n"
		     "# TYPE m2pg_reads_in_flight gauge\nm2pg_reads_in_flight %d\n", w->reads_inflight);
	reply_send(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b, start_us);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	Web *w = arg;
	int64_t start_us = now_mono_us();
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (!path)
		path = "";
	const char *bad_framing = guard_request_begin(w->guard, req);
	if (bad_framing) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(req, 400, bad_framing, NULL, -1, start_us);
		return;
	}
	if (cmd == EVHTTP_REQ_HEAD && strcmp(path, "/health") == 0)
		cmd = EVHTTP_REQ_GET; /* the guard drops the body and keeps its length */
	if (w->shutting_down) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(req, 503, "shutting down", NULL, -1, start_us);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			read_handle(w, req, start_us);
		else if (cmd == EVHTTP_REQ_POST)
			handle_write(w, req, start_us);
		else if (cmd == EVHTTP_REQ_HEAD) { /* what a GET says before asking the databases */
			Buf none = {0};
			reply_json(req, 200, &none, start_us);
		} else {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD, POST");
			reply_error(req, 405, "/metrics takes GET and POST", NULL, -1, start_us);
		}
	} else if (strcmp(path, "/stats") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			handle_stats(w, req, start_us);
		else {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
			reply_error(req, 405, "/stats takes GET", NULL, -1, start_us);
		}
	} else if (strcmp(path, "/health") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			handle_health(w, req, start_us);
		else {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
			reply_error(req, 405, "/health takes GET", NULL, -1, start_us);
		}
	} else {
		reply_error(req, 404, "not found: the API is GET and POST /metrics", NULL, -1, start_us);
	}
}

/* Every 10 s, one line per database that had trouble: what failed, what waits as hints, what
 * was dropped. Never a line per request while a database is down. */
static void web_on_summary(evutil_socket_t fd, short what, void *arg)
{
	Web *w = arg;
	static _Thread_local uint64_t last_failed[CFG_MAX_DATABASES], last_refused;
	(void)fd;
	(void)what;
	for (int i = 0; i < w->ndbs; i++) {
		Db *db = w->dbs[i];
		uint64_t failed = w->writes_failed[i] - last_failed[i];
		last_failed[i] = w->writes_failed[i];
		size_t hints = hints_count(w->hints[i]);
		if (failed == 0 && hints == 0 && db_health(db) == DB_UP)
			continue;
		log_warn("at=db-summary db=%d host=%s state=%s writes_failed=%llu hints=%zu hints_dropped=%llu",
			 i + 1, db_label(db), db_health_name(db_health(db)), (unsigned long long)failed, hints,
			 (unsigned long long)hints_dropped(w->hints[i]));
	}
	if (w->writes_refused != last_refused) {
		log_warn("at=writes-refused metrics=%llu total=%llu",
			 (unsigned long long)(w->writes_refused - last_refused), (unsigned long long)w->writes_refused);
		last_refused = w->writes_refused;
	}
}

Web *web_new(struct event_base *base, Db **dbs, Hints **hints, int ndbs)
{
	Web *w = calloc(1, sizeof(*w));
	if (!w || !(w->http = evhttp_new(base)))
		fatal("at=oom");
	w->base = base;
	w->dbs = dbs;
	w->hints = hints;
	w->ndbs = ndbs;
	/* evhttp's defaults are unlimited: bound what a client can make us hold. The guard
	 * answers a request past its limit with our JSON 413 as the bytes come (evhttp's own
	 * check, on the declared length, is only a backstop: its 413 is HTML). */
	evhttp_set_max_body_size(w->http, 4 * MAX_BODY_BYTES);
	evhttp_set_max_headers_size(w->http, MAX_HEADER_BYTES);
	evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_timeout(w->http, 30); /* idle keep-alive; reading a request has its deadline */
	GuardLimits lim = {
		.max_clients = cfg->max_clients ? cfg->max_clients : guard_default_max_clients(),
		.request_timeout_ms = cfg->request_timeout_ms,
		.body_memory_max = (size_t)cfg->body_memory_max,
		.request_max = MAX_BODY_BYTES + 4 * MAX_HEADER_BYTES,
	};
	w->guard = guard_new(base, w->http, &lim);
	log_info("at=client-limits max_clients=%d request_timeout_ms=%d body_memory_max=%zu",
		 lim.max_clients, lim.request_timeout_ms, lim.body_memory_max);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
						    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(w->http, on_request, w);
	w->summary_timer = event_new(base, -1, EV_PERSIST, web_on_summary, w);
	struct timeval tv = {10, 0};
	if (!w->summary_timer || event_add(w->summary_timer, &tv) < 0)
		fatal("at=event-add-failed");
	return w;
}

bool web_listen(Web *w, const char *host, int port)
{
	/* SO_REUSEPORT: every worker binds its own socket and the kernel spreads connections. */
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG};
	struct evutil_addrinfo *ai = NULL;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (evutil_getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai)
		return false;
	struct evconnlistener *l = evconnlistener_new_bind(
		w->base, NULL, NULL,
		LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
		ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (!l)
		return false;
	/* Accepted sockets inherit it: an answer in several segments must not wait on Nagle and
	 * the client's delayed ACK (40 ms a read otherwise). */
	int one = 1;
	setsockopt(evconnlistener_get_fd(l), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w->sock = evhttp_bind_listener(w->http, l);
	if (w->sock)
		guard_listen(w->guard, l);
	return w->sock != NULL;
}

static bool settled(Web *w)
{
	if (w->inflight > 0)
		return false;
	for (int i = 0; i < w->ndbs; i++)
		if (db_busy(w->dbs[i]) || hints_draining(w->hints[i]))
			return false;
	return true;
}

static void on_shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
	Web *w = arg;
	(void)fd;
	(void)what;
	if (settled(w) || now_mono_us() >= w->shutdown_deadline_us) {
		if (!settled(w))
			log_warn("at=shutdown-grace-over inflight=%d", w->inflight);
		event_base_loopexit(w->base, NULL);
	}
}

void web_shutdown(Web *w, int grace_ms)
{
	if (w->shutting_down)
		return;
	w->shutting_down = true;
	if (w->sock) {
		guard_unlisten(w->guard);
		evhttp_del_accept_socket(w->http, w->sock);
		w->sock = NULL;
	}
	w->shutdown_deadline_us = now_mono_us() + (int64_t)grace_ms * 1000;
	w->shutdown_timer = event_new(w->base, -1, EV_PERSIST, on_shutdown_tick, w);
	struct timeval tv = {0, 20000};
	if (!w->shutdown_timer || event_add(w->shutdown_timer, &tv) < 0)
		fatal("at=event-add-failed");
	log_info("at=shutdown inflight=%d", w->inflight);
}

void web_free(Web *w)
{
	if (!w)
		return;
	if (w->shutdown_timer)
		event_free(w->shutdown_timer);
	event_free(w->summary_timer);
	guard_unlisten(w->guard); /* evhttp_free frees the listener */
	evhttp_free(w->http);
	guard_free(w->guard); /* after the connections evhttp_free closes */
	free(w);
}
