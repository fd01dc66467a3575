
-- tickq_promote: due messages of P:delayed to the back of their queues.
-- KEYS: delayed, dead, stats, then the queue stem (a message's queue key
-- is the stem and its queue name, known only once the message is read).
-- ARGV: now ms, max.
--
-- Any number of promoters may run it at once: each message leaves
-- P:delayed in the same call that pushes it, so it is moved exactly once.
-- Nothing fails after the first write: P:delayed of the wrong type is an
-- error reply before anything is written; the types of dead and stats are
-- read first, and the type of each message's destination (its queue, or
-- dead) before the message leaves P:delayed. A message whose destination
-- is of the wrong type stays in P:delayed and the ones behind it go on (up
-- to max such are stepped over per call). Returns {moved, the next due ms
-- as a string ("-1": none; now + 1000 while messages are stuck, now while
-- more are due than max), stuck, a sentence on the first stuck destination
-- ("" when none)}.
fn('promote', function(KEYS, ARGV)
  local ok, e = distinct('promote', KEYS, 4)
  if not ok then return e end
  e = numbers('promote', ARGV, {1, 0, NUMBER_MAX, 2, 1, 10000})
  if e then return e end
  e = check{KEYS[1], 'zset'}
  if e then return e end
  if kind(KEYS[1]) == 'none' then return {0, '-1', 0, ''} end
  local count = not badtype(KEYS[3], 'hash')
  local now, max, stem = tonumber(ARGV[1]), tonumber(ARGV[2]), KEYS[4]
  local moved, dead, stuck, why, types = 0, 0, 0, '', {}
  while moved + dead < max and stuck < max do
    local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', stuck,
      max - moved - dead)
    if #due == 0 then break end
    for _, msg in ipairs(due) do
      local q = message_queue(msg)
      local dest = q and stem .. q or KEYS[2]
      if not types[dest] then types[dest] = kind(dest) end
      if types[dest] ~= 'list' and types[dest] ~= 'none' then
        stuck = stuck + 1
        if why == '' then why = dest .. ' is a ' .. types[dest] .. ', not a list' end
      else
        redis.call('ZREM', KEYS[1], msg)
        types[dest] = 'list'
        if q then
          redis.call('LPUSH', dest, msg)
          moved = moved + 1
        else
          redis.call('LPUSH', dest, dead_letter_json('undecodable',
            'delayed: no valid queue field', 'promoter', now, msg))
          dead = dead + 1
        end
      end
    end
  end
  if count and moved > 0 then hincr(KEYS[3], 'promoted', moved) end
  if count and dead > 0 then hincr(KEYS[3], 'dead', dead) end
  local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, 1,
    'WITHSCORES')[2]
  if moved + dead >= max then nxt = ARGV[1]
  elseif stuck > 0 and (not nxt or tonumber(nxt) > now + 1000) then
    nxt = tostring(now + 1000)
  end
  return {moved, nxt or '-1', stuck, why}
end)
