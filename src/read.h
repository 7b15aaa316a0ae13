/* The read path, shared by every front-end: asks every database, merges what comes back,
 * removes duplicates by id and rolls the rows up into series of the asked resolution. The
 * front-end says what to read (ReadSpec) and how to write the answer (ReadFormat); the read
 * path owns the fan-out, the deadlines, the bounds and the streaming of large answers. */
#ifndef M2PG_READ_H
#define M2PG_READ_H

#include "reply.h"
#include "rollup.h"
#include "tm.h"

typedef struct ReadSpec {
	const char *name_regex;   /* unanchored, checked by query_regex_check() */
	const char *source_regex; /* NULL: every source */
	int64_t from_us, to_us;   /* inclusive */
	TmRes res;
	bool by_source; /* a series per (name, source); otherwise a name's sources roll up together */
} ReadSpec;

/* How a front-end writes an answer: the opening, each series, the end. The answer goes out in
 * chunks: each call appends to out until it holds about want bytes. */
typedef struct ReadFormat {
	void (*open)(void *ctx, Buf *out);
	/* Writes series s from where the last call for it stopped; true once s is written whole.
	 * index: the series' place in the answer, from 0. */
	bool (*series)(void *ctx, RollSeries *s, size_t index, Buf *out, size_t want);
	/* answered: databases that answered, of ndbs (known by then; also in the M2pg-Databases
	 * header). NULL, or why the request is answered 400 instead (taken only while nothing was
	 * sent: a format that can fail here writes nothing before). */
	const char *(*close)(void *ctx, Buf *out, int answered, int ndbs);
	void (*free)(void *ctx);
} ReadFormat;

/* Reads spec (copied) and answers req: 200 with the format's body, or an error (400 for a
 * query a database rejects, 422 past READ_MAX_ROWS, 503 when no database answered or too many
 * reads are in flight). fmt_ctx is freed with fmt->free once the read is over, whichever way. */
void read_series(Web *w, struct evhttp_request *req, int64_t start_us, const ReadSpec *spec,
		 const ReadFormat *fmt, void *fmt_ctx);

/* The catalogue's names matching a regex, merged from every database that answered. */
typedef struct ReadNames {
	char **names; /* sorted bytewise, unique: the first `max` of them */
	size_t n;
	uint64_t matched;   /* names that matched, in the catalogue with most matches */
	uint64_t total;     /* names in the largest catalogue */
	int answered, ndbs;
} ReadNames;

/* Called once with the names (valid during the call), or with NULL after req was answered
 * with an error (no database answered). The callback answers req. */
typedef void (*ReadNamesDone)(void *ctx, struct evhttp_request *req, int64_t start_us, const ReadNames *names);

/* regex NULL: every name; at most max names. */
void read_names(Web *w, struct evhttp_request *req, int64_t start_us, const char *regex, size_t max,
		ReadNamesDone done, void *ctx);

#endif
