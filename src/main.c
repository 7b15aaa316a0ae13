/* m2pg: collects metric summaries over HTTP and stores each one in several PostgreSQL
 * databases.
 *
 * `m2pg web` runs WORKERS threads, each with its own event loop, HTTP server and connections
 * to every database; they share the port through SO_REUSEPORT and share nothing else but the
 * immutable configuration. The main thread only waits for signals and tells the workers. */
#include <errno.h>
#include <malloc.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth.h"
#include "cfg.h"
#include "common.h"
#include "db.h"
#include "hint.h"
#include "maint.h"
#include "partman.h"
#include "web.h"


static const char USAGE[] =
	"usage: m2pg [web]\n"
	"       m2pg gc [--once]\n"
	"       m2pg repair [--from TIME] [--to TIME] [--written-since DURATION]\n"
	"       m2pg migrate\n"
	"       m2pg --help | --version\n"
	"\n"
	"m2pg collects metric summaries over HTTP (POST /metrics) and serves them back rolled up\n"
	"(GET /metrics), storing every metric in each PostgreSQL database of DATABASE_URLS.\n"
	"\n"
	"commands:\n"
	"  web        serve the HTTP API on PORT (the default command)\n"
	"  gc         make the partitions ahead, drop those older than RETENTION and delete\n"
	"             the older rows of the others, repair the buckets of the last\n"
	"             REPAIR_LOOKBACK and the rows written in it, sleep GC_INTERVAL, again\n"
	"             (--once: one cycle)\n"
	"  repair     copy to each database the rows it lacks: buckets from --from to --to\n"
	"             (default: all time; TIME is Unix seconds or RFC 3339), or with\n"
	"             --written-since alone the rows written in the last DURATION (like 90m,\n"
	"             12h, 2d), whatever their buckets (ids m2pg made; not client ids)\n"
	"  migrate    bring every database to m2pg's schema (convert a table that is not\n"
	"             partitioned yet, in place) and make the partitions ahead; says what it\n"
	"             did. The web process does the same at start when a database needs it\n"
	"\n"
	"environment:\n"
	"  DATABASE_URLS       'url1|url2|...' PostgreSQL URLs (or DATABASE_URL for one)\n"
	"  PORT                port to listen on (8080)\n"
	"  HOST                address to listen on (0.0.0.0)\n"
	"  WORKERS             threads serving HTTP, each with its own connections (1)\n"
	"  WRITE_TIMEOUT_MS    answer 503 when no database commits a write in time (1000)\n"
	"  WRITE_PATIENCE_MS   how long a database may take with an insert before its metrics\n"
	"                      go to its hints (5000; at least WRITE_TIMEOUT_MS)\n"
	"  READ_TIMEOUT_MS     answer with what came back after this long (10000)\n"
	"  STRAGGLER_MS        how long a read waits for a suspect database once another\n"
	"                      answered (100)\n"
	"  READ_CONCURRENCY    reads answered at once per worker; more get 503 (16)\n"
	"  CONNECT_TIMEOUT_MS  give up a connection attempt after this long (2000)\n"
	"  DB_CONNECTIONS      connections per database and worker, at least 2: one is always\n"
	"                      left for inserts (6)\n"
	"  WRITE_BATCHES       insert batches in flight per database and worker (1)\n"
	"  DB_QUEUE_MAX        metrics waiting per database and worker (100000)\n"
	"  BATCH_MAX           metrics per INSERT statement (2000)\n"
	"  HINTS_MAX           metrics kept per database and worker for one that failed them (100000)\n"
	"  M2PG_SPOOL_DIR      where hints left at shutdown are written and read back at start\n"
	"  READ_MAX_ROWS       rows (or groups) one database may return for one read (1000000)\n"
	"  READ_AGGREGATE      1: databases aggregate reads, 0: merge every row here (1)\n"
	"  LOG_LEVEL           debug, info, warn or error (info)\n"
	"  RETENTION           gc deletes rows older than this, like 30d or 12h (unset: keep all)\n"
	"  GC_INTERVAL         pause between gc cycles (10m)\n"
	"  REPAIR_LOOKBACK     what each gc cycle repairs (2h; 0s: no repair)\n"
	"  MAINT_TIMEOUT_MS    deadline of one gc or repair statement (60000)\n"
	"  PARTITION_DAYS      days of buckets per partition of metrics (1)\n"
	"  PARTITION_AHEAD     days ahead of now that partitions are made for (3)\n"
	"  MAX_CLIENTS         client connections per worker; accepting pauses at it (the open-file\n"
	"                      limit shared by the workers, less what the databases need)\n"
	"  REQUEST_TIMEOUT_MS  a request not received whole this long after its first byte is\n"
	"                      answered 408 and its connection closed (10000)\n"
	"  SHUTDOWN_GRACE_MS   after SIGTERM, how long requests in flight may take before the\n"
	"                      process ends them and exits (25000)\n"
	"  BODY_MEMORY_MAX     bytes of requests being received per worker; past it new ones are\n"
	"                      answered 503 (67108864)\n";

typedef struct Worker {
	int index;
	pthread_t thread;
	struct event_base *base;
	Db *dbs[CFG_MAX_DATABASES];
	Hints *hints[CFG_MAX_DATABASES];
	Partman *partman[CFG_MAX_DATABASES]; /* the first worker's only: one per process is enough */
	Web *web;
	int stop_fd; /* eventfd: the main thread asks for a graceful stop */
	struct event *stop_ev;
} Worker;

static void worker_on_stop(evutil_socket_t fd, short what, void *arg)
{
	Worker *w = arg;
	uint64_t v;
	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("at=stop-read-failed worker=%d", w->index);
	web_shutdown(w->web, cfg->shutdown_grace_ms);
}

/* Callbacks a worker's loop runs between two polls of its sockets (a pass of a read's pump
 * merges up to 4,096 rows, a connection's event reads up to 32 buffers). libevent's default is
 * every active callback, those activated meanwhile too: a read's pump and its databases'
 * connections wake each other with event_active, and four large reads kept a worker from
 * polling for 3.5 s (make bench's /health probes), two under ASan for 2 to 3 s. */
#define LOOP_CALLBACKS_PER_POLL 16

static bool worker_init(Worker *w, int index, const char *host)
{
	w->index = index;
	struct event_config *ec = event_config_new();
	if (!ec || event_config_set_max_dispatch_interval(ec, NULL, LOOP_CALLBACKS_PER_POLL, 0) < 0)
		fatal("at=event-base-failed");
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!w->base)
		fatal("at=event-base-failed");
	for (int i = 0; i < cfg->ndatabases; i++) {
		w->dbs[i] = db_new(w->base, i + 1, cfg->database_urls[i]);
		w->hints[i] = hints_new(w->base, w->dbs[i], cfg->database_urls[i], index);
		hints_load(w->hints[i]);
		if (index == 1)
			w->partman[i] = partman_new(w->base, w->dbs[i]);
	}
	w->web = web_new(w->base, w->dbs, w->hints, cfg->ndatabases);
	if (!web_listen(w->web, host, cfg->port))
		return false;
	w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->stop_ev = event_new(w->base, w->stop_fd, EV_READ | EV_PERSIST, worker_on_stop, w);
	if (w->stop_fd < 0 || !w->stop_ev || event_add(w->stop_ev, NULL) < 0)
		fatal("at=worker-setup-failed");
	return true;
}

static void *worker_run(void *arg)
{
	Worker *w = arg;
	for (int i = 0; i < cfg->ndatabases; i++)
		db_start(w->dbs[i]);
	event_base_dispatch(w->base);

	/* Whatever is still pending is answered before the HTTP server goes away. A failed job
	 * may start another (a read's next phase), so abort until nothing is left; reads stopped
	 * now answer with what they have instead of asking again. */
	w->web->stopped = true;
	for (int pass = 0; pass < 8; pass++) {
		bool busy = false;
		for (int i = 0; i < cfg->ndatabases; i++) {
			busy |= db_busy(w->dbs[i]);
			db_abort_all(w->dbs[i]);
		}
		if (!busy)
			break;
	}
	web_free(w->web);
	for (int i = 0; i < cfg->ndatabases; i++) {
		hints_spool(w->hints[i]);
		hints_free(w->hints[i]);
		partman_free(w->partman[i]);
		db_free(w->dbs[i]);
	}
	event_free(w->stop_ev);
	close(w->stop_fd);
	event_base_free(w->base);
	return NULL;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run_web(void)
{
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	/* Workers inherit a mask without TERM and INT: only the main thread takes them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	const char *host = getenv("HOST");
	if (!host || !*host)
		host = "0.0.0.0";
	Worker *workers = calloc((size_t)cfg->workers, sizeof(Worker));
	if (!workers)
		fatal("at=oom");
	for (int i = 0; i < cfg->workers; i++) {
		if (!worker_init(&workers[i], i + 1, host)) {
			fprintf(stderr, "PORT: cannot listen on %s:%d: %s\n", host, cfg->port, strerror(errno));
			return 2;
		}
	}
	log_info("at=start version=%s port=%d workers=%d databases=%d write_timeout_ms=%d "
		 "read_timeout_ms=%d",
		 M2PG_VERSION, cfg->port, cfg->workers, cfg->ndatabases, cfg->write_timeout_ms,
		 cfg->read_timeout_ms);
	if (cfg->tokens)
		log_info("at=api-tokens tokens=%zu", auth_count(cfg->tokens));
	else
		log_warn("at=api-tokens-unset error=\"API_TOKENS is not set: anyone who can reach port %d can "
			 "read and write every metric\"", cfg->port);
	for (int i = 0; i < cfg->workers; i++)
		if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0)
			fatal("at=thread-create-failed");

	int sig = 0;
	sigwait(&sigs, &sig);
	log_info("at=signal signal=%s", sig == SIGTERM ? "TERM" : "INT");
	for (int i = 0; i < cfg->workers; i++) {
		uint64_t one = 1;
		if (write(workers[i].stop_fd, &one, sizeof(one)) < 0)
			log_warn("at=stop-write-failed worker=%d", i + 1);
	}
	for (int i = 0; i < cfg->workers; i++)
		pthread_join(workers[i].thread, NULL);
	free(workers);
	log_info("at=exit status=0");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *cmd = argc >= 2 ? argv[1] : "web";
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("m2pg %s\n", M2PG_VERSION);
		return 0;
	}
	bool web = strcmp(cmd, "web") == 0;
	if (!web && strcmp(cmd, "gc") != 0 && strcmp(cmd, "repair") != 0 && strcmp(cmd, "migrate") != 0) {
		fprintf(stderr, "m2pg: unknown command '%s'\n%s", cmd, USAGE);
		return 2;
	}
	/* Buffers of a megabyte or more (large request bodies, a long read's series) are mmapped and
	 * so given back to the system when freed: a fixed threshold stops glibc raising it after
	 * the first big free, which left a burst of large reads (or bodies of megabytes) holding
	 * memory for good. Not lower: the 64 KB chunks of streamed answers (128 KB buffers) would
	 * then cost an mmap and a page fault per 4 KB each.
	 * The web process keeps what it frees instead, up to 64 MB of heap (the trim threshold),
	 * and hands it back a second after a large read or body (guard_trim_soon): an hour read of
	 * 100 names over 14 days spent a third of its time faulting in pages it had just given
	 * back (libpq's results, the parts' sort, the answer's groups), 280 ms -> 150 ms with the
	 * heap kept. */
	if (web) {
		mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
		mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
	} else {
		mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	}
	if (web && argc > 2) {
		fprintf(stderr, "m2pg: web takes no arguments\n%s", USAGE);
		return 2;
	}

	static Cfg config;
	char err[256];
	if (!cfg_load(&config, err, sizeof(err))) {
		fprintf(stderr, "m2pg: %s\n", err);
		return 2;
	}
	cfg = &config;
	log_level = config.log_level;
	int status = web			       ? run_web()
		     : strcmp(cmd, "gc") == 0	       ? maint_gc(argc - 2, argv + 2)
		     : strcmp(cmd, "migrate") == 0 ? maint_migrate(argc - 2, argv + 2)
						       : maint_repair(argc - 2, argv + 2);
	cfg_free(&config);
	return status;
}
