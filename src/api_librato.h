/* Librato's API (v1), so that l2met and Librato's clients work unchanged:
 *   POST /v1/metrics         gauges and counters, JSON or the legacy form-encoded body
 *   GET  /v1/metrics         the names, filtered by a substring, paginated
 *   GET  /v1/metrics/NAME    a name's measurements per source, rolled up */
#ifndef M2PG_API_LIBRATO_H
#define M2PG_API_LIBRATO_H

#include "reply.h"

void api_librato_write(Web *w, struct evhttp_request *req, int64_t start_us);
void api_librato_list(Web *w, struct evhttp_request *req, int64_t start_us);
void api_librato_read(Web *w, struct evhttp_request *req, int64_t start_us);

#endif
