/*
 * commands.c -- stockctl's subcommands: each turns its arguments into one
 * stock_op before any store is opened (prepare_*), then ctl_run runs it
 * through the library (so any backend URI works) and hands the finished op
 * to output.c. The table at the end is the single
 * place that names, describes and sizes them.
 */
#include <assert.h>
#include <string.h>

#include "reconcile.h"
#include "stockctl.h"

static bool prepare_set(const ctl_args *args, ctl_request *request)
{
    stock_op *op = &request->op;
    *op = (stock_op){.type = STOCK_OP_SET,
                     .sku = stock_id_from_cstr(args->positional[0]),
                     .has_expect = args->has_expect, .expect = args->expect};
    return ctl_parse_int64(args->positional[1], "LEVEL", &op->amount);
}

static bool prepare_add(const ctl_args *args, ctl_request *request)
{
    stock_op *op = &request->op;
    *op = (stock_op){.type = STOCK_OP_ADD,
                     .sku = stock_id_from_cstr(args->positional[0])};
    if (args->adjust_id != NULL) {
        op->id = stock_id_from_cstr(args->adjust_id);
        if (op->id.len == 0) {
            ctl_usage_error("add: --id must not be empty");
            return false;
        }
    }
    return ctl_parse_int64(args->positional[1], "DELTA", &op->amount);
}

static bool prepare_deduct(const ctl_args *args, ctl_request *request)
{
    stock_op *op = &request->op;
    *op = (stock_op){.type = STOCK_OP_DEDUCT,
                     .id = stock_id_from_cstr(args->positional[0]),
                     .sku = stock_id_from_cstr(args->positional[1])};
    return ctl_parse_int64(args->positional[2], "QTY", &op->amount);
}

static bool prepare_order(const ctl_args *args, ctl_request *request)
{
    uint32_t line_count = (uint32_t)(args->positional_count - 1) / 3;
    assert(line_count >= 1 && line_count <= STOCK_ORDER_LINES_MAX);
    for (uint32_t i = 0; i < line_count; i++) {
        const char *const *triple = &args->positional[1 + 3 * i];
        stock_order_line *line = &request->lines[i];
        *line = (stock_order_line){.line_id = stock_id_from_cstr(triple[0]),
                                   .sku = stock_id_from_cstr(triple[1])};
        if (!ctl_parse_int64(triple[2], "QTY", &line->qty))
            return false;
    }
    request->op = (stock_op){.type = STOCK_OP_ORDER,
                             .id = stock_id_from_cstr(args->positional[0]),
                             .lines = request->lines, .line_count = line_count};
    return true;
}

static bool prepare_refund(const ctl_args *args, ctl_request *request)
{
    stock_op *op = &request->op;
    *op = (stock_op){.type = STOCK_OP_REFUND,
                     .id = stock_id_from_cstr(args->positional[0]),
                     .line = stock_id_from_cstr(args->positional[1])};
    return ctl_parse_int64(args->positional[2], "QTY", &op->amount);
}

static bool prepare_get(const ctl_args *args, ctl_request *request)
{
    request->op = (stock_op){.type = STOCK_OP_GET,
                             .sku = stock_id_from_cstr(args->positional[0])};
    return true;
}

static bool prepare_line(const ctl_args *args, ctl_request *request)
{
    request->op = (stock_op){.type = STOCK_OP_LINE,
                             .line = stock_id_from_cstr(args->positional[0])};
    return true;
}

static bool prepare_hold(const ctl_args *args, ctl_request *request)
{
    stock_op *op = &request->op;
    *op = (stock_op){.type = STOCK_OP_HOLD,
                     .id = stock_id_from_cstr(args->positional[0]),
                     .sku = stock_id_from_cstr(args->positional[1])};
    return ctl_parse_int64(args->positional[2], "QTY", &op->amount) &&
           ctl_parse_int64(args->positional[3], "TTL_MS", &op->expect);
}

static bool prepare_confirm(const ctl_args *args, ctl_request *request)
{
    stock_op *op = &request->op;
    *op = (stock_op){.type = STOCK_OP_CONFIRM,
                     .id = stock_id_from_cstr(args->positional[0])};
    return args->positional_count < 2 ||
           ctl_parse_int64(args->positional[1], "QTY", &op->amount);
}

static bool prepare_release(const ctl_args *args, ctl_request *request)
{
    request->op = (stock_op){.type = STOCK_OP_RELEASE,
                             .id = stock_id_from_cstr(args->positional[0])};
    return true;
}

static bool prepare_confirm_order(const ctl_args *args, ctl_request *request)
{
    uint32_t line_count = (uint32_t)(args->positional_count - 1) / 2;
    assert(line_count >= 1 && line_count <= STOCK_ORDER_LINES_MAX);
    for (uint32_t i = 0; i < line_count; i++) {
        const char *const *pair = &args->positional[1 + 2 * i];
        stock_order_line *line = &request->lines[i];
        *line = (stock_order_line){.line_id = stock_id_from_cstr(pair[0])};
        if (!ctl_parse_int64(pair[1], "QTY", &line->qty))
            return false;
    }
    request->op = (stock_op){.type = STOCK_OP_CONFIRM_ORDER,
                             .id = stock_id_from_cstr(args->positional[0]),
                             .lines = request->lines, .line_count = line_count};
    return true;
}

static bool prepare_hold_info(const ctl_args *args, ctl_request *request)
{
    request->op = (stock_op){.type = STOCK_OP_HOLD_GET,
                             .id = stock_id_from_cstr(args->positional[0])};
    return true;
}

static bool prepare_stats(const ctl_args *args, ctl_request *request)
{
    assert(args->positional_count == 0);
    memset(&request->op, 0, sizeof request->op);   /* type 0: stats */
    return true;
}

int ctl_run(stock_t *store, const ctl_args *args, ctl_request *request)
{
    stock_op *op = &request->op;
    if ((int)op->type == 0) {
        stock_stats stats;
        stock_code code = stock_get_stats(store, &stats);
        return ctl_print_stats(args, stock_backend_name(store), code, &stats);
    }
    /* stock_execute fails only for a bad batch size; one op is fine */
    stock_code executed = stock_execute(store, op, 1);
    assert(executed == STOCK_OK);
    (void)executed;
    switch (op->type) {
    case STOCK_OP_SET: return ctl_print_level(args, "set", op);
    case STOCK_OP_ADD: return ctl_print_level(args, "add", op);
    case STOCK_OP_DEDUCT: return ctl_print_level(args, "deduct", op);
    case STOCK_OP_REFUND: return ctl_print_level(args, "refund", op);
    case STOCK_OP_ORDER: return ctl_print_order(args, op);
    case STOCK_OP_GET: return ctl_print_sku(args, op);
    case STOCK_OP_LINE: return ctl_print_line(args, op);
    case STOCK_OP_HOLD: return ctl_print_level(args, "hold", op);
    case STOCK_OP_CONFIRM: return ctl_print_level(args, "confirm", op);
    case STOCK_OP_RELEASE: return ctl_print_level(args, "release", op);
    case STOCK_OP_CONFIRM_ORDER: return ctl_print_order(args, op);
    case STOCK_OP_HOLD_GET: return ctl_print_hold(args, op);
    }
    assert(!"unknown op type");
    return CTL_EXIT_INTERNAL;
}

const ctl_command ctl_commands[] = {
    {"set", "SKU LEVEL [--expect CURRENT]",
     "create a SKU or set its stock level",
     "Sets SKU's available stock to LEVEL (0..2^63-1), creating the SKU if\n"
     "needed. With --expect, only if the current level is CURRENT (compare-\n"
     "and-set): otherwise MISMATCH, and the current level is reported.\n",
     2, 2, 0, prepare_set, NULL},
    {"add", "SKU DELTA [--id ADJUSTMENT_ID]",
     "restock (DELTA > 0) or write off (DELTA < 0)",
     "Adds DELTA (non-zero, -2147483647..2147483647) to SKU's stock. A write-off\n"
     "never goes below 0 (INSUFFICIENT). With --id the adjustment is\n"
     "idempotent: repeating it answers REPLAY and changes nothing.\n",
     2, 2, 0, prepare_add, NULL},
    {"deduct", "LINE_ID SKU QTY",
     "take QTY of SKU for an order line",
     "Takes QTY (1..2147483647) off SKU for the line LINE_ID, if that much is\n"
     "available (else INSUFFICIENT, with the stock there is). Repeating the\n"
     "same line answers REPLAY with the original result; the same LINE_ID with\n"
     "another SKU or QTY is a CONFLICT.\n",
     3, 3, 0, prepare_deduct, NULL},
    {"order", "ORDER_ID LINE_ID SKU QTY [LINE_ID SKU QTY ...]",
     "deduct all lines of a cart, or none",
     "Deducts every line (up to 100) or none: the same SKU on several lines is\n"
     "checked against their sum. Repeating the order answers REPLAY.\n",
     4, CTL_POSITIONAL_MAX, 3, prepare_order, NULL},
    {"refund", "REFUND_ID LINE_ID QTY",
     "give QTY of a deducted line back",
     "Gives QTY back to the SKU of LINE_ID. The total refunded on a line never\n"
     "exceeds what it deducted (EXCEEDS, with what is still refundable).\n"
     "Repeating the refund answers REPLAY.\n",
     3, 3, 0, prepare_refund, NULL},
    {"get", "SKU", "show a SKU's stock and totals",
     "Shows available, adjusted (sets and adds), deducted, refunded and held\n"
     "(units in holds not yet confirmed, released or expired);\n"
     "available + held = adjusted - deducted + refunded.\n",
     1, 1, 0, prepare_get, NULL},
    {"line", "LINE_ID", "show a deducted line",
     "Shows the line's SKU, order, quantity, refunded quantity, time and the\n"
     "stock left right after it was deducted.\n",
     1, 1, 0, prepare_line, NULL},
    {"hold", "HOLD_ID SKU QTY TTL_MS", "hold QTY of SKU for TTL_MS milliseconds",
     "Takes QTY (1..2147483647) of SKU out of available into the hold HOLD_ID\n"
     "until TTL_MS (1..2592000000) milliseconds from now on the store's clock.\n"
     "Unless confirmed or released first, the store expires it then and the\n"
     "units are available again. Repeating the hold answers REPLAY.\n",
     4, 4, 0, prepare_hold, NULL},
    {"confirm", "HOLD_ID [QTY]", "turn a hold into a deducted line",
     "Confirms QTY of the hold (all of it without QTY; the rest is released)\n"
     "as a deducted line whose id is HOLD_ID, refundable as any line. After\n"
     "the deadline: EXPIRED; after a release: CLOSED. Repeating: REPLAY.\n",
     1, 2, 0, prepare_confirm, NULL},
    {"release", "HOLD_ID", "give a hold's units back",
     "Releases the hold: its units are available again. After the deadline:\n"
     "EXPIRED; after a confirm: CLOSED. Repeating: REPLAY.\n",
     1, 1, 0, prepare_release, NULL},
    {"confirm-order", "ORDER_ID HOLD_ID QTY [HOLD_ID QTY ...]",
     "confirm holds as one order, all or none",
     "Confirms every hold (up to 100; QTY 0 = the whole hold) as the lines of\n"
     "order ORDER_ID, or none: one hold expired, released, confirmed or\n"
     "unknown fails the order and names it. Repeating answers REPLAY.\n",
     3, CTL_POSITIONAL_MAX, 2, prepare_confirm_order, NULL},
    {"hold-info", "HOLD_ID", "show a hold",
     "Shows the hold's SKU, state (held, confirmed, released, expired),\n"
     "quantity, confirmed quantity, order, time and deadline.\n",
     1, 1, 0, prepare_hold_info, NULL},
    {"stats", "", "show the backend's counters",
     "Shows the counters the backend keeps since the store was opened (for a\n"
     "server: this connection's, not the server's).\n",
     0, 0, 0, prepare_stats, NULL},
    {"backup", "URI DEST", "take an online backup of a live store",
     "Backs up the store at URI into the new folder DEST while it keeps serving:\n"
     "a data folder (in-process, when no one else has it open) or stockd://\n"
     "(the server writes DEST on its own machine, a path as it sees it).\n"
     "The backup holds every operation acknowledged before the command and\n"
     "nothing after its point, which it prints (records, as an lsn). The\n"
     "manifest BACKUP is written last: a folder without it is unfinished.\n"
     "Ignores --store.\n",
     2, 2, 0, NULL, ctl_backup},
    {"restore", "SRC DIR", "restore a backup into a new data folder",
     "Checks the backup SRC (its manifest, every file at its size), copies it\n"
     "into DIR, which must not exist, and opens DIR once to prove it\n"
     "recovers. Then start stockd with --store DIR. Ignores --store.\n",
     2, 2, 0, NULL, ctl_restore},
    {"reshard", "OLD_URI NEW_URI", "add members to a sharded store, moving its SKUs",
     "OLD_URI is the shards: URI of the store's members, as it records them;\n"
     "NEW_URI the same members, spelled the same, followed by the new ones\n"
     "(empty PostgreSQL databases with max_prepared_transactions > 0). Moves\n"
     "every SKU whose shard changes, with its lines, refunds and adjustments,\n"
     "every piece of a hot SKU (NEW_URI must name the same hot= segment) on a\n"
     "member that no longer holds one of its pieces, to a new member that does,\n"
     "and every id directory entry whose home changes, each step a two-phase\n"
     "commit on the two members; then records the new map. The store must be\n"
     "offline: refused while anyone else is connected to a member, and no\n"
     "store opens while the move is recorded. Interrupted (a crash, a kill),\n"
     "it loses and doubles nothing: run it again with the same URIs to finish.\n"
     "Refused, changing nothing, when OLD_URI is not the members' map (another\n"
     "order, one missing or added), NEW_URI does not extend it or names\n"
     "another hot= segment, or two members are databases of one PostgreSQL\n"
     "server. Says on stderr when it starts or resumes a move. Ignores --store.\n"
     "See docs/sharded.md, \"Adding a shard\".\n",
     2, 2, 0, NULL, ctl_reshard},
    {"publish", "KIND [FILE]",
     "queue requests for stockintake and print their results",
     "Options: --broker URL, --prefix P, --wait SECONDS.\n"
     "Publishes one request per line of FILE (or stdin, also for '-'): the JSON\n"
     "body of the HTTP API for KIND, one of orders, deductions, refunds. Each\n"
     "goes to the subject P.intake.KIND (P: --prefix, default stock) of the NATS\n"
     "broker at --broker (default $STOCKCTL_BROKER, else " CTL_BROKER_DEFAULT "),\n"
     "with an inbox of its own as Stock-Reply-To (a request sent again gets\n"
     "its own result: REPLAY, from the store).\n"
     "Prints each result as stockintake publishes it, one JSON object per line\n"
     "(docs/intake.md), with progress on stderr when it is a terminal. Exits 0\n"
     "once every request has its result, whatever that is; 11 when --wait\n"
     "seconds (default 60) pass without a result while some are missing; 1 when\n"
     "the broker fails. Needs no store.\n",
     1, 2, 0, NULL, ctl_publish},
    {"hot", "[--http URL]",
     "show a running stockd's hot SKUs",
     "Shows the SKUs with the most operations and the most refusals over the\n"
     "server's sliding window (60 s), ten per ranking, from GET /v1/hot at\n"
     "--http (default $STOCKCTL_HTTP, else " CTL_HTTP_DEFAULT "); a count may\n"
     "be above the truth by at most the error shown. $STOCKCTL_TOKEN, when set,\n"
     "is sent as the Bearer token (a server with --requirepass). With --json:\n"
     "the reply's JSON as is. Exits 11 when the server cannot be reached or\n"
     "answers anything else. Needs no store.\n",
     0, 0, 0, NULL, ctl_hot},
    {"threshold", "SKU [N] [--http URL]",
     "show or set a SKU's threshold for stock events",
     "Without N, shows SKU's threshold; with N, sets it (0 removes it). The\n"
     "below_threshold event fires when SKU's available stock goes from N or\n"
     "more to under N (docs/events.md). Thresholds live in the data folder of\n"
     "the embedded store that stockd at --http serves (default $STOCKCTL_HTTP,\n"
     "else " CTL_HTTP_DEFAULT "), through GET/PUT /v1/skus/SKU/threshold;\n"
     "$STOCKCTL_TOKEN is the Bearer token. A server over another store answers\n"
     "UNSUPPORTED (exit 12). Needs no store.\n",
     1, 2, 0, NULL, ctl_threshold},
    {"reconcile", "A [B]", "compare two stores, or one with its own flow; --repair B",
     "Options: --repair, --json. A and B are store URIs (any libstock URI:\n"
     "a folder, stockd://, postgres://, shards:, redis://); --store is not used.\n"
     "With A and B: compares, SKU by SKU, available, adjusted, deducted,\n"
     "refunded and held, every line (SKU, order, qty, refunded) both ways, and\n"
     "the refunds of every refunded line by refund id (line, qty).\n"
     "With A alone: checks each SKU's counters against its own flow (I2):\n"
     "available + held = adjusted - deducted + refunded, deducted = the sum of\n"
     "its lines' qty, refunded = the sum of their refunded, and each line's\n"
     "refunded = the sum of its refunds.\n"
     "Prints every difference as it is found, with its reason: missing sku,\n"
     "extra sku, missing line, extra line (missing: A has it, B lacks it;\n"
     "extra: the other way), different qty, different sku, different order,\n"
     "different refunded (a line's), missing refund, extra refund, different\n"
     "refund (its qty), counter drift (A's counter vs B's), I2 (a store vs\n"
     "its own flow).\n"
     "--json prints one object: {\"differences\": [...], \"skus\", \"lines\",\n"
     "\"different\", \"repaired\", \"equal\", \"self_check\", \"error\"}.\n"
     "--repair writes on B only, by operations whose ids are A's own (line,\n"
     "order, refund) or derived from the difference, so a second run repairs\n"
     "nothing: a missing SKU is set at 0, a missing line deducted with A's\n"
     "line id (its order again, or after adjusting B's stock up by any\n"
     "shortfall), a missing refund refunded with A's refund id, then B's\n"
     "available adjusted to A's. Never repaired, only reported: what B has\n"
     "and A lacks, a line's qty, SKU or order, a refund's qty, counters other\n"
     "than available, and holds (a hold gives its units back by itself;\n"
     "B's available is then left too). Never touched: A.\n"
     "Streams page by page (a few pages in memory, and one line's refunds in\n"
     "B, whatever the stores hold); progress on stderr when it is a terminal.\n"
     "Exit codes (its own): 0 equal, 1 different (also when all was repaired:\n"
     "run again to confirm), 2 an error (a store failed, a repair failed).\n",
     1, 2, 0, NULL, ctl_reconcile},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
