/*
 * redis_events_order.c -- the order in which the stock events of a store
 * with buckets on a Redis Cluster (layout 5, docs/events.md "From Redis")
 * hand out the records of the outbox streams. A SKU's buckets write to K
 * streams, read in turn; a sum over the buckets (redis_events_sum.c) is
 * the store's total at one moment only if no record is counted before an
 * earlier record of another stream. So the records read are held per
 * stream and handed out by their time (field ms) across all streams, and
 * only up to the low-water mark: the least time to which every stream has
 * been read (rd_order_read_to), and no later than the last look for new
 * streams (rd_order_known_to): a stream made since has records of later
 * times only. A record after it waits until every stream has been read to
 * its time.
 *
 * Memory: a stream is read again only once every record it holds is out
 * (rd_order_ready), so it holds one read at most, RD_ORDER_HELD records:
 * RD_ORDER_HELD records per stream of the store in all. No stream waits
 * for ever: a stream's mark is never before the last record it holds
 * (rd_order_read_to), so the stream that sets the low-water mark holds
 * records at or before it, which are handed out, and then it is read
 * again.
 */
#include <assert.h>
#include <stdlib.h>

#include "backend/redis.h"

typedef struct rd_order_stream {
    void *item[RD_ORDER_HELD];     /* the records held, oldest first */
    int64_t ms[RD_ORDER_HELD];     /* their times */
    uint32_t next, count;          /* item[next..count) are still held */
    int64_t read_ms;               /* read to this time; INT64_MIN: not read yet */
} rd_order_stream;

struct rd_order {
    rd_order_stream *streams;
    uint32_t capacity, count;
    uint32_t *holding;             /* the streams that hold records */
    uint32_t holding_count;
    int64_t low_ms;                /* the low-water mark, when not stale */
    bool low_stale;
    int64_t known_ms;              /* every stream made before this time is added */
};

rd_order *rd_order_new(uint32_t streams_max)
{
    assert(streams_max > 0);
    rd_order *order = calloc(1, sizeof *order);
    if (order == NULL)
        return NULL;
    order->streams = calloc(streams_max, sizeof *order->streams);
    order->holding = calloc(streams_max, sizeof *order->holding);
    if (order->streams == NULL || order->holding == NULL) {
        rd_order_free(order, NULL);
        return NULL;
    }
    order->capacity = streams_max;
    order->low_ms = INT64_MIN;
    order->known_ms = INT64_MIN;
    return order;
}

void rd_order_free(rd_order *order, void (*item_free)(void *item))
{
    if (order == NULL)
        return;
    for (uint32_t s = 0; item_free != NULL && s < order->count; s++)
        for (uint32_t i = order->streams[s].next; i < order->streams[s].count; i++)
            item_free(order->streams[s].item[i]);
    free(order->streams);
    free(order->holding);
    free(order);
}

uint32_t rd_order_add(rd_order *order)
{
    assert(order->count < order->capacity);
    order->streams[order->count].read_ms = INT64_MIN;
    order->low_ms = INT64_MIN;   /* a stream not read yet holds every record back */
    order->low_stale = false;
    return order->count++;
}

bool rd_order_ready(const rd_order *order, uint32_t stream)
{
    assert(stream < order->count);
    return order->streams[stream].next == order->streams[stream].count;
}

void rd_order_hold(rd_order *order, uint32_t stream, void *item, int64_t ms)
{
    assert(stream < order->count);
    rd_order_stream *held = &order->streams[stream];
    assert(held->count < RD_ORDER_HELD);
    /* A stream is in order: a time before the last one's (a master's clock
     * stepped back, an entry whose fields are gone: 0) counts as that one. */
    if (held->count > 0 && ms < held->ms[held->count - 1])
        ms = held->ms[held->count - 1];
    if (held->next == held->count)
        order->holding[order->holding_count++] = stream;
    held->item[held->count] = item;
    held->ms[held->count++] = ms;
}

void rd_order_read_to(rd_order *order, uint32_t stream, int64_t ms)
{
    assert(stream < order->count);
    rd_order_stream *held = &order->streams[stream];
    /* A stream has been read at least to the last record it gave: the
     * master's time asked before a read can be earlier (another client's
     * write between the two commands, a clock stepped back), and a mark
     * before a record it holds would hold that record, and every later one
     * of every stream, for ever. The mark never goes back either. */
    if (held->count > 0 && held->ms[held->count - 1] > ms)
        ms = held->ms[held->count - 1];
    if (ms > held->read_ms)
        held->read_ms = ms;
    order->low_stale = true;
}

void rd_order_known_to(rd_order *order, int64_t ms)
{
    if (ms > order->known_ms)
        order->known_ms = ms;
    order->low_stale = true;
}

int64_t rd_order_low(rd_order *order)
{
    if (order->low_stale) {
        order->low_ms = order->known_ms;
        for (uint32_t s = 0; s < order->count; s++)
            if (order->streams[s].read_ms < order->low_ms)
                order->low_ms = order->streams[s].read_ms;
        order->low_stale = false;
    }
    return order->count > 0 ? order->low_ms : INT64_MIN;
}

void *rd_order_next(rd_order *order, uint32_t *stream, int64_t *ms)
{
    int64_t low_ms = rd_order_low(order), best_ms = INT64_MAX;
    uint32_t best = UINT32_MAX;
    for (uint32_t h = 0; h < order->holding_count; h++) {
        const rd_order_stream *held = &order->streams[order->holding[h]];
        if (best == UINT32_MAX || held->ms[held->next] < best_ms) {
            best = h;
            best_ms = held->ms[held->next];
        }
    }
    if (best == UINT32_MAX || best_ms > low_ms)
        return NULL;
    *stream = order->holding[best];
    *ms = best_ms;
    rd_order_stream *held = &order->streams[*stream];
    void *item = held->item[held->next++];
    if (held->next == held->count) {
        held->next = held->count = 0;
        order->holding[best] = order->holding[--order->holding_count];
    }
    return item;
}
