/* Promotion of due delayed messages. */
#include "common/delayed.h"
#include "common/err.h"
#include "common/keys.h"
#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* KEYS: delayed, dead, stats. ARGV: now ms, max, queue stem (a message's
 * queue key is the stem and its queue name, so it cannot be declared in
 * KEYS ahead of reading the message).
 *
 * Redis does not roll back a script that fails halfway, so nothing here can
 * fail after the first write: P:delayed of the wrong type is an error reply
 * that names it, before anything is written; the types of dead and stats
 * are checked first, and the type of each message's destination (its
 * queue, or dead) before the message leaves P:delayed. A message whose
 * destination is of the wrong type stays in P:delayed, and the ones behind
 * it go on (up to max such are stepped over per call). Returns {moved, the
 * next due ms as a string ("-1": none; now + 1000 while messages are stuck,
 * now while more are due than max), stuck, a sentence on the first stuck
 * destination ("" when none)}. */
static tq_script promote_script = TQ_SCRIPT(
    "local function kind(k) return redis.call('TYPE', k).ok end\n"
    "local t = kind(KEYS[1])\n"
    "if t == 'none' then return {0, '-1', 0, ''} end\n"
    "if t ~= 'zset' then\n"
    "  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a ' .. t .. ', not a "
    "zset')\n"
    "end\n"
    "t = kind(KEYS[2])\n"
    "local dead_ok = t == 'list' or t == 'none'\n"
    "t = kind(KEYS[3])\n"
    "local count = t == 'hash' or t == 'none'\n"
    "local now, max = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local moved, dead, stuck, why, types = 0, 0, 0, '', {}\n"
    "while moved + dead < max and stuck < max do\n"
    "  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', "
    "stuck,\n"
    "                         max - moved - dead)\n"
    "  if #due == 0 then break end\n"
    "  for _, msg in ipairs(due) do\n"
    "    local q = nil\n"
    "    local ok, m = pcall(cjson.decode, msg)\n"
    "    if ok and type(m) == 'table' then\n"
    "      if m.queue == nil then q = 'default'\n"
    "      elseif type(m.queue) == 'string' and #m.queue <= 64\n"
    "        and string.match(m.queue, '^[%w_.:-]+$') then q = m.queue end\n"
    "    end\n"
    "    local dest = q and ARGV[3] .. q or KEYS[2]\n"
    "    if not types[dest] then types[dest] = kind(dest) end\n"
    "    if types[dest] ~= 'list' and types[dest] ~= 'none' then\n"
    "      stuck = stuck + 1\n"
    "      if why == '' then why = dest .. ' is a ' .. types[dest] .. ', not a list' "
    "end\n"
    "    else\n"
    "      redis.call('ZREM', KEYS[1], msg)\n"
    "      types[dest] = 'list'\n"
    "      if q then\n"
    "        redis.call('LPUSH', dest, msg)\n"
    "        moved = moved + 1\n"
    "      else\n"
    "        redis.call('LPUSH', dest, cjson.encode({reason = 'undecodable',\n"
    "          error = 'delayed: no valid queue field', worker = 'promoter',\n"
    "          dead_at = now / 1000, message = msg}))\n"
    "        dead = dead + 1\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if count and moved > 0 then redis.call('HINCRBY', KEYS[3], 'promoted', moved) end\n"
    "if count and dead > 0 then redis.call('HINCRBY', KEYS[3], 'dead', dead) end\n"
    "local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', "
    "0, 1,\n"
    "                       'WITHSCORES')[2]\n"
    "if moved + dead >= max then nxt = ARGV[1]\n"
    "elseif stuck > 0 and (not nxt or tonumber(nxt) > now + 1000) then\n"
    "  nxt = tostring(now + 1000)\n"
    "end\n"
    "return {moved, nxt or '-1', stuck, why}\n");

/* Problems are logged when they start and when they end, once per process
 * (workers promote from several threads), not once per call. */
static atomic_int failing, stuck_warned;

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
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
        r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[2]->type == REDIS_REPLY_INTEGER &&
        r->element[3]->type == REDIS_REPLY_STRING) {
        rc = (int)r->element[0]->integer;
        if (next_due_ms) {
            double due = strtod(r->element[1]->str, NULL);
            *next_due_ms = due < 0 ? INT64_MAX : (int64_t)due;
        }
        if (atomic_exchange(&failing, 0))
            tq_info("promoting delayed messages works again");
        long long stuck = r->element[2]->integer;
        if (stuck > 0 && !atomic_exchange(&stuck_warned, 1))
            tq_error("due messages stay in %s: %s; they are promoted once it is a list "
                     "again or deleted",
                     delayed, r->element[3]->str);
        else if (stuck == 0 && atomic_exchange(&stuck_warned, 0))
            tq_info("no due message is stuck in %s any more", delayed);
    } else if (!atomic_exchange(&failing, 1)) {
        tq_error("promoting delayed messages failed: %s; trying again, quietly",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return rc;
}
