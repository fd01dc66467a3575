#!lua name=tickq
-- tickq's broker protocol: one Redis 7 Function library made of the files
-- common/lua/*.lua, in the order of their names. common/broker.c embeds
-- the text at build time (common/lua/embed.cmake appends the version as
-- its last line), loads it with FUNCTION LOAD and calls its functions with
-- FCALL; it is the only C code that speaks this protocol.
--
-- Conventions, for every function:
--
-- * The first argument is the library version the caller was built with.
--   A function of another version answers a TICKQVERSION error and touches
--   nothing; the caller then loads its own library and calls again. So a
--   worker never runs against a library that reads its arguments
--   differently. By hand: V=$(redis-cli FCALL_RO tickq_version 0).
--
-- * Every key a function touches is declared in KEYS, except the keys of
--   a message found inside the function (a popped message's lock, done
--   marker and queue): those are a declared stem followed by the message's
--   id or queue name. docs/PROTOCOL.md says which.
--
-- * Redis does not roll back a function that fails halfway, so none may
--   fail after its first write. Each checks the types of the keys it will
--   write before it writes (check(), a missing key is fine) and then only
--   uses commands that cannot fail on keys of those types; where one key
--   may still be of the wrong type (a lock, a history someone overwrote)
--   that command runs under redis.pcall() and its failure is handled.
--   Each function's comment says why nothing fails after its first write.
--   Before the types, the arguments: numbers() checks every number a
--   command will take (a TTL, a score, a count) and distinct() that no two
--   of the fixed keys name one key (check() reads each key on its own, so
--   one key given twice would pass as two types). tickq's programs never
--   send such arguments; a hand-made FCALL may.
--
-- * Task events all have the fields event, ts, id, task, queue, worker,
--   runtime, error, info, in that order: a stream stores field names once
--   per node while they repeat, so this keeps it compact. Functions add
--   events untrimmed and trim the stream once at their end.

local VERSION -- the last line of the library sets it (embed.cmake)

-- Limits shared with the C side; tests/unit/test_broker.c checks that
-- tickq_info answers the same numbers as the C headers.
local EVENTS_MAX = 10000       -- an events stream is trimmed near this (MAXLEN ~)
local TIMEOUT_MAX = 31536000   -- TQ_MSG_TIMEOUT_MAX: a message's timeout, s
local TASKS_MAX = 100000       -- TQ_METRICS_TASKS_MAX: the task index
local MINUTE_TTL = 7200        -- TQ_METRICS_MINUTE_TTL_S: a minute's counters
local ID_MAX = 256             -- bytes of a task id (TQ_MSG_ID_MAX - 1)

-- Registers tickq_<name>: callback(keys, args) gets the arguments after
-- the version. flags: Redis' function flags, none by default: 'no-writes'
-- for a function that only reads (FCALL_RO, replicas); 'allow-oom' for one
-- that only deletes, so that it still runs when Redis is out of memory
-- (every other function is then refused before it starts, never halfway).
local function fn(name, callback, flags)
  redis.register_function {
    function_name = 'tickq_' .. name,
    flags = flags or {},
    callback = function(keys, args)
      if args[1] ~= VERSION then
        return redis.error_reply('TICKQVERSION library ' .. tostring(VERSION) ..
          ' loaded, caller speaks ' .. tostring(args[1]))
      end
      table.remove(args, 1)
      return callback(keys, args)
    end}
end

-- key's type: 'none' when it is missing.
local function kind(key) return redis.call('TYPE', key).ok end

-- nil when key is missing or a `want`, else a text that names it.
local function badtype(key, want)
  local t = kind(key)
  if t ~= 'none' and t ~= want then
    return 'key ' .. key .. ' is a ' .. t .. ', not a ' .. want
  end
end

-- check{key, type, ...}: the first wrong type as a WRONGTYPE error reply,
-- or nil.
local function check(spec)
  for i = 1, #spec, 2 do
    local e = badtype(spec[i], spec[i + 1])
    if e then return redis.error_reply('WRONGTYPE ' .. e) end
  end
end

-- numbers(name, ARGV, spec): nil when each ARGV[i] that spec names is a
-- whole number in decimal, of at most 15 digits (Lua reads it exactly),
-- from lo to hi; else an ERR reply that names the first that is not.
-- spec: {i, lo, hi, ...}. A number argument checked here cannot make a
-- command fail later (SET PX, ZADD, PEXPIRE) or a loop run without end.
local function numbers(name, ARGV, spec)
  for j = 1, #spec, 3 do
    local i, lo, hi = spec[j], spec[j + 1], spec[j + 2]
    local a = ARGV[i]
    local v = type(a) == 'string' and #a <= 15 and string.find(a, '^%d+$') and tonumber(a)
    if not v or v < lo or v > hi then
      return redis.error_reply('ERR ' .. name .. ': argument ' .. i ..
        ' is not a whole number from ' .. lo .. ' to ' .. hi)
    end
  end
end

local NUMBER_MAX = 999999999999999 -- 15 digits

-- distinct(name, KEYS, n): the set of the n fixed keys KEYS[1..n] (key ->
-- index), or nil and an ERR reply when there are fewer than n keys or a
-- key names a fixed key given before it (the keys after the fixed ones, a
-- queue, a task's result, may repeat one another but not a fixed key).
-- check() reads each key on its own, so one key given twice would pass as
-- two types, and a write of one kind could then clobber the other or make
-- a later command fail.
local function distinct(name, KEYS, n)
  local fixed = {}
  for i = 1, #KEYS do
    local k = KEYS[i]
    if fixed[k] then
      return nil, redis.error_reply('ERR ' .. name .. ': keys ' .. fixed[k] .. ' and ' .. i ..
        ' are the same key')
    end
    if i <= n then fixed[k] = i end
  end
  if #KEYS < n then
    return nil, redis.error_reply('ERR ' .. name .. ': ' .. n .. ' keys at least')
  end
  return fixed
end

-- HINCRBY / HINCRBYFLOAT that cannot fail on a hash: a field that holds
-- no number (someone's HSET) starts again from n.
local function hincr(h, f, n)
  if type(redis.pcall('HINCRBY', h, f, n)) == 'table' then
    redis.call('HSET', h, f, n)
  end
end

local function hincrf(h, f, x)
  if type(redis.pcall('HINCRBYFLOAT', h, f, x)) == 'table' then
    redis.call('HSET', h, f, x)
  end
end

-- The done marker is the task's result (P:{q}:result:<id>) once it is final:
-- any status but "retrying" (docs/PROTOCOL.md). true when v, a GET or
-- MGET of it (false or nil when missing or of another type), says so. The
-- worker writes a result as JSON, where a quote inside a string is always
-- escaped, so the unescaped text "status":"retrying" can only be its
-- status field.
local function final(v)
  return type(v) == 'string' and not string.find(v, '"status":"retrying"', 1, true)
end

-- An event never stops a function: a stream whose IDs are used up (an XADD
-- of ID 18446744073709551615-18446744073709551615 by someone) fails the
-- XADD, which then writes nothing and is passed over.
local function event(stream, name, ts, id, task, queue, me, runtime, err, info)
  redis.pcall('XADD', stream, '*', 'event', name, 'ts', ts, 'id', id, 'task', task,
    'queue', queue, 'worker', me, 'runtime', runtime or '', 'error', err or '',
    'info', info or '')
end

local function trim_events(stream)
  redis.pcall('XTRIM', stream, 'MAXLEN', '~', EVENTS_MAX)
end

-- The length of the valid UTF-8 sequence at byte i of s, 0 when none
-- starts there (overlong forms and surrogates are invalid), as
-- common/utf8.c's tq_utf8_seq.
local function utf8_seq(s, i)
  local c = string.byte(s, i)
  if c < 0x80 then return 1 end
  local c2, c3, c4 = string.byte(s, i + 1, i + 3)
  local function cont(x) return x and x >= 0x80 and x <= 0xBF end
  if c >= 0xC2 and c <= 0xDF then return cont(c2) and 2 or 0 end
  if c >= 0xE0 and c <= 0xEF then
    local lo, hi = 0x80, 0xBF
    if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    return c2 and c2 >= lo and c2 <= hi and cont(c3) and 3 or 0
  end
  if c >= 0xF0 and c <= 0xF4 then
    local lo, hi = 0x80, 0xBF
    if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    return c2 and c2 >= lo and c2 <= hi and cont(c3) and cont(c4) and 4 or 0
  end
  return 0
end

-- 1 when s is valid UTF-8 without a NUL byte.
local function utf8_ok(s)
  if not string.find(s, '[%z\128-\255]') then return true end
  local i, n = 1, #s
  while i <= n do
    local len = utf8_seq(s, i)
    if len == 0 or string.byte(s, i) == 0 then return false end
    i = i + len
  end
  return true
end

-- s with every byte that starts no valid UTF-8 sequence replaced by
-- U+FFFD.
local function utf8_clean(s)
  if not string.find(s, '[\128-\255]') then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local len = utf8_seq(s, i)
    if len == 0 then
      out[#out + 1] = '\239\191\189'
      i = i + 1
    else
      out[#out + 1] = string.sub(s, i, i + len - 1)
      i = i + len
    end
  end
  return table.concat(out)
end

local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = string.byte(s, i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {}
    for k = 1, 4 do
      local d = math.floor(v / 2 ^ (6 * (4 - k))) % 64
      q[k] = string.sub(B64, d + 1, d + 1)
    end
    if not b then q[3] = '=' end
    if not c then q[4] = '=' end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

-- A dead letter, the same JSON as common/msg.c's tq_msg_dead_letter:
-- {"reason","error","worker","dead_at","message"}, with message_base64
-- instead of message when msg is not valid UTF-8 or holds a NUL byte, so
-- that the letter is valid JSON whatever the message's bytes.
local function dead_letter_json(reason, err, worker, now_ms, msg)
  local body = utf8_ok(msg) and (',"message":' .. cjson.encode(msg))
    or (',"message_base64":"' .. base64(msg) .. '"')
  return '{"reason":' .. cjson.encode(reason) .. ',"error":' ..
    cjson.encode(utf8_clean(err)) .. ',"worker":' ..
    cjson.encode(utf8_clean(worker)) .. ',"dead_at":' ..
    string.format('%.3f', now_ms / 1000) .. body .. '}'
end

-- The version, for a caller that wants to check it without a call.
redis.register_function {
  function_name = 'tickq_version', flags = {'no-writes'},
  callback = function() return VERSION end}

-- The limits above, for the test that keeps them equal to the C side's.
fn('info', function()
  return {EVENTS_MAX, TIMEOUT_MAX, TASKS_MAX, MINUTE_TTL, ID_MAX}
end, {'no-writes'})
