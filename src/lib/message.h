/*
 * message.h -- filling a message buffer: the `char *message, size_t size`
 * pair that the backends' open and the library's recovery and parsing calls
 * take to say what failed. The caller may pass NULL or a size of 0 when it
 * does not want the sentence, so every write goes through message_set,
 * which checks that once.
 */
#ifndef STOCK_MESSAGE_H
#define STOCK_MESSAGE_H

#include <stddef.h>

/* printf into message, truncated to size and NUL-terminated; nothing when
 * message is NULL or size is 0. */
void message_set(char *message, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* STOCK_MESSAGE_H */
