/* A Redis connection that survives Redis going away.
 *
 * A tq_conn owns one hiredis context and is used by one thread at a time.
 * It connects lazily: every call first makes sure a context exists, and an
 * attempt that fails schedules the next one with capped exponential backoff
 * and jitter (TQ_CONN_BACKOFF_*), so a caller that loops on a dead Redis
 * spins neither the CPU nor the network. After an I/O error the context is
 * freed and the next call reconnects. Error replies (-ERR ...) are replies,
 * not I/O errors: the caller checks reply types.
 *
 * A login that Redis refuses (WRONGPASS, NOAUTH, "invalid password", or
 * NOPERM for a user without the rights a command needs) is an outage of its
 * own kind: the context is dropped as after an I/O error, the call returns
 * NULL, and the next try waits the same capped backoff. It is logged as one
 * error that says "authentication failed" (or "permission denied") once per
 * outage for the whole process, then at most every
 * TQ_CONN_AUTH_LOG_EVERY_MS while it lasts; a password never appears in a
 * log line (the URL is shown through tq_url_redacted()).
 *
 * With a redis-sentinel:// URL each connection first asks the sentinels,
 * in turn from the one that answered last, where the master is (SENTINEL
 * get-master-addr-by-name), connects there and checks with ROLE that it is
 * the master. A reply of READONLY (the master became a replica), LOADING or
 * MASTERDOWN drops the connection as a lost one does, with any URL: the
 * command did not run, and the next call finds the master again.
 *
 * With a redis-cluster:// URL a tq_conn is a small slot router: it holds
 * one context per master, the slot map from CLUSTER SLOTS (asked of the
 * seeds in turn), and sends each command to the master of its first key's
 * slot (common/slot.h); a command without keys goes where the next command
 * with a key goes, or else where the last one went. MOVED and ASK are
 * followed (MOVED also reloads the map), TRYAGAIN waits a moment; a master
 * that cannot be reached, or CLUSTERDOWN, is an outage of the whole
 * connection, with backoff, and the next call reloads the map. Every key
 * of one command must share a slot, as Redis Cluster demands. */
#ifndef TQ_CONN_H
#define TQ_CONN_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "common/url.h"

#define TQ_CONN_BACKOFF_BASE_MS 100 /* first retry after about this */
#define TQ_CONN_BACKOFF_CAP_MS 2000 /* retries never wait longer */
#define TQ_CONN_CONNECT_TIMEOUT_MS 2000
#define TQ_CONN_SENTINEL_TIMEOUT_MS 1000 /* to connect to a sentinel and hear it */
#define TQ_CONN_COMMAND_TIMEOUT_MS 5000  /* also bounds blocking commands */
#define TQ_CONN_AUTH_LOG_EVERY_MS 60000  /* a lasting login failure, repeated */
#define TQ_CONN_ERROR_MAX 256            /* bytes of tq_conn_last_error(), with NUL */

typedef struct tq_conn tq_conn;

/* Returns a new connection to url (copied) that has not connected yet, or
 * NULL when out of memory. name (copied) labels it in logs and in Redis'
 * CLIENT LIST. */
tq_conn *tq_conn_new(const tq_url *url, const char *name);

/* Sets the command timeout (default TQ_CONN_COMMAND_TIMEOUT_MS; <= 0
 * restores it). A blocking command must be shorter than this. */
void tq_conn_set_timeout_ms(tq_conn *c, int64_t ms);
int64_t tq_conn_timeout_ms(const tq_conn *c);

/* Closes and frees c; NULL does nothing. */
void tq_conn_free(tq_conn *c);

/* Makes sure c is connected: returns 0, or TQ_EREDIS when Redis cannot be
 * reached now (or the backoff delay has not passed yet). Blocks at most the
 * connect timeout. */
int tq_conn_ensure(tq_conn *c);

/* Milliseconds until the next connection attempt is allowed (0 when
 * connected or due now). A loop sleeps this long after TQ_EREDIS. */
int64_t tq_conn_backoff_ms(const tq_conn *c);

/* Drops the context (the next call reconnects). For protocol surprises. */
void tq_conn_drop(tq_conn *c, const char *why);

/* Runs one command, printf-style with hiredis' %s %b %d. Returns a new reply
 * (free with freeReplyObject), which may be an error reply, or NULL when
 * Redis is unreachable (the context is then dropped). Blocks. */
redisReply *tq_conn_cmd(tq_conn *c, const char *fmt, ...);

/* The same with an argument vector (lens may be NULL for C strings). */
redisReply *tq_conn_cmdargv(tq_conn *c, int argc, const char **argv, const size_t *lens);

/* Pipelining: queue commands with tq_conn_append(), then read one reply
 * per command with tq_conn_reply(). append returns 0 or TQ_EREDIS; a NULL
 * reply means the connection broke and the remaining replies are lost. */
int tq_conn_append(tq_conn *c, int argc, const char **argv, const size_t *lens);
redisReply *tq_conn_reply(tq_conn *c);

/* Round trips to Redis so far (each flush of one or more commands). */
uint64_t tq_conn_roundtrips(const tq_conn *c);

/* Connections made so far: what a caller learnt about the server (its
 * version, say) holds while this stays the same. */
uint64_t tq_conn_connects(const tq_conn *c);

/* Commands Redis received whose reply never came (a timeout, a connection
 * lost after the write): each may have run. A caller compares the count
 * before and after a write to tell "not done" from "not known". */
uint64_t tq_conn_unanswered(const tq_conn *c);

/* 1 while c's last attempt failed because Redis refused the login or the
 * rights (see above), 0 otherwise. */
int tq_conn_auth_failed(const tq_conn *c);

/* What kind of failure c is in, kept until a call succeeds again: with
 * tq_conn_last_error() (the text), a caller tells "unreachable" from
 * "authentication refused" without parsing text. */
typedef enum {
    TQ_CONN_OK = 0,      /* the last attempt worked */
    TQ_CONN_UNREACHABLE, /* no connection: refused, timed out, lost, DNS */
    TQ_CONN_AUTH,        /* Redis refused the user or password */
    TQ_CONN_NOPERM,      /* logged in, but the user lacks a right a command needs */
} tq_conn_state;

tq_conn_state tq_conn_error(const tq_conn *c);

/* A short text for s: "ok", "unreachable", "authentication failed",
 * "permission denied". */
const char *tq_conn_state_text(tq_conn_state s);

/* Why c's last attempt or command failed, "" if nothing failed: borrowed,
 * valid until the next call on c; never holds a password. */
const char *tq_conn_last_error(const tq_conn *c);

/* 1 when this build speaks TLS (rediss://): its hiredis has hiredis_ssl. */
int tq_conn_tls(void);

/* A sentence for --version and errors: "yes (hiredis 1.2.0 with OpenSSL ...)"
 * or why not, "this build has none: ...". Static storage. */
const char *tq_conn_tls_info(void);

/* One health check of the Redis at url: connects, logs in and sends PING,
 * once, without backoff. Returns 0 when PONG came back; TQ_EREDIS
 * otherwise. On failure why gets a
 * sentence naming the (redacted) URL and the reason, e.g. "redis
 * redis://:***@db:6379/0: authentication failed: WRONGPASS ...". quiet 1
 * logs nothing (--check prints why itself); quiet 0 logs as every
 * connection does. Blocks at most the connect and command timeouts. */
int tq_conn_check(const tq_url *url, const char *name, int quiet, char *why,
                  size_t whylen);

#endif
