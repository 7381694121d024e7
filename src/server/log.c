/*
 * log.c -- timestamped log lines on stderr (see log.h). Each line is built
 * in one buffer and written with one call so lines never interleave.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/log.h"

#define LOG_LINE_MAX 1024

static void log_line(const char *level, const char *format, va_list args)
{
    assert(level != NULL && format != NULL);
    char line[LOG_LINE_MAX];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    size_t len = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &utc);
    len += (size_t)snprintf(line + len, sizeof line - len, ".%03ldZ %s ",
                            now.tv_nsec / 1000000, level);
    int body = vsnprintf(line + len, sizeof line - len - 1, format, args);
    if (body > 0)
        len += (size_t)body < sizeof line - len - 1 ? (size_t)body : sizeof line - len - 2;
    line[len++] = '\n';
    assert(len <= sizeof line);
    ssize_t written = write(STDERR_FILENO, line, len);
    (void)written;   /* nowhere to report a failed log write */
}

void log_info(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_line("INFO", format, args);
    va_end(args);
}

void log_warn(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_line("WARN", format, args);
    va_end(args);
}

void log_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_line("ERROR", format, args);
    va_end(args);
}

/* log_line takes its arguments as a va_list only. */
static void log_line_of(const char *level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_line(level, format, args);
    va_end(args);
}

void log_library(void *user, stock_log_level level, const char *message)
{
    (void)user;
    assert(message != NULL);
    static const char *const words[] = {
        [STOCK_LOG_ERROR] = "ERROR", [STOCK_LOG_WARNING] = "WARN",
        [STOCK_LOG_NOTICE] = "INFO", [STOCK_LOG_DEBUG] = "DEBUG",
    };
    assert((unsigned)level < sizeof words / sizeof words[0]);
    log_line_of(words[level], "libstock: %s", message);
}
