
-- tickq_promote: due messages of a queue's P:{q}:delayed to the back of
-- the queue. KEYS: delayed, stats, queue. ARGV: now ms, max.
--
-- Any number of promoters may run it at once: each message leaves
-- P:{q}:delayed in the same call that pushes it, so it is moved exactly
-- once. Nothing fails after the first write: the types of delayed and the
-- queue are read first (a queue key of the wrong type leaves every message
-- where it is, reported as stuck), and stats is written only when it is a
-- hash. Returns {moved, the next due ms as a string ("-1": none; now +
-- 1000 while messages are stuck, now while more are due than max), stuck,
-- a sentence on the stuck queue ("" when none)}.
fn('promote', function(KEYS, ARGV)
  local ok, e = distinct('promote', KEYS, 3)
  if not ok then return e end
  e = numbers('promote', ARGV, {1, 0, NUMBER_MAX, 2, 1, 10000})
  if e then return e end
  e = check{KEYS[1], 'zset'}
  if e then return e end
  if kind(KEYS[1]) == 'none' then return {0, '-1', 0, ''} end
  local now = tonumber(ARGV[1])
  local bad = badtype(KEYS[3], 'list')
  if bad then
    local stuck = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1])
    if stuck > 0 then return {0, tostring(now + 1000), stuck, bad} end
    local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
    return {0, nxt or '-1', 0, ''}
  end
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,
    tonumber(ARGV[2]))
  local moved = #due
  for j = 1, moved, 1000 do
    local k = math.min(j + 999, moved)
    redis.call('ZREM', KEYS[1], unpack(due, j, k))
    redis.call('LPUSH', KEYS[3], unpack(due, j, k))
  end
  if moved > 0 and not badtype(KEYS[2], 'hash') then hincr(KEYS[2], 'promoted', moved) end
  local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, 1,
    'WITHSCORES')[2]
  if moved >= tonumber(ARGV[2]) then nxt = ARGV[1] end
  return {moved, nxt or '-1', 0, ''}
end)
