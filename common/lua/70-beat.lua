
-- tickq_publish: the beat leader publishes a batch of due ticks. KEYS:
-- leader, schedule-state, stats, then the queues. ARGV: beat id, then the
-- ticks, a MessagePack array of maps {s = schedule name, t = tick ms (a
-- decimal string), q = index of its queue in KEYS, m = the message}.
--
-- Guarantee: a tick is published at most once, whoever calls and however
-- often: a caller that does not hold the lease gets -1 (a stale leader
-- never publishes), and a tick is pushed only together with advancing its
-- schedule's state past it, in one call. A new leader continues from the
-- state, so a failover loses no tick.
--
-- Redis does not roll back a function that fails halfway, so nothing here
-- can fail after the first write: the ticks are checked, and the type of
-- every key written, first; a state value is compared only once it is
-- known to be a number. A lease or state key of the wrong type is an error
-- reply that names it (nothing is written). Otherwise the reply has, per
-- tick, 1 once the state is advanced and the message pushed, 0 if the
-- state is already at or past it (two beats never publish a tick twice), 2
-- if its queue key is not a list (the tick is skipped, state untouched,
-- and the other ticks go on), or 3 if its state value is not a tick (the
-- same); and then one more element, 1 if the counter in stats was not
-- counted because stats is not a hash, else 0.
fn('publish', function(KEYS, ARGV)
  local _, e0 = distinct('publish', KEYS, 3)
  if e0 then return e0 end
  local ok, ticks = pcall(cmsgpack.unpack, ARGV[2] or '')
  if not ok or type(ticks) ~= 'table' then
    return redis.error_reply('ERR publish: the ticks are not a MessagePack array')
  end
  for _, k in ipairs(ticks) do
    if type(k) ~= 'table' or type(k.s) ~= 'string' or type(k.m) ~= 'string'
        or type(k.t) ~= 'string' or #k.t > 16 or not string.match(k.t, '^%d+$')
        or type(k.q) ~= 'number' or k.q < 4 or not KEYS[k.q] then
      return redis.error_reply('ERR publish: a tick lacks a field or its queue')
    end
  end
  local e = check{KEYS[1], 'string'}
  if e then return e end
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
  e = check{KEYS[2], 'hash'}
  if e then return e end
  local count = not badtype(KEYS[3], 'hash')
  local list = {}
  for k = 4, #KEYS do list[k] = not badtype(KEYS[k], 'list') end
  local res, n = {}, 0
  for _, k in ipairs(ticks) do
    local tick = tonumber(k.t)
    local v = redis.call('HGET', KEYS[2], k.s)
    local last = v and #v <= 16 and string.match(v, '^%d+$') and tonumber(v)
    if v and not last then
      res[#res + 1] = 3
    elseif last and last >= tick then
      res[#res + 1] = 0
    elseif not list[k.q] then
      res[#res + 1] = 2
    else
      redis.call('HSET', KEYS[2], k.s, k.t)
      redis.call('LPUSH', KEYS[k.q], k.m)
      n = n + 1
      res[#res + 1] = 1
    end
  end
  if n > 0 and count then hincr(KEYS[3], 'published', n) end
  res[#res + 1] = count and 0 or 1
  return res
end)
