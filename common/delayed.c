/* Promotion of due delayed messages. */
#include "common/delayed.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>

/* KEYS: delayed, dead, stats. ARGV: now ms, max, queue stem. */
static tq_script promote_script = TQ_SCRIPT(
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,\n"
    "                       tonumber(ARGV[2]))\n"
    "local moved = 0\n"
    "for _, msg in ipairs(due) do\n"
    "  if redis.call('ZREM', KEYS[1], msg) == 1 then\n"
    "    local q = nil\n"
    "    local ok, m = pcall(cjson.decode, msg)\n"
    "    if ok and type(m) == 'table' then\n"
    "      if m.queue == nil then q = 'default'\n"
    "      elseif type(m.queue) == 'string' and #m.queue <= 64\n"
    "        and string.match(m.queue, '^[%w_.:-]+$') then q = m.queue end\n"
    "    end\n"
    "    if q then\n"
    "      redis.call('LPUSH', ARGV[3] .. q, msg)\n"
    "      moved = moved + 1\n"
    "    else\n"
    "      redis.call('LPUSH', KEYS[2], cjson.encode({reason = 'undecodable',\n"
    "        error = 'delayed: no valid queue field', worker = 'promoter',\n"
    "        dead_at = tonumber(ARGV[1]) / 1000, message = msg}))\n"
    "      redis.call('HINCRBY', KEYS[3], 'dead', 1)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if moved > 0 then redis.call('HINCRBY', KEYS[3], 'promoted', moved) end\n"
    "local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "return {moved, nxt[2] or '-1'}\n");

int tq_delayed_promote(tq_conn *c, const char *prefix, int64_t now_ms, int max)
{
    return tq_delayed_promote_next(c, prefix, now_ms, max, NULL);
}

int tq_delayed_promote_next(tq_conn *c, const char *prefix, int64_t now_ms, int max,
                            int64_t *next_due_ms)
{
    char delayed[TQ_KEYS_MAX], dead[TQ_KEYS_MAX], stats[TQ_KEYS_MAX], stem[TQ_KEYS_MAX];
    char now[24], maxs[16];
    if (tq_keys_fmt(prefix, TQ_KEY_DELAYED, NULL, delayed, sizeof delayed) < 0 ||
        tq_keys_fmt(prefix, TQ_KEY_DEAD, NULL, dead, sizeof dead) < 0 ||
        tq_keys_fmt(prefix, TQ_KEY_STATS, NULL, stats, sizeof stats) < 0 ||
        tq_keys_stem(prefix, TQ_KEY_QUEUE, stem, sizeof stem) < 0)
        return TQ_ETOOBIG;
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(maxs, sizeof maxs, "%d", max > 0 ? max : TQ_DELAYED_BATCH);
    const char *argv[] = {delayed, dead, stats, now, maxs, stem};
    redisReply *r = tq_conn_eval(c, &promote_script, 3, 3, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = TQ_EREPLY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        rc = (int)r->element[0]->integer;
        if (next_due_ms) {
            double due = strtod(r->element[1]->str, NULL);
            *next_due_ms = due < 0 ? INT64_MAX : (int64_t)due;
        }
    } else
        tq_warn("promoting delayed messages failed: %s",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return rc;
}
