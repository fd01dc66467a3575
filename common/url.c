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

/* Writes s into buf for an error message, with its secrets replaced by
 * "***": everything between its scheme ("redis://", or any "x://", or the
 * start) and its last '@' (a user before the first ':' is kept), and the
 * value of a sentinel_password parameter (after the first '?', up to the
 * next '&' or '#'). Cuts to len bytes after redacting, so a cut never
 * uncovers a secret. */
static void redact_input(const char *s, char *buf, size_t len)
{
    size_t n = strlen(s), out = 0;
    if (!len)
        return;
    unsigned char hide[1024] = {0};
    if (n >= sizeof hide) /* longer than any URL a program takes: all of it */
        n = 0;
    const char *at = strrchr(s, '@');
    if (at && n) {
        const char *scheme = strstr(s, "://");
        const char *cred = scheme && scheme < at ? scheme + 3 : s;
        const char *colon = memchr(cred, ':', (size_t)(at - cred));
        const char *from = colon ? colon + 1 : cred;
        memset(hide + (from - s), 1, (size_t)(at - from));
    }
    const char *q = n ? strchr(s, '?') : NULL;
    for (const char *p = q; p && (p = strstr(p, "sentinel_password=")); p++) {
        if (p[-1] != '?' && p[-1] != '&')
            continue;
        const char *v = p + strlen("sentinel_password=");
        memset(hide + (v - s), 1, strcspn(v, "&#"));
    }
    for (size_t i = 0; i < n && out + 1 < len; i++) {
        if (!hide[i]) {
            buf[out++] = s[i];
        } else if (i == 0 || !hide[i - 1]) {
            for (const char *m = "***"; *m && out + 1 < len; m++)
                buf[out++] = *m;
        }
    }
    buf[out] = '\0';
    if (!n)
        snprintf(buf, len, "(a url of %zu bytes)", strlen(s));
}

/* Parses unix://... in in; s is the redacted input, for messages. */
static int parse_unix(const char *in, const char *s, tq_url *out, char *err,
                      size_t errlen)
{
    const char *path = in + strlen("unix://");
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

/* Parses host[:port] in [p, end) into *node; default_port when no port is
 * given. s is the redacted input, for messages. */
static int parse_node(const char *p, const char *end, int default_port, tq_url_node *node,
                      const char *s, char *err, size_t errlen)
{
    const char *host_end;
    node->port = default_port;
    if (p < end && *p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return fail(err, errlen, "redis url '%s': unclosed '[' in the host", s);
        if (copy_decoded(node->host, sizeof node->host, p + 1, rb) < 0 ||
            strspn(node->host, HOST6_CHARS) != strlen(node->host))
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
        if (copy_decoded(node->host, sizeof node->host, p, host_end) < 0)
            return fail(err, errlen, "redis url '%s': bad or too long host", s);
        if (strspn(node->host, HOST_CHARS) != strlen(node->host))
            return fail(err, errlen,
                        "redis url '%s': bad host: a host name is A-Z a-z 0-9 . _ -", s);
    }
    if (!node->host[0])
        return fail(err, errlen, "redis url '%s': the host is missing", s);
    if (host_end < end && parse_int(host_end + 1, end, 1, 65535, &node->port) < 0)
        return fail(err, errlen,
                    "redis url '%s': the port must be a number from 1 to 65535", s);
    return 0;
}

/* Parses a sentinel URL's query, [q, end) after the '?': master,
 * sentinel_user and sentinel_password, each at most once. */
static int parse_query(const char *q, const char *end, tq_url *out, const char *s,
                       char *err, size_t errlen)
{
    static const char *const names[] = {"master", "sentinel_user", "sentinel_password"};
    char *fields[] = {out->master, out->sentinel_user, out->sentinel_password};
    size_t caps[] = {sizeof out->master, sizeof out->sentinel_user,
                     sizeof out->sentinel_password};
    int seen[3] = {0};
    for (;;) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pend = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pend - q));
        int i = 0;
        while (i < 3 && !(eq && (size_t)(eq - q) == strlen(names[i]) &&
                          memcmp(q, names[i], (size_t)(eq - q)) == 0))
            i++;
        if (i == 3)
            return fail(err, errlen,
                        "redis url '%s': a sentinel url's query takes master, "
                        "sentinel_user and sentinel_password",
                        s);
        if (seen[i]++)
            return fail(err, errlen, "redis url '%s': %s is given twice", s, names[i]);
        if (copy_decoded(fields[i], caps[i], eq + 1, pend) < 0)
            return fail(err, errlen, "redis url '%s': bad or too long %s", s, names[i]);
        if (!amp)
            break;
        q = amp + 1;
    }
    if (!out->master[0] || strspn(out->master, HOST_CHARS) != strlen(out->master))
        return fail(err, errlen,
                    "redis url '%s': a sentinel url needs ?master=NAME, the name the "
                    "sentinels know the master by (A-Z a-z 0-9 . _ -)",
                    s);
    return 0;
}

int tq_url_parse(const char *s_in, tq_url *out, char *err, size_t errlen)
{
    char s[600]; /* s_in, for messages, without a password */
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
        return parse_unix(s_in, s, out, err, errlen);
    }
    const char *p;
    if (strncmp(s_in, "redis://", 8) == 0)
        p = s_in + 8;
    else if (strncmp(s_in, "rediss://", 9) == 0)
        p = s_in + 9, out->tls = 1;
    else if (strncmp(s_in, "redis-sentinel://", 17) == 0)
        p = s_in + 17, out->is_sentinel = 1;
    else if (strncmp(s_in, "redis-cluster://", 16) == 0)
        p = s_in + 16, out->is_cluster = 1;
    else if (strncmp(s_in, "rediss-cluster://", 17) == 0)
        p = s_in + 17, out->is_cluster = 1, out->tls = 1;
    else
        return fail(err, errlen,
                    "redis url '%s': must start with redis://, rediss://, "
                    "redis-sentinel://, redis-cluster://, rediss-cluster:// or unix://",
                    s);
    for (const char *c = s_in; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return fail(err, errlen,
                        "redis url: a space or control byte at position %d: a host, port "
                        "or database has none, and a password writes a space as %%20",
                        (int)(c - s_in) + 1);

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

    if (out->is_sentinel || out->is_cluster) {
        for (;;) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *node_end = comma ? comma : end;
            if (out->nnodes == TQ_URL_NODES_MAX)
                return fail(err, errlen, "redis url '%s': more than %d %s", s,
                            TQ_URL_NODES_MAX, out->is_sentinel ? "sentinels" : "nodes");
            if (parse_node(p, node_end,
                           out->is_sentinel ? TQ_URL_SENTINEL_PORT : TQ_URL_DEFAULT_PORT,
                           &out->nodes[out->nnodes++], s, err, errlen) < 0)
                return TQ_EINVAL;
            if (!comma)
                break;
            p = comma + 1;
        }
        memcpy(out->host, out->nodes[0].host, sizeof out->host);
        out->port = out->nodes[0].port;
    } else {
        tq_url_node node;
        if (parse_node(p, end, TQ_URL_DEFAULT_PORT, &node, s, err, errlen) < 0)
            return TQ_EINVAL;
        memcpy(out->host, node.host, sizeof out->host);
        out->port = node.port;
    }

    if (*end == '/') {
        const char *db = end + 1;
        const char *db_end = db + strcspn(db, "?#");
        if (db != db_end && parse_int(db, db_end, 0, 1000000, &out->db) < 0)
            return fail(err, errlen, "redis url '%s': the database must be a number", s);
        end = db_end;
        if (out->is_cluster && out->db != 0)
            return fail(err, errlen, "redis url '%s': Redis Cluster has database 0 only",
                        s);
    }
    if (out->is_sentinel) {
        if (*end != '?')
            return fail(err, errlen,
                        "redis url '%s': a sentinel url needs ?master=NAME, the name the "
                        "sentinels know the master by",
                        s);
        const char *q_end = end + 1 + strcspn(end + 1, "#");
        if (parse_query(end + 1, q_end, out, s, err, errlen) < 0)
            return TQ_EINVAL;
        end = q_end;
    }
    /* The rest is not quoted: it may hold a secret the redaction did not
     * recognise. */
    if (*end)
        return fail(err, errlen, "redis url '%s': unexpected '%c' at position %d", s,
                    *end == '@' ? '@' : *end, (int)(end - s_in) + 1);
    return 0;
}

/* Writes the user name u %-escaped as in a URL into buf. */
static void escape_user(const char *u, char *buf, size_t len)
{
    size_t n = 0;
    for (const char *p = u; *p && n + 4 < len; p++) {
        if (strchr(HOST_CHARS "~", *p))
            buf[n++] = *p;
        else
            n += (size_t)snprintf(buf + n, len - n, "%%%02X", (unsigned char)*p);
    }
    buf[n] = '\0';
}

/* Appends a URL's host as written in one: IPv6 literals in brackets. */
static size_t put_host(char *buf, size_t len, size_t n, const char *host, int port)
{
    if (n >= len)
        return n;
    int v6 = strchr(host, ':') != NULL;
    int k =
        snprintf(buf + n, len - n, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    return k < 0 ? n : n + (size_t)k;
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
    escape_user(u->user, user, sizeof user);
    size_t n = (size_t)snprintf(
        buf, len, "%s%s%s%s",
        u->is_sentinel  ? "redis-sentinel://"
        : u->is_cluster ? (u->tls ? "rediss-cluster://" : "redis-cluster://")
        : u->tls        ? "rediss://"
                        : "redis://",
        user, u->password[0] ? ":***" : "", u->password[0] || user[0] ? "@" : "");
    if (!u->is_sentinel && !u->is_cluster) {
        n = put_host(buf, len, n, u->host, u->port);
    } else {
        for (int i = 0; i < u->nnodes; i++) {
            if (i && n + 1 < len)
                buf[n++] = ',', buf[n] = '\0';
            n = put_host(buf, len, n, u->nodes[i].host, u->nodes[i].port);
        }
    }
    if (n < len)
        n += (size_t)snprintf(buf + n, len - n, "/%d", u->db);
    if (u->is_sentinel && n < len) {
        escape_user(u->sentinel_user, user, sizeof user);
        snprintf(buf + n, len - n, "?master=%s%s%s%s", u->master,
                 user[0] ? "&sentinel_user=" : "", user,
                 u->sentinel_password[0] ? "&sentinel_password=***" : "");
    }
}
