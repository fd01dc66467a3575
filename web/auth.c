/* The API token: checked in constant time, loaded from a file (see
 * web/auth.h). */
#include "web/auth.h"

#include "common/err.h"
#include "common/sha1.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int web_auth_check(const char *token, const char *authorization, char *why, size_t whylen)
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

/* Checks the first line of a token file, in line[n]; on success it is
 * copied to token. Returns 0 or TQ_ECONFIG with err set. */
static int token_line(const char *path, char *line, size_t n, int full, char *token,
                      size_t tokenlen, char *err, size_t errlen)
{
    size_t len = 0; /* up to the line end: a NUL byte counts as a byte */
    while (len < n && line[len] != '\n' && line[len] != '\r')
        len++;
    if (len == n && full)
        return tq_err_set(TQ_ECONFIG, err, errlen,
                          "--api-token-file %s: the token is longer than %d bytes", path,
                          WEB_AUTH_TOKEN_MAX - 1);
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
    memcpy(token, line, len);
    token[len] = '\0';
    return 0;
}

int web_auth_load(const char *path, char *token, size_t tokenlen, char *err,
                  size_t errlen)
{
    /* read(2), not stdio: no buffer of the file's bytes is left behind in
     * freed memory, and the one on the stack is wiped on every path. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tq_err_set(TQ_ECONFIG, err, errlen, "--api-token-file %s: %s", path,
                          strerror(errno));
    char line[WEB_AUTH_TOKEN_MAX + 1];
    size_t n = 0;
    ssize_t got = 0;
    while (n < sizeof line && ((got = read(fd, line + n, sizeof line - n)) > 0 ||
                               (got < 0 && errno == EINTR)))
        n += got > 0 ? (size_t)got : 0;
    int rc =
        got < 0
            ? tq_err_set(TQ_ECONFIG, err, errlen,
                         "--api-token-file %s: cannot read it: %s", path, strerror(errno))
            : token_line(path, line, n, n == sizeof line, token, tokenlen, err, errlen);
    close(fd);
    explicit_bzero(line, sizeof line);
    return rc;
}
