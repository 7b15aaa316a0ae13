/* The chart page's files, embedded at build time (page_assets.h). Every file carries an ETag
 * (a hash of its bytes) and Cache-Control: no-cache: the assets' URLs hold no version, so a
 * browser must revalidate each, which costs a 304 without a body while nothing changed, and a
 * page of one build never runs with a script of another. The data a page shows comes from
 * /metrics, never from here. */
#include "api_page.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <string.h>

#include "page_assets.h"

/* dygraphs writes inline style attributes (its legend markup, the zoom rectangle); scripts may
 * come from this origin only. */
#define PAGE_CSP "default-src 'self'; style-src 'self' 'unsafe-inline'"
#define PAGE_PREFIX "/page/"

static const char *content_type(const char *name)
{
	static const char *const types[][2] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".svg", "image/svg+xml"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < ARRAY_LEN(types); i++)
		if (strcmp(dot, types[i][0]) == 0)
			return types[i][1];
	return "application/octet-stream";
}

/* index.html is the page itself, at /; the other files are under /page/. */
static const PageAsset *asset_find(const char *path)
{
	const char *name = strcmp(path, "/") == 0 ? "index.html"
			   : strncmp(path, PAGE_PREFIX, strlen(PAGE_PREFIX)) == 0 ? path + strlen(PAGE_PREFIX)
										  : NULL;
	if (!name || strcmp(path, PAGE_PREFIX "index.html") == 0)
		return NULL;
	for (size_t i = 0; i < page_assets_count; i++)
		if (strcmp(page_assets[i].name, name) == 0)
			return &page_assets[i];
	return NULL;
}

/* If-None-Match is "*" or a comma-separated list of entity tags; it compares weakly (RFC 9110
 * 13.1.2), so W/"x" matches "x". */
static bool etag_matches(const char *header, const char *etag)
{
	size_t n = strlen(etag);
	const char *p = header;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		const char *end = p;
		if (*p == '"') {
			end = strchr(p + 1, '"');
			end = end ? end + 1 : p + strlen(p);
		} else {
			while (*end && *end != ',')
				end++;
		}
		if ((size_t)(end - p) == n && strncmp(p, etag, n) == 0)
			return true;
		p = end;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

void api_page_serve(Web *w, struct evhttp_request *req, int64_t start_us)
{
	(void)w;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	const PageAsset *a = path ? asset_find(path) : NULL;
	if (!a) {
		reply_error(req, 404, "not found: the page is at /, its files under /page/", NULL, -1, start_us);
		return;
	}
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	evhttp_add_header(out, "Cache-Control", "no-cache");
	evhttp_add_header(out, "ETag", a->etag);
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	if (strcmp(a->name, "index.html") == 0)
		evhttp_add_header(out, "Content-Security-Policy", PAGE_CSP);
	Buf none = {0};
	const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
	if (inm && etag_matches(inm, a->etag)) {
		reply_send(req, 304, content_type(a->name), &none, start_us);
		return;
	}
	/* The bytes are static: evbuffer refers to them instead of copying. */
	if (evbuffer_add_reference(evhttp_request_get_output_buffer(req), a->data, a->len, NULL, NULL) < 0) {
		reply_error(req, 503, "out of memory", NULL, -1, start_us);
		return;
	}
	reply_send(req, 200, content_type(a->name), &none, start_us);
}
