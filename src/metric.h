/* The metric model and the validation of what clients post. Pure: links alone in unit tests.
 * A parsed body becomes one MetricBatch: an array of metrics plus one arena for their names,
 * so a request costs two allocations whatever its size. */
#ifndef M2PG_METRIC_H
#define M2PG_METRIC_H

#include "common.h"
#include "uuid.h"

enum {
	METRIC_COUNT,
	METRIC_MEAN,
	METRIC_MEDIAN,
	METRIC_MIN,
	METRIC_MAX,
	METRIC_PERC95,
	METRIC_PERC99,
	METRIC_LAST,
	METRIC_NSTATS
};

#define METRIC_NAME_MAX 255
#define METRIC_SOURCE_MAX 255
#define METRIC_BATCH_MAX 10000
#define METRIC_VALUE_MAX 1e100
#define METRIC_VALUE_MIN 1e-100 /* smallest magnitude other than 0 */

extern const char *const metric_stat_names[METRIC_NSTATS];

typedef struct Metric {
	Uuid id;
	int64_t bucket_us;
	const char *name; /* into the batch's arena, NUL-terminated */
	const char *source; /* the same, or NULL: unassigned */
	uint16_t name_len;
	uint8_t source_len;
	uint8_t present; /* bit i set: v[i] holds a value; clear: NULL */
	bool has_id;     /* the client chose the id (a retry-safe write) */
	double v[METRIC_NSTATS];
} Metric;

typedef struct MetricBatch {
	Metric *m;
	size_t n;
	bool is_array; /* the body was an array: answer with an array */
	char *arena;
} MetricBatch;

typedef struct MetricError {
	int status; /* 400 malformed JSON, 422 invalid metric */
	long index; /* position in a batch, -1 when not applicable */
	char field[64]; /* the field, with its position when the format has lists: gauges[2].name */
	char msg[200];
} MetricError;

/* Parses and validates a whole body; all or nothing. Ids are given to metrics without one. */
bool metric_parse_body(const char *body, size_t len, MetricBatch *out, MetricError *err) WARN_UNUSED;
void metric_batch_free(MetricBatch *b);
/* Bytes [s, s+len) are a valid name: 1..255 bytes of UTF-8 without control characters. */
bool metric_name_valid(const char *s, size_t len);
/* Bytes [s, s+len) are a valid source, as Librato allows them: 1..255 of A-Z a-z 0-9 . : - _ */
bool metric_source_valid(const char *s, size_t len);

#endif
