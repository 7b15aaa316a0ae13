/* API tokens: API_TOKENS="tok1,tok2:read,tok3:write" parsed once at start-up, and the check of a
 * request's Authorization header (HTTP Basic with the token as the password, as Librato clients
 * send email:token, or Bearer). Tokens never appear in the messages this module writes. */
#ifndef M2PG_AUTH_H
#define M2PG_AUTH_H

#include "common.h"

#define AUTH_MAX_TOKENS 64
#define AUTH_TOKEN_MAX 256 /* bytes */

/* A set: a bare token holds both. */
typedef enum { AUTH_READ = 1, AUTH_WRITE = 2 } AuthScope;

typedef struct AuthTokens AuthTokens;

typedef enum {
	AUTH_OK,
	AUTH_MISSING,   /* no header, or one that carries no token: 401 */
	AUTH_UNKNOWN,   /* a token not configured, or a malformed header: 401 */
	AUTH_FORBIDDEN, /* a configured token without the scope needed: 403 */
} AuthResult;

/* Parses API_TOKENS. NULL or "": true with *out NULL (auth off). On error the message names the
 * entry by its position (1-based), never its text. */
bool auth_parse(const char *spec, AuthTokens **out, char *err, size_t errlen) WARN_UNUSED;
/* Wipes the tokens before freeing them. NULL is fine. */
void auth_free(AuthTokens *t);
/* 0 for NULL. */
size_t auth_count(const AuthTokens *t);
/* authorization: the Authorization header's value, or NULL. need: the scopes the route needs.
 * t == NULL (auth off): AUTH_OK. The time taken does not depend on which configured token, if
 * any, the presented one matches, nor on how many of its bytes match one. */
AuthResult auth_check(const AuthTokens *t, const char *authorization, AuthScope need);

#endif
