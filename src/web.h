/* The HTTP API on evhttp: POST /metrics fans a write out to every database and answers at the
 * first commit; GET /metrics asks every database, merges and rolls up; GET /health. */
#ifndef M2PG_WEB_H
#define M2PG_WEB_H

#include "common.h"
#include "db.h"

struct event_base;
typedef struct Web Web;

Web *web_new(struct event_base *base, Db **dbs, int ndbs);
bool web_listen(Web *w, const char *host, int port) WARN_UNUSED;
/* Stops accepting; the loop ends once the requests in flight are answered and the databases
 * have settled the writes they hold, or after grace_ms. */
void web_shutdown(Web *w, int grace_ms);
void web_free(Web *w);

#endif
