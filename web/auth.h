/* web_auth: the bearer token that the API's mutations need.
 *
 * With no token configured every mutation is 403 (the web is read-only);
 * a request without "Authorization: Bearer <token>", or with another
 * token, is 401. The comparison takes the same time whatever the token
 * sent (it depends on the lengths only through a fixed-size digest). The
 * token is never logged nor echoed. Cookies are never looked at, so a page
 * of another origin cannot make a browser act (no CSRF). */
#ifndef TQ_WEB_AUTH_H
#define TQ_WEB_AUTH_H

#include <stddef.h>

#define WEB_AUTH_TOKEN_MAX 512 /* bytes of a token, with the NUL */

/* Checks an Authorization header value (NULL when absent) against token
 * ("" when none is configured). Returns 0 when allowed, else 401 or 403
 * with a sentence in why (whylen bytes) that never holds either token. */
int web_auth_check(const char *token, const char *authorization, char *why,
                   size_t whylen);

/* Reads the token from path: its first line, without the line end; at most
 * WEB_AUTH_TOKEN_MAX - 1 bytes of printable ASCII. Returns 0, or TQ_ECONFIG
 * with a sentence in err (which never holds the file's bytes). */
int web_auth_load(const char *path, char *token, size_t tokenlen, char *err,
                  size_t errlen);

#endif
