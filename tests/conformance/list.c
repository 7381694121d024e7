/*
 * list.c -- stock_list (include/stock.h, "listing"): pages in the store's
 * order that miss and repeat nothing, the lines of a SKU and of an order,
 * the refunds of a line, each entry as stock_get / stock_line say it (a
 * refund as it was made), and the errors. The store's
 * order is the order of creation (embedded, and a stockd:// server over
 * it), or byte order of the ids (postgres, sharded, redis: an order's
 * lines still in the order's line order, except sharded's, by line id).
 */
#include <stdio.h>
#include <stdlib.h>

#include "conformance.h"

#define LIST_LINES 25
#define LIST_PAGE 10
#define LIST_PAGES_MAX 100000   /* a store of other runs' SKUs stays finite */

/* One expected entry: its id and the number the test gave it. */
typedef struct expected {
    char id[CONF_ID_SIZE];
    int value;
} expected;

/* Whether the store lists in byte order of the ids (else in creation
 * order). */
static bool by_id(void)
{
    static const char *const sorted[] = {"postgres", "sharded", "redis"};
    const char *name = stock_backend_name(conf_store);
    for (size_t i = 0; i < sizeof sorted / sizeof sorted[0]; i++)
        if (strcmp(name, sorted[i]) == 0)
            return true;
    return false;
}

static int expected_cmp(const void *left, const void *right)
{
    return strcmp(((const expected *)left)->id, ((const expected *)right)->id);
}

/* Puts want[0..count) in the order the store lists them. */
static void store_order(expected *want, size_t count, bool sorted)
{
    if (sorted)
        qsort(want, count, sizeof want[0], expected_cmp);
}

static void lines_of_a_sku_come_in_order_page_by_page(void **state)
{
    (void)state;
    char sku[CONF_ID_SIZE], other[CONF_ID_SIZE];
    expected ids[LIST_LINES];
    snprintf(sku, sizeof sku, "%s", conf_id("sku"));
    snprintf(other, sizeof other, "%s", conf_id("sku"));
    assert_code(stock_set(conf_store, sku, 1000, NULL, NULL, NULL), STOCK_OK, "");
    assert_code(stock_set(conf_store, other, 1000, NULL, NULL, NULL), STOCK_OK, "");
    for (int i = 0; i < LIST_LINES; i++) {
        snprintf(ids[i].id, sizeof ids[i].id, "%s", conf_id("line"));
        ids[i].value = i + 1;
        assert_code(stock_deduct(conf_store, ids[i].id, sku, i + 1, NULL, NULL), STOCK_OK, "");
        assert_code(stock_deduct(conf_store, conf_id("line"), other, 1, NULL, NULL), STOCK_OK, "");
    }
    store_order(ids, LIST_LINES, by_id());
    stock_list_entry page[LIST_PAGE];
    const char *after = NULL;
    int seen = 0;
    char message[STOCK_MESSAGE_MAX];
    for (uint32_t count = LIST_PAGE; count == LIST_PAGE;) {
        assert_code(stock_list(conf_store, STOCK_LIST_SKU_LINES, sku, after, page, LIST_PAGE,
                               &count, message), STOCK_OK, message);
        assert_string_equal(message, "");
        for (uint32_t i = 0; i < count; i++, seen++) {
            assert_true(seen < LIST_LINES);
            assert_string_equal(page[i].id, ids[seen].id);
            stock_line_info info;
            assert_code(stock_line(conf_store, ids[seen].id, &info, NULL), STOCK_OK, "");
            const stock_line_info *listed = &page[i].info.line_info;
            assert_string_equal(listed->sku, sku);
            assert_string_equal(listed->order_id, "");
            assert_i64(listed->qty, info.qty);
            assert_i64(listed->refunded, info.refunded);
            assert_i64(listed->time_us, info.time_us);
            assert_i64(listed->available_after, info.available_after);
            assert_i64(info.qty, ids[seen].value);
        }
        if (count > 0)
            after = ids[seen - 1].id;
    }
    assert_int_equal(seen, LIST_LINES);   /* pages of 10, 10, 5 */
}

static void lines_of_an_order_come_in_its_order(void **state)
{
    (void)state;
    const char *sku = conf_id("sku");
    assert_code(stock_set(conf_store, sku, 10, NULL, NULL, NULL), STOCK_OK, "");
    const char *order = conf_id("order");
    stock_order_line lines[3];
    expected want[3];
    for (int i = 0; i < 3; i++) {
        snprintf(want[i].id, sizeof want[i].id, "%s", conf_id("line"));
        want[i].value = i + 1;
        lines[i] = (stock_order_line){stock_id_from_cstr(want[i].id), stock_id_from_cstr(sku), i + 1, 0};
    }
    assert_code(stock_order(conf_store, order, lines, 3, NULL, NULL), STOCK_OK, "");
    store_order(want, 3, strcmp(stock_backend_name(conf_store), "sharded") == 0);
    stock_list_entry page[STOCK_LIST_MAX];   /* the largest page a caller may ask */
    uint32_t count = 0;
    assert_code(stock_list(conf_store, STOCK_LIST_ORDER_LINES, order, NULL, page, STOCK_LIST_MAX,
                           &count, NULL), STOCK_OK, "");
    assert_int_equal(count, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(page[i].id, want[i].id);
        assert_string_equal(page[i].info.line_info.order_id, order);
        assert_i64(page[i].info.line_info.qty, want[i].value);
    }
    assert_code(stock_list(conf_store, STOCK_LIST_ORDER_LINES, order, want[0].id, page, 2, &count,
                           NULL), STOCK_OK, "");
    assert_int_equal(count, 2);
    assert_string_equal(page[0].id, want[1].id);
}

#define LIST_REFUNDS 5

/* Refunds of one line in the store's order, two a page, none of another
 * line's; on the stores that list by id, after must be a refund of the
 * line (include/stock.h). */
static void refunds_of_a_line_come_in_order_page_by_page(void **state)
{
    (void)state;
    char sku[CONF_ID_SIZE], line[CONF_ID_SIZE], other[CONF_ID_SIZE];
    snprintf(sku, sizeof sku, "%s", conf_id("sku"));
    snprintf(line, sizeof line, "%s", conf_id("line"));
    snprintf(other, sizeof other, "%s", conf_id("line"));
    assert_code(stock_set(conf_store, sku, 100, NULL, NULL, NULL), STOCK_OK, "");
    assert_code(stock_deduct(conf_store, line, sku, 20, NULL, NULL), STOCK_OK, "");
    assert_code(stock_deduct(conf_store, other, sku, 20, NULL, NULL), STOCK_OK, "");
    expected want[LIST_REFUNDS];
    int64_t available_after[LIST_REFUNDS + 1];
    for (int i = 0; i < LIST_REFUNDS; i++) {
        snprintf(want[i].id, sizeof want[i].id, "%s", conf_id("refund"));
        want[i].value = i;
        assert_code(stock_refund(conf_store, want[i].id, line, i + 1, &available_after[i], NULL),
                    STOCK_OK, "");
        assert_code(stock_refund(conf_store, conf_id("refund"), other, 1, NULL, NULL), STOCK_OK, "");
    }
    store_order(want, LIST_REFUNDS, by_id());
    stock_list_entry page[2];
    char message[STOCK_MESSAGE_MAX];
    const char *after = NULL;
    int seen = 0;
    for (uint32_t count = 2; count == 2;) {
        assert_code(stock_list(conf_store, STOCK_LIST_LINE_REFUNDS, line, after, page, 2, &count,
                               message), STOCK_OK, message);
        for (uint32_t i = 0; i < count; i++, seen++) {
            assert_true(seen < LIST_REFUNDS);
            const stock_refund_info *refund = &page[i].info.refund_info;
            int made = want[seen].value;
            assert_string_equal(page[i].id, want[seen].id);
            assert_string_equal(refund->line, line);
            assert_i64(refund->qty, made + 1);
            assert_i64(refund->available_after, available_after[made]);
        }
        if (count > 0)
            after = want[seen - 1].id;
    }
    assert_int_equal(seen, LIST_REFUNDS);   /* pages of 2, 2, 1 */
    uint32_t count = 7;
    char text[STOCK_MESSAGE_MAX];
    if (by_id()) {
        assert_code(stock_list(conf_store, STOCK_LIST_LINE_REFUNDS, other, want[0].id, page, 2,
                               &count, message), STOCK_NOT_FOUND, message);
        snprintf(text, sizeof text, "refund=%s", want[0].id);
        assert_string_equal(message, text);
    }
    const char *unknown = conf_id("refund");
    assert_code(stock_list(conf_store, STOCK_LIST_LINE_REFUNDS, line, unknown, page, 2, &count,
                           message), STOCK_NOT_FOUND, message);
    snprintf(text, sizeof text, "refund=%s", unknown);
    assert_string_equal(message, text);
    const char *missing = conf_id("line");
    assert_code(stock_list(conf_store, STOCK_LIST_LINE_REFUNDS, missing, NULL, page, 2, &count,
                           message), STOCK_NOT_FOUND, message);
    snprintf(text, sizeof text, "line=%s", missing);
    assert_string_equal(message, text);
    assert_int_equal(count, 0);
    assert_code(stock_list(conf_store, STOCK_LIST_LINE_REFUNDS, NULL, NULL, page, 2, &count,
                           message), STOCK_INVALID, message);
    assert_string_equal(message, "line id must be 1-64 printable ASCII characters without spaces");
}

static void skus_come_in_order_with_their_totals(void **state)
{
    (void)state;
    expected ids[3];
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i].id, sizeof ids[i].id, "%s", conf_id("sku"));
        ids[i].value = 5 + i;
        assert_code(stock_set(conf_store, ids[i].id, 5 + i, NULL, NULL, NULL), STOCK_OK, "");
    }
    store_order(ids, 3, by_id());
    /* Other runs may create SKUs meanwhile: ours come in order among them. */
    stock_list_entry page[LIST_PAGE];
    char after[CONF_ID_SIZE];
    snprintf(after, sizeof after, "%s", ids[0].id);
    int found = 1;
    uint32_t count = LIST_PAGE;
    for (int pages = 0; count == LIST_PAGE && pages < LIST_PAGES_MAX; pages++) {
        assert_code(stock_list(conf_store, STOCK_LIST_SKUS, NULL, after, page, LIST_PAGE, &count,
                               NULL), STOCK_OK, "");
        for (uint32_t i = 0; i < count; i++) {
            if (found < 3 && strcmp(page[i].id, ids[found].id) == 0) {
                assert_i64(page[i].info.sku_info.available, ids[found].value);
                assert_i64(page[i].info.sku_info.adjusted, ids[found].value);
                found++;
            }
            assert_string_not_equal(page[i].id, ids[0].id);   /* after is excluded */
        }
        if (count > 0)
            snprintf(after, sizeof after, "%s", page[count - 1].id);
    }
    assert_int_equal(found, 3);
}

static void listing_errors_name_what_is_wrong(void **state)
{
    (void)state;
    stock_list_entry page[2];
    uint32_t count = 7;
    char message[STOCK_MESSAGE_MAX];
    const char *missing = conf_id("sku");
    assert_code(stock_list(conf_store, STOCK_LIST_SKU_LINES, missing, NULL, page, 2, &count, message),
                STOCK_NOT_FOUND, message);
    assert_int_equal(count, 0);
    char want[STOCK_MESSAGE_MAX];
    snprintf(want, sizeof want, "sku=%s", missing);
    assert_string_equal(message, want);
    const char *order = conf_id("order");
    assert_code(stock_list(conf_store, STOCK_LIST_ORDER_LINES, order, NULL, page, 2, &count, message),
                STOCK_NOT_FOUND, message);
    snprintf(want, sizeof want, "order=%s", order);
    assert_string_equal(message, want);
    const char *line = conf_id("line");
    assert_code(stock_list(conf_store, STOCK_LIST_SKUS, NULL, line, page, 2, &count, message),
                STOCK_NOT_FOUND, message);
    snprintf(want, sizeof want, "sku=%s", line);
    assert_string_equal(message, want);
    assert_code(stock_list(conf_store, STOCK_LIST_SKUS, NULL, NULL, page, 0, &count, message),
                STOCK_INVALID, message);
    assert_string_equal(message, "limit must be an integer in 1..1000");
    assert_code(stock_list(conf_store, STOCK_LIST_SKUS, NULL, NULL, page, STOCK_LIST_MAX + 1, &count,
                           message), STOCK_INVALID, message);
    assert_code(stock_list(conf_store, STOCK_LIST_SKU_LINES, NULL, NULL, page, 2, &count, message),
                STOCK_INVALID, message);
    assert_string_equal(message, "sku must be 1-64 printable ASCII characters without spaces");
    assert_code(stock_list(conf_store, STOCK_LIST_SKUS, "x", NULL, page, 2, &count, message),
                STOCK_INVALID, message);
    assert_code(stock_list(conf_store, (stock_list_kind)99, NULL, NULL, page, 2, &count, message),
                STOCK_INVALID, message);
}

int conf_run_list(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_of_a_sku_come_in_order_page_by_page),
        cmocka_unit_test(lines_of_an_order_come_in_its_order),
        cmocka_unit_test(refunds_of_a_line_come_in_order_page_by_page),
        cmocka_unit_test(skus_come_in_order_with_their_totals),
        cmocka_unit_test(listing_errors_name_what_is_wrong),
    };
    return cmocka_run_group_tests_name("list", tests, NULL, NULL);
}
