/* tickq-web: the HTTP face of tickq, served by civetweb.
 *
 * One table lists every route (path, allowed methods, handler); one function
 * registers them all with civetweb. Each civetweb worker thread owns one
 * tq_conn (a redisContext is not thread-safe): it is created in civetweb's
 * init_thread callback, handed to handlers as the thread pointer and freed in
 * exit_thread. Every response carries Content-Length and
 * "Cache-Control: no-store"; every error is JSON, {"error": "..."}. Redis
 * being down makes the Redis-backed routes answer 503, never crash or hang
 * longer than the connection timeouts, and they recover when Redis is back. */
#ifndef TQ_WEB_H
#define TQ_WEB_H

#include <signal.h>
#include <stddef.h>

#include "common/config.h"

/* Longest civetweb listening_ports value we build, with the NUL:
 * "[<IPv6 literal>]:<port>". */
#define WEB_PORTS_MAX 80
#define WEB_REDIS_TIMEOUT_MS 2000 /* a request waits at most this for Redis */

/* A running server: the civetweb context and what the handlers share. */

typedef struct web_server web_server;

/* Returns a new server for cfg (copied), already listening on cfg->listen
 * with cfg->web_threads worker threads (plus a fixed reserve so that slow
 * clients cannot hold them all), or NULL with a sentence in err when cfg
 * cannot be used (a bad --redis-url or --prefix, an unreadable token file,
 * an address that cannot be listened on: unresolvable host, IPv6 without
 * civetweb support, port already bound); err is "" when out of memory.
 * Does not touch Redis: connections open lazily on the first request of
 * each thread. */
web_server *web_new(const tq_config *cfg, char *err, size_t errlen);

/* Serves until *stop is set; logs once whether Redis is reachable. */
void web_run(web_server *w, volatile sig_atomic_t *stop);

/* Stops accepting, waits for the requests in flight (civetweb joins its
 * threads, which closes their Redis connections) and frees w. NULL does
 * nothing. Blocks. */
void web_free(web_server *w);

/* Maps a HOST:PORT address onto civetweb's listening_ports syntax in out:
 * "a.b.c.d:port" for an IPv4 literal or a host name (resolved to its first
 * IPv4 address: this may block on DNS), "0.0.0.0:port" for "*" or "0.0.0.0",
 * "[v6]:port" for a bracketed IPv6 literal when civetweb was built with
 * IPv6. Returns 0, or TQ_ECONFIG with a sentence in err. */
int web_listen_ports(const char *listen, char *out, size_t outlen, char *err,
                     size_t errlen);

/* Writes the /timer text for a number of seconds, "Minute: M, Second: S"
 * (no newline), into buf. Returns its length as snprintf does. */
int web_timer_text(long long seconds, char *buf, size_t len);

/* Parses a timer value the way Redis INCR reads it: optional '-', decimal
 * digits, nothing else, within 64 bits. Returns 0, or TQ_EINVAL. */
int web_timer_parse(const char *s, size_t len, long long *out);

#endif
