/*
 * store_redis_lua.c - the two server-side scripts of the redis backend.
 *
 * RSCRIPT_BATCH applies one whole batch atomically (a script runs alone in
 * Redis): ARGV[1] is the writing node's name, ARGV[1 + i] is event i as
 * encoded by rcodec_event (kind | len4 a | a | len4 b | b | rest). It first
 * checks every put against the stored state and the batch's earlier events
 * (as store_mem.c's check pass does) and returns an error reply before
 * writing anything; then it applies the events in order, counting message
 * references server side (messages are shared by every node using this
 * Redis), drops the batch's messages that nothing references at its end and
 * raises the id high-water mark of each node tag.
 *
 * Fencing: two nodes' batches reach Redis in no particular order, so the old
 * owner of a session that moved may write after the new one. SESSION_PUT
 * always applies (it takes the session); any other session-scoped event of a
 * session whose owner (as stored, or as set by the batch's earlier events) is
 * another node is skipped: not checked, not applied, not an error. The reply
 * is the number of skipped events. A message only a skipped entry referenced
 * is dropped at the batch's end like any unreferenced one.
 *
 * Keys (all "hq:"): hq:sess (hash cid -> header record), hq:sown (hash cid ->
 * owner node), hq:own:<node> (set of cids: the owner index), hq:sub:<cid>
 * (hash filter -> record), hq:q:<cid> (hash seq8 -> entry record),
 * hq:rx:<cid> (set of pid2), hq:mk:<cid><pid2> (set of RXID_MARK targets: a
 * fixed-size pid after the cid keeps the name unambiguous; written only
 * while pid2 is in hq:rx:<cid>, deleted with it and with the session),
 * hq:msg (hash id8 -> record), hq:mref (hash id8 ->
 * number of entries referencing it), hq:ret (hash topic -> record),
 * hq:nodetag (hash node -> 16-bit tag), hq:nodetag:seq, hq:idhw (hash tag ->
 * highest 48-bit id part stored). Keys are built inside the script, so this
 * needs one Redis (or a Cluster holding every hq: key in one slot: not done).
 *
 * Numbers: message ids never become Lua numbers (doubles); the 48-bit part
 * of an id does (exact), written back with %.0f (tostring would round).
 */
#include "store/store_redis_int.h"

/* the script compares kinds as numbers */
_Static_assert(STORE_EV_SESSION_PUT == 1 && STORE_EV_RXID_DEL == 10 && STORE_EV_RETAIN_DEL == 12 &&
	       STORE_EV_RXID_MARK == 13, "store_redis_lua.c spells the event kinds as numbers");
_Static_assert(RK_SESSION_UPDATE > STORE_EV_KIND_MAX && RK_SESSION_UPDATE <= 255,
	       "RK_SESSION_UPDATE must not be an event kind and must fit the kind byte");

static const char batch_lua[] =
	"local Z8 = string.rep('\\0', 8)\n"
	"local node = ARGV[1]\n"
	"local ev = {}\n"
	"for i = 2, #ARGV do\n"
	"  local a = ARGV[i]\n"
	"  local k, x, y, p = struct.unpack('>BI4c0I4c0', a)\n"
	"  ev[i - 1] = { k, x, y, string.sub(a, p) }\n"
	"end\n"
	/* check pass: sess/msgs hold what the batch so far makes exist, own
	 * each session's owner so far (false: none); skip[i] = event i fenced */
	"local sess, msgs, own, skip, fenced = {}, {}, {}, {}, 0\n"
	"local function owner(c)\n"
	"  local v = own[c]\n"
	"  if v == nil then v = redis.call('HGET', 'hq:sown', c); own[c] = v end\n"
	"  return v\n"
	"end\n"
	"local function has_sess(c)\n"
	"  local v = sess[c]\n"
	"  if v == nil then v = redis.call('HEXISTS', 'hq:sess', c) == 1; sess[c] = v end\n"
	"  return v\n"
	"end\n"
	"local function has_msg(id)\n"
	"  local v = msgs[id]\n"
	"  if v == nil then v = redis.call('HEXISTS', 'hq:msg', id) == 1; msgs[id] = v end\n"
	"  return v\n"
	"end\n"
	"for i = 1, #ev do\n"
	"  local e = ev[i]\n"
	"  local k = e[1]\n"
	"  if k == 1 then sess[e[2]] = true; own[e[2]] = e[3]\n"
	"  elseif k ~= 5 and k ~= 11 and k ~= 12 and k ~= 13 and owner(e[2]) and owner(e[2]) ~= node then\n"
	"    skip[i] = true; fenced = fenced + 1\n"
	/* a mark names the publisher's session, which any node may own: it is
	 * fenced with its target's entry (a client target's owner), so a stale
	 * node cannot mark what it did not store */
	"  elseif k == 13 then\n"
	"    local t = string.byte(e[4], 1) == 99 and string.sub(e[4], 2) or nil\n"
	"    if t and owner(t) and owner(t) ~= node then skip[i] = true; fenced = fenced + 1 end\n"
	"  elseif k == 2 then sess[e[2]] = false; own[e[2]] = false\n"
	"  elseif k == 3 or k == 9 or k == " RK_STR(RK_SESSION_UPDATE) " then\n"
	"    if not has_sess(e[2]) then return redis.error_reply('NOTFOUND session of event ' .. i) end\n"
	"  elseif k == 5 then msgs[e[2]] = true\n"
	"  elseif k == 6 then\n"
	"    if not has_sess(e[2]) then return redis.error_reply('NOTFOUND session of event ' .. i) end\n"
	"    if string.byte(e[4], 12) ~= 2 and not has_msg(string.sub(e[4], 1, 8)) then\n"
	"      return redis.error_reply('NOTFOUND message of event ' .. i)\n"
	"    end\n"
	"  end\n"
	"end\n"
	/* write pass */
	"local function unref(id)\n"
	"  if id == Z8 then return end\n"
	"  local r = tonumber(redis.call('HGET', 'hq:mref', id) or '0')\n"
	"  if r <= 0 then return end\n"
	"  if r == 1 then\n"
	"    redis.call('HDEL', 'hq:mref', id)\n"
	"    redis.call('HDEL', 'hq:msg', id)\n"
	"  else\n"
	"    redis.call('HSET', 'hq:mref', id, r - 1)\n"
	"  end\n"
	"end\n"
	"local fresh, hw = {}, {}\n"
	"for i = 1, #ev do\n"
	"  local e = ev[i]\n"
	"  local k, c, y, v = e[1], e[2], e[3], e[4]\n"
	"  if skip[i] then -- fenced: another node owns c\n"
	"  elseif k == 1 or k == " RK_STR(RK_SESSION_UPDATE) " then\n"
	"    local prev = redis.call('HGET', 'hq:sown', c)\n"
	"    if prev and prev ~= y then redis.call('SREM', 'hq:own:' .. prev, c) end\n"
	"    redis.call('HSET', 'hq:sess', c, v)\n"
	"    redis.call('HSET', 'hq:sown', c, y)\n"
	"    redis.call('SADD', 'hq:own:' .. y, c)\n"
	"  elseif k == 2 then\n"
	"    if redis.call('HEXISTS', 'hq:sess', c) == 1 then\n"
	"      local qk = 'hq:q:' .. c\n"
	"      for _, q in ipairs(redis.call('HVALS', qk)) do unref(string.sub(q, 1, 8)) end\n"
	"      for _, p in ipairs(redis.call('SMEMBERS', 'hq:rx:' .. c)) do\n"
	"        redis.call('DEL', 'hq:mk:' .. c .. p)\n"
	"      end\n"
	"      redis.call('DEL', qk, 'hq:sub:' .. c, 'hq:rx:' .. c)\n"
	"      local o = redis.call('HGET', 'hq:sown', c)\n"
	"      if o then redis.call('SREM', 'hq:own:' .. o, c) end\n"
	"      redis.call('HDEL', 'hq:sess', c)\n"
	"      redis.call('HDEL', 'hq:sown', c)\n"
	"    end\n"
	"  elseif k == 3 then redis.call('HSET', 'hq:sub:' .. c, y, v)\n"
	"  elseif k == 4 then redis.call('HDEL', 'hq:sub:' .. c, y)\n"
	"  elseif k == 5 then\n"
	"    redis.call('HSET', 'hq:msg', c, v)\n"
	"    fresh[#fresh + 1] = c\n"
	"    local t, l = struct.unpack('>I2I6', c)\n"
	"    if not hw[t] or l > hw[t] then hw[t] = l end\n"
	"  elseif k == 6 then\n"
	"    local id = string.sub(v, 1, 8)\n"
	"    if id ~= Z8 and redis.call('HEXISTS', 'hq:msg', id) == 1 then\n"
	"      redis.call('HINCRBY', 'hq:mref', id, 1)\n"
	"    end\n"
	"    local qk = 'hq:q:' .. c\n"
	"    local old = redis.call('HGET', qk, y)\n"
	"    redis.call('HSET', qk, y, v)\n"
	"    if old then unref(string.sub(old, 1, 8)) end\n"
	"  elseif k == 7 then\n"
	"    local qk = 'hq:q:' .. c\n"
	"    local old = redis.call('HGET', qk, y)\n"
	"    if old then\n"
	"      local id = string.sub(old, 1, 8)\n"
	"      if string.byte(v, 3) == 2 and id ~= Z8 then unref(id); id = Z8 end\n"
	"      redis.call('HSET', qk, y, id .. string.sub(v, 1, 2) .. string.sub(old, 11, 11) ..\n"
	"                 string.sub(v, 3, 4) .. string.sub(old, 14))\n"
	"    end\n"
	"  elseif k == 8 then\n"
	"    local qk = 'hq:q:' .. c\n"
	"    local old = redis.call('HGET', qk, y)\n"
	"    if old then\n"
	"      redis.call('HDEL', qk, y)\n"
	"      unref(string.sub(old, 1, 8))\n"
	"    end\n"
	"  elseif k == 9 then redis.call('SADD', 'hq:rx:' .. c, y)\n"
	"  elseif k == 10 then\n"
	"    redis.call('SREM', 'hq:rx:' .. c, y)\n"
	"    redis.call('DEL', 'hq:mk:' .. c .. y)\n"
	"  elseif k == 13 then -- a mark: only while its rx id is stored\n"
	"    if redis.call('SISMEMBER', 'hq:rx:' .. c, y) == 1 then\n"
	"      redis.call('SADD', 'hq:mk:' .. c .. y, v)\n"
	"    end\n"
	"  elseif k == 11 then redis.call('HSET', 'hq:ret', c, v)\n"
	"  elseif k == 12 then redis.call('HDEL', 'hq:ret', c)\n"
	"  end\n"
	"end\n"
	/* a message nothing references by the batch's end is not kept */
	"for _, id in ipairs(fresh) do\n"
	"  if redis.call('HEXISTS', 'hq:mref', id) == 0 then redis.call('HDEL', 'hq:msg', id) end\n"
	"end\n"
	"for t, l in pairs(hw) do\n"
	"  local cur = tonumber(redis.call('HGET', 'hq:idhw', t) or '0')\n"
	"  if l > cur then redis.call('HSET', 'hq:idhw', t, string.format('%.0f', l)) end\n"
	"end\n"
	"return fenced\n";

/* ARGV[1] = node name: its tag (allocated on first use, 1..65534) and the
 * high-water mark of the ids stored under it, as a decimal string. */
static const char tag_lua[] =
	"local t = redis.call('HGET', 'hq:nodetag', ARGV[1])\n"
	"if not t then\n"
	"  t = redis.call('INCR', 'hq:nodetag:seq')\n"
	"  if t > 65534 then return redis.error_reply('ERR hamqtt: no node tag left (65534 used)') end\n"
	"  redis.call('HSET', 'hq:nodetag', ARGV[1], t)\n"
	"end\n"
	"t = tonumber(t)\n"
	"return { t, redis.call('HGET', 'hq:idhw', t) or '0' }\n";

const char *const rscript_text[RSCRIPT_N] = { batch_lua, tag_lua };
