/* Owned locks. Each operation is one function of the broker library
 * (common/lua/60-lock.lua), so check and act are atomic. */
#include "common/lock.h"
#include "common/broker.h"
#include "common/err.h"

#include <stdio.h>

static int run(tq_conn *c, const char *fn, const char *key, const char *owner,
               int64_t ttl_ms)
{
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    const char *argv[3] = {key, owner, ttl};
    redisReply *r = tq_broker_call(c, fn, 1, ttl_ms > 0 ? 2 : 1, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : TQ_EREPLY;
    freeReplyObject(r);
    return rc;
}

int tq_lock_acquire(tq_conn *c, const char *key, const char *owner, int64_t ttl_ms)
{
    return ttl_ms > 0 ? run(c, "lock_acquire", key, owner, ttl_ms) : TQ_EINVAL;
}

int tq_lock_extend(tq_conn *c, const char *key, const char *owner, int64_t ttl_ms)
{
    return ttl_ms > 0 ? run(c, "lock_extend", key, owner, ttl_ms) : TQ_EINVAL;
}

int tq_lock_release(tq_conn *c, const char *key, const char *owner)
{
    return run(c, "lock_release", key, owner, 0);
}
