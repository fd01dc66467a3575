
-- tickq_complete: acknowledges a batch of finished messages and applies
-- their outcomes. Every key is one queue's (the batch is of one queue's
-- processing list). KEYS: processing, stats, dead, delayed, deliveries,
-- events, tasks (the finished-task index), metrics, then the items' own
-- keys. ARGV: me, final_ttl ms (a final result's: it is the
-- done marker), result_ttl ms (a retrying one's), then the items.
--
-- The items travel as one MessagePack map of columns (common/broker.h,
-- tq_broker_pack_*): n, the number of items, and per field an array of n
-- values, "" (0 for a KEYS index) where an item has none, or one value
-- when all items have the same (the C side sends it so: a batch's op,
-- status, queue and most fields are the same for every item). Named
-- columns keep C and Lua in step by name, and a column's name is decoded
-- once per batch instead of once per item (decoding the names of per-item
-- maps was a seventh of Redis' time per task); a shared value is decoded
-- and checked once. Numbers that go into Redis commands travel as decimal
-- strings (a Lua number would be written with 14 digits, 1e+14 for
-- 10^14); k, h, e, m and rms are integers:
--
--   op        'done', 'retry' or 'dead'
--   msg       the message's exact bytes in processing
--   id, task  its id ("" when unreadable) and task name
--   status    success, failure, expired (done); retrying; the dead reason
--   result    the result JSON ("" for none: a dead letter without a run)
--   extra     the dead letter (dead) or the next attempt (retry)
--   finished  ms
--   err       the error, for the events
--   q         the queue it was taken from
--   ml        its metrics labels, "<queue>\t<task label>" (the label is the
--             task's name, or "(unknown)" for a task the worker does not
--             know, so that messages cannot make up label values)
--   ix        its member of the task index, "" when it writes none
--   due       retry: when the next attempt is due (ms)
--   by        the task's effect: what INCRBY adds to KEYS[e]
--   rb        the runtime bucket, "" when it did not run; else rt is the
--             runtime in seconds (a string) and rms in ms
--   late, lb  the lateness ms and its bucket, "" unless it is a
--             scheduled first attempt
--   k         KEYS[k], KEYS[k + 1]: its lock and result (0 when id is "")
--   h, e, m   KEYS indexes of its schedule's history, its effect key and
--             its finished minute's counters (h and e 0 when none)
--
-- A final result is the done marker (00-lib's final()), so a task is done
-- and its result written in one SET. A result is applied only if its lock
-- is still this worker's, or has expired and the task is not done: a lock
-- held by another worker means another delivery runs the task (ours was
-- taken over while we looked dead), and that one applies it. While the
-- lock is ours nobody else can have completed the task, so the result
-- needs no look-up then. Because
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
-- Nothing fails after the first write: the items, the six keys' types
-- and every effect key are checked in a first pass that only reads; the
-- locks are read with MGET (a lock of the wrong type reads as none), a
-- result with GET under pcall (a result key of the wrong type reads as not
-- done, and the SET overwrites it), and the history LPUSH runs under pcall
-- (a failure there skips that write);
-- every other write is to a checked key, or a SET, DEL or HDEL, which do
-- not fail on any type. The monitoring keys never
-- refuse a batch: a broken chart must not stop the work. The index and
-- P:{q}:metrics are one key each, so their types are read in the first pass
-- and a wrong one skips their writes with a warning. A minute key's
-- HINCRBYs run under pcall (a failed one writes nothing), which costs
-- nothing while it is a hash; only after a failure is its type read, to
-- tell a wrong type (skip the key, warn) from a field that holds no
-- integer (start it again, like hincr).
-- What each column's values must be. A KEYS index (k, h, e, m) is checked
-- by the item's KEYS[i], which is non-nil only for an integer in range;
-- due, by and late are checked where an item uses them.
local STRING, DECIMAL, NUMBER, ANY = 1, 2, 3, 4
local ITEMS_MAX = 1000 -- items of a batch (the worker sends at most 64)
local COLUMNS = {op = STRING, msg = STRING, id = STRING, task = STRING,
  status = STRING, result = STRING, extra = STRING, finished = DECIMAL, err = STRING,
  q = STRING, ml = STRING, ix = STRING, due = ANY, by = ANY, rb = STRING, rt = STRING,
  rms = NUMBER, late = ANY, lb = STRING, k = ANY, h = ANY, e = ANY, m = ANY}

-- true when s is a decimal integer string that Redis reads as one
-- (ZADD, INCRBY) and tonumber() exactly.
local function decimal(s)
  return type(s) == 'string' and #s <= 18 and string.find(s, '^%-?%d+$') ~= nil
end

-- Raises an error unless x is what a column of kind needs, or a number
-- where it needs a string (Redis commands take a number as its decimal
-- text, and nothing else reads it), but never NaN: strings become table
-- keys, and a NaN key would fail after the first write. The checks are
-- operators that fail on a wrong type (x .. '' on anything but a string
-- or a number, x - x on anything but a number or a numeric string, and is
-- 0 only when x is finite), caught by one pcall per batch: a type() per
-- value cost a tenth of complete's time.
local function check_value(kind, x)
  if kind == STRING then
    local _ = x .. ''
    if x ~= x then error('NaN') end
  elseif kind == DECIMAL then
    x = x .. ''
    if #x > 18 or not string.find(x, '^%-?%d+$') then error('not a decimal') end
  elseif kind == NUMBER then
    if x - x ~= 0 then error('not a finite number') end
  elseif x == nil then
    error('missing')
  end
end

-- Raises an error unless every column of c is an array of n values or one
-- value, each as check_value wants it.
local function check_columns(c, n)
  for f, kind in pairs(COLUMNS) do
    local v = c[f]
    if type(v) ~= 'table' then
      check_value(kind, v)
    elseif kind == STRING then
      for t = 1, n do
        local x = v[t]
        local _ = x .. ''
        if x ~= x then error('NaN') end
      end
    elseif kind ~= ANY then
      for t = 1, n do check_value(kind, v[t]) end
    end
  end
end

-- The batch's columns, each an array of n values, or nil when n is over
-- ITEMS_MAX, a column is missing, an item lacks a field or a key it
-- needs, or its keys collide with others: everything a write will use is
-- checked before the first. A column that arrives as one value (not an
-- array) is that value for every item: it is checked once and spread.
local function columns(packed, KEYS)
  local ok, c = pcall(cmsgpack.unpack, packed or '')
  if not ok or type(c) ~= 'table' then return nil end
  local n = c.n
  if type(n) ~= 'number' or n < 0 or n > ITEMS_MAX or n ~= math.floor(n) then
    return nil
  end
  if not pcall(check_columns, c, n) then return nil end
  for f in pairs(COLUMNS) do
    local v = c[f]
    if type(v) ~= 'table' then
      local all = {}
      for t = 1, n do all[t] = v end
      c[f] = all
    end
  end
  local OP, ID, RESULT, DUE, BY, LATE, LB = c.op, c.id, c.result, c.due, c.by, c.late,
    c.lb
  local K, H, E, M = c.k, c.h, c.e, c.m
  -- No effect key may name a key another write of the batch makes of
  -- another type (distinct() keeps every item key off the fixed keys: a
  -- result SET over P:{q}:stats would make a later HINCRBY fail).
  local effects = false
  for t = 1, n do
    local op, k, h, e, m = OP[t], K[t], H[t], E[t], M[t]
    -- KEYS[i] is non-nil only for an integer i in range, and the first
    -- eight keys are the fixed ones; 0 is none.
    if not ((op == 'done' or op == 'retry' or op == 'dead')
        and KEYS[m] and m >= 9
        and (k == 0 or (KEYS[k] and k >= 9 and KEYS[k + 1]))
        and (h == 0 or (KEYS[h] and h >= 9))
        and (e == 0 or (KEYS[e] and e >= 9 and decimal(BY[t])))
        and (op ~= 'retry' or decimal(DUE[t]))
        and (LB[t] == '' or decimal(LATE[t]))) then
      return nil
    end
    -- Every op but a dead letter without a run writes the result and needs
    -- the task's keys.
    if (op ~= 'dead' or RESULT[t] ~= '') and (ID[t] == '' or k == 0) then return nil end
    if e ~= 0 then effects = true end
  end
  if effects then
    local others = {}
    for t = 1, n do
      local k, h = K[t], H[t]
      if k ~= 0 then others[KEYS[k]], others[KEYS[k + 1]] = true, true end
      if h ~= 0 then others[KEYS[h]] = true end
      others[KEYS[M[t]]] = true
    end
    for t = 1, n do
      if E[t] ~= 0 and others[KEYS[E[t]]] then return nil end
    end
  end
  return c, n
end

fn('complete', function(KEYS, ARGV)
  local ok, e0 = distinct('complete', KEYS, 8)
  if not ok then return e0 end
  for i = 2, 3 do
    local ttl = ARGV[i] or ''
    if #ttl > 15 or not string.find(ttl, '^[1-9]%d*$') then
      return redis.error_reply('ERR complete: argument ' .. i .. ' is not a TTL in ms')
    end
  end
  local e = check{KEYS[1], 'list', KEYS[2], 'hash', KEYS[3], 'list', KEYS[4], 'zset',
    KEYS[5], 'hash', KEYS[6], 'stream'}
  if e then return e end
  local cols, n = columns(ARGV[4], KEYS)
  if not cols then
    return redis.error_reply('ERR complete: the items are not a MessagePack map of ' ..
      'columns of at most ' .. ITEMS_MAX .. ' items, an item lacks a field or a key, ' ..
      'or a key of an item names a key the batch writes otherwise')
  end
  local OP, MSG, ID, TASK, STATUS, RESULT, EXTRA, ERR, Q, ML = cols.op, cols.msg,
    cols.id, cols.task, cols.status, cols.result, cols.extra, cols.err, cols.q, cols.ml
  local FIN, IX, DUE, BY, RB, RT, RMS, LATE, LB = cols.finished, cols.ix, cols.due,
    cols.by, cols.rb, cols.rt, cols.rms, cols.late, cols.lb
  local K, H, E, M = cols.k, cols.h, cols.e, cols.m
  local me, final_ttl, result_ttl = ARGV[1], ARGV[2], ARGV[3]
  local processing, stats, dead, delayed, deliveries, events =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
  local out, warnings = {}, {}
  for t = 1, n do
    if OP[t] == 'done' and E[t] ~= 0 then
      local ekey, by = KEYS[E[t]], BY[t]
      local v = redis.pcall('GET', ekey)
      local bad = nil
      if type(v) == 'table' then
        bad = 'holds a value of the wrong type'
      elseif v and not (v == '0' or string.find(v, '^%-?[1-9]%d*$')) then
        bad = 'holds ' .. string.format('%q', string.sub(v, 1, 40)) .. ', not an integer'
      elseif v and #v > 18 then
        bad = 'holds an integer too large to add to'
      elseif math.abs(tonumber(by)) >= 1e15 then
        bad = 'cannot take an increment of ' .. by
      end
      if bad then
        out[t] = 2
        warnings[#warnings + 1] = 'the effect key ' .. ekey .. ' ' .. bad
      end
    end
  end
  local index, metrics = KEYS[7], KEYS[8]
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
  -- (Per item, the code below calls as few functions as it can, and
  -- appends keep their own count: both cost more than the work in Lua 5.1.)
  local counts, members, nmembers, minutes = {}, {}, 0, {}
  local tasks_by, runtime_by, runtime_sum, lateness, lateness_sum = {}, {}, {}, {}, nil
  local function bump(tbl, k, by) tbl[k] = (tbl[k] or 0) + by end
  -- One completion in the counters: field of its finished minute's hash,
  -- state of its labelled counter.
  local function tally(t, field, state)
    local m, ml = minutes[M[t]], tasks_by[ML[t]]
    if not m then
      m = {}
      minutes[M[t]] = m
    end
    if not ml then
      ml = {}
      tasks_by[ML[t]] = ml
    end
    m[field] = (m[field] or 0) + 1
    ml[state] = (ml[state] or 0) + 1
  end
  local function indexed(t)
    if IX[t] ~= '' then
      members[nmembers + 1], members[nmembers + 2] = FIN[t], IX[t]
      nmembers = nmembers + 2
    end
  end
  local function history(t)
    if H[t] == 0 then return end
    local key = KEYS[H[t]]
    local r = redis.pcall('LPUSH', key, RESULT[t])
    if type(r) == 'table' then
      warnings[#warnings + 1] = 'the history key ' .. key ..
        ' holds a value of the wrong type: not written'
    else
      redis.call('LTRIM', key, '0', '99')
    end
  end
  -- The locks of the batch in one read, released in one DEL at the end.
  local lock_keys, owners, releases, acked = {}, {}, {}, {}
  local nlocks, nreleases, nacked = 0, 0, 0
  for t = 1, n do
    if K[t] ~= 0 then
      nlocks = nlocks + 1
      lock_keys[nlocks] = KEYS[K[t]]
    end
  end
  if nlocks > 0 then owners = redis.call('MGET', unpack(lock_keys)) end
  local nlock, settled = 0, {}
  for t = 1, n do
    local op, id, task, q, k = OP[t], ID[t], TASK[t], Q[t], K[t]
    local finished, err = FIN[t], ERR[t]
    local lock, result
    if k ~= 0 then lock, result = KEYS[k], KEYS[k + 1] end
    local applied = 0
    if out[t] == 2 then
      applied = 2
    elseif redis.call('LREM', processing, '-1', MSG[t]) == 1 then
      applied = 1
      local owner = nil
      if lock then
        -- The lock as the batch found it, unless an earlier item of the
        -- batch with the same id settled it: then it is released (nil),
        -- and the result it wrote says the rest.
        if not settled[lock] then owner = owners[nlock + 1] or nil end
        settled[lock] = true
        if owner == me then
          nreleases = nreleases + 1
          releases[nreleases] = lock
        end
        if hasdel then
          nacked = nacked + 1
          acked[nacked] = id
        end
      end
      local runtime = RT[t]
      if op == 'dead' then
        if RB[t] ~= '' then
          event(events, 'task-failed', finished, id, task, q, me, runtime, err)
          tally(t, 'failed', 'failure')
        end
        redis.call('LPUSH', dead, EXTRA[t])
        bump(counts, 'dead', 1)
        tally(t, 'dead', 'dead')
        if RESULT[t] ~= '' then
          redis.call('SET', result, RESULT[t], 'PX', final_ttl)
          history(t)
          indexed(t)
        end
        event(events, 'task-dead', finished, id, task, q, me, nil, err, STATUS[t])
      elseif op == 'retry' then
        redis.call('ZADD', delayed, DUE[t], EXTRA[t])
        redis.call('SET', result, RESULT[t], 'PX', result_ttl)
        bump(counts, 'retried', 1)
        tally(t, 'retried', 'retried')
        indexed(t)
        event(events, 'task-retried', finished, id, task, q, me, runtime, err, DUE[t])
      elseif owner ~= me and (owner or final(redis.pcall('GET', result))) then
        applied = 0
        bump(counts, 'duplicates', 1)
      else
        local status = STATUS[t]
        redis.call('SET', result, RESULT[t], 'PX', final_ttl)
        if E[t] ~= 0 then redis.call('INCRBY', KEYS[E[t]], BY[t]) end
        history(t)
        local field = status == 'success' and 'processed' or
          status == 'failure' and 'failed' or status
        counts[field] = (counts[field] or 0) + 1
        tally(t, field, status)
        indexed(t)
        if status == 'expired' then
          event(events, 'task-expired', finished, id, task, q, me, nil, err)
        else
          event(events, status == 'success' and 'task-succeeded' or 'task-failed',
            finished, id, task, q, me, runtime, err)
        end
      end
      if applied == 1 then
        local rb, ml = RB[t], ML[t]
        if rb ~= '' then
          local by = runtime_by[ml]
          if not by then
            by = {}
            runtime_by[ml] = by
          end
          by[rb] = (by[rb] or 0) + 1
          runtime_sum[ml] = (runtime_sum[ml] or 0) + RMS[t]
        end
        if LB[t] ~= '' then
          bump(lateness, LB[t], 1)
          lateness_sum = (lateness_sum or 0) + tonumber(LATE[t])
        end
      end
    end
    if lock then nlock = nlock + 1 end
    out[t] = applied
  end
  for j = 1, nreleases, 1000 do
    redis.call('DEL', unpack(releases, j, math.min(j + 999, nreleases)))
  end
  for j = 1, nacked, 1000 do
    redis.call('HDEL', deliveries, unpack(acked, j, math.min(j + 999, nacked)))
  end
  for field, c in pairs(counts) do hincr(stats, field, c) end
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
  if index and nmembers > 0 then
    for i = 1, nmembers, 1000 do
      redis.call('ZADD', index, unpack(members, i, math.min(i + 999, nmembers)))
    end
    local over = redis.call('ZCARD', index) - TASKS_MAX
    if over > 0 then redis.call('ZREMRANGEBYRANK', index, 0, over - 1) end
  end
  trim_events(events)
  out[n + 1] = warnings
  return out
end)
