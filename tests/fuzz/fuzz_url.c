/* Fuzzes Redis URLs (common/url): any text through tq_url_parse(). A URL it
 * accepts has hosts hiredis can be given (no space, control byte or URL
 * delimiter), ports in 1..65535 and a database >= 0, a sentinel URL its
 * sentinels and master, a cluster URL its nodes and database 0, and its
 * redacted form depends on no password. An
 * error names no password. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/url.h"

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "fuzz_url: %s failed: ", #cond);                             \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Changes every letter and digit in [p, end) to another of its kind,
 * keeping %XX escapes. Returns 1 if it changed any. */
static int change(char *p, const char *end)
{
    int changed = 0;
    for (char *q = p; q < end; q++) {
        if (*q == '%') {
            q += 2; /* the escape's hex digits stay */
            continue;
        }
        static const char *const kinds[] = {"0123456789", "abcdef",
                                            "ghijklmnopqrstuvwxyz", "ABCDEF",
                                            "GHIJKLMNOPQRSTUVWXYZ"};
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            const char *c = *q ? strchr(kinds[k], *q) : NULL;
            if (c) {
                *q = c[1] ? c[1] : kinds[k][0];
                changed = 1;
                break;
            }
        }
    }
    return changed;
}

/* Changes the password parts of s as written (between the first ':' after
 * "redis://", "rediss://", "redis-sentinel://" or "redis-cluster://" (and
 * "rediss-cluster://") and the last '@' before the path; the
 * value of a sentinel_password parameter after the first '?', up to the
 * next '&' or '#') as change() does, so that a parser that never shows a
 * password gives the same error for both. Returns 0 if s has no such part. */
static int other_password(char *s)
{
    int changed = 0;
    for (char *p = strchr(s, '?'); p && (p = strstr(p, "sentinel_password=")); p++) {
        if (p[-1] != '?' && p[-1] != '&')
            continue;
        char *v = p + strlen("sentinel_password=");
        changed |= change(v, v + strcspn(v, "&#"));
    }
    if (strncmp(s, "redis://", 8) != 0 && strncmp(s, "rediss://", 9) != 0 &&
        strncmp(s, "redis-sentinel://", 17) != 0 &&
        strncmp(s, "redis-cluster://", 16) != 0 &&
        strncmp(s, "rediss-cluster://", 17) != 0)
        return changed;
    char *p = strstr(s, "://") + 3;
    char *end = p + strcspn(p, "/?#"), *at = NULL;
    for (char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (colon)
        changed |= change(colon + 1, at);
    return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char s[1025], s2[1025], err[512], err2[512];
    memcpy(s, data, size);
    s[size] = '\0';
    memset(err, 'x', sizeof err);
    tq_url u, u2;
    int rc = tq_url_parse(s, &u, err, sizeof err);
    memcpy(s2, s, size + 1);
    if (other_password(s2)) {
        int rc2 = tq_url_parse(s2, &u2, err2, sizeof err2);
        CHECK(rc2 == rc, "'%s' gives %d, '%s' gives %d", s, rc, s2, rc2);
        CHECK(rc == 0 || strcmp(err, err2) == 0,
              "the error depends on the password:\n%s\n%s", err, err2);
    }
    if (rc < 0) {
        CHECK(rc == TQ_EINVAL && memchr(err, '\0', sizeof err) && err[0], "rc %d", rc);
        return 0;
    }
    CHECK(rc == 0, "rc %d", rc);
    CHECK(u.host[0], "an empty host: %s", s);
    /* A socket path may hold spaces; a host name may not. */
    for (const char *p = u.host; *p; p++)
        CHECK((unsigned char)*p >= 0x20 + !u.is_unix && *p != 0x7f,
              "host '%s' has byte %d: %s", u.host, *p, s);
    if (!u.is_unix) {
        CHECK(u.port >= 1 && u.port <= 65535, "port %d: %s", u.port, s);
        CHECK(!strpbrk(u.host, "/?#@"), "host '%s': %s", u.host, s);
    } else {
        CHECK(u.host[0] == '/', "socket path '%s': %s", u.host, s);
    }
    CHECK(u.db >= 0, "db %d: %s", u.db, s);
    CHECK(u.is_sentinel  ? u.nnodes >= 1 && u.nnodes <= TQ_URL_NODES_MAX && u.master[0]
          : u.is_cluster ? u.nnodes >= 1 && u.nnodes <= TQ_URL_NODES_MAX &&
                               !u.master[0] && u.db == 0 && !u.is_sentinel
                         : u.nnodes == 0,
          "%d nodes, master '%s', db %d: %s", u.nnodes, u.master, u.db, s);
    for (int i = 0; i < u.nnodes; i++) {
        CHECK(u.nodes[i].host[0] && !strpbrk(u.nodes[i].host, "/?#@,"), "node '%s': %s",
              u.nodes[i].host, s);
        CHECK(u.nodes[i].port >= 1 && u.nodes[i].port <= 65535, "port %d: %s",
              u.nodes[i].port, s);
    }

    char red1[1024], red2[1024];
    tq_url_redacted(&u, red1, sizeof red1);
    memset(u.password, 'Q', strlen(u.password));
    memset(u.sentinel_password, 'Q', strlen(u.sentinel_password));
    tq_url_redacted(&u, red2, sizeof red2);
    CHECK(strcmp(red1, red2) == 0, "the redacted form shows the password: %s", red1);
    return 0;
}
