/* The router: listens, routes each request to its front-end's handler after the checks every
 * request gets (framing, shutdown, API tokens), and shuts down. The handlers answer; each
 * request is answered exactly once, by whoever it was handed to. */
#include "web.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_graphite.h"
#include "api_librato.h"
#include "api_ops.h"
#include "api_page.h"
#include "api_seed.h"
#include "auth.h"
#include "cfg.h"
#include "guard.h"
#include "hint.h"
#include "stats.h"
#include "write.h"

#define MAX_HEADER_BYTES (16 * 1024)

typedef void (*Handler)(Web *w, struct evhttp_request *req, int64_t start_us);

typedef struct Route {
	const char *path;
	bool prefix;  /* path is a prefix: /v1/metrics/ matches /v1/metrics/NAME */
	bool open;    /* no token needed (load balancers' health checks) */
	bool post_reads; /* its POST is a read (Graphite's forms): a read token will do */
	Handler get;  /* HEAD is answered as GET, without its body */
	Handler post;
	const char *allow;
} Route;

/* HEAD /metrics says what a GET would say before the databases are asked. */
static void head_metrics(Web *w, struct evhttp_request *req, int64_t start_us)
{
	(void)w;
	Buf none = {0};
	reply_json(req, 200, &none, start_us);
}

static const Route routes[] = {
	{"/metrics", false, false, false, api_seed_read, api_seed_write, "GET, HEAD, POST"},
	{"/v1/metrics", false, false, false, api_librato_list, api_librato_write, "GET, HEAD, POST"},
	{"/v1/metrics/", true, false, false, api_librato_read, NULL, "GET, HEAD"},
	{"/metrics/find", false, false, true, api_graphite_find, api_graphite_find, "GET, HEAD, POST"},
	{"/render", false, false, true, api_graphite_render, api_graphite_render, "GET, HEAD, POST"},
	{"/functions", false, false, false, api_graphite_functions, NULL, "GET, HEAD"},
	{"/tags/", true, false, true, api_graphite_tags, api_graphite_tags, "GET, HEAD, POST"},
	{"/version", false, false, false, api_graphite_version, NULL, "GET, HEAD"},
	{"/health", false, true, false, api_ops_health, NULL, "GET, HEAD"},
	{"/stats", false, false, false, api_ops_stats, NULL, "GET, HEAD"},
	{"/", false, true, false, api_page_serve, NULL, "GET, HEAD"},
	{"/page/", true, true, false, api_page_serve, NULL, "GET, HEAD"},
};

static const Route *route_find(const char *path)
{
	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		const Route *r = &routes[i];
		size_t n = strlen(r->path);
		if (r->prefix ? strncmp(path, r->path, n) == 0 && path[n] : strcmp(path, r->path) == 0)
			return r;
	}
	return NULL;
}

/* False after answering 401 or 403. What was presented is never logged. */
static bool authorized(struct evhttp_request *req, bool write, int64_t start_us)
{
	if (!cfg->tokens)
		return true;
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	switch (auth_check(cfg->tokens, h, write ? AUTH_WRITE : AUTH_READ)) {
	case AUTH_OK:
		return true;
	case AUTH_FORBIDDEN:
		stats_add(STATS_AUTH_FORBIDDEN, 1);
		reply_error(req, 403, write ? "this API token may not write" : "this API token may not read", NULL, -1,
			    start_us);
		return false;
	case AUTH_MISSING:
	case AUTH_UNKNOWN:
		break;
	}
	stats_add(STATS_AUTH_DENIED, 1);
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Basic realm=\"m2pg\"");
	reply_error(req, 401,
		    h ? "the API token is not valid" : "an API token is required (HTTP Basic with the token as password, or Bearer)",
		    NULL, -1, start_us);
	return false;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	Web *w = arg;
	int64_t start_us = now_mono_us();
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (!path)
		path = "";
	const char *bad_framing = guard_request_begin(w->guard, req);
	if (bad_framing) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(req, 400, bad_framing, NULL, -1, start_us);
		return;
	}
	if (w->shutting_down) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(req, 503, "shutting down", NULL, -1, start_us);
		return;
	}
	const Route *r = route_find(path);
	if (!r) {
		reply_error(req, 404, "not found: the API is /metrics, /v1/metrics (Librato), /render and /metrics/find (Graphite), /health and /stats; the chart page is /",
			    NULL, -1, start_us);
		return;
	}
	Handler h = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD ? r->get : cmd == EVHTTP_REQ_POST ? r->post : NULL;
	if (!h) {
		char msg[80];
		snprintf(msg, sizeof(msg), "%s takes %s", r->path, r->allow);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", r->allow);
		reply_error(req, 405, msg, NULL, -1, start_us);
		return;
	}
	if (!r->open && !authorized(req, cmd == EVHTTP_REQ_POST && !r->post_reads, start_us))
		return;
	/* The guard drops a HEAD answer's body and keeps its length. A read's HEAD does not ask
	 * the databases. */
	if (cmd == EVHTTP_REQ_HEAD && h != api_ops_health && h != api_ops_stats && h != api_graphite_functions &&
	    h != api_graphite_version && h != api_page_serve)
		h = head_metrics;
	h(w, req, start_us);
}

/* Every 10 s, one line per database that had trouble: what failed, what waits as hints, what
 * was dropped. Never a line per request while a database is down. */
static void web_on_summary(evutil_socket_t fd, short what, void *arg)
{
	Web *w = arg;
	static _Thread_local uint64_t last_failed[CFG_MAX_DATABASES], last_refused;
	(void)fd;
	(void)what;
	for (int i = 0; i < w->ndbs; i++) {
		Db *db = w->dbs[i];
		uint64_t failed = w->writes_failed[i] - last_failed[i];
		last_failed[i] = w->writes_failed[i];
		size_t hints = hints_count(w->hints[i]);
		if (failed == 0 && hints == 0 && db_health(db) == DB_UP)
			continue;
		log_warn("at=db-summary db=%d host=%s state=%s writes_failed=%llu hints=%zu hints_dropped=%llu",
			 i + 1, db_label(db), db_health_name(db_health(db)), (unsigned long long)failed, hints,
			 (unsigned long long)hints_dropped(w->hints[i]));
	}
	if (w->writes_refused != last_refused) {
		log_warn("at=writes-refused metrics=%llu total=%llu",
			 (unsigned long long)(w->writes_refused - last_refused), (unsigned long long)w->writes_refused);
		last_refused = w->writes_refused;
	}
}

Web *web_new(struct event_base *base, Db **dbs, Hints **hints, int ndbs)
{
	Web *w = calloc(1, sizeof(*w));
	if (!w || !(w->http = evhttp_new(base)))
		fatal("at=oom");
	w->base = base;
	w->dbs = dbs;
	w->hints = hints;
	w->ndbs = ndbs;
	/* evhttp's defaults are unlimited: bound what a client can make us hold. The guard
	 * answers a request past its limit with our JSON 413 as the bytes come (evhttp's own
	 * check, on the declared length, is only a backstop: its 413 is HTML). */
	evhttp_set_max_body_size(w->http, 4 * WRITE_BODY_MAX);
	evhttp_set_max_headers_size(w->http, MAX_HEADER_BYTES);
	evhttp_set_flags(w->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_timeout(w->http, 30); /* idle keep-alive; reading a request has its deadline */
	GuardLimits lim = {
		.max_clients = cfg->max_clients ? cfg->max_clients : guard_default_max_clients(),
		.request_timeout_ms = cfg->request_timeout_ms,
		.body_memory_max = (size_t)cfg->body_memory_max,
		.request_max = WRITE_BODY_MAX + 4 * MAX_HEADER_BYTES,
	};
	w->guard = guard_new(base, w->http, &lim);
	log_info("at=client-limits max_clients=%d request_timeout_ms=%d body_memory_max=%zu",
		 lim.max_clients, lim.request_timeout_ms, lim.body_memory_max);
	evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
						    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(w->http, on_request, w);
	w->summary_timer = event_new(base, -1, EV_PERSIST, web_on_summary, w);
	struct timeval tv = {10, 0};
	if (!w->summary_timer || event_add(w->summary_timer, &tv) < 0)
		fatal("at=event-add-failed");
	return w;
}

bool web_listen(Web *w, const char *host, int port)
{
	/* SO_REUSEPORT: every worker binds its own socket and the kernel spreads connections. */
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG};
	struct evutil_addrinfo *ai = NULL;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (evutil_getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai)
		return false;
	struct evconnlistener *l = evconnlistener_new_bind(
		w->base, NULL, NULL,
		LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
		ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (!l)
		return false;
	/* Accepted sockets inherit it: an answer in several segments must not wait on Nagle and
	 * the client's delayed ACK (40 ms a read otherwise). */
	int one = 1;
	setsockopt(evconnlistener_get_fd(l), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w->sock = evhttp_bind_listener(w->http, l);
	if (w->sock)
		guard_listen(w->guard, l);
	return w->sock != NULL;
}

static bool settled(Web *w)
{
	if (w->inflight > 0)
		return false;
	for (int i = 0; i < w->ndbs; i++)
		if (db_busy(w->dbs[i]) || hints_draining(w->hints[i]))
			return false;
	return true;
}

static void on_shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
	Web *w = arg;
	(void)fd;
	(void)what;
	if (settled(w) || now_mono_us() >= w->shutdown_deadline_us) {
		if (!settled(w))
			log_warn("at=shutdown-grace-over inflight=%d", w->inflight);
		event_base_loopexit(w->base, NULL);
	}
}

void web_shutdown(Web *w, int grace_ms)
{
	if (w->shutting_down)
		return;
	w->shutting_down = true;
	if (w->sock) {
		guard_unlisten(w->guard);
		evhttp_del_accept_socket(w->http, w->sock);
		w->sock = NULL;
	}
	w->shutdown_deadline_us = now_mono_us() + (int64_t)grace_ms * 1000;
	w->shutdown_timer = event_new(w->base, -1, EV_PERSIST, on_shutdown_tick, w);
	struct timeval tv = {0, 20000};
	if (!w->shutdown_timer || event_add(w->shutdown_timer, &tv) < 0)
		fatal("at=event-add-failed");
	log_info("at=shutdown inflight=%d", w->inflight);
}

void web_free(Web *w)
{
	if (!w)
		return;
	if (w->shutdown_timer)
		event_free(w->shutdown_timer);
	event_free(w->summary_timer);
	guard_unlisten(w->guard); /* evhttp_free frees the listener */
	evhttp_free(w->http);
	guard_free(w->guard); /* after the connections evhttp_free closes */
	free(w);
}
