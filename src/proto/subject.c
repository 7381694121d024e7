/*
 * subject.c -- the rule of subject.h for NATS subject prefixes.
 */
#include <string.h>

#include "proto/subject.h"

bool subject_prefix_valid(const char *prefix, size_t max)
{
    size_t len = strlen(prefix);
    if (len == 0 || len > max || prefix[0] == '.' || prefix[len - 1] == '.' ||
        strstr(prefix, "..") != NULL)
        return false;
    for (const char *c = prefix; *c != '\0'; c++)
        if (*c <= ' ' || *c > '~' || *c == '*' || *c == '>')
            return false;
    return true;
}
