/* What operators ask: GET /health (open even when API tokens are set, for load balancers)
 * and GET /stats (Prometheus text). */
#ifndef M2PG_API_OPS_H
#define M2PG_API_OPS_H

#include "reply.h"

void api_ops_health(Web *w, struct evhttp_request *req, int64_t start_us);
void api_ops_stats(Web *w, struct evhttp_request *req, int64_t start_us);

#endif
