/*
 * commands.c -- stockctl's subcommands: each turns its arguments into one
 * stock_op, runs it through the library (so any backend URI works) and
 * hands the finished op to output.c. The table at the end is the single
 * place that names, describes and sizes them.
 */
#include <assert.h>
#include <string.h>

#include "stockctl.h"

/* Runs op as a one-op batch; stock_execute only fails for a bad count. */
static void execute(stock_t *store, stock_op *op)
{
    stock_code code = stock_execute(store, op, 1);
    assert(code == STOCK_OK);
    (void)code;
}

static int run_set(stock_t *store, const ctl_args *args)
{
    stock_op op = {.type = STOCK_OP_SET,
                   .sku = stock_id_from_cstr(args->positional[0]),
                   .has_expect = args->has_expect, .expect = args->expect};
    if (!ctl_parse_int64(args->positional[1], "LEVEL", &op.amount))
        return CTL_EXIT_USAGE;
    execute(store, &op);
    return ctl_print_level(args, "set", &op);
}

static int run_add(stock_t *store, const ctl_args *args)
{
    stock_op op = {.type = STOCK_OP_ADD,
                   .sku = stock_id_from_cstr(args->positional[0])};
    if (!ctl_parse_int64(args->positional[1], "DELTA", &op.amount))
        return CTL_EXIT_USAGE;
    if (args->adjust_id != NULL) {
        op.id = stock_id_from_cstr(args->adjust_id);
        if (op.id.len == 0) {
            ctl_usage_error("add: --id must not be empty");
            return CTL_EXIT_USAGE;
        }
    }
    execute(store, &op);
    return ctl_print_level(args, "add", &op);
}

static int run_deduct(stock_t *store, const ctl_args *args)
{
    stock_op op = {.type = STOCK_OP_DEDUCT,
                   .id = stock_id_from_cstr(args->positional[0]),
                   .sku = stock_id_from_cstr(args->positional[1])};
    if (!ctl_parse_int64(args->positional[2], "QTY", &op.amount))
        return CTL_EXIT_USAGE;
    execute(store, &op);
    return ctl_print_level(args, "deduct", &op);
}

static int run_order(stock_t *store, const ctl_args *args)
{
    stock_order_line lines[STOCK_ORDER_LINES_MAX];
    uint32_t line_count = (uint32_t)(args->positional_count - 1) / 3;
    assert(line_count >= 1 && line_count <= STOCK_ORDER_LINES_MAX);
    memset(lines, 0, sizeof lines);
    for (uint32_t i = 0; i < line_count; i++) {
        const char *const *triple = &args->positional[1 + 3 * i];
        lines[i].line_id = stock_id_from_cstr(triple[0]);
        lines[i].sku = stock_id_from_cstr(triple[1]);
        if (!ctl_parse_int64(triple[2], "QTY", &lines[i].qty))
            return CTL_EXIT_USAGE;
    }
    stock_op op = {.type = STOCK_OP_ORDER,
                   .id = stock_id_from_cstr(args->positional[0]),
                   .lines = lines, .line_count = line_count};
    execute(store, &op);
    return ctl_print_order(args, &op);
}

static int run_refund(stock_t *store, const ctl_args *args)
{
    stock_op op = {.type = STOCK_OP_REFUND,
                   .id = stock_id_from_cstr(args->positional[0]),
                   .line = stock_id_from_cstr(args->positional[1])};
    if (!ctl_parse_int64(args->positional[2], "QTY", &op.amount))
        return CTL_EXIT_USAGE;
    execute(store, &op);
    return ctl_print_level(args, "refund", &op);
}

static int run_get(stock_t *store, const ctl_args *args)
{
    stock_op op = {.type = STOCK_OP_GET,
                   .sku = stock_id_from_cstr(args->positional[0])};
    execute(store, &op);
    return ctl_print_sku(args, &op);
}

static int run_line(stock_t *store, const ctl_args *args)
{
    stock_op op = {.type = STOCK_OP_LINE,
                   .line = stock_id_from_cstr(args->positional[0])};
    execute(store, &op);
    return ctl_print_line(args, &op);
}

static int run_stats(stock_t *store, const ctl_args *args)
{
    stock_stats stats;
    stock_code code = stock_get_stats(store, &stats);
    return ctl_print_stats(args, stock_backend_name(store), code, &stats);
}

const ctl_command ctl_commands[] = {
    {"set", "SKU LEVEL [--expect CURRENT]",
     "create a SKU or set its stock level",
     "Sets SKU's available stock to LEVEL (0..2^63-1), creating the SKU if\n"
     "needed. With --expect, only if the current level is CURRENT (compare-\n"
     "and-set): otherwise MISMATCH, and the current level is reported.\n",
     2, 2, 0, run_set},
    {"add", "SKU DELTA [--id ADJUSTMENT_ID]",
     "restock (DELTA > 0) or write off (DELTA < 0)",
     "Adds DELTA (non-zero, -2147483647..2147483647) to SKU's stock. A write-off\n"
     "never goes below 0 (INSUFFICIENT). With --id the adjustment is\n"
     "idempotent: repeating it answers REPLAY and changes nothing.\n",
     2, 2, 0, run_add},
    {"deduct", "LINE_ID SKU QTY",
     "take QTY of SKU for an order line",
     "Takes QTY (1..2147483647) off SKU for the line LINE_ID, if that much is\n"
     "available (else INSUFFICIENT, with the stock there is). Repeating the\n"
     "same line answers REPLAY with the original result; the same LINE_ID with\n"
     "another SKU or QTY is a CONFLICT.\n",
     3, 3, 0, run_deduct},
    {"order", "ORDER_ID LINE_ID SKU QTY [LINE_ID SKU QTY ...]",
     "deduct all lines of a cart, or none",
     "Deducts every line (up to 100) or none: the same SKU on several lines is\n"
     "checked against their sum. Repeating the order answers REPLAY.\n",
     4, CTL_POSITIONAL_MAX, 3, run_order},
    {"refund", "REFUND_ID LINE_ID QTY",
     "give QTY of a deducted line back",
     "Gives QTY back to the SKU of LINE_ID. The total refunded on a line never\n"
     "exceeds what it deducted (EXCEEDS, with what is still refundable).\n"
     "Repeating the refund answers REPLAY.\n",
     3, 3, 0, run_refund},
    {"get", "SKU", "show a SKU's stock and totals",
     "Shows available, adjusted (sets and adds), deducted and refunded;\n"
     "available = adjusted - deducted + refunded.\n",
     1, 1, 0, run_get},
    {"line", "LINE_ID", "show a deducted line",
     "Shows the line's SKU, order, quantity, refunded quantity, time and the\n"
     "stock left right after it was deducted.\n",
     1, 1, 0, run_line},
    {"stats", "", "show the backend's counters",
     "Shows the counters the backend keeps since the store was opened (for a\n"
     "server: this connection's, not the server's).\n",
     0, 0, 0, run_stats},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
