/* The seed's API, as the original m2pg's README describes it: POST /metrics stores one metric
 * or a batch (201 with their ids), GET /metrics reads names matching a regex, rolled up. */
#ifndef M2PG_API_SEED_H
#define M2PG_API_SEED_H

#include "reply.h"

void api_seed_write(Web *w, struct evhttp_request *req, int64_t start_us);
void api_seed_read(Web *w, struct evhttp_request *req, int64_t start_us);

#endif
