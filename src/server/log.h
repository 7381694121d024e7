/*
 * log.h -- stockd's log lines: one line per event on stderr, each starting
 * with a UTC timestamp and a level, so that an operator (or journald) can
 * follow what the server did: start, store opened, listening, shutdown.
 * The library's own messages join them through its log hook (log_library).
 */
#ifndef STOCK_SERVER_LOG_H
#define STOCK_SERVER_LOG_H

#include "stock.h"

/* Writes "2026-11-25T02:40:00.123Z INFO <message>\n" to stderr. printf-style
 * format; never fails (a lost log line is not worth stopping for). */
void log_info(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* As log_info with level WARN: something went wrong with one client or
 * request, the server goes on. */
void log_warn(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* As log_info with level ERROR: the server cannot go on as asked. */
void log_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* stockd's stock_config.log: writes a libstock message as a line of its own
 * ("... WARN libstock: <message>"), ERROR, WARN, INFO (a notice) or DEBUG as
 * the level says. Safe on any thread, as the hook must be; user is unused. */
void log_library(void *user, stock_log_level level, const char *message);

#endif /* STOCK_SERVER_LOG_H */
