/* The broker protocol: the Redis 7 Function library of common/lua/NN-name.lua
 * and the calls into it.
 *
 * The library is embedded at build time (common/lua/embed.cmake) and
 * loaded with FUNCTION LOAD REPLACE the first time a call finds it missing
 * (a new or flushed Redis) or of another version (another tickq build
 * loaded its own): every call passes the version it was built with, every
 * function checks it first and refuses to run otherwise, and the call is
 * then made again once after loading. So no start-up step is needed, and
 * a program never runs a function that reads its arguments differently.
 * Two builds with different libraries against one Redis (a rolling
 * upgrade) keep reloading each other's library: correct, but slow, until
 * the old ones stop (docs/PROTOCOL.md). */
#ifndef TQ_BROKER_H
#define TQ_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/conn.h"

#define TQ_BROKER_ARGS_MAX 4096 /* keys + arguments of one call */

/* The library's text (FUNCTION LOAD's argument) and its version, the first
 * 12 hex digits of its SHA1, generated from common/lua. */
extern const char tq_broker_library[];
extern const char tq_broker_version[];

/* Calls the function tickq_<name> with nkeys keys followed by nargs
 * arguments in argv (lens NULL for C strings); the version goes in front
 * of the arguments. Returns a new reply (maybe an error reply) or NULL as
 * tq_conn_cmd() does. Loads the library and calls again when Redis answers
 * that the function is missing or of another version; when Redis refuses
 * the load, the answer is the call's error reply, and the process tries
 * to load again at most once a second. */
redisReply *tq_broker_call(tq_conn *c, const char *name, int nkeys, int nargs,
                           const char **argv, const size_t *lens);

/* Pipelining: queues the same call without reading its reply (read it
 * with tq_conn_reply()). A reply for which tq_broker_needs_load() is true
 * did nothing: make the call again with tq_broker_call(), which loads the
 * library. Returns 0, TQ_EREDIS, or TQ_EINVAL for a bad count. */
int tq_broker_append(tq_conn *c, const char *name, int nkeys, int nargs,
                     const char **argv, const size_t *lens);

/* Loads (or replaces) the library. Returns 0, TQ_EREDIS, or TQ_EREPLY when
 * Redis refuses it (the error is logged). */
int tq_broker_load(tq_conn *c);

/* Durability (--wait-replicas): waits until `replicas` replicas have every
 * write c made so far (WAIT), at most timeout_ms. Returns how many do
 * (which may be fewer: the writes stand, and a failover to a replica that
 * lacks them loses them, see docs/DEPLOYMENT.md), or TQ_EREDIS. Logs a
 * warning, at most once a minute, when fewer answered. replicas <= 0
 * returns 0 at once. */
int tq_broker_wait(tq_conn *c, int replicas, int64_t timeout_ms);

/* 1 when tickq_<name> is registered with the 'no-writes' flag: calls of
 * it are FCALL_RO, so that a user whose ACL allows only reads (tickq-web's
 * without mutations, docs/DEPLOYMENT.md) may make them. */
int tq_broker_read_only(const char *name);

/* 1 if r says the library is missing or of another version. */
int tq_broker_needs_load(const redisReply *r);

/* MessagePack, for a batch of items that travels as one argument (Lua's
 * cmsgpack.unpack reads it into tables): an array or map header of n
 * entries (a map's entries are key, value pairs), a string of len bytes, a
 * C string, an integer. */
void tq_broker_pack_array(tq_buf *b, uint32_t n);
void tq_broker_pack_map(tq_buf *b, uint32_t n);
void tq_broker_pack_str(tq_buf *b, const char *s, size_t len);
void tq_broker_pack_cstr(tq_buf *b, const char *s);
void tq_broker_pack_int(tq_buf *b, int64_t v);

/* Looks for keys of the key layout before protocol v2 (P:schedules,
 * P:workers, P:queue:default, ...: names without a hash tag). Returns 1
 * when some exist, their names in found (comma-separated, cut to len);
 * 0 when none; TQ_EREDIS when Redis cannot be asked. The programs refuse
 * to start on such data (docs/PROTOCOL.md, "From layout v1"). */
int tq_broker_old_layout(tq_conn *c, const char *prefix, char *found, size_t len);

#endif
