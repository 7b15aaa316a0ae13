/* The HTTP server and router on evhttp: listens, routes each path to its handler (read.c for
 * GET /metrics; here POST /metrics, /health and /stats), and shuts down. The handlers share the
 * context and reply helpers of reply.h, below both. */
#ifndef M2PG_WEB_H
#define M2PG_WEB_H

#include "reply.h"

struct event_base;

Web *web_new(struct event_base *base, Db **dbs, struct Hints **hints, int ndbs);
bool web_listen(Web *w, const char *host, int port) WARN_UNUSED;
/* Stops accepting; the loop ends once the requests in flight are answered and the databases
 * have settled the writes they hold, or after grace_ms. */
void web_shutdown(Web *w, int grace_ms);
void web_free(Web *w);

#endif
