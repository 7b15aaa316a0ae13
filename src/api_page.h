/* The chart page: GET / (index.html) and GET /page/FILE (its scripts and styles), served from
 * the binary. Open even when API tokens are set: the files hold no data, and the page's own
 * requests to /metrics carry the token. */
#ifndef M2PG_API_PAGE_H
#define M2PG_API_PAGE_H

#include "reply.h"

void api_page_serve(Web *w, struct evhttp_request *req, int64_t start_us);

#endif
