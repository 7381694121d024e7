/*
 * fuzz_store.c -- libFuzzer target for what the embedded engine reads back
 * from its data folder at open: the framing of a log segment, the payload of
 * each record, and the body of a snapshot. Files on disk are untrusted input
 * (a damaged disk, a folder copied from elsewhere), so every byte pattern
 * must end in an open that succeeds or in a clear error, never a crash, a
 * leak or an assertion; and a refused open must leave the files as they were.
 *
 * The first byte of an input picks what the rest is:
 *   0  the body of segment 0 after a valid header, as is: the framing and
 *      the torn-tail rules see the mutations;
 *   1  the same, with each record's checksum made right first, so the
 *      mutations get past the framing into the record decoder and the state
 *      machine;
 *   2  the body of a snapshot covering 0 records, between a valid header and
 *      a valid trailer, so the mutations reach the snapshot decoder.
 * 41-fuzz seeds each mode with the files of a real store.
 */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "journal/journal_internal.h"
#include "stock.h"

enum fuzz_mode { MODE_SEGMENT = 0, MODE_RECORDS = 1, MODE_SNAPSHOT = 2, MODE_COUNT = 3 };

static char folder[64];

/* Makes the target's own data folder once, in memory if /dev/shm exists. */
static void folder_make(void)
{
    if (folder[0] != '\0')
        return;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(folder, sizeof folder, "%s/fuzz_store.XXXXXX", base);
    if (mkdtemp(folder) == NULL)
        abort();
}

/* Empties the folder: each input starts from nothing. */
static void folder_clear(void)
{
    DIR *dir = opendir(folder);
    assert(dir != NULL);
    int fd = dirfd(dir);
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.')
            unlinkat(fd, entry->d_name, 0);
    closedir(dir);
}

static void file_write(const char *name, const uint8_t *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    assert(fd >= 0);
    assert(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

/* True if the file holds exactly data[0..len). */
static bool file_holds(const char *name, const uint8_t *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return false;
    uint8_t *copy = malloc(len + 1);
    size_t got = fread(copy, 1, len + 1, file);
    fclose(file);
    bool same = got == len && memcmp(copy, data, len) == 0;
    free(copy);
    return same;
}

/* Rewrites each record header in body so that its length fits what is left
 * and its checksum holds. */
static void records_fix(uint8_t *body, size_t len)
{
    size_t at = 0;
    while (len - at > JOURNAL_RECORD_HEADER_BYTES) {
        size_t room = len - at - JOURNAL_RECORD_HEADER_BYTES;
        uint32_t length = le_get_u32(body + at);
        if (length == 0)
            length = 1;
        if (length > room)
            length = (uint32_t)room;
        if (length > JOURNAL_RECORD_MAX)
            length = JOURNAL_RECORD_MAX;
        const uint8_t *payload = body + at + JOURNAL_RECORD_HEADER_BYTES;
        le_put_u32(body + at, length);
        le_put_u64(body + at + 4, XXH3_64bits_withSeed(payload, length, length));
        at += JOURNAL_RECORD_HEADER_BYTES + length;
    }
}

/* Lays out the file the mode names; returns its size, *name its name. */
static size_t file_build(enum fuzz_mode mode, const uint8_t *data, size_t len,
                         uint8_t *file, char name[JOURNAL_NAME_MAX])
{
    uint8_t *body = file + JOURNAL_FILE_HEADER_BYTES;
    memcpy(body, data, len);
    if (mode != MODE_SNAPSHOT) {
        journal_segment_name(name, 0);
        journal_header_make(file, JOURNAL_SEGMENT_MAGIC, 0);
        if (mode == MODE_RECORDS)
            records_fix(body, len);
        return JOURNAL_FILE_HEADER_BYTES + len;
    }
    journal_snapshot_name(name, 0);
    journal_header_make(file, JOURNAL_SNAPSHOT_MAGIC, 0);
    uint8_t *trailer = body + len;
    le_put_u64(trailer, len);
    le_put_u64(trailer + 8, XXH3_64bits(file, JOURNAL_FILE_HEADER_BYTES + len));
    memcpy(trailer + 16, JOURNAL_TRAILER_MAGIC, 8);
    return JOURNAL_FILE_HEADER_BYTES + len + JOURNAL_SNAPSHOT_TRAILER_BYTES;
}

/* What recovery rebuilt must still satisfy I1 and I2's counters, whatever
 * the records said. */
static void check_skus(stock_t *store)
{
    static stock_list_entry page[256];
    char after[STOCK_ID_MAX + 1] = "", message[STOCK_MESSAGE_MAX];
    uint32_t count = 0;
    do {
        stock_code code = stock_list(store, STOCK_LIST_SKUS, NULL, after[0] ? after : NULL,
                                     page, 256, &count, message);
        assert(code == STOCK_OK);
        for (uint32_t i = 0; i < count; i++) {
            const stock_sku_info *sku = &page[i].info.sku_info;
            assert(sku->available >= 0 && sku->held >= 0);
            assert(sku->available + sku->held + sku->deducted - sku->refunded == sku->adjusted);
        }
        if (count > 0)
            memcpy(after, page[count - 1].id, sizeof after);
    } while (count == 256);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || data[0] >= MODE_COUNT)
        return -1;
    folder_make();
    folder_clear();
    size_t len = size - 1;
    uint8_t *file = malloc(JOURNAL_FILE_HEADER_BYTES + len + JOURNAL_SNAPSHOT_TRAILER_BYTES);
    char name[JOURNAL_NAME_MAX];
    size_t file_len = file_build((enum fuzz_mode)data[0], data + 1, len, file, name);
    file_write(name, file, file_len);

    char uri[96], message[STOCK_MESSAGE_MAX] = "";
    snprintf(uri, sizeof uri, "file:%s?durability=relaxed", folder);
    stock_t *store = NULL;
    stock_code code = stock_open(uri, NULL, &store, message);
    if (code == STOCK_OK) {
        check_skus(store);
        assert(stock_close(store) == STOCK_OK);
    } else {
        assert(store == NULL && message[0] != '\0');
        assert(code == STOCK_CORRUPT || code == STOCK_IO || code == STOCK_NOMEM);
        /* A refused open changes nothing on disk. */
        assert(file_holds(name, file, file_len));
    }
    free(file);
    return 0;
}
