/* Partitions ahead from the web process: one small statement (SCHEMA_PARTITIONS_MAKE_SQL) run
 * as a query job through the database's queue, so the loop never waits on it. Every minute it
 * also asks how the database's tables look (partitions, the default partition, the rollups'
 * lag) for /stats. At most one is in
 * flight per database; a failure (the database down, a lock not granted within the function's
 * lock_timeout) is retried a minute later, which is plenty: the partitions are made days before
 * they are needed. */
#include "partman.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "cfg.h"
#include "db.h"
#include "pgarr.h"
#include "schema.h"
#include "stats.h"

#define PARTMAN_INTERVAL_MS (3600 * 1000)
#define PARTMAN_RETRY_MS (60 * 1000)
#define PARTMAN_TIMEOUT_MS 30000
#define STATUS_INTERVAL_MS (60 * 1000)
#define STATUS_TIMEOUT_MS 5000

struct Partman {
	Db *db;
	struct event *timer;
	DbJob job;
	bool inflight;
	struct event *status_timer;
	DbJob status;
	bool status_inflight;
	char ahead[16], days[16];
};

static void arm(Partman *p, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(p->timer, &tv);
}

static void on_done(DbJob *job, DbOutcome *out)
{
	Partman *p = job->owner;
	p->inflight = false;
	if (!out->ok) {
		char msg[256];
		log_warn("at=partition-error db=%d sqlstate=%s error=\"%s\"", db_index(p->db), out->sqlstate,
			 log_quote(msg, sizeof(msg), out->error ? out->error : ""));
		arm(p, PARTMAN_RETRY_MS);
		return;
	}
	for (int k = 0; out->res && k < PQntuples(out->res); k++)
		log_info("at=partition-created db=%d partition=%.*s moved=%lld", db_index(p->db),
			 PQgetlength(out->res, k, 0), PQgetvalue(out->res, k, 0),
			 (long long)pgarr_get64(PQgetvalue(out->res, k, 1)));
	arm(p, PARTMAN_INTERVAL_MS);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	Partman *p = arg;
	(void)fd;
	(void)what;
	if (p->inflight) {
		arm(p, PARTMAN_RETRY_MS);
		return;
	}
	DbJob *j = &p->job;
	*j = (DbJob){.kind = DB_JOB_QUERY, .done = on_done, .owner = p, .sql = SCHEMA_PARTITIONS_MAKE_SQL,
		     .nparams = 2, .params = {p->ahead, p->days}};
	if (!db_submit(p->db, j, PARTMAN_TIMEOUT_MS)) {
		arm(p, PARTMAN_RETRY_MS);
		return;
	}
	p->inflight = true;
}

static void arm_status(Partman *p)
{
	struct timeval tv = {STATUS_INTERVAL_MS / 1000, 0};
	evtimer_add(p->status_timer, &tv);
}

static void on_status(DbJob *job, DbOutcome *out)
{
	Partman *p = job->owner;
	p->status_inflight = false;
	arm_status(p);
	if (!out->ok || !out->res || PQntuples(out->res) != 1 || PQnfields(out->res) != STATS_NSTORE)
		return; /* the database down or not migrated yet: the last figures stand */
	for (int k = 0; k < STATS_NSTORE; k++)
		if (!PQgetisnull(out->res, 0, k) && PQgetlength(out->res, 0, k) == 8)
			stats_store_set(db_index(p->db), (StatsStore)k, (int64_t)pgarr_get64(PQgetvalue(out->res, 0, k)));
}

static void on_status_timer(evutil_socket_t fd, short what, void *arg)
{
	Partman *p = arg;
	(void)fd;
	(void)what;
	if (p->status_inflight) {
		arm_status(p);
		return;
	}
	p->status = (DbJob){.kind = DB_JOB_QUERY, .done = on_status, .owner = p, .sql = SCHEMA_STORE_STATUS_SQL};
	if (!db_submit(p->db, &p->status, STATUS_TIMEOUT_MS)) {
		arm_status(p);
		return;
	}
	p->status_inflight = true;
}

Partman *partman_new(struct event_base *base, Db *db)
{
	Partman *p = calloc(1, sizeof(*p));
	if (!p)
		fatal("at=oom");
	p->db = db;
	snprintf(p->ahead, sizeof(p->ahead), "%d", cfg->partition_ahead);
	snprintf(p->days, sizeof(p->days), "%d", cfg->partition_days);
	p->timer = evtimer_new(base, on_timer, p);
	p->status_timer = evtimer_new(base, on_status_timer, p);
	if (!p->timer || !p->status_timer)
		fatal("at=oom");
	arm(p, 0);
	struct timeval now = {0, 0};
	evtimer_add(p->status_timer, &now);
	return p;
}

void partman_free(Partman *p)
{
	if (!p)
		return;
	event_free(p->timer);
	event_free(p->status_timer);
	free(p);
}
