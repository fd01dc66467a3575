
-- Requeue: a worker's messages go back to their queues. tickq_requeue (a
-- worker at start-up and at a graceful stop), tickq_requeue_orphan (one
-- message), tickq_reap (every dead worker's).
--
-- requeue_plan(msgs): where each message goes back to: its queue, or the
-- dead letters when it has no readable queue or its queue key is of the
-- wrong type (so nothing is dropped). Only reads: returns the plan, or nil
-- and a WRONGTYPE error reply when a dead letter is needed and P:dead is
-- not a list. requeue_apply(w, msgs, plan, R): puts each message back at
-- the consuming end of its queue and releases w's lock on it; with
-- R.deliveries (the reaper: w crashed) it counts the redelivery there, for
-- the poison limit. requeue(w, processing, R): both for a whole processing
-- list, oldest first, then deletes it. The callers check processing, stats
-- and deliveries first; after the plan every write is to a checked key
-- (the lock GET runs under pcall), so nothing fails after the first write.
-- R holds the dead list, stats, the lock and queue stems (a message's
-- lock and queue are known only once it is read), now and deliveries.
local function requeue_plan(msgs, R)
  local plan, need_dead = {}, false
  for i = 1, #msgs do
    local q, id, why = nil, nil, 'no valid queue field'
    local ok, m = pcall(cjson.decode, msgs[i])
    if ok and type(m) == 'table' and type(m.id) == 'string' then id = m.id end
    q = ok and queue_of(m) or nil
    if q then
      local bad = badtype(R.queue .. q, 'list')
      if bad then q, why = nil, bad end
    end
    need_dead = need_dead or not q
    plan[i] = {id = id, q = q, why = why}
  end
  if need_dead then
    local e = check{R.dead, 'list'}
    if e then return nil, e end
  end
  return plan
end

local function requeue_apply(w, msgs, plan, R)
  for i = 1, #msgs do
    local p = plan[i]
    if p.id then
      local lock = R.lock .. p.id
      if redis.pcall('GET', lock) == w then redis.call('DEL', lock) end
      if R.deliveries then hincr(R.deliveries, p.id, 1) end
    end
    if p.q then
      redis.call('RPUSH', R.queue .. p.q, msgs[i])
    else
      redis.call('LPUSH', R.dead, dead_letter_json('undecodable', 'requeue: ' .. p.why, w,
        R.now, msgs[i]))
      hincr(R.stats, 'dead', 1)
    end
  end
end

local function requeue(w, processing, R)
  local msgs = redis.call('LRANGE', processing, 0, -1)
  local plan, e = requeue_plan(msgs, R)
  if not plan then return nil, e end
  requeue_apply(w, msgs, plan, R)
  redis.call('DEL', processing)
  if #msgs > 0 then hincr(R.stats, 'requeued', #msgs) end
  return #msgs
end

-- tickq_requeue_orphan: KEYS: processing, dead, stats, lock stem, queue
-- stem. ARGV: me, now, msg. Requeues msg if it is still in processing;
-- returns 1 or 0. Types and the plan come first.
fn('requeue_orphan', function(KEYS, ARGV)
  local ok, e = distinct('requeue_orphan', KEYS, 5)
  if not ok then return e end
  e = numbers('requeue_orphan', ARGV, {2, 0, NUMBER_MAX})
  if e then return e end
  if type(ARGV[3]) ~= 'string' then
    return redis.error_reply('ERR requeue_orphan: no message')
  end
  e = check{KEYS[1], 'list', KEYS[3], 'hash'}
  if e then return e end
  local R = {dead = KEYS[2], stats = KEYS[3], lock = KEYS[4], queue = KEYS[5],
    now = tonumber(ARGV[2])}
  local msgs = {ARGV[3]}
  local plan, e2 = requeue_plan(msgs, R)
  if not plan then return e2 end
  if redis.call('LREM', KEYS[1], 1, ARGV[3]) == 0 then return 0 end
  requeue_apply(ARGV[1], msgs, plan, R)
  hincr(KEYS[3], 'requeued', 1)
  return 1
end)

-- tickq_requeue: KEYS: processing, dead, stats, workers, worker hash, lock
-- stem, queue stem. ARGV: me, now, deregister ("1": also leave P:workers
-- and delete the worker hash). Returns how many were requeued. Types and
-- the plan come first (ZREM and DEL do not fail on a zset).
fn('requeue', function(KEYS, ARGV)
  local ok, e = distinct('requeue', KEYS, 7)
  if not ok then return e end
  e = numbers('requeue', ARGV, {2, 0, NUMBER_MAX})
  if e then return e end
  e = check{KEYS[1], 'list', KEYS[3], 'hash', KEYS[4], 'zset'}
  if e then return e end
  local R = {dead = KEYS[2], stats = KEYS[3], lock = KEYS[6], queue = KEYS[7],
    now = tonumber(ARGV[2])}
  local n, e2 = requeue(ARGV[1], KEYS[1], R)
  if not n then return e2 end
  if ARGV[3] == '1' then
    redis.call('ZREM', KEYS[4], ARGV[1])
    redis.call('DEL', KEYS[5])
  end
  return n
end)

-- tickq_reap: KEYS: workers, dead, stats, deliveries, then the stems of
-- processing lists, locks, queues and worker hashes (a dead worker's keys
-- are known only once P:workers is read). ARGV: now, liveness. Returns
-- {worker, moved, ...}; moved is -1 for a dead worker whose messages
-- cannot be put anywhere now (its processing key, or P:dead when needed,
-- is of the wrong type): it is left as it is, and reported each time,
-- rather than dropped. Types and each worker's plan come before that
-- worker's first write.
fn('reap', function(KEYS, ARGV)
  local ok, e = distinct('reap', KEYS, 8)
  if not ok then return e end
  e = numbers('reap', ARGV, {1, 0, NUMBER_MAX, 2, 0, NUMBER_MAX})
  if e then return e end
  e = check{KEYS[1], 'zset', KEYS[3], 'hash', KEYS[4], 'hash'}
  if e then return e end
  local now = tonumber(ARGV[1])
  local R = {dead = KEYS[2], stats = KEYS[3], deliveries = KEYS[4], lock = KEYS[6],
    queue = KEYS[7], now = now}
  -- Dead: a heartbeat older than the liveness window (as deliver() reads
  -- it, an age of exactly the window is still alive).
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',
    '(' .. string.format('%d', now - tonumber(ARGV[2])))
  local out = {}
  for _, w in ipairs(dead) do
    local n = -1
    if not badtype(KEYS[5] .. w, 'list') then
      n = requeue(w, KEYS[5] .. w, R)
      if n then
        redis.call('ZREM', KEYS[1], w)
        redis.call('DEL', KEYS[8] .. w)
      else
        n = -1
      end
    end
    out[#out + 1] = w
    out[#out + 1] = n
  end
  return out
end)
