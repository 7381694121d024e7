/*
 * fuzz_uri.c -- libFuzzer target for the URI readers that take bytes from
 * configuration and the command line: the shared decoder and option walker
 * (lib/uri.h), and the embedded and postgres backends' URI parsers. Checks
 * that decoding never writes past its buffer, reports the whole length,
 * refuses "%00", and that the parsers either accept or say why.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/embedded_uri.h"
#include "backend/postgres.h"
#include "lib/uri.h"

#define FUZZ_TEXT_MAX 8192

static void fuzz_decode(const char *text, size_t len, size_t out_size)
{
    char *out = malloc(out_size);
    size_t decoded = 0;
    const char *why = uri_decode(text, len, out, out_size, &decoded);
    if (why == NULL) {
        assert(decoded <= len);
        assert(strlen(out) == (decoded < out_size ? decoded : out_size - 1));
        assert(memmem(text, len, "%00", 3) == NULL);
    } else {
        assert(why[0] != '\0');
    }
    free(out);
}

static void fuzz_options(const char *text)
{
    const char *cursor = text;
    uri_option option;
    size_t items = 0;
    while (uri_option_next(&cursor, &option)) {
        assert(option.length > 0 && option.key >= text);
        assert(option.key + option.length <= text + strlen(text));
        assert(option.has_value || option.value_len == 0);
        uint64_t value = 0;
        (void)uri_parse_uint(option.value, option.value_len, 0, UINT64_MAX, &value);
        assert(++items <= strlen(text));
    }
}

static void fuzz_parsers(const char *text)
{
    stock_config config = {0};
    char message[STOCK_MESSAGE_MAX];
    message[0] = '\0';
    embedded_uri parsed;
    if (embedded_uri_accepts(text) &&
        embedded_uri_parse(text, &config, &parsed, message, sizeof message) != STOCK_OK)
        assert(message[0] != '\0');
    pg_options options;
    message[0] = '\0';
    stock_code code = pg_options_parse(text, &config, &options, message, sizeof message);
    if (code == STOCK_OK)
        pg_options_free(&options);
    else
        assert(message[0] != '\0' || code == STOCK_NOMEM);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > FUZZ_TEXT_MAX)
        return 0;
    size_t out_size = (size_t)data[0] % 80 + 1;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    size_t len = strlen(text);
    fuzz_decode(text, len, out_size);
    fuzz_options(text);
    fuzz_parsers(text);
    free(text);
    return 0;
}
