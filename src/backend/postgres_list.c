/*
 * postgres_list.c -- one page of a listing (stock_list) read from the
 * postgres schema with plain queries on an idle connection.
 *
 * A listing pages in byte order of the ids (COLLATE "C", so the same on
 * every database whatever its collation, and the same order the sharded
 * backend merges its members' pages in): SKUs by SKU id, a SKU's lines by
 * line id, an order's lines by their position in the order, a line's
 * refunds by refund id. Each page is one index range scan from the id
 * after `after` (the schema's version 3 and 4 indexes), so a page costs the same at the start and at the end of a
 * listing of millions, and nothing but the page is held.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres.h"
#include "lib/message.h"

/* The SKUs after $1 ("" from the first: ids are never empty), totals summed
 * over the SKU's bucket rows. */
static const char list_skus_sql[] =
    "SELECT sku_id COLLATE \"C\", sum(leaved_amount)::bigint, sum(adjusted)::bigint,"
    "       sum(deducted)::bigint, sum(refunded)::bigint, sum(held)::bigint"
    "  FROM inventory WHERE sku_id COLLATE \"C\" > $1"
    " GROUP BY 1 ORDER BY 1 LIMIT $2";

#define LINE_COLUMNS \
    "line_id, sku_id, order_id, qty, refunded, time_us, available_after"

static const char list_sku_lines_sql[] =
    "SELECT " LINE_COLUMNS " FROM inventory_flow"
    " WHERE sku_id = $1 AND line_id COLLATE \"C\" > $2"
    " ORDER BY line_id COLLATE \"C\" LIMIT $3";

/* $2: the position of the line after which to start, -1 from the first. */
static const char list_order_lines_sql[] =
    "SELECT " LINE_COLUMNS " FROM inventory_flow"
    " WHERE order_id = $1 AND order_id <> '' AND position > $2"
    " ORDER BY position LIMIT $3";

static const char list_line_refunds_sql[] =
    "SELECT refund_id, line_id, qty, available FROM inventory_refunds"
    " WHERE line_id = $1 AND refund_id COLLATE \"C\" > $2"
    " ORDER BY refund_id COLLATE \"C\" LIMIT $3";

static void id_text(stock_id id, char out[STOCK_ID_MAX + 1])
{
    assert(id.len <= STOCK_ID_MAX);
    memcpy(out, id.ptr != NULL ? id.ptr : "", id.len);
    out[id.len] = '\0';
}

/* Runs sql with params, waiting until deadline_us at most; NULL (message
 * set) when it failed. */
static PGresult *query(PGconn *conn, int64_t deadline_us, const char *sql, int count,
                       const char *const *params, char *message, size_t size)
{
    PGresult *result = pg_exec_until(conn, sql, count, params, deadline_us);
    if (PQresultStatus(result) == PGRES_TUPLES_OK)
        return result;
    const char *detail = pg_error_message(conn, result);
    message_set(message, size, "postgres: listing: %.*s", (int)strcspn(detail, "\n"), detail);
    PQclear(result);
    return NULL;
}

/* Whether sql (one parameter) finds a row: *found; false on a failed query. */
static bool exists(PGconn *conn, int64_t deadline_us, const char *sql, const char *param,
                   bool *found, char *message, size_t size)
{
    PGresult *result = query(conn, deadline_us, sql, 1, &param, message, size);
    if (result == NULL)
        return false;
    *found = PQntuples(result) > 0;
    PQclear(result);
    return true;
}

/* Checks that `of` and `after` name something, as every backend does:
 * NOT_FOUND "sku=X", "order=X", "line=X" otherwise (after must be a line of
 * that SKU or order). For an order listing, *position receives the
 * position of `after` in its order (-1 without after). */
static stock_code check_names(PGconn *conn, int64_t deadline_us, const list_request *request,
                              const char *of, const char *after, long *position,
                              char *message, size_t size)
{
    bool found = true;
    if (request->kind == STOCK_LIST_SKU_LINES &&
        !exists(conn, deadline_us, "SELECT 1 FROM inventory WHERE sku_id = $1 LIMIT 1", of, &found,
                message, size))
        return STOCK_IO;
    if (request->kind == STOCK_LIST_ORDER_LINES &&
        !exists(conn, deadline_us, "SELECT 1 FROM inventory_orders WHERE order_id = $1", of, &found,
                message, size))
        return STOCK_IO;
    if (request->kind == STOCK_LIST_LINE_REFUNDS &&
        !exists(conn, deadline_us, "SELECT 1 FROM inventory_flow WHERE line_id = $1", of, &found,
                message, size))
        return STOCK_IO;
    static const char *const of_names[] = {[STOCK_LIST_SKU_LINES] = "sku",
                                           [STOCK_LIST_ORDER_LINES] = "order",
                                           [STOCK_LIST_LINE_REFUNDS] = "line"};
    if (!found) {
        message_set(message, size, "%s=%s", of_names[request->kind], of);
        return STOCK_NOT_FOUND;
    }
    *position = -1;
    if (request->after.ptr == NULL)
        return STOCK_OK;
    static const char *const after_sql[] = {
        [STOCK_LIST_SKUS] = "SELECT 0 FROM inventory WHERE sku_id = $1 LIMIT 1",
        [STOCK_LIST_SKU_LINES] = "SELECT 0 FROM inventory_flow WHERE line_id = $1 AND sku_id = $2",
        [STOCK_LIST_ORDER_LINES] = "SELECT position FROM inventory_flow"
                                   " WHERE line_id = $1 AND order_id = $2",
        [STOCK_LIST_LINE_REFUNDS] = "SELECT 0 FROM inventory_refunds"
                                    " WHERE refund_id = $1 AND line_id = $2",
    };
    static const char *const after_names[] = {[STOCK_LIST_SKUS] = "sku",
                                              [STOCK_LIST_SKU_LINES] = "line",
                                              [STOCK_LIST_ORDER_LINES] = "line",
                                              [STOCK_LIST_LINE_REFUNDS] = "refund"};
    bool skus = request->kind == STOCK_LIST_SKUS;
    const char *params[2] = {after, of};
    PGresult *result = query(conn, deadline_us, after_sql[request->kind], skus ? 1 : 2, params,
                             message, size);
    if (result == NULL)
        return STOCK_IO;
    found = PQntuples(result) > 0;
    if (found)
        *position = atol(PQgetvalue(result, 0, 0));
    PQclear(result);
    if (!found) {
        message_set(message, size, "%s=%s", after_names[request->kind], after);
        return STOCK_NOT_FOUND;
    }
    return STOCK_OK;
}

static int64_t column(const PGresult *result, int row, int field)
{
    return strtoll(PQgetvalue(result, row, field), NULL, 10);
}

static void copy_id(char out[STOCK_ID_MAX + 1], const char *text)
{
    snprintf(out, STOCK_ID_MAX + 1, "%s", text);
}

static void read_entry(const PGresult *result, int row, stock_list_kind kind,
                       stock_list_entry *entry)
{
    copy_id(entry->id, PQgetvalue(result, row, 0));
    if (kind == STOCK_LIST_SKUS) {
        entry->info.sku_info = (stock_sku_info){
            .available = column(result, row, 1), .adjusted = column(result, row, 2),
            .deducted = column(result, row, 3), .refunded = column(result, row, 4),
            .held = column(result, row, 5)};
        return;
    }
    if (kind == STOCK_LIST_LINE_REFUNDS) {
        stock_refund_info *refund = &entry->info.refund_info;
        copy_id(refund->line, PQgetvalue(result, row, 1));
        refund->qty = column(result, row, 2);
        refund->available_after = column(result, row, 3);
        return;
    }
    stock_line_info *line = &entry->info.line_info;
    copy_id(line->sku, PQgetvalue(result, row, 1));
    copy_id(line->order_id, PQgetvalue(result, row, 2));
    line->qty = column(result, row, 3);
    line->refunded = column(result, row, 4);
    line->time_us = column(result, row, 5);
    line->available_after = column(result, row, 6);
}

stock_code pg_list_page(PGconn *conn, uint32_t timeout_ms, const list_request *request,
                        bool check, stock_list_entry *entries, uint32_t *count, char *message,
                        size_t size)
{
    assert(PQpipelineStatus(conn) == PQ_PIPELINE_OFF);
    char of[STOCK_ID_MAX + 1], after[STOCK_ID_MAX + 1], limit[16], from[24];
    id_text(request->of, of);
    id_text(request->after, after);
    snprintf(limit, sizeof limit, "%u", request->max);
    long position = -1;
    *count = 0;
    int64_t deadline_us = pg_deadline(timeout_ms);
    stock_code code = check ? check_names(conn, deadline_us, request, of, after, &position,
                                          message, size)
                            : STOCK_OK;
    if (code != STOCK_OK)
        return pg_lost_or(conn, code);
    snprintf(from, sizeof from, "%ld", position);
    PGresult *result = NULL;
    if (request->kind == STOCK_LIST_SKUS) {
        const char *params[] = {after, limit};
        result = query(conn, deadline_us, list_skus_sql, 2, params, message, size);
    } else if (request->kind == STOCK_LIST_SKU_LINES) {
        const char *params[] = {of, after, limit};
        result = query(conn, deadline_us, list_sku_lines_sql, 3, params, message, size);
    } else if (request->kind == STOCK_LIST_LINE_REFUNDS) {
        const char *params[] = {of, after, limit};
        result = query(conn, deadline_us, list_line_refunds_sql, 3, params, message, size);
    } else {
        const char *params[] = {of, from, limit};
        result = query(conn, deadline_us, list_order_lines_sql, 3, params, message, size);
    }
    if (result == NULL)
        return pg_lost_or(conn, STOCK_IO);
    int rows = PQntuples(result);
    assert(rows >= 0 && (uint32_t)rows <= request->max);
    for (int row = 0; row < rows; row++)
        read_entry(result, row, request->kind, &entries[row]);
    *count = (uint32_t)rows;
    PQclear(result);
    return STOCK_OK;
}
