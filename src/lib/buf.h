/*
 * buf.h -- a growable byte buffer, the one the modules share for log
 * records, snapshots and protocol output.
 */
#ifndef STOCK_BUF_H
#define STOCK_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *data;   /* owned; NULL while cap == 0 */
    size_t len;
    size_t cap;
} buf;

/* Makes room for at least extra more bytes. False on out of memory (the
 * buffer is unchanged). */
bool buf_reserve(buf *b, size_t extra);

/* Appends len bytes. False on out of memory (the buffer is unchanged). */
bool buf_append(buf *b, const void *data, size_t len);

/* Empties the buffer, keeping its memory. */
static inline void buf_clear(buf *b) { b->len = 0; }

/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_free(buf *b);

#endif /* STOCK_BUF_H */
