-- deduct.lua -- the cache-layer deduction of docs/schemes.md, as its users
-- deploy it on Redis: one stock key and one flow hash per SKU, and a script
-- so that the check, the decrement and the flow line are atomic.
--
-- KEYS[1] stock key (an integer), KEYS[2] flow hash (line id -> qty)
-- ARGV[1] line id, ARGV[2] qty (a positive integer)
-- Returns the stock left after the deduction; a retried line id returns
-- the stock as it is now and deducts nothing (the flow hash remembers it);
-- -1 if the SKU is missing, -2 if there is not enough stock.
local qty = tonumber(ARGV[2])
if qty == nil or qty < 1 then
    return redis.error_reply('INVALID qty must be a positive integer')
end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
    return tonumber(redis.call('GET', KEYS[1]))
end
local stock = tonumber(redis.call('GET', KEYS[1]))
if stock == nil then
    return -1
end
if stock < qty then
    return -2
end
redis.call('DECRBY', KEYS[1], qty)
redis.call('HSET', KEYS[2], ARGV[1], qty)
return stock - qty
