/*
 * record_types.h -- the type byte that starts every log record, shared by
 * the files that encode records (record.c, hold.c). Part of the on-disk
 * format: never renumber, only add.
 */
#ifndef STOCK_CORE_RECORD_TYPES_H
#define STOCK_CORE_RECORD_TYPES_H

enum {
    RECORD_SET = 1,
    RECORD_ADD = 2,
    RECORD_DEDUCT = 3,
    RECORD_ORDER = 4,
    RECORD_REFUND = 5,
    /* Holds (hold.c has their layout); a log written before them has none. */
    RECORD_HOLD = 6,
    RECORD_CONFIRM = 7,
    RECORD_RELEASE = 8,
    RECORD_CONFIRM_ORDER = 9,
    RECORD_EXPIRE = 10,
};

#endif /* STOCK_CORE_RECORD_TYPES_H */
