/* Attributes, small macros and the logger shared by every module.
 * Logs are logfmt lines on stdout, one line per event, so m2pg's own logs can feed l2met. */
#ifndef M2PG_COMMON_H
#define M2PG_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define M2PG_VERSION "0.1.0"

#define WARN_UNUSED __attribute__((warn_unused_result))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_NONE };

extern int log_level;

void log_write(int level, const char *fmt, ...) PRINTF_LIKE(2, 3);
void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2) NORETURN;
/* Copies s into dst (size n) fit for a logfmt value inside double quotes. */
const char *log_quote(char *dst, size_t n, const char *s);

#define log_debug(...) do { if (log_level <= LOG_DEBUG) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  do { if (log_level <= LOG_INFO)  log_write(LOG_INFO, __VA_ARGS__); } while (0)
#define log_warn(...)  do { if (log_level <= LOG_WARN)  log_write(LOG_WARN, __VA_ARGS__); } while (0)
#define log_error(...) do { if (log_level <= LOG_ERROR) log_write(LOG_ERROR, __VA_ARGS__); } while (0)

/* FNV-1a: small, fast hashes for in-memory tables and file names (not for security). */
static inline uint32_t fnv1a32(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static inline uint64_t fnv1a64(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

/* The value of a hexadecimal digit, or -1. */
static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Monotonic and wall clocks in microseconds. */
int64_t now_mono_us(void);
int64_t now_wall_us(void);

#endif
