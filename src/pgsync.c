/* Deadline-bound synchronous libpq: async calls plus poll(). */
#include "pgsync.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "schema.h"

/* Waits for events (POLLIN, POLLOUT) on the socket until the deadline. */
static bool wait_socket(PGconn *c, short events, int64_t deadline_us)
{
	int64_t left = deadline_us - now_mono_us();
	if (left <= 0)
		return false;
	struct pollfd p = {.fd = PQsocket(c), .events = events};
	return poll(&p, 1, (int)((left + 999) / 1000)) > 0;
}

static void set_err(char *err, size_t errlen, const char *what, const char *msg)
{
	char q[256];
	snprintf(err, errlen, "%s: %s", what, log_quote(q, sizeof(q), msg));
}

bool pgs_send(PGconn **conn, const char *sql, int nparams, const char *const *values, const int *lengths,
	      const int *formats, bool binary, int timeout_ms, char *err, size_t errlen)
{
	PGconn *c = *conn;
	int64_t deadline = now_mono_us() + (int64_t)timeout_ms * 1000;
	/* Without parameters the simple protocol runs several statements in one string. */
	int sent = nparams == 0 && !binary ? PQsendQuery(c, sql)
					   : PQsendQueryParams(c, sql, nparams, NULL, values, lengths, formats, binary ? 1 : 0);
	if (!sent) {
		set_err(err, errlen, "send", PQerrorMessage(c));
		goto broken;
	}
	for (;;) {
		int f = PQflush(c);
		if (f < 0) {
			set_err(err, errlen, "send", PQerrorMessage(c));
			goto broken;
		}
		if (f == 0)
			return true;
		/* A flush also reads, or a server busy sending to us and we busy sending to it
		 * would wait on each other. */
		if (!wait_socket(c, POLLOUT | POLLIN, deadline)) {
			snprintf(err, errlen, "timeout: no answer within %d ms", timeout_ms);
			goto broken;
		}
		if (!PQconsumeInput(c)) {
			set_err(err, errlen, "receive", PQerrorMessage(c));
			goto broken;
		}
	}
broken:
	PQfinish(c);
	*conn = NULL;
	return false;
}

PGresult *pgs_wait(PGconn **conn, int timeout_ms, char *err, size_t errlen)
{
	PGconn *c = *conn;
	int64_t deadline = now_mono_us() + (int64_t)timeout_ms * 1000;
	PGresult *last = NULL;
	bool failed = false;
	for (;;) {
		while (PQisBusy(c)) {
			if (!wait_socket(c, POLLIN, deadline)) {
				snprintf(err, errlen, "timeout: no answer within %d ms", timeout_ms);
				goto broken;
			}
			if (!PQconsumeInput(c)) {
				set_err(err, errlen, "receive", PQerrorMessage(c));
				goto broken;
			}
		}
		PGresult *r = PQgetResult(c);
		if (!r)
			break;
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) {
			if (!failed) {
				const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
				char what[32];
				snprintf(what, sizeof(what), "sqlstate %s", state ? state : "none");
				set_err(err, errlen, what, PQresultErrorMessage(r));
			}
			failed = true;
			PQclear(r);
			continue;
		}
		if (last)
			PQclear(last);
		last = r;
	}
	if (PQstatus(c) == CONNECTION_BAD)
		goto broken;
	if (failed) {
		if (last)
			PQclear(last);
		return NULL;
	}
	return last;
broken:
	if (last)
		PQclear(last);
	PQfinish(c);
	*conn = NULL;
	return NULL;
}

PGresult *pgs_exec(PGconn **conn, const char *sql, int nparams, const char *const *values,
		   const int *lengths, const int *formats, bool binary, int timeout_ms, char *err,
		   size_t errlen)
{
	if (!pgs_send(conn, sql, nparams, values, lengths, formats, binary, timeout_ms, err, errlen))
		return NULL;
	return pgs_wait(conn, timeout_ms, err, errlen);
}

PGconn *pgs_connect(const char *url, int timeout_ms, bool schema, char *err, size_t errlen)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {url, "m2pg-maintenance", NULL};
	int64_t deadline = now_mono_us() + (int64_t)timeout_ms * 1000;
	PGconn *c = PQconnectStartParams(keys, vals, 1);
	if (!c || PQstatus(c) == CONNECTION_BAD) {
		set_err(err, errlen, "connect", c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return NULL;
	}
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED) {
			set_err(err, errlen, "connect", PQerrorMessage(c));
			PQfinish(c);
			return NULL;
		}
		if (!wait_socket(c, st == PGRES_POLLING_WRITING ? POLLOUT : POLLIN, deadline)) {
			snprintf(err, errlen, "connect: no answer within %d ms", timeout_ms);
			PQfinish(c);
			return NULL;
		}
		st = PQconnectPoll(c);
	}
	PQsetnonblocking(c, 1);
	/* The server gives up a statement when we do, rather than running on after it. */
	char setup[128];
	snprintf(setup, sizeof(setup), "SET client_min_messages = warning; SET statement_timeout = %d",
		 cfg->maint_timeout_ms);
	PGresult *r = pgs_exec(&c, setup, 0, NULL, NULL, NULL, false, timeout_ms, err, errlen);
	if (r)
		PQclear(r);
	if (!c || !schema)
		return c;
	r = pgs_exec(&c, SCHEMA_SETUP_SQL, 0, NULL, NULL, NULL, false, 60000, err, errlen);
	if (!r) {
		if (c)
			PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}
