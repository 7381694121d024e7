/*
 * etag.c -- SKU ETags and If-Match (see etag.h for the design).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "server/etag.h"

#define ETAG_TOTALS 4   /* available, adjusted, deducted, refunded */

void etag_header(const stock_sku_info *info, char header[ETAG_HEADER_MAX])
{
    int len = snprintf(header, ETAG_HEADER_MAX,
                       "ETag: \"%" PRId64 ".%" PRId64 ".%" PRId64 ".%" PRId64 "\"\r\n",
                       info->available, info->adjusted, info->deducted, info->refunded);
    assert(len > 0 && len < ETAG_HEADER_MAX);
}

/* Reads one decimal total at *at (totals are never negative: I2 makes
 * adjusted >= deducted - refunded >= 0); moves *at past it. */
static bool read_total(const char **at, int64_t *total)
{
    const char *digit = *at;
    int64_t value = 0;
    for (; *digit >= '0' && *digit <= '9'; digit++)
        if (__builtin_mul_overflow(value, 10, &value) ||
            __builtin_add_overflow(value, *digit - '0', &value))
            return false;
    if (digit == *at)
        return false;
    *at = digit;
    *total = value;
    return true;
}

const char *etag_if_match_level(const char *value, int64_t *level)
{
    static const char *const foreign =
        "If-Match must be one ETag of GET /v1/skus/{sku}, as \"available.adjusted.deducted.refunded\"";
    if (strcmp(value, "*") == 0)
        return "If-Match: * is not supported: send the ETag of GET /v1/skus/{sku}";
    if (value[0] != '"')
        return foreign;   /* W/"..." (weak: never matches) or no tag at all */
    const char *at = value + 1;
    int64_t totals[ETAG_TOTALS];
    for (int i = 0; i < ETAG_TOTALS; i++) {
        if (!read_total(&at, &totals[i]) || *at++ != (i + 1 < ETAG_TOTALS ? '.' : '"'))
            return foreign;
    }
    if (*at != '\0')
        return foreign;
    *level = totals[0];
    return NULL;
}
