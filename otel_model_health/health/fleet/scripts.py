"""The Lua scripts of the fleet store. Redis runs each one atomically, which is what makes a transition
happen once per fleet: the compare-and-set of a model's breaker record and the message announcing the
winner are one step. redis-py's ``Script`` calls EVALSHA and loads the script again on NOSCRIPT (after a
restart, a FLUSHALL of scripts, or a failover to a replica that never saw it).

Key names are built inside the scripts from the prefix: the store targets one Redis or Valkey (with its
replicas), not a cluster (docs/fleet.md lists every key).
"""

from __future__ import annotations

from typing import Final

# ARGV: prefix, origin, outcome payload ("" for none), JSON [model ids seen], JSON [proposals],
#       ttl seconds, max keys, JSON [permit releases: [model id, period, member]]
# A proposal: [id, kind, base version, chained (0/1), open_until, level]. For provider kinds the id is
# the provider. Returns {ignored values, r1, r2, ...}; each r is {won, version, state, incident,
# open_until, level, kind, origin} as strings (Lua numbers would come back truncated to integers).
FLUSH: Final = r"""
local prefix, origin, payload = ARGV[1], ARGV[2], ARGV[3]
local ttl, max_keys = tonumber(ARGV[6]), tonumber(ARGV[7])
local channel = prefix .. 'events'
local ignored = 0

local function typed(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t == want or t == 'none' then return true end
  ignored = ignored + 1  -- someone else's value under our prefix: not read, replaced by ours
  redis.call('DEL', key)
  return false
end

local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1e6

if payload ~= '' then redis.call('PUBLISH', channel, 'o' .. payload) end

local models = prefix .. 'models'
typed(models, 'zset')
for _, id in ipairs(cjson.decode(ARGV[4])) do redis.call('ZADD', models, now, id) end

local function read(key)
  if not typed(key, 'hash') then return nil end
  local f = redis.call('HMGET', key, 'v', 's', 'inc', 'ou', 'lv', 'k', 'o')
  if f[1] == false then return nil end
  local v = tonumber(f[1])
  if v == nil or (f[2] ~= 'open' and f[2] ~= 'closed') then
    ignored = ignored + 1
    return nil
  end
  return {v = v, s = f[2], inc = f[3] == '1', ou = tonumber(f[4]) or 0, lv = tonumber(f[5]) or 0,
          k = f[6] or '', o = f[7] or ''}
end

local function fields(won, r)
  return {tostring(won), tostring(r.v), r.s, r.inc and '1' or '0', tostring(r.ou), tostring(r.lv), r.k, r.o}
end

local function allowed(kind, r)
  if kind == 'first_failure' then return r.s == 'closed' and not r.inc end
  if kind == 'breaker_opened' then return r.s == 'closed' end
  if kind == 'half_open_failed' then return r.s == 'open' end
  if kind == 'recovered' then return r.s == 'open' or r.inc end
  return false
end

local results, won_last = {}, {}
for i, p in ipairs(cjson.decode(ARGV[5])) do
  local id, kind, base, chained = p[1], p[2], tonumber(p[3]), p[4] == 1
  if kind == 'provider_outage' or kind == 'provider_recovered' then
    local key = prefix .. 'outage:' .. id
    local ok
    if kind == 'provider_outage' then
      typed(key, 'string')
      ok = redis.call('SET', key, origin, 'NX', 'EX', ttl)
    else
      ok = redis.call('DEL', key) == 1
    end
    results[i] = {ok and '1' or '0', '0', 'closed', '0', '0', '0', kind, origin}
  else
    local key = prefix .. 'b:' .. id
    local r = read(key)
    local ok
    if chained then
      -- follows this process's previous proposal for the model in this batch: only if that one won
      ok = won_last[id] == true
      if ok and r ~= nil then base = r.v end
    end
    if not chained or ok then
      if r == nil then ok = true  -- no record (new model, flushed, restarted): the first proposal sets it
      else ok = r.v == base and allowed(kind, r) end
    end
    if ok then
      -- a re-established record's version starts from the server's clock (ms): above any version a process
      -- followed before the record was lost, so "newer" stays "greater" for every subscriber
      local v = r and (r.v + 1) or math.max(base + 1, math.floor(now * 1000))
      local n = {v = v, s = 'closed', inc = true, ou = 0, lv = 0, k = kind, o = origin}
      if kind == 'breaker_opened' or kind == 'half_open_failed' then
        n.s, n.ou, n.lv = 'open', tonumber(p[5]), tonumber(p[6])
      elseif kind == 'recovered' then
        n.inc = false
        n.lv = r and r.lv or 0
      end
      redis.call('HSET', key, 'v', n.v, 's', n.s, 'inc', n.inc and '1' or '0', 'ou', tostring(n.ou),
                 'lv', n.lv, 'k', kind, 'o', origin)
      local keep = ttl
      if n.s == 'open' and n.ou > now then keep = keep + math.ceil(n.ou - now) end
      redis.call('EXPIRE', key, keep)
      local out = fields(1, n)
      local message = {id, out[2], out[3], out[4], out[5], out[6], out[7], out[8]}
      redis.call('PUBLISH', channel, 't' .. cjson.encode(message))
      results[i] = out
    else
      results[i] = fields(0, r or {v = 0, s = 'closed', inc = false, ou = 0, lv = 0, k = '', o = ''})
    end
    won_last[id] = ok
  end
end

for _, rel in ipairs(cjson.decode(ARGV[8])) do
  local key = prefix .. 'p:' .. rel[1] .. ':' .. rel[2]
  if typed(key, 'zset') then redis.call('ZREM', key, rel[3]) end
end

-- the key cap is fleet-wide: the least recently recorded models past it lose their records
local count = redis.call('ZCARD', models)
if count > max_keys then
  for _, id in ipairs(redis.call('ZRANGE', models, 0, count - max_keys - 1)) do
    redis.call('DEL', prefix .. 'b:' .. id)
  end
  redis.call('ZREMRANGEBYRANK', models, 0, count - max_keys - 1)
end
redis.call('EXPIRE', models, ttl)

local reply = {tostring(ignored)}
for _, r in ipairs(results) do reply[#reply + 1] = r end
return reply
"""

# ARGV: prefix, model id, period (the open record's version), member, expiry ms, trials.
# Returns {granted (0/1), ignored values}. A permit is a ZSET member scored by its expiry: a crashed
# process's permit stops counting when it expires; a period's key expires with its last permit.
ACQUIRE: Final = r"""
local key = ARGV[1] .. 'p:' .. ARGV[2] .. ':' .. ARGV[3]
local ignored = 0
local t = redis.call('TYPE', key)['ok']
if t ~= 'zset' and t ~= 'none' then
  ignored = 1
  redis.call('DEL', key)
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) >= tonumber(ARGV[6]) then return {0, ignored} end
redis.call('ZADD', key, now + tonumber(ARGV[5]), ARGV[4])
redis.call('PEXPIRE', key, tonumber(ARGV[5]))
return {1, ignored}
"""

# ARGV: prefix, model ids... Returns, per id, the record's fields (as FLUSH's results without `won`) or
# an empty list; the first element counts ignored values.
READ: Final = r"""
local prefix = ARGV[1]
local ignored = 0
local out = {}
for i = 2, #ARGV do
  local key = prefix .. 'b:' .. ARGV[i]
  local t = redis.call('TYPE', key)['ok']
  local rec = {}
  if t == 'hash' then
    local f = redis.call('HMGET', key, 'v', 's', 'inc', 'ou', 'lv', 'k', 'o')
    if f[1] ~= false and tonumber(f[1]) ~= nil and (f[2] == 'open' or f[2] == 'closed') then
      rec = {f[1], f[2], f[3] or '0', f[4] or '0', f[5] or '0', f[6] or '', f[7] or ''}
    else
      ignored = ignored + 1
    end
  elseif t ~= 'none' then
    ignored = ignored + 1
  end
  out[#out + 1] = rec
end
table.insert(out, 1, tostring(ignored))
return out
"""
