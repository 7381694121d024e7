/* buf.c -- the growable byte buffer (see buf.h). */
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

#define BUF_CAPACITY_MIN 256

bool buf_reserve(buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len)
        return false;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap < BUF_CAPACITY_MIN ? BUF_CAPACITY_MIN : b->cap;
    while (cap < need)
        cap *= 2;
    uint8_t *data = realloc(b->data, cap);
    if (data == NULL)
        return false;
    b->data = data;
    b->cap = cap;
    return true;
}

bool buf_append(buf *b, const void *data, size_t len)
{
    if (!buf_reserve(b, len))
        return false;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return true;
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
