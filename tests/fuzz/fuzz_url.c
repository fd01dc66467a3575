/* Fuzzes Redis URLs (common/url): any text through tq_url_parse(). A URL it
 * accepts has a host hiredis can be given (no space, control byte or URL
 * delimiter), a port in 1..65535 and a database >= 0, and its redacted
 * form does not depend on the password. An error names no password. */
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

/* Changes every letter and digit of the password part of s as written
 * (between the first ':' after "redis://" and the last '@' before the
 * path) to another of its kind, keeping %XX escapes, so that a parser
 * that never shows a password gives the same error for both. Returns 0
 * if s has no such part. */
static int other_password(char *s)
{
    if (strncmp(s, "redis://", 8) != 0)
        return 0;
    char *p = s + 8, *end = p + strcspn(p, "/?#"), *at = NULL;
    for (char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (!colon)
        return 0;
    int changed = 0;
    for (char *q = colon + 1; q < at; q++) {
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

    char red1[1024], red2[1024];
    tq_url_redacted(&u, red1, sizeof red1);
    memset(u.password, 'Q', strlen(u.password));
    tq_url_redacted(&u, red2, sizeof red2);
    CHECK(strcmp(red1, red2) == 0, "the redacted form shows the password: %s", red1);
    return 0;
}
