/* Connections to one database, as explicit state machines in the event loop.
 *
 *   BACKOFF --timer/demand--> CONNECTING --PQconnectPoll ok--> SETUP --schema ok--> READY
 *   READY --job--> BUSY --results--> READY
 *   any state --error or deadline--> BACKOFF (in-flight jobs fail, the socket is closed)
 *
 * The database as a whole is UP, SUSPECT or DOWN (see db.h): DOWN once no connection is ready
 * after one fails, which fails every queued job at once and makes db_submit() refuse, so no
 * request waits out a deadline on a database known to be gone (PgBouncer fails its waiting
 * clients when a server login fails the same way); UP again when a connection is set up.
 *
 * Invariants: conn_set_state() is the only place the state changes; a connection has at most
 * one libevent watch; the watch is removed before PQfinish; in-flight jobs are detached before
 * their callbacks run, since a callback may free its job. Inserts queue per database and a
 * ready connection takes as many as fit in one INSERT .. SELECT FROM unnest(..) statement: that
 * is the group commit. A lone insert is sent at once when a connection is idle. */
#include "db.h"

#include <event2/event.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cfg.h"
#include "nameset.h"
#include "schema.h"
#include "stats.h"

typedef enum { CONN_BACKOFF, CONN_CONNECTING, CONN_SETUP, CONN_READY, CONN_BUSY } ConnState;

static const char *const conn_state_names[] = {"backoff", "connecting", "setup", "ready", "busy"};

#define NAMESET_MAX 100000


typedef struct Conn {
	Db *db;
	int index;
	ConnState state;
	PGconn *pg;
	struct event *ev; /* the one watch on the socket */
	int ev_fd;
	short ev_what;
	struct event *timer; /* backoff */
	int backoff_ms;
	int64_t deadline_us; /* CONNECTING, SETUP, BUSY */
	int64_t sent_us;
	DbJob *inflight; /* one query, or the inserts of one batch */
	size_t inflight_metrics;
	DbJobKind inflight_kind;
	bool inflight_fresh; /* the inserts in flight were sent without ON CONFLICT */
	PGresult *result;
	bool paused; /* a streamed query's reader asked for a pause: the socket is not read */
	bool failed;
	char sqlstate[6];
	char error[256];
	SchemaInsert ins; /* the batch's parameters, reused */
	int setup_step;
} Conn;

struct Db {
	struct event_base *base;
	int index; /* 1-based, as in logs */
	char label[128];
	const char *url;
	Conn *conns;
	int nconns;
	DbJob *wq, **wq_tail;
	size_t wq_metrics;
	DbJob *qq, **qq_tail;
	struct event *janitor;
	DbHealth health;
	bool ever_up;
	double rate; /* metrics committed per ms by loaded batches (EWMA); 0: not measured */
	int64_t drained_us; /* when the last insert ended with more queued: the drain goes on */
	NameSet *names; /* names known to be in the database's catalogue */
	int64_t names_gen; /* the catalogue's generation those names were seen in */
};

static void conn_connect(Conn *c);
static void conn_on_event(evutil_socket_t fd, short what, void *arg);
/* Reads of a connection's socket in one event while more of an answer is waiting. */
#define CONN_READS_PER_EVENT 32
static void db_dispatch(Db *db);
static void expire_queue(DbJob **head, DbJob ***tail, size_t *metrics, int64_t now);
static void fail_queues(Db *db, const char *why);
int db_connected(const Db *db);

const char *db_health_name(DbHealth h)
{
	static const char *const names[] = {"up", "suspect", "down"};
	return names[h];
}

/* The only place the health changes; each change is one log line, never one per request. */
static void db_set_health(Db *db, DbHealth h)
{
	if (db->health == h)
		return;
	int level = h == DB_UP ? LOG_INFO : LOG_WARN;
	if (log_level <= level)
		log_write(level, "at=db-state db=%d host=%s from=%s to=%s", db->index, db->label,
			  db_health_name(db->health), db_health_name(h));
	db->health = h;
	if (h == DB_DOWN)
		fail_queues(db, "database down");
}

static void conn_set_state(Conn *c, ConnState s)
{
	static const bool allowed[5][5] = {
		/* from BACKOFF    */ {false, true, false, false, false},
		/* from CONNECTING */ {true, false, true, false, false},
		/* from SETUP      */ {true, false, false, true, false},
		/* from READY      */ {true, false, false, false, true},
		/* from BUSY       */ {true, false, false, true, false},
	};
	if (!allowed[c->state][s])
		fatal("at=impossible-state db=%d conn=%d from=%s to=%s", c->db->index, c->index,
		      conn_state_names[c->state], conn_state_names[s]);
	log_debug("at=conn-state db=%d conn=%d from=%s to=%s", c->db->index, c->index,
		  conn_state_names[c->state], conn_state_names[s]);
	c->state = s;
}

/* Watches the socket for read, plus write when want_write; re-created only when it changes. */
static void conn_watch(Conn *c, bool want_write)
{
	int fd = PQsocket(c->pg);
	short what = (short)((c->paused ? 0 : EV_READ) | EV_PERSIST | (want_write ? EV_WRITE : 0));
	if (c->ev && c->ev_fd == fd && c->ev_what == what)
		return;
	if (c->ev) {
		event_free(c->ev); /* event_free deletes it first */
		c->ev = NULL;
	}
	if (fd < 0)
		return;
	c->ev = event_new(c->db->base, fd, what, conn_on_event, c);
	if (!c->ev || event_add(c->ev, NULL) < 0)
		fatal("at=event-add-failed db=%d", c->db->index);
	c->ev_fd = fd;
	c->ev_what = what;
}

static void conn_unwatch(Conn *c)
{
	if (c->ev) {
		event_free(c->ev);
		c->ev = NULL;
	}
}

static void record_error(Conn *c, const PGresult *r, const char *fallback)
{
	if (c->failed)
		return;
	c->failed = true;
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state ? state : "");
	if (!msg)
		msg = fallback ? fallback : (c->pg ? PQerrorMessage(c->pg) : "unknown error");
	log_quote(c->error, sizeof(c->error), msg);
}

/* Calls done() on every job of a detached list. */
static void finish_jobs(DbJob *list, DbOutcome *out)
{
	while (list) {
		DbJob *next = list->next;
		list->next = NULL;
		list->done(list, out);
		list = next;
	}
}

static void conn_backoff(Conn *c)
{
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 50;
	if (c->backoff_ms > 1000)
		c->backoff_ms = 1000;
	struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
	evtimer_add(c->timer, &tv);
}

/* Closes the connection, fails what it had in flight and schedules a reconnect. */
static void conn_fail(Conn *c, const char *why)
{
	Db *db = c->db;
	char msg[256];
	log_quote(msg, sizeof(msg), c->error[0] ? c->error : why);
	/* A connection that was healthy says so loudly; retries of a dead one only at debug. */
	int level = c->backoff_ms == 0 ? LOG_WARN : LOG_DEBUG;
	if (log_level <= level)
		log_write(level, "at=db-error db=%d host=%s conn=%d state=%s sqlstate=%s error=\"%s\" reason=%s",
			  db->index, db->label, c->index, conn_state_names[c->state],
			  c->sqlstate[0] ? c->sqlstate : "none", msg, why);
	conn_unwatch(c);
	if (c->pg) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	if (c->result) {
		PQclear(c->result);
		c->result = NULL;
	}
	c->paused = false;
	DbJob *jobs = c->inflight;
	c->inflight = NULL;
	c->inflight_metrics = 0;
	bool sent = c->state == CONN_BUSY;
	conn_set_state(c, CONN_BACKOFF);
	conn_backoff(c);
	DbOutcome out = {.ok = false, .maybe_applied = sent, .error = why};
	snprintf(out.sqlstate, sizeof(out.sqlstate), "%s", c->sqlstate);
	c->failed = false;
	c->error[0] = c->sqlstate[0] = '\0';
	finish_jobs(jobs, &out);
	if (db_connected(db) == 0)
		db_set_health(db, DB_DOWN);
	else
		db_dispatch(db); /* queued work goes to the connections still up */
}

/* Flushes pending output; false when the connection broke. */
static bool conn_flush(Conn *c)
{
	int r = PQflush(c->pg);
	if (r < 0)
		return false;
	conn_watch(c, r == 1);
	return true;
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_connect(arg);
}

static void conn_connect(Conn *c)
{
	Db *db = c->db;
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {db->url, "m2pg", NULL};
	evtimer_del(c->timer);
	c->pg = PQconnectStartParams(keys, vals, 1);
	conn_set_state(c, CONN_CONNECTING);
	c->deadline_us = now_mono_us() + (int64_t)cfg->connect_timeout_ms * 1000;
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		record_error(c, NULL, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		conn_fail(c, "connect-failed");
		return;
	}
	conn_watch(c, true);
}

static void conn_on_notice(void *arg, const char *message)
{
	Conn *c = arg;
	char msg[256];
	log_info("at=db-notice db=%d message=\"%s\"", c->db->index, log_quote(msg, sizeof(msg), message));
}

static void conn_send_setup(Conn *c)
{
	PQsetNoticeProcessor(c->pg, conn_on_notice, c);
	/* The server stops a statement that outlives every deadline of ours: a backstop, since
	 * m2pg closes a connection whose statement is overdue, but the server may only notice
	 * when it next writes. Six times the longest deadline, for a streamed read goes on as long
	 * as its rows flow (see conn_read_results). */
	Buf sql = {0};
	int timeout = cfg->read_timeout_ms > cfg_write_patience_ms() ? cfg->read_timeout_ms : cfg_write_patience_ms();
	/* The partitions ahead, before this connection takes inserts: an insert routed to the
	 * default partition while a partition for its range is attached fails (the default's
	 * constraint changed under it), which at a first start, with no partition for today yet,
	 * failed the first writes in every database. Cheap when they exist; never fails the setup
	 * (the web's partman and gc make them later). */
	buf_addf(&sql,
		 "%sDO $p$ BEGIN PERFORM m2pg_partitions_make(now(), now() + make_interval(days => %d), %d); "
		 "EXCEPTION WHEN OTHERS THEN RAISE WARNING 'partitions ahead not made: %%', SQLERRM; END $p$;"
		 "SET statement_timeout = %lld;%s",
		 SCHEMA_SETUP_SQL, cfg->partition_ahead, cfg->partition_days, (long long)timeout * 6,
		 SCHEMA_SESSION_SQL);
	bool sent = PQsetnonblocking(c->pg, 1) == 0 && PQsendQuery(c->pg, sql.p);
	buf_free(&sql);
	if (!sent) {
		record_error(c, NULL, NULL);
		conn_fail(c, "setup-send-failed");
		return;
	}
	conn_set_state(c, CONN_SETUP);
	c->setup_step = 0;
	c->deadline_us = now_mono_us() + ((int64_t)cfg->connect_timeout_ms + cfg->read_timeout_ms) * 1000;
	if (!conn_flush(c))
		conn_fail(c, "setup-send-failed");
}

static void build_insert(Conn *c, const DbJob *jobs)
{
	schema_insert_begin(&c->ins);
	c->ins.names_gen = c->db->names_gen;
	for (const DbJob *j = jobs; j; j = j->next)
		for (size_t i = 0; i < j->n; i++)
			schema_insert_add(&c->ins, &j->metrics[i],
					  !nameset_has(c->db->names, j->metrics[i].name, j->metrics[i].name_len));
	schema_insert_end(&c->ins);
}

static bool conn_send_inserts(Conn *c)
{
	Db *db = c->db;
	DbJob **tail = &c->inflight;
	size_t metrics = 0;
	while (db->wq && (metrics == 0 || metrics + db->wq->n <= (size_t)cfg->batch_max)) {
		DbJob *j = db->wq;
		db->wq = j->next;
		metrics += j->n;
		*tail = j;
		tail = &j->next;
	}
	*tail = NULL;
	if (!db->wq)
		db->wq_tail = &db->wq;
	db->wq_metrics -= metrics;
	c->inflight_metrics = metrics;
	c->inflight_kind = DB_JOB_INSERT;
	c->inflight_fresh = true;
	for (const DbJob *j = c->inflight; j; j = j->next)
		c->inflight_fresh &= j->fresh;
	build_insert(c, c->inflight);
	const char *values[SCHEMA_INSERT_PARAMS];
	int lengths[SCHEMA_INSERT_PARAMS], formats[SCHEMA_INSERT_PARAMS];
	schema_insert_params(&c->ins, values, lengths, formats);
	c->sent_us = now_mono_us();
	c->deadline_us = c->sent_us + (int64_t)cfg_write_patience_ms() * 1000;
	return PQsendQueryPrepared(c->pg, c->inflight_fresh ? SCHEMA_STMT_INSERT_NEW : SCHEMA_STMT_INSERT,
				   SCHEMA_INSERT_PARAMS, values, lengths, formats, 0) == 1;
}

static bool conn_send_query(Conn *c)
{
	Db *db = c->db;
	DbJob *j = db->qq;
	db->qq = j->next;
	if (!db->qq)
		db->qq_tail = &db->qq;
	j->next = NULL;
	c->inflight = j;
	c->inflight_metrics = 0;
	c->inflight_kind = DB_JOB_QUERY;
	c->sent_us = now_mono_us();
	c->deadline_us = j->deadline_us;
	if (PQsendQueryParams(c->pg, j->sql, j->nparams, NULL, j->params, j->lengths, j->formats, 1) != 1)
		return false;
	return !j->row || PQsetSingleRowMode(c->pg) == 1;
}

/* Gives queued work to every ready connection, inserts first: they are short and latency
 * bound, and a batch carries every insert queued so far. */
static void db_dispatch(Db *db)
{
	/* Few insert batches in flight make each one larger: fewer commits for the database to
	 * do, which on a machine it shares is what bounds ingest (make bench: 1 in flight gave
	 * 21-26k POSTs/s where 4 gave 17k). Reads get the other connections, leaving one free
	 * for inserts, so a slow read never holds writes up. */
	int writing = 0, reading = 0;
	for (int i = 0; i < db->nconns; i++) {
		if (db->conns[i].state == CONN_BUSY) {
			writing += db->conns[i].inflight_kind == DB_JOB_INSERT;
			reading += db->conns[i].inflight_kind == DB_JOB_QUERY;
		}
	}
	int max_reading = db_connected(db) - 1; /* one connection that is up stays for inserts */
	if (db->qq) /* a read whose time is up is not worth a statement */
		expire_queue(&db->qq, &db->qq_tail, NULL, now_mono_us());
	for (int i = 0; i < db->nconns && (db->wq || db->qq); i++) {
		Conn *c = &db->conns[i];
		if (c->state != CONN_READY)
			continue;
		bool insert = db->wq && writing < cfg->write_batches;
		if (!insert && !(db->qq && reading < max_reading))
			break;
		writing += insert;
		reading += !insert;
		bool sent = insert ? conn_send_inserts(c) : conn_send_query(c);
		conn_set_state(c, CONN_BUSY);
		if (!sent) {
			record_error(c, NULL, NULL);
			conn_fail(c, "send-failed");
		} else if (!conn_flush(c)) {
			conn_fail(c, "send-failed");
		}
	}
}

/* Only what the client controls: every other value is validated before it reaches a database,
 * so any other error (a missing table, a permission, an overflow) is that database's, and
 * counts it out of the read instead of failing the read. */
static bool is_client_fault(const char *sqlstate)
{
	return strcmp(sqlstate, "2201B") == 0; /* invalid regular expression */
}

static bool is_connection_gone(const char *sqlstate)
{
	return strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P0", 4) == 0 ||
	       strcmp(sqlstate, "57014") == 0 /* canceled: the session may be stuck; start afresh */;
}

/* The last result of the current command arrived. */
static void conn_complete(Conn *c)
{
	Db *db = c->db;
	if (c->state == CONN_SETUP) {
		if (c->failed) {
			log_error("at=schema-error db=%d host=%s step=%d sqlstate=%s error=\"%s\"", db->index,
				  db->label, c->setup_step, c->sqlstate, c->error);
			conn_fail(c, "schema-failed");
			return;
		}
		/* Step 0 was the schema; then one statement prepared per step. */
		if (c->setup_step < schema_nstatements) {
			const SchemaStmt *st = &schema_statements[c->setup_step++];
			if (!PQsendPrepare(c->pg, st->name, st->sql, 0, NULL) || !conn_flush(c)) {
				record_error(c, NULL, NULL);
				conn_fail(c, "prepare-failed");
			}
			return;
		}
		if (db->health == DB_DOWN || !db->ever_up) {
			log_info("at=db-up db=%d host=%s schema=ok", db->index, db->label);
			/* It may come back restored or replaced: its catalogue may lack names we knew. */
			nameset_clear(db->names);
		}
		db->ever_up = true;
		if (db->health == DB_DOWN)
			db_set_health(db, DB_UP);
		c->backoff_ms = 0;
		conn_set_state(c, CONN_READY);
		db_dispatch(db);
		return;
	}

	int64_t ms = (now_mono_us() - c->sent_us) / 1000;
	DbJob *jobs = c->inflight;
	PGresult *res = c->result;
	c->inflight = NULL;
	c->result = NULL;
	if (c->inflight_kind == DB_JOB_INSERT && c->failed && c->inflight_fresh && strcmp(c->sqlstate, "23505") == 0) {
		/* The database holds one of the ids m2pg just made (or a unique index of its own
		 * refuses a row): nothing of the statement was stored. Its jobs go back to the head of
		 * the queue, to be sent as a retry is, with ON CONFLICT DO NOTHING. */
		log_warn("at=insert-retry db=%d host=%s rows=%zu sqlstate=23505 error=\"%s\"", db->index, db->label,
			 c->inflight_metrics, c->error);
		DbJob *last = jobs;
		for (DbJob *j = jobs; j; j = j->next) {
			j->fresh = false;
			last = j;
		}
		last->next = db->wq;
		if (!db->wq)
			db->wq_tail = &last->next;
		db->wq = jobs;
		db->wq_metrics += c->inflight_metrics;
		c->inflight_metrics = 0;
		c->failed = false;
		c->error[0] = c->sqlstate[0] = '\0';
		if (res)
			PQclear(res);
		conn_set_state(c, CONN_READY);
		db_dispatch(db);
		return;
	}
	DbOutcome out = {.ok = !c->failed, .res = res};
	bool gone = c->failed && is_connection_gone(c->sqlstate);
	out.maybe_applied = gone; /* the commit may have happened before the connection broke */
	snprintf(out.sqlstate, sizeof(out.sqlstate), "%s", c->sqlstate);
	out.client_fault = c->failed && is_client_fault(c->sqlstate);
	char error[256]; /* c->error is reset before the callbacks run */
	snprintf(error, sizeof(error), "%s", c->error);
	out.error = error;

	if (c->inflight_kind == DB_JOB_INSERT && !c->failed) { /* the names the batch added */
		/* The catalogue's generation changed (edited behind our back): the statement added
		 * every name of its batch, and what the cache holds may be gone. A batch that ran
		 * before the change but answers after it is not cached from. */
		int64_t gen = res && PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : c->ins.names_gen;
		if (gen != c->ins.names_gen) {
			if (c->ins.names_gen != SCHEMA_NAMES_GEN_UNKNOWN)
				log_info("at=names-changed db=%d gen=%lld", db->index, (long long)gen);
			nameset_clear(db->names);
			db->names_gen = gen;
		}
		if (gen == db->names_gen)
			for (size_t i = 0; i < c->ins.nnew; i++)
				nameset_add(db->names, c->ins.new_names[i]->name, c->ins.new_names[i]->name_len);
	}
	if (c->inflight_kind == DB_JOB_INSERT) {
		if (c->failed)
			log_error("at=insert-error db=%d host=%s rows=%zu sqlstate=%s error=\"%s\"",
				  db->index, db->label, c->inflight_metrics, c->sqlstate, c->error);
		else
			log_debug("at=insert db=%d rows=%zu measure#m2pg.insert.ms=%lld", db->index,
				  c->inflight_metrics, (long long)ms);
		if (!c->failed)
			stats_rows_inserted(db->index, c->inflight_metrics);
		int64_t now = now_mono_us();
		if (!c->failed && c->inflight_metrics >= 64) {
			/* Only batches of some size say what the database commits under load: a lone
			 * metric's round trip is latency, not throughput. While the queue stays busy the
			 * rate is what drained since the last insert ended, so that the time between
			 * batches (the loop busy with requests, a commit elsewhere) counts too. */
			int64_t span_us = db->drained_us ? now - db->drained_us : ms * 1000;
			double sample = (double)c->inflight_metrics * 1000.0 / (double)(span_us > 1000 ? span_us : 1000);
			db->rate = db->rate > 0 ? 0.8 * db->rate + 0.2 * sample : sample;
		}
		db->drained_us = !c->failed && db->wq ? now : 0;
		if (!c->failed && db->health == DB_SUSPECT && ms < cfg->write_timeout_ms)
			db_set_health(db, DB_UP);
	} else if (c->failed) {
		log_warn("at=query-error db=%d host=%s sqlstate=%s error=\"%s\" client_fault=%s",
			 db->index, db->label, c->sqlstate, c->error, out.client_fault ? "true" : "false");
	} else {
		log_debug("at=query db=%d rows=%d measure#m2pg.query.ms=%lld", db->index,
			  res ? PQntuples(res) : 0, (long long)ms);
	}
	c->inflight_metrics = 0;
	if (gone) {
		conn_fail(c, "connection-lost"); /* keeps c->error for its log line */
	} else {
		c->failed = false;
		c->error[0] = c->sqlstate[0] = '\0';
		conn_set_state(c, CONN_READY);
	}
	finish_jobs(jobs, &out);
	if (out.res)
		PQclear(out.res);
	db_dispatch(db);
}

/* Reads every result that has arrived; calls conn_complete() after the last one. */
static void conn_read_results(Conn *c)
{
	while (c->pg && !PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (!r) {
			conn_complete(c);
			return;
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE && c->state == CONN_BUSY && c->inflight && c->inflight->row &&
		    !c->failed) {
			/* A stream is overdue when its rows stop, not when a large answer takes long. */
			c->deadline_us = now_mono_us() + (int64_t)cfg->read_timeout_ms * 1000;
			if (!c->inflight->row(c->inflight, r)) { /* r is the job's now */
				c->paused = true;
				conn_watch(c, false);
				return;
			}
			continue;
		}
		if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) {
			record_error(c, r, NULL);
			PQclear(r);
		} else if (st == PGRES_TUPLES_OK && c->state == CONN_BUSY && !c->result) {
			c->result = r;
		} else {
			PQclear(r);
		}
	}
}

static void conn_on_event(evutil_socket_t fd, short what, void *arg)
{
	Conn *c = arg;
	(void)fd;
	if (c->state == CONN_CONNECTING) {
		switch (PQconnectPoll(c->pg)) {
		case PGRES_POLLING_READING:
			conn_unwatch(c); /* the socket may have changed: watch it afresh */
			conn_watch(c, false);
			return;
		case PGRES_POLLING_WRITING:
			conn_unwatch(c);
			conn_watch(c, true);
			return;
		case PGRES_POLLING_OK:
			conn_send_setup(c);
			return;
		default:
			record_error(c, NULL, PQerrorMessage(c->pg));
			conn_fail(c, "connect-failed");
			return;
		}
	}
	if (c->state != CONN_SETUP && c->state != CONN_BUSY && c->state != CONN_READY)
		return;
	if (what & EV_READ) {
		if (!PQconsumeInput(c->pg)) {
			record_error(c, NULL, PQerrorMessage(c->pg));
			conn_fail(c, "connection-lost");
			return;
		}
	}
	if (!conn_flush(c)) {
		record_error(c, NULL, PQerrorMessage(c->pg));
		conn_fail(c, "connection-lost");
		return;
	}
	if (c->state == CONN_READY) {
		/* Nothing asked: the server spoke on its own, e.g. to say it is shutting down. */
		PGresult *r;
		while (!PQisBusy(c->pg) && (r = PQgetResult(c->pg)))
			PQclear(r);
		if (PQstatus(c->pg) == CONNECTION_BAD) {
			record_error(c, NULL, PQerrorMessage(c->pg));
			conn_fail(c, "connection-lost");
		}
		return;
	}
	conn_read_results(c);
	/* Most of a large answer is already waiting in the socket: read on while it is, rather than
	 * one buffer of libpq's (8 to 16 KB) per pass of the loop, which an answer of 5 MB took 600
	 * times. Bounded, so that the loop's other events get their turn. */
	for (int k = 0; k < CONN_READS_PER_EVENT && c->state == CONN_BUSY && c->pg && !c->paused && PQisBusy(c->pg);
	     k++) {
		int avail = 0;
		if (ioctl(PQsocket(c->pg), FIONREAD, &avail) < 0 || avail <= 0)
			break;
		if (!PQconsumeInput(c->pg)) {
			record_error(c, NULL, PQerrorMessage(c->pg));
			conn_fail(c, "connection-lost");
			return;
		}
		conn_read_results(c);
	}
}

/* Fails every queued job whose deadline has passed. Inserts share one patience, so theirs
 * expire in queue order; reads get what is left of their request's time, so any may. */
static void expire_queue(DbJob **head, DbJob ***tail, size_t *metrics, int64_t now)
{
	DbJob *expired = NULL, **etail = &expired;
	for (DbJob **pp = head; *pp;) {
		DbJob *j = *pp;
		if (j->deadline_us > now) {
			if (metrics)
				break; /* inserts: the rest are younger */
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (metrics)
			*metrics -= j->n;
		j->next = NULL;
		*etail = j;
		etail = &j->next;
	}
	if (!expired)
		return;
	if (metrics) { /* removed from the head only */
		if (!*head)
			*tail = head;
	} else {
		*tail = head;
		while (**tail)
			*tail = &(**tail)->next;
	}
	DbOutcome out = {.ok = false, .error = "timed out waiting for a connection"};
	finish_jobs(expired, &out);
}

/* Every 100 ms: connections past their deadline are closed (a hung server never answers, and
 * TCP keepalives take minutes), and jobs that waited in a queue past theirs fail. */
static void db_on_janitor(evutil_socket_t fd, short what, void *arg)
{
	Db *db = arg;
	(void)fd;
	(void)what;
	int64_t now = now_mono_us();
	for (int i = 0; i < db->nconns; i++) {
		Conn *c = &db->conns[i];
		if ((c->state == CONN_CONNECTING || c->state == CONN_SETUP || c->state == CONN_BUSY) &&
		    now > c->deadline_us) {
			snprintf(c->error, sizeof(c->error), "no answer within the deadline");
			if (c->state == CONN_BUSY && db->health == DB_UP)
				db_set_health(db, DB_SUSPECT);
			conn_fail(c, "timeout");
		}
	}
	expire_queue(&db->wq, &db->wq_tail, &db->wq_metrics, now);
	expire_queue(&db->qq, &db->qq_tail, NULL, now);
}

Db *db_new(struct event_base *base, int index, const char *url)
{
	Db *db = calloc(1, sizeof(*db));
	if (!db)
		fatal("at=oom");
	db->base = base;
	db->index = index;
	db->url = url;
	cfg_db_label(url, db->label, sizeof(db->label));
	db->wq_tail = &db->wq;
	db->qq_tail = &db->qq;
	db->names = nameset_new(NAMESET_MAX);
	db->names_gen = SCHEMA_NAMES_GEN_UNKNOWN;
	db->nconns = cfg->db_connections;
	db->conns = calloc((size_t)db->nconns, sizeof(Conn));
	if (!db->conns)
		fatal("at=oom");
	for (int i = 0; i < db->nconns; i++) {
		Conn *c = &db->conns[i];
		c->db = db;
		c->index = i + 1;
		c->state = CONN_BACKOFF;
		c->timer = evtimer_new(base, conn_on_timer, c);
		if (!c->timer)
			fatal("at=oom");
	}
	db->janitor = event_new(base, -1, EV_PERSIST, db_on_janitor, db);
	struct timeval tv = {0, 100000};
	if (!db->janitor || event_add(db->janitor, &tv) < 0)
		fatal("at=event-add-failed");
	return db;
}

void db_start(Db *db)
{
	for (int i = 0; i < db->nconns; i++)
		conn_connect(&db->conns[i]);
}

void db_job_resume(Db *db, DbJob *job)
{
	for (int i = 0; i < db->nconns; i++) {
		Conn *c = &db->conns[i];
		if (c->inflight != job || !c->paused)
			continue;
		c->paused = false;
		conn_watch(c, false);
		/* Rows libpq already holds would not wake the socket: read them on the next pass. */
		if (c->ev)
			event_active(c->ev, EV_READ, 0);
	}
}

/* Fails every queued job (not those in flight). */
static void fail_queues(Db *db, const char *why)
{
	DbOutcome out = {.ok = false, .error = why};
	DbJob *w = db->wq, *q = db->qq;
	db->wq = db->qq = NULL;
	db->wq_tail = &db->wq;
	db->qq_tail = &db->qq;
	db->wq_metrics = 0;
	finish_jobs(w, &out);
	finish_jobs(q, &out);
}

void db_abort_all(Db *db)
{
	DbOutcome out = {.ok = false, .maybe_applied = true, .error = "shutting down"};
	for (int i = 0; i < db->nconns; i++) {
		Conn *c = &db->conns[i];
		DbJob *jobs = c->inflight;
		c->inflight = NULL;
		finish_jobs(jobs, &out);
	}
	fail_queues(db, "shutting down");
}

void db_free(Db *db)
{
	if (!db)
		return;
	db_abort_all(db);
	for (int i = 0; i < db->nconns; i++) {
		Conn *c = &db->conns[i];
		conn_unwatch(c);
		if (c->pg)
			PQfinish(c->pg);
		if (c->result)
			PQclear(c->result);
		event_free(c->timer);
		schema_insert_free(&c->ins);
	}
	event_free(db->janitor);
	nameset_free(db->names);
	free(db->conns);
	free(db);
}

bool db_submit(Db *db, DbJob *job, int timeout_ms)
{
	if (db->health == DB_DOWN)
		return false; /* the reconnect loop alone probes it */
	job->next = NULL;
	job->deadline_us = now_mono_us() + (int64_t)timeout_ms * 1000;
	if (job->kind == DB_JOB_INSERT) {
		if (db->wq_metrics + job->n > (size_t)cfg->db_queue_max)
			return false;
		*db->wq_tail = job;
		db->wq_tail = &job->next;
		db->wq_metrics += job->n;
	} else {
		*db->qq_tail = job;
		db->qq_tail = &job->next;
	}
	db_dispatch(db);
	return true;
}

size_t db_queued_metrics(const Db *db)
{
	size_t n = db->wq_metrics;
	for (int i = 0; i < db->nconns; i++)
		n += db->conns[i].inflight_metrics;
	return n;
}

bool db_can_commit(const Db *db, size_t n, int ms)
{
	/* An idle database takes any batch: the bound is on queues building up, and a batch larger
	 * than the rate times ms would otherwise be refused forever, however idle. */
	if (db->rate <= 0 || db_queued_metrics(db) == 0)
		return true;
	return (double)(db_queued_metrics(db) + n) / db->rate <= (double)ms;
}

DbHealth db_health(const Db *db)
{
	return db->health;
}

void db_mark_suspect(Db *db)
{
	if (db->health == DB_UP)
		db_set_health(db, DB_SUSPECT);
}

void db_mark_answered(Db *db)
{
	if (db->health == DB_SUSPECT)
		db_set_health(db, DB_UP);
}

int db_index(const Db *db)
{
	return db->index;
}

const char *db_label(const Db *db)
{
	return db->label;
}

int db_connected(const Db *db)
{
	int n = 0;
	for (int i = 0; i < db->nconns; i++)
		n += db->conns[i].state == CONN_READY || db->conns[i].state == CONN_BUSY;
	return n;
}

bool db_busy(const Db *db)
{
	if (db->wq || db->qq)
		return true;
	for (int i = 0; i < db->nconns; i++)
		if (db->conns[i].inflight)
			return true;
	return false;
}
