/* Hinted handoff queue of one database (in one worker). Batches, each a private copy of the
 * metrics (one allocation for the array, one for the names), numbered in the order they
 * failed and kept in two FIFOs by class: acknowledged (the client got a 201, so another
 * database holds a copy) and unacknowledged (answered 503: the hint may be the only copy,
 * but the client was told to retry). The drain merges the two by number, takes batches up to
 * BATCH_MAX metrics, submits them as ordinary insert jobs and waits for all of them before the
 * next round, so hints reach the database in the order they failed; a failed round backs off
 * from 100 ms up to 5 s. The batches of a round are a prefix of each FIFO (the lowest
 * numbers) and are never dropped while in flight.
 *
 * Past HINTS_MAX, unacknowledged hints go first, newest first: the client of a recent 503 is
 * the one most likely still retrying it, while one it gave up on long ago has no other copy;
 * and dropping the newest never reorders what is kept. An acknowledged hint is never dropped
 * for an unacknowledged one; among acknowledged hints the oldest go, as before. */
#include "hint.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cfg.h"
#include "jsonw.h"
#include "tm.h"

typedef struct HintBatch HintBatch;

typedef struct HintQueue {
	HintBatch *head, *tail;
} HintQueue;

struct HintBatch {
	struct HintBatch *prev, *next; /* within its class */
	Hints *owner;
	uint64_t seq;  /* order of failure, across both classes */
	bool acked;
	bool in_round; /* submitted in the current round */
	DbJob job;
	Metric *m;
	char *arena;
	size_t n;
};

struct Hints {
	struct event_base *base;
	Db *db;
	int worker;
	char key[17]; /* hash of the database URL: names its spool files */
	HintQueue q[2];    /* [0] unacknowledged, [1] acknowledged */
	uint64_t next_seq;
	size_t count;      /* metrics queued, both classes */
	int inflight;      /* batches of the current round not done */
	int round_batches; /* batches the current round sent: the heads of the FIFOs */
	bool submitting;   /* inside the loop that sends a round */
	bool round_failed;
	int backoff_ms;
	struct event *timer;
	uint64_t dropped[2]; /* metrics dropped, by class */
};

static void hints_schedule(Hints *h, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(h->timer, &tv);
}

static void batch_free(HintBatch *b)
{
	free(b->m);
	free(b->arena);
	free(b);
}

static void queue_push(HintQueue *q, HintBatch *b)
{
	b->next = NULL;
	b->prev = q->tail;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
}

static void queue_unlink(HintQueue *q, HintBatch *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		q->head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		q->tail = b->prev;
	b->prev = b->next = NULL;
}

static bool hints_empty(const Hints *h)
{
	return !h->q[0].head && !h->q[1].head;
}

/* The oldest batch of either class after `a` and `b` (the cursors into each FIFO). */
static HintBatch *next_in_order(HintBatch *a, HintBatch *b)
{
	if (!a || !b)
		return a ? a : b;
	return a->seq < b->seq ? a : b;
}

static void round_done(Hints *h)
{
	if (h->round_failed) {
		h->backoff_ms = h->backoff_ms ? h->backoff_ms * 2 : 100;
		if (h->backoff_ms > 5000)
			h->backoff_ms = 5000;
		hints_schedule(h, h->backoff_ms);
		return;
	}
	h->backoff_ms = 0;
	if (!hints_empty(h))
		hints_schedule(h, 0);
	else
		log_info("at=hints-drained db=%d worker=%d", db_index(h->db), h->worker);
}

/* Every batch of the round is done: the round's batches are the heads of the FIFOs; pop them
 * when all went through, else try again later. */
static void conclude_round(Hints *h)
{
	size_t popped = 0;
	for (int k = 0; k < 2; k++) {
		while (h->q[k].head && h->q[k].head->in_round) {
			HintBatch *x = h->q[k].head;
			if (h->round_failed) { /* stays, in place, for the next round */
				for (; x && x->in_round; x = x->next)
					x->in_round = false;
				break;
			}
			queue_unlink(&h->q[k], x);
			h->count -= x->n;
			popped += x->n;
			batch_free(x);
		}
	}
	if (!h->round_failed) {
		log_info("at=hints-delivered db=%d worker=%d metrics=%zu left=%zu", db_index(h->db), h->worker,
			 popped, h->count);
	}
	h->round_batches = 0;
	round_done(h);
}

static void batch_done(DbJob *job, DbOutcome *out)
{
	HintBatch *b = job->owner;
	Hints *h = b->owner;
	h->inflight--;
	if (!out->ok)
		h->round_failed = true;
	if (h->inflight == 0 && !h->submitting) /* a job may fail inside db_submit() */
		conclude_round(h);
}

static void hints_on_timer(evutil_socket_t fd, short what, void *arg)
{
	Hints *h = arg;
	(void)fd;
	(void)what;
	if (h->inflight || hints_empty(h))
		return;
	if (db_connected(h->db) == 0) {
		h->round_failed = true;
		round_done(h);
		return;
	}
	h->round_failed = false;
	h->submitting = true;
	size_t metrics = 0;
	HintBatch *cur[2] = {h->q[0].head, h->q[1].head};
	for (HintBatch *b; (b = next_in_order(cur[0], cur[1])) &&
			   (metrics == 0 || metrics + b->n <= (size_t)cfg->batch_max);) {
		b->job = (DbJob){.kind = DB_JOB_INSERT, .done = batch_done, .owner = b, .metrics = b->m, .n = b->n};
		h->inflight++;
		h->round_batches++;
		b->in_round = true;
		if (!db_submit(h->db, &b->job, cfg_write_patience_ms())) {
			/* The queue is full: this round is what went in, if anything did. */
			b->in_round = false;
			h->inflight--;
			h->round_batches--;
			h->round_failed |= h->round_batches == 0;
			break;
		}
		cur[b->acked] = b->next;
		metrics += b->n;
	}
	h->submitting = false;
	if (h->inflight == 0)
		conclude_round(h);
}

Hints *hints_new(struct event_base *base, Db *db, const char *url, int worker)
{
	Hints *h = calloc(1, sizeof(*h));
	if (!h || !(h->timer = evtimer_new(base, hints_on_timer, h)))
		fatal("at=oom");
	h->base = base;
	h->db = db;
	h->worker = worker;
	/* Keyed by the URL without its password, so hints survive a credential rotation. */
	char bare[2048];
	snprintf(bare, sizeof(bare), "%s", url);
	char *scheme = strstr(bare, "://"), *at = scheme ? strchr(scheme + 3, '@') : NULL;
	char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
	if (at && colon && colon < at)
		memmove(colon, at, strlen(at) + 1);
	snprintf(h->key, sizeof(h->key), "%016llx", (unsigned long long)fnv1a64(bare, strlen(bare)));
	return h;
}

void hints_free(Hints *h)
{
	if (!h)
		return;
	for (int k = 0; k < 2; k++)
		while (h->q[k].head) {
			HintBatch *b = h->q[k].head;
			queue_unlink(&h->q[k], b);
			batch_free(b);
		}
	event_free(h->timer);
	free(h);
}

bool hints_draining(const Hints *h)
{
	return !hints_empty(h) && db_connected(h->db) > 0;
}

size_t hints_count(const Hints *h)
{
	return h->count;
}

uint64_t hints_dropped(const Hints *h)
{
	return h->dropped[0] + h->dropped[1];
}

uint64_t hints_dropped_acked(const Hints *h)
{
	return h->dropped[1];
}

/* Bucket range of what is dropped, for the log line that tells where to repair. */
typedef struct DropLog {
	size_t n;
	int64_t lo, hi;
} DropLog;

static void drop_note(DropLog *d, const Metric *m, size_t n)
{
	if (d->n == 0) {
		d->lo = INT64_MAX;
		d->hi = INT64_MIN;
	}
	for (size_t i = 0; i < n; i++) {
		d->lo = m[i].bucket_us < d->lo ? m[i].bucket_us : d->lo;
		d->hi = m[i].bucket_us > d->hi ? m[i].bucket_us : d->hi;
	}
	d->n += n;
}

static void log_dropped(Hints *h, bool acked, const DropLog *d)
{
	if (d->n == 0)
		return;
	char from[32], to[32];
	tm_format_rfc3339(d->lo, from);
	tm_format_rfc3339(d->hi, to);
	h->dropped[acked] += d->n;
	log_error("at=hints-dropped db=%d worker=%d class=%s metrics=%zu total=%llu acked_total=%llu "
		  "from=%s to=%s hint=\"run m2pg repair --from %s --to %s\"",
		  db_index(h->db), h->worker, acked ? "acked" : "unacked", d->n,
		  (unsigned long long)hints_dropped(h), (unsigned long long)h->dropped[1], from, to, from, to);
}

static void drop_batch(Hints *h, HintBatch *b, DropLog *d)
{
	queue_unlink(&h->q[b->acked], b);
	h->count -= b->n;
	drop_note(d, b->m, b->n);
	batch_free(b);
}

/* Makes room for n more metrics of class `acked`, or says there is none. An unacknowledged
 * batch only fits in free room (the newest unacknowledged hint is itself). An acknowledged one
 * evicts unacknowledged batches, newest first, then the oldest acknowledged ones; batches of
 * the round in flight stay (they are the oldest, at the heads). */
static bool make_room(Hints *h, size_t n, bool acked)
{
	size_t max = (size_t)cfg->hints_max;
	if (n > max)
		return false;
	if (h->count + n <= max)
		return true;
	if (!acked)
		return false;
	DropLog d[2] = {{0}, {0}};
	while (h->count + n > max && h->q[0].tail && !h->q[0].tail->in_round)
		drop_batch(h, h->q[0].tail, &d[0]);
	while (h->count + n > max && h->q[1].head && !h->q[1].head->in_round)
		drop_batch(h, h->q[1].head, &d[1]);
	log_dropped(h, false, &d[0]);
	log_dropped(h, true, &d[1]);
	return h->count + n <= max;
}

void hints_add(Hints *h, const Metric *m, size_t n, bool acked)
{
	if (n == 0)
		return;
	if (!make_room(h, n, acked)) { /* the newest goes: this batch */
		DropLog d = {0};
		drop_note(&d, m, n);
		log_dropped(h, acked, &d);
		return;
	}
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += m[i].name_len + 1u + (m[i].source ? m[i].source_len + 1u : 0);
	HintBatch *b = calloc(1, sizeof(*b));
	if (!b || !(b->m = malloc(n * sizeof(Metric))) || !(b->arena = malloc(bytes)))
		fatal("at=oom");
	b->owner = h;
	b->n = n;
	b->seq = h->next_seq++;
	b->acked = acked;
	memcpy(b->m, m, n * sizeof(Metric));
	char *p = b->arena;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, m[i].name, m[i].name_len + 1u);
		b->m[i].name = p;
		p += m[i].name_len + 1u;
		if (m[i].source) {
			memcpy(p, m[i].source, m[i].source_len + 1u);
			b->m[i].source = p;
			p += m[i].source_len + 1u;
		}
	}
	queue_push(&h->q[acked], b);
	if (h->count == 0)
		log_info("at=hints-start db=%d worker=%d", db_index(h->db), h->worker);
	h->count += n;
	if (!h->inflight && !evtimer_pending(h->timer, NULL))
		hints_schedule(h, h->backoff_ms ? h->backoff_ms : 100);
}

static void write_metric(Buf *b, const Metric *m)
{
	char tmp[40];
	uuid_format(&m->id, tmp);
	buf_adds(b, "{\"id\": \"");
	buf_add(b, tmp, UUID_STR_LEN);
	buf_adds(b, "\", \"bucket\": \"");
	buf_add(b, tmp, tm_format_rfc3339(m->bucket_us, tmp));
	buf_adds(b, "\", \"name\": ");
	jsonw_string(b, m->name, m->name_len);
	if (m->source) {
		buf_adds(b, ", \"source\": ");
		jsonw_string(b, m->source, m->source_len);
	}
	for (int s = 0; s < METRIC_NSTATS; s++) {
		if (!(m->present & (1u << s)))
			continue;
		buf_addf(b, ", \"%s\": ", metric_stat_names[s]);
		jsonw_double(b, m->v[s]);
	}
	buf_adds(b, "}\n");
}

void hints_spool(Hints *h)
{
	const char *dir = getenv("M2PG_SPOOL_DIR");
	if (hints_empty(h))
		return;
	if (!dir || !*dir) {
		log_error("at=hints-lost db=%d worker=%d metrics=%zu reason=\"shutdown without M2PG_SPOOL_DIR\"",
			  db_index(h->db), h->worker, h->count);
		return;
	}
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/hints-%s-%d-%d.jsonl", dir, h->key, (int)getpid(), h->worker);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	Buf b = {0};
	HintBatch *cur[2] = {h->q[0].head, h->q[1].head};
	for (HintBatch *x; (x = next_in_order(cur[0], cur[1])); cur[x->acked] = x->next)
		for (size_t i = 0; i < x->n; i++)
			write_metric(&b, &x->m[i]);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, b.p, b.len) == (ssize_t)b.len && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	ok = ok && rename(tmp, path) == 0;
	buf_free(&b);
	if (!ok) {
		log_error("at=hints-lost db=%d worker=%d metrics=%zu path=%s error=\"%s\"", db_index(h->db),
			  h->worker, h->count, path, strerror(errno));
		return;
	}
	log_info("at=hints-spooled db=%d worker=%d metrics=%zu path=%s", db_index(h->db), h->worker, h->count,
		 path);
}

void hints_load(Hints *h)
{
	const char *dir = getenv("M2PG_SPOOL_DIR");
	if (!dir || !*dir)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	char prefix[40];
	snprintf(prefix, sizeof(prefix), "hints-%s-", h->key);
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < 6 ||
		    strcmp(e->d_name + len - 6, ".jsonl") != 0)
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		char *line = NULL;
		size_t cap = 0, loaded = 0, bad = 0;
		ssize_t n;
		while ((n = getline(&line, &cap, f)) > 0) {
			MetricBatch mb;
			MetricError err;
			if (!metric_parse_body(line, (size_t)n, &mb, &err)) {
				bad++;
				continue;
			}
			/* Its class is not kept: it was worth keeping across a restart. */
			hints_add(h, mb.m, mb.n, true);
			loaded += mb.n;
			metric_batch_free(&mb);
		}
		free(line);
		fclose(f);
		unlink(path);
		log_info("at=hints-loaded db=%d worker=%d metrics=%zu bad=%zu path=%s", db_index(h->db), h->worker,
			 loaded, bad, path);
	}
	closedir(d);
}
