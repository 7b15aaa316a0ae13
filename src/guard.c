/* The HTTP-connection guard (see guard.h).
 *
 * evhttp 2.1 has no new-connection callback, but it asks evhttp_set_bevcb's callback for the
 * bufferevent of each accepted connection, from inside its accept path: that is where a
 * connection is counted. Its evhttp_connection exists only once that path has returned (it
 * is then the bufferevent's callback argument), so a deferred event "adopts" it: takes the
 * close callback, which evhttp calls once, from evhttp_connection_free, for every incoming
 * connection. An extra reference on the bufferevent until then keeps it readable even if
 * evhttp freed the connection meanwhile (only on allocation failure).
 *
 * Each connection's input buffer has a callback, run for every read: the first byte of a
 * request arms its deadline and every byte counts until the answer is written (or the
 * connection closes). Over a bound, the connection is refused: its input is dropped, reading
 * stops, and a deferred event writes a short JSON answer straight to the socket, lets evhttp
 * free the connection, and keeps a duplicate of the socket for a lingering close (half-closed,
 * read and discarded for a while, as nginx does), so that a client still sending is not reset
 * before it has read why.
 *
 * Invariants: clients counts connections from the bevcb until their close callback (or the
 * adoption that finds them gone), plus lingering closes; held is the sum of the connections'
 * held bytes. Everything runs on the worker's loop thread. */
#include "guard.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <event2/keyvalq_struct.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfg.h"

#define ACCEPT_PAUSE_MS 100  /* after EMFILE and the like: let connections close first */
#define LINGER_MS 2000       /* at most this long reading what a refused client still sends */
#define TRIM_AFTER_BYTES (4u << 20) /* request memory worth handing back to the system */
#define FD_TABLE_MAX (1 << 20)

typedef struct Conn Conn;
struct Conn {
	Guard *g;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* NULL until adopted */
	struct evbuffer_cb_entry *incb;
	struct event *deadline;
	int fd;
	bool reading;    /* a request's first byte came and evhttp has not handed it over yet */
	size_t held;     /* bytes of the current request, counted in g->held */
	int refuse;      /* the status this connection is being refused with, 0 if none */
	void (*hook)(void *);
	void *hook_arg;
	Conn *next;      /* on the adopt or the refuse list */
	bool listed;
};

typedef struct Linger {
	Guard *g;
	int fd;
	struct event *ev;
	int64_t until_us;
	struct Linger *prev, *next;
} Linger;

typedef struct RateLog {
	int64_t last_us;
	long suppressed;
} RateLog;

enum { RL_CAP, RL_ACCEPT, RL_TIMEOUT, RL_MEMORY, RL_TOO_LARGE, RL_FRAMING, RL_N };

struct Guard {
	struct event_base *base;
	struct evhttp *http;
	GuardLimits lim;
	struct evconnlistener *listener;
	int clients;
	bool paused_cap, paused_err, enabled;
	struct event *resume_timer;
	struct event *adopt_ev;
	Conn *adopt_list;
	struct event *refuse_ev;
	Conn *refuse_list;
	Conn **by_fd;
	int nfds;
	size_t held;
	bool trim_due;
	struct event *trim_timer;
	Linger *lingers;
	RateLog rl[RL_N];
};

/* One Guard per worker thread; read.c and the like reach it from their callbacks. */
static __thread Guard *tls_guard;

/* The listener's error callback gets evhttp's argument (the evhttp), not ours. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static Guard *registry[64];

static void registry_set(Guard *old, Guard *g)
{
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < ARRAY_LEN(registry); i++)
		if (registry[i] == old) {
			registry[i] = g;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
}

static Guard *registry_find(const struct evhttp *http)
{
	Guard *found = NULL;
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < ARRAY_LEN(registry); i++)
		if (registry[i] && registry[i]->http == http)
			found = registry[i];
	pthread_mutex_unlock(&registry_lock);
	return found;
}

/* ---------- rate-limited logs: at most one line a second per kind ---------- */

static bool rl_take(RateLog *r, long *suppressed)
{
	int64_t now = now_mono_us();
	if (r->last_us && now - r->last_us < 1000000) {
		r->suppressed++;
		return false;
	}
	r->last_us = now;
	*suppressed = r->suppressed;
	r->suppressed = 0;
	return true;
}

/* ---------- the listener: paused at the cap and after accept errors ---------- */

static void listener_update(Guard *g)
{
	if (!g->listener)
		return;
	bool cap = g->clients >= g->lim.max_clients;
	if (cap && !g->paused_cap) {
		long n;
		if (rl_take(&g->rl[RL_CAP], &n))
			log_warn("at=client-cap clients=%d max_clients=%d suppressed=%ld", g->clients,
				 g->lim.max_clients, n);
	}
	g->paused_cap = cap;
	bool enable = !cap && !g->paused_err;
	if (enable == g->enabled)
		return;
	g->enabled = enable;
	if (enable)
		evconnlistener_enable(g->listener);
	else
		evconnlistener_disable(g->listener);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	Guard *g = arg;
	(void)fd;
	(void)what;
	g->paused_err = false;
	listener_update(g);
}

/* libevent's default logs and retries at once: with EMFILE the listening socket stays
 * readable and the loop spins writing that line. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	int err = errno;
	Guard *g = registry_find(arg);
	if (!g || g->listener != l) { /* cannot happen: the guard's own listener */
		evconnlistener_disable(l);
		return;
	}
	tls_guard = g;
	long n;
	if (rl_take(&g->rl[RL_ACCEPT], &n))
		log_warn("at=accept-error error=\"%s\" clients=%d pause_ms=%d suppressed=%ld", strerror(err),
			 g->clients, ACCEPT_PAUSE_MS, n);
	g->paused_err = true;
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
	if (evtimer_add(g->resume_timer, &tv) < 0)
		fatal("at=event-add-failed");
	listener_update(g);
}

/* ---------- request memory ---------- */

static void held_release(Conn *c)
{
	Guard *g = c->g;
	g->held -= c->held;
	c->held = 0;
	/* Bodies are read in chunks below the mmap threshold: freed, they stay in malloc's arenas
	 * until trimmed. */
	if (g->trim_due && g->held == 0 && !evtimer_pending(g->trim_timer, NULL)) {
		struct timeval tv = {1, 0};
		evtimer_add(g->trim_timer, &tv);
	}
}

void guard_trim_soon(void)
{
	Guard *g = tls_guard;
	if (!g)
		return;
	g->trim_due = true;
	/* Each large read puts the trim off again: reads back to back (a dashboard's panels)
	 * reuse the heap, and a trim between them made the next one fault it all in again (the
	 * p90 of an hour read of 100 names over 14 days: 363 ms against a p50 of 194 ms). */
	struct timeval tv = {1, 0};
	evtimer_add(g->trim_timer, &tv);
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
	Guard *g = arg;
	(void)fd;
	(void)what;
	if (g->held > 0)
		return; /* the next release rearms it */
	g->trim_due = false;
	malloc_trim(0);
}

/* ---------- connections ---------- */

static void conn_unlist(Conn **list, Conn *c)
{
	if (!c->listed)
		return;
	for (Conn **p = list; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	c->listed = false;
	c->next = NULL;
}

/* Forgets c without touching its connection or bufferevent (they may be gone). */
static void conn_release(Conn *c)
{
	Guard *g = c->g;
	conn_unlist(&g->adopt_list, c);
	conn_unlist(&g->refuse_list, c);
	if (c->deadline)
		event_free(c->deadline);
	held_release(c);
	if (c->fd >= 0 && c->fd < g->nfds && g->by_fd[c->fd] == c)
		g->by_fd[c->fd] = NULL;
	g->clients--;
	free(c);
	listener_update(g);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	Conn *c = arg;
	(void)evcon;
	if (c->hook) {
		void (*fn)(void *) = c->hook;
		c->hook = NULL;
		fn(c->hook_arg);
	}
	/* The bufferevent outlives this callback (evhttp frees it next): detach from it. */
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->incb);
	conn_release(c);
}

static Conn *conn_of(Guard *g, struct evhttp_connection *evcon)
{
	if (!g || !evcon)
		return NULL;
	int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd < 0 || fd >= g->nfds)
		return NULL;
	Conn *c = g->by_fd[fd];
	return c && c->evcon == evcon ? c : NULL;
}

static void refuse(Conn *c, int status)
{
	Guard *g = c->g;
	if (c->refuse)
		return;
	c->refuse = status;
	c->reading = false;
	evtimer_del(c->deadline);
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in)); /* evhttp never sees what came */
	held_release(c);
	bufferevent_disable(c->bev, EV_READ);
	c->next = g->refuse_list;
	g->refuse_list = c;
	c->listed = true;
	event_active(g->refuse_ev, EV_TIMEOUT, 1);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	Conn *c = arg;
	Guard *g = c->g;
	(void)fd;
	(void)what;
	long n;
	if (rl_take(&g->rl[RL_TIMEOUT], &n))
		log_info("at=request-timeout timeout_ms=%d bytes=%zu suppressed=%ld", g->lim.request_timeout_ms,
			 c->held, n);
	refuse(c, 408);
}

static void request_start(Conn *c, size_t already)
{
	Guard *g = c->g;
	c->reading = true;
	struct timeval tv = {g->lim.request_timeout_ms / 1000, (g->lim.request_timeout_ms % 1000) * 1000};
	if (evtimer_add(c->deadline, &tv) < 0)
		fatal("at=event-add-failed");
	c->held += already;
	g->held += already;
}

/* Runs for every change of the connection's input buffer, within the read. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	Conn *c = arg;
	Guard *g = c->g;
	(void)buf;
	if (info->n_added == 0 || c->refuse)
		return;
	if (c->evcon) /* a close callback set by someone else was removed when it ended */
		evhttp_connection_set_closecb(c->evcon, on_close, c);
	if (!c->reading)
		request_start(c, 0);
	c->held += info->n_added;
	g->held += info->n_added;
	if (g->held >= TRIM_AFTER_BYTES)
		g->trim_due = true;
	long n;
	if (c->held > g->lim.request_max) {
		if (rl_take(&g->rl[RL_TOO_LARGE], &n))
			log_info("at=request-too-large bytes=%zu max=%zu suppressed=%ld", c->held,
				 g->lim.request_max, n);
		refuse(c, 413);
	} else if (g->held > g->lim.body_memory_max) {
		if (rl_take(&g->rl[RL_MEMORY], &n))
			log_warn("at=body-memory-full held=%zu max=%zu clients=%d suppressed=%ld", g->held,
				 g->lim.body_memory_max, g->clients, n);
		refuse(c, 503);
	}
}

static void adopt(Conn *c)
{
	Guard *g = c->g;
	void *arg = NULL;
	bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
	if (!arg) { /* evhttp gave the connection up already */
		evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->incb);
		bufferevent_decref(c->bev);
		c->fd = -1;
		conn_release(c);
		return;
	}
	c->evcon = arg;
	c->fd = bufferevent_getfd(c->bev);
	if (c->fd >= 0 && c->fd < g->nfds) {
		/* A connection still filed under this descriptor has closed unseen (its close
		 * callback was replaced by someone else's): the kernel reuses descriptors only once
		 * they are closed. Its memory is all that is left of it. */
		Conn *stale = g->by_fd[c->fd];
		if (stale) {
			stale->fd = -1;
			conn_release(stale);
		}
		g->by_fd[c->fd] = c;
	}
	evhttp_connection_set_closecb(c->evcon, on_close, c);
	bufferevent_decref(c->bev);
}

static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
	Guard *g = arg;
	(void)fd;
	(void)what;
	tls_guard = g;
	while (g->adopt_list) {
		Conn *c = g->adopt_list;
		g->adopt_list = c->next;
		c->next = NULL;
		c->listed = false;
		adopt(c);
	}
}

/* evhttp's bufferevent callback: one call per accepted connection. */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
	Guard *g = arg;
	tls_guard = g;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, 0); /* as evhttp makes its own */
	Conn *c = calloc(1, sizeof(*c));
	if (!bev || !c)
		fatal("at=oom");
	c->g = g;
	c->bev = bev;
	c->fd = -1;
	c->deadline = evtimer_new(base, on_deadline, c);
	c->incb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
	if (!c->deadline || !c->incb)
		fatal("at=oom");
	bufferevent_incref(bev);
	c->next = g->adopt_list;
	g->adopt_list = c;
	c->listed = true;
	event_active(g->adopt_ev, EV_TIMEOUT, 1);
	g->clients++;
	listener_update(g);
	return bev;
}

/* ---------- refusals and lingering closes ---------- */

static void linger_end(Linger *l)
{
	Guard *g = l->g;
	if (l->prev)
		l->prev->next = l->next;
	else
		g->lingers = l->next;
	if (l->next)
		l->next->prev = l->prev;
	event_free(l->ev);
	close(l->fd);
	free(l);
	g->clients--;
	listener_update(g);
}

static void on_linger(evutil_socket_t fd, short what, void *arg)
{
	Linger *l = arg;
	char sink[16384];
	if (!(what & EV_TIMEOUT) && now_mono_us() < l->until_us) {
		for (int i = 0; i < 8; i++) {
			ssize_t n = recv(fd, sink, sizeof(sink), 0);
			if (n > 0)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				return;
			break; /* EOF or error: done */
		}
		if (now_mono_us() < l->until_us)
			return; /* more to read, at the next wake-up */
	}
	linger_end(l);
}

static void linger_start(Guard *g, int fd)
{
	Linger *l = calloc(1, sizeof(*l));
	if (!l)
		fatal("at=oom");
	l->g = g;
	l->fd = fd;
	l->until_us = now_mono_us() + (int64_t)LINGER_MS * 1000;
	l->ev = event_new(g->base, fd, EV_READ | EV_PERSIST, on_linger, l);
	struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};
	if (!l->ev || event_add(l->ev, &tv) < 0)
		fatal("at=event-add-failed");
	l->next = g->lingers;
	if (l->next)
		l->next->prev = l;
	g->lingers = l;
	g->clients++;
}

static const char *refusal(int status, const char **reason)
{
	switch (status) {
	case 408:
		*reason = "Request Timeout";
		return "the request was not received within REQUEST_TIMEOUT_MS";
	case 413:
		*reason = "Payload Too Large";
		return "the request is larger than the body limit";
	default:
		*reason = "Service Unavailable";
		return "too many request bodies are being received; retry";
	}
}

/* Answers a connection evhttp is still reading, then frees it. The answer goes straight to
 * the socket (it is small, and nothing else is queued on it while a request is read). */
static void refuse_now(Conn *c)
{
	Guard *g = c->g;
	int fd = bufferevent_getfd(c->bev);
	const char *reason;
	const char *msg = refusal(c->refuse, &reason);
	char body[160], resp[512];
	int blen = snprintf(body, sizeof(body), "{\"error\": \"%s\"}\n", msg);
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
			 "Content-Length: %d\r\nConnection: close\r\n%s\r\n%s",
			 c->refuse, reason, blen, c->refuse == 503 ? "Retry-After: 1\r\n" : "", body);
	if (fd >= 0) {
		if (send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("at=refuse-send-failed error=\"%s\"", strerror(errno));
		int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dup >= 0)
			linger_start(g, dup);
	}
	/* Frees c through on_close; shuts the socket's write side (our FIN after the answer). */
	evhttp_connection_free(c->evcon);
}

static void on_refuse(evutil_socket_t fd, short what, void *arg)
{
	Guard *g = arg;
	(void)fd;
	(void)what;
	tls_guard = g;
	while (g->refuse_list) {
		Conn *c = g->refuse_list;
		g->refuse_list = c->next;
		c->next = NULL;
		c->listed = false;
		if (!c->evcon)
			adopt(c); /* cannot happen: input comes only after adoption */
		if (c->evcon)
			refuse_now(c);
	}
}

/* ---------- requests ---------- */

static void on_complete(struct evhttp_request *req, void *arg)
{
	Conn *c = arg;
	(void)req;
	held_release(c);
	/* Bytes of a pipelined request that came with this one: its clock runs already. */
	size_t left = evbuffer_get_length(bufferevent_get_input(c->bev));
	if (left > 0 && !c->refuse)
		request_start(c, left);
}

/* HEAD: the body's length goes into Content-Length and the body itself is dropped (evhttp
 * 2.1 writes a HEAD answer's body and gives it no length). */
static void on_head_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct evhttp_request *req = arg;
	if (info->n_added == 0)
		return;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const char *old = evhttp_find_header(h, "Content-Length");
	unsigned long long len = (old ? strtoull(old, NULL, 10) : 0) + info->n_added;
	char v[24];
	snprintf(v, sizeof(v), "%llu", len);
	evhttp_remove_header(h, "Content-Length");
	evhttp_add_header(h, "Content-Length", v);
	evbuffer_drain(buf, info->n_added);
}

/* RFC 9112 6.3: a request with both, or with several lengths, is framed ambiguously; a proxy
 * in front may have framed it differently, so what follows it is not trusted either. */
static const char *check_framing(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	int cl = 0, te = 0;
	const char *te_value = NULL;
	for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Content-Length") == 0)
			cl++;
		else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			te++;
			te_value = kv->value;
		}
	}
	if (cl > 1)
		return "more than one Content-Length header";
	if (cl && te)
		return "Content-Length together with Transfer-Encoding";
	if (te > 1 || (te && strcasecmp(te_value, "chunked") != 0))
		return "the only Transfer-Encoding accepted is chunked";
	return NULL;
}

const char *guard_request_begin(Guard *g, struct evhttp_request *req)
{
	tls_guard = g;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	Conn *c = conn_of(g, evcon);
	if (c) {
		evhttp_connection_set_closecb(evcon, on_close, c);
		c->reading = false;
		evtimer_del(c->deadline);
		evhttp_request_set_on_complete_cb(req, on_complete, c);
	}
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD &&
	    !evbuffer_add_cb(evhttp_request_get_output_buffer(req), on_head_output, req))
		fatal("at=oom");
	const char *why = check_framing(req);
	if (why) {
		long n;
		if (rl_take(&g->rl[RL_FRAMING], &n))
			log_info("at=bad-framing error=\"%s\" suppressed=%ld", why, n);
	}
	return why;
}

void guard_set_close_hook(struct evhttp_connection *evcon, void (*fn)(void *), void *arg)
{
	Conn *c = conn_of(tls_guard, evcon);
	if (!c)
		return;
	evhttp_connection_set_closecb(evcon, on_close, c);
	c->hook = fn;
	c->hook_arg = fn ? arg : NULL;
}

/* ---------- set-up ---------- */

int guard_default_max_clients(void)
{
	struct rlimit rl;
	long fds = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fds = (long)rl.rlim_cur;
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		fds = FD_TABLE_MAX;
	/* Per worker: its database connections, an eventfd and timers; per process: stdio, the
	 * listeners, spool files and gc's connections, with room to spare. */
	long reserve = 64 + (long)cfg->workers * ((long)cfg->ndatabases * (cfg->db_connections + 2) + 8);
	long per = (fds - reserve) / cfg->workers;
	return per < 16 ? 16 : per > 1000000 ? 1000000 : (int)per;
}

Guard *guard_new(struct event_base *base, struct evhttp *http, const GuardLimits *lim)
{
	Guard *g = calloc(1, sizeof(*g));
	if (!g)
		fatal("at=oom");
	g->base = base;
	g->http = http;
	g->lim = *lim;
	struct rlimit rl;
	g->nfds = FD_TABLE_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)FD_TABLE_MAX)
		g->nfds = (int)rl.rlim_cur;
	g->by_fd = calloc((size_t)g->nfds, sizeof(*g->by_fd)); /* pages are touched as used */
	g->adopt_ev = event_new(base, -1, 0, on_adopt, g);
	g->refuse_ev = event_new(base, -1, 0, on_refuse, g);
	g->resume_timer = evtimer_new(base, on_resume, g);
	g->trim_timer = evtimer_new(base, on_trim, g);
	if (!g->by_fd || !g->adopt_ev || !g->refuse_ev || !g->resume_timer || !g->trim_timer)
		fatal("at=oom");
	evhttp_set_bevcb(http, on_new_bev, g);
	registry_set(NULL, g);
	return g;
}

void guard_listen(Guard *g, struct evconnlistener *l)
{
	g->listener = l;
	g->enabled = true; /* as evconnlistener_new_bind leaves it */
	evconnlistener_set_error_cb(l, on_accept_error);
	listener_update(g);
}

void guard_unlisten(Guard *g)
{
	if (!g)
		return;
	g->listener = NULL;
	evtimer_del(g->resume_timer);
}

void guard_free(Guard *g)
{
	if (!g)
		return;
	guard_unlisten(g);
	/* evhttp_free closed every connection (each through on_close); what is left never
	 * reached evhttp or is lingering. */
	while (g->adopt_list)
		on_adopt(-1, 0, g);
	while (g->refuse_list) {
		Conn *c = g->refuse_list;
		conn_release(c); /* unlinks it */
	}
	while (g->lingers)
		linger_end(g->lingers);
	for (int fd = 0; fd < g->nfds; fd++)
		if (g->by_fd[fd])
			conn_release(g->by_fd[fd]);
	event_free(g->adopt_ev);
	event_free(g->refuse_ev);
	event_free(g->resume_timer);
	event_free(g->trim_timer);
	free(g->by_fd);
	if (tls_guard == g)
		tls_guard = NULL;
	registry_set(g, NULL);
	free(g);
}
