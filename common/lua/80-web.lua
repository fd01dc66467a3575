
-- tickq-web's mutations (web/ops.c) and its bounded reads (web/api.c).
--
-- The web validates everything it is given in C before it calls one of
-- these: messages with common/msg (the worker's own rules), schedules with
-- common/sched (the beat's), so these functions only compare exact texts,
-- check types and write. A key of the wrong type is a WRONGTYPE error reply
-- that names it, before anything is written; web_reply_redis_error()
-- answers it as a 500 that names the key. Every key comes in KEYS, built
-- in C by common/keys: a per-message key (a result, a queue) is one
-- more KEYS entry, never a stem.

-- tickq_schedule_put: stores a schedule's definition, new or replacing
-- one, and adds its queue to the queues in use. KEYS: schedules, queues.
-- ARGV: name, definition, queue name. Returns 1 when the schedule is new,
-- 0 when it replaced one. Its writes, HSET and SADD, come after both types
-- are checked.
fn('schedule_put', function(KEYS, ARGV)
  local _, e = distinct('schedule_put', KEYS, 2)
  e = e or check{KEYS[1], 'hash', KEYS[2], 'set'}
  if e then return e end
  redis.call('SADD', KEYS[2], ARGV[3])
  return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end)

-- tickq_queues_add: KEYS: queues. ARGV: queue names. Adds them to the
-- queues in use (the web, the beat and the workers read them to find every
-- queue's keys). Returns how many were new.
fn('queues_add', function(KEYS, ARGV)
  local e = check{KEYS[1], 'set'}
  if e then return e end
  if #ARGV == 0 or #ARGV > 1000 then
    return redis.error_reply('ERR queues_add: 1 to 1000 queue names')
  end
  return redis.call('SADD', KEYS[1], unpack(ARGV))
end)

-- tickq_schedule_cas: replaces a schedule's definition only while it is
-- still the text the caller read (compare-and-set), so a change made
-- meanwhile is never overwritten with a stale copy. KEYS: schedules. ARGV:
-- name, the definition as it was read, the new one. Returns 1 after
-- writing it, 0 when the hash holds another text now (the caller reads
-- again), -1 when the schedule is gone. Its only write, HSET, comes after
-- the type check and the reads.
fn('schedule_cas', function(KEYS, ARGV)
  local e = check{KEYS[1], 'hash'}
  if e then return e end
  local cur = redis.call('HGET', KEYS[1], ARGV[1])
  if not cur then return -1 end
  if cur ~= ARGV[2] then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end)

-- tickq_schedule_delete: deletes a schedule and its last published tick
-- together (web/ops.c says why the tick goes too). KEYS: schedules,
-- schedule-state. ARGV: name. Returns 1 after deleting both fields, 0 when
-- there is no such schedule (nothing is written then). Both types are
-- checked first, and HDEL does not fail on a hash.
fn('schedule_delete', function(KEYS, ARGV)
  local e = check{KEYS[1], 'hash', KEYS[2], 'hash'}
  if e then return e end
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end, {'allow-oom'})

-- tickq_queue_push: KEYS: a queue. ARGV: the message. Pushes it to the
-- front of the queue (LPUSH), whose workers take from the back. Returns
-- the queue's new length. Its only write, LPUSH, is to the list whose type
-- was checked first.
fn('queue_push', function(KEYS, ARGV)
  local e = check{KEYS[1], 'list'}
  if e then return e end
  return redis.call('LPUSH', KEYS[1], ARGV[1])
end)

-- tickq_queue_pause: KEYS: the queue's paused key. ARGV: "1" to pause or
-- "0" to resume. Returns 1 when that changed it, 0 when it was so
-- already. SET NX and DEL do not fail on any type (a key of another type
-- counts as paused: workers test only that it exists).
fn('queue_pause', function(KEYS, ARGV)
  if ARGV[1] == '1' then return redis.call('SET', KEYS[1], '1', 'NX') and 1 or 0 end
  return redis.call('DEL', KEYS[1])
end, {'allow-oom'})

-- tickq_dead_page: reads a page of dead letters. KEYS: dead. ARGV: how
-- many at most, "1" to read from the oldest end (else the newest), how many
-- of that end to pass over, and a byte budget. Returns {length, letters}:
-- the list's length and the page read at the same instant, in the order of
-- the scan (oldest first from the oldest end), cut once the letters pass
-- the budget (at least one), so that a page of big letters stays a few MiB
-- in a reply and in the call that requeues it. Only reads.
fn('dead_page', function(KEYS, ARGV)
  local e = check{KEYS[1], 'list'}
  if e then return e end
  local n, tail, off = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
  local budget = tonumber(ARGV[4])
  local items
  if tail then items = redis.call('LRANGE', KEYS[1], -(off + n), -(off + 1))
  else items = redis.call('LRANGE', KEYS[1], off, off + n - 1) end
  local out, used, m = {}, 0, #items
  for k = 1, m do
    local it = tail and items[m + 1 - k] or items[k]
    if k > 1 and used + #it > budget then break end
    used = used + #it
    out[k] = it
  end
  return {redis.call('LLEN', KEYS[1]), out}
end, {'no-writes'})

-- tickq_dead_requeue: puts dead letters' messages back on their queue.
-- KEYS: the queue's dead letters, deliveries and list, then per letter i
-- its result (KEYS[3 + i]). ARGV[1] is LREM's count: 1 looks for each
-- letter from the newest end, -1 from the oldest, the end a scan of
-- everything reads (so LREM finds its letter at once instead of after the
-- whole list). Then per letter: the dead letter's exact text, the message
-- to push, the task id.
--
-- For each letter, in order: when the dead letter is still in the list,
-- removes it, deletes the task's result (a final result is the done
-- marker, and a done id would be acked without running; the run stays in
-- the events), clears the delivery count (a poison message starts afresh)
-- and pushes the message. A letter is requeued at most once, however often
-- it is asked for: it is pushed only by the call whose LREM removed it.
-- Returns per letter 1 (requeued), 0 (no longer a dead letter: requeued
-- or purged meanwhile), or, when the queue key is of the wrong type, a
-- sentence that names it (nothing done).
--
-- Every type is checked before the first write, so nothing fails after
-- it: LREM on a list, DEL on any key, HDEL on a hash, LPUSH on a list.
fn('dead_requeue', function(KEYS, ARGV)
  local ok, e = distinct('dead_requeue', KEYS, 3)
  if not ok then return e end
  local n, out = (#ARGV - 1) / 3, {}
  if (ARGV[1] ~= '1' and ARGV[1] ~= '-1') or n ~= math.floor(n) or #KEYS ~= 3 + n then
    return redis.error_reply('ERR dead_requeue: a count of 1 or -1, then three arguments ' ..
      'and one key per letter')
  end
  e = check{KEYS[1], 'list', KEYS[2], 'hash'}
  if e then return e end
  -- A queue key of the wrong type: every letter stays, and says why.
  local bad = badtype(KEYS[3], 'list')
  if bad then
    for i = 1, n do out[i] = bad end
    return out
  end
  for i = 1, n do
    if redis.call('LREM', KEYS[1], ARGV[1], ARGV[3 * i - 1]) == 1 then
      redis.call('DEL', KEYS[3 + i])
      redis.call('HDEL', KEYS[2], ARGV[3 * i + 1])
      redis.call('LPUSH', KEYS[3], ARGV[3 * i])
      out[i] = 1
    else
      out[i] = 0
    end
  end
  return out
end)

-- tickq_dead_purge: KEYS: dead. Deletes every dead letter. Returns how
-- many there were. The type is checked and the length read first; DEL, the
-- only write, does not fail.
fn('dead_purge', function(KEYS)
  local e = check{KEYS[1], 'list'}
  if e then return e end
  local n = redis.call('LLEN', KEYS[1])
  redis.call('DEL', KEYS[1])
  return n
end, {'allow-oom'})

-- tickq_hgetall_bounded: KEYS: a hash (P:{q}:metrics). ARGV: the most
-- fields to read. Its fields and values, as HGETALL answers them, or nil
-- when it has more fields than that: metrics are read only while of a sane
-- size (its labels are bounded by the tasks and queues in use, but nothing
-- stops a client). A key of another type is HLEN's WRONGTYPE error. Only
-- reads.
fn('hgetall_bounded', function(KEYS, ARGV)
  if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[1]) then return false end
  return redis.call('HGETALL', KEYS[1])
end, {'no-writes'})

-- tickq_list_read: reads a list without ever answering more than about a
-- budget of bytes. KEYS: the list. ARGV: from, count, find, want, budget,
-- cap, seen. The entries from index ARGV[1] on (moved down by how much the
-- list grew since it had ARGV[7] entries, when ARGV[7] >= 0: entries
-- arrive at the head), at most ARGV[2] of them looked at; those that hold
-- ARGV[3] (a plain substring; "" for all), at most ARGV[4], stopping once
-- ARGV[5] bytes are answered (after at least one). Answers {LLEN, first
-- index looked at, index, entry, index, entry, ...}, an entry longer than
-- ARGV[6] bytes as its length (an integer) instead of its text. The list
-- is read in slices of 32, so a search never holds more than that of it.
-- A key of another type is Redis' own WRONGTYPE error, as LRANGE's. Only
-- reads.
fn('list_read', function(KEYS, ARGV)
  if badtype(KEYS[1], 'list') then
    return redis.error_reply(
      'WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  local from, count, find = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
  local want, budget, cap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local total, seen = redis.call('LLEN', KEYS[1]), tonumber(ARGV[7])
  if seen >= 0 and total > seen then from = from + total - seen end
  local out, bytes, got = {total, from}, 0, 0
  local i, stop = from, math.min(total, from + count)
  while i < stop and got < want and (got == 0 or bytes < budget) do
    local chunk = redis.call('LRANGE', KEYS[1], i, math.min(i + 31, stop - 1))
    if #chunk == 0 then break end
    for _, e in ipairs(chunk) do
      if got >= want or (got > 0 and bytes >= budget) then break end
      if find == '' or string.find(e, find, 1, true) then
        out[#out + 1] = i
        if #e > cap then out[#out + 1] = #e else out[#out + 1] = e; bytes = bytes + #e end
        got = got + 1
      end
      i = i + 1
    end
  end
  return out
end, {'no-writes'})
