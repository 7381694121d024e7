/*
 * id.h -- comparing identifiers. A stock_id is a pointer and a length, not
 * a C string, so equality is the same length and the same bytes; the core's
 * tables, the order checks of stock_validate and the postgres plan's line
 * table all ask it this one way.
 */
#ifndef STOCK_ID_H
#define STOCK_ID_H

#include <stdbool.h>
#include <string.h>

#include "stock.h"

static inline bool id_equal(stock_id a, stock_id b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

#endif /* STOCK_ID_H */
