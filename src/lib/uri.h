/*
 * uri.h -- reading store URIs and request paths: one percent-decoding rule
 * and one way to walk a query's options, for every backend's URI
 * (embedded_uri.c, remote.c, postgres_uri.c) and for stockd's HTTP paths
 * (src/server/routes.c).
 *
 * The decoding rule: "%XY", X and Y hex digits of either case, is the byte
 * 0xXY; a '%' not followed by two hex digits is refused, and so is "%00",
 * because a NUL byte would cut the value short wherever it is later used as
 * a C string (a password sent with AUTH, a conninfo handed to libpq, a path
 * segment compared with a route's). A '+' is a '+': these are URIs, not
 * HTML form data, where it would stand for a space. Every other byte stands
 * for itself.
 *
 * Keys, and values that are words or numbers (durability=sync,
 * timeout_ms=N), are compared as written; only values that may hold any
 * byte (a password, a URI) and path segments are decoded.
 */
#ifndef STOCK_URI_H
#define STOCK_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes text[0..len) into out, always NUL-terminated (out_size >= 1). A
 * result longer than out_size - 1 bytes is cut there, but the rest is still
 * checked; *decoded_len (may be NULL) receives the whole result's length,
 * so a caller sees the cut (*decoded_len >= out_size). The result is never
 * longer than len. Returns NULL, or a sentence (static storage) saying why
 * text breaks the rule above; out is then unspecified.
 */
const char *uri_decode(const char *text, size_t len, char *out, size_t out_size,
                       size_t *decoded_len);

/* One item of a query: "key=value", or "key" alone. Pointers borrow the
 * query's bytes; nothing is NUL-terminated. */
typedef struct uri_option {
    const char *key;       /* the item starts here */
    size_t key_len;
    const char *value;     /* after the first '='; empty without one */
    size_t value_len;
    bool has_value;        /* the item has a '=' */
    size_t length;         /* bytes of the whole item, from key */
} uri_option;

/*
 * Reads the next item of a query (the text after '?', items split at '&')
 * from *cursor, advancing it past the item. Empty items ("a=1&&b=2", a
 * trailing '&') are skipped. Returns false when no item is left.
 */
bool uri_option_next(const char **cursor, uri_option *option);

/* True if text[0..len) is word (a NUL-terminated string), byte for byte. */
bool uri_is(const char *text, size_t len, const char *word);

/*
 * Parses text[0..len) as a decimal integer in min..max: digits only (no
 * sign, no space), leading zeros allowed. False if it is empty, holds
 * anything else, or is out of range (overflow included); *value is then
 * untouched.
 */
bool uri_parse_uint(const char *text, size_t len, uint64_t min, uint64_t max,
                    uint64_t *value);

#endif /* STOCK_URI_H */
