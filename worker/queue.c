/* The worker's Redis scripts and their C wrappers (see queue.h).
 *
 * Redis does not roll back a script that fails halfway, so every script
 * here is written so that no command can fail after its first write: it
 * first checks the type of every key it will write (check(), a missing key
 * is fine), then writes only with commands that cannot fail on keys of
 * those types. Where a single key may still be of the wrong type (a lock
 * or a history key someone overwrote), that command runs under
 * redis.pcall() and its failure is handled: a failed command changes
 * nothing. A script that finds a key of the wrong type before writing
 * answers a WRONGTYPE error naming the key and leaves everything as it
 * was; the worker logs it and tries again later. Each script's comment
 * says why nothing can fail after its first write. */
#include "worker/queue.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/lock.h"
#include "common/log.h"
#include "common/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

/* clang-format off */

/* badtype(key, want): nil when key is missing or a `want`, else a text
 * that names it. check{key, type, ...}: the first such text as a WRONGTYPE
 * error reply, or nil. hincr(hash, field, n): HINCRBY that cannot fail on
 * a hash: a field that holds no integer (someone's HSET) starts again from
 * n; hincrf() the same with HINCRBYFLOAT. A task event: every entry has
 * the same fields in the same order (event, ts, id, task, queue, worker,
 * runtime, error, info), which keeps the stream compact (a stream stores
 * the field names once per node while they repeat); scripts add events
 * untrimmed and trim the stream once at their end. */
#define LUA_COMMON                                                                       \
    "local function badtype(key, want)\n"                                                \
    "  local t = redis.call('TYPE', key).ok\n"                                           \
    "  if t ~= 'none' and t ~= want then\n"                                              \
    "    return 'key ' .. key .. ' is a ' .. t .. ', not a ' .. want end\n"              \
    "end\n"                                                                              \
    "local function check(spec)\n"                                                       \
    "  for i = 1, #spec, 2 do\n"                                                         \
    "    local e = badtype(spec[i], spec[i + 1])\n"                                      \
    "    if e then return redis.error_reply('WRONGTYPE ' .. e) end\n"                    \
    "  end\n"                                                                            \
    "end\n"                                                                              \
    "local function hincr(h, f, n)\n"                                                    \
    "  if type(redis.pcall('HINCRBY', h, f, n)) == 'table' then\n"                       \
    "    redis.call('HSET', h, f, n) end\n"                                              \
    "end\n"                                                                              \
    "local function hincrf(h, f, x)\n"                                                   \
    "  if type(redis.pcall('HINCRBYFLOAT', h, f, x)) == 'table' then\n"                  \
    "    redis.call('HSET', h, f, x) end\n"                                              \
    "end\n"                                                                              \
    "local function event(stream, name, ts, id, task, queue, me, runtime, err, info)\n"  \
    "  redis.call('XADD', stream, '*', 'event', name, 'ts', ts, 'id', id, 'task', task,\n" \
    "             'queue', queue, 'worker', me, 'runtime', runtime or '',\n"             \
    "             'error', err or '', 'info', info or '')\n"                             \
    "end\n"

/* deliver(msg): returns code, id. Codes: 1 delivered (locked,
 * task-received), 0 id unreadable (the worker dead-letters it), -1
 * duplicate (done, or locked by this or another live worker), -2
 * dead-lettered here: poison (delivered more than max_deliveries times),
 * or a lock key of the wrong type (the message cannot be locked). A lock
 * whose owner's heartbeat is older than liveness is taken over: its
 * message sits in a dead worker's processing list, and when the reaper
 * requeues it, it is done or locked.
 *
 * Deliveries are 1 plus the redeliveries the reaper counted in
 * P:deliveries; K.redelivered says whether that hash has anything at all,
 * so the common case costs no lookup. The id and task are read without
 * cjson when the message starts the way tickq writes it and has no
 * timeout field; anything else is decoded. A timeout outside the range the
 * worker's decoder accepts (0, TQ_MSG_TIMEOUT_MAX] leaves the lock at the
 * worker's default: the worker then dead-letters the message and releases
 * the lock. K holds the keys: workers, stats, deliveries, dead, events
 * (types checked by the caller), the flag redelivered, and queue, the name
 * of the queue the message came from (for the events).
 *
 * The first write is the SET of the lock, under pcall: a lock key of the
 * wrong type fails it with nothing written. Everything after it writes
 * keys whose types were checked. */
#define LUA_DELIVER                                                                      \
    "local function dead_letter(K, reason, err, me, now, msg)\n"                         \
    "  redis.call('LPUSH', K.dead, cjson.encode({reason = reason, error = err,\n"        \
    "    worker = me, dead_at = now / 1000, message = msg}))\n"                          \
    "  hincr(K.stats, 'dead', 1)\n"                                                      \
    "end\n"                                                                              \
    "local function deliver(msg, me, now, liveness, ttl, margin, lock_stem, done_stem,\n" \
    "                       maxdel, K)\n"                                                \
    "  local id, task = string.match(msg,\n"                                             \
    "    '^{\"v\":1,\"id\":\"([^\"\\\\]+)\",\"task\":\"([^\"\\\\]*)\"')\n"               \
    "  if not id or string.find(msg, '\"timeout\"', 1, true) then\n"                     \
    "    local ok, m = pcall(cjson.decode, msg)\n"                                       \
    "    if not ok or type(m) ~= 'table' or type(m.id) ~= 'string' or #m.id == 0\n"      \
    "       or #m.id > 256 then return 0 end\n"                                          \
    "    id = m.id\n"                                                                    \
    "    task = type(m.task) == 'string' and m.task or ''\n"                             \
    "    local t = tonumber(m.timeout)\n"                                                \
    "    if t and t > 0 and t <= " STR(TQ_MSG_TIMEOUT_MAX) " then\n"                     \
    "      ttl = math.floor(t * 1000) end\n"                                             \
    "  elseif #id > 256 then return 0 end\n"                                             \
    "  if redis.call('EXISTS', done_stem .. id) == 1 then\n"                             \
    "    if K.redelivered then redis.call('HDEL', K.deliveries, id) end\n"               \
    "    K.dups = K.dups + 1 return -1, id end\n"                                        \
    "  local owner = redis.pcall('SET', lock_stem .. id, me, 'NX', 'GET', 'PX',\n"       \
    "                            ttl + margin)\n"                                        \
    "  if type(owner) == 'table' and owner.err then\n"                                   \
    "    dead_letter(K, 'lock-key', 'the lock key ' .. lock_stem .. id ..\n"             \
    "      ' holds a value of the wrong type: the message cannot be locked', me, now,\n" \
    "      msg)\n"                                                                       \
    "    event(K.events, 'task-dead', now, id, task, K.queue, me, nil, 'lock key',\n"    \
    "          'lock-key')\n"                                                           \
    "    return -2, id\n"                                                                \
    "  end\n"                                                                            \
    "  if owner then\n"                                                                  \
    "    local hb = redis.call('ZSCORE', K.workers, owner)\n"                            \
    "    if owner == me or (hb and now - tonumber(hb) <= liveness) then\n"               \
    "      K.dups = K.dups + 1 return -1, id end\n"                                      \
    "    redis.call('SET', lock_stem .. id, me, 'PX', ttl + margin)\n"                   \
    "  end\n"                                                                            \
    "  local d = 1\n"                                                                    \
    "  if K.redelivered then\n"                                                          \
    "    d = 1 + (tonumber(redis.call('HGET', K.deliveries, id)) or 0)\n"                \
    "  end\n"                                                                            \
    "  if d > maxdel then\n"                                                             \
    "    redis.call('HDEL', K.deliveries, id)\n"                                         \
    "    redis.call('DEL', lock_stem .. id)\n"                                           \
    "    dead_letter(K, 'poison', 'delivered ' .. d .. ' times; the limit is ' ..\n"     \
    "      maxdel, me, now, msg)\n"                                                      \
    "    event(K.events, 'task-dead', now, id, task, K.queue, me, nil,\n"                \
    "          'delivered ' .. d .. ' times', 'poison')\n"                               \
    "    return -2, id\n"                                                                \
    "  end\n"                                                                            \
    "  event(K.events, 'task-received', now, id, task, K.queue, me, nil, nil, d)\n"      \
    "  return 1, id\n"                                                                   \
    "end\n"                                                                              \
    "local function deliver_keys(workers, stats, deliveries, dead, events)\n"            \
    "  return {workers = workers, stats = stats, deliveries = deliveries, dead = dead,\n" \
    "          events = events, dups = 0,\n"                                             \
    "          redelivered = redis.call('HLEN', deliveries) > 0}\n"                      \
    "end\n"                                                                              \
    "local function deliver_done(K)\n"                                                   \
    "  if K.dups > 0 then hincr(K.stats, 'duplicates', K.dups) end\n"                    \
    "  redis.call('XTRIM', K.events, 'MAXLEN', '~', " STR(WORKER_QUEUE_EVENTS_MAX) ")\n" \
    "end\n"

/* The keys of deliver(), checked before the first write. */
#define LUA_CHECK_DELIVER                                                                \
    "local e = check{KEYS[1], 'list', KEYS[2], 'zset', KEYS[3], 'hash', KEYS[4],\n"      \
    "                'hash', KEYS[5], 'list', KEYS[6], 'stream', KEYS[7], 'set'}\n"      \
    "if e then return e end\n"

/* KEYS: processing, workers, stats, deliveries, dead, events, paused, then
 * the queues. ARGV: me, now, liveness, max, ttl, margin, lock_stem,
 * done_stem, max_deliveries, then the queue names. Returns {skipped,
 * delivered, msg, id, queue index, ...}: skipped lists the queues of the
 * wrong type (passed over, so that one broken queue key does not stop the
 * others); the queue index (from 0, in the worker's order) says where the
 * message came from.
 * At most 2 * max + 16 pops, so a queue full of duplicates cannot stall
 * Redis. The types of all keys but the locks are checked first (the
 * queues' before they are popped); see deliver() for the locks. */
static tq_script fetch_script = TQ_SCRIPT(
    LUA_COMMON LUA_DELIVER LUA_CHECK_DELIVER
    "local me, now, liveness = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local max, ttl, margin = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local maxdel = tonumber(ARGV[9])\n"
    "local K = deliver_keys(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])\n"
    "local skipped = {}\n"
    "local out, n, pops = {skipped}, 0, 0\n"
    "for i = 8, #KEYS do\n"
    "  local bad = badtype(KEYS[i], 'list')\n"
    "  if bad then\n"
    "    skipped[#skipped + 1] = bad\n"
    "  elseif redis.call('SISMEMBER', KEYS[7], ARGV[2 + i]) == 0 then\n"
    "    K.queue = ARGV[2 + i]\n"
    "    while n < max and pops < 2 * max + 16 do\n"
    "      local msg = redis.call('LMOVE', KEYS[i], KEYS[1], 'RIGHT', 'LEFT')\n"
    "      if not msg then break end\n"
    "      pops = pops + 1\n"
    "      local c, id = deliver(msg, me, now, liveness, ttl, margin, ARGV[7], ARGV[8],\n"
    "                            maxdel, K)\n"
    "      if c < 0 then\n"
    "        redis.call('LPOP', KEYS[1])\n"
    "      else\n"
    "        n = n + 1\n"
    "        out[#out + 1] = c\n"
    "        out[#out + 1] = msg\n"
    "        out[#out + 1] = id or ''\n"
    "        out[#out + 1] = i - 8\n"
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
 * {code, id}: deliver()'s answer, or -3 when the queue is paused (the
 * message goes back to the consuming end of its queue). Types are checked
 * first, as in fetch. */
static tq_script claim_script = TQ_SCRIPT(
    LUA_COMMON LUA_DELIVER LUA_CHECK_DELIVER
    "if badtype(KEYS[8], 'list') then\n"
    "  return redis.error_reply('WRONGTYPE ' .. badtype(KEYS[8], 'list')) end\n"
    "if redis.call('SISMEMBER', KEYS[7], ARGV[10]) == 1 then\n"
    "  redis.call('LREM', KEYS[1], 1, ARGV[1])\n"
    "  redis.call('RPUSH', KEYS[8], ARGV[1])\n"
    "  return {-3, ''}\n"
    "end\n"
    "local K = deliver_keys(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])\n"
    "K.queue = ARGV[10]\n"
    "local c, id = deliver(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]),\n"
    "                      tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8],\n"
    "                      tonumber(ARGV[9]), K)\n"
    "if c < 0 then redis.call('LREM', KEYS[1], 1, ARGV[1]) end\n"
    "deliver_done(K)\n"
    "return {c, id or ''}\n");

/* KEYS: processing, stats, worker hash, dead, delayed, deliveries, events,
 * tasks (the finished-task index), metrics. ARGV: me, done_ttl,
 * result_ttl, lock_stem, done_stem, result_stem, history_stem,
 * minute_stem, n, then per item 20: op, msg, id, task, status, result,
 * extra, due, effect key, effect by, schedule, started ms, finished ms,
 * error, "1" if task-started is to be recorded here (a slow task's was
 * recorded when it started), queue (the one it was taken from), task
 * label (the task, or TQ_METRICS_UNKNOWN_TASK when the worker does not
 * know it), runtime bucket ("" when it did not run), lateness ms and
 * lateness bucket ("" unless it is a scheduled first attempt).
 *
 * A result is applied only if its lock is still this worker's, or has
 * expired with no done marker: a lock held by another worker means another
 * delivery runs the task (ours was taken over while we looked dead), and
 * that one applies it. While the lock is ours nobody else can have
 * completed the task, so the done marker needs no look-up then.
 *
 * Each applied item also feeds the monitoring data (docs/PROTOCOL.md,
 * "Metrics data"): a member of the task index when it writes a result;
 * the counters of its finished minute; the labelled counters, runtime
 * histogram and (scheduled first attempts) lateness histogram in
 * P:metrics. They are added up in Lua tables over the batch and written at
 * the end: one ZADD per call for the index, one command per distinct
 * field, one EXPIRE per minute key, and a ZREMRANGEBYRANK only when the
 * index is over TQ_METRICS_TASKS_MAX. So a batch of fast tasks costs a few
 * commands more per call, not per task.
 *
 * Returns {code, ..., warnings}: per item 1 applied; 0 when the ack
 * removed nothing (the reaper requeued it, or a retry after a lost reply),
 * and then nothing is done; 2 when its effect cannot be applied (the
 * effect key is not an integer that INCRBY can add to without overflow):
 * then nothing is done for it either and the worker records the run as a
 * failure. warnings is a list of texts (a history, index, metrics or
 * minute key of the wrong type: skipped).
 *
 * Nothing fails after the first write: the argument count, the seven
 * keys' types and every effect key are checked in a first pass that only
 * reads; the lock GET and the history LPUSH run under pcall (a failure
 * there skips that read or write); every other write is to a checked key,
 * or a SET, DEL or HDEL, which do not fail on any type. The monitoring
 * keys never refuse a batch: a broken chart must not stop the work. The
 * index and P:metrics are one key each, so their types are read in the
 * first pass and a wrong one skips their writes with a warning. A minute
 * key is known only by its number: its HINCRBYs run under pcall (a failed
 * one writes nothing), which costs nothing while it is a hash, as it
 * always is unless someone overwrote it; only after a failure is its type
 * read, to tell a wrong type (skip the key, warn) from a field that holds
 * no integer (start it again, like hincr). */
static tq_script complete_script = TQ_SCRIPT(
    LUA_COMMON
    "local e = check{KEYS[1], 'list', KEYS[2], 'hash', KEYS[3], 'hash', KEYS[4], 'list',\n"
    "                KEYS[5], 'zset', KEYS[6], 'hash', KEYS[7], 'stream'}\n"
    "if e then return e end\n"
    "local PER = 20\n"
    "local n = tonumber(ARGV[9])\n"
    "if not n or #ARGV ~= 9 + n * PER then\n"
    "  return redis.error_reply('ERR complete: wrong number of arguments') end\n"
    "local me, done_ttl, result_ttl = ARGV[1], ARGV[2], ARGV[3]\n"
    "local lock_stem, done_stem, result_stem, history_stem = ARGV[4], ARGV[5], ARGV[6],\n"
    "  ARGV[7]\n"
    "local minute_stem = ARGV[8]\n"
    "local stats, events = KEYS[2], KEYS[7]\n"
    "local out, warnings = {}, {}\n"
    "for t = 0, n - 1 do\n"
    "  local a = 9 + t * PER\n"
    "  local ekey = ARGV[a + 9]\n"
    "  if ARGV[a + 1] == 'done' and ekey ~= '' then\n"
    "    local v = redis.pcall('GET', ekey)\n"
    "    local bad = nil\n"
    "    if type(v) == 'table' then bad = 'holds a value of the wrong type'\n"
    "    elseif v and not (v == '0' or string.match(v, '^%-?[1-9]%d*$')) then\n"
    "      bad = 'holds ' .. string.format('%q', string.sub(v, 1, 40)) ..\n"
    "            ', not an integer'\n"
    "    elseif v and #v > 18 then bad = 'holds an integer too large to add to'\n"
    "    elseif math.abs(tonumber(ARGV[a + 10])) >= 1e15 then\n"
    "      bad = 'cannot take an increment of ' .. ARGV[a + 10]\n"
    "    end\n"
    "    out[t + 1] = bad and 2 or nil\n"
    "    if bad then warnings[#warnings + 1] = 'the effect key ' .. ekey .. ' ' .. bad end\n"
    "  end\n"
    "end\n"
    "local index, metrics = KEYS[8], KEYS[9]\n"
    "local bad = badtype(index, 'zset')\n"
    "if bad then\n"
    "  warnings[#warnings + 1] = bad .. ': the task index is not written'\n"
    "  index = nil\n"
    "end\n"
    "bad = badtype(metrics, 'hash')\n"
    "if bad then\n"
    "  warnings[#warnings + 1] = bad .. ': the metrics are not written'\n"
    "  metrics = nil\n"
    "end\n"
    "local hasdel = redis.call('HLEN', KEYS[6]) > 0\n"
    "local counts = {}\n"
    "local function count(field) counts[field] = (counts[field] or 0) + 1 end\n"
    "local members, minutes, mets, sums = {}, {}, {}, {}\n"
    "local function bump(tbl, k, by) tbl[k] = (tbl[k] or 0) + by end\n"
    /* One completion in the counters: field of its finished minute's hash,
     * state of its labelled counter. */
    "local function tally(finished, q, label, field, state)\n"
    "  local m = math.floor(tonumber(finished) / 60000)\n"
    "  local fields = minutes[m]\n"
    "  if not fields then fields = {} minutes[m] = fields end\n"
    "  bump(fields, field, 1)\n"
    "  bump(mets, 'tasks\\t' .. q .. '\\t' .. label .. '\\t' .. state, 1)\n"
    "end\n"
    "local function indexed(finished, status, q, task, sched, id)\n"
    "  members[#members + 1] = finished\n"
    "  members[#members + 1] = status .. '\\t' .. q .. '\\t' .. task .. '\\t' .. sched ..\n"
    "    '\\t' .. id\n"
    "end\n"
    "local function history(sched, result)\n"
    "  if sched == '' then return end\n"
    "  local r = redis.pcall('LPUSH', history_stem .. sched, result)\n"
    "  if type(r) == 'table' then\n"
    "    warnings[#warnings + 1] = 'the history key ' .. history_stem .. sched ..\n"
    "      ' holds a value of the wrong type: not written'\n"
    "  else redis.call('LTRIM', history_stem .. sched, 0, 99) end\n"
    "end\n"
    "for t = 0, n - 1 do\n"
    "  local a = 9 + t * PER\n"
    "  local op, msg, id, task = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]\n"
    "  local status, result, extra, due = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7],\n"
    "    ARGV[a + 8]\n"
    "  local ekey, eby, sched = ARGV[a + 9], ARGV[a + 10], ARGV[a + 11]\n"
    "  local started, finished, err = ARGV[a + 12], ARGV[a + 13], ARGV[a + 14]\n"
    "  local q, label = ARGV[a + 16], ARGV[a + 17]\n"
    "  local applied = 0\n"
    "  if out[t + 1] == 2 then\n"
    "    applied = 2\n"
    "  elseif redis.call('LREM', KEYS[1], -1, msg) == 1 then\n"
    "    applied = 1\n"
    "    local owner = nil\n"
    "    if id ~= '' then\n"
    "      owner = redis.pcall('GET', lock_stem .. id)\n"
    "      if type(owner) == 'table' then owner = nil end\n"
    "      if owner == me then redis.call('DEL', lock_stem .. id) end\n"
    "      if hasdel then redis.call('HDEL', KEYS[6], id) end\n"
    "    end\n"
    "    if started ~= '' and ARGV[a + 15] == '1' then\n"
    "      event(events, 'task-started', started, id, task, q, me) end\n"
    "    local runtime = started ~= '' and (tonumber(finished) - tonumber(started)) / 1000\n"
    "    if op == 'dead' then\n"
    "      if started ~= '' then\n"
    "        event(events, 'task-failed', finished, id, task, q, me, runtime, err)\n"
    "        tally(finished, q, label, 'failed', 'failure')\n"
    "      end\n"
    "      redis.call('LPUSH', KEYS[4], extra)\n"
    "      count('dead')\n"
    "      tally(finished, q, label, 'dead', 'dead')\n"
    "      if result ~= '' then\n"
    "        redis.call('SET', done_stem .. id, 'dead', 'PX', done_ttl)\n"
    "        redis.call('SET', result_stem .. id, result, 'PX', result_ttl)\n"
    "        history(sched, result)\n"
    "        indexed(finished, 'dead', q, task, sched, id)\n"
    "      end\n"
    "      event(events, 'task-dead', finished, id, task, q, me, nil, err, status)\n"
    "    elseif op == 'retry' then\n"
    "      redis.call('ZADD', KEYS[5], due, extra)\n"
    "      redis.call('SET', result_stem .. id, result, 'PX', result_ttl)\n"
    "      count('retried')\n"
    "      tally(finished, q, label, 'retried', 'retried')\n"
    "      indexed(finished, 'retrying', q, task, sched, id)\n"
    "      event(events, 'task-retried', finished, id, task, q, me, runtime, err, due)\n"
    "    elseif owner ~= me and (owner or redis.call('EXISTS', done_stem .. id) == 1) then\n"
    "      applied = 0\n"
    "      count('duplicates')\n"
    "    else\n"
    "      redis.call('SET', done_stem .. id, status, 'PX', done_ttl)\n"
    "      redis.call('SET', result_stem .. id, result, 'PX', result_ttl)\n"
    "      if ekey ~= '' then redis.call('INCRBY', ekey, eby) end\n"
    "      history(sched, result)\n"
    "      count(status == 'success' and 'processed' or status)\n"
    "      tally(finished, q, label, status == 'success' and 'processed' or\n"
    "            status == 'failure' and 'failed' or status, status)\n"
    "      indexed(finished, status, q, task, sched, id)\n"
    "      if status == 'expired' then\n"
    "        event(events, 'task-expired', finished, id, task, q, me, nil, err)\n"
    "      else\n"
    "        event(events, status == 'success' and 'task-succeeded' or 'task-failed',\n"
    "              finished, id, task, q, me, runtime, err)\n"
    "      end\n"
    "    end\n"
    "    if applied == 1 then\n"
    "      if ARGV[a + 18] ~= '' then\n"
    "        bump(mets, 'runtime\\t' .. q .. '\\t' .. label .. '\\t' .. ARGV[a + 18], 1)\n"
    "        bump(sums, 'runtime_sum\\t' .. q .. '\\t' .. label,\n"
    "             tonumber(finished) - tonumber(started))\n"
    "      end\n"
    "      if ARGV[a + 19] ~= '' then\n"
    "        bump(mets, 'lateness\\t' .. ARGV[a + 20], 1)\n"
    "        bump(sums, 'lateness_sum', tonumber(ARGV[a + 19]))\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  out[t + 1] = applied\n"
    "end\n"
    "for field, c in pairs(counts) do\n"
    "  hincr(stats, field, c)\n"
    "  if field ~= 'duplicates' then hincr(KEYS[3], field, c) end\n"
    "end\n"
    "for m, fields in pairs(minutes) do\n"
    "  local key = minute_stem .. string.format('%d', m)\n"
    "  local wrong = nil\n"
    "  for f, c in pairs(fields) do\n"
    "    if type(redis.pcall('HINCRBY', key, f, c)) == 'table' then\n"
    "      wrong = badtype(key, 'hash')\n"
    "      if wrong then break end\n"
    "      redis.call('HSET', key, f, c)\n"
    "    end\n"
    "  end\n"
    "  if wrong then\n"
    "    warnings[#warnings + 1] = wrong .. ': that minute is not counted'\n"
    "  else redis.call('EXPIRE', key, " STR(TQ_METRICS_MINUTE_TTL_S) ") end\n"
    "end\n"
    "if metrics then\n"
    "  for f, c in pairs(mets) do hincr(metrics, f, c) end\n"
    "  for f, ms in pairs(sums) do\n"
    "    hincrf(metrics, f, string.format('%.3f', ms / 1000)) end\n"
    "end\n"
    "if index and #members > 0 then\n"
    "  for i = 1, #members, 1000 do\n"
    "    redis.call('ZADD', index, unpack(members, i, math.min(i + 999, #members)))\n"
    "  end\n"
    "  local over = redis.call('ZCARD', index) - " STR(TQ_METRICS_TASKS_MAX) "\n"
    "  if over > 0 then redis.call('ZREMRANGEBYRANK', index, 0, over - 1) end\n"
    "end\n"
    "redis.call('XTRIM', events, 'MAXLEN', '~', " STR(WORKER_QUEUE_EVENTS_MAX) ")\n"
    "out[#out + 1] = warnings\n"
    "return out\n");

/* requeue_plan(msgs): where each of a worker's messages goes back to: its
 * queue, or the dead letters when it has no readable queue or its queue
 * key is of the wrong type (so nothing is dropped). Only reads: returns
 * the plan, or nil and a WRONGTYPE error reply when a dead letter is
 * needed and P:dead is not a list. requeue_apply(w, msgs, plan): puts each
 * message back at the consuming end of its queue and releases w's lock on
 * it; with a deliveries key (the reaper: w crashed), counts the
 * redelivery there, for the poison limit. requeue(w, processing): both for
 * a whole processing list, oldest first, then deletes it. The callers
 * check processing, stats and deliveries first; after the plan, every
 * write is to a checked key (the lock GET runs under pcall), so nothing
 * fails after the first write. */
#define LUA_REQUEUE                                                                      \
    "local function requeue_plan(msgs, queue_stem, dead)\n"                              \
    "  local plan, need_dead = {}, false\n"                                              \
    "  for i = 1, #msgs do\n"                                                            \
    "    local q, id, why = nil, nil, 'no valid queue field'\n"                          \
    "    local ok, m = pcall(cjson.decode, msgs[i])\n"                                   \
    "    if ok and type(m) == 'table' then\n"                                            \
    "      if type(m.id) == 'string' then id = m.id end\n"                               \
    "      if m.queue == nil then q = 'default'\n"                                       \
    "      elseif type(m.queue) == 'string' and #m.queue <= 64\n"                        \
    "        and string.match(m.queue, '^[%w_.:-]+$') then q = m.queue end\n"            \
    "    end\n"                                                                          \
    "    if q then\n"                                                                    \
    "      local bad = badtype(queue_stem .. q, 'list')\n"                               \
    "      if bad then q, why = nil, bad end\n"                                          \
    "    end\n"                                                                          \
    "    need_dead = need_dead or not q\n"                                               \
    "    plan[i] = {id = id, q = q, why = why}\n"                                        \
    "  end\n"                                                                            \
    "  if need_dead then\n"                                                              \
    "    local e = check{dead, 'list'}\n"                                                \
    "    if e then return nil, e end\n"                                                  \
    "  end\n"                                                                            \
    "  return plan\n"                                                                    \
    "end\n"                                                                              \
    "local function requeue_apply(w, msgs, plan, lock_stem, queue_stem, dead, stats,\n"  \
    "                             now, deliveries)\n"                                    \
    "  for i = 1, #msgs do\n"                                                            \
    "    local p = plan[i]\n"                                                            \
    "    if p.id then\n"                                                                 \
    "      if redis.pcall('GET', lock_stem .. p.id) == w then\n"                         \
    "        redis.call('DEL', lock_stem .. p.id) end\n"                                 \
    "      if deliveries then hincr(deliveries, p.id, 1) end\n"                          \
    "    end\n"                                                                          \
    "    if p.q then redis.call('RPUSH', queue_stem .. p.q, msgs[i])\n"                  \
    "    else\n"                                                                         \
    "      redis.call('LPUSH', dead, cjson.encode({reason = 'undecodable',\n"            \
    "        error = 'requeue: ' .. p.why, worker = w, dead_at = now / 1000,\n"          \
    "        message = msgs[i]}))\n"                                                     \
    "      hincr(stats, 'dead', 1)\n"                                                    \
    "    end\n"                                                                          \
    "  end\n"                                                                            \
    "end\n"                                                                              \
    "local function requeue(w, processing, lock_stem, queue_stem, dead, stats, now,\n"   \
    "                       deliveries)\n"                                               \
    "  local msgs = redis.call('LRANGE', processing, 0, -1)\n"                           \
    "  local plan, e = requeue_plan(msgs, queue_stem, dead)\n"                           \
    "  if not plan then return nil, e end\n"                                             \
    "  requeue_apply(w, msgs, plan, lock_stem, queue_stem, dead, stats, now,\n"          \
    "                deliveries)\n"                                                      \
    "  redis.call('DEL', processing)\n"                                                  \
    "  if #msgs > 0 then hincr(stats, 'requeued', #msgs) end\n"                          \
    "  return #msgs\n"                                                                   \
    "end\n"

/* KEYS: processing, dead, stats. ARGV: me, now, lock_stem, queue_stem,
 * msg. Requeues msg if it is still in processing; returns 1 or 0. Types
 * and the plan come first (see requeue_plan). */
static tq_script orphan_script = TQ_SCRIPT(
    LUA_COMMON LUA_REQUEUE
    "local e = check{KEYS[1], 'list', KEYS[3], 'hash'}\n"
    "if e then return e end\n"
    "local msgs = {ARGV[5]}\n"
    "local plan, e2 = requeue_plan(msgs, ARGV[4], KEYS[2])\n"
    "if not plan then return e2 end\n"
    "if redis.call('LREM', KEYS[1], 1, ARGV[5]) == 0 then return 0 end\n"
    "requeue_apply(ARGV[1], msgs, plan, ARGV[3], ARGV[4], KEYS[2], KEYS[3],\n"
    "              tonumber(ARGV[2]))\n"
    "hincr(KEYS[3], 'requeued', 1)\n"
    "return 1\n");

/* KEYS: processing, dead, stats, workers, worker hash. ARGV: me, now,
 * lock_stem, queue_stem, deregister. Types and the plan come first (see
 * requeue_plan; ZREM and DEL do not fail on a zset). */
static tq_script requeue_script = TQ_SCRIPT(
    LUA_COMMON LUA_REQUEUE
    "local e = check{KEYS[1], 'list', KEYS[3], 'hash', KEYS[4], 'zset'}\n"
    "if e then return e end\n"
    "local n, e2 = requeue(ARGV[1], KEYS[1], ARGV[3], ARGV[4], KEYS[2], KEYS[3],\n"
    "                      tonumber(ARGV[2]))\n"
    "if not n then return e2 end\n"
    "if ARGV[5] == '1' then\n"
    "  redis.call('ZREM', KEYS[4], ARGV[1])\n"
    "  redis.call('DEL', KEYS[5])\n"
    "end\n"
    "return n\n");

/* KEYS: workers, dead, stats, deliveries. ARGV: now, liveness,
 * processing_stem, lock_stem, queue_stem, worker_stem. Returns {worker,
 * moved, ...}; moved is -1 for a dead worker whose messages cannot be put
 * anywhere now (its processing key, or P:dead when needed, is of the wrong
 * type): it is left as it is, and reported each time, rather than dropped.
 * Types and each worker's plan come before that worker's first write. */
static tq_script reap_script = TQ_SCRIPT(
    LUA_COMMON LUA_REQUEUE
    "local e = check{KEYS[1], 'zset', KEYS[3], 'hash', KEYS[4], 'hash'}\n"
    "if e then return e end\n"
    "local now = tonumber(ARGV[1])\n"
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))\n"
    "local out = {}\n"
    "for _, w in ipairs(dead) do\n"
    "  local n = -1\n"
    "  if not badtype(ARGV[3] .. w, 'list') then\n"
    "    n = requeue(w, ARGV[3] .. w, ARGV[4], ARGV[5], KEYS[2], KEYS[3], now, KEYS[4])\n"
    "    if n then\n"
    "      redis.call('ZREM', KEYS[1], w)\n"
    "      redis.call('DEL', ARGV[6] .. w)\n"
    "    else n = -1 end\n"
    "  end\n"
    "  out[#out + 1] = w\n"
    "  out[#out + 1] = n\n"
    "end\n"
    "return out\n");

/* KEYS: workers, worker hash. ARGV: id, instance, now, liveness. One
 * process per worker id: registers this instance, unless another instance
 * holds the id and heartbeat within liveness. Returns {1} registered, or
 * {0, its last heartbeat, its instance, its host, its pid}. Types are
 * checked first; ZADD and HSET cannot fail after that. */
static tq_script register_script = TQ_SCRIPT(
    LUA_COMMON
    "local e = check{KEYS[1], 'zset', KEYS[2], 'hash'}\n"
    "if e then return e end\n"
    "local hb = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "local inst = redis.call('HGET', KEYS[2], 'instance')\n"
    "if hb and inst and inst ~= ARGV[2]\n"
    "   and tonumber(ARGV[3]) - tonumber(hb) <= tonumber(ARGV[4]) then\n"
    "  local who = redis.call('HMGET', KEYS[2], 'host', 'pid')\n"
    "  return {0, hb, inst, who[1] or '?', who[2] or '?'}\n"
    "end\n"
    "redis.call('HSET', KEYS[2], 'instance', ARGV[2])\n"
    "redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])\n"
    "return {1}\n");

/* KEYS: workers, worker hash. ARGV: id, instance, now, ttl, then field,
 * value pairs for the hash. Returns 1, or 0 (nothing written) when
 * another instance has taken this id over. Types are checked first. */
static tq_script heartbeat_script = TQ_SCRIPT(
    LUA_COMMON
    "local e = check{KEYS[1], 'zset', KEYS[2], 'hash'}\n"
    "if e then return e end\n"
    "local inst = redis.call('HGET', KEYS[2], 'instance')\n"
    "if inst and inst ~= ARGV[2] then return 0 end\n"
    "redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])\n"
    "redis.call('HSET', KEYS[2], 'instance', ARGV[2], unpack(ARGV, 5))\n"
    "redis.call('PEXPIRE', KEYS[2], ARGV[4])\n"
    "return 1\n");

/* clang-format on */

const char *worker_queue_reply_error(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        return r->str;
    return "unexpected reply from redis";
}

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
    bad |= tq_keys_fmt(p, TQ_KEY_TASKS, NULL, q->tasks, sizeof q->tasks) < 0;
    bad |= tq_keys_fmt(p, TQ_KEY_METRICS, NULL, q->metrics, sizeof q->metrics) < 0;
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
    bad |= tq_keys_stem(p, TQ_KEY_MINUTE, q->minute_stem, sizeof q->minute_stem) < 0;
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
static int take_raw(worker_item *it, const redisReply *r, int claimed,
                    const redisReply *id)
{
    memset(it, 0, sizeof *it);
    it->raw = malloc(r->len + 1);
    if (!it->raw)
        return TQ_ENOMEM;
    memcpy(it->raw, r->str, r->len);
    it->raw[r->len] = '\0';
    it->len = r->len;
    it->claimed = claimed;
    /* The id the broker locked: a message the worker cannot decode is
     * dead-lettered under it, which releases the lock. */
    if (claimed == 1 && id && id->len < sizeof it->id)
        memcpy(it->id, id->str, id->len + 1);
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
                       worker_item *items, unsigned *bad_queues)
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
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 4 != 1 ||
        r->elements / 4 > (size_t)max || r->element[0]->type != REDIS_REPLY_ARRAY) {
        WORKER_WARN_LIMITED("fetch: %s; no message is taken until it is fixed",
                            worker_queue_reply_error(r));
        rc = TQ_EREPLY;
    } else {
        const redisReply *skipped = r->element[0];
        unsigned bad = 0;
        for (size_t i = 0; i < skipped->elements; i++) {
            const redisReply *e = skipped->element[i];
            if (e->type != REDIS_REPLY_STRING)
                continue;
            for (int j = 0; j < q->nqueues; j++)
                if (strstr(e->str, q->queues[j]))
                    bad |= 1u << j;
            WORKER_WARN_LIMITED("fetch: %s; that queue is skipped until it is fixed",
                                e->str);
        }
        if (bad_queues)
            *bad_queues = bad;
        for (size_t i = 1; i < r->elements; i += 4) {
            const redisReply *flag = r->element[i], *msg = r->element[i + 1],
                             *id = r->element[i + 2], *qi = r->element[i + 3];
            if (flag->type != REDIS_REPLY_INTEGER || msg->type != REDIS_REPLY_STRING ||
                id->type != REDIS_REPLY_STRING || qi->type != REDIS_REPLY_INTEGER ||
                qi->integer < 0 || qi->integer >= q->nqueues) {
                rc = TQ_EREPLY;
                break;
            }
            if ((rc = take_raw(&items[n], msg, (int)flag->integer, id)) < 0)
                break;
            items[n].qi = (int)qi->integer;
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
        WORKER_WARN_LIMITED("wait on %s: %s", q->queues[qi], worker_queue_reply_error(r));
        freeReplyObject(r);
        return TQ_EREPLY;
    }
    int rc = take_raw(item, r, 0, NULL);
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
    /* If this reply is lost, or the script refuses (a key of the wrong
     * type), the message stays in processing unclaimed; the orphan sweep
     * requeues it: delayed, never lost. */
    r = tq_conn_eval(c, &claim_script, 8, 10, argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_STRING) {
        if (r)
            WORKER_WARN_LIMITED("claim: %s", worker_queue_reply_error(r));
        rc = r ? TQ_EREPLY : TQ_EREDIS;
        freeReplyObject(r);
        worker_queue_items_clear(item, 1);
        return rc;
    }
    long long claimed = r->element[0]->integer;
    if (claimed == 1 && r->element[1]->len < sizeof item->id)
        memcpy(item->id, r->element[1]->str, r->element[1]->len + 1);
    freeReplyObject(r);
    if (claimed < 0) {
        worker_queue_items_clear(item, 1);
        return 0;
    }
    item->claimed = (int)claimed;
    item->qi = qi;
    return 1;
}

/* The histogram bounds of common/metrics.h, seconds. */
static const double runtime_bounds[] = {TQ_METRICS_RUNTIME_BUCKETS};
static const double lateness_bounds[] = {TQ_METRICS_LATENESS_BUCKETS};
_Static_assert(sizeof runtime_bounds / sizeof runtime_bounds[0] ==
                   TQ_METRICS_RUNTIME_NBUCKETS - 1,
               "TQ_METRICS_RUNTIME_NBUCKETS is the number of bounds plus one");
_Static_assert(sizeof lateness_bounds / sizeof lateness_bounds[0] ==
                   TQ_METRICS_LATENESS_NBUCKETS - 1,
               "TQ_METRICS_LATENESS_NBUCKETS is the number of bounds plus one");

/* The bucket of value v: the first whose bound is >= v, or nbounds (the
 * +Inf bucket). */
static int bucket_of(const double *bounds, int nbounds, double v)
{
    int i = 0;
    while (i < nbounds && v > bounds[i])
        i++;
    return i;
}

int worker_queue_complete(tq_conn *c, const worker_queue *q, worker_item *items, int n,
                          int64_t now_ms)
{
    (void)now_ms;
    enum { PER = 20, NKEYS = 9, HEAD = NKEYS + 9, NUMS = 7 };
    int todo = 0;
    for (int i = 0; i < n; i++)
        todo += items[i].op != WORKER_OP_NONE;
    if (todo == 0)
        return 0;

    size_t cap = (size_t)(HEAD + PER * todo);
    const char **argv = malloc(sizeof *argv * cap);
    size_t *lens = malloc(sizeof *lens * cap);
    char(*nums)[NUMS][24] = malloc(sizeof *nums * (size_t)todo);
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
        q->processing,   q->stats,       q->worker_hash, q->dead,      q->delayed,
        q->deliveries,   q->events,      q->tasks,       q->metrics,   q->id,
        done_ttl,        result_ttl,     q->lock_stem,   q->done_stem, q->result_stem,
        q->history_stem, q->minute_stem, count};
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
        char *num[NUMS];
        for (int j = 0; j < NUMS; j++) {
            num[j] = nums[t][j];
            num[j][0] = '\0';
        }
        snprintf(num[0], 24, "%lld", (long long)it->due_ms);
        snprintf(num[1], 24, "%lld", (long long)it->effect_by);
        if (it->started_ms) {
            snprintf(num[2], 24, "%lld", (long long)it->started_ms);
            snprintf(num[3], 24, "%lld", (long long)it->finished_ms);
            snprintf(num[4], 24, "%d",
                     bucket_of(runtime_bounds, TQ_METRICS_RUNTIME_NBUCKETS - 1,
                               (double)(it->finished_ms - it->started_ms) / 1e3));
        } else {
            snprintf(num[3], 24, "%lld",
                     (long long)(it->finished_ms ? it->finished_ms : tq_clock_wall_ms()));
        }
        if (it->has_lateness) {
            snprintf(num[5], 24, "%lld", (long long)it->lateness_ms);
            snprintf(num[6], 24, "%d",
                     bucket_of(lateness_bounds, TQ_METRICS_LATENESS_NBUCKETS - 1,
                               (double)it->lateness_ms / 1e3));
        }
        /* The label of a task the worker does not know is fixed, so that
         * messages cannot make up label values (common/metrics.h). */
        const char *label = it->known ? it->task : TQ_METRICS_UNKNOWN_TASK;
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
                              it->started_event_sent ? "" : "1",
                              q->queue_names[it->qi],
                              label,
                              num[4],
                              num[5],
                              num[6]};
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
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)todo + 1 ||
        r->element[todo]->type != REDIS_REPLY_ARRAY) {
        WORKER_WARN_LIMITED("complete: %s; the tasks wait in processing until it is "
                            "fixed",
                            worker_queue_reply_error(r));
        rc = TQ_EREPLY;
    } else {
        const redisReply *warnings = r->element[todo];
        for (size_t j = 0; j < warnings->elements; j++)
            if (warnings->element[j]->type == REDIS_REPLY_STRING)
                WORKER_WARN_LIMITED("complete: %s", warnings->element[j]->str);
        t = 0;
        for (int i = 0; i < n; i++)
            if (items[i].op != WORKER_OP_NONE)
                items[i].applied = (int)r->element[t++]->integer;
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
    /* Task events have the same fields, in the same order, as those the
     * scripts write. */
    const char *task_ev[] = {"XADD",    q->events,
                             "MAXLEN",  "~",
                             maxlen,    "*",
                             "event",   event,
                             "ts",      ts,
                             "id",      it ? it->id : "",
                             "task",    it ? it->task : "",
                             "queue",   it ? q->queue_names[it->qi] : "",
                             "worker",  q->id,
                             "runtime", "",
                             "error",   "",
                             "info",    ""};
    const char *worker_ev[] = {"XADD",  q->events, "MAXLEN", "~", maxlen,   "*",
                               "event", event,     "ts",     ts,  "worker", q->id};
    redisReply *r = it ? tq_conn_cmdargv(c, 24, task_ev, NULL)
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
        WORKER_WARN_LIMITED("requeue: %s", worker_queue_reply_error(r));
    freeReplyObject(r);
    return rc;
}

int worker_queue_register(tq_conn *c, const worker_queue *q, const char *instance,
                          int64_t now_ms, worker_holder *holder)
{
    char now[24], live[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(live, sizeof live, "%lld", (long long)q->liveness_ms);
    const char *argv[] = {q->workers, q->worker_hash, q->id, instance, now, live};
    redisReply *r = tq_conn_eval(c, &register_script, 2, 4, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = TQ_EREPLY;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_INTEGER) {
        rc = 1;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 5) {
        rc = 0;
        memset(holder, 0, sizeof *holder);
        const redisReply *const *e = (const redisReply *const *)r->element;
        holder->heartbeat_ms = e[1]->str ? strtoll(e[1]->str, NULL, 10) : 0;
        if (e[2]->str)
            snprintf(holder->instance, sizeof holder->instance, "%s", e[2]->str);
        if (e[3]->str)
            snprintf(holder->host, sizeof holder->host, "%s", e[3]->str);
        if (e[4]->str)
            snprintf(holder->pid, sizeof holder->pid, "%s", e[4]->str);
    } else {
        WORKER_WARN_LIMITED("register: %s", worker_queue_reply_error(r));
    }
    freeReplyObject(r);
    return rc;
}

int worker_queue_heartbeat(tq_conn *c, const worker_queue *q, const char *instance,
                           int64_t now_ms, const char *const *info)
{
    enum { ARGS_MAX = 6 + 2 * 16 };
    const char *argv[ARGS_MAX];
    char ttl[24], now[24];
    /* The hash outlives a few missed heartbeats, not a dead worker. */
    snprintf(ttl, sizeof ttl, "%lld", (long long)(q->liveness_ms * 3));
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    int k = 0;
    const char *head[] = {q->workers, q->worker_hash, q->id, instance, now, ttl};
    for (size_t i = 0; i < 6; i++)
        argv[k++] = head[i];
    for (int i = 0; info[i] && k + 2 <= ARGS_MAX; i += 2) {
        argv[k++] = info[i];
        argv[k++] = info[i + 1];
    }
    redisReply *r = tq_conn_eval(c, &heartbeat_script, 2, k - 2, argv, NULL);
    if (!r)
        return TQ_EREDIS;
    int rc = TQ_EREPLY;
    if (r->type == REDIS_REPLY_INTEGER)
        rc = (int)r->integer;
    else
        WORKER_WARN_LIMITED("heartbeat: %s", worker_queue_reply_error(r));
    freeReplyObject(r);
    return rc;
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
        WORKER_WARN_LIMITED("reap: %s", worker_queue_reply_error(r));
        moved = TQ_EREPLY;
    } else {
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const char *who = r->element[i]->str ? r->element[i]->str : "?";
            long long n = r->element[i + 1]->integer;
            if (n < 0) {
                WORKER_WARN_LIMITED("reaper: worker %s is dead but its messages cannot "
                                    "be requeued (its processing list, or %s, is not a "
                                    "list); left as they are until it is fixed",
                                    who, q->dead);
                continue;
            }
            tq_warn("reaper: worker %s is dead (no heartbeat for %lld ms); requeued %lld "
                    "message(s) and released its locks",
                    who, (long long)q->liveness_ms, n);
            moved += (int)n;
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
    if (rc == TQ_EREPLY)
        WORKER_WARN_LIMITED("orphan requeue: %s", worker_queue_reply_error(r));
    freeReplyObject(r);
    return rc;
}
