/*
 * workload.c -- the workloads of docs/stockbench.md as op streams, and their
 * accounting (see workload.h).
 *
 * Ids are "<prefix><letter><sequence>": S for SKUs, L for lines, O for
 * orders (their lines add ".k"), R for refunds. Lines that succeed are
 * remembered in a ring of the WORKLOAD_RING_SIZE most recent ones, with what
 * their reply said. Replays (same line id, SKU, qty: must return the original
 * result) and refunds (qty 1, until the line is used up, then EXCEEDS) are
 * drawn from it, and at the end every line in it is read back from the store
 * (workload_verify_lines).
 */
#include "workload.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIXED_REFUND_PERCENT 5
#define MIXED_READ_PERCENT 5
#define MIXED_REPLAY_PERCENT 1
#define UNIFORM_QTY_MAX 3

typedef struct workload_defaults {
    const char *name;
    uint32_t skus;
    int64_t stock;
    uint64_t requests;
} workload_defaults;

static const workload_defaults defaults[WORKLOAD_KIND_COUNT] = {
    [WORKLOAD_HOT] = {"hot", 1, INT64_C(1000000000000), 0},
    [WORKLOAD_SELLOUT] = {"sellout", 1, 10000, 200000},
    [WORKLOAD_UNIFORM] = {"uniform", 100000, INT64_C(1000000000), 0},
    [WORKLOAD_CART] = {"cart", 10000, INT64_C(1000000000), 0},
    [WORKLOAD_MIXED] = {"mixed", 10000, INT64_C(1000000000), 0},
};

typedef struct ring_entry {
    uint64_t seq;        /* the line's number, or its order's */
    uint32_t order_line; /* 0: a deduction; k+1: line k of order seq */
    uint32_t sku;
    int64_t qty;
    int64_t available;   /* what the original deduction returned */
    int64_t refunded;    /* acknowledged refunds */
    int64_t refunds_unknown;  /* refunds whose outcome stayed unknown */
} ring_entry;

struct workload {
    workload_config config;
    checker *ledger;
    uint32_t sku_count;
    int32_t replay_percent;
    uint64_t rng;
    uint64_t next_seq;       /* ids handed out so far */
    uint64_t answered;       /* deductions answered OK or INSUFFICIENT */
    uint64_t retries;
    uint32_t prefix_len;
    uint64_t counts[WORKLOAD_OP_KIND_COUNT];
    char *sku_names;         /* sku_count * WORKLOAD_NAME_MAX */
    ring_entry *ring;        /* WORKLOAD_RING_SIZE */
    uint32_t ring_filled;
    uint32_t ring_next;
};

bool workload_parse_kind(const char *name, workload_kind *kind)
{
    assert(name != NULL && kind != NULL);
    for (int i = 0; i < WORKLOAD_KIND_COUNT; i++) {
        if (strcmp(name, defaults[i].name) == 0) {
            *kind = (workload_kind)i;
            return true;
        }
    }
    return false;
}

const char *workload_kind_name(workload_kind kind)
{
    assert(kind < WORKLOAD_KIND_COUNT);
    return defaults[kind].name;
}

uint64_t workload_default_requests(workload_kind kind)
{
    assert(kind < WORKLOAD_KIND_COUNT);
    return defaults[kind].requests;
}

uint32_t workload_sku_count(const workload_config *config)
{
    assert(config != NULL && config->kind < WORKLOAD_KIND_COUNT);
    return config->skus != 0 ? config->skus : defaults[config->kind].skus;
}

int64_t workload_initial_stock(const workload_config *config)
{
    assert(config != NULL && config->kind < WORKLOAD_KIND_COUNT);
    return config->stock != 0 ? config->stock : defaults[config->kind].stock;
}

/* splitmix64: small, fast, and good enough to spread load over SKUs. */
static uint64_t next_random(workload *load)
{
    uint64_t z = (load->rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint32_t random_below(workload *load, uint32_t bound)
{
    assert(bound > 0);
    return (uint32_t)(next_random(load) % bound);
}

/* A prefix no other run will pick: the seed alone would repeat, so the clock
 * and the process id are mixed in. */
static void make_prefix(workload *load)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t saved = load->rng;
    load->rng ^= (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    load->rng ^= (uint64_t)getpid() << 40;
    uint64_t tag = next_random(load);
    load->rng = saved;
    snprintf(load->config.prefix, sizeof load->config.prefix, "sb%010" PRIx64 "-",
             tag & UINT64_C(0xFFFFFFFFFF));
}

static bool setup_names(workload *load)
{
    size_t bytes = (size_t)load->sku_count * WORKLOAD_NAME_MAX;
    load->sku_names = malloc(bytes);
    load->ring = calloc(WORKLOAD_RING_SIZE, sizeof *load->ring);
    if (load->sku_names == NULL || load->ring == NULL)
        return false;
    for (uint32_t i = 0; i < load->sku_count; i++)
        snprintf(load->sku_names + (size_t)i * WORKLOAD_NAME_MAX,
                 WORKLOAD_NAME_MAX, "%sS%" PRIu32, load->config.prefix, i);
    return true;
}

workload *workload_create(const workload_config *config, checker *ledger)
{
    assert(config != NULL && ledger != NULL);
    assert(config->kind < WORKLOAD_KIND_COUNT);
    workload *load = calloc(1, sizeof *load);
    if (load == NULL)
        return NULL;
    load->config = *config;
    load->ledger = ledger;
    load->sku_count = workload_sku_count(config);
    assert(load->sku_count >= 1 && load->sku_count <= WORKLOAD_SKUS_MAX);
    load->rng = config->seed;
    load->replay_percent = config->replay_percent >= 0 ? config->replay_percent
                           : config->kind == WORKLOAD_MIXED ? MIXED_REPLAY_PERCENT
                                                             : 0;
    if (load->config.prefix[0] == '\0')
        make_prefix(load);
    load->prefix_len = (uint32_t)strlen(load->config.prefix);
    if (!setup_names(load)) {
        workload_destroy(load);
        return NULL;
    }
    return load;
}

void workload_destroy(workload *load)
{
    if (load == NULL)
        return;
    free(load->sku_names);
    free(load->ring);
    free(load);
}

const char *workload_sku_name(const workload *load, uint32_t sku)
{
    assert(load != NULL && sku < load->sku_count);
    return load->sku_names + (size_t)sku * WORKLOAD_NAME_MAX;
}

const char *workload_prefix(const workload *load)
{
    assert(load != NULL);
    return load->config.prefix;
}

uint64_t workload_retries(const workload *load)
{
    assert(load != NULL);
    return load->retries;
}

uint64_t workload_count(const workload *load, workload_op_kind kind)
{
    assert(load != NULL && kind < WORKLOAD_OP_KIND_COUNT);
    return load->counts[kind];
}

void workload_setup_ops(workload *load, uint32_t first, uint32_t count,
                        stock_op *ops)
{
    assert(load != NULL && ops != NULL);
    assert(first + count <= load->sku_count);
    int64_t level = workload_initial_stock(&load->config);
    for (uint32_t i = 0; i < count; i++) {
        memset(&ops[i], 0, sizeof ops[i]);
        ops[i].type = STOCK_OP_SET;
        ops[i].sku = stock_id_from_cstr(workload_sku_name(load, first + i));
        ops[i].amount = level;
        checker_set_initial(load->ledger, first + i, level);
    }
}

/* Writes "<prefix><letter><seq>" into text and returns it as an id. */
/* Writes "<prefix><letter><seq>" into text and returns it as an id. By
 * hand rather than snprintf: it runs for every op, and formatting was a
 * tenth of the client's CPU against a fast in-process store. */
static stock_id make_id(const workload *load, char *text, char letter,
                        uint64_t seq)
{
    char digits[20];
    uint32_t digit_count = 0;
    do {
        digits[digit_count++] = (char)('0' + seq % 10);
        seq /= 10;
    } while (seq > 0);
    uint32_t length = load->prefix_len;
    assert(length + 1 + digit_count < WORKLOAD_NAME_MAX);
    memcpy(text, load->config.prefix, length);
    text[length++] = letter;
    while (digit_count > 0)
        text[length++] = digits[--digit_count];
    text[length] = '\0';
    assert(length <= WORKLOAD_PREFIX_MAX + 21);
    return (stock_id){text, length};
}

static void next_deduct(workload *load, stock_op *op, workload_item *item,
                        uint32_t sku, int64_t qty)
{
    item->kind = WORKLOAD_OP_DEDUCT;
    item->sku = sku;
    item->line_seq = load->next_seq++;
    op->type = STOCK_OP_DEDUCT;
    op->id = make_id(load, item->id, 'L', item->line_seq);
    op->sku = stock_id_from_cstr(workload_sku_name(load, sku));
    op->amount = qty;
}

/* A retry of a remembered line: same line id, SKU and qty. */
static void next_replay(workload *load, stock_op *op, workload_item *item)
{
    assert(load->ring_filled > 0);
    item->ring_index = random_below(load, load->ring_filled);
    const ring_entry *entry = &load->ring[item->ring_index];
    assert(entry->order_line == 0);   /* no replays in the cart workload */
    item->kind = WORKLOAD_OP_REPLAY;
    item->sku = entry->sku;
    item->line_seq = entry->seq;
    item->original_available = entry->available;
    op->type = STOCK_OP_DEDUCT;
    op->id = make_id(load, item->id, 'L', entry->seq);
    op->sku = stock_id_from_cstr(workload_sku_name(load, entry->sku));
    op->amount = entry->qty;
}

/* A refund of 1 on a remembered line (EXCEEDS once the line is used up). */
static void next_refund(workload *load, stock_op *op, workload_item *item)
{
    assert(load->ring_filled > 0);
    item->ring_index = random_below(load, load->ring_filled);
    const ring_entry *entry = &load->ring[item->ring_index];
    assert(entry->order_line == 0);   /* refunds only in the mixed workload */
    item->kind = WORKLOAD_OP_REFUND;
    item->sku = entry->sku;
    item->line_seq = entry->seq;
    op->type = STOCK_OP_REFUND;
    op->id = make_id(load, item->id, 'R', load->next_seq++);
    op->line = make_id(load, item->ref, 'L', entry->seq);
    op->amount = 1;
}

static void next_read(workload *load, stock_op *op, workload_item *item)
{
    item->kind = WORKLOAD_OP_READ;
    item->sku = random_below(load, load->sku_count);
    op->type = STOCK_OP_GET;
    op->sku = stock_id_from_cstr(workload_sku_name(load, item->sku));
}

static void next_order(workload *load, stock_op *op, workload_item *item)
{
    uint64_t seq = load->next_seq++;
    item->kind = WORKLOAD_OP_ORDER;
    item->line_seq = seq;
    op->type = STOCK_OP_ORDER;
    op->id = make_id(load, item->id, 'O', seq);
    op->lines = item->lines;
    op->line_count = WORKLOAD_CART_LINES;
    for (uint32_t i = 0; i < WORKLOAD_CART_LINES; i++) {
        uint32_t sku = random_below(load, load->sku_count);
        int length = snprintf(item->line_ids[i], WORKLOAD_NAME_MAX,
                              "%sO%" PRIu64 ".%" PRIu32, load->config.prefix,
                              seq, i);
        assert(length > 0 && length < WORKLOAD_NAME_MAX);
        item->line_skus[i] = sku;
        item->lines[i] = (stock_order_line){
            .line_id = {item->line_ids[i], (uint32_t)length},
            .sku = stock_id_from_cstr(workload_sku_name(load, sku)),
            .qty = 1,
        };
    }
}

void workload_next(workload *load, stock_op *op, workload_item *item)
{
    assert(load != NULL && op != NULL && item != NULL);
    memset(op, 0, sizeof *op);
    item->attempts = 0;
    uint32_t roll = random_below(load, 100);
    bool remembered = load->ring_filled > 0;
    workload_kind kind = load->config.kind;
    if (kind == WORKLOAD_CART)
        next_order(load, op, item);
    else if (remembered && roll < (uint32_t)load->replay_percent)
        next_replay(load, op, item);
    else if (kind == WORKLOAD_MIXED && remembered &&
             roll >= 100 - MIXED_REFUND_PERCENT)
        next_refund(load, op, item);
    else if (kind == WORKLOAD_MIXED &&
             roll >= 100 - MIXED_REFUND_PERCENT - MIXED_READ_PERCENT)
        next_read(load, op, item);
    else if (kind == WORKLOAD_UNIFORM || kind == WORKLOAD_MIXED)
        next_deduct(load, op, item, random_below(load, load->sku_count),
                    1 + random_below(load, UNIFORM_QTY_MAX));
    else
        next_deduct(load, op, item, 0, 1);
    load->counts[item->kind]++;
    assert(op->type != 0);
}

/* Codes that say the store or the path to it failed, not the operation's
 * logic: counted by the run, not judged by the checker. */
static bool transport_failure(stock_code code)
{
    return code == STOCK_IO || code == STOCK_UNAVAILABLE || code == STOCK_NOMEM;
}

/* IO and NOMEM are known-failed (stock.h); UNAVAILABLE may come after the
 * request left (a broken connection), so the op may or may not have taken
 * effect, and the checker must allow for both. */
static bool outcome_unknown(stock_code code)
{
    return code == STOCK_UNAVAILABLE;
}

/* OK, or REPLAY to a retry: the store took the op (once). */
static bool took_effect(const stock_op *op, const workload_item *item)
{
    return op->code == STOCK_OK ||
           (op->code == STOCK_REPLAY && item->attempts > 0);
}

bool workload_retry(workload *load, const stock_op *op, workload_item *item)
{
    assert(load != NULL && op != NULL && item != NULL);
    assert(item->attempts < WORKLOAD_ATTEMPTS_MAX);
    bool changes_state = item->kind == WORKLOAD_OP_DEDUCT ||
                         item->kind == WORKLOAD_OP_ORDER ||
                         item->kind == WORKLOAD_OP_REFUND;
    if (!outcome_unknown(op->code) || !changes_state ||
        item->attempts + 1 >= WORKLOAD_ATTEMPTS_MAX)
        return false;
    item->attempts++;
    load->retries++;
    return true;
}

void workload_rebind(stock_op *op, workload_item *item)
{
    assert(op != NULL && item != NULL);
    assert(item->kind < WORKLOAD_OP_KIND_COUNT);
    if (op->id.len > 0)
        op->id.ptr = item->id;
    if (op->line.len > 0)
        op->line.ptr = item->ref;
    if (op->type == STOCK_OP_ORDER) {
        op->lines = item->lines;
        for (uint32_t i = 0; i < op->line_count; i++)
            item->lines[i].line_id.ptr = item->line_ids[i];
    }
}

static void remember_line(workload *load, ring_entry entry)
{
    assert(entry.qty > 0 && entry.sku < load->sku_count);
    load->ring[load->ring_next] = entry;
    load->ring_next = (load->ring_next + 1) % WORKLOAD_RING_SIZE;
    if (load->ring_filled < WORKLOAD_RING_SIZE)
        load->ring_filled++;
    assert(load->ring_filled <= WORKLOAD_RING_SIZE);
}

static void complete_deduct(workload *load, const stock_op *op,
                            const workload_item *item)
{
    const char *sku = workload_sku_name(load, item->sku);
    bool taken = took_effect(op, item);
    if (taken || op->code == STOCK_INSUFFICIENT)
        load->answered++;
    if (taken) {
        checker_deducted(load->ledger, item->sku, op->amount);
        checker_negative(load->ledger, sku, op->available);
        remember_line(load, (ring_entry){.seq = item->line_seq, .sku = item->sku,
                                         .qty = op->amount,
                                         .available = op->available});
    } else if (outcome_unknown(op->code)) {
        checker_uncertain(load->ledger, item->sku, op->amount, 0);
    } else if (op->code != STOCK_INSUFFICIENT && !transport_failure(op->code)) {
        char what[WORKLOAD_NAME_MAX * 2 + 32];
        snprintf(what, sizeof what, "deduct line=%s sku=%s", item->id, sku);
        checker_unexpected(load->ledger, what, op->code, op->message);
    }
}

static void complete_refund(workload *load, const stock_op *op,
                            const workload_item *item)
{
    if (took_effect(op, item)) {
        checker_refunded(load->ledger, item->sku, op->amount);
        checker_negative(load->ledger, workload_sku_name(load, item->sku),
                         op->available);
        ring_entry *entry = &load->ring[item->ring_index];
        /* The line may have left the ring while the refund was in flight;
         * then only the per-SKU totals of checker_verify account for it. */
        if (entry->seq == item->line_seq) {
            entry->refunded += op->amount;
            checker_refund_total(load->ledger, item->ref, entry->qty,
                                 entry->refunded);
        }
    } else if (outcome_unknown(op->code)) {
        checker_uncertain(load->ledger, item->sku, 0, op->amount);
        ring_entry *entry = &load->ring[item->ring_index];
        if (entry->seq == item->line_seq)
            entry->refunds_unknown += op->amount;
    } else if (op->code != STOCK_EXCEEDS && !transport_failure(op->code)) {
        char what[WORKLOAD_NAME_MAX * 2 + 32];
        snprintf(what, sizeof what, "refund id=%s line=%s", item->id, item->ref);
        checker_unexpected(load->ledger, what, op->code, op->message);
    }
}

static void complete_order(workload *load, const stock_op *op,
                           const workload_item *item)
{
    if (took_effect(op, item)) {
        for (uint32_t i = 0; i < op->line_count; i++) {
            checker_deducted(load->ledger, item->line_skus[i],
                             item->lines[i].qty);
            checker_negative(load->ledger,
                             workload_sku_name(load, item->line_skus[i]),
                             item->lines[i].available);
            remember_line(load, (ring_entry){.seq = item->line_seq,
                                             .order_line = i + 1,
                                             .sku = item->line_skus[i],
                                             .qty = item->lines[i].qty,
                                             .available = item->lines[i].available});
        }
    } else if (outcome_unknown(op->code)) {
        for (uint32_t i = 0; i < op->line_count; i++)
            checker_uncertain(load->ledger, item->line_skus[i],
                              item->lines[i].qty, 0);
    } else if (op->code != STOCK_INSUFFICIENT && !transport_failure(op->code)) {
        char what[WORKLOAD_NAME_MAX + 16];
        snprintf(what, sizeof what, "order id=%s", item->id);
        checker_unexpected(load->ledger, what, op->code, op->message);
    }
}

void workload_complete(workload *load, const stock_op *op,
                       const workload_item *item)
{
    assert(load != NULL && op != NULL && item != NULL);
    assert(item->kind < WORKLOAD_OP_KIND_COUNT);
    const char *sku = workload_sku_name(load, item->sku);
    switch (item->kind) {
    case WORKLOAD_OP_DEDUCT:
        complete_deduct(load, op, item);
        break;
    case WORKLOAD_OP_REPLAY:
        if (!transport_failure(op->code))
            checker_replayed(load->ledger, item->id, item->original_available,
                             op->code, op->available);
        break;
    case WORKLOAD_OP_REFUND:
        complete_refund(load, op, item);
        break;
    case WORKLOAD_OP_READ:
        if (op->code == STOCK_OK)
            checker_negative(load->ledger, sku, op->info.sku_info.available);
        else if (!transport_failure(op->code))
            checker_unexpected(load->ledger, sku, op->code, op->message);
        break;
    case WORKLOAD_OP_ORDER:
        complete_order(load, op, item);
        break;
    case WORKLOAD_OP_KIND_COUNT:
        assert(!"not an op kind");
    }
}

void workload_finish(workload *load)
{
    assert(load != NULL);
    int64_t stock = workload_initial_stock(&load->config);
    assert(stock >= 0);
    /* Every sellout attempt asks for 1: once as many were answered as there
     * was stock, a store that sold less than all of it undersold. */
    if (load->config.kind == WORKLOAD_SELLOUT &&
        load->answered >= (uint64_t)stock)
        checker_expect_empty(load->ledger, 0);
}

/* The id of a remembered line, written into text. */
static stock_id line_id_of(const workload *load, const ring_entry *entry,
                           char *text)
{
    if (entry->order_line == 0)
        return make_id(load, text, 'L', entry->seq);
    int length = snprintf(text, WORKLOAD_NAME_MAX, "%sO%" PRIu64 ".%" PRIu32,
                          load->config.prefix, entry->seq, entry->order_line - 1);
    assert(length > 0 && length < WORKLOAD_NAME_MAX);
    return (stock_id){text, (uint32_t)length};
}

/* Compares one line read back with its ring entry. */
static void verify_line(workload *load, const ring_entry *entry,
                        const stock_op *op, const char *line_id)
{
    checker *ledger = load->ledger;
    if (op->code != STOCK_OK) {
        char what[WORKLOAD_NAME_MAX + 40];
        snprintf(what, sizeof what, "line=%s (acknowledged) read back", line_id);
        checker_unexpected(ledger, what, op->code, op->message);
        return;
    }
    const stock_line_info *info = &op->info.line_info;
    const char *sku = workload_sku_name(load, entry->sku);
    if (strcmp(info->sku, sku) != 0) {
        char fact[WORKLOAD_NAME_MAX * 2 + STOCK_ID_MAX + 40];
        snprintf(fact, sizeof fact, "line=%s: the store has it on sku=%s, "
                 "acknowledged on %s", line_id, info->sku, sku);
        checker_failed(ledger, fact);
    }
    if (info->qty != entry->qty)
        checker_line_differs(ledger, line_id, "qty", entry->qty, info->qty);
    if (info->available_after != entry->available)
        checker_line_differs(ledger, line_id, "available_after",
                             entry->available, info->available_after);
    if (info->refunded < entry->refunded ||
        info->refunded > entry->refunded + entry->refunds_unknown)
        checker_line_differs(ledger, line_id, "refunded", entry->refunded,
                             info->refunded);
}

int64_t workload_verify_lines(workload *load, workload_execute_fn execute,
                              void *context)
{
    assert(load != NULL && execute != NULL);
    stock_op *ops = calloc(CHECKER_FETCH_MAX, sizeof *ops);
    char (*ids)[WORKLOAD_NAME_MAX] = calloc(CHECKER_FETCH_MAX, sizeof *ids);
    bool no_memory = ops == NULL || ids == NULL;
    int64_t checked = no_memory ? -1 : 0;
    for (uint32_t first = 0; !no_memory && first < load->ring_filled;
         first += CHECKER_FETCH_MAX) {
        uint32_t count = load->ring_filled - first;
        if (count > CHECKER_FETCH_MAX)
            count = CHECKER_FETCH_MAX;
        for (uint32_t i = 0; i < count; i++) {
            memset(&ops[i], 0, sizeof ops[i]);
            ops[i].type = STOCK_OP_LINE;
            ops[i].line = line_id_of(load, &load->ring[first + i], ids[i]);
        }
        char message[STOCK_MESSAGE_MAX] = "";
        if (execute(context, ops, count, message, sizeof message) != 0) {
            checker_unexpected(load->ledger, "reading lines back", STOCK_UNAVAILABLE,
                               message);
            checked = -1;
            break;
        }
        for (uint32_t i = 0; i < count; i++)
            verify_line(load, &load->ring[first + i], &ops[i], ids[i]);
        checked += count;
    }
    if (no_memory)
        checker_failed(load->ledger, "reading lines back: out of memory");
    free(ops);
    free(ids);
    return checked;
}
