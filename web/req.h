/* web_req: one HTTP request as tickq-web's handlers see it, once the
 * dispatcher (web/web.c) has checked its head, matched a route, checked the
 * bearer token of a mutation and read its body.
 *
 * A route's path may have parameters: a '*' segment matches one non-empty
 * segment of the request path, which the handler reads with
 * web_req_param(), decoded (so a task id with a '/' is reachable as
 * %2F). The query string is read with web_req_query(). Every Redis command
 * goes through web_req_redis() (a broker library call through
 * web_req_fcall()), on the calling thread's own connection. */
#ifndef TQ_WEB_REQ_H
#define TQ_WEB_REQ_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/conn.h"
#include "common/keys.h"

#define WEB_REQ_PARAMS_MAX 2     /* '*' segments in one route */
#define WEB_REQ_PIPELINE_MAX 256 /* commands in one web_req_pipeline() */
#define WEB_REQ_PARAM_MAX 260    /* a decoded parameter, with the NUL (a task id) */
#define WEB_REQ_AUDIT_MAX 512    /* what a mutation did, for the audit stream */
#define WEB_REQ_BODY_MAX                                                                 \
    (1024 * 1024 + 4096) /* a request body: a 1 MiB message                              \
                            and its JSON framing */

struct mg_connection;

/* What every handler shares: the configuration and the keys it reads. */
typedef struct {
    const tq_config *cfg;     /* the server's copy */
    const char *prefix;       /* cfg->prefix */
    int64_t liveness_ms;      /* a worker whose heartbeat is older is dead */
    _Atomic int *sse_clients; /* event streams open now (web/sse.c counts) */
} web_env;

typedef struct {
    struct mg_connection *conn; /* borrowed: the connection to answer on */
    const web_env *env;         /* borrowed */
    tq_conn *redis;             /* the thread's connection; NULL when out of memory */
    const char *method;         /* "GET", ... */
    const char *path;           /* decoded, as matched */
    const char *query;          /* raw query string, NULL when none */
    const char *remote;         /* the client's address */
    char params[WEB_REQ_PARAMS_MAX][WEB_REQ_PARAM_MAX]; /* '*' segments, decoded */
    int nparams;
    const char *body; /* the request body (NUL-terminated), NULL when none */
    size_t body_len;
    volatile const int *stopping; /* non-zero once the server is stopping */
    int mutation;                 /* a route that changes Redis */
    int unanswered; /* a command got no answer (web_reply_redis_error() saw it) */
    int close;      /* the connection closes after the answer */
    /* A mutation handler that changed something writes one line here
     * ("paused queue reports"); the dispatcher appends it to the audit
     * stream with the time, method, path and address. */
    char audit[WEB_REQ_AUDIT_MAX];
} web_req;

/* The request's parameter i (0-based), decoded: borrowed. "" when there is
 * none. */
const char *web_req_param(const web_req *rq, int i);

/* Finds name in the query string and writes its decoded value into out
 * (outlen bytes, NUL-terminated). Returns 1 when found, 0 when absent, -1
 * when the value is too long or badly escaped (out then holds ""). */
int web_req_query(const web_req *rq, const char *name, char *out, size_t outlen);

/* The same for an integer in [lo, hi]; def when absent. Returns 0, or -1
 * when the value is not such an integer (the caller answers 400). */
int web_req_query_int(const web_req *rq, const char *name, long long lo, long long hi,
                      long long def, long long *out);

/* Writes the key of family k of queue (NULL for a global key) with arg, as
 * tq_keys_fmt() does, into buf (TQ_KEYS_MAX bytes). Returns 0 or
 * TQ_ETOOBIG (also for a family of the other scope). */
int web_req_key(const web_req *rq, tq_key k, const char *queue, const char *arg,
                char *buf);

#define WEB_REQ_QUEUES_MAX 256 /* queues a request looks at */

/* The queues in use, into names (WEB_REQ_QUEUES_MAX of them): "default",
 * then the members of P:{@}:queues in name order (a member that is no
 * queue name is passed over; a set of the wrong type reads as empty).
 * Returns how many, or -1 when Redis cannot be reached. */
int web_req_queues(web_req *rq, char (*names)[TQ_CONFIG_NAME_MAX]);

/* Runs one command on the thread's connection: a new reply (maybe an error
 * reply), or NULL when Redis cannot be reached (or rq->redis is NULL). A
 * fast failure on a connection that was up (Redis restarted) is retried
 * once. Blocks at most about WEB_REDIS_TIMEOUT_MS. lens may be NULL. */
redisReply *web_req_redis(web_req *rq, int argc, const char **argv, const size_t *lens);

/* Runs n commands (at most WEB_REQ_PIPELINE_MAX) in one round trip:
 * cmds[i] has argcs[i] arguments (lens NULL, or lens[i] for each). Fills
 * out[0..n) with new replies (maybe error replies). Returns 0, or -1 when
 * Redis could not be reached (out then holds nothing to free). Retried
 * once like web_req_redis().
 *
 * A command {"FCALL", name, nkeys, keys..., arguments...} calls the broker
 * library's function tickq_<name> (common/broker.h, which puts the
 * library's version in front of the arguments). When its reply says that
 * Redis lacks the library or holds another version, the call did nothing:
 * it is made again, after the round trip, by tq_broker_call(), which loads
 * the library, and out[i] gets that reply. */
int web_req_pipeline(web_req *rq, int n, const int *argcs, const char *const *const *cmds,
                     const size_t *const *lens, redisReply **out);

/* Calls the broker library's function tickq_<name> (common/broker.h) with
 * nkeys keys followed by nargs arguments in argv (lens NULL for C
 * strings); loads the library when Redis lacks it or holds another
 * version. Returns and retries like web_req_redis(). */
redisReply *web_req_fcall(web_req *rq, const char *name, int nkeys, int nargs,
                          const char **argv, const size_t *lens);

#endif
