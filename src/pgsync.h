/* Blocking libpq with deadlines, for the maintenance commands (gc, repair), which run outside
 * any event loop. libpq's own blocking calls wait forever on a hung server; these poll() the
 * socket and give up at the deadline, closing the connection. */
#ifndef M2PG_PGSYNC_H
#define M2PG_PGSYNC_H

#include <libpq-fe.h>

#include "common.h"

/* Connects and, with schema, brings the database to m2pg's schema; NULL (with err) on failure. */
PGconn *pgs_connect(const char *url, int timeout_ms, bool schema, char *err, size_t errlen);
/* Runs one statement (binary results when binary); NULL (with err) on error or timeout, after
 * which the connection is closed and *conn set to NULL. formats may be NULL (all text). */
PGresult *pgs_exec(PGconn **conn, const char *sql, int nparams, const char *const *values,
		   const int *lengths, const int *formats, bool binary, int timeout_ms, char *err,
		   size_t errlen);
/* pgs_exec in two: pgs_send sends the statement whole (false, with err and the connection
 * closed, on failure), and pgs_wait returns its result, meanwhile the caller may use other
 * connections. */
bool pgs_send(PGconn **conn, const char *sql, int nparams, const char *const *values, const int *lengths,
	      const int *formats, bool binary, int timeout_ms, char *err, size_t errlen);
PGresult *pgs_wait(PGconn **conn, int timeout_ms, char *err, size_t errlen);

#endif
