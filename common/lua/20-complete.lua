
-- tickq_complete: acknowledges a batch of finished messages and applies
-- their outcomes. KEYS: processing, stats, worker hash, dead, delayed,
-- deliveries, events, tasks (the finished-task index), metrics, then the
-- items' own keys. ARGV: me, done_ttl ms, result_ttl ms, then the items, a
-- MessagePack array of maps (common/broker.h, tq_broker_pack_*). Numbers
-- that go into Redis commands travel as decimal strings (a Lua number
-- would be written with 14 digits, 1e+14 for 10^14); k, h, e and m are
-- integers:
--
--   op        'done', 'retry' or 'dead'
--   msg       the message's exact bytes in processing
--   id, task  its id ("" when unreadable) and task name
--   status    success, failure, expired (done); retrying; the dead reason
--   result    the result JSON ("" for none: a dead letter without a run)
--   extra     the dead letter (dead) or the next attempt (retry)
--   due       retry: when the next attempt is due (ms)
--   by        the task's effect: what INCRBY adds to KEYS[e]
--   sched     the schedule that produced it ("" when none)
--   started   ms, absent when it did not run; finished ms
--   err       the error, for the events
--   q         the queue it was taken from
--   rb        the runtime bucket, absent when it did not run; then rt
--             the runtime in seconds (a string) and rms in ms (an integer)
--   ml        its metrics labels, "<queue>\t<task label>" (the label is the
--             task's name, or "(unknown)" for a task the worker does not
--             know, so that messages cannot make up label values)
--   ix        its member of the task index, absent when it writes none
--   late, lb  the lateness ms and its bucket, absent unless it is a
--             scheduled first attempt
--   k         KEYS[k], KEYS[k + 1], KEYS[k + 2]: its lock, done marker and
--             result (absent when id is "")
--   h, e, m   KEYS indexes of its schedule's history, its effect key and
--             its finished minute's counters (h and e absent when none)
--
-- A result is applied only if its lock is still this worker's, or has
-- expired with no done marker: a lock held by another worker means another
-- delivery runs the task (ours was taken over while we looked dead), and
-- that one applies it. While the lock is ours nobody else can have
-- completed the task, so the done marker needs no look-up then. Because
-- everything hangs on the LREM of the message from processing, a retry
-- after a lost reply, or the completion of a message the reaper already
-- handed to another worker, applies nothing.
--
-- Each applied item also feeds the monitoring data (docs/PROTOCOL.md,
-- "Metrics data"), added up in Lua tables over the batch and written at
-- the end: one ZADD per call for the index, one command per distinct
-- field, one EXPIRE per minute key, and a ZREMRANGEBYRANK only when the
-- index is over TASKS_MAX.
--
-- Returns {code, ..., warnings}: per item 1 applied; 0 when the ack
-- removed nothing, and then nothing is done; 2 when its effect cannot be
-- applied (the effect key is not an integer that INCRBY can add to without
-- overflow): then nothing is done for it either and the worker records the
-- run as a failure. warnings lists texts (a history, index, metrics or
-- minute key of the wrong type: skipped).
--
-- Nothing fails after the first write: the items, the seven keys' types
-- and every effect key are checked in a first pass that only reads; the
-- locks are read with MGET (a lock of the wrong type reads as none) and
-- the history LPUSH runs under pcall (a failure there skips that write);
-- every other write is to a checked key, or a SET, DEL or HDEL, which do
-- not fail on any type. The monitoring keys never
-- refuse a batch: a broken chart must not stop the work. The index and
-- P:metrics are one key each, so their types are read in the first pass
-- and a wrong one skips their writes with a warning. A minute key's
-- HINCRBYs run under pcall (a failed one writes nothing), which costs
-- nothing while it is a hash; only after a failure is its type read, to
-- tell a wrong type (skip the key, warn) from a field that holds no
-- integer (start it again, like hincr).
local ITEM_STRINGS = {'op', 'msg', 'id', 'task', 'status', 'result', 'extra', 'by',
  'sched', 'finished', 'err', 'q', 'ml'}
local ITEM_INTEGERS = {'by', 'finished', 'due', 'started', 'late'} -- or absent

-- 1 when item it has every field it needs, of its type, and its keys (a
-- KEYS index past the nine fixed keys): everything a write will use is
-- checked before the first.
local function item_ok(it, KEYS)
  if type(it) ~= 'table' then return false end
  for _, f in ipairs(ITEM_STRINGS) do
    if type(it[f]) ~= 'string' then return false end
  end
  for _, f in ipairs(ITEM_INTEGERS) do
    if it[f] ~= nil and not (type(it[f]) == 'string' and string.match(it[f], '^%-?%d+$')
        and #it[f] <= 18) then
      return false
    end
  end
  local function key(i) return type(i) == 'number' and i >= 10 and KEYS[i] ~= nil end
  local function opt(i) return i == nil or key(i) end
  if not (it.op == 'done' or it.op == 'retry' or it.op == 'dead') then return false end
  -- Every op but a dead letter without a run writes the result and needs
  -- the task's keys.
  local writes = it.op ~= 'dead' or it.result ~= ''
  if writes and (it.id == '' or not (key(it.k) and key(it.k + 2))) then return false end
  if it.k ~= nil and not (key(it.k) and key(it.k + 2)) then return false end
  if it.op == 'retry' and not it.due then return false end
  if (it.lb ~= nil) ~= (it.late ~= nil) then return false end
  if it.rb ~= nil and not (it.started and type(it.rt) == 'string'
      and type(it.rms) == 'number') then
    return false
  end
  return key(it.m) and opt(it.h) and opt(it.e)
    and (it.ix == nil or type(it.ix) == 'string')
    and (it.rb == nil or type(it.rb) == 'string')
    and (it.lb == nil or type(it.lb) == 'string')
end

fn('complete', function(KEYS, ARGV)
  local e = check{KEYS[1], 'list', KEYS[2], 'hash', KEYS[3], 'hash', KEYS[4], 'list',
    KEYS[5], 'zset', KEYS[6], 'hash', KEYS[7], 'stream'}
  if e then return e end
  local ok, items = pcall(cmsgpack.unpack, ARGV[4] or '')
  if not ok or type(items) ~= 'table' then
    return redis.error_reply('ERR complete: the items are not a MessagePack array')
  end
  for _, it in ipairs(items) do
    if not item_ok(it, KEYS) then
      return redis.error_reply('ERR complete: an item lacks a field or a key')
    end
  end
  local me, done_ttl, result_ttl = ARGV[1], ARGV[2], ARGV[3]
  local processing, stats, whash, dead, delayed, deliveries, events =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
  local out, warnings = {}, {}
  for t, it in ipairs(items) do
    if it.op == 'done' and it.e then
      local ekey = KEYS[it.e]
      local v = redis.pcall('GET', ekey)
      local bad = nil
      if type(v) == 'table' then
        bad = 'holds a value of the wrong type'
      elseif v and not (v == '0' or string.match(v, '^%-?[1-9]%d*$')) then
        bad = 'holds ' .. string.format('%q', string.sub(v, 1, 40)) .. ', not an integer'
      elseif v and #v > 18 then
        bad = 'holds an integer too large to add to'
      elseif math.abs(tonumber(it.by) or 1e300) >= 1e15 then
        bad = 'cannot take an increment of ' .. it.by
      end
      if bad then
        out[t] = 2
        warnings[#warnings + 1] = 'the effect key ' .. ekey .. ' ' .. bad
      end
    end
  end
  local index, metrics = KEYS[8], KEYS[9]
  local bad = badtype(index, 'zset')
  if bad then
    warnings[#warnings + 1] = bad .. ': the task index is not written'
    index = nil
  end
  bad = badtype(metrics, 'hash')
  if bad then
    warnings[#warnings + 1] = bad .. ': the metrics are not written'
    metrics = nil
  end
  local hasdel = redis.call('HLEN', deliveries) > 0
  -- The counters are added up in tables keyed by the item's labels, and
  -- their field names built once per distinct label at the end: building
  -- them per item cost more than the commands.
  local counts, members, minutes = {}, {}, {}
  local tasks_by, runtime_by, runtime_sum, lateness, lateness_sum = {}, {}, {}, {}, nil
  local function bump(tbl, k, by) tbl[k] = (tbl[k] or 0) + by end
  -- tbl[k], a table, made on first use.
  local function sub(tbl, k)
    local t = tbl[k]
    if not t then
      t = {}
      tbl[k] = t
    end
    return t
  end
  -- One completion in the counters: field of its finished minute's hash,
  -- state of its labelled counter.
  local function tally(it, field, state)
    bump(sub(minutes, it.m), field, 1)
    bump(sub(tasks_by, it.ml), state, 1)
  end
  local function indexed(it)
    if it.ix then
      members[#members + 1] = it.finished
      members[#members + 1] = it.ix
    end
  end
  local function history(it)
    if not it.h then return end
    local key = KEYS[it.h]
    local r = redis.pcall('LPUSH', key, it.result)
    if type(r) == 'table' then
      warnings[#warnings + 1] = 'the history key ' .. key ..
        ' holds a value of the wrong type: not written'
    else
      redis.call('LTRIM', key, 0, 99)
    end
  end
  -- The locks of the batch in one read, released in one DEL at the end.
  local lock_keys, owners, releases, acked = {}, {}, {}, {}
  for _, it in ipairs(items) do
    if it.k then lock_keys[#lock_keys + 1] = KEYS[it.k] end
  end
  if #lock_keys > 0 then owners = redis.call('MGET', unpack(lock_keys)) end
  local nlock, settled = 0, {}
  for t, it in ipairs(items) do
    local op, id, task, q = it.op, it.id, it.task, it.q
    local started, finished, err = it.started, it.finished, it.err
    local lock, done, result = it.k and KEYS[it.k], it.k and KEYS[it.k + 1],
      it.k and KEYS[it.k + 2]
    local applied = 0
    if out[t] == 2 then
      applied = 2
    elseif redis.call('LREM', processing, -1, it.msg) == 1 then
      applied = 1
      local owner = nil
      if it.k then
        -- The lock as the batch found it, unless an earlier item of the
        -- batch with the same id settled it: then it is released (nil),
        -- and the done marker it wrote says the rest.
        if not settled[lock] then owner = owners[nlock + 1] or nil end
        settled[lock] = true
        if owner == me then releases[#releases + 1] = lock end
        if hasdel then acked[#acked + 1] = id end
      end
      local runtime = it.rt
      if op == 'dead' then
        if started then
          event(events, 'task-failed', finished, id, task, q, me, runtime, err)
          tally(it, 'failed', 'failure')
        end
        redis.call('LPUSH', dead, it.extra)
        bump(counts, 'dead', 1)
        tally(it, 'dead', 'dead')
        if it.result ~= '' then
          redis.call('SET', done, 'dead', 'PX', done_ttl)
          redis.call('SET', result, it.result, 'PX', result_ttl)
          history(it)
          indexed(it)
        end
        event(events, 'task-dead', finished, id, task, q, me, nil, err, it.status)
      elseif op == 'retry' then
        redis.call('ZADD', delayed, it.due, it.extra)
        redis.call('SET', result, it.result, 'PX', result_ttl)
        bump(counts, 'retried', 1)
        tally(it, 'retried', 'retried')
        indexed(it)
        event(events, 'task-retried', finished, id, task, q, me, runtime, err, it.due)
      elseif owner ~= me and (owner or redis.call('EXISTS', done) == 1) then
        applied = 0
        bump(counts, 'duplicates', 1)
      else
        local status = it.status
        redis.call('SET', done, status, 'PX', done_ttl)
        redis.call('SET', result, it.result, 'PX', result_ttl)
        if it.e then redis.call('INCRBY', KEYS[it.e], it.by) end
        history(it)
        local field = status == 'success' and 'processed' or
          status == 'failure' and 'failed' or status
        bump(counts, field, 1)
        tally(it, field, status)
        indexed(it)
        if status == 'expired' then
          event(events, 'task-expired', finished, id, task, q, me, nil, err)
        else
          event(events, status == 'success' and 'task-succeeded' or 'task-failed',
            finished, id, task, q, me, runtime, err)
        end
      end
      if applied == 1 then
        if it.rb then
          bump(sub(runtime_by, it.ml), it.rb, 1)
          bump(runtime_sum, it.ml, it.rms)
        end
        if it.lb then
          bump(lateness, it.lb, 1)
          lateness_sum = (lateness_sum or 0) + tonumber(it.late)
        end
      end
    end
    if it.k then nlock = nlock + 1 end
    out[t] = applied
  end
  for j = 1, #releases, 1000 do
    redis.call('DEL', unpack(releases, j, math.min(j + 999, #releases)))
  end
  for j = 1, #acked, 1000 do
    redis.call('HDEL', deliveries, unpack(acked, j, math.min(j + 999, #acked)))
  end
  for field, c in pairs(counts) do
    hincr(stats, field, c)
    if field ~= 'duplicates' then hincr(whash, field, c) end
  end
  for m, fields in pairs(minutes) do
    local key = KEYS[m]
    local wrong = nil
    for f, c in pairs(fields) do
      if type(redis.pcall('HINCRBY', key, f, c)) == 'table' then
        wrong = badtype(key, 'hash')
        if wrong then break end
        redis.call('HSET', key, f, c)
      end
    end
    if wrong then
      warnings[#warnings + 1] = wrong .. ': that minute is not counted'
    else
      redis.call('EXPIRE', key, MINUTE_TTL)
    end
  end
  if metrics then
    for ml, t in pairs(tasks_by) do
      for state, c in pairs(t) do hincr(metrics, 'tasks\t' .. ml .. '\t' .. state, c) end
    end
    for ml, t in pairs(runtime_by) do
      for b, c in pairs(t) do hincr(metrics, 'runtime\t' .. ml .. '\t' .. b, c) end
    end
    for ml, ms in pairs(runtime_sum) do
      hincrf(metrics, 'runtime_sum\t' .. ml, string.format('%.3f', ms / 1000))
    end
    for b, c in pairs(lateness) do hincr(metrics, 'lateness\t' .. b, c) end
    if lateness_sum then
      hincrf(metrics, 'lateness_sum', string.format('%.3f', lateness_sum / 1000))
    end
  end
  if index and #members > 0 then
    for i = 1, #members, 1000 do
      redis.call('ZADD', index, unpack(members, i, math.min(i + 999, #members)))
    end
    local over = redis.call('ZCARD', index) - TASKS_MAX
    if over > 0 then redis.call('ZREMRANGEBYRANK', index, 0, over - 1) end
  end
  trim_events(events)
  out[#items + 1] = warnings
  return out
end)
