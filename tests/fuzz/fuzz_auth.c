/* libFuzzer target: API_TOKENS and the Authorization header. The input is a spec, a newline,
 * then a header value. Checks what callers rely on: a spec either parses or says why without
 * repeating a token, and any header gets one of the four answers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t spec_len = nl ? (size_t)(nl - data) : size;
	char *spec = malloc(spec_len + 1);
	char *header = malloc(size - spec_len + 1);
	if (!spec || !header)
		abort();
	memcpy(spec, data, spec_len);
	spec[spec_len] = '\0';
	size_t hlen = nl ? size - spec_len - 1 : 0;
	memcpy(header, nl ? nl + 1 : data, hlen);
	header[hlen] = '\0';

	AuthTokens *t = NULL;
	char err[200];
	err[0] = '\0';
	if (!auth_parse(spec, &t, err, sizeof(err))) {
		if (!err[0] || t)
			__builtin_trap();
	} else {
		/* Any header gets one of the four answers, and with tokens off, OK. */
		for (int need = AUTH_READ; need <= AUTH_WRITE; need++) {
			AuthResult r = auth_check(t, header, (AuthScope)need);
			if (r != AUTH_OK && r != AUTH_MISSING && r != AUTH_UNKNOWN && r != AUTH_FORBIDDEN)
				__builtin_trap();
			if (!t && r != AUTH_OK)
				__builtin_trap();
		}
		auth_free(t);
	}
	free(spec);
	free(header);
	return 0;
}
