/*
 * log.h -- the one way libstock tells its embedder something: a message
 * handed to the stock_config log hook (include/stock.h), never printed.
 * A backend copies the hook from the config at open and passes it down to
 * the modules that may have something to say (the journal).
 */
#ifndef STOCK_LIB_LOG_H
#define STOCK_LIB_LOG_H

#include "stock.h"

/* Longest message handed to the hook, NUL included; longer ones are cut. */
#define STOCK_LOG_MESSAGE_MAX 512

/* The embedder's hook and its pointer, as stock_config carries them. A
 * NULL fn means nobody listens: stock_log then formats nothing. */
typedef struct stock_log_hook {
    stock_log_fn fn;
    void *user;
} stock_log_hook;

/* The hook of config (config may be NULL: no hook). */
stock_log_hook stock_log_hook_of(const stock_config *config);

/* Formats a message (printf-style, no "libstock:" prefix, no newline) and
 * hands it to the hook on the calling thread; does nothing without one. */
void stock_log(const stock_log_hook *hook, stock_log_level level,
               const char *format, ...) __attribute__((format(printf, 3, 4)));

#endif /* STOCK_LIB_LOG_H */
