/* The write path: one for every front-end. A front-end reads the body (write_body), parses it
 * into a MetricBatch its own way, and hands it over (write_submit); it says how to answer once
 * the batch is stored. Errors are the write path's: 413, and 503 with "stored": false (refused,
 * nothing of it will be stored) or "unknown" (it may still land). */
#ifndef M2PG_WRITE_H
#define M2PG_WRITE_H

#include "metric.h"
#include "reply.h"

/* A batch of 10,000 metrics with every field at its longest (255-byte names, ids, all eight
 * statistics at 23 characters, RFC 3339 buckets with nanoseconds) is about 6.2 MB. */
#define WRITE_BODY_MAX (8 * 1024 * 1024)

/* Answers req once a database committed batch (201 with ids, 200, as the front-end's
 * protocol says). */
typedef void (*WriteStored)(struct evhttp_request *req, const MetricBatch *batch, int64_t start_us);

/* The request's body (len bytes, not NUL-terminated), or NULL after answering req: larger than
 * WRITE_BODY_MAX (413), or no database can take a write in time (503, before parsing). */
const char *write_body(Web *w, struct evhttp_request *req, int64_t start_us, size_t *len);
/* Stores batch (taken) in every database that can take it in time. */
void write_submit(Web *w, struct evhttp_request *req, int64_t start_us, MetricBatch *batch, WriteStored stored);

#endif
