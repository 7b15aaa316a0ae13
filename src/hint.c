/* Hinted handoff queue of one database (in one worker). A FIFO of batches, each a private
 * copy of the metrics (one allocation for the array, one for the names). The drain takes
 * consecutive batches up to BATCH_MAX metrics, submits them as ordinary insert jobs and waits
 * for all of them before the next round, so hints reach the database in the order they
 * failed; a failed round backs off from 100 ms up to 5 s. */
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

typedef struct HintBatch {
	struct HintBatch *next;
	Hints *owner;
	DbJob job;
	Metric *m;
	char *arena;
	size_t n;
} HintBatch;

struct Hints {
	struct event_base *base;
	Db *db;
	int worker;
	char key[17]; /* hash of the database URL: names its spool files */
	HintBatch *head, **tail;
	size_t count;      /* metrics queued */
	int inflight;      /* batches of the current round not done */
	int round_batches; /* batches the current round sent: the head of the queue */
	bool submitting;   /* inside the loop that sends a round */
	bool round_failed;
	int backoff_ms;
	struct event *timer;
	uint64_t dropped;
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
	if (h->head)
		hints_schedule(h, 0);
	else
		log_info("at=hints-drained db=%d worker=%d", db_index(h->db), h->worker);
}

/* Every batch of the round is done: the round's batches are the head of the queue; pop them
 * when all went through, else try again later. */
static void conclude_round(Hints *h)
{
	if (!h->round_failed) {
		size_t popped = 0;
		for (; h->round_batches > 0; h->round_batches--) {
			HintBatch *x = h->head;
			h->head = x->next;
			h->count -= x->n;
			popped += x->n;
			batch_free(x);
		}
		if (!h->head)
			h->tail = &h->head;
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
	if (h->inflight || !h->head)
		return;
	if (db_connected(h->db) == 0) {
		h->round_failed = true;
		round_done(h);
		return;
	}
	h->round_failed = false;
	h->submitting = true;
	size_t metrics = 0;
	for (HintBatch *b = h->head; b && (metrics == 0 || metrics + b->n <= (size_t)cfg->batch_max); b = b->next) {
		b->job = (DbJob){.kind = DB_JOB_INSERT, .done = batch_done, .owner = b, .metrics = b->m, .n = b->n};
		h->inflight++;
		h->round_batches++;
		if (!db_submit(h->db, &b->job, cfg_write_patience_ms())) {
			/* The queue is full: this round is what went in, if anything did. */
			h->inflight--;
			h->round_batches--;
			h->round_failed |= h->round_batches == 0;
			break;
		}
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
	h->tail = &h->head;
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
	while (h->head) {
		HintBatch *b = h->head;
		h->head = b->next;
		batch_free(b);
	}
	event_free(h->timer);
	free(h);
}

size_t hints_count(const Hints *h)
{
	return h->count;
}

uint64_t hints_dropped(const Hints *h)
{
	return h->dropped;
}

bool hints_draining(const Hints *h)
{
	return h->head && db_connected(h->db) > 0;
}

static void log_dropped(Hints *h, size_t n, int64_t lo, int64_t hi)
{
	char from[32], to[32];
	tm_format_rfc3339(lo, from);
	tm_format_rfc3339(hi, to);
	h->dropped += n;
	log_error("at=hints-dropped db=%d worker=%d metrics=%zu total=%llu from=%s to=%s "
		  "hint=\"run m2pg repair --from %s --to %s\"",
		  db_index(h->db), h->worker, n, (unsigned long long)h->dropped, from, to, from, to);
}

/* Drops the oldest batches until n more metrics fit, logging what was lost. */
static void make_room(Hints *h, size_t n)
{
	size_t dropped = 0;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	while (h->head && h->count + n > (size_t)cfg->hints_max && !h->inflight) {
		HintBatch *b = h->head;
		h->head = b->next;
		h->count -= b->n;
		for (size_t i = 0; i < b->n; i++) {
			lo = b->m[i].bucket_us < lo ? b->m[i].bucket_us : lo;
			hi = b->m[i].bucket_us > hi ? b->m[i].bucket_us : hi;
		}
		dropped += b->n;
		batch_free(b);
	}
	if (!h->head)
		h->tail = &h->head;
	if (dropped)
		log_dropped(h, dropped, lo, hi);
}

void hints_add(Hints *h, const Metric *m, size_t n)
{
	make_room(h, n);
	if (h->count + n > (size_t)cfg->hints_max) { /* a round is in flight: drop the newest */
		int64_t lo = INT64_MAX, hi = INT64_MIN;
		for (size_t i = 0; i < n; i++) {
			lo = m[i].bucket_us < lo ? m[i].bucket_us : lo;
			hi = m[i].bucket_us > hi ? m[i].bucket_us : hi;
		}
		log_dropped(h, n, lo, hi);
		return;
	}
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += m[i].name_len + 1u;
	HintBatch *b = calloc(1, sizeof(*b));
	if (!b || !(b->m = malloc(n * sizeof(Metric))) || !(b->arena = malloc(bytes)))
		fatal("at=oom");
	b->owner = h;
	b->n = n;
	memcpy(b->m, m, n * sizeof(Metric));
	char *p = b->arena;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, m[i].name, m[i].name_len + 1u);
		b->m[i].name = p;
		p += m[i].name_len + 1u;
	}
	*h->tail = b;
	h->tail = &b->next;
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
	if (!h->head)
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
	for (HintBatch *x = h->head; x; x = x->next)
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
			hints_add(h, mb.m, mb.n);
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
