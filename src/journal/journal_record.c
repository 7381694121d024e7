/*
 * journal_record.c -- how a record and a file header look on disk: framing
 * into the writer's buffer, parsing at recovery, and the small helpers
 * (names, messages) the other journal files share.
 */
#include <assert.h>
#include <stdarg.h>
#include <string.h>

#include "journal/journal_internal.h"

bool journal_frame_begin(buf *out, size_t *start)
{
    assert(out != NULL && start != NULL);
    if (!buf_reserve(out, JOURNAL_RECORD_HEADER_BYTES))
        return false;
    *start = out->len;
    out->len += JOURNAL_RECORD_HEADER_BYTES;
    return true;
}

void journal_frame_end(buf *out, size_t start)
{
    assert(start + JOURNAL_RECORD_HEADER_BYTES <= out->len);
    size_t payload_len = out->len - start - JOURNAL_RECORD_HEADER_BYTES;
    assert(payload_len >= 1 && payload_len <= JOURNAL_RECORD_MAX);
    uint8_t *header = out->data + start;
    const uint8_t *payload = header + JOURNAL_RECORD_HEADER_BYTES;
    /* Seeding with the length makes the checksum cover it too. */
    uint64_t check = XXH3_64bits_withSeed(payload, payload_len, payload_len);
    le_put_u32(header, (uint32_t)payload_len);
    le_put_u64(header + 4, check);
}

bool journal_all_zero(const uint8_t *data, size_t len)
{
    assert(data != NULL || len == 0);
    for (size_t i = 0; i < len; i++)
        if (data[i] != 0)
            return false;
    return true;
}

journal_parse_result journal_parse(const uint8_t *data, size_t len,
                                   const uint8_t **payload,
                                   size_t *payload_len, size_t *record_len,
                                   const char **why)
{
    assert(payload != NULL && payload_len != NULL && record_len != NULL);
    assert(why != NULL && (data != NULL || len == 0));
    /* Zero bytes are space never written (a preallocated or extended
     * file), not a record: the log ends there. */
    if (len == 0 || journal_all_zero(data, len < JOURNAL_RECORD_HEADER_BYTES
                                               ? len : JOURNAL_RECORD_HEADER_BYTES)) {
        if (journal_all_zero(data, len))
            return JOURNAL_PARSE_END;
        *why = "zero record header followed by data";
        return JOURNAL_PARSE_BAD;
    }
    if (len < JOURNAL_RECORD_HEADER_BYTES) {
        *why = "incomplete record header";
        return JOURNAL_PARSE_BAD;
    }
    uint32_t length = le_get_u32(data);
    if (length == 0 || length > JOURNAL_RECORD_MAX) {
        *why = "record length out of range";
        return JOURNAL_PARSE_BAD;
    }
    if (length > len - JOURNAL_RECORD_HEADER_BYTES) {
        *why = "record cut short";
        return JOURNAL_PARSE_BAD;
    }
    const uint8_t *body = data + JOURNAL_RECORD_HEADER_BYTES;
    if (XXH3_64bits_withSeed(body, length, length) != le_get_u64(data + 4)) {
        *why = "record checksum mismatch";
        return JOURNAL_PARSE_BAD;
    }
    *payload = body;
    *payload_len = length;
    *record_len = JOURNAL_RECORD_HEADER_BYTES + (size_t)length;
    return JOURNAL_PARSE_RECORD;
}

void journal_header_make(uint8_t header[JOURNAL_FILE_HEADER_BYTES],
                         const char *magic, uint64_t lsn)
{
    assert(strlen(magic) == 8);
    memcpy(header, magic, 8);
    le_put_u32(header + 8, JOURNAL_FORMAT_VERSION);
    le_put_u32(header + 12, JOURNAL_FILE_HEADER_BYTES);
    le_put_u64(header + 16, lsn);
    le_put_u64(header + 24, XXH3_64bits(header, 24));
}

journal_header_result journal_header_check(const uint8_t *data, size_t len,
                                           const char *magic, uint64_t lsn,
                                           uint32_t *version)
{
    assert(strlen(magic) == 8);
    *version = 0;
    if (data == NULL || len < JOURNAL_FILE_HEADER_BYTES || memcmp(data, magic, 8) != 0 ||
        le_get_u64(data + 24) != XXH3_64bits(data, 24))
        return JOURNAL_HEADER_BAD;
    *version = le_get_u32(data + 8);
    if (*version > JOURNAL_FORMAT_VERSION)
        return JOURNAL_HEADER_NEWER;
    bool ok = *version >= JOURNAL_FORMAT_VERSION_MIN &&
              le_get_u32(data + 12) == JOURNAL_FILE_HEADER_BYTES && le_get_u64(data + 16) == lsn;
    return ok ? JOURNAL_HEADER_OK : JOURNAL_HEADER_BAD;
}

void journal_newer_format(char *message, size_t size, const char *name, uint32_t version)
{
    message_set(message, size, "%s is in store format version %u, newer than this libstock "
                "%s reads (versions %u to %u): open the store with the libstock or stockd that "
                "wrote it, or a newer one; nothing was changed", name, version, stock_version(),
                JOURNAL_FORMAT_VERSION_MIN, JOURNAL_FORMAT_VERSION);
}

void journal_segment_name(char name[JOURNAL_NAME_MAX], uint64_t lsn)
{
    snprintf(name, JOURNAL_NAME_MAX, "log-%016llx.wal", (unsigned long long)lsn);
}

void journal_snapshot_name(char name[JOURNAL_NAME_MAX], uint64_t lsn)
{
    snprintf(name, JOURNAL_NAME_MAX, "snap-%016llx.snap",
             (unsigned long long)lsn);
}
