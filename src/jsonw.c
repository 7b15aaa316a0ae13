/* JSON output helpers. */
#include "jsonw.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two digits at a time, from the right: an answer writes a bucket and often an integer value
 * per point, hundreds of thousands of them. */
size_t jsonw_format_int(int64_t v, char *buf)
{
	static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
				    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
				    "8081828384858687888990919293949596979899";
	size_t len = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	if (v < 0)
		buf[len++] = '-';
	size_t n = 1;
	for (uint64_t t = u; t >= 10; t /= 10)
		n++;
	char *p = buf + len + n;
	*p = '\0';
	while (u >= 100) {
		unsigned k = (unsigned)(u % 100) * 2;
		u /= 100;
		*--p = pairs[k + 1];
		*--p = pairs[k];
	}
	if (u >= 10) {
		*--p = pairs[u * 2 + 1];
		*--p = pairs[u * 2];
	} else {
		*--p = (char)('0' + u);
	}
	return len + n;
}

/* The shortest of %.15g, %.16g and %.17g that reads back as v, from prec up. %g drops trailing
 * zeros, so 15 digits is already shortest for a normal double that needs no more. */
static size_t format_g_printf(double v, int prec, char *buf)
{
	for (; prec <= 17; prec++) {
		int n = snprintf(buf, 32, "%.*g", prec, v);
		if (prec == 17 || strtod(buf, NULL) == v)
			return (size_t)n;
	}
	return 0;
}

/* Writes the nd significant digits d (value d[0].d[1]... x 10^e) as %.<prec>g would. */
static size_t put_g(char *buf, bool neg, const char *d, int nd, int e, int prec)
{
	size_t len = 0;
	while (nd > 1 && d[nd - 1] == '0')
		nd--;
	if (neg)
		buf[len++] = '-';
	if (e < -4 || e >= prec) {
		buf[len++] = d[0];
		if (nd > 1) {
			buf[len++] = '.';
			memcpy(buf + len, d + 1, (size_t)nd - 1);
			len += (size_t)nd - 1;
		}
		buf[len++] = 'e';
		buf[len++] = e < 0 ? '-' : '+';
		int x = e < 0 ? -e : e;
		if (x < 10)
			buf[len++] = '0';
		len += jsonw_format_int(x, buf + len);
		return len;
	}
	if (e < 0) {
		buf[len++] = '0';
		buf[len++] = '.';
		for (int z = -1; z > e; z--)
			buf[len++] = '0';
		memcpy(buf + len, d, (size_t)nd);
		len += (size_t)nd;
	} else {
		for (int k = 0; k <= e; k++)
			buf[len++] = k < nd ? d[k] : '0';
		if (nd > e + 1) {
			buf[len++] = '.';
			memcpy(buf + len, d + e + 1, (size_t)(nd - e - 1));
			len += (size_t)(nd - e - 1);
		}
	}
	buf[len] = '\0';
	return len;
}

/* What format_g_printf(v, 15) writes, from one printf of 17 digits instead of up to three:
 * the 15- and 16-digit candidates are those digits rounded, each tried with strtod. Rounding
 * 17 digits rounds twice, which differs from rounding v itself only when the digits dropped
 * are a 5 and zeros: then printf decides. */
static size_t format_g_digits(double v, char *buf)
{
	char t[40];
	snprintf(t, sizeof(t), "%.16e", v);
	const char *p = t;
	bool neg = *p == '-';
	p += neg;
	char d17[17];
	d17[0] = p[0];
	memcpy(d17 + 1, p + 2, 16);
	int e = atoi(p + 19);
	for (int prec = 15; prec <= 16; prec++) {
		bool half = d17[prec] == '5';
		for (int k = prec + 1; k < 17 && half; k++)
			half = d17[k] == '0';
		if (half)
			return format_g_printf(v, prec, buf);
		char d[17];
		int de = e;
		memcpy(d, d17, (size_t)prec);
		if (d17[prec] >= '5') {
			int k = prec - 1;
			while (k >= 0 && d[k] == '9')
				d[k--] = '0';
			if (k >= 0) {
				d[k]++;
			} else { /* 99...9 rounds up to 10...0 */
				d[0] = '1';
				de++;
			}
		}
		size_t n = put_g(buf, neg, d, prec, de, prec);
		if (strtod(buf, NULL) == v)
			return n;
	}
	return put_g(buf, neg, d17, 17, e, 17);
}

/* The same as format_g_digits(), for 1e-5 <= |v| < 1e15 with a fraction (a mean, a rate),
 * in integer arithmetic: v is m * 2^-s exactly, so v * 10^k = m * 10^k / 2^s is rounded
 * exactly (ties to even, as printf) to P = 15, 16 or 17 digits, and a candidate reads back as
 * v (strtod, ties to even) exactly when it lies within half a unit of v's last place (a
 * quarter below a power of two), ends included when m is even. 0 when v is outside. About
 * 20 times faster than printf and strtod, which took most of the time a long read spent
 * writing its answer. */
static const uint64_t POW10[20] = {
	1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
	10000000000u, 100000000000u, 1000000000000u, 10000000000000u, 100000000000000u,
	1000000000000000u, 10000000000000000u, 100000000000000000u, 1000000000000000000u,
	10000000000000000000u};

static unsigned __int128 pow10_wide(int k)
{
	return k < 20 ? (unsigned __int128)POW10[k] : (unsigned __int128)POW10[19] * POW10[k - 19];
}

static size_t format_g_exact(double v, char *buf)
{
	typedef unsigned __int128 u128;
	double a = fabs(v);
	if (!(a >= 1e-5 && a < 1e15))
		return 0;
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	int s = 1075 - (int)((bits >> 52) & 0x7ff); /* v = m * 2^-s */
	uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52;
	if (s <= 0) /* an integer: not here */
		return 0;
	/* e10: 10^e10 <= a < 10^(e10 + 1), estimated from the binary exponent (1233 / 4096 is
	 * log10(2) to 5 digits: at most one short, never over), then made exact on 17 digits. */
	int e2 = (int)((bits >> 52) & 0x7ff) - 1023;
	int e10 = e2 >= 0 ? e2 * 1233 / 4096 : -((-e2 * 1233 + 4095) / 4096), tries = 0;
	for (; tries < 3; tries++) {
		u128 q = ((u128)m * pow10_wide(16 - e10)) >> s;
		if (q < POW10[16])
			e10--;
		else if (q >= POW10[17])
			e10++;
		else
			break;
	}
	if (tries == 3 || e10 < -5 || e10 > 14)
		return 0;
	u128 one = (u128)1 << s, half = one >> 1;
	bool pow2 = m == UINT64_C(1) << 52;
	for (int prec = 15; prec <= 17; prec++) {
		int k = prec - 1 - e10;
		u128 scale = pow10_wide(k);
		u128 n = (u128)m * scale;
		u128 q = n >> s, r = n & (one - 1);
		bool up = r > half || (r == half && (q & 1));
		u128 dist = up ? one - r : r; /* |candidate - v| in units of 2^-s / 10^k */
		q += up;
		bool back = prec == 17;
		if (!back) {
			u128 lim = up || !pow2 ? 2 * dist : 4 * dist; /* against 10^k */
			back = lim < scale || (lim == scale && (m & 1) == 0);
		}
		if (!back)
			continue;
		int de = e10;
		if (q == POW10[prec]) { /* 99...9 rounded up to 10...0 */
			q = POW10[prec - 1];
			de++;
		}
		char d[17];
		uint64_t u = (uint64_t)q;
		for (int i = prec - 1; i >= 0; i--) {
			d[i] = (char)('0' + u % 10);
			u /= 10;
		}
		return put_g(buf, v < 0, d, prec, de, prec);
	}
	return 0;
}

size_t jsonw_format_double(double v, char *buf)
{
	if (!isfinite(v)) /* never stored, but never emit invalid JSON either */
		return (size_t)snprintf(buf, 32, "null");
	if (v == 0)
		return (size_t)snprintf(buf, 32, "0");
	if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v)
		return jsonw_format_int((int64_t)v, buf);
	/* Most values are short decimals (1.5, 3.14, 0.25): find the fewest fraction digits k with
	 * round(v * 10^k) / 10^k == v. Division is correctly rounded, so v is the double nearest
	 * that decimal and reads back exactly; a smaller k would have matched first, so it is the
	 * shortest. Everything else takes printf below. */
	static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
	double a = fabs(v);
	if (a >= 1e-4 && a < 1e9) {
		for (int k = 1; k < 10; k++) {
			double m = nearbyint(a * pow10[k]);
			if (m >= 9007199254740992.0)
				break;
			if (m / pow10[k] != a)
				continue;
			char digits[24];
			size_t nd = jsonw_format_int((int64_t)m, digits), len = 0;
			if (v < 0)
				buf[len++] = '-';
			if (nd <= (size_t)k) { /* 0.000ddd */
				buf[len++] = '0';
				buf[len++] = '.';
				for (size_t z = nd; z < (size_t)k; z++)
					buf[len++] = '0';
				memcpy(buf + len, digits, nd);
				len += nd;
			} else {
				memcpy(buf + len, digits, nd - (size_t)k);
				len += nd - (size_t)k;
				buf[len++] = '.';
				memcpy(buf + len, digits + nd - k, (size_t)k);
				len += (size_t)k;
			}
			buf[len] = '\0';
			return len;
		}
	}
	if (a < DBL_MIN) /* subnormal: fewer digits than 15 may be all it carries */
		return format_g_printf(v, 1, buf);
	size_t n = format_g_exact(v, buf);
	return n ? n : format_g_digits(v, buf);
}

void jsonw_double(Buf *b, double v)
{
	char tmp[32];
	buf_add(b, tmp, jsonw_format_double(v, tmp));
}

void jsonw_string(Buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	buf_reserve(b, len + 2);
	buf_addc(b, '"');
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_add(b, s + start, i - start);
		start = i + 1;
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			buf_add(b, esc, 2);
		} else {
			buf_add(b, esc, 6);
		}
	}
	buf_add(b, s + start, len - start);
	buf_addc(b, '"');
}

void jsonw_error(Buf *b, const char *msg, const char *field, long index)
{
	buf_adds(b, "{\"error\": ");
	jsonw_string(b, msg, strlen(msg));
	if (field) {
		buf_adds(b, ", \"field\": ");
		jsonw_string(b, field, strlen(field));
	}
	if (index >= 0)
		buf_addf(b, ", \"index\": %ld", index);
	buf_adds(b, "}\n");
}
