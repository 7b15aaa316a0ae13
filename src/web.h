/* The HTTP API on evhttp: POST /metrics fans a write out to every database and answers at the
 * first commit; GET /metrics asks every database, merges and rolls up; GET /health. */
#ifndef M2PG_WEB_H
#define M2PG_WEB_H

#include "cfg.h"
#include "common.h"
#include "db.h"

struct event_base;
struct evhttp_request;
struct Buf;
typedef struct Web Web;

/* Shared by the handlers (web.c for writes, read.c for reads). */
struct Web {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct Guard *guard; /* connection limits and request deadlines */
	Db **dbs;
	struct Hints **hints; /* per database */
	int ndbs;
	int inflight; /* requests not yet answered */
	bool shutting_down;
	bool stopped; /* the loop has ended: answer at once, submit nothing */
	int64_t shutdown_deadline_us;
	struct event *shutdown_timer;
	struct event *summary_timer;
	/* Counters, per database where it says so (logged by the periodic summary). */
	uint64_t writes_failed[CFG_MAX_DATABASES]; /* metrics a database failed or was skipped for */
	uint64_t writes_refused;                   /* metrics refused before anything was stored */
	int reads_inflight;
};

/* Answers req with body (taken) as JSON and logs the request. */
void web_reply(Web *w, struct evhttp_request *req, int code, struct Buf *body, int64_t start_us);
/* A 503 with Retry-After and a body (taken). */
void web_reply_503(Web *w, struct evhttp_request *req, struct Buf *body, int retry_after_s, int64_t start_us);
void web_reply_error(Web *w, struct evhttp_request *req, int code, const char *msg, const char *field,
		     long index, int64_t start_us);
void web_log_request(struct evhttp_request *req, int code, int64_t start_us);

Web *web_new(struct event_base *base, Db **dbs, struct Hints **hints, int ndbs);
bool web_listen(Web *w, const char *host, int port) WARN_UNUSED;
/* Stops accepting; the loop ends once the requests in flight are answered and the databases
 * have settled the writes they hold, or after grace_ms. */
void web_shutdown(Web *w, int grace_ms);
void web_free(Web *w);

#endif
