
-- Delivery: tickq_fetch takes a batch of messages from a queue into the
-- worker's processing list of that queue, tickq_claim claims one that
-- BLMOVE put there. Both claim each message with deliver(). Every key is
-- the queue's (P:{<queue>}:...), so each call touches one cluster slot.
--
-- read(msg, ttl): the message's id, task and lock TTL (ms), or nil when
-- its id cannot be read (the worker dead-letters it). The id and task are
-- read without cjson when the message starts the way tickq writes it and
-- has no timeout field; anything else is decoded. A timeout outside the
-- range the worker's decoder accepts (0, TIMEOUT_MAX] leaves the lock at
-- the worker's default ttl: the worker then dead-letters the message and
-- releases the lock.
local function read(msg, ttl)
  local id, task = string.match(msg, '^{"v":1,"id":"([^"\\]+)","task":"([^"\\]*)"')
  if not id or string.find(msg, '"timeout"', 1, true) then
    local ok, m = pcall(cjson.decode, msg)
    if not ok or type(m) ~= 'table' or type(m.id) ~= 'string' or #m.id == 0
        or #m.id > ID_MAX then
      return nil
    end
    id = m.id
    task = type(m.task) == 'string' and m.task or ''
    local t = tonumber(m.timeout)
    if t and t > 0 and t <= TIMEOUT_MAX then ttl = math.floor(t * 1000) end
  elseif #id > ID_MAX then
    return nil
  end
  return id, task, ttl
end

-- deliver(msg, id, task, ttl, done, K): claims a message whose id was
-- read; done says whether it is done (its result is final). Returns 1 delivered
-- (locked), -1 duplicate (done, or locked by this or another live
-- worker), -2 dead-lettered here: poison (delivered more than
-- max_deliveries times), or a lock key of the wrong type (the message
-- cannot be locked). A lock whose owner's heartbeat (in the queue's
-- P:{q}:consumers) is older than liveness is taken over: its message sits
-- in a dead worker's processing list, and when the reaper requeues it, it
-- is done or locked.
--
-- Deliveries are 1 plus the redeliveries the reaper counted in
-- P:{q}:deliveries; K.redelivered says whether that hash has anything at all,
-- so the common case costs no lookup. A redelivery is recorded as a
-- task-received event whose info is the delivery number; a first delivery
-- records nothing here (a task's events are its outcome, and for a task
-- that is not fast task-received and task-started when it starts). The
-- lock and result keys are the declared stems K.lock and K.result followed by
-- the id, which is known only once the message is read.
--
-- The first write is the SET of the lock, under pcall: a lock key of the
-- wrong type fails it with nothing written. Everything after it writes
-- keys whose types the caller checked.
local function deliver_dead(K, reason, err, now, msg)
  redis.call('LPUSH', K.dead, dead_letter_json(reason, err, K.me, now, msg))
  hincr(K.stats, 'dead', 1)
end

local function deliver(msg, id, task, ttl, done, K)
  local me, now = K.me, K.now
  if done then
    if K.redelivered then redis.call('HDEL', K.deliveries, id) end
    K.dups = K.dups + 1
    return -1
  end
  local lock = K.lock .. id
  -- The default PX as a string made once: a number is formatted anew by
  -- every call.
  local px = ttl == K.ttl and K.px or ttl + K.margin
  local owner = redis.pcall('SET', lock, me, 'NX', 'GET', 'PX', px)
  -- false when the lock was free: the common case costs no type().
  if owner and type(owner) == 'table' then
    deliver_dead(K, 'lock-key', 'the lock key ' .. lock ..
      ' holds a value of the wrong type: the message cannot be locked', now, msg)
    event(K.events, 'task-dead', now, id, task, K.queue, me, nil, 'lock key', 'lock-key')
    return -2
  end
  if owner then
    local hb = redis.call('ZSCORE', K.consumers, owner)
    if owner == me or (hb and now - tonumber(hb) <= K.liveness) then
      K.dups = K.dups + 1
      return -1
    end
    redis.call('SET', lock, me, 'PX', px)
  end
  if K.redelivered then
    local d = 1 + (tonumber(redis.call('HGET', K.deliveries, id)) or 0)
    if d > K.maxdel then
      redis.call('HDEL', K.deliveries, id)
      redis.call('DEL', lock)
      deliver_dead(K, 'poison', 'delivered ' .. d .. ' times; the limit is ' .. K.maxdel,
        now, msg)
      event(K.events, 'task-dead', now, id, task, K.queue, me, nil,
        'delivered ' .. d .. ' times', 'poison')
      return -2
    end
    if d > 1 then
      event(K.events, 'task-received', now, id, task, K.queue, me, nil, nil, d)
    end
  end
  return 1
end

-- The keys and arguments both functions start with. KEYS: processing,
-- consumers, stats, deliveries, dead, events, paused, lock stem, result
-- stem, queue. ARGV: me, now, liveness, ttl, margin, max_deliveries, then
-- the queue's name. Returns the context, or nil and an error reply: the
-- types of all keys but the locks are checked before the first write.
local function deliver_start(KEYS, ARGV)
  -- A lock needs a TTL of 1 ms at least, and max_deliveries 0 would make
  -- every redelivered message poison.
  local ok, e = distinct('deliver', KEYS, 10)
  if not ok then return nil, e end
  e = numbers('deliver', ARGV, {2, 0, NUMBER_MAX, 3, 0, NUMBER_MAX, 4, 1, NUMBER_MAX,
    5, 0, NUMBER_MAX, 6, 1, NUMBER_MAX})
  if e then return nil, e end
  if type(ARGV[7]) ~= 'string' then
    return nil, redis.error_reply('ERR deliver: no queue name')
  end
  e = check{KEYS[1], 'list', KEYS[2], 'zset', KEYS[3], 'hash', KEYS[4], 'hash',
    KEYS[5], 'list', KEYS[6], 'stream', KEYS[10], 'list'}
  if e then return nil, e end
  return {processing = KEYS[1], consumers = KEYS[2], stats = KEYS[3],
    deliveries = KEYS[4], dead = KEYS[5], events = KEYS[6], paused = KEYS[7],
    lock = KEYS[8], result = KEYS[9], queue_key = KEYS[10], queue = ARGV[7],
    me = ARGV[1], now = tonumber(ARGV[2]),
    liveness = tonumber(ARGV[3]), ttl = tonumber(ARGV[4]), margin = tonumber(ARGV[5]),
    maxdel = tonumber(ARGV[6]), dups = 0,
    px = string.format('%d', tonumber(ARGV[4]) + tonumber(ARGV[5])),
    redelivered = redis.call('HLEN', KEYS[4]) > 0}
end

local function deliver_end(K)
  if K.dups > 0 then hincr(K.stats, 'duplicates', K.dups) end
  trim_events(K.events)
end

-- tickq_fetch: KEYS and ARGV as deliver_start, then ARGV max. Returns
-- {paused, delivered, msg, id, ...}: paused is 1 when the queue is paused
-- (P:{q}:paused exists: nothing is taken); delivered is 1, or 0 when the
-- id could not be read (the worker dead-letters it).
--
-- A batch costs a few commands, not a few per message: the oldest
-- messages are read with one LRANGE, moved into processing with one LTRIM
-- and one LPUSH (oldest first, as BLMOVE would have), and their results
-- (the done markers) read with one MGET; each message then costs only its
-- lock (and an LREM out of processing when it is a duplicate). Duplicates
-- do not count towards max, and at most 2 * max + 16 messages are taken,
-- so a queue full of duplicates cannot stall Redis. (A result key of the
-- wrong type reads as missing, here and in claim: the lock still keeps the
-- message from running twice at once, and its completion overwrites it.)
fn('fetch', function(KEYS, ARGV)
  local K, e = deliver_start(KEYS, ARGV)
  if not K then return e end
  local max = string.match(ARGV[8] or '', '^%d+$') and tonumber(ARGV[8])
  if not max or max < 1 or max > 1000 then
    return redis.error_reply('ERR fetch: max must be a number from 1 to 1000')
  end
  if redis.call('EXISTS', K.paused) == 1 then return {1} end
  local out, no, n, taken = {0}, 1, 0, 0
  while n < max and taken < 2 * max + 16 do
    local want = math.min(max - n, 2 * max + 16 - taken)
    local msgs = redis.call('LRANGE', K.queue_key, -want, -1)
    if #msgs == 0 then break end
    -- The slice goes into processing in the same breath as it leaves the
    -- queue, oldest first as BLMOVE would put it: whatever happens next,
    -- every message is in one of the two.
    redis.call('LTRIM', K.queue_key, 0, -#msgs - 1)
    local m = #msgs
    local oldest_first = {}
    for j = m, 1, -1 do oldest_first[m - j + 1] = msgs[j] end
    for j = 1, m, 1000 do
      redis.call('LPUSH', K.processing, unpack(oldest_first, j, math.min(j + 999, m)))
    end
    taken = taken + m
    -- (Appends keep their own count: t[#t + 1] costs a search for the end
    -- in Lua 5.1.)
    local ids, tasks, ttls, result_keys, r = {}, {}, {}, {}, 0
    for j = m, 1, -1 do
      local id, task, ttl = read(msgs[j], K.ttl)
      ids[j], tasks[j], ttls[j] = id or false, task, ttl
      if id then
        r = r + 1
        result_keys[r] = K.result .. id
      end
    end
    local dones = {}
    for j = 1, r, 1000 do
      local part = redis.call('MGET', unpack(result_keys, j, math.min(j + 999, r)))
      -- A missing result is false: no call of final() for it.
      for x = 1, #part do dones[j + x - 1] = part[x] and final(part[x]) end
    end
    local d = 0
    for j = m, 1, -1 do
      local c = 0
      if ids[j] then
        d = d + 1
        c = deliver(msgs[j], ids[j], tasks[j], ttls[j], dones[d], K)
      end
      if c >= 0 then
        n = n + 1
        out[no + 1], out[no + 2], out[no + 3] = c, msgs[j], ids[j] or ''
        no = no + 3
      else
        -- A duplicate or a dead letter leaves processing; the batch is at
        -- its head, so LREM finds it at once.
        redis.call('LREM', K.processing, '1', msgs[j])
      end
    end
  end
  deliver_end(K)
  return out
end)

-- tickq_claim: after BLMOVE put msg into processing. KEYS and ARGV as
-- deliver_start, then ARGV msg. Returns {code, id}: 1 delivered, 0 id
-- unreadable, -1 duplicate, -2 dead-lettered (see deliver), or -3 when the
-- queue is paused (the message goes back to the consuming end of its
-- queue). A message that is not delivered leaves processing.
fn('claim', function(KEYS, ARGV)
  local K, e = deliver_start(KEYS, ARGV)
  if not K then return e end
  local msg = ARGV[8]
  if not msg then return redis.error_reply('ERR claim: no message') end
  if redis.call('EXISTS', K.paused) == 1 then
    -- Back only if it was still here: the reaper may have requeued it.
    if redis.call('LREM', K.processing, 1, msg) == 1 then
      redis.call('RPUSH', K.queue_key, msg)
    end
    return {-3, ''}
  end
  local id, task, ttl = read(msg, K.ttl)
  if not id then return {0, ''} end
  local c = deliver(msg, id, task, ttl, final(redis.call('MGET', K.result .. id)[1]), K)
  if c < 0 then redis.call('LREM', K.processing, 1, msg) end
  deliver_end(K)
  return {c, id}
end)
