/* Owned locks. Each operation is one script, so check and act are atomic. */
#include "common/lock.h"
#include "common/err.h"

#include <stdio.h>

/* Each script reads the lock before it writes it, and only a lock that is
 * a string (or absent) is read: a key of another type is an error reply
 * that names it, before anything is written, so that no script can fail
 * after its first write (Redis does not roll a script back). The TTL is a
 * number the caller checked (> 0). */
#define CHECK_STRING                                                                     \
    "local t = redis.call('TYPE', KEYS[1]).ok\n"                                         \
    "if t ~= 'string' and t ~= 'none' then\n"                                            \
    "  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a ' .. t .. ', not a "   \
    "string')\n"                                                                         \
    "end\n"

static tq_script acquire_script =
    TQ_SCRIPT(CHECK_STRING "local v = redis.call('GET', KEYS[1])\n"
                           "if v == ARGV[1] then\n"
                           "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
                           "if v then return 0 end\n"
                           "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
                           "return 1\n");

static tq_script extend_script =
    TQ_SCRIPT(CHECK_STRING "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                           "  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
                           "return 0\n");

static tq_script release_script =
    TQ_SCRIPT(CHECK_STRING "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                           "  redis.call('DEL', KEYS[1]) return 1 end\n"
                           "return 0\n");

static int run(tq_conn *c, tq_script *s, const char *key, const char *owner,
               int64_t ttl_ms)
{
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    const char *argv[3] = {key, owner, ttl};
    redisReply *r = tq_conn_eval(c, s, 1, ttl_ms > 0 ? 2 : 1, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : TQ_EREPLY;
    freeReplyObject(r);
    return rc;
}

int tq_lock_acquire(tq_conn *c, const char *key, const char *owner, int64_t ttl_ms)
{
    return ttl_ms > 0 ? run(c, &acquire_script, key, owner, ttl_ms) : TQ_EINVAL;
}

int tq_lock_extend(tq_conn *c, const char *key, const char *owner, int64_t ttl_ms)
{
    return ttl_ms > 0 ? run(c, &extend_script, key, owner, ttl_ms) : TQ_EINVAL;
}

int tq_lock_release(tq_conn *c, const char *key, const char *owner)
{
    return run(c, &release_script, key, owner, 0);
}
