/* Redis URL parser.
 *
 * No error text ever holds the password: messages quote the input with its
 * credentials replaced by "***" (redact_input), and the parsed URL is shown
 * through tq_url_redacted(). */
#include "common/url.h"
#include "common/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fail(err, errlen, ...) tq_err_set(TQ_EINVAL, err, errlen, __VA_ARGS__)

/* Parses the decimal number in [s, e) into *out within [lo, hi]. */
static int parse_int(const char *s, const char *e, long lo, long hi, int *out)
{
    long v = 0;
    if (s == e || e - s > 9)
        return -1;
    for (const char *p = s; p < e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Copies [s, e) into dst (cap bytes with the NUL), decoding %XX escapes. */
static int copy_decoded(char *dst, size_t cap, const char *s, const char *e)
{
    size_t n = 0;
    for (const char *p = s; p < e; p++) {
        char c = *p;
        if (c == '%') {
            unsigned v;
            /* sscanf's %x alone would take a sign or a space. */
            if (e - p < 3 || !isxdigit((unsigned char)p[1]) ||
                !isxdigit((unsigned char)p[2]) || sscanf(p + 1, "%2x", &v) != 1)
                return -1;
            c = (char)v;
            p += 2;
        }
        if (c == '\0' || n + 1 >= cap)
            return -1;
        dst[n++] = c;
    }
    dst[n] = '\0';
    return 0;
}

/* The host characters we accept: a DNS name or IPv4 address; inside
 * brackets, an IPv6 address. Spaces, control bytes and URL delimiters in a
 * host are typos or attacks, never a name getaddrinfo() should see. */
#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
#define HOST6_CHARS "0123456789abcdefABCDEF:."

/* Writes s into buf with everything between its scheme ("redis://", or
 * any "x://", or the start) and its last '@' replaced by ":***" (a user
 * before the first ':' is kept), so that an error message can quote the
 * input. Without an '@' there is nothing to hide. Cuts to len bytes after
 * redacting, so a cut never uncovers a secret. */
static void redact_input(const char *s, char *buf, size_t len)
{
    const char *at = strrchr(s, '@');
    if (!at) {
        snprintf(buf, len, "%s", s);
        return;
    }
    const char *scheme = strstr(s, "://");
    const char *cred = scheme && scheme < at ? scheme + 3 : s;
    const char *colon = memchr(cred, ':', (size_t)(at - cred));
    snprintf(buf, len, "%.*s%s@%s", (int)((colon ? colon : cred) - s), s,
             colon ? ":***" : "***", at + 1);
}

static int parse_unix(const char *s, tq_url *out, char *err, size_t errlen)
{
    const char *path = s + strlen("unix://");
    const char *q = strchr(path, '?');
    const char *end = q ? q : path + strlen(path);
    if (*path != '/')
        return fail(err, errlen, "redis url '%s': a unix socket path must be absolute",
                    s);
    if (copy_decoded(out->host, sizeof out->host, path, end) < 0)
        return fail(err, errlen, "redis url '%s': bad or too long socket path", s);
    for (const char *p = out->host; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return fail(err, errlen, "redis url '%s': a control byte in the socket path",
                        s);
    out->is_unix = 1;
    if (q) {
        if (strncmp(q, "?db=", 4) != 0 ||
            parse_int(q + 4, q + strlen(q), 0, 1000000, &out->db) < 0)
            return fail(err, errlen, "redis url '%s': the only query is ?db=N", s);
    }
    return 0;
}

int tq_url_parse(const char *s_in, tq_url *out, char *err, size_t errlen)
{
    char s[TQ_URL_HOST_MAX + 64]; /* s_in, for messages, without a password */
    memset(out, 0, sizeof *out);
    out->port = TQ_URL_DEFAULT_PORT;
    if (!s_in || !*s_in)
        return fail(err, errlen, "redis url is empty");
    redact_input(s_in, s, sizeof s);
    if (strncmp(s_in, "unix://", 7) == 0) {
        for (const char *p = s_in; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return fail(err, errlen,
                            "redis url: a control byte at position %d of the socket path",
                            (int)(p - s_in) + 1);
        return parse_unix(s_in, out, err, errlen);
    }
    if (strncmp(s_in, "redis://", 8) != 0)
        return fail(err, errlen, "redis url '%s': must start with redis:// or unix://",
                    s);
    for (const char *p = s_in; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return fail(err, errlen,
                        "redis url: a space or control byte at position %d: a host, port "
                        "or database has none, and a password writes a space as %%20",
                        (int)(p - s_in) + 1);

    const char *p = s_in + 8;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *user_end = colon ? colon : at;
        if (copy_decoded(out->user, sizeof out->user, p, user_end) < 0)
            return fail(err, errlen, "redis url: bad or too long user name");
        if (colon && copy_decoded(out->password, sizeof out->password, colon + 1, at) < 0)
            return fail(err, errlen, "redis url: bad or too long password");
        p = at + 1;
    }

    const char *host_end;
    const char *port_start = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return fail(err, errlen, "redis url '%s': unclosed '[' in the host", s);
        if (copy_decoded(out->host, sizeof out->host, p + 1, rb) < 0 ||
            strspn(out->host, HOST6_CHARS) != strlen(out->host))
            return fail(err, errlen,
                        "redis url '%s': bad host: an IPv6 address in [] "
                        "is hex digits, ':' and '.'",
                        s);
        host_end = rb + 1;
        if (host_end < end && *host_end != ':')
            return fail(err, errlen, "redis url '%s': junk after the host", s);
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (!host_end)
            host_end = end;
        if (copy_decoded(out->host, sizeof out->host, p, host_end) < 0)
            return fail(err, errlen, "redis url '%s': bad or too long host", s);
        if (strspn(out->host, HOST_CHARS) != strlen(out->host))
            return fail(err, errlen,
                        "redis url '%s': bad host: a host name is A-Z a-z 0-9 . _ -", s);
    }
    if (!out->host[0])
        return fail(err, errlen, "redis url '%s': the host is missing", s);
    if (host_end < end && *host_end == ':')
        port_start = host_end + 1;
    if (port_start && parse_int(port_start, end, 1, 65535, &out->port) < 0)
        return fail(err, errlen,
                    "redis url '%s': the port must be a number from 1 to 65535", s);

    if (*end == '/') {
        const char *db = end + 1;
        const char *db_end = db + strcspn(db, "?#");
        if (db != db_end && parse_int(db, db_end, 0, 1000000, &out->db) < 0)
            return fail(err, errlen, "redis url '%s': the database must be a number", s);
        end = db_end;
    }
    if (*end)
        return fail(err, errlen, "redis url '%s': unexpected '%.*s' at the end", s,
                    strchr(end, '@') ? 1 : (int)strlen(end), end);
    return 0;
}

void tq_url_redacted(const tq_url *u, char *buf, size_t len)
{
    if (u->is_unix) {
        snprintf(buf, len, "unix://%s?db=%d", u->host, u->db);
        return;
    }
    /* The user, %-escaped as in a URL: it is no secret, and it tells which
     * ACL user a failed login used. */
    char user[3 * TQ_URL_PASS_MAX];
    size_t n = 0;
    for (const char *p = u->user; *p && n + 4 < sizeof user; p++) {
        if (strchr(HOST_CHARS "~", *p))
            user[n++] = *p;
        else
            n += (size_t)snprintf(user + n, sizeof user - n, "%%%02X", (unsigned char)*p);
    }
    user[n] = '\0';
    int v6 = strchr(u->host, ':') != NULL;
    snprintf(buf, len, "redis://%s%s%s%s%s%s:%d/%d", user, u->password[0] ? ":***" : "",
             u->password[0] || user[0] ? "@" : "", v6 ? "[" : "", u->host, v6 ? "]" : "",
             u->port, u->db);
}
