/*
 * list.c -- stock_list (include/stock.h, "listing"): pages in the order of
 * creation that miss and repeat nothing, the lines of a SKU and of an
 * order, each entry as stock_get / stock_line say it, and the errors. A
 * backend that cannot list must say so: postgres, sharded and redis answer
 * UNSUPPORTED.
 */
#include <stdio.h>

#include "conformance.h"

#define LIST_LINES 25
#define LIST_PAGE 10
#define LIST_PAGES_MAX 100000   /* a store of other runs' SKUs stays finite */

/* False (after checking the code and message, and saying so) on a backend
 * that cannot list; those documented so are postgres, sharded and redis. */
static bool lists(void)
{
    static const char *const cannot[] = {"postgres", "sharded", "redis"};
    stock_list_entry entry;
    uint32_t count = 0;
    char message[STOCK_MESSAGE_MAX];
    stock_code code = stock_list(conf_store, STOCK_LIST_SKUS, NULL, NULL, &entry, 1, &count, message);
    const char *name = stock_backend_name(conf_store);
    bool listed = true;
    for (size_t i = 0; i < sizeof cannot / sizeof cannot[0]; i++)
        listed = listed && strcmp(name, cannot[i]) != 0;
    if (listed) {
        assert_code(code, STOCK_OK, message);
        return true;
    }
    char want[STOCK_MESSAGE_MAX];
    snprintf(want, sizeof want, "the %s backend cannot list", name);
    assert_code(code, STOCK_UNSUPPORTED, message);
    assert_string_equal(message, want);
    assert_int_equal(count, 0);
    printf("conformance: listings are not supported here (UNSUPPORTED: %s), as documented\n", message);
    return false;
}

static void lines_of_a_sku_come_in_order_page_by_page(void **state)
{
    (void)state;
    if (!lists())
        return;
    char sku[CONF_ID_SIZE], other[CONF_ID_SIZE], ids[LIST_LINES][CONF_ID_SIZE];
    snprintf(sku, sizeof sku, "%s", conf_id("sku"));
    snprintf(other, sizeof other, "%s", conf_id("sku"));
    assert_code(stock_set(conf_store, sku, 1000, NULL, NULL, NULL), STOCK_OK, "");
    assert_code(stock_set(conf_store, other, 1000, NULL, NULL, NULL), STOCK_OK, "");
    for (int i = 0; i < LIST_LINES; i++) {
        snprintf(ids[i], sizeof ids[i], "%s", conf_id("line"));
        assert_code(stock_deduct(conf_store, ids[i], sku, i + 1, NULL, NULL), STOCK_OK, "");
        assert_code(stock_deduct(conf_store, conf_id("line"), other, 1, NULL, NULL), STOCK_OK, "");
    }
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
            assert_string_equal(page[i].id, ids[seen]);
            stock_line_info info;
            assert_code(stock_line(conf_store, ids[seen], &info, NULL), STOCK_OK, "");
            const stock_line_info *listed = &page[i].info.line_info;
            assert_string_equal(listed->sku, sku);
            assert_string_equal(listed->order_id, "");
            assert_i64(listed->qty, info.qty);
            assert_i64(listed->refunded, info.refunded);
            assert_i64(listed->time_us, info.time_us);
            assert_i64(listed->available_after, info.available_after);
            assert_i64(info.qty, seen + 1);
        }
        if (count > 0)
            after = ids[seen - 1];
    }
    assert_int_equal(seen, LIST_LINES);   /* pages of 10, 10, 5 */
}

static void lines_of_an_order_come_in_its_order(void **state)
{
    (void)state;
    if (!lists())
        return;
    const char *sku = conf_id("sku");
    assert_code(stock_set(conf_store, sku, 10, NULL, NULL, NULL), STOCK_OK, "");
    const char *order = conf_id("order");
    stock_order_line lines[3];
    for (int i = 0; i < 3; i++)
        lines[i] = (stock_order_line){stock_id_from_cstr(conf_id("line")), stock_id_from_cstr(sku), i + 1, 0};
    assert_code(stock_order(conf_store, order, lines, 3, NULL, NULL), STOCK_OK, "");
    stock_list_entry page[STOCK_LIST_MAX];   /* the largest page a caller may ask */
    uint32_t count = 0;
    assert_code(stock_list(conf_store, STOCK_LIST_ORDER_LINES, order, NULL, page, STOCK_LIST_MAX,
                           &count, NULL), STOCK_OK, "");
    assert_int_equal(count, 3);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(page[i].id, lines[i].line_id.ptr, lines[i].line_id.len);
        assert_string_equal(page[i].info.line_info.order_id, order);
        assert_i64(page[i].info.line_info.qty, i + 1);
    }
    assert_code(stock_list(conf_store, STOCK_LIST_ORDER_LINES, order, page[0].id, page, 2, &count,
                           NULL), STOCK_OK, "");
    assert_int_equal(count, 2);
    assert_memory_equal(page[0].id, lines[1].line_id.ptr, lines[1].line_id.len);
}

static void skus_come_in_order_with_their_totals(void **state)
{
    (void)state;
    if (!lists())
        return;
    char ids[3][CONF_ID_SIZE];
    for (int i = 0; i < 3; i++) {
        snprintf(ids[i], sizeof ids[i], "%s", conf_id("sku"));
        assert_code(stock_set(conf_store, ids[i], 5 + i, NULL, NULL, NULL), STOCK_OK, "");
    }
    /* Other runs may create SKUs meanwhile: ours come in order among them. */
    stock_list_entry page[LIST_PAGE];
    char after[CONF_ID_SIZE];
    snprintf(after, sizeof after, "%s", ids[0]);
    int found = 1;
    uint32_t count = LIST_PAGE;
    for (int pages = 0; count == LIST_PAGE && pages < LIST_PAGES_MAX; pages++) {
        assert_code(stock_list(conf_store, STOCK_LIST_SKUS, NULL, after, page, LIST_PAGE, &count,
                               NULL), STOCK_OK, "");
        for (uint32_t i = 0; i < count; i++) {
            if (found < 3 && strcmp(page[i].id, ids[found]) == 0) {
                assert_i64(page[i].info.sku_info.available, 5 + found);
                assert_i64(page[i].info.sku_info.adjusted, 5 + found);
                found++;
            }
            assert_string_not_equal(page[i].id, ids[0]);   /* after is excluded */
        }
        if (count > 0)
            snprintf(after, sizeof after, "%s", page[count - 1].id);
    }
    assert_int_equal(found, 3);
}

static void listing_errors_name_what_is_wrong(void **state)
{
    (void)state;
    if (!lists())
        return;
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
        cmocka_unit_test(skus_come_in_order_with_their_totals),
        cmocka_unit_test(listing_errors_name_what_is_wrong),
    };
    return cmocka_run_group_tests_name("list", tests, NULL, NULL);
}
