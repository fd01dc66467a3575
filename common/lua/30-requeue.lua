
-- Requeue: a worker's messages of one queue go back to it. tickq_requeue
-- (a worker at start-up and at a graceful stop), tickq_requeue_orphan (one
-- message), tickq_reap (the queue's dead consumers'). Every key is the
-- queue's: a message goes back to the queue it was taken from.
--
-- requeue(w, processing, R): puts every message of processing back at the
-- consuming end of the queue, oldest first, releases w's lock on each,
-- and deletes processing; with R.deliveries (the reaper: w crashed) it
-- counts each redelivery there, for the poison limit. When the queue key
-- is not a list the messages become dead letters instead (nothing is
-- dropped), and then P:{q}:dead must be a list. The callers check
-- processing, stats and deliveries first; the rest is checked here before
-- the first write (the lock GET runs under pcall), so nothing fails after
-- it. R holds the queue, dead list, stats, lock stem, now and deliveries.
-- Returns the number requeued, or nil and an error reply.
local function requeue_to(R)
  local bad = badtype(R.queue, 'list')
  if bad then
    local e = check{R.dead, 'list'}
    if e then return nil, e end
  end
  return bad or false
end

local function requeue_msgs(w, msgs, bad, R)
  for i = 1, #msgs do
    local id = read(msgs[i], 0)
    if id then
      local lock = R.lock .. id
      if redis.pcall('GET', lock) == w then redis.call('DEL', lock) end
      if R.deliveries then hincr(R.deliveries, id, 1) end
    end
    if not bad then
      redis.call('RPUSH', R.queue, msgs[i])
    else
      redis.call('LPUSH', R.dead, dead_letter_json('undecodable', 'requeue: ' .. bad, w,
        R.now, msgs[i]))
      hincr(R.stats, 'dead', 1)
    end
  end
end

local function requeue(w, processing, R)
  local bad, e = requeue_to(R)
  if bad == nil then return nil, e end
  local msgs = redis.call('LRANGE', processing, 0, -1)
  requeue_msgs(w, msgs, bad, R)
  redis.call('DEL', processing)
  if #msgs > 0 then hincr(R.stats, 'requeued', #msgs) end
  return #msgs
end

-- tickq_requeue_orphan: KEYS: processing, dead, stats, lock stem, queue.
-- ARGV: me, now, msg. Requeues msg if it is still in processing; returns 1
-- or 0. Types come first.
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
  local bad, e2 = requeue_to(R)
  if bad == nil then return e2 end
  if redis.call('LREM', KEYS[1], 1, ARGV[3]) == 0 then return 0 end
  requeue_msgs(ARGV[1], {ARGV[3]}, bad, R)
  hincr(KEYS[3], 'requeued', 1)
  return 1
end)

-- tickq_requeue: KEYS: processing, dead, stats, consumers, lock stem,
-- queue. ARGV: me, now, leave ("1": also leave the queue's consumers).
-- Returns how many were requeued. Types come first (ZREM does not fail on
-- a zset).
fn('requeue', function(KEYS, ARGV)
  local ok, e = distinct('requeue', KEYS, 6)
  if not ok then return e end
  e = numbers('requeue', ARGV, {2, 0, NUMBER_MAX})
  if e then return e end
  e = check{KEYS[1], 'list', KEYS[3], 'hash', KEYS[4], 'zset'}
  if e then return e end
  local R = {dead = KEYS[2], stats = KEYS[3], lock = KEYS[5], queue = KEYS[6],
    now = tonumber(ARGV[2])}
  local n, e2 = requeue(ARGV[1], KEYS[1], R)
  if not n then return e2 end
  if ARGV[3] == '1' then redis.call('ZREM', KEYS[4], ARGV[1]) end
  return n
end)

-- tickq_reap: KEYS: consumers, dead, stats, deliveries, then the stems of
-- processing lists and locks, then the queue. ARGV: now, liveness.
-- Requeues the processing list of every consumer of the queue whose
-- heartbeat is older than liveness, and removes it from the consumers.
-- Returns {worker, moved, ...}; moved is -1 for a dead worker whose
-- messages cannot be put anywhere now (its processing key, or P:{q}:dead
-- when needed, is of the wrong type): it is left as it is, and reported
-- each time, rather than dropped. Types come before each worker's first
-- write.
fn('reap', function(KEYS, ARGV)
  local ok, e = distinct('reap', KEYS, 7)
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
      else
        n = -1
      end
    end
    out[#out + 1] = w
    out[#out + 1] = n
  end
  return out
end)
