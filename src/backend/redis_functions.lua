#!lua name=stockd_v3
-- redis_functions.lua -- the redis backend's Redis Function library: one
-- function per operation (docs/redis.md has the key layout). The C side
-- (src/backend/redis.c) loads it with FUNCTION LOAD REPLACE at open and calls
-- the functions with FCALL; every key a call touches is in its KEYS and
-- shares one hash tag, so a Redis Cluster never needs a cross-slot call
-- (except a SKU's other buckets, with buckets=K > 1, which only a single
-- server is sent in one call; a cluster calls the cb_* functions below,
-- one bucket each).
--
-- Numbers: Redis's Lua has only doubles, exact to 2^53, but stock levels and
-- totals go to 2^63-1. They are stored as decimal strings and computed on
-- here as two limbs (hi * 10^9 + lo, 0 <= lo < 10^9, hi exact in a double).
--
-- Records: an id's record (a line, a refund, an adjustment, a same-slot
-- order) is a field of a hash in its SKU's slot. A directory entry in the
-- id's own slot names that SKU (the owner) and a generation. A record may be
-- a tombstone "~G": the id was moved to another owner at generation G, and a
-- call that still carries generation <= G answers MOVED (the client reads the
-- directory again).

local BASE = 1000000000
local MAX = {9223372036, 854775807}

local function num(text)
    local negative = text:sub(1, 1) == '-'
    if negative then text = text:sub(2) end
    local value = {tonumber(text:sub(1, -10)) or 0, tonumber(text:sub(-9))}
    if negative and value[2] > 0 then return {-value[1] - 1, BASE - value[2]} end
    if negative then return {-value[1], 0} end
    return value
end

local function add(a, b)
    local hi, lo = a[1] + b[1], a[2] + b[2]
    if lo >= BASE then return {hi + 1, lo - BASE} end
    return {hi, lo}
end

local function neg(a)
    if a[2] > 0 then return {-a[1] - 1, BASE - a[2]} end
    return {-a[1], 0}
end

local function sub(a, b) return add(a, neg(b)) end

local function less(a, b)
    return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

local function str(a)
    if a[1] < 0 then return '-' .. str(neg(a)) end
    if a[1] == 0 then return string.format('%d', a[2]) end
    return string.format('%d%09d', a[1], a[2])
end

local function over(a) return less(MAX, a) end

local function split(text)
    local fields = {}
    for field in text:gmatch('%S+') do fields[#fields + 1] = field end
    return fields
end

-- What a record field holds for a caller at generation gen: nil (free),
-- 'moved', or the record's fields, from the field's value.
local function record_value(value, gen)
    if not value then return nil end
    if value:sub(1, 1) == '~' then
        if tonumber(gen) <= tonumber(value:sub(2)) then return 'moved' end
        return nil
    end
    return split(value)
end

-- The same, read from field id of hash.
local function record(hash, id, gen)
    return record_value(redis.call('HGET', hash, id), gen)
end

local function totals(stock)
    local v = redis.call('HMGET', stock, 'av', 'adj', 'ded', 'ref')
    if not v[1] then return nil end
    -- was: the available stock as read, for the record's bv
    return {av = num(v[1]), adj = num(v[2]), ded = num(v[3]), ref = num(v[4]), was = v[1]}
end

local function save(stock, t)
    redis.call('HSET', stock, 'av', str(t.av), 'adj', str(t.adj), 'ded', str(t.ded),
               'ref', str(t.ref))
end

-- ------------------------------------------------------------- buckets

-- With buckets=K (docs/redis.md, "Hot-SKU buckets") a SKU's stock is
-- spread over K stock hashes: the home one (bucket 1 here, the key every
-- K=1 store has) and K-1 more in other slots, each with its own av adj
-- ded ref so that I2 holds bucket by bucket and so for their sum. A call
-- passes a SKU's buckets as a list of stock keys, the home first; a bucket
-- that does not exist yet holds 0 of everything. A SKU exists when its home
-- does.

local function zero() return {av = {0, 0}, adj = {0, 0}, ded = {0, 0}, ref = {0, 0}} end

-- The SKU's buckets' totals and their sum; nil when the SKU does not exist.
local function sku_read(stocks)
    local home = totals(stocks[1])
    if not home then return nil end
    local sku = {keys = stocks, each = {home}, sum = zero(), dirty = {}}
    for i = 2, #stocks do sku.each[i] = totals(stocks[i]) or zero() end
    for _, t in ipairs(sku.each) do
        sku.sum = {av = add(sku.sum.av, t.av), adj = add(sku.sum.adj, t.adj),
                   ded = add(sku.sum.ded, t.ded), ref = add(sku.sum.ref, t.ref)}
    end
    -- was: the SKU's available as read, for the record's bv (as totals)
    sku.sum.was = str(sku.sum.av)
    return sku
end

-- Writes the buckets a change touched.
local function sku_save(sku)
    for i in pairs(sku.dirty) do save(sku.keys[i], sku.each[i]) end
    sku.dirty = {}
end

-- Moves the available of bucket i by delta (a two-limb number) and one of
-- its totals (field) by delta or -delta (sign), in the bucket and in the sum.
local function sku_move(sku, i, delta, field, sign)
    local t = sku.each[i]
    local d = sign < 0 and neg(delta) or delta
    t.av, sku.sum.av = add(t.av, delta), add(sku.sum.av, delta)
    t[field], sku.sum[field] = add(t[field], d), add(sku.sum[field], d)
    sku.dirty[i] = true
end

-- The bucket a line's units come from (and go back to on a refund): fixed
-- by the line id, so that every client picks the same one.
local function line_bucket(line, count)
    local h = 0
    for i = 1, #line do h = (h * 31 + line:byte(i)) % 65521 end
    return h % count + 1
end

-- Takes qty from bucket i after the caller checked that the sum covers
-- it. A short bucket is filled first from the others, in bucket order after
-- it (each move counts as an adjustment out of one bucket and into the
-- other, so the SKU's adjusted total is unchanged).
local function sku_take(sku, i, qty)
    local k = #sku.keys
    for step = 1, k - 1 do
        local short = sub(qty, sku.each[i].av)
        if short[1] < 0 or (short[1] == 0 and short[2] == 0) then break end
        local j = (i - 1 + step) % k + 1
        local give = less(sku.each[j].av, short) and sku.each[j].av or short
        if give[1] > 0 or give[2] > 0 then
            sku_move(sku, j, neg(give), 'adj', 1)
            sku_move(sku, i, give, 'adj', 1)
        end
    end
    sku_move(sku, i, neg(qty), 'ded', -1)
end

-- level / count as two limbs, and the remainder (count <= 64).
local function divide(level, count)
    local hi = math.floor(level[1] / count)
    local rest = (level[1] - hi * count) * BASE + level[2]
    local lo = math.floor(rest / count)
    return add({hi, 0}, {math.floor(lo / BASE), lo % BASE}), rest - lo * count
end

-- Spreads a new available level over the buckets as evenly as integers
-- allow; each bucket's adjusted total moves by its own change, so their sum
-- moves by level - available, as a set does.
local function sku_spread(sku, level)
    local share, rest = divide(level, #sku.keys)
    for i = 1, #sku.keys do
        local target = i <= rest and add(share, {0, 1}) or share
        sku_move(sku, i, sub(target, sku.each[i].av), 'adj', 1)
    end
end

-- The stock keys of a call's SKU: keys[home], then keys[first..last].
local function stock_keys(keys, home, first, last)
    local stocks = {keys[home]}
    for i = first, last do stocks[#stocks + 1] = keys[i] end
    return stocks
end

-- A line record: qty refunded time_us available_after order ('-' for none),
-- and for a line of an order over several slots the attempt that took it
-- (so that giving back an old attempt never touches a newer one's lines).
local function line_text(qty, refunded, time, after, order)
    return qty .. ' ' .. refunded .. ' ' .. time .. ' ' .. after .. ' ' .. order
end

-- --------------------------------------------------------------- outbox

-- Every call that changes stock appends its flow record to the outbox
-- stream of its slot (the last key of the call), in the same call, so the
-- record exists exactly when the change does. Entry ids are 0-1, 0-2, ...:
-- the stream's own sequence, kept by Redis even when entries are deleted.
-- Fields: ms (server time, for lag), k (kind: set, add, line, refund, undo),
-- sku, the SKU's totals after the change (av adj ded ref), then the kind's,
-- then the SKU's available stock before it (bv, which stock events compare
-- av with). deduct_many writes one entry of kind 'lines' per stream instead,
-- holding its lone deductions (many_write).

local function now_ms()
    local t = redis.call('TIME')
    return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end

-- The SKU of a stock key P{sku:S} (the prefix has no braces).
local function sku_of(stock)
    return stock:match('^[^{]*{sku:(.*)}$')
end

-- Whether outbox names a stream: a store made with outbox=0 keeps none,
-- and its client passes the stream's name with the suffix ':none' (the
-- key of the same slot, never read or written) in its place.
local function kept(outbox)
    return outbox:sub(-5) ~= ':none'
end

local function emit(outbox, kind, stock, t, ...)
    if not kept(outbox) then return end
    local fields = {...}
    fields[#fields + 1] = 'bv'
    fields[#fields + 1] = t.was
    redis.call('XADD', outbox, '0-*', 'ms', now_ms(), 'k', kind, 'sku', sku_of(stock),
               'av', str(t.av), 'adj', str(t.adj), 'ded', str(t.ded), 'ref', str(t.ref),
               unpack(fields))
end

-- Whether the outbox is further behind than a limit allows: the records it
-- holds (some reader's group has not acknowledged them: outbox_trim), or
-- the age in ms of the oldest ('0': no limit).
local function lagging(outbox, records, ms)
    if records ~= '0' and redis.call('XLEN', outbox) >= tonumber(records) then return true end
    if ms == '0' then return false end
    local first = redis.call('XRANGE', outbox, '-', '+', 'COUNT', 1)[1]
    return first ~= nil and tonumber(now_ms()) - tonumber(first[2][2]) >= tonumber(ms)
end

-- ------------------------------------------------------------ directory

-- A directory entry is a string "generation owner"; a client claims a new
-- id with SET key "1 owner" NX GET (no function needed).

-- KEYS: the old owner's record hash. ARGV: id, generation of the binding.
-- Leaves a tombstone unless a real record holds the id.
local function fence(keys, args)
    local value = redis.call('HGET', keys[1], args[1])
    if value and value:sub(1, 1) ~= '~' then return 'exists' end
    redis.call('HSET', keys[1], args[1], '~' .. args[2])
    return 'fenced'
end

-- KEYS: directory entry. ARGV: old owner, old generation, new owner.
local function rebind(keys, args)
    if redis.call('GET', keys[1]) ~= args[2] .. ' ' .. args[1] then return {'retry'} end
    local gen = tostring(tonumber(args[2]) + 1)
    redis.call('SET', keys[1], gen .. ' ' .. args[3])
    return {'ok', gen}
end

-- --------------------------------------------------------------- stock

-- KEYS: stock, outbox, then the SKU's other buckets. ARGV: level,
-- has_expect ('0'|'1'), expect.
local function set(keys, args)
    local stocks = stock_keys(keys, 1, 3, #keys)
    local sku = sku_read(stocks)
    if not sku then
        if args[2] == '1' then return {'NOTFOUND'} end
        redis.call('HSET', keys[1], 'av', '0', 'adj', '0', 'ded', '0', 'ref', '0')
        sku = sku_read(stocks)
    elseif args[2] == '1' and str(sku.sum.av) ~= args[3] then
        return {'MISMATCH', str(sku.sum.av)}
    end
    local level = num(args[1])
    if over(add(sku.sum.adj, sub(level, sku.sum.av))) then return {'OVERFLOW'} end
    sku_spread(sku, level)
    sku_save(sku)
    emit(keys[2], 'set', keys[1], sku.sum)
    return {'OK', args[1]}
end

-- An add's id check (its adjustments hash; ARGV: delta, adjustment id, ''
-- for none, gen): the answer when the id is known or moved, else nil.
local function adjustment_check(adjustments, args)
    if args[2] == '' then return nil end
    local r = record(adjustments, args[2], args[3])
    if r == 'moved' then return {'MOVED'} end
    if r and r[1] == args[1] then return {'REPLAY', r[2]} end
    if r then return {'CONFLICT'} end
    return nil
end

-- Records an add under its id, if it has one, with the available after it.
local function adjustment_write(adjustments, args, available)
    if args[2] ~= '' then
        redis.call('HSET', adjustments, args[2], args[1] .. ' ' .. str(available))
    end
end

-- KEYS: stock, adjustments, outbox, then the SKU's other buckets. ARGV:
-- delta, adjustment id ('' for none), gen. The new level is spread over
-- the buckets, as a set's.
local function add_stock(keys, args)
    local answer = adjustment_check(keys[2], args)
    if answer then return answer end
    local sku = sku_read(stock_keys(keys, 1, 4, #keys))
    if not sku then return {'NOTFOUND'} end
    local delta = num(args[1])
    local available, adjusted = add(sku.sum.av, delta), add(sku.sum.adj, delta)
    if over(available) or over(adjusted) then return {'OVERFLOW'} end
    if available[1] < 0 then return {'INSUFFICIENT', str(sku.sum.av)} end
    sku_spread(sku, available)
    sku_save(sku)
    adjustment_write(keys[2], args, available)
    emit(keys[3], 'add', keys[1], sku.sum, 'id', args[2], 'q', args[1])
    return {'OK', str(available)}
end

-- KEYS: stock, flow, outbox, then the SKU's other buckets. ARGV: line,
-- qty, time_us, gen, then the lag limits (records, ms; '0' for none).
local function deduct(keys, args)
    local r = record(keys[2], args[1], args[4])
    if r == 'moved' then return {'MOVED'} end
    if r and r[5] == '-' and r[1] == args[2] then return {'REPLAY', r[4]} end
    if r then return {'CONFLICT'} end
    if lagging(keys[3], args[5], args[6]) then return {'LAGGING'} end
    local sku = sku_read(stock_keys(keys, 1, 4, #keys))
    if not sku then return {'NOTFOUND'} end
    local qty = num(args[2])
    if less(sku.sum.av, qty) then return {'INSUFFICIENT', str(sku.sum.av)} end
    if over(add(sku.sum.ded, qty)) then return {'OVERFLOW'} end
    sku_take(sku, line_bucket(args[1], #sku.keys), qty)
    sku_save(sku)
    local after = str(sku.sum.av)
    redis.call('HSET', keys[2], args[1], line_text(args[2], '0', args[3], after, '-'))
    emit(keys[3], 'line', keys[1], sku.sum, 'id', args[1], 'q', args[2], 't', args[3], 'o', '')
    return {'OK', after}
end

-- On a single server, which takes keys of any slot, the line id's claim and
-- the deduction are one call (on a cluster they are two: the directory entry
-- lives in the line id's slot). KEYS: the line's directory entry, stock,
-- flow, outbox, the SKU's other buckets. ARGV: line, qty, time_us, sku, lag
-- limits. Answers as
-- deduct, or {'other', gen, owner} when the line id is bound to another SKU.
local function claim_deduct(keys, args)
    local entry = redis.call('GET', keys[1])
    local gen = '1'
    if entry then
        local owner
        gen, owner = entry:match('^(%S+) (.*)$')
        if owner ~= args[4] then return {'other', gen, owner} end
    else
        redis.call('SET', keys[1], '1 ' .. args[4])
    end
    return deduct({unpack(keys, 2)}, {args[1], args[2], args[3], gen, args[5], args[6]})
end

-- deduct_many computes on plain Lua numbers when it can: a SKU's totals
-- below 10^15 (15 digits), at most 64 deductions a call, each of at most 10
-- digits, add up to less than 10^15 + 64 * 10^10 < 2^53, where Lua's
-- doubles hold every integer exactly, and far below the 2^63-1 cap, so no
-- overflow check is needed there. The two limbs cost several small tables
-- and formats per deduction; larger totals still take them.
local SMALL_DIGITS, SMALL_OPS, SMALL_QTY_DIGITS = 15, 64, 10

-- The number a total's text holds when it is small (above), else nil.
local function small(text)
    if #text > SMALL_DIGITS or not text:find('^%d+$') then return nil end
    return tonumber(text)
end

-- A SKU of deduct_many with its totals read: t (numbers when fast, two
-- limbs otherwise), and their canonical texts av adj ded ref (what the
-- outbox records carry; a deduction changes av and ded only).
local function many_sku(stock, fast)
    local s = {stock = stock}
    local v = redis.call('HMGET', stock, 'av', 'adj', 'ded', 'ref')
    if not v[1] then return s end
    local n = fast and {av = small(v[1]), adj = small(v[2]), ded = small(v[3]),
                        ref = small(v[4])}
    if n and n.av and n.adj and n.ded and n.ref then
        s.fast, s.t = true, n
        s.av, s.adj = string.format('%d', n.av), string.format('%d', n.adj)
        s.ded, s.ref = string.format('%d', n.ded), string.format('%d', n.ref)
    else
        s.t = {av = num(v[1]), adj = num(v[2]), ded = num(v[3]), ref = num(v[4])}
        s.av, s.adj, s.ded, s.ref = str(s.t.av), str(s.t.adj), str(s.t.ded), str(s.t.ref)
    end
    return s
end

-- A run of deductions in one call (deduct_many, below): the SKUs of the
-- call with their totals and the records their ops' line ids hold, and the
-- outbox entry of each stream the call touches (outboxes, in order; tokens
-- by stream, 8 a record: see many_write). entries, when claiming, holds
-- each op's directory entry (false: none): a line id without one has no
-- record anywhere, since a record is written after its entry and entries
-- are never deleted, so only the ids with an entry are looked up.
local function many_skus(keys, args, m, n, first, stride, entries)
    local fast = n <= SMALL_OPS
    for i = 1, n do
        fast = fast and #args[first + (i - 1) * stride + 1] <= SMALL_QTY_DIGITS
    end
    local skus, outboxes, tokens = {}, {}, {}
    for s = 1, m do
        local sku = many_sku(keys[s * 3 - 2], fast)
        sku.flow, sku.outbox, sku.id = keys[s * 3 - 1], keys[s * 3], args[3 + s]
        sku.claim, sku.ids, sku.records, sku.writes = '1 ' .. sku.id, {}, {}, {}
        sku.sku = sku_of(sku.stock)
        if kept(sku.outbox) and not tokens[sku.outbox] then
            outboxes[#outboxes + 1] = sku.outbox
            tokens[sku.outbox] = {}
        end
        sku.tokens = tokens[sku.outbox]   -- nil without an outbox
        skus[s] = sku
    end
    for i = 1, n do
        if not entries or entries[i] then
            local at = first + (i - 1) * stride
            local s = skus[m == 1 and 1 or tonumber(args[at + 2])]
            s.ids[#s.ids + 1] = args[at]
        end
    end
    for _, s in ipairs(skus) do
        if #s.ids > 0 then
            local values = redis.call('HMGET', s.flow, unpack(s.ids))
            for k, id in ipairs(s.ids) do s.records[id] = values[k] end
        end
    end
    return skus, outboxes, tokens
end

-- One deduction of deduct_many, judged as deduct judges it, on the SKU's
-- totals in memory; its line's record and outbox record are queued on the
-- SKU's writes and its stream's tokens. Answers as deduct_many (below).
local function many_take(s, line, qty, gen, time)
    local value = s.records[line]
    if value and value:sub(1, 1) == '~' then
        if tonumber(gen) <= tonumber(value:sub(2)) then return {'MOVED'} end
        value = nil
    end
    if value then
        local r = split(value)
        if r[5] == '-' and r[1] == qty then return {'REPLAY', r[4]} end
        return {'CONFLICT'}
    end
    local t, before = s.t, s.av
    if not t then return {'NOTFOUND'} end
    local tokens = s.tokens
    if s.fast then
        local q = tonumber(qty)
        if t.av < q then return {'INSUFFICIENT', before} end
        t.av, t.ded = t.av - q, t.ded + q
        s.av = string.format('%d', t.av)
        -- ded's text is needed per line only by its outbox record
        if tokens then s.ded = string.format('%d', t.ded) end
    else
        local q = num(qty)
        if less(t.av, q) then return {'INSUFFICIENT', before} end
        if over(add(t.ded, q)) then return {'OVERFLOW'} end
        t.av, t.ded = sub(t.av, q), add(t.ded, q)
        s.av, s.ded = str(t.av), str(t.ded)
    end
    local writes = s.writes
    writes[#writes + 1] = line
    writes[#writes + 1] = qty .. ' 0 ' .. time .. ' ' .. s.av .. ' -'
    if not tokens then return s.av end
    local k = #tokens
    tokens[k + 1], tokens[k + 2], tokens[k + 3], tokens[k + 4] = s.sku, line, qty, s.av
    tokens[k + 5], tokens[k + 6], tokens[k + 7], tokens[k + 8] = s.adj, s.ded, s.ref, before
    return s.av
end

-- Writes what deduct_many's ops took: per SKU its totals and lines, then
-- one outbox entry per stream (per slot) holding all its lines, kind
-- 'lines' (docs/redis.md, "The outbox"): one XADD of 12 arguments instead
-- of one of 25 per line, which was two thirds of the plain script's whole
-- cost per deduction. The entry's id 0-S is its first line's sequence; the
-- stream's last id is then moved to its last line's, S + nr - 1, so that
-- every line keeps a sequence of its own (what the persister's gap check
-- and the events' sequences count). A deduction changes av and ded only.
local function many_write(skus, outboxes, tokens, time)
    for _, s in ipairs(skus) do
        if #s.writes > 0 then
            if s.fast then s.ded = string.format('%d', s.t.ded) end
            redis.call('HSET', s.stock, 'av', s.av, 'ded', s.ded)
            redis.call('HSET', s.flow, unpack(s.writes))
        end
    end
    local ms = nil
    for _, outbox in ipairs(outboxes) do
        local nr = #tokens[outbox] / 8
        if nr > 0 then
            ms = ms or now_ms()
            local id = redis.call('XADD', outbox, '0-*', 'ms', ms, 'k', 'lines',
                                  'nr', string.format('%d', nr), 't', time,
                                  'r', table.concat(tokens[outbox], ' '))
            if nr > 1 then
                local last = tonumber(id:match('%-(%d+)$')) + nr - 1
                redis.call('XSETID', outbox, string.format('0-%d', last))
            end
        end
    end
end

-- A run of deductions in one call, each judged and applied in order as
-- deduct (or claim_deduct) would: a batch of 16 on one SKU costs one FCALL,
-- one read and one write of the totals, one HMGET and one HSET of the lines
-- and one outbox entry, instead of 16 calls of 8 commands each
-- (docs/redis.md, "Performance"). The line ids of one call are distinct (the
-- client cuts its runs where ids repeat). No lag limits: with
-- outbox_lag_max the client sends deduct or claim_deduct per op.
-- KEYS: per SKU of the call its stock, flow and outbox keys; then, when
-- claiming (a single server), each op's line directory entry.
-- ARGV: time_us, claiming ('1'|'0'), the SKU count m, the m SKU ids, then
-- per op: line, qty, its SKU's index (1..m) only when m > 1, and its gen
-- only when not claiming.
-- Returns one answer per op: the available after it (a string) for a
-- deduction that took its units, else an array as deduct's. An op that
-- answers 'other' (its line id is bound to another SKU: claim_deduct's
-- answer) or MOVED ends the call: the ops after it are not judged and get
-- no answer (the client sends them again after it). No argument the call
-- can do without, and no table per answer: docs/redis.md, "Performance",
-- measures what they cost.
local function deduct_many(keys, args)
    local time, claiming, m = args[1], args[2] == '1', tonumber(args[3])
    local first = 4 + m
    local stride = 2 + (m > 1 and 1 or 0) + (claiming and 0 or 1)
    local n = (#args - first + 1) / stride
    local entries = claiming and redis.call('MGET', unpack(keys, 3 * m + 1, 3 * m + n)) or {}
    local skus, outboxes, tokens = many_skus(keys, args, m, n, first, stride,
                                             claiming and entries)
    local claims, answers = {}, {}
    for i = 1, n do
        local at = first + (i - 1) * stride
        local s = skus[m == 1 and 1 or tonumber(args[at + 2])]
        local gen = not claiming and args[at + stride - 1]
        local answer
        if claiming and entries[i] then
            local owner
            gen, owner = entries[i]:match('^(%S+) (.*)$')
            if owner ~= s.id then answer = {'other', gen, owner} end
        elseif claiming then
            gen = '1'
            claims[#claims + 1] = keys[3 * m + i]
            claims[#claims + 1] = s.claim
        end
        answer = answer or many_take(s, args[at], args[at + 1], gen, time)
        answers[i] = answer
        if type(answer) == 'table' and (answer[1] == 'other' or answer[1] == 'MOVED') then
            break
        end
    end
    if #claims > 0 then redis.call('MSET', unpack(claims)) end
    many_write(skus, outboxes, tokens, time)
    return answers
end

-- A refund's checks before it touches a total (flow and refunds of the
-- line's bucket; ARGV: refund id, line, qty, gen): the answer when it ends
-- there, else nil and the line's fields.
local function refund_check(flow, refunds, args)
    local r = record(refunds, args[1], args[4])
    if r == 'moved' then return {'MOVED'} end
    if r and r[1] == args[2] and r[2] == args[3] then return {'REPLAY', r[3]} end
    if r then return {'CONFLICT'} end
    local line = redis.call('HGET', flow, args[2])
    if not line or line:sub(1, 1) == '~' then return {'NOTFOUND'} end
    line = split(line)
    local refundable = tonumber(line[1]) - tonumber(line[2])
    if tonumber(args[3]) > refundable then return {'EXCEEDS', tostring(refundable)} end
    return nil, line
end

-- Writes a refund's record and its line's new refunded count (returned).
local function refund_write(flow, refunds, args, line, after)
    local refunded = tostring(tonumber(line[2]) + tonumber(args[3]))
    redis.call('HSET', flow, args[2], line_text(line[1], refunded, line[3], line[4],
                                                table.concat(line, ' ', 5)))
    redis.call('HSET', refunds, args[1], args[2] .. ' ' .. args[3] .. ' ' .. after)
    return refunded
end

-- KEYS: stock, flow, refunds, outbox, then the SKU's other buckets. ARGV:
-- refund id, line, qty, gen. The units go back to the line's bucket.
local function refund(keys, args)
    local answer, line = refund_check(keys[2], keys[3], args)
    if answer then return answer end
    local sku = sku_read(stock_keys(keys, 1, 5, #keys))
    local available, refunded = add(sku.sum.av, num(args[3])), add(sku.sum.ref, num(args[3]))
    if over(available) or over(refunded) then return {'OVERFLOW'} end
    sku_move(sku, line_bucket(args[2], #sku.keys), num(args[3]), 'ref', 1)
    sku_save(sku)
    local after = str(available)
    local refunded = refund_write(keys[2], keys[3], args, line, after)
    emit(keys[4], 'refund', keys[1], sku.sum, 'id', args[1], 'line', args[2], 'q', args[3],
         'lr', refunded)
    return {'OK', after}
end

-- KEYS: stock, then the SKU's other buckets.
local function get(keys)
    local sku = sku_read(keys)
    if not sku then return {'NOTFOUND'} end
    local t = sku.sum
    return {'OK', str(t.av), str(t.adj), str(t.ded), str(t.ref)}
end

-- KEYS: flow. ARGV: line.
local function line_info(keys, args)
    local line = redis.call('HGET', keys[1], args[1])
    if not line or line:sub(1, 1) == '~' then return {'NOTFOUND'} end
    local f = split(line)
    return {'OK', f[1], f[2], f[3], f[4], f[5]}
end

-- KEYS: stock, flow. ARGV: line, gen. Whether the SKU exists and what the
-- line id is there: 'free', 'moved' or 'taken'.
local function probe(keys, args)
    local r = record(keys[2], args[1], args[2])
    local sku = redis.call('EXISTS', keys[1]) == 1 and '1' or '0'
    if r == 'moved' then return {sku, 'moved'} end
    return {sku, r and 'taken' or 'free'}
end

-- KEYS: the record of an order over several slots (its directory entry
-- names no SKU, so a fence only checks that no attempt is recorded).
local function order_fence(keys)
    if redis.call('HEXISTS', keys[1], 'st') == 1 then return 'exists' end
    return 'fenced'
end

-- KEYS: the pending index of orders over several slots. ARGV: order id,
-- score. Drops the entry if its score is still the one given (a newer
-- attempt of the same order has a later one).
local function pending_drop(keys, args)
    if redis.call('ZSCORE', keys[1], args[1]) == args[2] then
        return redis.call('ZREM', keys[1], args[1])
    end
    return 0
end

-- KEYS: an order's record. ARGV: now_ms. An attempt whose lease has passed
-- is marked 'undoing' (so that its client, if it is only slow, can no
-- longer end it 'done') and returned for giving back: {'undo', attempt,
-- lines}; else {state} ('' for none, 'taking' while the lease runs).
local function order_abandon(keys, args)
    local e = redis.call('HMGET', keys[1], 'st', 'att', 'spec', 'lease')
    if e[1] == 'taking' and tonumber(e[4]) <= tonumber(args[1]) then
        redis.call('HSET', keys[1], 'st', 'undoing')
        e[1] = 'undoing'
    end
    if e[1] == 'undoing' then return {'undo', e[2], e[3]} end
    return {e[1] or ''}
end

-- --------------------------------------------------------------- orders

-- The SKU of a line (as order_lines reads it): its buckets, read once per
-- call into skus (by stock key index) so that its lines see each other.
local function line_sku(keys, skus, l)
    if not skus[l[2]] then skus[l[2]] = sku_read(stock_keys(keys, l[2], l[4], l[4] + l[5] - 1)) end
    return skus[l[2]]
end

-- Takes the lines of one slot after every check passed. lines[i] = {line,
-- stock index, qty, first other bucket's key index, other buckets}; order
-- is the order id (and attempt); positions[i] is line i's place in the
-- whole order (from 0) and total the order's line count, both for its
-- outbox record (the persister writes the order). Returns each line's
-- available after.
local function take(keys, lines, time, order, outbox, positions, total)
    local after, skus = {}, {}
    local id = order:match('^%S+')
    for i, l in ipairs(lines) do
        local sku = line_sku(keys, skus, l)
        -- an earlier line of this call may have taken from the same SKU
        sku.sum.was = str(sku.sum.av)
        sku_take(sku, line_bucket(l[1], #sku.keys), num(l[3]))
        sku_save(sku)
        after[i] = str(sku.sum.av)
        redis.call('HSET', keys[l[2] + 1], l[1], line_text(l[3], '0', time, after[i], order))
        emit(outbox, 'line', keys[l[2]], sku.sum, 'id', l[1], 'q', l[3], 't', time, 'o', id,
             'n', positions[i], 'c', total)
    end
    return after
end

-- Checks lines (as for take) against their SKUs: line conflicts and SKU
-- existence in line order, then each SKU against the sum of its lines in
-- order of first appearance. gens[i] is line i's directory generation,
-- elsewhere[i] '1' when its id is a line of another slot. Returns nil or a
-- failure {code, line index, value}.
local function check(keys, lines, gens, elsewhere)
    local skus = {}
    for i, l in ipairs(lines) do
        local r = elsewhere[i] == '1' and {} or record(keys[l[2] + 1], l[1], gens[i])
        if r == 'moved' then return {'MOVED', i} end
        if r then return {'CONFLICT', i} end
        if not line_sku(keys, skus, l) then return {'NOTFOUND', i} end
    end
    local seen = {}
    for i, l in ipairs(lines) do
        if not seen[l[2]] then
            seen[l[2]] = true
            local sum = {0, 0}
            for _, m in ipairs(lines) do
                if m[2] == l[2] then sum = add(sum, num(m[3])) end
            end
            local t = skus[l[2]].sum
            if less(t.av, sum) then return {'INSUFFICIENT', i, str(t.av)} end
            if over(add(t.ded, sum)) then return {'OVERFLOW', i} end
        end
    end
    return nil
end

-- Reads the order lines of ARGV from position first: per line its id, the
-- index of its SKU's stock key (the flow key follows it), qty, generation,
-- elsewhere flag, and the index and count of its SKU's other buckets' keys.
local function order_lines(args, first, count)
    local lines, gens, elsewhere = {}, {}, {}
    for i = 1, count do
        local at = first + (i - 1) * 7
        lines[i] = {args[at], tonumber(args[at + 1]), args[at + 2], tonumber(args[at + 5]),
                    tonumber(args[at + 6])}
        gens[i], elsewhere[i] = args[at + 3], args[at + 4]
    end
    return lines, gens, elsewhere
end

-- An order whose SKUs share one slot (or any order on one server with
-- buckets). KEYS: stock, flow per SKU, their other buckets, then the orders
-- hash, the outbox. ARGV: order id, gen, spec, time_us, count, then 7 per
-- line, then the lag limits.
local function order(keys, args)
    local outbox = table.remove(keys)
    local orders = keys[#keys]
    local r = record(orders, args[1], args[2])
    if r == 'moved' then return {'MOVED', '0'} end
    local lines, gens, elsewhere = order_lines(args, 6, tonumber(args[5]))
    if r then
        if redis.call('HGET', orders, args[1]) ~= args[3] then return {'CONFLICT', '0'} end
        local after = {'REPLAY', '0'}
        for _, l in ipairs(lines) do
            after[#after + 1] = split(redis.call('HGET', keys[l[2] + 1], l[1]))[4]
        end
        return after
    end
    if lagging(outbox, args[#args - 1], args[#args]) then return {'LAGGING', '0'} end
    local failure = check(keys, lines, gens, elsewhere)
    if failure then
        return {failure[1], tostring(failure[2]), failure[3]}
    end
    redis.call('HSET', orders, args[1], args[3])
    local positions = {}
    for i = 1, #lines do positions[i] = tostring(i - 1) end
    local after = take(keys, lines, args[4], args[1], outbox, positions, tostring(#lines))
    table.insert(after, 1, '0')
    table.insert(after, 1, 'OK')
    return after
end

-- One slot's part of an order over several slots. KEYS: stock, flow per
-- SKU, then the order fences hash, the outbox. ARGV: order id, attempt,
-- time_us, count, then 7 per line (elsewhere is always '0' here, and no
-- other buckets: a store with buckets runs on one server), then the order's
-- line count and the lines' positions in it (space-separated), then the lag
-- limits.
local function order_take(keys, args)
    local outbox = table.remove(keys)
    local fences = keys[#keys]
    local fenced = redis.call('HGET', fences, args[1])
    if fenced and tonumber(fenced) >= tonumber(args[2]) then return {'FENCED', '0'} end
    if lagging(outbox, args[#args - 1], args[#args]) then return {'LAGGING', '0'} end
    local lines, gens, elsewhere = order_lines(args, 5, tonumber(args[4]))
    local failure = check(keys, lines, gens, elsewhere)
    if failure then
        return {failure[1], tostring(failure[2]), failure[3]}
    end
    local positions = {}
    for n in args[#args - 2]:gmatch('%S+') do positions[#positions + 1] = n end
    local after = take(keys, lines, args[3], args[1] .. ' ' .. args[2], outbox, positions,
                       args[#args - 3])
    table.insert(after, 1, '0')
    table.insert(after, 1, 'OK')
    return after
end

-- Gives back what an attempt (or an older one) of a cross-slot order took
-- in one slot, as if it never happened, and fences the attempt out of the
-- slot; a newer attempt's lines stay. KEYS: stock,
-- flow per SKU, then the order fences hash, the outbox. ARGV: order id,
-- attempt, count, then per line its id and stock key index.
local function order_untake(keys, args)
    local outbox = table.remove(keys)
    local fences = keys[#keys]
    local fenced = redis.call('HGET', fences, args[1])
    if not fenced or tonumber(fenced) < tonumber(args[2]) then
        redis.call('HSET', fences, args[1], args[2])
    end
    local undone = 0
    for i = 1, tonumber(args[3]) do
        local id, stock = args[2 + i * 2], tonumber(args[3 + i * 2])
        local line = redis.call('HGET', keys[stock + 1], id)
        local f = line and split(line)
        if f and f[5] == args[1] and tonumber(f[6] or '0') <= tonumber(args[2]) then
            local t = totals(keys[stock])
            t.av = add(t.av, sub(num(f[1]), num(f[2])))
            t.ded, t.ref = sub(t.ded, num(f[1])), sub(t.ref, num(f[2]))
            save(keys[stock], t)
            redis.call('HDEL', keys[stock + 1], id)
            emit(outbox, 'undo', keys[stock], t, 'id', id)
            undone = undone + 1
        end
    end
    return undone
end

-- The record of an order over several slots. KEYS: its directory entry,
-- its record. ARGV: spec, now_ms, lease_ms.
local function order_begin(keys, args)
    local entry = redis.call('GET', keys[1])
    if not entry then
        entry = '1 *'
        redis.call('SET', keys[1], entry)
    end
    local gen, owner = entry:match('^(%S+) (.*)$')
    if owner ~= '*' then return {'other', gen, owner} end
    local e = redis.call('HMGET', keys[2], 'st', 'spec', 'res', 'lease', 'att')
    if e[1] == 'done' and e[2] == args[1] then return {'REPLAY', e[3]} end
    if e[1] == 'done' then return {'CONFLICT'} end
    if e[1] == 'taking' and tonumber(e[4]) > tonumber(args[2]) then return {'BUSY'} end
    if e[1] == 'taking' or e[1] == 'undoing' then
        redis.call('HSET', keys[2], 'st', 'undoing')   -- its client may only be slow
        return {'STALE', e[5], e[2]}
    end
    local attempt = tostring((tonumber(e[5]) or 0) + 1)
    redis.call('HSET', keys[2], 'st', 'taking', 'spec', args[1], 'att', attempt,
               'lease', tostring(tonumber(args[2]) + tonumber(args[3])))
    return {'BEGUN', attempt}
end

-- KEYS: the order's record. ARGV: attempt, outcome ('done' or 'undone'),
-- results. 'undone' forgets the attempt: a failed order records nothing.
-- An attempt marked 'undoing' can only be undone.
local function order_end(keys, args)
    local e = redis.call('HMGET', keys[1], 'st', 'att')
    local open = e[1] == 'taking' or (e[1] == 'undoing' and args[2] == 'undone')
    if not open or e[2] ~= args[1] then return 'lost' end
    if args[2] == 'done' then
        redis.call('HSET', keys[1], 'st', 'done', 'res', args[3])
        redis.call('HDEL', keys[1], 'lease')
    else
        redis.call('HDEL', keys[1], 'st', 'spec', 'lease')
    end
    return 'ok'
end

-- ----------------------------------------------------- cluster buckets

-- buckets=K on a Redis Cluster (docs/redis.md, "Hot-SKU buckets"): a call
-- touches one bucket only (its slot), so each bucket is judged alone here
-- and the client sums the others, which it read just before the call and
-- passes as 'others' (added to this bucket's level for "available after").
-- A lone deduction's line, and its refunds, live in the line's bucket
-- (stock, flow, refunds, moves and outbox of that bucket's slot). Stock
-- moves between buckets in two calls, out of one (cb_move_out) and into
-- the other (cb_move_in), each idempotent by the move's id. Records carry
-- the SKU's id and bk, the bucket, with that bucket's totals; a move's two
-- records also mv, its id, so that readers pair them (stock events).

local function cb_emit(outbox, kind, sku, bucket, t, ...)
    if not kept(outbox) then return end
    local fields = {'ms', now_ms(), 'k', kind, 'sku', sku, 'bk', bucket, 'av', str(t.av),
                    'adj', str(t.adj), 'ded', str(t.ded), 'ref', str(t.ref), ...}
    fields[#fields + 1] = 'bv'
    fields[#fields + 1] = t.was
    redis.call('XADD', outbox, '0-*', unpack(fields))
end

-- KEYS: stock, flow, outbox of the line's bucket. ARGV: line, qty, time_us,
-- gen, sku, bucket, others, lag limits. As deduct, except that a bucket
-- short of qty answers {'SHORT', its available} (the client moves stock
-- in, or refuses with the sum).
local function cb_deduct(keys, args)
    local r = record(keys[2], args[1], args[4])
    if r == 'moved' then return {'MOVED'} end
    if r and r[5] == '-' and r[1] == args[2] then return {'REPLAY', r[4]} end
    if r then return {'CONFLICT'} end
    if lagging(keys[3], args[8], args[9]) then return {'LAGGING'} end
    local t = totals(keys[1])
    if not t then return {'NOTFOUND'} end
    local qty = num(args[2])
    if less(t.av, qty) then return {'SHORT', str(t.av)} end
    if over(add(t.ded, qty)) then return {'OVERFLOW'} end
    t.av, t.ded = sub(t.av, qty), add(t.ded, qty)
    save(keys[1], t)
    local after = str(add(t.av, num(args[7])))
    redis.call('HSET', keys[2], args[1], line_text(args[2], '0', args[3], after, '-'))
    cb_emit(keys[3], 'line', args[5], args[6], t, 'id', args[1], 'q', args[2], 't', args[3],
            'o', '')
    return {'OK', after}
end

-- KEYS: stock, flow, outbox of one bucket. ARGV: time_us, sku, bucket,
-- then per deduction: line, qty, gen, others (the other buckets' sum that
-- the client expects after it). cb_deduct's judgement of each deduction in
-- turn, with one read and one write of the bucket's totals and of the
-- lines' records (the line ids of one call are distinct): a batch's share
-- of one bucket in one call. No lag limits (with them the client sends
-- cb_deduct). Returns one answer per deduction, as cb_deduct's; a SHORT
-- does not end the call, the client sends that deduction again alone.
local function cb_deduct_many(keys, args)
    local n = (#args - 3) / 4
    local lines = {}
    for i = 1, n do lines[i] = args[4 + (i - 1) * 4] end
    local values = redis.call('HMGET', keys[2], unpack(lines))
    local t = totals(keys[1])
    local answers, writes = {}, {}
    for i = 1, n do
        local at = 4 + (i - 1) * 4
        local r, qty = record_value(values[i], args[at + 2]), num(args[at + 1])
        if r == 'moved' then answers[i] = {'MOVED'}
        elseif r and r[5] == '-' and r[1] == args[at + 1] then answers[i] = {'REPLAY', r[4]}
        elseif r then answers[i] = {'CONFLICT'}
        elseif not t then answers[i] = {'NOTFOUND'}
        elseif less(t.av, qty) then answers[i] = {'SHORT', str(t.av)}
        elseif over(add(t.ded, qty)) then answers[i] = {'OVERFLOW'}
        else
            t.was = str(t.av)
            t.av, t.ded = sub(t.av, qty), add(t.ded, qty)
            local after = str(add(t.av, num(args[at + 3])))
            writes[#writes + 1] = args[at]
            writes[#writes + 1] = line_text(args[at + 1], '0', args[1], after, '-')
            cb_emit(keys[3], 'line', args[2], args[3], t, 'id', args[at], 'q', args[at + 1],
                    't', args[1], 'o', '')
            answers[i] = {'OK', after}
        end
    end
    if #writes > 0 then
        save(keys[1], t)
        redis.call('HSET', keys[2], unpack(writes))
    end
    return answers
end

-- KEYS: stock, flow, refunds, outbox of the line's bucket. ARGV: refund
-- id, line, qty, gen, sku, bucket, others. As refund, on that bucket.
local function cb_refund(keys, args)
    local answer, line = refund_check(keys[2], keys[3], args)
    if answer then return answer end
    local t = totals(keys[1])
    local available = add(add(t.av, num(args[7])), num(args[3]))
    if over(available) or over(add(t.ref, num(args[3]))) then return {'OVERFLOW'} end
    t.av, t.ref = add(t.av, num(args[3])), add(t.ref, num(args[3]))
    save(keys[1], t)
    local after = str(available)
    local refunded = refund_write(keys[2], keys[3], args, line, after)
    cb_emit(keys[4], 'refund', args[5], args[6], t, 'id', args[1], 'line', args[2],
            'q', args[3], 'lr', refunded)
    return {'OK', after}
end

-- KEYS: stock, outbox of one bucket. ARGV: sku, bucket, the bucket's new
-- available, the available the client read ('' for a bucket it found
-- missing). Sets the bucket's level (its adjusted moves by the change, so
-- I2 holds) unless it changed since the read: {'CHANGED'}.
local function cb_set(keys, args)
    local t = totals(keys[1])
    if (t and t.was or '') ~= args[4] then return {'CHANGED'} end
    t = t or zero()
    t.was = t.was or '0'
    local level = num(args[3])
    t.adj, t.av = add(t.adj, sub(level, t.av)), level
    if over(t.adj) then return {'OVERFLOW'} end
    save(keys[1], t)
    cb_emit(keys[2], 'set', args[1], args[2], t)
    return {'OK'}
end

-- KEYS: the home's stock, adjustments, outbox. ARGV: delta, adjustment id
-- ('' for none), gen, sku, others, the others' adjusted. As add, on the
-- home alone; a write-off the home cannot cover answers {'SHORT', its
-- available}.
local function cb_add(keys, args)
    local answer = adjustment_check(keys[2], args)
    if answer then return answer end
    local t = totals(keys[1])
    if not t then return {'NOTFOUND'} end
    local delta = num(args[1])
    local level, adjusted = add(t.av, delta), add(t.adj, delta)
    local available = add(level, num(args[5]))
    if over(available) or over(add(adjusted, num(args[6]))) then return {'OVERFLOW'} end
    if level[1] < 0 then return {'SHORT', str(t.av)} end
    t.av, t.adj = level, adjusted
    save(keys[1], t)
    adjustment_write(keys[2], args, available)
    cb_emit(keys[3], 'add', args[4], '0', t, 'id', args[2], 'q', args[1])
    return {'OK', str(available)}
end

-- A move's first half. KEYS: stock, moves, outbox of the source bucket.
-- ARGV: move id, units wanted, sku, bucket. Takes what the bucket has, up
-- to the units wanted (an adjustment out of it), and records the move;
-- {'OK', units taken}, the recorded units if the move was done already.
local function cb_move_out(keys, args)
    local done = redis.call('HGET', keys[2], args[1])
    if done then return {'OK', done} end
    local t = totals(keys[1]) or zero()
    local give = less(t.av, num(args[2])) and t.av or num(args[2])
    redis.call('HSET', keys[2], args[1], str(give))
    if give[1] == 0 and give[2] == 0 then return {'OK', '0'} end
    t.was = str(t.av)
    t.av, t.adj = sub(t.av, give), sub(t.adj, give)
    save(keys[1], t)
    cb_emit(keys[3], 'add', args[3], args[4], t, 'id', '', 'q', '-' .. str(give), 'mv', args[1])
    return {'OK', str(give)}
end

-- A move's second half. KEYS: stock, moves, outbox of the target bucket.
-- ARGV: move id, units, sku, bucket. Adds the units once per move id.
local function cb_move_in(keys, args)
    if redis.call('HSETNX', keys[2], args[1], args[2]) == 0 or args[2] == '0' then
        return 'OK'
    end
    local t = totals(keys[1]) or zero()
    t.was = str(t.av)
    t.av, t.adj = add(t.av, num(args[2])), add(t.adj, num(args[2]))
    save(keys[1], t)
    cb_emit(keys[3], 'add', args[3], args[4], t, 'id', '', 'q', args[2], 'mv', args[1])
    return 'OK'
end

redis.register_function('stockd_v3_cb_deduct', cb_deduct)
redis.register_function('stockd_v3_cb_deduct_many', cb_deduct_many)
redis.register_function('stockd_v3_cb_refund', cb_refund)
redis.register_function('stockd_v3_cb_set', cb_set)
redis.register_function('stockd_v3_cb_add', cb_add)
redis.register_function('stockd_v3_cb_move_out', cb_move_out)
redis.register_function('stockd_v3_cb_move_in', cb_move_in)

-- The library's entry points. (Loading runs with few globals: no pairs.)
-- Reads are flagged no-writes, so that they still run on a server that is
-- out of memory (maxmemory), where calls that may write are refused whole.
redis.register_function('stockd_v3_fence', fence)
redis.register_function('stockd_v3_rebind', rebind)
redis.register_function('stockd_v3_set', set)
redis.register_function('stockd_v3_add', add_stock)
redis.register_function('stockd_v3_deduct', deduct)
redis.register_function('stockd_v3_claim_deduct', claim_deduct)
redis.register_function('stockd_v3_deduct_many', deduct_many)
redis.register_function('stockd_v3_refund', refund)
redis.register_function{function_name = 'stockd_v3_get', callback = get, flags = {'no-writes'}}
redis.register_function{function_name = 'stockd_v3_line', callback = line_info, flags = {'no-writes'}}
redis.register_function{function_name = 'stockd_v3_probe', callback = probe, flags = {'no-writes'}}
redis.register_function('stockd_v3_order', order)
redis.register_function{function_name = 'stockd_v3_order_fence', callback = order_fence, flags = {'no-writes'}}
redis.register_function('stockd_v3_order_take', order_take)
redis.register_function('stockd_v3_order_untake', order_untake)
redis.register_function('stockd_v3_order_begin', order_begin)
redis.register_function('stockd_v3_order_end', order_end)
redis.register_function('stockd_v3_pending_drop', pending_drop)
redis.register_function('stockd_v3_order_abandon', order_abandon)

-- The persister's lease on one outbox stream (docs/redis.md, "The outbox"):
-- KEYS: the lease key. ARGV: the persister's name, the lease in ms. Takes a
-- free lease or renews the caller's own; 1 when the caller holds it.
local function outbox_lease(keys, args)
    local holder = redis.call('GET', keys[1])
    if holder and holder ~= args[1] then return 0 end
    redis.call('SET', keys[1], args[1], 'PX', args[2])
    return 1
end

-- Stream entry ids "ms-seq" as decimal strings, compared and stepped as
-- text: a seq past 2^53 would lose digits as a Lua number.
local function dec_less(a, b)
    if #a ~= #b then return #a < #b end
    return a < b
end

local function id_less(a, b)
    local am, as = a:match('^(%d+)-(%d+)$')
    local bm, bs = b:match('^(%d+)-(%d+)$')
    if am ~= bm then return dec_less(am, bm) end
    return dec_less(as, bs)
end

local function dec_next(n)
    local head, nines = n:match('^(%d-)(9*)$')
    local digit = #head > 0 and tonumber(head:sub(-1)) + 1 or 1
    return head:sub(1, -2) .. digit .. string.rep('0', #nines)
end

-- The id right after id: entries below it are all ids up to id.
local function id_next(id)
    local ms, seq = id:match('^(%d+)-(%d+)$')
    if seq == '18446744073709551615' then return dec_next(ms) .. '-0' end
    return ms .. '-' .. dec_next(seq)
end

-- The outbox's trim (docs/redis.md, "The outbox"): every reader (the
-- persister, stockevents) reads a stream with a consumer group of its own
-- and only acknowledges; this deletes the entries every group is done
-- with: those below, for each group, its oldest pending entry, else the
-- entry after the last one delivered to it. A group that exists but does
-- not read holds the trim where it stopped. One call, so no group is
-- created and no entry read between the look and the trim.
-- KEYS: the stream. ARGV: the caller's group. Returns the entries trimmed,
-- then for the caller's group the entries it has not acknowledged (pending
-- or not yet delivered), the ms field of the oldest of them ('0': none),
-- and the stream's length after the trim.
local function outbox_trim(keys, args)
    if redis.call('EXISTS', keys[1]) == 0 then return {0, 0, '0', 0} end
    local groups = redis.call('XINFO', 'GROUPS', keys[1])
    local floor, own, oldest = nil, nil, nil
    for g = 1, #groups do
        local info = {}
        for f = 1, #groups[g], 2 do info[groups[g][f]] = groups[g][f + 1] end
        local first = nil
        if info['pending'] > 0 then
            first = redis.call('XPENDING', keys[1], info['name'])[2]
        end
        local bound = first or id_next(info['last-delivered-id'])
        if floor == nil or id_less(bound, floor) then floor = bound end
        if info['name'] == args[1] then
            own, oldest = info, first
        end
    end
    local trimmed = 0
    if floor ~= nil then trimmed = redis.call('XTRIM', keys[1], 'MINID', floor) end
    local behind, oldest_ms = 0, '0'
    if own ~= nil then
        local after = own['lag']
        if not after then
            -- Redis leaves lag unknown after deletions inside the stream:
            -- the sequences between the last delivered entry and the last
            -- one, an upper bound.
            local last = redis.call('XREVRANGE', keys[1], '+', '-', 'COUNT', 1)[1]
            local last_seq = last and tonumber(last[1]:match('-(%d+)$')) or 0
            after = math.max(0, last_seq - tonumber(own['last-delivered-id']:match('-(%d+)$')))
        end
        behind = own['pending'] + after
        local entry = nil
        if oldest ~= nil then
            entry = redis.call('XRANGE', keys[1], oldest, oldest)[1]
        end
        if entry == nil and after > 0 then
            entry = redis.call('XRANGE', keys[1], '(' .. own['last-delivered-id'], '+',
                               'COUNT', 1)[1]
        end
        if entry ~= nil then oldest_ms = entry[2][2] end
    end
    return {trimmed, behind, oldest_ms, redis.call('XLEN', keys[1])}
end

-- Warm-up (stockpersist --warm): a SKU loaded from PostgreSQL into a Redis
-- that does not hold it, in calls of a few records each. KEYS: stock, flow,
-- refunds, adjustments, outbox. ARGV: the outbox stream's position in
-- PostgreSQL, final ('1': write the totals, last), av, adj, ded, ref, the
-- record count, then per record the index of its hash in KEYS, its id and
-- its text. Compare-and-set: nothing is written while the SKU exists, and
-- no record that exists is replaced. The final call also moves the stream's
-- sequence up to the position (a marker entry 0-position, which the
-- persister skips as applied), so that new records are never taken for
-- ones PostgreSQL has already.
local function warm(keys, args)
    if redis.call('EXISTS', keys[1]) == 1 then return 'exists' end
    for i = 0, tonumber(args[7]) - 1 do
        local at = 8 + i * 3
        redis.call('HSETNX', keys[tonumber(args[at])], args[at + 1], args[at + 2])
    end
    if args[2] ~= '1' then return 'loading' end
    if args[1] ~= '0' then
        redis.pcall('XADD', keys[5], '0-' .. args[1], 'ms', now_ms(), 'k', 'mark')
    end
    redis.call('HSET', keys[1], 'av', args[3], 'adj', args[4], 'ded', args[5], 'ref', args[6])
    return 'warmed'
end

redis.register_function('stockd_v3_outbox_lease', outbox_lease)
redis.register_function('stockd_v3_outbox_trim', outbox_trim)
redis.register_function('stockd_v3_warm', warm)
