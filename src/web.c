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
#include "jsonw.h"
#include "hint.h"
#include "read.h"

#define MAX_BODY_BYTES (1024 * 1024)
#define MAX_REGEX_BYTES 4096

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

static void free_body(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

void web_log_request(struct evhttp_request *req, int code, int64_t start_us)
{
	const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET";
	int64_t us = now_mono_us() - start_us;
	if (code >= 400)
		log_info("at=request method=%s status=%d measure#m2pg.request.ms=%.3f", method, code,
			 (double)us / 1000);
	else
		log_debug("at=request method=%s status=%d measure#m2pg.request.ms=%.3f", method, code,
			  (double)us / 1000);
}

void web_reply(Web *w, struct evhttp_request *req, int code, Buf *body, int64_t start_us)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
	if (code == 503)
		evhttp_add_header(h, "Retry-After", "1");
	size_t len;
	char *p = buf_take(body, &len);
	if (p && evbuffer_add_reference(evhttp_request_get_output_buffer(req), p, len, free_body, NULL) < 0)
		free(p);
	web_log_request(req, code, start_us);
	evhttp_send_reply(req, code, reason(code), NULL);
	(void)w;
}

void web_reply_error(Web *w, struct evhttp_request *req, int code, const char *msg, const char *field,
		     long index, int64_t start_us)
{
	Buf b = {0};
	jsonw_error(&b, msg, field, index);
	web_reply(w, req, code, &b, start_us);
}

/* ---------- POST /metrics ---------- */

typedef struct WriteReq {
	Web *web;
	struct evhttp_request *req; /* NULL once answered */
	MetricBatch batch;
	int64_t start_us;
	int refs;
	int submitted, committed, failed;
	bool submitting;
	struct event *timer;
	DbJob jobs[];
} WriteReq;

static void write_unref(WriteReq *wr)
{
	if (--wr->refs > 0)
		return;
	if (wr->timer)
		event_free(wr->timer);
	metric_batch_free(&wr->batch);
	free(wr);
}

static void write_answer(WriteReq *wr, int code, const char *error)
{
	struct evhttp_request *req = wr->req;
	if (!req)
		return;
	wr->req = NULL;
	wr->web->inflight--;
	if (wr->timer)
		evtimer_del(wr->timer);
	if (code != 201) {
		web_reply_error(wr->web, req, code, error, NULL, -1, wr->start_us);
		return;
	}
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
	web_reply(wr->web, req, 201, &b, wr->start_us);
}

static void write_job_done(DbJob *job, DbOutcome *out)
{
	WriteReq *wr = job->owner;
	if (out->ok) {
		wr->committed++;
		write_answer(wr, 201, NULL);
	} else {
		int i = (int)(job - wr->jobs);
		wr->failed++;
		log_warn("at=write-failed db=%d host=%s metrics=%zu sqlstate=%s error=\"%s\"", i + 1,
			 db_label(wr->web->dbs[i]), job->n, out->sqlstate[0] ? out->sqlstate : "none",
			 out->error ? out->error : "");
		/* Whether or not another database acknowledged it, this one gets it again later. */
		hints_add(wr->web->hints[i], job->metrics, job->n,
			  wr->committed > 0 || (wr->req && (wr->submitting || wr->failed < wr->submitted)));
		if (!wr->submitting && wr->failed == wr->submitted)
			write_answer(wr, 503, "no database accepted the write");
	}
	write_unref(wr);
}

static void write_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	write_answer(arg, 503, "no database committed the write within WRITE_TIMEOUT_MS");
}

static void handle_write(Web *w, struct evhttp_request *req, int64_t start_us)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > MAX_BODY_BYTES) {
		web_reply_error(w, req, 413, "the body is larger than 1 MiB", NULL, -1, start_us);
		return;
	}
	const char *body = (const char *)evbuffer_pullup(in, -1);
	MetricBatch batch;
	MetricError err;
	if (!metric_parse_body(body ? body : "", len, &batch, &err)) {
		web_reply_error(w, req, err.status, err.msg, err.field[0] ? err.field : NULL, err.index, start_us);
		return;
	}
	WriteReq *wr = calloc(1, sizeof(*wr) + (size_t)w->ndbs * sizeof(DbJob));
	if (!wr)
		fatal("at=oom");
	wr->web = w;
	wr->req = req;
	wr->batch = batch;
	wr->start_us = start_us;
	wr->refs = 1;
	wr->submitting = true;
	w->inflight++;
	for (int i = 0; i < w->ndbs; i++) {
		DbJob *j = &wr->jobs[i];
		j->kind = DB_JOB_INSERT;
		j->done = write_job_done;
		j->owner = wr;
		j->metrics = batch.m;
		j->n = batch.n;
		wr->refs++;
		wr->submitted++;
		if (!db_submit(w->dbs[i], j, cfg_write_patience_ms())) {
			wr->refs--;
			wr->submitted--;
			log_warn("at=queue-full db=%d host=%s metrics=%zu", i + 1, db_label(w->dbs[i]), batch.n);
			hints_add(w->hints[i], batch.m, batch.n, wr->submitted > 0 || i + 1 < w->ndbs);
		}
	}
	wr->submitting = false;
	if (wr->req && wr->submitted == 0)
		write_answer(wr, 503, "every database's queue is full");
	else if (wr->req && wr->failed == wr->submitted)
		write_answer(wr, 503, "no database accepted the write");
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
	buf_addf(&b, "{\"status\": \"ok\", \"databases\": %d, \"connected\": %d}\n", w->ndbs, up);
	web_reply(w, req, 200, &b, start_us);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	Web *w = arg;
	int64_t start_us = now_mono_us();
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (!path)
		path = "";
	if (w->shutting_down) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		web_reply_error(w, req, 503, "shutting down", NULL, -1, start_us);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			read_handle(w, req, start_us);
		else if (cmd == EVHTTP_REQ_POST)
			handle_write(w, req, start_us);
		else {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, POST");
			web_reply_error(w, req, 405, "/metrics takes GET and POST", NULL, -1, start_us);
		}
	} else if (strcmp(path, "/health") == 0) {
		if (cmd == EVHTTP_REQ_GET)
			handle_health(w, req, start_us);
		else {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
			web_reply_error(w, req, 405, "/health takes GET", NULL, -1, start_us);
		}
	} else {
		web_reply_error(w, req, 404, "not found: the API is GET and POST /metrics", NULL, -1, start_us);
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
	/* evhttp's defaults are unlimited: bound what a client can make us hold. Bodies between
	 * 1 and 2 MiB get our JSON 413; larger ones are refused by evhttp itself, unread. */
	evhttp_set_max_body_size(w->http, 2 * MAX_BODY_BYTES);
	evhttp_set_max_headers_size(w->http, 16 * 1024);
	evhttp_set_timeout(w->http, 30);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
						    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(w->http, on_request, w);
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
	evhttp_free(w->http);
	free(w);
}
