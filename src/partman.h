/* The web process's share of partition upkeep: it makes the partitions of metrics for the days
 * ahead (PARTITION_AHEAD) at start and every hour, so that its inserts land in partitions made
 * in advance and not in the default one. gc does the same every cycle; either is enough. */
#ifndef M2PG_PARTMAN_H
#define M2PG_PARTMAN_H

struct event_base;
typedef struct Db Db;
typedef struct Partman Partman;

/* Asks the database at once (the job waits in its queue for a connection), then hourly. */
Partman *partman_new(struct event_base *base, Db *db);
/* After the database's jobs have ended (db_abort_all), before db_free. */
void partman_free(Partman *p);

#endif
