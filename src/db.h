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
	bool maybe_applied;  /* failed, but the statement was sent: it may have committed */
	bool client_fault;   /* SQLSTATE class 22 or 42: the request's fault, not the database's */
	char sqlstate[6];
	const char *error;   /* valid during the callback */
	PGresult *res;       /* query rows: the callback may take them (and set res to NULL);
	                      * otherwise db clears them after the callback */
} DbOutcome;

typedef void (*DbJobDone)(DbJob *job, DbOutcome *out);
/* A streamed query's rows, one at a time (libpq single-row mode): the callback takes the
 * result. Returning false pauses the stream: no more rows are read from that connection (the
 * server blocks on its socket) until db_job_resume(). */
typedef bool (*DbJobRow)(DbJob *job, PGresult *row);

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
	/* Every id was made by m2pg for this write and the rows were never sent to this database:
	 * inserted without ON CONFLICT (cleared, and the rows sent again with it, should the
	 * database hold one of the ids after all). A retry, a hint or a client's id is not fresh. */
	bool fresh;
	/* DB_JOB_QUERY: binary results; parameters are text unless formats[i] is 1. With row set,
	 * rows are streamed to it and done() gets no result. */
	DbJobRow row;
	const char *sql;
	int nparams;
	const char *params[8];
	int lengths[8];
	int formats[8];
};

/* A database's health drives the fan-out:
 *   UP       answering; asked by every read and write.
 *   SUSPECT  it missed a deadline: still asked, but a read waits for it only a short straggler
 *            window (STRAGGLER_MS) once the others have answered. Answering in time makes it UP.
 *   DOWN     every connection is failing: skipped by reads and writes at once (db_submit refuses,
 *            queued jobs fail when it goes down); only the reconnect loop probes it.
 * A database starts UP, so the first requests wait for its connections rather than fail. */
typedef enum { DB_UP, DB_SUSPECT, DB_DOWN } DbHealth;

Db *db_new(struct event_base *base, int index, const char *url);
/* Starts connecting; never blocks. */
void db_start(Db *db);
void db_free(Db *db);
/* Queues a job; false (and done() is not called) when the database is down or its queue is
 * full. */
bool db_submit(Db *db, DbJob *job, int timeout_ms) WARN_UNUSED;
/* Whether n more metrics would be committed within ms at the rate this database has been
 * measured to commit under load (true while it has not been measured, or while nothing is
 * queued or in flight), counting what is queued and in flight before them. */
bool db_can_commit(const Db *db, size_t n, int ms);
DbHealth db_health(const Db *db);
const char *db_health_name(DbHealth h);
/* The database missed a deadline (a read waited for it in vain). */
void db_mark_suspect(Db *db);
/* The database answered a read in time. */
void db_mark_answered(Db *db);
/* Metrics queued and in flight. */
size_t db_queued_metrics(const Db *db);
int db_index(const Db *db);
const char *db_label(const Db *db);
/* How many connections are ready for work. */
int db_connected(const Db *db);
/* Jobs are queued or in flight. */
bool db_busy(const Db *db);
/* Reads the rows of a paused streamed query again (from the next pass of the loop). */
void db_job_resume(Db *db, DbJob *job);
/* Fails every job still queued or in flight (used at shutdown). */
void db_abort_all(Db *db);

#endif
