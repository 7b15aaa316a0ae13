/* Environment configuration. Every variable is validated here so that a typo stops the process
 * at start with one line naming the variable, instead of surfacing later as odd behaviour. */
#include "cfg.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "tm.h"

const Cfg *cfg;

static bool int_var(const char *name, long def, long min, long max, long *out, char *err, size_t errlen)
{
	const char *s = getenv(name);
	if (!s || !*s) {
		*out = def;
		return true;
	}
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		snprintf(err, errlen, "%s: must be a whole number from %ld to %ld, got '%s'", name, min, max, s);
		return false;
	}
	*out = v;
	return true;
}

static bool add_urls(Cfg *c, const char *list, const char *var, char *err, size_t errlen)
{
	const char *p = list;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		while (len > 0 && (p[0] == ' ' || p[0] == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\n'))
			len--;
		if (len > 0) {
			if (c->ndatabases == CFG_MAX_DATABASES) {
				snprintf(err, errlen, "%s: at most %d databases", var, CFG_MAX_DATABASES);
				return false;
			}
			if (strncmp(p, "postgres://", 11) != 0 && strncmp(p, "postgresql://", 13) != 0 &&
			    !memchr(p, '=', len)) {
				snprintf(err, errlen,
					 "%s: database %d is neither a postgres:// URL nor a key=value "
					 "connection string",
					 var, c->ndatabases + 1);
				return false;
			}
			c->database_urls[c->ndatabases++] = strndup(p, len);
		}
		if (!bar)
			break;
		p = bar + 1;
	}
	return true;
}

bool cfg_load(Cfg *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	/* Whole-number settings: name, default, range, and where each goes. */
	const struct {
		const char *name;
		long def, min, max;
		int *out;
	} ints[] = {
		{"PORT", 8080, 1, 65535, &c->port},
		{"WORKERS", 1, 1, 64, &c->workers},
		{"WRITE_TIMEOUT_MS", 1000, 1, 600000, &c->write_timeout_ms},
		{"WRITE_PATIENCE_MS", 5000, 1, 600000, &c->write_patience_ms},
		{"READ_TIMEOUT_MS", 10000, 1, 3600000, &c->read_timeout_ms},
		{"STRAGGLER_MS", 100, 1, 600000, &c->straggler_ms},
		{"READ_CONCURRENCY", 16, 1, 10000, &c->read_concurrency},
		{"CONNECT_TIMEOUT_MS", 2000, 1, 600000, &c->connect_timeout_ms},
		{"DB_CONNECTIONS", 6, 2, 64, &c->db_connections}, /* one is always left for inserts */
		{"WRITE_BATCHES", 1, 1, 64, &c->write_batches},
		{"DB_QUEUE_MAX", 100000, 10000, 10000000, &c->db_queue_max}, /* a whole batch fits */
		{"BATCH_MAX", 2000, 1, 100000, &c->batch_max},
		{"HINTS_MAX", 100000, 0, 100000000, &c->hints_max},
		{"READ_MAX_ROWS", 1000000, 1, 100000000, &c->read_max_rows},
		{"READ_AGGREGATE", 1, 0, 1, &c->read_aggregate},
		{"MAINT_TIMEOUT_MS", 60000, 1, 3600000, &c->maint_timeout_ms},
		{"PARTITION_DAYS", 1, 1, 366, &c->partition_days},
		{"PARTITION_AHEAD", 3, 1, 366, &c->partition_ahead},
		{"MAX_CLIENTS", 0, 1, 1000000, &c->max_clients}, /* unset: from the fd limit */
		{"REQUEST_TIMEOUT_MS", 10000, 100, 600000, &c->request_timeout_ms},
		/* Heroku sends SIGKILL 30 s after SIGTERM. */
		{"SHUTDOWN_GRACE_MS", 25000, 0, 3600000, &c->shutdown_grace_ms},
		/* At least two whole bodies of the largest size (8 MiB), at most 1 GiB. */
		{"BODY_MEMORY_MAX", 64 << 20, 16 << 20, 1 << 30, &c->body_memory_max},
	};
	for (size_t i = 0; i < ARRAY_LEN(ints); i++) {
		long v;
		if (!int_var(ints[i].name, ints[i].def, ints[i].min, ints[i].max, &v, err, errlen))
			return false;
		*ints[i].out = (int)v;
	}

	static const struct {
		const char *name, *def;
	} durations[] = {{"RETENTION", ""}, {"GC_INTERVAL", "10m"}, {"REPAIR_LOOKBACK", "2h"}, {"ROLLUP_RETENTION", ""}};
	int64_t *outs[] = {&c->retention_us, &c->gc_interval_us, &c->repair_lookback_us, &c->rollup_retention_us};
	for (size_t i = 0; i < ARRAY_LEN(durations); i++) {
		const char *d = getenv(durations[i].name);
		if (!d || !*d)
			d = durations[i].def;
		*outs[i] = 0;
		if (*d && !tm_parse_duration(d, outs[i])) {
			snprintf(err, errlen, "%s: must be a whole number and a unit (s, m, h, d, w), like 30d, got '%s'",
				 durations[i].name, d);
			return false;
		}
	}

	if (c->gc_interval_us < 1000000) {
		snprintf(err, errlen, "GC_INTERVAL: must be at least 1s");
		return false;
	}

	const char *lvl = getenv("LOG_LEVEL");
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	c->log_level = LOG_INFO;
	if (lvl && *lvl) {
		c->log_level = -1;
		for (int i = 0; i < 4; i++)
			if (strcasecmp(lvl, levels[i]) == 0)
				c->log_level = i;
		if (c->log_level < 0) {
			snprintf(err, errlen, "LOG_LEVEL: must be debug, info, warn or error, got '%s'", lvl);
			return false;
		}
	}

	const char *urls = getenv("DATABASE_URLS");
	const char *var = "DATABASE_URLS";
	if (!urls || !*urls) {
		urls = getenv("DATABASE_URL");
		var = "DATABASE_URL";
	}
	if (!urls || !*urls) {
		snprintf(err, errlen, "DATABASE_URLS: not set (a '|'-separated list of PostgreSQL URLs)");
		return false;
	}
	if (!add_urls(c, urls, var, err, errlen)) {
		cfg_free(c);
		return false;
	}
	if (c->ndatabases == 0) {
		snprintf(err, errlen, "%s: holds no database URL", var);
		return false;
	}
	/* The messages name entries by position, never a token. */
	if (!auth_parse(getenv("API_TOKENS"), &c->tokens, err, errlen)) {
		cfg_free(c);
		return false;
	}
	return true;
}

void cfg_free(Cfg *c)
{
	for (int i = 0; i < c->ndatabases; i++)
		free(c->database_urls[i]);
	c->ndatabases = 0;
	auth_free(c->tokens);
	c->tokens = NULL;
}

void cfg_db_label(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://");
	if (!p) { /* key=value form: show host= if any */
		const char *h = strstr(url, "host=");
		snprintf(out, n, "%.*s", h ? (int)strcspn(h + 5, " ") : 5, h ? h + 5 : "local");
		return;
	}
	p += 3;
	const char *at = strchr(p, '@');
	const char *slash = strchr(p, '/');
	if (at && (!slash || at < slash))
		p = at + 1;
	size_t len = strcspn(p, "/?");
	snprintf(out, n, "%.*s", (int)(len ? len : 5), len ? p : "local");
}
