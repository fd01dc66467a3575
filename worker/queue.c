/* The worker's Redis scripts and their C wrappers (see queue.h). */
#include "worker/queue.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/lock.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An event into P:events, capped near WORKER_QUEUE_EVENTS_MAX entries. */
#define STR_(x) #x
#define STR(x) STR_(x)
/* A task event: every entry has the same fields (event, ts, id, task,
 * worker, runtime, error, info), which keeps the stream compact. Scripts
 * add events untrimmed and trim the stream once at their end. */
#define LUA_EVENT                                                                        \
    "local function event(stream, name, ts, id, task, me, runtime, err, info)\n"         \
    "  redis.call('XADD', stream, '*', 'event', name, 'ts', ts, 'id', id, 'task', "      \
    "task,\n"                                                                            \
    "             'worker', me, 'runtime', runtime or '', 'error', err or '',\n"         \
    "             'info', info or '')\n"                                                 \
    "end\n"

/* deliver(msg): 1 delivered (locked, task-received), 0 id unreadable (the
 * worker dead-letters it), -1 duplicate (done, or locked by this or another
 * live worker), -2 poison (delivered more than max_deliveries times:
 * dead-lettered here). A lock whose owner's heartbeat is older than
 * liveness is taken over: its message sits in a dead worker's processing
 * list, and when the reaper requeues it, it is done or locked.
 *
 * Deliveries are 1 plus the redeliveries the reaper counted in
 * P:deliveries; K.redelivered says whether that hash has anything at all,
 * so the common case costs no lookup. The id and task are read without
 * cjson when the message starts the way tickq writes it and has no
 * timeout field; anything else is decoded. K holds the keys: workers,
 * stats, deliveries, dead, events, and the flag redelivered. */
#define LUA_DELIVER                                                                      \
    LUA_EVENT                                                                            \
    "local function deliver(msg, me, now, liveness, ttl, margin, lock_stem, "            \
    "done_stem,\n"                                                                       \
    "                       maxdel, K)\n"                                                \
    "  local id, task = string.match(msg, "                                              \
    "'^{\"v\":1,\"id\":\"([^\"\\\\]+)\",\"task\":\"([^\"\\\\]*)\"')\n"                   \
    "  if not id or string.find(msg, '\"timeout\"', 1, true) then\n"                     \
    "    local ok, m = pcall(cjson.decode, msg)\n"                                       \
    "    if not ok or type(m) ~= 'table' or type(m.id) ~= 'string' or #m.id == 0\n"      \
    "       or #m.id > 256 then return 0 end\n"                                          \
    "    id = m.id\n"                                                                    \
    "    task = type(m.task) == 'string' and m.task or ''\n"                             \
    "    local t = tonumber(m.timeout)\n"                                                \
    "    if t and t > 0 then ttl = math.floor(t * 1000) end\n"                           \
    "  elseif #id > 256 then return 0 end\n"                                             \
    "  if redis.call('EXISTS', done_stem .. id) == 1 then\n"                             \
    "    if K.redelivered then redis.call('HDEL', K.deliveries, id) end\n"               \
    "    K.dups = K.dups + 1 return -1 end\n"                                            \
    "  local owner = redis.call('SET', lock_stem .. id, me, 'NX', 'GET', 'PX',\n"        \
    "                           ttl + margin)\n"                                         \
    "  if owner then\n"                                                                  \
    "    local hb = redis.call('ZSCORE', K.workers, owner)\n"                            \
    "    if owner == me or (hb and now - tonumber(hb) <= liveness) then\n"               \
    "      K.dups = K.dups + 1 return -1 end\n"                                          \
    "    redis.call('SET', lock_stem .. id, me, 'PX', ttl + margin)\n"                   \
    "  end\n"                                                                            \
    "  local d = 1\n"                                                                    \
    "  if K.redelivered then\n"                                                          \
    "    d = 1 + (tonumber(redis.call('HGET', K.deliveries, id)) or 0)\n"                \
    "  end\n"                                                                            \
    "  if d > maxdel then\n"                                                             \
    "    redis.call('HDEL', K.deliveries, id)\n"                                         \
    "    redis.call('DEL', lock_stem .. id)\n"                                           \
    "    redis.call('LPUSH', K.dead, cjson.encode({reason = 'poison', error =\n"         \
    "      'delivered ' .. d .. ' times; the limit is ' .. maxdel, worker = me,\n"       \
    "      dead_at = now / 1000, message = msg}))\n"                                     \
    "    redis.call('HINCRBY', K.stats, 'dead', 1)\n"                                    \
    "    event(K.events, 'task-dead', now, id, task, me, nil,\n"                         \
    "          'delivered ' .. d .. ' times', 'poison')\n"                               \
    "    return -2\n"                                                                    \
    "  end\n"                                                                            \
    "  event(K.events, 'task-received', now, id, task, me, nil, nil, d)\n"               \
    "  return 1\n"                                                                       \
    "end\n"                                                                              \
    "local function deliver_keys(workers, stats, deliveries, dead, events)\n"            \
    "  return {workers = workers, stats = stats, deliveries = deliveries, dead = "       \
    "dead,\n"                                                                            \
    "          events = events, dups = 0,\n"                                             \
    "          redelivered = redis.call('HLEN', deliveries) > 0}\n"                      \
    "end\n"                                                                              \
    "local function deliver_done(K)\n"                                                   \
    "  if K.dups > 0 then redis.call('HINCRBY', K.stats, 'duplicates', K.dups) end\n"    \
    "  redis.call('XTRIM', K.events, 'MAXLEN', '~', " STR(                               \
        WORKER_QUEUE_EVENTS_MAX) ")\n"                                                   \
                                 "end\n"

/* KEYS: processing, workers, stats, deliveries, dead, events, paused, then
 * the queues. ARGV: me, now, liveness, max, ttl, margin, lock_stem,
 * done_stem, max_deliveries, then the queue names. Returns {delivered,
 * msg, ...}. At most 2 * max + 16 pops, so a queue full of duplicates
 * cannot stall Redis. */
static tq_script fetch_script = TQ_SCRIPT(
    LUA_DELIVER
    "local me, now, liveness = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local max, ttl, margin = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local maxdel = tonumber(ARGV[9])\n"
    "local K = deliver_keys(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])\n"
    "local out, n, pops = {}, 0, 0\n"
    "for i = 8, #KEYS do\n"
    "  if redis.call('SISMEMBER', KEYS[7], ARGV[2 + i]) == 0 then\n"
    "    while n < max and pops < 2 * max + 16 do\n"
    "      local msg = redis.call('LMOVE', KEYS[i], KEYS[1], 'RIGHT', 'LEFT')\n"
    "      if not msg then break end\n"
    "      pops = pops + 1\n"
    "      local c = deliver(msg, me, now, liveness, ttl, margin, ARGV[7], ARGV[8],\n"
    "                        maxdel, K)\n"
    "      if c < 0 then\n"
    "        redis.call('LPOP', KEYS[1])\n"
    "      else\n"
    "        n = n + 1\n"
    "        out[#out + 1] = c\n"
    "        out[#out + 1] = msg\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if n >= max or pops >= 2 * max + 16 then break end\n"
    "end\n"
    "deliver_done(K)\n"
    "return out\n");

/* After BLMOVE put msg into processing. KEYS: processing, workers, stats,
 * deliveries, dead, events, paused, queue. ARGV: msg, me, now, liveness,
 * ttl, margin, lock_stem, done_stem, max_deliveries, queue name. Returns
 * deliver()'s answer, or -3 when the queue is paused (the message goes
 * back to the consuming end of its queue). */
static tq_script claim_script = TQ_SCRIPT(
    LUA_DELIVER
    "if redis.call('SISMEMBER', KEYS[7], ARGV[10]) == 1 then\n"
    "  redis.call('LREM', KEYS[1], 1, ARGV[1])\n"
    "  redis.call('RPUSH', KEYS[8], ARGV[1])\n"
    "  return -3\n"
    "end\n"
    "local K = deliver_keys(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])\n"
    "local c = deliver(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]),\n"
    "                  tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8],\n"
    "                  tonumber(ARGV[9]), K)\n"
    "if c < 0 then redis.call('LREM', KEYS[1], 1, ARGV[1]) end\n"
    "deliver_done(K)\n"
    "return c\n");

/* KEYS: processing, stats, worker hash, dead, delayed, deliveries, events.
 * ARGV: me, done_ttl, result_ttl, lock_stem, done_stem, result_stem,
 * history_stem, n, then per item 15: op, msg, id, task, status, result,
 * extra, due, effect key, effect by, schedule, started ms, finished ms,
 * error, and "1" if task-started is to be recorded here (a slow task's was
 * recorded when it started).
 *
 * A result is applied only if its lock is still this worker's, or has
 * expired with no done marker: a lock held by another worker means another
 * delivery runs the task (ours was taken over while we looked dead), and
 * that one applies it. While the lock is ours nobody else can have
 * completed the task, so the done marker needs no look-up then. Returns {applied, ...}: 0
 * when the ack removed nothing (the reaper requeued it, or a retry after a lost reply),
 * and then nothing is done. */
static tq_script complete_script = TQ_SCRIPT(
    LUA_EVENT
    "local me, done_ttl, result_ttl = ARGV[1], ARGV[2], ARGV[3]\n"
    "local lock_stem, done_stem, result_stem, history_stem = ARGV[4], ARGV[5], ARGV[6],\n"
    "  ARGV[7]\n"
    "local stats, events = KEYS[2], KEYS[7]\n"
    "local hasdel = redis.call('HLEN', KEYS[6]) > 0\n"
    "local counts = {}\n"
    "local function count(field) counts[field] = (counts[field] or 0) + 1 end\n"
    "local out = {}\n"
    "for t = 0, tonumber(ARGV[8]) - 1 do\n"
    "  local a = 8 + t * 15\n"
    "  local op, msg, id, task = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]\n"
    "  local status, result, extra, due = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7], ARGV[a "
    "+ 8]\n"
    "  local ekey, eby, sched = ARGV[a + 9], ARGV[a + 10], ARGV[a + 11]\n"
    "  local started, finished, err = ARGV[a + 12], ARGV[a + 13], ARGV[a + 14]\n"
    "  local applied = 0\n"
    "  if redis.call('LREM', KEYS[1], -1, msg) == 1 then\n"
    "    applied = 1\n"
    "    local owner = nil\n"
    "    if id ~= '' then\n"
    "      owner = redis.call('GET', lock_stem .. id)\n"
    "      if owner == me then redis.call('DEL', lock_stem .. id) end\n"
    "      if hasdel then redis.call('HDEL', KEYS[6], id) end\n"
    "    end\n"
    "    if started ~= '' and ARGV[a + 15] == '1' then\n"
    "      event(events, 'task-started', started, id, task, me) end\n"
    "    local runtime = started ~= '' and (tonumber(finished) - tonumber(started)) / "
    "1000\n"
    "    if op == 'dead' then\n"
    "      if started ~= '' then\n"
    "        event(events, 'task-failed', finished, id, task, me, runtime, err) end\n"
    "      redis.call('LPUSH', KEYS[4], extra)\n"
    "      count('dead')\n"
    "      if result ~= '' then\n"
    "        redis.call('SET', done_stem .. id, 'dead', 'PX', done_ttl)\n"
    "        redis.call('SET', result_stem .. id, result, 'PX', result_ttl)\n"
    "        if sched ~= '' then\n"
    "          redis.call('LPUSH', history_stem .. sched, result)\n"
    "          redis.call('LTRIM', history_stem .. sched, 0, 99)\n"
    "        end\n"
    "      end\n"
    "      event(events, 'task-dead', finished, id, task, me, nil, err, status)\n"
    "    elseif op == 'retry' then\n"
    "      redis.call('ZADD', KEYS[5], due, extra)\n"
    "      redis.call('SET', result_stem .. id, result, 'PX', result_ttl)\n"
    "      count('retried')\n"
    "      event(events, 'task-retried', finished, id, task, me, runtime, err, due)\n"
    "    elseif owner ~= me and (owner or redis.call('EXISTS', done_stem .. id) == 1) "
    "then\n"
    "      applied = 0\n"
    "      count('duplicates')\n"
    "    else\n"
    "      redis.call('SET', done_stem .. id, status, 'PX', done_ttl)\n"
    "      redis.call('SET', result_stem .. id, result, 'PX', result_ttl)\n"
    "      if ekey ~= '' then redis.call('INCRBY', ekey, eby) end\n"
    "      if sched ~= '' then\n"
    "        redis.call('LPUSH', history_stem .. sched, result)\n"
    "        redis.call('LTRIM', history_stem .. sched, 0, 99)\n"
    "      end\n"
    "      count(status == 'success' and 'processed' or status)\n"
    "      if status == 'expired' then\n"
    "        event(events, 'task-expired', finished, id, task, me, nil, err)\n"
    "      else\n"
    "        event(events, status == 'success' and 'task-succeeded' or 'task-failed',\n"
    "              finished, id, task, me, runtime, err)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  out[#out + 1] = applied\n"
    "end\n"
    "for field, n in pairs(counts) do\n"
    "  redis.call('HINCRBY', stats, field, n)\n"
    "  if field ~= 'duplicates' then redis.call('HINCRBY', KEYS[3], field, n) end\n"
    "end\n"
    "redis.call('XTRIM', events, 'MAXLEN', '~', " STR(
        WORKER_QUEUE_EVENTS_MAX) ")\n"
                                 "return out\n");

/* requeue_one(w, msg): puts one of w's messages back at the consuming end
 * of its queue and releases w's lock on it; a message without a readable
 * queue becomes a dead letter, so nothing is dropped. With a deliveries
 * key (the reaper: w crashed), the redelivery is counted there, for the
 * poison limit. requeue(w, processing): the same for a whole processing
 * list, oldest first. */
#define LUA_REQUEUE                                                                      \
    "local function requeue_one(w, msg, lock_stem, queue_stem, dead, now, deliveries)\n" \
    "  local q = nil\n"                                                                  \
    "  local ok, m = pcall(cjson.decode, msg)\n"                                         \
    "  if ok and type(m) == 'table' then\n"                                              \
    "    if type(m.id) == 'string' then\n"                                               \
    "      if redis.call('GET', lock_stem .. m.id) == w then\n"                          \
    "        redis.call('DEL', lock_stem .. m.id) end\n"                                 \
    "      if deliveries then redis.call('HINCRBY', deliveries, m.id, 1) end\n"          \
    "    end\n"                                                                          \
    "    if m.queue == nil then q = 'default'\n"                                         \
    "    elseif type(m.queue) == 'string' and #m.queue <= 64\n"                          \
    "      and string.match(m.queue, '^[%w_.:-]+$') then q = m.queue end\n"              \
    "  end\n"                                                                            \
    "  if q then redis.call('RPUSH', queue_stem .. q, msg)\n"                            \
    "  else redis.call('LPUSH', dead, cjson.encode({reason = 'undecodable',\n"           \
    "    error = 'requeue: no valid queue field', worker = w, dead_at = now / 1000,\n"   \
    "    message = msg})) end\n"                                                         \
    "end\n"                                                                              \
    "local function requeue(w, processing, lock_stem, queue_stem, dead, stats, now,\n"   \
    "                       deliveries)\n"                                               \
    "  local msgs = redis.call('LRANGE', processing, 0, -1)\n"                           \
    "  for i = 1, #msgs do\n"                                                            \
    "    requeue_one(w, msgs[i], lock_stem, queue_stem, dead, now, deliveries)\n"        \
    "  end\n"                                                                            \
    "  redis.call('DEL', processing)\n"                                                  \
    "  if #msgs > 0 then redis.call('HINCRBY', stats, 'requeued', #msgs) end\n"          \
    "  return #msgs\n"                                                                   \
    "end\n"

/* KEYS: processing, dead, stats. ARGV: me, now, lock_stem, queue_stem,
 * msg. Requeues msg if it is still in processing; returns 1 or 0. */
static tq_script orphan_script = TQ_SCRIPT(
    LUA_REQUEUE
    "if redis.call('LREM', KEYS[1], 1, ARGV[5]) == 0 then return 0 end\n"
    "requeue_one(ARGV[1], ARGV[5], ARGV[3], ARGV[4], KEYS[2], tonumber(ARGV[2]))\n"
    "redis.call('HINCRBY', KEYS[3], 'requeued', 1)\n"
    "return 1\n");

/* KEYS: processing, dead, stats, workers, worker hash. ARGV: me, now,
 * lock_stem, queue_stem, deregister. */
static tq_script requeue_script =
    TQ_SCRIPT(LUA_REQUEUE
              "local n = requeue(ARGV[1], KEYS[1], ARGV[3], ARGV[4], KEYS[2], KEYS[3],\n"
              "                  tonumber(ARGV[2]))\n"
              "if ARGV[5] == '1' then\n"
              "  redis.call('ZREM', KEYS[4], ARGV[1])\n"
              "  redis.call('DEL', KEYS[5])\n"
              "end\n"
              "return n\n");

/* KEYS: workers, dead, stats, deliveries. ARGV: now, liveness,
 * processing_stem, lock_stem, queue_stem, worker_stem. Returns {worker,
 * moved, ...}. */
static tq_script reap_script = TQ_SCRIPT(
    LUA_REQUEUE
    "local now = tonumber(ARGV[1])\n"
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))\n"
    "local out = {}\n"
    "for _, w in ipairs(dead) do\n"
    "  local n = requeue(w, ARGV[3] .. w, ARGV[4], ARGV[5], KEYS[2], KEYS[3], now,\n"
    "                    KEYS[4])\n"
    "  redis.call('ZREM', KEYS[1], w)\n"
    "  redis.call('DEL', ARGV[6] .. w)\n"
    "  out[#out + 1] = w\n"
    "  out[#out + 1] = n\n"
    "end\n"
    "return out\n");

int worker_queue_init(worker_queue *q, const tq_config *cfg, const char *id)
{
    memset(q, 0, sizeof *q);
    snprintf(q->id, sizeof q->id, "%s", id);
    snprintf(q->prefix, sizeof q->prefix, "%s", cfg->prefix);
    const char *p = cfg->prefix;
    int bad = 0;
    bad |= tq_keys_fmt(p, TQ_KEY_PROCESSING, id, q->processing, sizeof q->processing) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_WORKERS, NULL, q->workers, sizeof q->workers) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_STATS, NULL, q->stats, sizeof q->stats) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_WORKER, id, q->worker_hash, sizeof q->worker_hash) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_DEAD, NULL, q->dead, sizeof q->dead) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_REAPER, NULL, q->reaper, sizeof q->reaper) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_DELAYED, NULL, q->delayed, sizeof q->delayed) < 0;
    bad |=
        tq_keys_fmt(p, TQ_KEY_DELIVERIES, NULL, q->deliveries, sizeof q->deliveries) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_PAUSED, NULL, q->paused, sizeof q->paused) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_EVENTS, NULL, q->events, sizeof q->events) < 0;
    for (int i = 0; i < cfg->nqueues; i++) {
        bad |= tq_keys_fmt(p, TQ_KEY_QUEUE, cfg->queues[i], q->queues[i],
                           sizeof q->queues[i]) < 0;
        snprintf(q->queue_names[i], sizeof q->queue_names[i], "%s", cfg->queues[i]);
    }
    q->nqueues = cfg->nqueues;
    bad |= tq_keys_stem(p, TQ_KEY_LOCK, q->lock_stem, sizeof q->lock_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_DONE, q->done_stem, sizeof q->done_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_RESULT, q->result_stem, sizeof q->result_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_HISTORY, q->history_stem, sizeof q->history_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_QUEUE, q->queue_stem, sizeof q->queue_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_PROCESSING, q->processing_stem,
                        sizeof q->processing_stem) < 0;
    bad |= tq_keys_stem(p, TQ_KEY_WORKER, q->worker_stem, sizeof q->worker_stem) < 0;
    q->liveness_ms = cfg->liveness_ms;
    q->timeout_ms = cfg->timeout_ms;
    q->done_ttl_ms = cfg->done_ttl_ms;
    q->result_ttl_ms = cfg->result_ttl_ms;
    q->max_deliveries = cfg->max_deliveries;
    return bad ? TQ_ETOOBIG : 0;
}

void worker_queue_items_clear(worker_item *items, int n)
{
    for (int i = 0; i < n; i++) {
        free(items[i].raw);
        free(items[i].result);
        free(items[i].extra);
        memset(&items[i], 0, sizeof items[i]);
    }
}

/* Takes a copy of a bulk string reply element. */
static int take_raw(worker_item *it, const redisReply *r, int claimed)
{
    memset(it, 0, sizeof *it);
    it->raw = malloc(r->len + 1);
    if (!it->raw)
        return TQ_ENOMEM;
    memcpy(it->raw, r->str, r->len);
    it->raw[r->len] = '\0';
    it->len = r->len;
    it->claimed = claimed;
    return 0;
}

/* Formats the numbers the delivery scripts share. */
typedef struct {
    char now[24], live[24], ttl[24], margin[24], maxdel[16];
} deliver_args;

static void deliver_args_init(deliver_args *d, const worker_queue *q, int64_t now_ms)
{
    snprintf(d->now, sizeof d->now, "%lld", (long long)now_ms);
    snprintf(d->live, sizeof d->live, "%lld", (long long)q->liveness_ms);
    snprintf(d->ttl, sizeof d->ttl, "%lld", (long long)q->timeout_ms);
    snprintf(d->margin, sizeof d->margin, "%d", WORKER_QUEUE_LOCK_MARGIN_MS);
    snprintf(d->maxdel, sizeof d->maxdel, "%d", q->max_deliveries);
}

int worker_queue_fetch(tq_conn *c, const worker_queue *q, int64_t now_ms, int max,
                       worker_item *items)
{
    deliver_args d;
    char maxs[16];
    const char *argv[7 + 2 * TQ_CONFIG_QUEUES_MAX + 9];
    int k = 0;

    deliver_args_init(&d, q, now_ms);
    snprintf(maxs, sizeof maxs, "%d", max);
    const char *keys[] = {q->processing, q->workers, q->stats, q->deliveries,
                          q->dead,       q->events,  q->paused};
    for (size_t i = 0; i < 7; i++)
        argv[k++] = keys[i];
    for (int i = 0; i < q->nqueues; i++)
        argv[k++] = q->queues[i];
    int nkeys = k;
    const char *args[] = {q->id,    d.now,        d.live,       maxs,    d.ttl,
                          d.margin, q->lock_stem, q->done_stem, d.maxdel};
    for (size_t i = 0; i < 9; i++)
        argv[k++] = args[i];
    for (int i = 0; i < q->nqueues; i++)
        argv[k++] = q->queue_names[i];

    redisReply *r = tq_conn_eval(c, &fetch_script, nkeys, k - nkeys, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int n = 0, rc = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 ||
        r->elements / 2 > (size_t)max) {
        tq_error("fetch: unexpected reply from redis: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "wrong shape");
        rc = TQ_EREPLY;
    } else {
        for (size_t i = 0; i < r->elements; i += 2) {
            const redisReply *flag = r->element[i], *msg = r->element[i + 1];
            if (flag->type != REDIS_REPLY_INTEGER || msg->type != REDIS_REPLY_STRING) {
                rc = TQ_EREPLY;
                break;
            }
            if ((rc = take_raw(&items[n], msg, (int)flag->integer)) < 0)
                break;
            n++;
        }
    }
    freeReplyObject(r);
    /* Whatever was taken stays in processing: a failure here only delays
     * those messages until the orphan sweep or a requeue. */
    return n ? n : rc;
}

int worker_queue_wait(tq_conn *c, const worker_queue *q, int qi, int64_t now_ms,
                      double block_s, worker_item *item)
{
    char block[32];
    snprintf(block, sizeof block, "%.3f", block_s);
    redisReply *r =
        tq_conn_cmd(c, "BLMOVE %s %s RIGHT LEFT %s", q->queues[qi], q->processing, block);
    if (!r)
        return TQ_EREDIS;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING) {
        tq_error("wait: unexpected reply from redis: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "not a string");
        freeReplyObject(r);
        return TQ_EREPLY;
    }
    int rc = take_raw(item, r, 0);
    freeReplyObject(r);
    if (rc < 0)
        return rc;

    deliver_args d;
    deliver_args_init(&d, q, now_ms);
    const char *argv[] = {q->processing, q->workers,    q->stats,
                          q->deliveries, q->dead,       q->events,
                          q->paused,     q->queues[qi], item->raw,
                          q->id,         d.now,         d.live,
                          d.ttl,         d.margin,      q->lock_stem,
                          q->done_stem,  d.maxdel,      q->queue_names[qi]};
    size_t lens[18];
    for (int i = 0; i < 18; i++)
        lens[i] = i == 8 ? item->len : strlen(argv[i]);
    /* If this reply is lost the message stays in processing unclaimed; the
     * orphan sweep requeues it: delayed, never lost. */
    r = tq_conn_eval(c, &claim_script, 8, 10, argv, lens);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        rc = r ? TQ_EREPLY : TQ_EREDIS;
        freeReplyObject(r);
        worker_queue_items_clear(item, 1);
        return rc;
    }
    long long claimed = r->integer;
    freeReplyObject(r);
    if (claimed < 0) {
        worker_queue_items_clear(item, 1);
        return 0;
    }
    item->claimed = (int)claimed;
    return 1;
}

int worker_queue_complete(tq_conn *c, const worker_queue *q, worker_item *items, int n,
                          int64_t now_ms)
{
    (void)now_ms;
    enum { PER = 15, NKEYS = 7, HEAD = NKEYS + 8 };
    int todo = 0;
    for (int i = 0; i < n; i++)
        todo += items[i].op != WORKER_OP_NONE;
    if (todo == 0)
        return 0;

    size_t cap = (size_t)(HEAD + PER * todo);
    const char **argv = malloc(sizeof *argv * cap);
    size_t *lens = malloc(sizeof *lens * cap);
    char(*nums)[4][24] = malloc(sizeof *nums * (size_t)todo);
    char done_ttl[24], result_ttl[24], count[16];
    int rc = 0;
    if (!argv || !lens || !nums) {
        rc = TQ_ENOMEM;
        goto out;
    }
    snprintf(done_ttl, sizeof done_ttl, "%lld", (long long)q->done_ttl_ms);
    snprintf(result_ttl, sizeof result_ttl, "%lld", (long long)q->result_ttl_ms);
    snprintf(count, sizeof count, "%d", todo);
    const char *head[HEAD] = {
        q->processing, q->stats,     q->worker_hash, q->dead,         q->delayed,
        q->deliveries, q->events,    q->id,          done_ttl,        result_ttl,
        q->lock_stem,  q->done_stem, q->result_stem, q->history_stem, count};
    int k = 0;
    for (; k < HEAD; k++) {
        argv[k] = head[k];
        lens[k] = strlen(head[k]);
    }
    static const char *const ops[] = {"", "done", "retry", "dead"};
    int t = 0;
    for (int i = 0; i < n; i++) {
        worker_item *it = &items[i];
        if (it->op == WORKER_OP_NONE)
            continue;
        char *num[4] = {nums[t][0], nums[t][1], nums[t][2], nums[t][3]};
        snprintf(num[0], 24, "%lld", (long long)it->due_ms);
        snprintf(num[1], 24, "%lld", (long long)it->effect_by);
        if (it->started_ms) {
            snprintf(num[2], 24, "%lld", (long long)it->started_ms);
            snprintf(num[3], 24, "%lld", (long long)it->finished_ms);
        } else {
            num[2][0] = '\0';
            snprintf(num[3], 24, "%lld",
                     (long long)(it->finished_ms ? it->finished_ms : tq_clock_wall_ms()));
        }
        const char *v[PER] = {ops[it->op],
                              it->raw,
                              it->id,
                              it->task,
                              it->status ? it->status : "",
                              it->result ? it->result : "",
                              it->extra ? it->extra : "",
                              num[0],
                              it->effect_key,
                              num[1],
                              it->schedule,
                              num[2],
                              num[3],
                              it->error,
                              it->started_event_sent ? "" : "1"};
        for (int j = 0; j < PER; j++) {
            argv[k] = v[j];
            lens[k] = j == 1   ? it->len
                      : j == 5 ? (it->result ? it->result_len : 0)
                      : j == 6 ? (it->extra ? it->extra_len : 0)
                               : strlen(v[j]);
            k++;
        }
        t++;
    }
    redisReply *r = tq_conn_eval(c, &complete_script, NKEYS, k - NKEYS, argv, lens);
    if (!r) {
        rc = TQ_EREDIS;
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)todo) {
        tq_error("complete: unexpected reply from redis: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "wrong shape");
        rc = TQ_EREPLY;
    } else {
        t = 0;
        for (int i = 0; i < n; i++)
            if (items[i].op != WORKER_OP_NONE)
                items[i].applied = r->element[t++]->integer == 1;
    }
    freeReplyObject(r);
out:
    free(argv);
    free(lens);
    free(nums);
    return rc;
}

int worker_queue_paused(tq_conn *c, const worker_queue *q, int *paused)
{
    redisReply *r = tq_conn_cmd(c, "SMEMBERS %s", q->paused);
    if (!r)
        return TQ_EREDIS;
    int rc = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        rc = TQ_EREPLY;
    } else {
        for (int i = 0; i < q->nqueues; i++) {
            paused[i] = 0;
            for (size_t j = 0; j < r->elements; j++)
                if (r->element[j]->type == REDIS_REPLY_STRING &&
                    strcmp(r->element[j]->str, q->queue_names[i]) == 0)
                    paused[i] = 1;
        }
    }
    freeReplyObject(r);
    return rc;
}

int worker_queue_event(tq_conn *c, const worker_queue *q, const char *event,
                       int64_t now_ms, const worker_item *it)
{
    char ts[24], maxlen[16];
    snprintf(ts, sizeof ts, "%lld", (long long)now_ms);
    snprintf(maxlen, sizeof maxlen, "%d", WORKER_QUEUE_EVENTS_MAX);
    /* Task events have the same fields as those the scripts write. */
    const char *task_ev[] = {"XADD",    q->events,
                             "MAXLEN",  "~",
                             maxlen,    "*",
                             "event",   event,
                             "ts",      ts,
                             "id",      it ? it->id : "",
                             "task",    it ? it->task : "",
                             "worker",  q->id,
                             "runtime", "",
                             "error",   "",
                             "info",    ""};
    const char *worker_ev[] = {"XADD",  q->events, "MAXLEN", "~", maxlen,   "*",
                               "event", event,     "ts",     ts,  "worker", q->id};
    redisReply *r = it ? tq_conn_cmdargv(c, 22, task_ev, NULL)
                       : tq_conn_cmdargv(c, 12, worker_ev, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = r->type == REDIS_REPLY_ERROR ? TQ_EREPLY : 0;
    freeReplyObject(r);
    return rc;
}

int worker_queue_requeue(tq_conn *c, const worker_queue *q, int64_t now_ms,
                         int deregister)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *argv[] = {
        q->processing, q->dead, q->stats,     q->workers,    q->worker_hash,
        q->id,         now,     q->lock_stem, q->queue_stem, deregister ? "1" : "0"};
    redisReply *r = tq_conn_eval(c, &requeue_script, 5, 5, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : TQ_EREPLY;
    if (rc == TQ_EREPLY)
        tq_error("requeue: unexpected reply from redis: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "not an integer");
    freeReplyObject(r);
    return rc;
}

int worker_queue_heartbeat(tq_conn *c, const worker_queue *q, int64_t now_ms,
                           const char *const *info)
{
    const char *argv[2 + 2 * 16];
    int k = 0;
    char ttl[24];
    /* The hash outlives a few missed heartbeats, not a dead worker. */
    snprintf(ttl, sizeof ttl, "%lld", (long long)(q->liveness_ms * 3));
    redisReply *r =
        tq_conn_cmd(c, "ZADD %s %lld %s", q->workers, (long long)now_ms, q->id);
    if (!r)
        return TQ_EREDIS;
    freeReplyObject(r);
    argv[k++] = "HSET";
    argv[k++] = q->worker_hash;
    for (int i = 0; info[i] && k + 2 <= (int)(sizeof argv / sizeof argv[0]); i += 2) {
        argv[k++] = info[i];
        argv[k++] = info[i + 1];
    }
    if (tq_conn_append(c, k, argv, NULL) < 0)
        return TQ_EREDIS;
    const char *exp[] = {"PEXPIRE", q->worker_hash, ttl};
    if (tq_conn_append(c, 3, exp, NULL) < 0)
        return TQ_EREDIS;
    for (int i = 0; i < 2; i++) {
        r = tq_conn_reply(c);
        if (!r)
            return TQ_EREDIS;
        freeReplyObject(r);
    }
    return 0;
}

int worker_queue_reap(tq_conn *c, const worker_queue *q, int64_t now_ms)
{
    int got = tq_lock_acquire(c, q->reaper, q->id, 5000);
    if (got <= 0)
        return got;
    char now[24], live[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(live, sizeof live, "%lld", (long long)q->liveness_ms);
    const char *argv[] = {q->workers,    q->dead,       q->stats,           q->deliveries,
                          now,           live,          q->processing_stem, q->lock_stem,
                          q->queue_stem, q->worker_stem};
    redisReply *r = tq_conn_eval(c, &reap_script, 4, 6, argv, NULL);
    int moved = 0;
    if (!r) {
        return TQ_EREDIS;
    } else if (r->type != REDIS_REPLY_ARRAY) {
        tq_error("reap: unexpected reply from redis: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        moved = TQ_EREPLY;
    } else {
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            tq_warn("reaper: worker %s is dead (no heartbeat for %lld ms); requeued %lld "
                    "message(s) and released its locks",
                    r->element[i]->str ? r->element[i]->str : "?",
                    (long long)q->liveness_ms, r->element[i + 1]->integer);
            moved += (int)r->element[i + 1]->integer;
        }
    }
    freeReplyObject(r);
    tq_lock_release(c, q->reaper, q->id);
    return moved;
}

int worker_queue_list_processing(tq_conn *c, const worker_queue *q, redisReply **out)
{
    *out = NULL;
    redisReply *r = tq_conn_cmd(c, "LRANGE %s 0 -1", q->processing);
    if (!r)
        return TQ_EREDIS;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return TQ_EREPLY;
    }
    *out = r;
    return 0;
}

int worker_queue_requeue_orphan(tq_conn *c, const worker_queue *q, int64_t now_ms,
                                const char *raw, size_t len)
{
    char now[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *argv[] = {q->processing, q->dead,      q->stats,      q->id,
                          now,           q->lock_stem, q->queue_stem, raw};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = i == 7 ? len : strlen(argv[i]);
    redisReply *r = tq_conn_eval(c, &orphan_script, 3, 5, argv, lens);
    if (!r)
        return TQ_EREDIS;
    int rc = r->type == REDIS_REPLY_INTEGER ? (int)r->integer : TQ_EREPLY;
    freeReplyObject(r);
    return rc;
}
