/* Redis URLs, parsed into an open value:
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   rediss://[[user]:password@]host[:port][/db]     (TLS)
 *   unix:///path/to/socket[?db=N]
 *   redis-sentinel://[[user]:password@]host[:port][,host[:port]...][/db]
 *       ?master=NAME[&sentinel_user=USER][&sentinel_password=PASSWORD]
 *   redis-cluster://[[user]:password@]host[:port][,host[:port]...][/0]
 *   rediss-cluster://...                            (Redis Cluster over TLS)
 *
 * A sentinel URL names the sentinels (port 26379 by default) and the name of
 * the master they watch; its user and password are the master's, and
 * sentinel_user and sentinel_password log in to the sentinels when they have
 * their own (docs/DEPLOYMENT.md). A cluster URL names seed nodes (masters or
 * replicas): the slot map comes from them (common/conn.h).
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
#define TQ_URL_SENTINEL_PORT 26379
#define TQ_URL_NODES_MAX 16 /* sentinels or cluster seed nodes in one URL */
#define TQ_URL_NAME_MAX 128 /* bytes of a master name, with the NUL */
#define TQ_URL_SHOWN_MAX                                                                 \
    640                     /* enough for tq_url_redacted() of any URL a program takes   \
                             */
#define TQ_URL_PATH_MAX 512 /* bytes of a TLS file's path, with the NUL */

typedef struct {
    char host[TQ_URL_HOST_MAX]; /* host name, IPv4/IPv6 literal */
    int port;                   /* 1..65535 */
} tq_url_node;

typedef struct {
    int is_unix;                    /* 1: host is a socket path */
    int is_sentinel;                /* 1: nodes are sentinels, master their master */
    int is_cluster;                 /* 1: nodes are seeds of a Redis Cluster */
    int tls;                        /* rediss:// */
    char host[TQ_URL_HOST_MAX];     /* host name, IPv4/IPv6 literal, or path; a
                                       sentinel or cluster URL's first node */
    int port;                       /* 1..65535; unused for unix */
    char user[TQ_URL_PASS_MAX];     /* ACL user name, "" for none */
    char password[TQ_URL_PASS_MAX]; /* "" for none */
    int db;                         /* 0..15 by convention, >= 0 accepted */
    int nnodes;                     /* sentinels or seeds, 1..TQ_URL_NODES_MAX; 0
                                       otherwise */
    tq_url_node nodes[TQ_URL_NODES_MAX];
    char master[TQ_URL_NAME_MAX];            /* the sentinels' name for the master */
    char sentinel_user[TQ_URL_PASS_MAX];     /* "" for none */
    char sentinel_password[TQ_URL_PASS_MAX]; /* "" for none */
    /* TLS files, not part of the URL: the caller sets them (tq_config_url()
     * from --redis-tls-*). "" for none: the system's CAs, no client
     * certificate. */
    char tls_ca[TQ_URL_PATH_MAX];
    char tls_cert[TQ_URL_PATH_MAX];
    char tls_key[TQ_URL_PATH_MAX];
} tq_url;

/* Parses s into *out. Returns 0, or TQ_EINVAL with a sentence in err (at
 * most errlen bytes, NUL-terminated) that says what is wrong. */
int tq_url_parse(const char *s, tq_url *out, char *err, size_t errlen);

/* Writes the URL without its password (for logs) into buf. */
void tq_url_redacted(const tq_url *u, char *buf, size_t len);

#endif
