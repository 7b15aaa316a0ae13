/* Graphite's render API, as Grafana's built-in Graphite data source (1.1) calls it, so Grafana
 * charts m2pg with no plugin:
 *   GET|POST /metrics/find   the tree of paths: a name's dotted segments are branches, its
 *                            statistics (count, mean, ... last) the leaves
 *   GET|POST /render         targets with functions, one point per step (null where no data)
 *   GET /functions           the functions, described as Graphite describes them
 *   GET /tags/..., /version  what Grafana asks besides: no tags, version 1.1 */
#ifndef M2PG_API_GRAPHITE_H
#define M2PG_API_GRAPHITE_H

#include "reply.h"

void api_graphite_find(Web *w, struct evhttp_request *req, int64_t start_us);
void api_graphite_render(Web *w, struct evhttp_request *req, int64_t start_us);
void api_graphite_functions(Web *w, struct evhttp_request *req, int64_t start_us);
void api_graphite_tags(Web *w, struct evhttp_request *req, int64_t start_us);
void api_graphite_version(Web *w, struct evhttp_request *req, int64_t start_us);

#endif
