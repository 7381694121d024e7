/*
 * etag.h -- the ETag of a SKU and the If-Match of a PUT (docs/http-api.md,
 * "Compare-and-set").
 *
 * A SKU's ETag is its four totals, "available.adjusted.deducted.refunded"
 * (e.g. "7.10.5.2"). Every operation on a SKU moves at least one of them,
 * and deducted and refunded only ever grow, so the tag changes with every
 * deduction, order line and refund, and with every set or adjustment that
 * moves the level; two states with equal totals have equal GET bodies, so
 * the tag is a strong validator of what GET returns.
 *
 * If-Match on PUT is SETSTOCK ... EXPECT <the tag's level>: the store
 * compares the level atomically with the set. The totals are not compared
 * (no backend can compare them atomically with the set), and need not be: a
 * set overwrites the level only, so when the level is still the one the
 * client saw, the set does exactly what it would have done on that state.
 */
#ifndef STOCK_SERVER_ETAG_H
#define STOCK_SERVER_ETAG_H

#include <stdbool.h>
#include <stddef.h>

#include "stock.h"

/* Room for "ETag: \"a.b.c.d\"\r\n" with four 20-digit numbers. */
#define ETAG_HEADER_MAX 128

/* Writes the header line "ETag: \"...\"\r\n" for info into header
 * (ETAG_HEADER_MAX bytes). */
void etag_header(const stock_sku_info *info, char header[ETAG_HEADER_MAX]);

/* Reads an If-Match value: one strong ETag of this server's form. Returns
 * NULL and sets *level to the tag's level, or a sentence saying why the
 * value is refused ("*", a list, a weak or foreign tag). */
const char *etag_if_match_level(const char *value, int64_t *level);

#endif /* STOCK_SERVER_ETAG_H */
