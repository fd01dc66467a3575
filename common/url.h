/* Redis URLs: redis://[[user]:password@]host[:port][/db] and
 * unix:///path/to/socket[?db=N], parsed into an open value.
 *
 * Parsing is pure: no I/O, no allocation. Every string lives in a fixed
 * buffer of the struct, NUL-terminated; an input that does not fit is an
 * error, never a silent cut. */
#ifndef TQ_URL_H
#define TQ_URL_H

#include <stddef.h>

#define TQ_URL_HOST_MAX 256 /* bytes with the NUL; also the unix socket path */
#define TQ_URL_PASS_MAX 256 /* bytes with the NUL */
#define TQ_URL_DEFAULT_PORT 6379

typedef struct {
    int is_unix;                    /* 1: host is a socket path */
    char host[TQ_URL_HOST_MAX];     /* host name, IPv4/IPv6 literal, or path */
    int port;                       /* 1..65535; unused for unix */
    char user[TQ_URL_PASS_MAX];     /* ACL user name, "" for none */
    char password[TQ_URL_PASS_MAX]; /* "" for none */
    int db;                         /* 0..15 by convention, >= 0 accepted */
} tq_url;

/* Parses s into *out. Returns 0, or TQ_EINVAL with a sentence in err (at
 * most errlen bytes, NUL-terminated) that says what is wrong. */
int tq_url_parse(const char *s, tq_url *out, char *err, size_t errlen);

/* Writes the URL without its password (for logs) into buf. */
void tq_url_redacted(const tq_url *u, char *buf, size_t len);

#endif
