/* m2pg: collects metric summaries over HTTP and stores each one in several PostgreSQL
 * databases. main() owns the one event_base and hands it to every module. */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cfg.h"
#include "common.h"
#include "db.h"
#include "web.h"

#define SHUTDOWN_GRACE_MS 25000 /* Heroku sends SIGKILL 30 s after SIGTERM */

static const char USAGE[] =
	"usage: m2pg [web]\n"
	"       m2pg --help | --version\n"
	"\n"
	"m2pg collects metric summaries over HTTP (POST /metrics) and serves them back rolled up\n"
	"(GET /metrics), storing every metric in each PostgreSQL database of DATABASE_URLS.\n"
	"\n"
	"commands:\n"
	"  web        serve the HTTP API on PORT (the default command)\n"
	"\n"
	"environment:\n"
	"  DATABASE_URLS       'url1|url2|...' PostgreSQL URLs (or DATABASE_URL for one)\n"
	"  PORT                port to listen on (8080)\n"
	"  HOST                address to listen on (0.0.0.0)\n"
	"  WRITE_TIMEOUT_MS    answer 503 when no database commits a write in time (1000)\n"
	"  READ_TIMEOUT_MS     answer with what came back after this long (10000)\n"
	"  CONNECT_TIMEOUT_MS  give up a connection attempt after this long (2000)\n"
	"  DB_CONNECTIONS      connections per database (4)\n"
	"  DB_QUEUE_MAX        metrics waiting per database before it refuses more (100000)\n"
	"  BATCH_MAX           metrics per INSERT statement (2000)\n"
	"  READ_MAX_ROWS       rows one database may return for one read (1000000)\n"
	"  LOG_LEVEL           debug, info, warn or error (info)\n";

static Web *web;

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	log_info("at=signal signal=%s", sig == SIGTERM ? "TERM" : "INT");
	web_shutdown(web, SHUTDOWN_GRACE_MS);
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
	struct event_base *base = event_base_new();
	if (!base)
		fatal("at=event-base-failed");
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	Db *dbs[CFG_MAX_DATABASES];
	for (int i = 0; i < cfg->ndatabases; i++)
		dbs[i] = db_new(base, i + 1, cfg->database_urls[i]);
	web = web_new(base, dbs, cfg->ndatabases);
	const char *host = getenv("HOST");
	if (!host || !*host)
		host = "0.0.0.0";
	if (!web_listen(web, host, cfg->port)) {
		fprintf(stderr, "PORT: cannot listen on %s:%d\n", host, cfg->port);
		return 2;
	}
	for (int i = 0; i < cfg->ndatabases; i++)
		db_start(dbs[i]);

	struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
	struct event *sigint = evsignal_new(base, SIGINT, on_signal, NULL);
	if (!sigterm || !sigint || event_add(sigterm, NULL) < 0 || event_add(sigint, NULL) < 0)
		fatal("at=signal-setup-failed");

	log_info("at=start version=%s port=%d databases=%d write_timeout_ms=%d read_timeout_ms=%d",
		 M2PG_VERSION, cfg->port, cfg->ndatabases, cfg->write_timeout_ms, cfg->read_timeout_ms);
	event_base_dispatch(base);

	/* Whatever is still pending is answered (503) before the HTTP server goes away. */
	for (int i = 0; i < cfg->ndatabases; i++)
		db_abort_all(dbs[i]);
	web_free(web);
	for (int i = 0; i < cfg->ndatabases; i++)
		db_free(dbs[i]);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(base);
	log_info("at=exit status=0");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *cmd = "web";
	if (argc > 2) {
		fprintf(stderr, "m2pg: too many arguments\n%s", USAGE);
		return 2;
	}
	if (argc == 2)
		cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
		printf("m2pg %s\n", M2PG_VERSION);
		return 0;
	}
	if (strcmp(cmd, "web") != 0) {
		fprintf(stderr, "m2pg: unknown command '%s'\n%s", cmd, USAGE);
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
	int status = run_web();
	cfg_free(&config);
	return status;
}
