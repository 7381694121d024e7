/*
 * model.c -- a reference model of docs/semantics.md, and a random walk that
 * checks the store against it op by op. The explicit tests in the other
 * files state each rule once; this one mixes them: thousands of random
 * operations in random batches over a few SKUs, with ids reused on purpose
 * (replays, conflicts), missing SKUs and lines, sold-out stock and invalid
 * ops, and every result (code, available, failed_line, each order line,
 * every total and line field) compared with what the model predicts.
 *
 * An id seen before is judged first: reused with a SKU or line that does
 * not exist it is CONFLICT, not NOT_FOUND (other parameters, whatever they
 * name).
 * Holds join the walk (hold, confirm whole or part, release, confirm an
 * order of holds, read a hold) with the model's own clock: holds live an
 * hour, except that now and then a batch ends with holds of
 * MODEL_SHORT_TTL_MS; the walk then sleeps MODEL_CLOCK_STEP_MS, past their
 * deadline, and the model expires them, so that no op races a deadline
 * and every expiry is known exactly.
 * The walk is deterministic per seed: a failure prints the op and the seed,
 * and CONFORMANCE_SEED=N walks the same way again (with fresh ids).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conformance.h"

#define MODEL_OPS 3000
#define MODEL_BATCH_MAX 16
#define MODEL_SKUS 4
#define MODEL_START_LEVEL 20
#define MODEL_ORDER_LINES 4
#define MODEL_LINES_MAX (MODEL_OPS * MODEL_ORDER_LINES)
#define MODEL_LONG_TTL_MS 3600000
#define MODEL_SHORT_TTL_MS 1
#define MODEL_CLOCK_STEP_MS 20

typedef struct model_sku {
    char id[CONF_ID_SIZE];
    stock_sku_info totals;
} model_sku;

typedef struct model_line {
    char id[CONF_ID_SIZE];
    int sku;
    int order;               /* index into orders, or -1 */
    int64_t qty;
    int64_t refunded;
    int64_t available_after;
} model_line;

typedef struct model_order {
    char id[CONF_ID_SIZE];
    uint32_t count;
    int lines[MODEL_ORDER_LINES];
} model_order;

/* A refund or an adjustment: an id, what it named, and its result. */
typedef struct model_record {
    char id[CONF_ID_SIZE];
    int target;              /* line (refund) or SKU (adjustment) */
    int64_t amount;
    int64_t available;
} model_record;

typedef struct model_hold {
    char id[CONF_ID_SIZE];
    int sku;
    int64_t qty;
    int64_t ttl_ms;
    stock_hold_state state;
    int64_t confirmed;
    int order;               /* the CONFIRM_ORDER's, or -1 */
    int64_t available_after; /* after the hold */
    int64_t closed_available;
} model_hold;

typedef struct model {
    uint64_t random_state;
    char missing_sku[CONF_ID_SIZE];
    model_sku skus[MODEL_SKUS];
    model_line lines[MODEL_LINES_MAX];
    int line_count;
    model_order orders[MODEL_OPS];
    int order_count;
    model_record refunds[MODEL_OPS];
    int refund_count;
    model_record adjustments[MODEL_OPS];
    int adjustment_count;
    model_hold holds[MODEL_OPS];
    int hold_count;
} model;

/* One generated op with the bytes it points to. */
typedef struct pending {
    stock_op op;
    stock_order_line lines[MODEL_ORDER_LINES];
    char ids[MODEL_ORDER_LINES + 1][CONF_ID_SIZE];   /* [0] the op's id */
} pending;

/* What the model says an op's result must be. */
typedef struct expected {
    stock_code code;
    bool has_available;
    int64_t available;
    bool has_failed_line;
    int32_t failed_line;
} expected;

/* ------------------------------------------------------------- the model */

static uint32_t roll(model *m, uint32_t n)
{
    uint64_t x = m->random_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    m->random_state = x;
    return (uint32_t)(x % n);
}

static bool id_is(stock_id id, const char *text)
{
    return id.len == strlen(text) && memcmp(id.ptr, text, id.len) == 0;
}

static int find_sku(const model *m, stock_id id)
{
    for (int i = 0; i < MODEL_SKUS; i++)
        if (id_is(id, m->skus[i].id))
            return i;
    return -1;
}

static int find_line(const model *m, stock_id id)
{
    for (int i = 0; i < m->line_count; i++)
        if (id_is(id, m->lines[i].id))
            return i;
    return -1;
}

static int find_order(const model *m, stock_id id)
{
    for (int i = 0; i < m->order_count; i++)
        if (id_is(id, m->orders[i].id))
            return i;
    return -1;
}

static int find_record(const model_record *records, int count, stock_id id)
{
    for (int i = 0; i < count; i++)
        if (id_is(id, records[i].id))
            return i;
    return -1;
}

static int find_hold(const model *m, stock_id id);

static expected result(stock_code code, bool has_available, int64_t available)
{
    return (expected){.code = code, .has_available = has_available,
                      .available = available};
}

static expected model_set(model *m, const stock_op *op)
{
    stock_sku_info *sku = &m->skus[find_sku(m, op->sku)].totals;
    if (op->has_expect && op->expect != sku->available)
        return result(STOCK_MISMATCH, true, sku->available);
    sku->adjusted += op->amount - sku->available;
    sku->available = op->amount;
    return result(STOCK_OK, true, sku->available);
}

static expected model_add(model *m, const stock_op *op)
{
    int s = find_sku(m, op->sku);
    if (op->id.len != 0) {
        int a = find_record(m->adjustments, m->adjustment_count, op->id);
        if (a >= 0 && m->adjustments[a].target == s &&
            m->adjustments[a].amount == op->amount)
            return result(STOCK_REPLAY, true, m->adjustments[a].available);
        if (a >= 0)
            return result(STOCK_CONFLICT, false, 0);
    }
    if (s < 0)
        return result(STOCK_NOT_FOUND, false, 0);
    stock_sku_info *sku = &m->skus[s].totals;
    if (sku->available + op->amount < 0)
        return result(STOCK_INSUFFICIENT, true, sku->available);
    sku->available += op->amount;
    sku->adjusted += op->amount;
    if (op->id.len != 0) {
        model_record *a = &m->adjustments[m->adjustment_count++];
        *a = (model_record){.target = s, .amount = op->amount,
                            .available = sku->available};
        memcpy(a->id, op->id.ptr, op->id.len);
    }
    return result(STOCK_OK, true, sku->available);
}

/* Takes qty from SKU s for a new line; returns the line's index. */
static int model_take(model *m, stock_id line_id, int s, int64_t qty, int order)
{
    stock_sku_info *sku = &m->skus[s].totals;
    sku->available -= qty;
    sku->deducted += qty;
    int l = m->line_count++;
    m->lines[l] = (model_line){.sku = s, .order = order, .qty = qty,
                               .available_after = sku->available};
    memcpy(m->lines[l].id, line_id.ptr, line_id.len);
    return l;
}

static expected model_deduct(model *m, const stock_op *op)
{
    int s = find_sku(m, op->sku);
    int l = find_line(m, op->id);
    if (l >= 0) {
        const model_line *line = &m->lines[l];
        /* A confirmed hold's line was not made by a deduction. */
        if (line->order < 0 && line->sku == s && line->qty == op->amount &&
            find_hold(m, op->id) < 0)
            return result(STOCK_REPLAY, true, line->available_after);
        return result(STOCK_CONFLICT, false, 0);
    }
    if (find_hold(m, op->id) >= 0)
        return result(STOCK_CONFLICT, false, 0);
    if (s < 0)
        return result(STOCK_NOT_FOUND, false, 0);
    if (m->skus[s].totals.available < op->amount)
        return result(STOCK_INSUFFICIENT, true, m->skus[s].totals.available);
    l = model_take(m, op->id, s, op->amount, -1);
    return result(STOCK_OK, true, m->lines[l].available_after);
}

static bool order_same_lines(const model *m, const model_order *order,
                             const stock_op *op)
{
    if (order->count != op->line_count)
        return false;
    for (uint32_t i = 0; i < order->count; i++) {
        const model_line *line = &m->lines[order->lines[i]];
        const stock_order_line *asked = &op->lines[i];
        if (!id_is(asked->line_id, line->id) || find_sku(m, asked->sku) != line->sku ||
            asked->qty != line->qty)
            return false;
    }
    return true;
}

/* The order checks after the replay test: ids, SKUs, then sums. */
static bool order_fails(const model *m, const stock_op *op, expected *e)
{
    for (uint32_t i = 0; i < op->line_count; i++) {
        stock_code code = find_line(m, op->lines[i].line_id) >= 0 ? STOCK_CONFLICT
                        : find_sku(m, op->lines[i].sku) < 0 ? STOCK_NOT_FOUND
                        : STOCK_OK;
        if (code != STOCK_OK) {
            *e = result(code, false, 0);
            e->has_failed_line = true;
            e->failed_line = (int32_t)i;
            return true;
        }
    }
    for (uint32_t i = 0; i < op->line_count; i++) {
        int s = find_sku(m, op->lines[i].sku);
        int64_t sum = 0;
        bool first = true;
        for (uint32_t j = 0; j < op->line_count; j++) {
            if (find_sku(m, op->lines[j].sku) != s)
                continue;
            first = first && j >= i;
            sum += op->lines[j].qty;
        }
        if (first && sum > m->skus[s].totals.available) {
            *e = result(STOCK_INSUFFICIENT, true, m->skus[s].totals.available);
            e->has_failed_line = true;
            e->failed_line = (int32_t)i;
            return true;
        }
    }
    return false;
}

/* want[i] receives each line's available on OK and REPLAY. */
static expected model_order_apply(model *m, const stock_op *op, int64_t *want)
{
    int o = find_order(m, op->id);
    if (o >= 0) {
        if (!order_same_lines(m, &m->orders[o], op))
            return result(STOCK_CONFLICT, false, 0);
        for (uint32_t i = 0; i < op->line_count; i++)
            want[i] = m->lines[m->orders[o].lines[i]].available_after;
        return result(STOCK_REPLAY, false, 0);
    }
    expected e;
    if (order_fails(m, op, &e))
        return e;
    o = m->order_count++;
    model_order *order = &m->orders[o];
    memcpy(order->id, op->id.ptr, op->id.len);
    order->count = op->line_count;
    for (uint32_t i = 0; i < op->line_count; i++) {
        const stock_order_line *line = &op->lines[i];
        order->lines[i] = model_take(m, line->line_id, find_sku(m, line->sku),
                                     line->qty, o);
        want[i] = m->lines[order->lines[i]].available_after;
    }
    return result(STOCK_OK, false, 0);
}

static expected model_refund(model *m, const stock_op *op)
{
    int l = find_line(m, op->line);
    int r = find_record(m->refunds, m->refund_count, op->id);
    if (r >= 0 && m->refunds[r].target == l && m->refunds[r].amount == op->amount)
        return result(STOCK_REPLAY, true, m->refunds[r].available);
    if (r >= 0)
        return result(STOCK_CONFLICT, false, 0);
    if (l < 0)
        return result(STOCK_NOT_FOUND, false, 0);
    model_line *line = &m->lines[l];
    if (op->amount > line->qty - line->refunded)
        return result(STOCK_EXCEEDS, true, line->qty - line->refunded);
    stock_sku_info *sku = &m->skus[line->sku].totals;
    line->refunded += op->amount;
    sku->available += op->amount;
    sku->refunded += op->amount;
    model_record *refund = &m->refunds[m->refund_count++];
    *refund = (model_record){.target = l, .amount = op->amount,
                             .available = sku->available};
    memcpy(refund->id, op->id.ptr, op->id.len);
    return result(STOCK_OK, true, sku->available);
}

/* ----------------------------------------------------------- holds model */

static int find_hold(const model *m, stock_id id)
{
    for (int i = 0; i < m->hold_count; i++)
        if (id_is(id, m->holds[i].id))
            return i;
    return -1;
}

/* A HELD hold leaves HELD: its units go back to available. */
static void model_close(model *m, model_hold *hold, stock_hold_state to)
{
    stock_sku_info *sku = &m->skus[hold->sku].totals;
    sku->held -= hold->qty;
    sku->available += hold->qty;
    hold->state = to;
    hold->closed_available = sku->available;
}

/* The clock stepped past every short hold's deadline. */
static void model_expire_short(model *m)
{
    for (int i = 0; i < m->hold_count; i++)
        if (m->holds[i].state == STOCK_HOLD_HELD &&
            m->holds[i].ttl_ms == MODEL_SHORT_TTL_MS)
            model_close(m, &m->holds[i], STOCK_HOLD_EXPIRED);
}

static expected model_hold_apply(model *m, const stock_op *op)
{
    int s = find_sku(m, op->sku);
    int h = find_hold(m, op->id);
    if (h >= 0) {
        const model_hold *hold = &m->holds[h];
        if (hold->sku == s && hold->qty == op->amount && hold->ttl_ms == op->expect)
            return result(STOCK_REPLAY, true, hold->available_after);
        return result(STOCK_CONFLICT, false, 0);
    }
    if (find_line(m, op->id) >= 0)
        return result(STOCK_CONFLICT, false, 0);
    if (s < 0)
        return result(STOCK_NOT_FOUND, false, 0);
    stock_sku_info *sku = &m->skus[s].totals;
    if (sku->available < op->amount)
        return result(STOCK_INSUFFICIENT, true, sku->available);
    sku->available -= op->amount;
    sku->held += op->amount;
    model_hold *hold = &m->holds[m->hold_count++];
    *hold = (model_hold){.sku = s, .qty = op->amount, .ttl_ms = op->expect,
                         .state = STOCK_HOLD_HELD, .order = -1,
                         .available_after = sku->available};
    memcpy(hold->id, op->id.ptr, op->id.len);
    return result(STOCK_OK, true, sku->available);
}

/* CONFIRM and RELEASE of a hold no longer HELD. */
static expected model_hold_closed(const model_hold *hold, const stock_op *op)
{
    bool confirming = op->type == STOCK_OP_CONFIRM;
    if (hold->state == STOCK_HOLD_EXPIRED)
        return result(STOCK_EXPIRED, false, 0);
    if (hold->state != (confirming ? STOCK_HOLD_CONFIRMED : STOCK_HOLD_RELEASED))
        return result(STOCK_CLOSED, false, 0);
    int64_t asked = op->amount == 0 ? hold->qty : op->amount;
    if (confirming && (hold->order >= 0 || asked != hold->confirmed))
        return result(STOCK_CONFLICT, false, 0);
    return result(STOCK_REPLAY, true, hold->closed_available);
}

/* Confirms qty of a HELD hold as a line (order o, or -1). */
static int64_t model_confirm_hold(model *m, model_hold *hold, int64_t qty, int o)
{
    model_close(m, hold, STOCK_HOLD_CONFIRMED);
    hold->confirmed = qty;
    hold->order = o;
    int l = model_take(m, stock_id_from_cstr(hold->id), hold->sku, qty, o);
    hold->closed_available = m->lines[l].available_after;
    return hold->closed_available;
}

static expected model_confirm(model *m, const stock_op *op)
{
    int h = find_hold(m, op->id);
    if (h < 0)
        return result(STOCK_NOT_FOUND, false, 0);
    model_hold *hold = &m->holds[h];
    if (hold->state != STOCK_HOLD_HELD)
        return model_hold_closed(hold, op);
    int64_t qty = op->amount == 0 ? hold->qty : op->amount;
    if (qty > hold->qty)
        return result(STOCK_EXCEEDS, true, hold->qty);
    return result(STOCK_OK, true, model_confirm_hold(m, hold, qty, -1));
}

static expected model_release(model *m, const stock_op *op)
{
    int h = find_hold(m, op->id);
    if (h < 0)
        return result(STOCK_NOT_FOUND, false, 0);
    model_hold *hold = &m->holds[h];
    if (hold->state != STOCK_HOLD_HELD)
        return model_hold_closed(hold, op);
    model_close(m, hold, STOCK_HOLD_RELEASED);
    return result(STOCK_OK, true, hold->closed_available);
}

static expected failed_at(stock_code code, uint32_t line)
{
    expected e = result(code, code == STOCK_EXCEEDS, 0);
    e.has_failed_line = true;
    e.failed_line = (int32_t)line;
    return e;
}

/* The first line of a CONFIRM_ORDER that cannot be confirmed, if any. */
static bool confirm_order_fails(const model *m, const stock_op *op, expected *e)
{
    for (uint32_t i = 0; i < op->line_count; i++) {
        int h = find_hold(m, op->lines[i].line_id);
        if (h < 0) {
            *e = failed_at(STOCK_NOT_FOUND, i);
            return true;
        }
        const model_hold *hold = &m->holds[h];
        if (hold->state != STOCK_HOLD_HELD) {
            *e = failed_at(hold->state == STOCK_HOLD_EXPIRED ? STOCK_EXPIRED
                                                             : STOCK_CLOSED, i);
            return true;
        }
        if (op->lines[i].qty > hold->qty) {
            *e = failed_at(STOCK_EXCEEDS, i);
            e->available = hold->qty;
            return true;
        }
    }
    return false;
}

static expected model_confirm_order(model *m, const stock_op *op, int64_t *want)
{
    int o = find_order(m, op->id);
    if (o >= 0) {
        const model_order *order = &m->orders[o];
        bool same = order->count == op->line_count;
        for (uint32_t i = 0; same && i < order->count; i++) {
            const model_line *line = &m->lines[order->lines[i]];
            int h = find_hold(m, op->lines[i].line_id);
            same = h >= 0 && m->holds[h].order == o && id_is(op->lines[i].line_id, line->id) &&
                   (op->lines[i].qty == 0 ? m->holds[h].qty : op->lines[i].qty) == line->qty;
            want[i] = line->available_after;
        }
        return same ? result(STOCK_REPLAY, false, 0) : result(STOCK_CONFLICT, false, 0);
    }
    expected e;
    if (confirm_order_fails(m, op, &e))
        return e;
    o = m->order_count++;
    model_order *order = &m->orders[o];
    memcpy(order->id, op->id.ptr, op->id.len);
    order->count = op->line_count;
    for (uint32_t i = 0; i < op->line_count; i++) {
        model_hold *hold = &m->holds[find_hold(m, op->lines[i].line_id)];
        int64_t qty = op->lines[i].qty == 0 ? hold->qty : op->lines[i].qty;
        order->lines[i] = m->line_count;
        want[i] = model_confirm_hold(m, hold, qty, o);
    }
    return result(STOCK_OK, false, 0);
}

/* --------------------------------------------------------- the generator */

static void fresh(pending *p, int slot, const char *kind)
{
    snprintf(p->ids[slot], CONF_ID_SIZE, "%s", conf_id(kind));
}

static void copy_id(pending *p, int slot, const char *id)
{
    snprintf(p->ids[slot], CONF_ID_SIZE, "%s", id);
}

static stock_id slot_id(const pending *p, int slot)
{
    return stock_id_from_cstr(p->ids[slot]);
}

static const char *pool_sku(model *m)
{
    return m->skus[roll(m, MODEL_SKUS)].id;
}

static void gen_set(model *m, pending *p)
{
    int s = (int)roll(m, MODEL_SKUS);
    int64_t current = m->skus[s].totals.available;
    p->op = (stock_op){.type = STOCK_OP_SET, .sku = stock_id_from_cstr(m->skus[s].id),
                       .amount = roll(m, 2 * MODEL_START_LEVEL)};
    if (roll(m, 3) == 0) {
        p->op.has_expect = true;
        p->op.expect = current + roll(m, 2);   /* right, or one off */
    }
}

static void gen_add(model *m, pending *p)
{
    int64_t size = 1 + roll(m, 10);
    const char *sku = roll(m, 10) == 0 ? m->missing_sku : pool_sku(m);
    p->op = (stock_op){.type = STOCK_OP_ADD, .sku = stock_id_from_cstr(sku),
                       .amount = roll(m, 2) ? size : -size};
    uint32_t how = roll(m, 4);
    if (how == 0 && m->adjustment_count > 0) {
        /* An id seen before, on its SKU or another (maybe missing): replay
         * or conflict. */
        const model_record *a = &m->adjustments[roll(m, (uint32_t)m->adjustment_count)];
        copy_id(p, 0, a->id);
        if (roll(m, 8) != 0)
            p->op.sku = stock_id_from_cstr(m->skus[a->target].id);
        p->op.amount = a->amount + (roll(m, 2) ? 0 : 1);
        p->op.amount += p->op.amount == 0;
    } else if (how == 1) {
        fresh(p, 0, "adjust");
    }
    /* No id at all, unless one was chosen above. */
    p->op.id = p->ids[0][0] != '\0' ? slot_id(p, 0) : (stock_id){0};
}

static void gen_deduct(model *m, pending *p)
{
    p->op = (stock_op){.type = STOCK_OP_DEDUCT, .amount = 1 + roll(m, 5)};
    const char *sku = roll(m, 10) == 0 ? m->missing_sku : pool_sku(m);
    if (m->line_count > 0 && roll(m, 4) == 0) {
        /* A line seen before, with its SKU or a missing one: replay or
         * conflict. */
        const model_line *line = &m->lines[roll(m, (uint32_t)m->line_count)];
        copy_id(p, 0, line->id);
        sku = roll(m, 8) == 0 ? m->missing_sku : m->skus[line->sku].id;
        p->op.amount = line->qty + roll(m, 2);
    } else {
        fresh(p, 0, "line");
    }
    p->op.id = slot_id(p, 0);
    p->op.sku = stock_id_from_cstr(sku);
}

/* Line i of a new order: mostly fresh ids, now and then one already used. */
static void gen_order_line(model *m, pending *p, uint32_t i)
{
    fresh(p, (int)i + 1, "line");
    if (m->line_count > 0 && roll(m, 10) == 0) {
        const char *used = m->lines[roll(m, (uint32_t)m->line_count)].id;
        bool repeated = false;
        for (uint32_t j = 0; j < i; j++)
            repeated = repeated || strcmp(p->ids[j + 1], used) == 0;
        if (!repeated)
            copy_id(p, (int)i + 1, used);
    }
    const char *sku = roll(m, 12) == 0 ? m->missing_sku : pool_sku(m);
    p->lines[i] = conf_line(p->ids[i + 1], sku, 1 + roll(m, 5));
}

static void gen_order(model *m, pending *p)
{
    p->op = (stock_op){.type = STOCK_OP_ORDER, .lines = p->lines,
                       .line_count = 1 + roll(m, MODEL_ORDER_LINES)};
    if (m->order_count > 0 && roll(m, 5) == 0) {
        /* An order seen before: the same lines (replay) or one qty more. */
        const model_order *order = &m->orders[roll(m, (uint32_t)m->order_count)];
        copy_id(p, 0, order->id);
        p->op.line_count = order->count;
        for (uint32_t i = 0; i < order->count; i++) {
            const model_line *line = &m->lines[order->lines[i]];
            copy_id(p, (int)i + 1, line->id);
            p->lines[i] = conf_line(p->ids[i + 1], m->skus[line->sku].id, line->qty);
        }
        p->lines[0].qty += roll(m, 2);
    } else {
        fresh(p, 0, "order");
        for (uint32_t i = 0; i < p->op.line_count; i++)
            gen_order_line(m, p, i);
    }
    p->op.id = slot_id(p, 0);
}

static void gen_refund(model *m, pending *p)
{
    p->op = (stock_op){.type = STOCK_OP_REFUND, .amount = 1 + roll(m, 4)};
    if (m->refund_count > 0 && roll(m, 5) == 0) {
        /* A refund seen before, on its line or a missing one: replay or
         * conflict. */
        const model_record *r = &m->refunds[roll(m, (uint32_t)m->refund_count)];
        copy_id(p, 0, r->id);
        if (roll(m, 8) == 0)
            fresh(p, 1, "line");
        else
            copy_id(p, 1, m->lines[r->target].id);
        p->op.amount = r->amount + roll(m, 2);
    } else {
        fresh(p, 0, "refund");
        if (m->line_count > 0 && roll(m, 10) != 0)
            copy_id(p, 1, m->lines[roll(m, (uint32_t)m->line_count)].id);
        else
            fresh(p, 1, "line");
    }
    p->op.id = slot_id(p, 0);
    p->op.line = slot_id(p, 1);
}

static void gen_read(model *m, pending *p)
{
    if (roll(m, 2) == 0) {
        const char *sku = roll(m, 8) == 0 ? m->missing_sku : pool_sku(m);
        p->op = (stock_op){.type = STOCK_OP_GET, .sku = stock_id_from_cstr(sku)};
        return;
    }
    if (m->line_count > 0 && roll(m, 8) != 0)
        copy_id(p, 0, m->lines[roll(m, (uint32_t)m->line_count)].id);
    else
        fresh(p, 0, "line");
    p->op = (stock_op){.type = STOCK_OP_LINE, .line = slot_id(p, 0)};
}

/* A hold: fresh (long-lived, or short when short), or one seen before
 * (replay or conflict), or now and then a line's id (conflict). */
static void gen_hold(model *m, pending *p, bool short_lived)
{
    const char *sku = roll(m, 10) == 0 ? m->missing_sku : pool_sku(m);
    p->op = (stock_op){.type = STOCK_OP_HOLD, .amount = 1 + roll(m, 4),
                       .expect = short_lived ? MODEL_SHORT_TTL_MS : MODEL_LONG_TTL_MS};
    uint32_t how = roll(m, 10);
    if (!short_lived && how == 0 && m->hold_count > 0) {
        const model_hold *hold = &m->holds[roll(m, (uint32_t)m->hold_count)];
        copy_id(p, 0, hold->id);
        sku = m->skus[hold->sku].id;
        p->op.amount = hold->qty + roll(m, 2);
        p->op.expect = hold->ttl_ms;
    } else if (!short_lived && how == 1 && m->line_count > 0) {
        copy_id(p, 0, m->lines[roll(m, (uint32_t)m->line_count)].id);
    } else {
        fresh(p, 0, "hold");
    }
    p->op.id = slot_id(p, 0);
    p->op.sku = stock_id_from_cstr(sku);
}

/* An id of a hold the model knows (any state), or a fresh one. */
static void pick_hold(model *m, pending *p, int slot)
{
    if (m->hold_count > 0 && roll(m, 10) != 0)
        copy_id(p, slot, m->holds[roll(m, (uint32_t)m->hold_count)].id);
    else
        fresh(p, slot, "hold");
}

static void gen_hold_close(model *m, pending *p)
{
    uint32_t dice = roll(m, 10);
    stock_op_type type = dice < 5 ? STOCK_OP_CONFIRM
                       : dice < 8 ? STOCK_OP_RELEASE : STOCK_OP_HOLD_GET;
    pick_hold(m, p, 0);
    /* 0 (the whole hold), or a part, or now and then one too many. */
    p->op = (stock_op){.type = type, .id = slot_id(p, 0),
                       .amount = type == STOCK_OP_CONFIRM ? roll(m, 6) : 0};
}

static void gen_confirm_order(model *m, pending *p)
{
    p->op = (stock_op){.type = STOCK_OP_CONFIRM_ORDER, .lines = p->lines,
                       .line_count = 1 + roll(m, MODEL_ORDER_LINES - 1)};
    fresh(p, 0, "order");
    for (uint32_t i = 0; i < p->op.line_count; i++) {
        pick_hold(m, p, (int)i + 1);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(p->ids[j + 1], p->ids[i + 1]) == 0)
                fresh(p, (int)i + 1, "hold");
        p->lines[i] = conf_line(p->ids[i + 1], "", roll(m, 3));
    }
    p->op.id = slot_id(p, 0);
}

/* Weights of the op kinds, out of 100. */
static void generate(model *m, pending *p)
{
    memset(p, 0, sizeof *p);
    uint32_t dice = roll(m, 100);
    if (!conf_holds && dice >= 68 && dice < 97)
        dice %= 68;   /* a store without holds: the other kinds instead */
    if (dice < 22)
        gen_deduct(m, p);
    else if (dice < 32)
        gen_order(m, p);
    else if (dice < 42)
        gen_refund(m, p);
    else if (dice < 50)
        gen_add(m, p);
    else if (dice < 56)
        gen_set(m, p);
    else if (dice < 68)
        gen_read(m, p);
    else if (dice < 80)
        gen_hold(m, p, false);
    else if (dice < 92)
        gen_hold_close(m, p);
    else if (dice < 97)
        gen_confirm_order(m, p);
    else {
        gen_deduct(m, p);
        p->op.amount = 0;   /* INVALID: the model must not move */
    }
}

/* ----------------------------------------------------------- the checker */

/* Where the walk is, for the report of a mismatch. */
static uint64_t walk_seed;
static int walk_index;

static const char *const type_names[] = {
    [STOCK_OP_SET] = "set", [STOCK_OP_ADD] = "add", [STOCK_OP_DEDUCT] = "deduct",
    [STOCK_OP_ORDER] = "order", [STOCK_OP_REFUND] = "refund",
    [STOCK_OP_GET] = "get", [STOCK_OP_LINE] = "line", [STOCK_OP_HOLD] = "hold",
    [STOCK_OP_CONFIRM] = "confirm", [STOCK_OP_RELEASE] = "release",
    [STOCK_OP_CONFIRM_ORDER] = "confirm_order", [STOCK_OP_HOLD_GET] = "hold_get",
};

/* Prints the op that is about to fail the test. */
static void walk_note(const stock_op *op)
{
    print_error("model: op %d of the walk with CONFORMANCE_SEED=%" PRIu64 ": %s "
                "id=%.*s sku=%.*s line=%.*s amount=%" PRId64 "\n", walk_index,
                walk_seed, type_names[op->type], (int)op->id.len,
                op->id.ptr ? op->id.ptr : "", (int)op->sku.len,
                op->sku.ptr ? op->sku.ptr : "", (int)op->line.len,
                op->line.ptr ? op->line.ptr : "", op->amount);
    if (op->has_expect)
        print_error("  expect %" PRId64 "\n", op->expect);
    bool order = op->type == STOCK_OP_ORDER || op->type == STOCK_OP_CONFIRM_ORDER;
    for (uint32_t i = 0; order && i < op->line_count; i++)
        print_error("  line %u: %s %s %" PRId64 "\n", i, op->lines[i].line_id.ptr,
                    op->lines[i].sku.ptr, op->lines[i].qty);
}

#define expect_code(got, want)                                               \
    do {                                                                     \
        if ((got) != (want))                                                 \
            walk_note(op);                                                   \
        assert_code((got), (want), op->message);                             \
    } while (0)
#define expect_i64(got, want)                                                \
    do {                                                                     \
        if ((got) != (want))                                                 \
            walk_note(op);                                                   \
        assert_i64((got), (want));                                           \
    } while (0)
#define expect_str(got, want)                                                \
    do {                                                                     \
        if (strcmp((got), (want)) != 0)                                      \
            walk_note(op);                                                   \
        assert_string_equal((got), (want));                                  \
    } while (0)

static void check_sku_totals(const model *m, const stock_op *op)
{
    int s = find_sku(m, op->sku);
    expect_code(op->code, s < 0 ? STOCK_NOT_FOUND : STOCK_OK);
    if (s < 0)
        return;
    const stock_sku_info *want = &m->skus[s].totals, *got = &op->info.sku_info;
    expect_i64(got->available, want->available);
    expect_i64(got->adjusted, want->adjusted);
    expect_i64(got->deducted, want->deducted);
    expect_i64(got->refunded, want->refunded);
    expect_i64(got->held, want->held);
}

static void check_hold_info(const model *m, const stock_op *op)
{
    int h = find_hold(m, op->id);
    expect_code(op->code, h < 0 ? STOCK_NOT_FOUND : STOCK_OK);
    if (h < 0)
        return;
    const model_hold *want = &m->holds[h];
    const stock_hold_info *got = &op->info.hold_info;
    expect_str(got->sku, m->skus[want->sku].id);
    expect_str(got->order_id, want->order < 0 ? "" : m->orders[want->order].id);
    expect_i64(got->state, want->state);
    expect_i64(got->qty, want->qty);
    expect_i64(got->confirmed, want->confirmed);
    expect_i64(got->deadline_us - got->time_us, want->ttl_ms * 1000);
}

static void check_line_info(const model *m, const stock_op *op)
{
    int l = find_line(m, op->line);
    expect_code(op->code, l < 0 ? STOCK_NOT_FOUND : STOCK_OK);
    if (l < 0)
        return;
    const model_line *want = &m->lines[l];
    const stock_line_info *got = &op->info.line_info;
    expect_str(got->sku, m->skus[want->sku].id);
    expect_str(got->order_id, want->order < 0 ? "" : m->orders[want->order].id);
    expect_i64(got->qty, want->qty);
    expect_i64(got->refunded, want->refunded);
    expect_i64(got->available_after, want->available_after);
}

static void check_result(const stock_op *op, const expected *e)
{
    expect_code(op->code, e->code);
    if (e->has_available)
        expect_i64(op->available, e->available);
    if (e->has_failed_line)
        expect_i64(op->failed_line, e->failed_line);
}

/* Applies op to the model and compares the store's answer with it. */
static void check_op(model *m, const stock_op *op)
{
    int64_t want[MODEL_ORDER_LINES];
    expected e;
    switch (op->type) {
    case STOCK_OP_SET:
        e = model_set(m, op);
        break;
    case STOCK_OP_ADD:
        e = model_add(m, op);
        break;
    case STOCK_OP_DEDUCT:
        e = op->amount == 0 ? result(STOCK_INVALID, false, 0) : model_deduct(m, op);
        break;
    case STOCK_OP_ORDER:
    case STOCK_OP_CONFIRM_ORDER:
        e = op->type == STOCK_OP_ORDER ? model_order_apply(m, op, want)
                                       : model_confirm_order(m, op, want);
        check_result(op, &e);
        for (uint32_t i = 0; stock_code_succeeded(e.code) && i < op->line_count; i++)
            expect_i64(op->lines[i].available, want[i]);
        return;
    case STOCK_OP_HOLD:
        e = model_hold_apply(m, op);
        break;
    case STOCK_OP_CONFIRM:
        e = model_confirm(m, op);
        break;
    case STOCK_OP_RELEASE:
        e = model_release(m, op);
        break;
    case STOCK_OP_HOLD_GET:
        check_hold_info(m, op);
        return;
    case STOCK_OP_REFUND:
        e = model_refund(m, op);
        break;
    case STOCK_OP_GET:
        check_sku_totals(m, op);
        return;
    case STOCK_OP_LINE:
        check_line_info(m, op);
        return;
    }
    check_result(op, &e);
}

static void random_walk_matches_the_model(void **state)
{
    (void)state;
    model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    const char *seed = getenv("CONFORMANCE_SEED");
    walk_seed = seed != NULL ? strtoull(seed, NULL, 10) : (uint64_t)conf_now_us();
    walk_seed |= 1;   /* xorshift needs a non-zero state */
    m->random_state = walk_seed;
    snprintf(m->missing_sku, CONF_ID_SIZE, "%s", conf_id("sku"));
    for (int s = 0; s < MODEL_SKUS; s++) {
        snprintf(m->skus[s].id, CONF_ID_SIZE, "%s", conf_id("sku"));
        assert_code(stock_set(conf_store, m->skus[s].id, MODEL_START_LEVEL, NULL,
                              NULL, NULL), STOCK_OK, "");
        m->skus[s].totals = (stock_sku_info){MODEL_START_LEVEL, MODEL_START_LEVEL, 0, 0, 0};
    }
    pending batch[MODEL_BATCH_MAX];
    stock_op ops[MODEL_BATCH_MAX];
    for (int done = 0; done < MODEL_OPS;) {
        uint32_t count = 1 + roll(m, MODEL_BATCH_MAX);
        /* Now and then the batch ends with short holds, then the clock
         * steps past their deadline. */
        uint32_t short_holds = roll(m, 20) == 0 && conf_holds ? 1 + roll(m, 3) : 0;
        if (short_holds > count)
            short_holds = count;
        for (uint32_t i = 0; i < count; i++) {
            generate(m, &batch[i]);
            if (i >= count - short_holds)
                gen_hold(m, &batch[i], true);
            ops[i] = batch[i].op;
            ops[i].lines = batch[i].lines;
        }
        assert_code(stock_execute(conf_store, ops, count), STOCK_OK, "execute");
        for (uint32_t i = 0; i < count; i++) {
            walk_index = done + (int)i;
            check_op(m, &ops[i]);
        }
        if (short_holds > 0) {
            usleep(MODEL_CLOCK_STEP_MS * 1000);
            model_expire_short(m);
        }
        done += (int)count;
    }
    for (int s = 0; s < MODEL_SKUS; s++) {
        stock_op get = {.type = STOCK_OP_GET, .sku = stock_id_from_cstr(m->skus[s].id)};
        assert_code(conf_run(&get), STOCK_OK, get.message);
        check_sku_totals(m, &get);
    }
    free(m);
}

int conf_run_model(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_walk_matches_the_model),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
