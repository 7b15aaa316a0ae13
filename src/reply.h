/* The context every HTTP handler shares, and the helpers that answer a request. Below the
 * router (web.c), the front-ends (api_*.c) and the read and write paths: it knows none of them. */
#ifndef M2PG_REPLY_H
#define M2PG_REPLY_H

#include "buf.h"
#include "cfg.h"
#include "common.h"
#include "db.h"

struct event_base;
struct evhttp_request;
typedef struct Web Web;

/* One worker's HTTP server: its loop, databases, hints, and what is in flight. */
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

/* Answers req with body (taken) of the given Content-Type, counts and logs the request. */
void reply_send(struct evhttp_request *req, int code, const char *content_type, Buf *body, int64_t start_us);
/* The same as JSON. */
void reply_json(struct evhttp_request *req, int code, Buf *body, int64_t start_us);
/* A 503 with Retry-After and a body (taken). */
void reply_503(struct evhttp_request *req, Buf *body, int retry_after_s, int64_t start_us);
void reply_error(struct evhttp_request *req, int code, const char *msg, const char *field, long index,
		 int64_t start_us);
/* Counts and logs a request answered some other way (a streamed answer's end). */
void reply_log(struct evhttp_request *req, int code, int64_t start_us);

#endif
