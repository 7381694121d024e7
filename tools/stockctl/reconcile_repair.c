/*
 * reconcile_repair.c -- `stockctl reconcile --repair`: makes B agree with A
 * by operations on B whose ids are those of A's records (a line, an
 * order, a refund) or derived from the difference they repair (a hash of
 * what was found), so that a second run, or a run after one that died half
 * way, replays them instead of repairing twice.
 *
 *   missing SKU    SET it at 0 on B; its stock comes with the final
 *                  adjustment below
 *   missing line   a line of an order: the whole ORDER again on B, with A's
 *                  order id and lines (all or none, I3; idempotent by the
 *                  order id), when B has none of them; otherwise, and for a
 *                  lone line, DEDUCT on B with A's line id, SKU and qty (a
 *                  line id is deducted at most once, I4: the repair is
 *                  idempotent by the line's own id). If B lacks the stock,
 *                  an adjustment of the shortfall first
 *   missing refund a REFUND on B with A's refund id, line and qty
 *                  (idempotent by the refund id)
 *   available      after the lines, an ADD of A's available minus B's
 *
 * What no operation can undo is reported and left: a SKU, line or refund
 * only B has, a line's qty, SKU or order, a refund's qty, holds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "reconcile.h"

#define RC_ID_PREFIX "reconcile-"
#define RC_ID_MAX (sizeof RC_ID_PREFIX + 16)

/* The id of a repair: RC_ID_PREFIX and 16 hex digits of the hash of text,
 * which names the difference (what, where, both sides' values). */
static void derive_id(char out[RC_ID_MAX], const char *text)
{
    snprintf(out, RC_ID_MAX, RC_ID_PREFIX "%016" PRIx64, (uint64_t)XXH3_64bits(text, strlen(text)));
}

/* Runs op on B; true if it took effect (OK, REPLAY). On a failure, the
 * diff says what failed and the run exits 2. */
static bool run_op(rc_run *run, rc_diff *diff, stock_op *op, const char *what)
{
    stock_code code = stock_execute(run->b, op, 1);
    if (code == STOCK_OK && stock_code_succeeded(op->code))
        return true;
    snprintf(diff->repair, RC_REPAIR_MAX, "repair failed: %s: %s %s", what,
             stock_code_name(code == STOCK_OK ? op->code : code), op->message);
    diff->repaired = false;
    run->repair_failed = true;
    return false;
}

void rc_repair_sku(rc_run *run, rc_diff *diff)
{
    stock_op op = {.type = STOCK_OP_SET, .sku = stock_id_from_cstr(diff->sku), .amount = 0};
    if (!run_op(run, diff, &op, "set 0"))
        return;
    diff->repaired = true;
    snprintf(diff->repair, RC_REPAIR_MAX, "created on B at 0 (its stock follows with its "
             "lines and its available adjustment)");
}

/* Deducts the line on B; if B lacks the stock, adjusts by the shortfall
 * first (an id of its own, derived from the line). */
static bool deduct_line(rc_run *run, rc_diff *diff, const stock_line_info *a_line, bool *added)
{
    stock_op op = {.type = STOCK_OP_DEDUCT, .id = stock_id_from_cstr(diff->line),
                   .sku = stock_id_from_cstr(a_line->sku), .amount = a_line->qty};
    stock_code code = stock_execute(run->b, &op, 1);
    *added = false;
    if (code == STOCK_OK && op.code == STOCK_INSUFFICIENT) {
        char text[3 * STOCK_ID_MAX + 64], id[RC_ID_MAX];
        snprintf(text, sizeof text, "line-stock|%s|%s|%" PRId64, diff->line, a_line->sku,
                 a_line->qty);
        derive_id(id, text);
        stock_op add = {.type = STOCK_OP_ADD, .sku = op.sku, .id = stock_id_from_cstr(id),
                        .amount = a_line->qty - op.available};
        if (!run_op(run, diff, &add, "adjusting for the line's stock"))
            return false;
        *added = true;
        op = (stock_op){.type = STOCK_OP_DEDUCT, .id = op.id, .sku = op.sku,
                        .amount = a_line->qty};
    }
    return run_op(run, diff, &op, "deduct");
}

/* Takes A's order of the line again on B as one ORDER with A's ids; true
 * if B has it now (OK, or REPLAY: an earlier line of it made it). */
static bool order_again(rc_run *run, const stock_line_info *a_line)
{
    stock_list_entry entries[STOCK_ORDER_LINES_MAX];
    stock_order_line lines[STOCK_ORDER_LINES_MAX];
    uint32_t count = 0;
    char message[STOCK_MESSAGE_MAX];
    if (stock_list(run->a, STOCK_LIST_ORDER_LINES, a_line->order_id, NULL, entries,
                   STOCK_ORDER_LINES_MAX, &count, message) != STOCK_OK || count == 0)
        return false;
    for (uint32_t i = 0; i < count; i++)
        lines[i] = (stock_order_line){.line_id = stock_id_from_cstr(entries[i].id),
                                      .sku = stock_id_from_cstr(entries[i].info.line_info.sku),
                                      .qty = entries[i].info.line_info.qty};
    stock_op op = {.type = STOCK_OP_ORDER, .id = stock_id_from_cstr(a_line->order_id),
                   .lines = lines, .line_count = count};
    return stock_execute(run->b, &op, 1) == STOCK_OK && stock_code_succeeded(op.code);
}

void rc_repair_line(rc_run *run, rc_diff *diff, const stock_line_info *a_line)
{
    bool added = false;
    if (a_line->order_id[0] != '\0' && order_again(run, a_line)) {
        diff->repaired = true;
        snprintf(diff->repair, RC_REPAIR_MAX, "deducted on B with its order %s, as on A",
                 a_line->order_id);
        return;
    }
    if (!deduct_line(run, diff, a_line, &added))
        return;
    diff->repaired = true;
    snprintf(diff->repair, RC_REPAIR_MAX, "deducted on B as line %s, qty %" PRId64 "%s",
             diff->line, a_line->qty,
             added ? " (after adjusting B's stock up by the shortfall)" : "");
}

void rc_repair_refund(rc_run *run, rc_diff *diff, int64_t qty)
{
    stock_op op = {.type = STOCK_OP_REFUND, .id = stock_id_from_cstr(diff->refund),
                   .line = stock_id_from_cstr(diff->line), .amount = qty};
    if (!run_op(run, diff, &op, "refund"))
        return;
    diff->repaired = true;
    snprintf(diff->repair, RC_REPAIR_MAX, "refunded on B as %s, qty %" PRId64, diff->refund, qty);
}

void rc_repair_available(rc_run *run, rc_diff *diff, int64_t a_available,
                         const stock_sku_info *b_info)
{
    int64_t delta = a_available - b_info->available;
    if (delta > STOCK_QTY_MAX || delta < -STOCK_QTY_MAX) {
        snprintf(diff->repair, RC_REPAIR_MAX, "not repaired: a difference of %" PRId64
                 " is more than one adjustment may carry", delta);
        run->repair_failed = true;
        return;
    }
    char text[STOCK_ID_MAX + 160], id[RC_ID_MAX];
    snprintf(text, sizeof text, "available|%s|%" PRId64 "|%" PRId64 "|%" PRId64 "|%" PRId64
             "|%" PRId64, diff->sku, a_available, b_info->available, b_info->adjusted,
             b_info->deducted, b_info->refunded);
    derive_id(id, text);
    stock_op op = {.type = STOCK_OP_ADD, .sku = stock_id_from_cstr(diff->sku),
                   .id = stock_id_from_cstr(id), .amount = delta};
    if (!run_op(run, diff, &op, "adjust"))
        return;
    diff->repaired = true;
    snprintf(diff->repair, RC_REPAIR_MAX, "adjusted B by %+" PRId64 " as %s", delta, id);
}
