
-- Owned locks: tickq_lock_acquire, _extend, _release. KEYS: the lock.
-- ARGV: the owner, then the TTL in ms (acquire, extend). The value is the
-- owner's id, so only the owner extends or releases it. Each reads the
-- lock before it writes it, and only a lock that is a string (or absent):
-- a key of another type is an error reply that names it, before anything
-- is written. The TTL must be a whole number of ms, 1 at least.

-- 1 when taken, or already the owner's (then renewed); 0 when another's.
fn('lock_acquire', function(KEYS, ARGV)
  local e = numbers('lock_acquire', ARGV, {2, 1, NUMBER_MAX}) or check{KEYS[1], 'string'}
  if e then return e end
  local v = redis.call('GET', KEYS[1])
  if v == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
  end
  if v then return 0 end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end)

-- 1 when extended, 0 when the lock is not the owner's.
fn('lock_extend', function(KEYS, ARGV)
  local e = numbers('lock_extend', ARGV, {2, 1, NUMBER_MAX}) or check{KEYS[1], 'string'}
  if e then return e end
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
  end
  return 0
end)

-- 1 when deleted, 0 when the lock is not the owner's.
fn('lock_release', function(KEYS, ARGV)
  local e = check{KEYS[1], 'string'}
  if e then return e end
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end, {'allow-oom'})
