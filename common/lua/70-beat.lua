
-- The beat leader publishes due ticks in two calls per queue, each in one
-- slot: tickq_publish pushes the messages to the queue (P:{q}:...), then
-- tickq_advance moves each schedule's state past its tick (P:{@}:...).
--
-- Guarantee: a tick is pushed at most once, whoever calls and however
-- often. A tick's id is deterministic (<schedule>@<tick ms>), and the
-- queue remembers the ids pushed to it (P:{q}:published, each scored by
-- when it was last pushed or asked for, for a day): tickq_publish skips
-- one it has seen. A beat that dies between the two
-- calls leaves the state behind; the next leader publishes the tick again
-- and the queue skips it. tickq_advance checks the lease, so a stale
-- leader never moves the state; a new leader continues from the state, so
-- a failover loses no tick. tickq_publish cannot check the lease (another
-- slot): the beat reads it just before, and a leader that loses it in
-- between pushes only ticks the new leader pushes too (the same ids,
-- skipped), unless the schedule's queue was changed in that moment.

-- How long the queue remembers a pushed tick: far longer than the moments
-- between the two calls, or a failover's rewind of the state.
local PUBLISHED_KEEP_MS = 86400000

-- The ticks of a call to name: packed, a MessagePack array of maps each
-- with t (tick ms, a decimal string) and the string fields named in
-- fields. Returns them, or nil and an error reply.
local function ticks_arg(name, packed, fields)
  local ok, ticks = pcall(cmsgpack.unpack, packed or '')
  if not ok or type(ticks) ~= 'table' then
    return nil, redis.error_reply('ERR ' .. name .. ': the ticks are not a MessagePack array')
  end
  for _, k in ipairs(ticks) do
    local bad = type(k) ~= 'table' or type(k.t) ~= 'string' or #k.t > 15
      or not string.match(k.t, '^%d+$')
    for _, f in ipairs(fields) do bad = bad or type(k[f]) ~= 'string' end
    if bad then return nil, redis.error_reply('ERR ' .. name .. ': a tick lacks a field') end
  end
  return ticks
end

-- tickq_publish: KEYS: queue, published, stats. ARGV: the ticks, a
-- MessagePack array of maps {i = id, t = tick ms (a decimal string), m =
-- the message}, then now (Unix ms). Returns per tick 1 pushed, 0 pushed before (skipped), or 2
-- when the queue key is not a list (nothing pushed); then one more
-- element, 1 if the counter in stats was not counted because stats is not
-- a hash, else 0. Everything is checked before the first write: the
-- ticks, and the types of queue and published (a published key of the
-- wrong type is an error reply).
fn('publish', function(KEYS, ARGV)
  local _, e0 = distinct('publish', KEYS, 3)
  e0 = e0 or numbers('publish', ARGV, {2, 0, NUMBER_MAX})
  if e0 then return e0 end
  local ticks, e1 = ticks_arg('publish', ARGV[1], {'i', 'm'})
  if not ticks then return e1 end
  -- Remembered from now, not from the tick: a catch-up of ticks older
  -- than a day is remembered too.
  local now = tonumber(ARGV[2])
  local e = check{KEYS[2], 'zset'}
  if e then return e end
  local count = not badtype(KEYS[3], 'hash')
  local list = not badtype(KEYS[1], 'list')
  local res, n = {}, 0
  for _, k in ipairs(ticks) do
    if not list then
      res[#res + 1] = 2
    elseif redis.call('ZSCORE', KEYS[2], k.i) then
      -- Asked for again (a state the beat cannot advance is retried each
      -- second): remembered a day from now, so never pushed twice.
      redis.call('ZADD', KEYS[2], now, k.i)
      res[#res + 1] = 0
    else
      redis.call('LPUSH', KEYS[1], k.m)
      redis.call('ZADD', KEYS[2], now, k.i)
      n = n + 1
      res[#res + 1] = 1
    end
  end
  if n > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf',
      '(' .. string.format('%d', now - PUBLISHED_KEEP_MS))
    if count then hincr(KEYS[3], 'published', n) end
  end
  res[#res + 1] = count and 0 or 1
  return res
end)

-- tickq_advance: KEYS: leader, schedule-state. ARGV: beat id, then the
-- ticks, a MessagePack array of maps {s = schedule name, t = tick ms (a
-- decimal string)}. Returns -1 when the caller does not hold the lease
-- (nothing written); else per tick 1 once the state is moved to it, 0 if
-- the state is already at or past it, or 3 if its state value is not a
-- tick (left as it is). A lease or state key of the wrong type is an
-- error reply that names it, before anything is written.
fn('advance', function(KEYS, ARGV)
  local _, e0 = distinct('advance', KEYS, 2)
  if e0 then return e0 end
  local ticks, e1 = ticks_arg('advance', ARGV[2], {'s'})
  if not ticks then return e1 end
  local e = check{KEYS[1], 'string'}
  if e then return e end
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
  e = check{KEYS[2], 'hash'}
  if e then return e end
  local res = {}
  for _, k in ipairs(ticks) do
    local v = redis.call('HGET', KEYS[2], k.s)
    local last = v and #v <= 16 and string.match(v, '^%d+$') and tonumber(v)
    if v and not last then
      res[#res + 1] = 3
    elseif last and last >= tonumber(k.t) then
      res[#res + 1] = 0
    else
      redis.call('HSET', KEYS[2], k.s, k.t)
      res[#res + 1] = 1
    end
  end
  return res
end)
