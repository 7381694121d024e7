/* message.c -- filling a caller's optional message buffer (see message.h). */
#include <stdarg.h>
#include <stdio.h>

#include "lib/message.h"

void message_set(char *message, size_t size, const char *format, ...)
{
    if (message == NULL || size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(message, size, format, args);
    va_end(args);
}
