/* The HTTP server and router on evhttp: listens, checks API tokens, routes each path to its
 * front-end (api_seed.c, api_librato.c, api_ops.c), and shuts down. The front-ends sit under
 * it and over the read and write paths (read.c, write.c); the context and reply helpers of
 * reply.h are under all of them. */
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
