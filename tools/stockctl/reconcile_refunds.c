/*
 * reconcile_refunds.c -- the refunds of one line, compared by refund id
 * (stock_list's LINE_REFUNDS): a refund A has and B lacks, one B has and A
 * lacks, one whose qty differs; and each store's line against the sum of
 * its own refunds (I2).
 *
 * The two stores need not list in the same order (an embedded store lists
 * in creation order), so B's refunds of the line are read first and kept,
 * sorted by id, while A's are paged and looked up among them: the memory is
 * one line's refunds in B (a line of qty q has at most q of them), never
 * more, and it is reused from line to line. Only lines that either store
 * says were refunded are looked at, so a store of unrefunded lines costs
 * nothing here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reconcile.h"

static int refund_cmp(const void *left, const void *right)
{
    return strcmp(((const rc_refund *)left)->id, ((const rc_refund *)right)->id);
}

/* Room for one more of B's refunds; false (run->failed) when memory ran
 * out. */
static bool refunds_grow(rc_run *run)
{
    if (run->b_refunds_count < run->b_refunds_size)
        return true;
    size_t size = run->b_refunds_size == 0 ? RC_PAGE : 2 * run->b_refunds_size;
    rc_refund *grown = realloc(run->b_refunds, size * sizeof *grown);
    if (grown == NULL)
        return rc_fail(run, run->uri_b, STOCK_NOMEM, "B's refunds of one line do not fit");
    run->b_refunds = grown;
    run->b_refunds_size = size;
    return true;
}

/* Pages the refunds of line in store into the callback visit; a line the
 * store lacks has none. *sum receives their qty. */
typedef bool (*rc_refund_fn)(rc_run *run, const stock_list_entry *entry, void *user);

static bool walk_refunds(rc_run *run, stock_t *store, const char *name, const char *line,
                         rc_refund_fn visit, void *user, int64_t *sum)
{
    char after[STOCK_ID_MAX + 1] = "", message[STOCK_MESSAGE_MAX];
    uint32_t count = 0;
    *sum = 0;
    do {
        stock_code code = stock_list(store, STOCK_LIST_LINE_REFUNDS, line,
                                     after[0] != '\0' ? after : NULL, run->refunds_page, RC_PAGE,
                                     &count, message);
        if (code == STOCK_NOT_FOUND && after[0] == '\0' && strncmp(message, "line=", 5) == 0)
            return true;
        if (code != STOCK_OK)
            return rc_fail(run, name, code, message);
        for (uint32_t i = 0; i < count; i++) {
            *sum += run->refunds_page[i].info.refund_info.qty;
            if (!visit(run, &run->refunds_page[i], user))
                return false;
        }
        if (count > 0)
            snprintf(after, sizeof after, "%s", run->refunds_page[count - 1].id);
        rc_progress(run, false);
    } while (count == RC_PAGE);
    return true;
}

static bool keep_b_refund(rc_run *run, const stock_list_entry *entry, void *user)
{
    (void)user;
    if (!refunds_grow(run))
        return false;
    rc_refund *kept = &run->b_refunds[run->b_refunds_count++];
    snprintf(kept->id, sizeof kept->id, "%s", entry->id);
    kept->qty = entry->info.refund_info.qty;
    kept->matched = false;
    return true;
}

/* Where a refund's difference is: its SKU, line and id. */
typedef struct rc_refund_at {
    const char *sku, *line;
} rc_refund_at;

/* One of A's refunds, looked up among B's (absent with no B). */
static bool compare_a_refund(rc_run *run, const stock_list_entry *entry, void *user)
{
    const rc_refund_at *at = user;
    if (run->b == NULL)
        return true;
    rc_refund key;
    snprintf(key.id, sizeof key.id, "%s", entry->id);
    /* Not with no refunds kept: their array may be NULL, which bsearch
     * must not be given. */
    rc_refund *b = run->b_refunds_count == 0
                       ? NULL
                       : bsearch(&key, run->b_refunds, run->b_refunds_count, sizeof *b, refund_cmp);
    int64_t qty = entry->info.refund_info.qty;
    rc_diff diff = {.sku = at->sku, .line = at->line, .refund = entry->id, .numeric = true};
    rc_set_number(diff.a, qty);
    if (b == NULL) {
        diff.reason = RC_REASON_MISSING_REFUND;
        if (run->repair)
            rc_repair_refund(run, &diff, qty);
        rc_report(run, &diff);
        return true;
    }
    b->matched = true;
    if (b->qty == qty)
        return true;
    diff.reason = RC_REASON_REFUND_QTY;
    diff.field = "qty";
    rc_set_number(diff.b, b->qty);
    if (run->repair)
        snprintf(diff.repair, RC_REPAIR_MAX, "not repaired: a refund's qty never changes");
    rc_report(run, &diff);
    return true;
}

/* A store's line against the sum of its own refunds (I2). */
static void check_line_flow(rc_run *run, const rc_refund_at *at, const char *name,
                            int64_t refunded, int64_t sum)
{
    if (refunded == sum)
        return;
    rc_diff diff = {.sku = at->sku, .line = at->line, .reason = RC_REASON_I2, .numeric = true};
    char field[64];
    snprintf(field, sizeof field, "%s: the line's refunded vs its refunds' qty", name);
    diff.field = field;
    rc_set_number(diff.a, refunded);
    rc_set_number(diff.b, sum);
    rc_report(run, &diff);
}

void rc_compare_refunds(rc_run *run, const char *sku, const char *line, int64_t a_refunded,
                        int64_t b_refunded)
{
    rc_refund_at at = {sku, line};
    int64_t a_sum = 0, b_sum = 0;
    run->b_refunds_count = 0;
    if (run->b != NULL) {
        if (!walk_refunds(run, run->b, run->uri_b, line, keep_b_refund, NULL, &b_sum))
            return;
        if (run->b_refunds_count > 1)
            qsort(run->b_refunds, run->b_refunds_count, sizeof *run->b_refunds, refund_cmp);
    }
    if (!walk_refunds(run, run->a, run->uri_a, line, compare_a_refund, &at, &a_sum))
        return;
    for (size_t i = 0; i < run->b_refunds_count; i++) {
        const rc_refund *b = &run->b_refunds[i];
        if (b->matched)
            continue;
        rc_diff diff = {.sku = sku, .line = line, .refund = b->id,
                        .reason = RC_REASON_EXTRA_REFUND, .numeric = true};
        rc_set_number(diff.b, b->qty);
        if (run->repair)
            snprintf(diff.repair, RC_REPAIR_MAX,
                     "not repaired: B has a refund A lacks, and no operation takes one back");
        rc_report(run, &diff);
    }
    check_line_flow(run, &at, "A", a_refunded, a_sum);
    if (run->b != NULL && b_refunded >= 0)
        check_line_flow(run, &at, "B", b_refunded, b_sum);
}

void rc_refunds_free(rc_run *run)
{
    free(run->b_refunds);
    run->b_refunds = NULL;
    run->b_refunds_count = run->b_refunds_size = 0;
}
