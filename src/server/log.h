/*
 * log.h -- stockd's log lines: one line per event on stderr, each starting
 * with a UTC timestamp and a level, so that an operator (or journald) can
 * follow what the server did: start, store opened, listening, shutdown.
 */
#ifndef STOCK_SERVER_LOG_H
#define STOCK_SERVER_LOG_H

/* Writes "2026-11-25T02:40:00.123Z INFO <message>\n" to stderr. printf-style
 * format; never fails (a lost log line is not worth stopping for). */
void log_info(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* As log_info with level WARN: something went wrong with one client or
 * request, the server goes on. */
void log_warn(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* As log_info with level ERROR: the server cannot go on as asked. */
void log_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

#endif /* STOCK_SERVER_LOG_H */
