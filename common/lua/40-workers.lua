
-- A worker's registration and heartbeat. One process per worker id. The
-- registry (P:{@}:workers, P:{@}:worker:<id>, P:{@}:queues) is global;
-- each queue also keeps its own consumers' heartbeats (P:{q}:consumers),
-- which its delivery and its reaper read without leaving the queue's slot.

-- tickq_register: KEYS: workers, worker hash, queues. ARGV: id, instance,
-- now, liveness, then the names of the queues it consumes. Registers this
-- instance, unless another instance holds the id and heartbeat within
-- liveness. Returns {1} registered, or {0, its last heartbeat, its
-- instance, its host, its pid}. Types are checked first; ZADD, HSET and
-- SADD cannot fail after that.
fn('register', function(KEYS, ARGV)
  local ok, e = distinct('register', KEYS, 3)
  if not ok then return e end
  e = numbers('register', ARGV, {3, 0, NUMBER_MAX, 4, 0, NUMBER_MAX})
  if e then return e end
  if #ARGV > 4 + 1000 then return redis.error_reply('ERR register: 1000 queues at most') end
  e = check{KEYS[1], 'zset', KEYS[2], 'hash', KEYS[3], 'set'}
  if e then return e end
  local hb = redis.call('ZSCORE', KEYS[1], ARGV[1])
  local inst = redis.call('HGET', KEYS[2], 'instance')
  if hb and inst and inst ~= ARGV[2] and
      tonumber(ARGV[3]) - tonumber(hb) <= tonumber(ARGV[4]) then
    local who = redis.call('HMGET', KEYS[2], 'host', 'pid')
    return {0, hb, inst, who[1] or '?', who[2] or '?'}
  end
  redis.call('HSET', KEYS[2], 'instance', ARGV[2])
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  if #ARGV > 4 then redis.call('SADD', KEYS[3], unpack(ARGV, 5)) end
  return {1}
end)

-- tickq_leave: a worker that stops leaves the registry. KEYS: workers,
-- worker hash. ARGV: id, instance. Returns 1, or 0 (nothing written) when
-- another instance holds the id now. ZREM and DEL do not fail.
fn('leave', function(KEYS, ARGV)
  local _, e = distinct('leave', KEYS, 2)
  e = e or check{KEYS[1], 'zset'}
  if e then return e end
  local inst = redis.pcall('HGET', KEYS[2], 'instance')
  if type(inst) == 'string' and inst ~= ARGV[2] then return 0 end
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  return 1
end, {'allow-oom'})

-- tickq_consume: a consumer's heartbeat in one queue. KEYS: consumers.
-- ARGV: id, now. One ZADD, after the type check.
fn('consume', function(KEYS, ARGV)
  local e = numbers('consume', ARGV, {2, 0, NUMBER_MAX}) or check{KEYS[1], 'zset'}
  if e then return e end
  return redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end)

-- tickq_forget: the global side of the reaper. KEYS: workers, then the
-- worker hash stem. ARGV: now, liveness. Removes every worker whose
-- heartbeat is older than liveness from the registry and deletes its
-- hash (each queue's tickq_reap requeues its messages). Returns the ids.
fn('forget', function(KEYS, ARGV)
  local _, e = distinct('forget', KEYS, 2)
  e = e or numbers('forget', ARGV, {1, 0, NUMBER_MAX, 2, 0, NUMBER_MAX}) or
    check{KEYS[1], 'zset'}
  if e then return e end
  local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',
    '(' .. string.format('%d', tonumber(ARGV[1]) - tonumber(ARGV[2])))
  for _, w in ipairs(dead) do
    redis.call('ZREM', KEYS[1], w)
    redis.call('DEL', KEYS[2] .. w)
  end
  return dead
end, {'allow-oom'})

-- tickq_heartbeat: KEYS: workers, worker hash. ARGV: id, instance, now,
-- ttl, then field, value pairs for the hash. Returns 1, or 0 (nothing
-- written) when another instance has taken this id over. Types are
-- checked first.
fn('heartbeat', function(KEYS, ARGV)
  local ok, e = distinct('heartbeat', KEYS, 2)
  if not ok then return e end
  e = numbers('heartbeat', ARGV, {3, 0, NUMBER_MAX, 4, 1, NUMBER_MAX})
  if e then return e end
  -- HSET's pairs, and few enough for unpack().
  if #ARGV % 2 ~= 0 or #ARGV > 4 + 2 * 100 then
    return redis.error_reply('ERR heartbeat: field, value pairs, 100 at most')
  end
  e = check{KEYS[1], 'zset', KEYS[2], 'hash'}
  if e then return e end
  local inst = redis.call('HGET', KEYS[2], 'instance')
  if inst and inst ~= ARGV[2] then return 0 end
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[2], 'instance', ARGV[2], unpack(ARGV, 5))
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 1
end)

-- tickq_worker_event: KEYS: events (the global stream). ARGV: event
-- (worker-online, worker-heartbeat, worker-offline), ts, worker. One XADD,
-- trimmed.
fn('worker_event', function(KEYS, ARGV)
  local e = check{KEYS[1], 'stream'}
  if e then return e end
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', EVENTS_MAX, '*', 'event', ARGV[1], 'ts',
    ARGV[2], 'worker', ARGV[3])
  return 1
end)

-- tickq_task_started: a task that is not fast began running. KEYS: the
-- queue's events and deliveries. ARGV: ts, worker, id, task, queue. Records
-- task-started, after task-received unless this is a redelivery (an id in
-- P:{q}:deliveries: its fetch recorded task-received, with the delivery
-- number). A fast task records only its outcome, at completion.
fn('task_started', function(KEYS, ARGV)
  local e = check{KEYS[1], 'stream', KEYS[2], 'hash'}
  if e then return e end
  local ts, me, id, task, queue = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    event(KEYS[1], 'task-received', ts, id, task, queue, me)
  end
  event(KEYS[1], 'task-started', ts, id, task, queue, me)
  trim_events(KEYS[1])
  return 1
end)
