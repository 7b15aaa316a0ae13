/* One PostgreSQL database: a few persistent non-blocking libpq connections registered in the
 * event loop, a bounded queue of inserts drained in batches (group commit), and a queue of
 * queries. Callers submit jobs and are told once, through the job's done callback, how each
 * ended. Deadlines are ours: libpq has none for a hung server. */
#ifndef M2PG_DB_H
#define M2PG_DB_H

#include <libpq-fe.h>

#include "common.h"
#include "metric.h"

struct event_base;
typedef struct Db Db;
typedef struct DbJob DbJob;

typedef enum { DB_JOB_INSERT, DB_JOB_QUERY } DbJobKind;

typedef struct DbOutcome {
	bool ok;
	bool client_fault;   /* SQLSTATE class 22 or 42: the request's fault, not the database's */
	char sqlstate[6];
	const char *error;   /* valid during the callback */
	PGresult *res;       /* query rows: the callback may take them (and set res to NULL);
	                      * otherwise db clears them after the callback */
} DbOutcome;

typedef void (*DbJobDone)(DbJob *job, DbOutcome *out);

/* Owned by the submitter, who must keep it alive until done() is called. done() may free it. */
struct DbJob {
	DbJob *next;
	DbJobKind kind;
	int64_t deadline_us;
	DbJobDone done;
	void *owner;
	/* DB_JOB_INSERT */
	const Metric *metrics;
	size_t n;
	/* DB_JOB_QUERY: binary results; parameters are text unless formats[i] is 1 */
	const char *sql;
	int nparams;
	const char *params[6];
	int lengths[6];
	int formats[6];
};

Db *db_new(struct event_base *base, int index, const char *url);
/* Starts connecting; never blocks. */
void db_start(Db *db);
void db_free(Db *db);
/* Queues a job; false (and done() is not called) when the database's queue is full. */
bool db_submit(Db *db, DbJob *job, int timeout_ms) WARN_UNUSED;
int db_index(const Db *db);
const char *db_label(const Db *db);
/* How many connections are ready for work. */
int db_connected(const Db *db);
/* Jobs are queued or in flight. */
bool db_busy(const Db *db);
/* Fails every job still queued or in flight (used at shutdown). */
void db_abort_all(Db *db);

#endif
