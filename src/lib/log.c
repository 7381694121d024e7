/*
 * log.c -- formats a message and hands it to the embedder's hook (log.h).
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

#include "lib/log.h"

stock_log_hook stock_log_hook_of(const stock_config *config)
{
    stock_log_hook hook = {NULL, NULL};
    if (config != NULL && config->log != NULL) {
        hook.fn = config->log;
        hook.user = config->log_user;
    }
    return hook;
}

void stock_log(const stock_log_hook *hook, stock_log_level level,
               const char *format, ...)
{
    assert(hook != NULL && format != NULL);
    assert((unsigned)level <= STOCK_LOG_DEBUG);
    if (hook->fn == NULL)
        return;
    char message[STOCK_LOG_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    hook->fn(hook->user, level, message);
}
