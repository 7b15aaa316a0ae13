/* GET /metrics: validates the query, asks every database, merges, de-duplicates and rolls up. */
#ifndef M2PG_READ_H
#define M2PG_READ_H

#include "reply.h"

void read_handle(Web *w, struct evhttp_request *req, int64_t start_us);

#endif
