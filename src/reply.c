/* Answers to HTTP requests: every answer goes out through reply_send(), which counts it for
 * /stats and logs it. */
#include "reply.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "stats.h"

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

static void free_body(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

static StatsRoute route_of(struct evhttp_request *req)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (!path)
		return STATS_ROUTE_OTHER;
	if (strcmp(path, "/metrics") == 0)
		return evhttp_request_get_command(req) == EVHTTP_REQ_POST ? STATS_ROUTE_WRITE : STATS_ROUTE_READ;
	if (strcmp(path, "/health") == 0)
		return STATS_ROUTE_HEALTH;
	if (strncmp(path, "/v1/metrics", 11) == 0 && (path[11] == '\0' || path[11] == '/'))
		return evhttp_request_get_command(req) == EVHTTP_REQ_POST ? STATS_ROUTE_LIBRATO_WRITE
									   : STATS_ROUTE_LIBRATO_READ;
	if (strcmp(path, "/render") == 0)
		return STATS_ROUTE_GRAPHITE_RENDER;
	if (strcmp(path, "/metrics/find") == 0)
		return STATS_ROUTE_GRAPHITE_FIND;
	return strcmp(path, "/stats") == 0 ? STATS_ROUTE_STATS : STATS_ROUTE_OTHER;
}

void reply_log(struct evhttp_request *req, int code, int64_t start_us)
{
	const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET";
	int64_t us = now_mono_us() - start_us;
	stats_request(route_of(req), code, us);
	if (code >= 400)
		log_info("at=request method=%s status=%d measure#m2pg.request.ms=%.3f", method, code,
			 (double)us / 1000);
	else
		log_debug("at=request method=%s status=%d measure#m2pg.request.ms=%.3f", method, code,
			  (double)us / 1000);
}

void reply_send(struct evhttp_request *req, int code, const char *content_type, Buf *body, int64_t start_us)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", content_type);
	if (code == 503 && !evhttp_find_header(h, "Retry-After"))
		evhttp_add_header(h, "Retry-After", "1");
	size_t len;
	char *p = buf_take(body, &len);
	if (p && evbuffer_add_reference(evhttp_request_get_output_buffer(req), p, len, free_body, NULL) < 0)
		free(p);
	reply_log(req, code, start_us);
	evhttp_send_reply(req, code, reason(code), NULL);
}

void reply_json(struct evhttp_request *req, int code, Buf *body, int64_t start_us)
{
	reply_send(req, code, "application/json; charset=utf-8", body, start_us);
}

void reply_503(struct evhttp_request *req, Buf *body, int retry_after_s, int64_t start_us)
{
	char secs[16];
	snprintf(secs, sizeof(secs), "%d", retry_after_s > 0 ? retry_after_s : 1);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", secs);
	reply_json(req, 503, body, start_us);
}

void reply_error(struct evhttp_request *req, int code, const char *msg, const char *field, long index,
		 int64_t start_us)
{
	Buf b = {0};
	jsonw_error(&b, msg, field, index);
	reply_json(req, code, &b, start_us);
}
