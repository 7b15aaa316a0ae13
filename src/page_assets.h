/* The chart page's files, embedded in the binary at build time: build/page_assets.c is written
 * by scripts/embed.py from web/ and Debian's libjs-dygraphs (see the Makefile). */
#ifndef M2PG_PAGE_ASSETS_H
#define M2PG_PAGE_ASSETS_H

#include <stddef.h>

typedef struct PageAsset {
	const char *name; /* the file's base name: index.html, app.js, dygraph.min.js... */
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted, a hash of data */
} PageAsset;

extern const PageAsset page_assets[];
extern const size_t page_assets_count;

#endif
