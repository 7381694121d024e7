/*
 * resp.c -- the RESP request parser and reply writers (see resp.h).
 *
 * The parser restarts from the first byte of a request on every call. That
 * keeps it stateless, hence easy to fuzz, and costs little: bulk contents are
 * skipped by length, so a retry rescans only the short header lines.
 */
#include <assert.h>
#include <string.h>

#include "proto/resp.h"

/* Where a header line ("*3\r\n", "$6\r\n") was read into. */
typedef enum line_result { LINE_OK, LINE_SHORT, LINE_BAD } line_result;

#define RESP_SHORT_HEADER_BYTES 5   /* "$DD\r\n": bytes the fast path looks at */

/* The usual header, "<type>D\r\n" or "<type>DD\r\n" (a request's argument
 * count, an id's length), read without the general loop. True if it was
 * one; false leaves the line to read_long_header. */
static inline bool read_short_header(const char *data, size_t len,
                                     size_t *pos, int64_t *value)
{
    if (len - *pos < RESP_SHORT_HEADER_BYTES)
        return false;
    const unsigned char *p = (const unsigned char *)data + *pos + 1;
    unsigned first = p[0] - (unsigned)'0', second = p[1] - (unsigned)'0';
    if (first > 9)
        return false;
    if (p[1] == '\r' && p[2] == '\n') {
        *value = first;
        *pos += 4;
        return true;
    }
    if (second > 9 || p[2] != '\r' || p[3] != '\n')
        return false;
    *value = first * 10 + second;
    *pos += 5;
    return true;
}

/* Reads "<prefix>N\r\n" at data[*pos]: N is -1 or 0..INT64_MAX, written
 * as at most RESP_INT64_DIGITS_MAX digits. Digits are read in place (this
 * runs twice per argument on the hot path), failing at the first byte that
 * cannot belong to such a line. */
static line_result read_long_header(const char *data, size_t len, size_t *pos,
                                    int64_t *value)
{
    size_t i = *pos + 1;   /* after the type byte */
    size_t end = len - *pos < RESP_HEADER_MAX ? len : *pos + RESP_HEADER_MAX;
    bool negative = i < end && data[i] == '-';
    i += negative;
    size_t first = i;
    uint64_t magnitude = 0;
    for (; i < end && data[i] >= '0' && data[i] <= '9'; i++) {
        if (i - first == RESP_INT64_DIGITS_MAX)
            return LINE_BAD;
        magnitude = magnitude * 10 + (uint64_t)(data[i] - '0');   /* < 10^19 */
    }
    if (i == end)
        return end == len ? LINE_SHORT : LINE_BAD;
    if (data[i] != '\r' || i == first)
        return LINE_BAD;
    if (i + 1 == len)
        return LINE_SHORT;
    if (data[i + 1] != '\n' || magnitude > (uint64_t)INT64_MAX || (negative && magnitude != 1))
        return LINE_BAD;
    *value = negative ? -1 : (int64_t)magnitude;
    *pos = i + 2;
    assert(*pos <= len);
    return LINE_OK;
}

/* Reads a header line: the usual short one inline, any other through the
 * general loop. */
static inline line_result read_header(const char *data, size_t len, size_t *pos,
                                      int64_t *value)
{
    return read_short_header(data, len, pos, value)
        ? LINE_OK : read_long_header(data, len, pos, value);
}

static resp_status fail(const char **error, const char *text)
{
    *error = text;
    return RESP_ERROR;
}

/* Reads one "$N\r\n<N bytes>\r\n" at data[*pos] into *arg. */
static resp_status read_bulk(const char *data, size_t len, size_t bulk_max,
                             size_t *pos, resp_arg *arg, const char **error)
{
    if (*pos >= len)
        return RESP_INCOMPLETE;
    if (data[*pos] != '$')
        return fail(error, "Protocol error: expected '$' before an argument");
    int64_t size = 0;
    line_result line = read_header(data, len, pos, &size);
    if (line == LINE_SHORT)
        return RESP_INCOMPLETE;
    if (line == LINE_BAD || size < 0)
        return fail(error, "Protocol error: invalid bulk length");
    if ((uint64_t)size > bulk_max)
        return fail(error, "Protocol error: invalid bulk length (over the request size limit)");
    if (len - *pos < (size_t)size + 2)
        return RESP_INCOMPLETE;
    if (data[*pos + (size_t)size] != '\r' || data[*pos + (size_t)size + 1] != '\n')
        return fail(error, "Protocol error: bulk string not ended by CRLF");
    arg->ptr = data + *pos;
    arg->len = (uint32_t)size;
    *pos += (size_t)size + 2;
    return RESP_DONE;
}

/* Parses a "*N\r\n" array of bulk strings starting at data[0]. */
static resp_status parse_array(const char *data, size_t len, size_t bulk_max,
                               resp_request *request, size_t *consumed,
                               const char **error)
{
    assert(len > 0 && data[0] == '*');
    size_t pos = 0;
    int64_t count = 0;
    line_result line = read_header(data, len, &pos, &count);
    if (line == LINE_SHORT)
        return RESP_INCOMPLETE;
    if (line == LINE_BAD)
        return fail(error, "Protocol error: invalid multibulk length");
    if (count > RESP_ARGS_MAX)
        return fail(error, "Protocol error: too many arguments (the limit is 512)");
    request->argc = 0;
    for (int64_t i = 0; i < count; i++) {
        resp_status status = read_bulk(data, len, bulk_max, &pos,
                                       &request->argv[i], error);
        if (status != RESP_DONE)
            return status;
    }
    request->argc = count > 0 ? (uint32_t)count : 0;
    *consumed = pos;
    assert(pos <= len);
    return RESP_DONE;
}

/* Splits one inline line (no CR/LF in it) into words. */
static resp_status split_inline(const char *line, size_t len,
                                resp_request *request, const char **error)
{
    request->argc = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
            i++;
        if (request->argc == RESP_ARGS_MAX)
            return fail(error, "Protocol error: too many arguments (the limit is 512)");
        request->argv[request->argc].ptr = line + start;
        request->argv[request->argc].len = (uint32_t)(i - start);
        request->argc++;
    }
    return RESP_DONE;
}

/* Parses one inline command line starting at data[0]. */
static resp_status parse_inline(const char *data, size_t len,
                                resp_request *request, size_t *consumed,
                                const char **error)
{
    size_t window = len < RESP_INLINE_MAX ? len : RESP_INLINE_MAX;
    const char *newline = memchr(data, '\n', window);
    if (newline == NULL) {
        if (len >= RESP_INLINE_MAX)
            return fail(error, "Protocol error: too big inline request (the limit is 65536 bytes)");
        return RESP_INCOMPLETE;
    }
    size_t line_len = (size_t)(newline - data);
    *consumed = line_len + 1;
    if (line_len > 0 && data[line_len - 1] == '\r')
        line_len--;
    if (memchr(data, '\r', line_len) != NULL)
        return fail(error, "Protocol error: stray CR in an inline request");
    return split_inline(data, line_len, request, error);
}

resp_status resp_parse(const char *data, size_t len, size_t bulk_max,
                       resp_request *request, size_t *consumed,
                       const char **error)
{
    assert(data != NULL || len == 0);
    assert(request != NULL && consumed != NULL && error != NULL);
    size_t skipped = 0;
    *consumed = 0;
    /* Skip empty commands; the loop ends because each turn consumes. */
    while (skipped < len) {
        size_t used = 0;
        const char *at = data + skipped;
        size_t left = len - skipped;
        resp_status status = at[0] == '*'
            ? parse_array(at, left, bulk_max, request, &used, error)
            : parse_inline(at, left, request, &used, error);
        if (status != RESP_DONE) {
            *consumed = skipped;
            return status;
        }
        assert(used > 0 && used <= left);
        skipped += used;
        if (request->argc > 0) {
            *consumed = skipped;
            return RESP_DONE;
        }
    }
    *consumed = skipped;
    return RESP_INCOMPLETE;
}

bool resp_arg_int64(resp_arg arg, int64_t *value)
{
    const char *p = arg.ptr;
    uint32_t len = arg.len;
    bool negative = len > 0 && p[0] == '-';
    if (negative)
        p++, len--;
    if (len == 0 || len > RESP_INT64_DIGITS_MAX)
        return false;
    uint64_t magnitude = 0;
    for (uint32_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        magnitude = magnitude * 10 + (uint64_t)(p[i] - '0');  /* < 10^19: no wrap */
    }
    if (magnitude > (uint64_t)INT64_MAX)
        return false;
    *value = negative ? -(int64_t)magnitude : (int64_t)magnitude;
    return true;
}

bool resp_arg_is(resp_arg arg, const char *word)
{
    size_t len = strlen(word);
    return arg.len == len && strncasecmp(arg.ptr, word, len) == 0;
}

/* ------------------------------------------------------------- writers */

/* "00" to "99": number lines are written two digits per step, from the
 * right, straight into the buffer (a reply holds one per deduction). */
static const char digit_pairs[200] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859"
    "6061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal digits of magnitude (1 for 0). */
static size_t digit_count(uint64_t magnitude)
{
    size_t n = 1;
    for (; magnitude >= 10000; magnitude /= 10000)
        n += 4;
    return n + (magnitude >= 10) + (magnitude >= 100) + (magnitude >= 1000);
}

/* Appends "<type><value>\r\n". */
static bool write_number_line(buf *out, char type, int64_t value)
{
    uint64_t magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    size_t digits = digit_count(magnitude);
    size_t need = digits + (value < 0) + 3;
    if (out->cap - out->len < need && !buf_reserve(out, need))
        return false;
    uint8_t *p = out->data + out->len;
    *p++ = (uint8_t)type;
    if (value < 0)
        *p++ = '-';
    uint8_t *end = p + digits;
    for (; magnitude >= 100; magnitude /= 100) {
        end -= 2;
        memcpy(end, &digit_pairs[2 * (magnitude % 100)], 2);
    }
    if (magnitude >= 10)
        memcpy(end - 2, &digit_pairs[2 * magnitude], 2);
    else
        end[-1] = (uint8_t)('0' + magnitude);
    p += digits;
    *p++ = '\r';
    *p++ = '\n';
    out->len = (size_t)(p - out->data);
    assert(out->len <= out->cap && out->data[out->len - 3] >= '0');
    return true;
}

/* Appends "<type><text>\r\n" with CR and LF in text turned into spaces. */
static bool write_text_line(buf *out, char type, const char *first,
                            const char *second)
{
    size_t a = strlen(first), b = second != NULL ? strlen(second) : 0;
    if (!buf_reserve(out, a + b + 4))
        return false;
    uint8_t *p = out->data + out->len;
    *p++ = (uint8_t)type;
    for (size_t i = 0; i < a + b; i++) {
        char c = i < a ? first[i] : second[i - a];
        *p++ = (uint8_t)(c == '\r' || c == '\n' ? ' ' : c);
    }
    *p++ = '\r';
    *p++ = '\n';
    out->len = (size_t)(p - out->data);
    return true;
}

bool resp_write_simple(buf *out, const char *text)
{
    return write_text_line(out, '+', text, NULL);
}

bool resp_write_error(buf *out, const char *word, const char *message)
{
    assert(word != NULL && word[0] != '\0');
    if (message == NULL || message[0] == '\0')
        return write_text_line(out, '-', word, NULL);
    size_t len = strlen(word);
    char head[64];
    assert(len + 2 <= sizeof head);
    memcpy(head, word, len);
    head[len] = ' ';
    head[len + 1] = '\0';
    return write_text_line(out, '-', head, message);
}

bool resp_write_integer(buf *out, int64_t value)
{
    return write_number_line(out, ':', value);
}

bool resp_write_bulk(buf *out, const char *data, size_t len)
{
    assert(data != NULL || len == 0);
    if (!write_number_line(out, '$', (int64_t)len) || !buf_reserve(out, len + 2))
        return false;
    buf_append(out, data, len);
    buf_append(out, "\r\n", 2);
    return true;
}

bool resp_write_null(buf *out, int proto)
{
    assert(proto == 2 || proto == 3);
    return proto == 3 ? buf_append(out, "_\r\n", 3) : buf_append(out, "$-1\r\n", 5);
}

bool resp_write_array(buf *out, size_t count)
{
    return write_number_line(out, '*', (int64_t)count);
}

bool resp_write_map(buf *out, size_t count, int proto)
{
    assert(proto == 2 || proto == 3);
    if (proto == 3)
        return write_number_line(out, '%', (int64_t)count);
    return write_number_line(out, '*', (int64_t)count * 2);
}
