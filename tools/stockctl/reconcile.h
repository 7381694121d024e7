/*
 * reconcile.h -- `stockctl reconcile A [B]` (docs/stockctl.md, "Reconciling two stores"):
 * reconcile.c walks the stores page by page through stock_list and compares
 * them; reconcile_refunds.c compares a line's refunds by refund id;
 * reconcile_report.c prints each difference as it is found (text or one
 * streamed JSON object) and the progress line; reconcile_repair.c makes B
 * agree with A by operations whose ids are derived from the difference.
 */
#ifndef STOCKCTL_RECONCILE_H
#define STOCKCTL_RECONCILE_H

#include <stdbool.h>
#include <stdint.h>

#include "stockctl.h"

/* Entries in one page of a listing, and ops in one batch of reads: the
 * most a reconcile holds in memory at once, whatever the stores' sizes. */
#define RC_PAGE STOCK_LIST_MAX
/* Progress on a terminal: at most this often. */
#define RC_PROGRESS_US 250000
/* Bytes of a value printed in a difference (an id or an integer). */
#define RC_VALUE_MAX (STOCK_ID_MAX + 1)
/* Bytes of the text saying what a repair did or why it could not. */
#define RC_REPAIR_MAX 320

/* Exit codes of reconcile (not those of the other commands). */
#define RC_EXIT_EQUAL 0
#define RC_EXIT_DIFFERENT 1
#define RC_EXIT_ERROR 2

/* One difference, as found. Values are text ("" for a side that lacks the
 * thing); numeric says whether JSON prints them as integers. For I2, a is
 * the store's counter and b what its flow adds up to. */
typedef struct rc_diff {
    const char *sku;
    const char *line;             /* NULL for a SKU's difference */
    const char *refund;           /* a refund's difference: its id */
    const char *reason;           /* RC_REASON_* */
    const char *field;            /* what differs; NULL for a missing thing */
    char a[RC_VALUE_MAX];
    char b[RC_VALUE_MAX];
    bool numeric;
    bool repaired;
    char repair[RC_REPAIR_MAX];   /* what --repair did, or why it did not */
} rc_diff;

/* Reasons (docs/stockctl.md): what A has and B lacks is missing, what B
 * has and A lacks extra. */
#define RC_REASON_MISSING_SKU "missing sku"
#define RC_REASON_EXTRA_SKU "extra sku"
#define RC_REASON_MISSING_LINE "missing line"
#define RC_REASON_EXTRA_LINE "extra line"
#define RC_REASON_LINE_QTY "different qty"
#define RC_REASON_LINE_SKU "different sku"
#define RC_REASON_LINE_ORDER "different order"
#define RC_REASON_LINE_REFUNDED "different refunded"   /* a line's total */
#define RC_REASON_MISSING_REFUND "missing refund"
#define RC_REASON_EXTRA_REFUND "extra refund"
#define RC_REASON_REFUND_QTY "different refund"        /* one refund's qty */
#define RC_REASON_DRIFT "counter drift"       /* A's counter vs B's */
#define RC_REASON_I2 "I2"                     /* a store vs its own flow */

/* One refund of B's, as kept while A's refunds of its line are compared. */
typedef struct rc_refund {
    char id[STOCK_ID_MAX + 1];
    int64_t qty;
    bool matched;                 /* A has it too */
} rc_refund;

typedef struct rc_run {
    const ctl_args *args;
    bool repair;
    stock_t *a, *b;               /* b NULL: A checked against itself */
    const char *uri_a, *uri_b;
    uint64_t skus, lines;         /* compared */
    uint64_t differences, repaired;
    bool repair_failed;           /* a repair op failed: exit 2 */
    bool failed;                  /* a store failed: exit 2, error says why */
    char error[STOCK_MESSAGE_MAX + 160];
    bool progress;                /* stderr is a terminal */
    int64_t progress_us;          /* when progress was last printed */
    bool json_first;              /* no difference printed yet (commas) */
    bool output_failed;
    /* Scratch, reused page after page: */
    stock_list_entry skus_page[RC_PAGE];
    stock_list_entry lines_page[RC_PAGE];
    stock_op sku_ops[RC_PAGE];      /* the other store's GETs of a SKU page */
    stock_op line_ops[RC_PAGE];     /* its LINEs of a page of lines */
    stock_list_entry refunds_page[RC_PAGE];
    rc_refund *b_refunds;           /* B's refunds of one line, by id */
    size_t b_refunds_count, b_refunds_size;
} rc_run;

/* reconcile.c */
void rc_set_number(char out[RC_VALUE_MAX], int64_t value);

/* reconcile_refunds.c. Compares the refunds of the line `line` (of sku):
 * A's, whose line says refunded a_refunded, with B's (b_refunded: B's
 * line's; with no B, A's refunds are checked against a_refunded alone, I2).
 * Each difference is reported, and repaired under --repair. */
void rc_compare_refunds(rc_run *run, const char *sku, const char *line, int64_t a_refunded,
                        int64_t b_refunded);
void rc_refunds_free(rc_run *run);

/* reconcile_report.c */
void rc_report_begin(rc_run *run);
void rc_report(rc_run *run, const rc_diff *diff);
/* Prints the summary; returns the exit code. */
int rc_report_end(rc_run *run);
void rc_progress(rc_run *run, bool last);
/* Records a store's failure (exit 2); false, for `return rc_fail(...)`. */
bool rc_fail(rc_run *run, const char *what, stock_code code, const char *message);

/* reconcile_repair.c. Each writes on B, says what it did in diff->repair
 * and sets diff->repaired; a failed op sets run->repair_failed. */
/* Creates the SKU on B at level 0 (its stock comes with the SKU's final
 * adjustment). */
void rc_repair_sku(rc_run *run, rc_diff *diff);
/* Deducts the line on B with A's line id, SKU and qty (its refunds follow,
 * compared one by one). */
void rc_repair_line(rc_run *run, rc_diff *diff, const stock_line_info *a_line);
/* Refunds on B as A's refund diff->refund of diff->line, qty. */
void rc_repair_refund(rc_run *run, rc_diff *diff, int64_t qty);
/* Adjusts B's SKU so that its available equals a_available. */
void rc_repair_available(rc_run *run, rc_diff *diff, int64_t a_available,
                         const stock_sku_info *b_info);

/* The entry point (commands.c's table). */
int ctl_reconcile(const ctl_args *args);

#endif /* STOCKCTL_RECONCILE_H */
