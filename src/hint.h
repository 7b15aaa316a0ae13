/* Hinted handoff: metrics that one database failed to take (an error, a timeout, a full
 * queue) while another acknowledged them wait here and are retried, in order and with
 * backoff, until that database takes them. Ids make the retry idempotent (ON CONFLICT DO
 * NOTHING), so a write that did land after its timeout is never stored twice.
 *
 * Bounded: past HINTS_MAX metrics, hints of writes answered 503 are dropped first, then the
 * oldest acknowledged ones; drops are counted by class and logged with their bucket range
 * (where `m2pg repair` should look). With M2PG_SPOOL_DIR set, hints left at
 * shutdown are written there and taken up again by the next start. */
#ifndef M2PG_HINT_H
#define M2PG_HINT_H

#include "common.h"
#include "db.h"
#include "metric.h"

struct event_base;
typedef struct Hints Hints;

Hints *hints_new(struct event_base *base, Db *db, const char *url, int worker);
void hints_free(Hints *h);
/* Copies the metrics in. acked: the client was answered 201 for them (another database
 * holds a copy); false for writes answered 503 that a database committed after all. */
void hints_add(Hints *h, const Metric *m, size_t n, bool acked);
/* Metrics queued, and metrics dropped since start (all, and acknowledged ones). */
size_t hints_count(const Hints *h);
uint64_t hints_dropped(const Hints *h);
uint64_t hints_dropped_acked(const Hints *h);
/* Hints are waiting and the database is up, so they are worth waiting for at shutdown. */
bool hints_draining(const Hints *h);
/* Writes what is left to the spool directory (when set) and empties the queue. */
void hints_spool(Hints *h);
/* Takes up hints spooled by an earlier process for the same database. */
void hints_load(Hints *h);

#endif
