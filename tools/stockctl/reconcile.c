/*
 * reconcile.c -- `stockctl reconcile A [B]`: compares two stores SKU by SKU
 * and line by line, or one store's counters with its own flow (I2).
 *
 * It streams: SKUs come a page at a time from A's listing (stock_list), the
 * same SKUs are read from B in one batch of GETs; each SKU's lines come a
 * page at a time from A's listing and are read from B in one batch of LINE
 * ops (B's lines are paged too, to add them up, and read from A only when
 * B has more than A's found there: to name those A lacks); a line either
 * store says was refunded has its refunds compared (reconcile_refunds.c);
 * last, B's SKUs are paged to find those A lacks. Nothing is kept from one
 * page to the next but the cursor and the counts (and one line's refunds
 * in B), so the memory is a few pages whatever the stores hold, and the
 * two stores need not list in the same order.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reconcile.h"

/* The sums of one store's lines of one SKU. */
typedef struct rc_sums {
    int64_t qty;
    int64_t refunded;
    uint64_t lines;
    uint64_t matched;      /* lines the other store has too */
} rc_sums;

void rc_set_number(char out[RC_VALUE_MAX], int64_t value)
{
    snprintf(out, RC_VALUE_MAX, "%" PRId64, value);
}

/* Reads each id of page[0..count) from store in one batch: GET (skus,
 * into run->sku_ops) or LINE (into run->line_ops). False when the batch
 * failed as a whole, or an op failed otherwise than NOT_FOUND. */
static bool read_batch(rc_run *run, stock_t *store, const char *name, bool skus,
                       const stock_list_entry *page, uint32_t count)
{
    stock_op *ops = skus ? run->sku_ops : run->line_ops;
    for (uint32_t i = 0; i < count; i++) {
        stock_id id = stock_id_from_cstr(page[i].id);
        ops[i] = skus ? (stock_op){.type = STOCK_OP_GET, .sku = id}
                      : (stock_op){.type = STOCK_OP_LINE, .line = id};
    }
    stock_code code = stock_execute(store, ops, count);
    if (code != STOCK_OK)
        return rc_fail(run, name, code, "a batch of reads was refused");
    for (uint32_t i = 0; i < count; i++)
        if (ops[i].code != STOCK_OK && ops[i].code != STOCK_NOT_FOUND)
            return rc_fail(run, name, ops[i].code, ops[i].message);
    return true;
}

/* One page of a listing into page; false (run->failed) on an error. */
static bool list_page(rc_run *run, stock_t *store, const char *name, stock_list_kind kind,
                      const char *of, const char *after, stock_list_entry *page,
                      uint32_t *count)
{
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_list(store, kind, of, after, page, RC_PAGE, count, message);
    return code == STOCK_OK || rc_fail(run, name, code, message);
}

/* A line's field that differs between A and B, which no operation
 * changes: reported, never repaired. */
static void report_line_field(rc_run *run, const char *sku, const char *line, const char *reason,
                              const char *field, const char *a, const char *b)
{
    rc_diff diff = {.sku = sku, .line = line, .reason = reason, .field = field,
                    .numeric = strcmp(field, "qty") == 0};
    snprintf(diff.a, RC_VALUE_MAX, "%s", a);
    snprintf(diff.b, RC_VALUE_MAX, "%s", b);
    if (run->repair)
        snprintf(diff.repair, RC_REPAIR_MAX, "not repaired: a line's %s never changes", field);
    rc_report(run, &diff);
}

/* A line's refunded total, once its refunds were compared (and repaired:
 * then B's line is read again to say whether the totals agree now). */
static void report_refunded(rc_run *run, const char *sku, const char *line, int64_t a, int64_t b)
{
    rc_diff diff = {.sku = sku, .line = line, .reason = RC_REASON_LINE_REFUNDED,
                    .field = "refunded", .numeric = true};
    rc_set_number(diff.a, a);
    rc_set_number(diff.b, b);
    stock_line_info after;
    char message[STOCK_MESSAGE_MAX];
    if (run->repair) {
        stock_code code = stock_line(run->b, line, &after, message);
        if (code != STOCK_OK && code != STOCK_NOT_FOUND) {
            rc_fail(run, run->uri_b, code, message);
            return;
        }
        diff.repaired = code == STOCK_OK && after.refunded == a;
        snprintf(diff.repair, RC_REPAIR_MAX, "%s", diff.repaired
                     ? "equal once its refunds were repaired"
                     : "not repaired: its refunds differ in ways no operation undoes");
    }
    rc_report(run, &diff);
}

/* Compares A's line with what B answered for its id, and repairs B. */
static void compare_line(rc_run *run, const char *sku, const stock_list_entry *a_entry,
                         const stock_op *b_op)
{
    const stock_line_info *a = &a_entry->info.line_info;
    const char *line = a_entry->id;
    if (b_op->code == STOCK_NOT_FOUND) {
        rc_diff diff = {.sku = sku, .line = line, .reason = RC_REASON_MISSING_LINE,
                        .numeric = true};
        rc_set_number(diff.a, a->qty);
        if (run->repair)
            rc_repair_line(run, &diff, a);
        rc_report(run, &diff);
        if (a->refunded > 0)
            rc_compare_refunds(run, sku, line, a->refunded, -1);
        return;
    }
    const stock_line_info *b = &b_op->info.line_info;
    char a_qty[RC_VALUE_MAX], b_qty[RC_VALUE_MAX];
    if (strcmp(a->sku, b->sku) != 0)
        report_line_field(run, sku, line, RC_REASON_LINE_SKU, "sku", a->sku, b->sku);
    if (strcmp(a->order_id, b->order_id) != 0)
        report_line_field(run, sku, line, RC_REASON_LINE_ORDER, "order_id", a->order_id,
                          b->order_id);
    if (a->qty != b->qty) {
        rc_set_number(a_qty, a->qty);
        rc_set_number(b_qty, b->qty);
        report_line_field(run, sku, line, RC_REASON_LINE_QTY, "qty", a_qty, b_qty);
    }
    if (a->refunded > 0 || b->refunded > 0)
        rc_compare_refunds(run, sku, line, a->refunded, b->refunded);
    if (a->refunded != b->refunded && !run->failed)
        report_refunded(run, sku, line, a->refunded, b->refunded);
}

/* A line of B's that A does not have. */
static void report_extra_line(rc_run *run, const char *sku, const stock_list_entry *b_entry)
{
    rc_diff diff = {.sku = sku, .line = b_entry->id, .reason = RC_REASON_EXTRA_LINE,
                    .numeric = true};
    rc_set_number(diff.b, b_entry->info.line_info.qty);
    if (run->repair)
        snprintf(diff.repair, RC_REPAIR_MAX,
                 "not repaired: B has a line A lacks, and no operation removes a line");
    rc_report(run, &diff);
}

/* One pass over a listing of `from`, each page read from `other` too
 * (NULL: A alone); for lines, the SKU's and their sums. */
typedef struct rc_walk {
    stock_t *from, *other;
    const char *from_name, *other_name;
    bool from_is_a;
    const char *sku;
    rc_sums sums;
} rc_walk;

typedef void (*rc_visit_fn)(rc_run *run, rc_walk *walk, const stock_list_entry *entry,
                            const stock_op *other);

/* Pages the listing (kind, of walk->sku) into page, reads each page's ids
 * from walk->other in one batch, and visits every entry with what other
 * answered. False on a store's failure. */
static bool walk_all(rc_run *run, rc_walk *walk, stock_list_kind kind, stock_list_entry *page,
                     rc_visit_fn visit)
{
    bool skus = kind == STOCK_LIST_SKUS;
    const stock_op *ops = skus ? run->sku_ops : run->line_ops;
    char after[STOCK_ID_MAX + 1] = "";
    uint32_t count = 0;
    do {
        if (!list_page(run, walk->from, walk->from_name, kind, walk->sku,
                       after[0] != '\0' ? after : NULL, page, &count))
            return false;
        if (count == 0)
            break;
        if (walk->other != NULL &&
            !read_batch(run, walk->other, walk->other_name, skus, page, count))
            return false;
        for (uint32_t i = 0; i < count && !run->failed; i++)
            visit(run, walk, &page[i], walk->other != NULL ? &ops[i] : NULL);
        if (run->failed)
            return false;
        snprintf(after, sizeof after, "%s", page[count - 1].id);
        rc_progress(run, false);
    } while (count == RC_PAGE);
    return true;
}

/* A line: added up; from A compared with B's, from B reported if A lacks
 * it. */
static void visit_line(rc_run *run, rc_walk *walk, const stock_list_entry *entry,
                       const stock_op *other)
{
    walk->sums.qty += entry->info.line_info.qty;
    walk->sums.refunded += entry->info.line_info.refunded;
    walk->sums.lines++;
    walk->sums.matched += other != NULL && other->code == STOCK_OK;
    if (walk->from_is_a)
        run->lines++;
    if (other != NULL && walk->from_is_a)
        compare_line(run, walk->sku, entry, other);
    else if (other != NULL && other->code == STOCK_NOT_FOUND)
        report_extra_line(run, walk->sku, entry);
    else if (run->b == NULL && entry->info.line_info.refunded > 0)
        rc_compare_refunds(run, walk->sku, entry->id, entry->info.line_info.refunded, -1);
}

/* Pages from's lines of sku into *sums; with other, compares them (from =
 * A) or looks for those other lacks (from = B). */
static bool walk_lines(rc_run *run, const char *sku, bool from_is_a, bool with_other,
                       rc_sums *sums)
{
    rc_walk walk = {.from = from_is_a ? run->a : run->b,
                    .other = !with_other ? NULL : from_is_a ? run->b : run->a,
                    .from_name = from_is_a ? run->uri_a : run->uri_b,
                    .other_name = from_is_a ? run->uri_b : run->uri_a,
                    .from_is_a = from_is_a, .sku = sku};
    bool ok = walk_all(run, &walk, STOCK_LIST_SKU_LINES, run->lines_page, visit_line);
    *sums = walk.sums;
    return ok;
}

/* Reports one counter of a SKU that differs (reason, a's value, b's). */
static void report_counter(rc_run *run, const char *sku, const char *reason, const char *field,
                           int64_t a, int64_t b, const char *repair)
{
    rc_diff diff = {.sku = sku, .reason = reason, .field = field, .numeric = true};
    rc_set_number(diff.a, a);
    rc_set_number(diff.b, b);
    if (repair != NULL)
        snprintf(diff.repair, RC_REPAIR_MAX, "%s", repair);
    rc_report(run, &diff);
}

/* I2 of one store's SKU: its counters add up, and its deducted and
 * refunded totals are the sums of its lines. name says whose. */
static void check_own_flow(rc_run *run, const char *sku, const char *name,
                           const stock_sku_info *info, const rc_sums *sums)
{
    char field[64];
    int64_t flow = info->adjusted - info->deducted + info->refunded;
    if (info->available + info->held != flow) {
        snprintf(field, sizeof field, "%s: available+held vs adjusted-deducted+refunded", name);
        report_counter(run, sku, RC_REASON_I2, field, info->available + info->held, flow, NULL);
    }
    if (info->deducted != sums->qty) {
        snprintf(field, sizeof field, "%s: deducted vs its lines' qty", name);
        report_counter(run, sku, RC_REASON_I2, field, info->deducted, sums->qty, NULL);
    }
    if (info->refunded != sums->refunded) {
        snprintf(field, sizeof field, "%s: refunded vs its lines' refunded", name);
        report_counter(run, sku, RC_REASON_I2, field, info->refunded, sums->refunded, NULL);
    }
}

/* Reads B's SKU again (after repairs); false (run->failed) on an error. */
static bool reread_b(rc_run *run, const char *sku, stock_sku_info *info)
{
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_get(run->b, sku, info, message);
    return code == STOCK_OK || rc_fail(run, run->uri_b, code, message);
}

/* With --repair, B's available is made A's once the lines are repaired
 * (unless their holds differ: a hold gives its units back on its own). */
static void repair_available(rc_run *run, const char *sku, const stock_sku_info *a,
                             const stock_sku_info *b_before, rc_diff *available)
{
    stock_sku_info b;
    if (a->held != b_before->held) {
        snprintf(available->repair, RC_REPAIR_MAX,
                 "not repaired: the SKU's holds differ (held A=%" PRId64 " B=%" PRId64 ")",
                 a->held, b_before->held);
    } else if (reread_b(run, sku, &b) && b.available != a->available) {
        rc_repair_available(run, available, a->available, &b);
    } else if (!run->failed && b_before->available != a->available) {
        available->repaired = true;
        snprintf(available->repair, RC_REPAIR_MAX, "equal once its lines were repaired");
    }
}

/* The counters of A and B (as first read) for one SKU, each difference
 * with what the repair made of it. */
static void compare_counters(rc_run *run, const char *sku, const stock_sku_info *a,
                             const stock_sku_info *b)
{
    rc_diff available = {.sku = sku, .reason = RC_REASON_DRIFT, .field = "available",
                         .numeric = true};
    rc_set_number(available.a, a->available);
    rc_set_number(available.b, b->available);
    stock_sku_info after = *b;
    if (run->repair) {
        repair_available(run, sku, a, b, &available);
        if (run->failed || !reread_b(run, sku, &after))
            return;
    }
    if (b->available != a->available || available.repair[0] != '\0')
        rc_report(run, &available);
    static const char *const names[] = {"adjusted", "deducted", "refunded", "held"};
    const int64_t values_a[] = {a->adjusted, a->deducted, a->refunded, a->held};
    const int64_t values_b[] = {b->adjusted, b->deducted, b->refunded, b->held};
    const int64_t values_after[] = {after.adjusted, after.deducted, after.refunded, after.held};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (values_a[k] == values_b[k] && values_a[k] == values_after[k])
            continue;
        rc_diff diff = {.sku = sku, .reason = RC_REASON_DRIFT, .field = names[k],
                        .numeric = true, .repaired = values_a[k] == values_after[k]};
        rc_set_number(diff.a, values_a[k]);
        rc_set_number(diff.b, values_b[k]);
        if (run->repair && diff.repaired)
            snprintf(diff.repair, RC_REPAIR_MAX, "equal after the repairs above");
        else if (run->repair)
            snprintf(diff.repair, RC_REPAIR_MAX, "not repaired: B's %s is %" PRId64
                     " with its lines and available as A's (a line only B has, or a counter "
                     "changed outside the store's operations)", names[k], values_after[k]);
        rc_report(run, &diff);
    }
}

/* One SKU of A, with what B answered for it (NULL: A alone). */
static void compare_sku(rc_run *run, const stock_list_entry *a_entry, const stock_op *b_op)
{
    const char *sku = a_entry->id;
    const stock_sku_info *a = &a_entry->info.sku_info;
    rc_sums a_sums = {0}, b_sums = {0};
    run->skus++;
    if (b_op == NULL) {
        if (walk_lines(run, sku, true, false, &a_sums))
            check_own_flow(run, sku, "A", a, &a_sums);
        return;
    }
    stock_sku_info b = b_op->info.sku_info;
    bool b_has = b_op->code == STOCK_OK;
    /* A repair of an earlier SKU may have changed this one (an order's
     * other lines): B is read again, so its counters and lines agree. */
    if (run->repair && b_has && !reread_b(run, sku, &b))
        return;
    if (!b_has) {
        rc_diff diff = {.sku = sku, .reason = RC_REASON_MISSING_SKU, .numeric = true};
        rc_set_number(diff.a, a->available);
        if (run->repair)
            rc_repair_sku(run, &diff);
        rc_report(run, &diff);
        b = (stock_sku_info){0};
    }
    /* B's lines first, only added up: their sums must be those of B as
     * first read. Then A's, each read from B; only if B had more lines than
     * A's found there are B's read from A, to name those A lacks. */
    rc_sums extra = {0};
    if ((b_has && !walk_lines(run, sku, false, false, &b_sums)) ||
        !walk_lines(run, sku, true, true, &a_sums) ||
        (b_sums.lines > a_sums.matched && !walk_lines(run, sku, false, true, &extra)))
        return;
    check_own_flow(run, sku, "A", a, &a_sums);
    if (b_has)
        check_own_flow(run, sku, "B", &b, &b_sums);
    if (b_has || run->repair)
        compare_counters(run, sku, a, &b);
}

/* A SKU: from A compared (with B's, or with its own flow); from B
 * reported if A lacks it. */
static void visit_sku(rc_run *run, rc_walk *walk, const stock_list_entry *entry,
                      const stock_op *other)
{
    if (walk->from_is_a) {
        compare_sku(run, entry, other);
        return;
    }
    if (other->code != STOCK_NOT_FOUND)
        return;
    rc_diff diff = {.sku = entry->id, .reason = RC_REASON_EXTRA_SKU, .numeric = true};
    rc_set_number(diff.b, entry->info.sku_info.available);
    if (run->repair)
        snprintf(diff.repair, RC_REPAIR_MAX,
                 "not repaired: B has a SKU A lacks, and no operation removes one");
    rc_report(run, &diff);
}

/* Pages the SKUs of A (compared) or of B (for those A lacks). */
static bool walk_skus(rc_run *run, bool from_a)
{
    rc_walk walk = {.from = from_a ? run->a : run->b, .other = from_a ? run->b : run->a,
                    .from_name = from_a ? run->uri_a : run->uri_b,
                    .other_name = from_a ? run->uri_b : run->uri_a, .from_is_a = from_a};
    return walk_all(run, &walk, STOCK_LIST_SKUS, run->skus_page, visit_sku);
}

static bool open_store(rc_run *run, const char *uri, stock_t **store)
{
    char message[STOCK_MESSAGE_MAX];
    const stock_config config = {.log = ctl_library_message};
    stock_code code = stock_open(uri, &config, store, message);
    return code == STOCK_OK || rc_fail(run, uri, code, message);
}

int ctl_reconcile(const ctl_args *args)
{
    static rc_run run;   /* static: its pages are large */
    run = (rc_run){.args = args, .repair = args->repair, .uri_a = args->positional[0],
                   .uri_b = args->positional_count > 1 ? args->positional[1] : NULL,
                   .progress = isatty(STDERR_FILENO) == 1, .json_first = true};
    if (run.repair && run.uri_b == NULL) {
        ctl_usage_error("reconcile: --repair needs two stores (it makes B agree with A)");
        return RC_EXIT_ERROR;
    }
    rc_report_begin(&run);
    if (open_store(&run, run.uri_a, &run.a) &&
        (run.uri_b == NULL || open_store(&run, run.uri_b, &run.b)) && walk_skus(&run, true) &&
        run.b != NULL)
        walk_skus(&run, false);
    rc_progress(&run, true);
    if (run.b != NULL && stock_close(run.b) != STOCK_OK && run.repair)
        rc_fail(&run, run.uri_b, STOCK_IO, "closing the store failed: repairs may be lost");
    if (run.a != NULL)
        stock_close(run.a);
    rc_refunds_free(&run);
    return rc_report_end(&run);
}
