/* The HTTP-connection guard: bounds what clients can make one worker hold. A cap on
 * connections (accepting pauses at the cap instead of spinning on EMFILE), a deadline for
 * reading a whole request counted from its first byte, a cap on the bytes of requests being
 * read, and the checks of a request's framing that evhttp 2.1 does not make. It knows
 * libevent, not the databases. */
#ifndef M2PG_GUARD_H
#define M2PG_GUARD_H

#include <stddef.h>

#include "common.h"

struct event_base;
struct evconnlistener;
struct evhttp;
struct evhttp_connection;
struct evhttp_request;
typedef struct Guard Guard;

typedef struct GuardLimits {
	int max_clients;        /* open client connections (lingering closes included) */
	int request_timeout_ms; /* reading one request, headers and body, from its first byte */
	size_t body_memory_max; /* bytes of requests being read or answered, all connections */
	size_t request_max;     /* bytes of one request, headers and body */
} GuardLimits;

/* MAX_CLIENTS when it is not set: the open-file limit (as raised at start) shared by the
 * workers, less what the databases, spool files and logs need. */
int guard_default_max_clients(void);

/* Takes over evhttp's bufferevent callback to count and watch every accepted connection. */
Guard *guard_new(struct event_base *base, struct evhttp *http, const GuardLimits *lim);
/* The listener to pause at the cap and after accept errors (it also gets the error callback). */
void guard_listen(Guard *g, struct evconnlistener *l);
/* Forgets the listener, before evhttp frees it. */
void guard_unlisten(Guard *g);
/* At the top of the request callback: the request has been read whole. NULL when it may be
 * served; otherwise why it must be answered 400 and its connection closed (its framing is
 * ambiguous: what follows it cannot be trusted to be a request). Also makes a HEAD answer
 * carry the length of its body instead of the body. */
const char *guard_request_begin(Guard *g, struct evhttp_request *req);
/* The guard owns evhttp's close callback of each connection; others get one hook per
 * connection here, called when it closes (fn NULL removes it). Call from the worker's loop. */
void guard_set_close_hook(struct evhttp_connection *evcon, void (*fn)(void *), void *arg);
/* A read left megabytes free in malloc's heap: hand them back to the system once the worker
 * has been a second without such reads and its requests are over. Call from the worker's loop. */
void guard_trim_soon(void);
/* After evhttp_free() (which closes the connections this counts). */
void guard_free(Guard *g);

#endif
