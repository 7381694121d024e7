/* uri.c -- percent-decoding and query options (see uri.h). */
#include <assert.h>
#include <string.h>

#include "lib/uri.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

const char *uri_decode(const char *text, size_t len, char *out, size_t out_size,
                       size_t *decoded_len)
{
    assert(text != NULL || len == 0);
    assert(out != NULL && out_size >= 1);
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '%') {
            int high = i + 2 < len ? hex_value(text[i + 1]) : -1;
            int low = i + 2 < len ? hex_value(text[i + 2]) : -1;
            if (high < 0 || low < 0)
                return "a '%' must be followed by two hex digits";
            if (high == 0 && low == 0)
                return "%00 (a NUL byte) is not allowed";
            c = (char)(high * 16 + low);
            i += 2;
        }
        if (used + 1 < out_size)
            out[used] = c;
        used++;
    }
    out[used < out_size ? used : out_size - 1] = '\0';
    assert(used <= len);
    if (decoded_len != NULL)
        *decoded_len = used;
    return NULL;
}

bool uri_option_next(const char **cursor, uri_option *option)
{
    assert(cursor != NULL && *cursor != NULL && option != NULL);
    const char *query = *cursor;
    while (*query == '&')
        query++;
    if (*query == '\0') {
        *cursor = query;
        return false;
    }
    size_t length = strcspn(query, "&");
    const char *equals = memchr(query, '=', length);
    option->key = query;
    option->key_len = equals != NULL ? (size_t)(equals - query) : length;
    option->has_value = equals != NULL;
    option->value = equals != NULL ? equals + 1 : query + length;
    option->value_len = (size_t)(query + length - option->value);
    option->length = length;
    *cursor = query + length;
    assert(length > 0);
    return true;
}

bool uri_is(const char *text, size_t len, const char *word)
{
    assert(word != NULL);
    return strlen(word) == len && memcmp(text, word, len) == 0;
}

bool uri_parse_uint(const char *text, size_t len, uint64_t min, uint64_t max,
                    uint64_t *value)
{
    assert(min <= max && value != NULL);
    if (len == 0)
        return false;
    uint64_t parsed = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        unsigned digit = (unsigned)(text[i] - '0');
        if (parsed > (UINT64_MAX - digit) / 10)
            return false;
        parsed = parsed * 10 + digit;
    }
    if (parsed < min || parsed > max)
        return false;
    *value = parsed;
    return true;
}
