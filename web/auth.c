/* The API token: checked in constant time, loaded from a file (see
 * web/auth.h). */
#include "web/auth.h"

#include "common/err.h"
#include "common/sha1.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int web_auth_check(const char *token, const char *authorization, char *why,
                   size_t whylen)
{
    if (!token || !*token) {
        snprintf(why, whylen,
                 "this tickq-web is read-only: start it with --api-token, "
                 "TICKQ_API_TOKEN or --api-token-file to allow changes");
        return 403;
    }
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) {
        snprintf(why, whylen, "this needs the header 'Authorization: Bearer <token>'");
        return 401;
    }
    const char *sent = authorization + 7;
    while (*sent == ' ')
        sent++;
    /* Digests of both: the comparison below then reads the same 40 bytes
     * whatever was sent, and stops at no early difference. */
    char a[41], b[41];
    tq_sha1_hex(token, strlen(token), a);
    tq_sha1_hex(sent, strlen(sent), b);
    unsigned diff = 0;
    for (int i = 0; i < 40; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    if (diff) {
        snprintf(why, whylen, "wrong API token");
        return 401;
    }
    return 0;
}

int web_auth_load(const char *path, char *token, size_t tokenlen, char *err,
                  size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return tq_err_set(TQ_ECONFIG, err, errlen, "--api-token-file %s: %s", path,
                          strerror(errno));
    char line[WEB_AUTH_TOKEN_MAX + 2];
    size_t n = fread(line, 1, sizeof line - 1, f);
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr)
        return tq_err_set(TQ_ECONFIG, err, errlen, "--api-token-file %s: cannot read it",
                          path);
    line[n] = '\0';
    size_t len = 0; /* up to the line end: a NUL byte counts as a byte */
    while (len < n && line[len] != '\n' && line[len] != '\r')
        len++;
    if (len == n && n == sizeof line - 1)
        return tq_err_set(TQ_ECONFIG, err, errlen,
                          "--api-token-file %s: the token is longer than %d bytes", path,
                          WEB_AUTH_TOKEN_MAX - 1);
    line[len] = '\0';
    if (len == 0)
        return tq_err_set(TQ_ECONFIG, err, errlen,
                          "--api-token-file %s: the first line is empty", path);
    for (size_t i = 0; i < len; i++)
        if (line[i] < 0x21 || line[i] > 0x7e)
            return tq_err_set(TQ_ECONFIG, err, errlen,
                              "--api-token-file %s: the token must be printable ASCII "
                              "without spaces",
                              path);
    if (len >= tokenlen)
        return tq_err_set(TQ_ECONFIG, err, errlen,
                          "--api-token-file %s: the token is too long", path);
    memcpy(token, line, len + 1);
    memset(line, 0, sizeof line);
    return 0;
}
