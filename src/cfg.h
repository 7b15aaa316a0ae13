/* Configuration from the environment, read once at start into one immutable snapshot. */
#ifndef M2PG_CFG_H
#define M2PG_CFG_H

#include "common.h"

#define CFG_MAX_DATABASES 16

typedef struct Cfg {
	int port;
	int workers;          /* threads, each with its own loop and connections */
	char *database_urls[CFG_MAX_DATABASES];
	int ndatabases;
	int write_timeout_ms;
	int write_patience_ms; /* see cfg_write_patience_ms() */
	int read_timeout_ms;
	int straggler_ms;     /* how long a read waits for a suspect database once others answered */
	int read_concurrency; /* reads in flight per worker; more are refused with 503 */
	int connect_timeout_ms;
	int db_connections;   /* per database */
	int write_batches;    /* insert batches in flight per database */
	int db_queue_max;     /* metrics waiting per database */
	int batch_max;        /* metrics per INSERT statement */
	int hints_max;        /* metrics waiting for a database that failed them, per worker */
	int read_max_rows;    /* rows (or groups) one database may return for one read */
	int read_aggregate;   /* 1: databases aggregate reads; 0: always merge rows here */
	int log_level;
	int64_t retention_us;       /* gc deletes older rows; 0 keeps everything */
	int64_t rollup_retention_us; /* gc deletes older hour and day rollups; 0 keeps them */
	int64_t gc_interval_us;
	int64_t repair_lookback_us; /* each gc cycle repairs this much of the recent past */
	int maint_timeout_ms;       /* one statement of gc or repair */
	int partition_days;         /* width of a partition of metrics */
	int partition_ahead;        /* days ahead of now that partitions are made for */
	int max_clients;            /* client connections per worker; 0: derived from the fd limit */
	int request_timeout_ms;     /* reading one request, from its first byte */
	int shutdown_grace_ms;      /* after SIGTERM, for the requests in flight */
	int body_memory_max;        /* bytes of requests being read, per worker */
	struct AuthTokens *tokens;  /* API_TOKENS; NULL: no token is asked for */
} Cfg;

/* Fills cfg from the environment; on error writes "VARIABLE: why" into err and returns false. */
bool cfg_load(Cfg *cfg, char *err, size_t errlen) WARN_UNUSED;
void cfg_free(Cfg *cfg);
/* The host (and port) of a URL, for logs; never the password. */
void cfg_db_label(const char *url, char *out, size_t n);

extern const Cfg *cfg;

/* How long a database may take with an insert, queued or in flight, before it counts as
 * failed (and the metrics go to its hints). Longer than WRITE_TIMEOUT_MS, which is how long
 * the client waits: once another database has answered, a slow one is given time to catch
 * up rather than churned through the hints. */
static inline int cfg_write_patience_ms(void)
{
	return cfg->write_timeout_ms > cfg->write_patience_ms ? cfg->write_timeout_ms : cfg->write_patience_ms;
}

#endif
