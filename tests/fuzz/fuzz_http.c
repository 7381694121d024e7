/*
 * fuzz_http.c -- libFuzzer target for the HTTP request reader: feeds the
 * input in pieces whose sizes come from the input's first byte, and checks
 * that the reader always makes progress, never buffers more than its limits
 * allow, and hands out whole requests one at a time.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "proto/http.h"

#define FUZZ_BODY_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t piece = (size_t)data[0] % 64 + 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1, offset = 0, fed = 0;
    http_reader reader;
    http_reader_init(&reader, FUZZ_BODY_MAX);
    bool stop = false;
    while (!stop && fed < len) {
        fed = fed + piece < len ? fed + piece : len;
        while (!stop && offset < fed) {
            size_t used = 0;
            http_read_status status = http_reader_feed(&reader, text + offset, fed - offset, &used);
            assert(used <= fed - offset);
            offset += used;
            if (status == HTTP_READ_ERROR) {
                assert(reader.error_status >= 400 && reader.error != NULL);
                stop = true;
            } else if (status == HTTP_READ_DONE) {
                assert(reader.request.body.len <= FUZZ_BODY_MAX);
                assert(reader.request.url.len <= HTTP_HEADER_BYTES_MAX);
                assert(strlen(reader.request.authorization) < HTTP_AUTHORIZATION_MAX);
                http_reader_next(&reader);
            } else {
                assert(offset == fed);
            }
        }
    }
    buf out = {0};
    http_write_response(&out, 200, "application/json", NULL, "{}", 2, true);
    assert(out.len > 0);
    buf_free(&out);
    http_reader_free(&reader);
    return 0;
}
