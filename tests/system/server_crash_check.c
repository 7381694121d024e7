/*
 * server_crash_check.c -- the verdict of the crash test
 * (tests/suites/46-server-crash.sh): reads the logs of server_crash_client
 * and checks, against the restarted server, that
 *   - every acknowledged deduction is there with its SKU and qty, and its
 *     retry answers REPLAY with the original available (I4, I6, I7);
 *   - every acknowledged refund is counted on its line and its retry
 *     answers REPLAY with the original available (I5, I6);
 *   - every order's lines are all there or none is (I3), and an
 *     acknowledged order's lines carry the acknowledged available;
 *   - per SKU, deducted and refunded equal the sums over the lines that
 *     exist, adjusted is the level it was set to, and available =
 *     adjusted - deducted + refunded >= 0 (I1, I2);
 *   - a line never has more refunded than deducted (I5).
 *
 *   server_crash_check URI SKU_COUNT LEVEL LOG...
 *
 * Exits 0 when all hold, 1 with one line per violation otherwise.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stock.h"

#define CHECK_ID_MAX 48
#define CHECK_BATCH 512
#define CHECK_SKUS_MAX 64
#define CHECK_REPORT_MAX 20    /* violations printed before "and more" */

typedef struct entry {
    char kind;                 /* 'D' deduction, 'O' order line, 'R' refund */
    bool acked;
    char id[CHECK_ID_MAX];     /* line id (D) or refund id (R) */
    char target[CHECK_ID_MAX]; /* sku (D) or line (R) */
    int64_t qty;
    int64_t available;         /* acked: the acknowledged available */
    int64_t line_refunded;     /* D: the server's refunded total */
    int64_t refunds_tried;     /* D: refunds tried on the line (qty 1 each) */
    int64_t refunds_acked;     /* D: refunds acknowledged on the line */
} entry;

typedef struct entries {
    entry *items;
    size_t count, cap;
} entries;

static size_t violations;

static void violation(const char *format, ...)
    __attribute__((format(printf, 1, 2)));

static void violation(const char *format, ...)
{
    if (++violations > CHECK_REPORT_MAX)
        return;
    va_list args;
    va_start(args, format);
    fputs("VIOLATION: ", stdout);
    vprintf(format, args);
    fputc('\n', stdout);
    va_end(args);
}

static entry *entries_push(entries *list)
{
    if (list->count == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 4096;
        list->items = realloc(list->items, list->cap * sizeof *list->items);
        if (list->items == NULL) {
            fprintf(stderr, "server_crash_check: out of memory\n");
            exit(1);
        }
    }
    entry *e = &list->items[list->count++];
    memset(e, 0, sizeof *e);
    return e;
}

/* Reads one client log; "try" lines give entries, "ack" lines mark them. */
static bool read_log(const char *path, entries *list)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        fprintf(stderr, "server_crash_check: cannot read %s\n", path);
        return false;
    }
    char line[256], word[8], kind, id[CHECK_ID_MAX], target[CHECK_ID_MAX];
    int64_t qty = 0, available = 0;
    while (fgets(line, sizeof line, file) != NULL) {
        int fields = sscanf(line, "%7s %c %47s %47s %" SCNd64 " %" SCNd64,
                            word, &kind, id, target, &qty, &available);
        bool ack = strcmp(word, "ack") == 0;
        if (fields < 5 || (ack && fields != 6) ||
            (kind != 'D' && kind != 'O' && kind != 'R')) {
            fprintf(stderr, "server_crash_check: %s: bad line '%s'\n", path, line);
            fclose(file);
            return false;
        }
        entry *e = entries_push(list);
        *e = (entry){.kind = kind, .acked = ack, .qty = qty, .available = available};
        snprintf(e->id, sizeof e->id, "%s", id);
        snprintf(e->target, sizeof e->target, "%s", target);
    }
    fclose(file);
    return true;
}

/* Sorts by kind and id, acked first, and folds the duplicates (a retried
 * op is tried more than once) into one entry each. */
static int entry_compare(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind - y->kind;
    int order = strcmp(x->id, y->id);
    return order != 0 ? order : (int)y->acked - (int)x->acked;
}

static void entries_fold(entries *list)
{
    qsort(list->items, list->count, sizeof *list->items, entry_compare);
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        entry *e = &list->items[i];
        if (kept > 0 && list->items[kept - 1].kind == e->kind &&
            strcmp(list->items[kept - 1].id, e->id) == 0) {
            if (e->acked)
                violation("%s acknowledged twice", e->id);
            continue;
        }
        list->items[kept++] = *e;
    }
    list->count = kept;
}

static entry *find_line(entries *list, const char *id)
{
    entry key = {.kind = 'D', .acked = true};
    snprintf(key.id, sizeof key.id, "%s", id);
    for (size_t low = 0, high = list->count; low < high;) {
        size_t middle = low + (high - low) / 2;
        entry *e = &list->items[middle];
        int order = e->kind != 'D' ? e->kind - 'D' : strcmp(e->id, id);
        if (order == 0)
            return e;
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return NULL;
}

/* Runs ops in batches; false if the store would not answer. */
static bool execute_all(stock_t *store, stock_op *ops, size_t count)
{
    for (size_t done = 0; done < count; done += CHECK_BATCH) {
        size_t size = count - done < CHECK_BATCH ? count - done : CHECK_BATCH;
        if (stock_execute(store, ops + done, size) != STOCK_OK)
            return false;
    }
    for (size_t i = 0; i < count; i++)
        if (ops[i].code == STOCK_UNAVAILABLE || ops[i].code == STOCK_IO) {
            fprintf(stderr, "server_crash_check: store failed: %s\n", ops[i].message);
            return false;
        }
    return true;
}

/* Looks every tried line (deductions, then order lines: they sort first)
 * up: acked ones must be there as acknowledged, the others may or may not
 * be (the crash decided). */
static bool check_lines(stock_t *store, entries *list, stock_op *ops)
{
    size_t count = 0;
    for (size_t i = 0; i < list->count; i++)
        if (list->items[i].kind != 'R')
            ops[count++] = (stock_op){.type = STOCK_OP_LINE,
                                      .line = stock_id_from_cstr(list->items[i].id)};
    if (!execute_all(store, ops, count))
        return false;
    for (size_t i = 0; i < count; i++) {
        entry *e = &list->items[i];
        assert(e->kind != 'R');   /* sorted: D, then O, then R */
        const stock_line_info *info = &ops[i].info.line_info;
        e->line_refunded = -1;   /* not on the server */
        if (ops[i].code == STOCK_NOT_FOUND) {
            if (e->acked)
                violation("acknowledged deduction %s is lost", e->id);
            continue;
        }
        if (ops[i].code != STOCK_OK || strcmp(info->sku, e->target) != 0 ||
            info->qty != e->qty)
            violation("line %s: %s sku=%s qty=%" PRId64 ", tried sku=%s qty=%" PRId64,
                      e->id, stock_code_name(ops[i].code), info->sku, info->qty,
                      e->target, e->qty);
        else if (e->acked && info->available_after != e->available)
            violation("line %s: available_after %" PRId64 ", acknowledged %" PRId64,
                      e->id, info->available_after, e->available);
        e->line_refunded = info->refunded;
    }
    return true;
}

/* Refunds: counted on their line, never more than tried, never more than
 * the line's qty (I5). */
static void check_refunds(entries *list)
{
    for (size_t i = 0; i < list->count; i++) {
        entry *e = &list->items[i];
        if (e->kind != 'R')
            continue;
        entry *line = find_line(list, e->target);
        if (line == NULL) {
            violation("refund %s names line %s that was never tried", e->id, e->target);
            continue;
        }
        line->refunds_tried += e->qty;
        line->refunds_acked += e->acked ? e->qty : 0;
    }
    for (size_t i = 0; i < list->count; i++) {
        entry *e = &list->items[i];
        if (e->kind == 'R' || e->line_refunded < 0)
            continue;
        if (e->line_refunded < e->refunds_acked || e->line_refunded > e->refunds_tried ||
            e->line_refunded > e->qty)
            violation("line %s: refunded %" PRId64 ", acknowledged %" PRId64
                      ", tried %" PRId64 ", qty %" PRId64, e->id, e->line_refunded,
                      e->refunds_acked, e->refunds_tried, e->qty);
    }
}

/* I3: the lines of one order (ids ORDER-1, ORDER-2, ..., adjacent once
 * sorted) are all on the server or none is. */
static void check_orders(const entries *list)
{
    size_t orders = 0;
    for (size_t i = 0; i < list->count;) {
        const entry *first = &list->items[i];
        if (first->kind != 'O') {
            i++;
            continue;
        }
        const char *dash = strrchr(first->id, '-');
        assert(dash != NULL);   /* order line ids are ORDER-N */
        size_t prefix = (size_t)(dash - first->id) + 1;
        size_t j = i + 1;
        while (j < list->count && list->items[j].kind == 'O' &&
               strncmp(list->items[j].id, first->id, prefix) == 0) {
            if ((list->items[j].line_refunded < 0) != (first->line_refunded < 0))
                violation("order %.*s is partly applied: %s %s, %s %s", (int)prefix - 1,
                          first->id, first->id, first->line_refunded < 0 ? "absent" : "present",
                          list->items[j].id,
                          list->items[j].line_refunded < 0 ? "absent" : "present");
            j++;
        }
        orders++;
        i = j;
    }
    printf("checked %zu orders for all-or-none\n", orders);
}

/* Every acknowledged op, retried with the same id and parameters, must
 * answer REPLAY with the acknowledged available (I4, I5). */
static bool check_replays(stock_t *store, entries *list, stock_op *ops)
{
    size_t count = 0;
    entry **acked = calloc(list->count + 1, sizeof *acked);
    if (acked == NULL)
        return false;
    for (size_t i = 0; i < list->count; i++) {
        entry *e = &list->items[i];
        if (!e->acked || e->kind == 'O')
            continue;   /* an order line alone cannot be retried */
        bool deduct = e->kind == 'D';
        ops[count] = (stock_op){.type = deduct ? STOCK_OP_DEDUCT : STOCK_OP_REFUND,
                                .id = stock_id_from_cstr(e->id), .amount = e->qty};
        if (deduct)
            ops[count].sku = stock_id_from_cstr(e->target);
        else
            ops[count].line = stock_id_from_cstr(e->target);
        acked[count++] = e;
    }
    bool answered = execute_all(store, ops, count);
    for (size_t i = 0; answered && i < count; i++)
        if (ops[i].code != STOCK_REPLAY || ops[i].available != acked[i]->available)
            violation("retry of %s: %s available=%" PRId64 " (%s), acknowledged %" PRId64,
                      acked[i]->id, stock_code_name(ops[i].code), ops[i].available,
                      ops[i].message, acked[i]->available);
    printf("replayed %zu acknowledged operations\n", count);
    free(acked);
    return answered;
}

/* Per SKU: totals agree with the lines, and I1, I2 hold. */
static bool check_skus(stock_t *store, entries *list, int sku_count, int64_t level)
{
    int64_t deducted[CHECK_SKUS_MAX] = {0}, refunded[CHECK_SKUS_MAX] = {0};
    for (size_t i = 0; i < list->count; i++) {
        entry *e = &list->items[i];
        if (e->kind == 'R' || e->line_refunded < 0)
            continue;
        int sku = atoi(e->target + 1);
        assert(sku >= 0 && sku < sku_count);
        deducted[sku] += e->qty;
        refunded[sku] += e->line_refunded;
    }
    for (int sku = 0; sku < sku_count; sku++) {
        char name[16];
        snprintf(name, sizeof name, "S%d", sku);
        stock_sku_info info;
        stock_code code = stock_get(store, name, &info, NULL);
        if (code != STOCK_OK) {
            violation("sku %s: %s", name, stock_code_name(code));
            continue;
        }
        printf("sku %s: available %" PRId64 " adjusted %" PRId64 " deducted %" PRId64
               " refunded %" PRId64 "\n", name, info.available, info.adjusted,
               info.deducted, info.refunded);
        if (info.available < 0 || info.adjusted != level ||
            info.deducted != deducted[sku] || info.refunded != refunded[sku] ||
            info.available != info.adjusted - info.deducted + info.refunded)
            violation("sku %s totals: lines say deducted %" PRId64 " refunded %" PRId64
                      ", set to %" PRId64, name, deducted[sku], refunded[sku], level);
    }
    return true;
}

int main(int argc, char **argv)
{
    int sku_count = argc > 3 ? atoi(argv[2]) : 0;
    int64_t level = argc > 3 ? strtoll(argv[3], NULL, 10) : 0;
    if (argc < 5 || sku_count < 1 || sku_count > CHECK_SKUS_MAX || level < 1) {
        fprintf(stderr, "usage: server_crash_check URI SKU_COUNT LEVEL LOG...\n");
        return 2;
    }
    entries list = {0};
    for (int i = 4; i < argc; i++)
        if (!read_log(argv[i], &list))
            return 1;
    entries_fold(&list);
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    stock_op *ops = calloc(list.count + 1, sizeof *ops);
    if (ops == NULL || stock_open(argv[1], NULL, &store, message) != STOCK_OK) {
        fprintf(stderr, "server_crash_check: cannot open %s: %s\n", argv[1],
                ops ? message : "out of memory");
        return 1;
    }
    bool answered = check_lines(store, &list, ops);
    if (answered) {
        check_refunds(&list);
        check_orders(&list);
        answered = check_skus(store, &list, sku_count, level) &&
                   check_replays(store, &list, ops);
    }
    size_t acked = 0;
    for (size_t i = 0; i < list.count; i++)
        acked += list.items[i].acked;
    printf("%zu operations tried, %zu acknowledged, %zu violations\n",
           list.count, acked, violations);
    stock_close(store);
    free(ops);
    free(list.items);
    return answered && violations == 0 ? 0 : 1;
}
