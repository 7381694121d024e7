/*
 * format_version.c -- reads, or rewrites, the store format version in the
 * 32-byte header of a flow-log segment or snapshot (docs/engine.md,
 * "On-disk format"), for tests/suites/22-formats.sh:
 *
 *   format_version FILE          prints the version
 *   format_version FILE VERSION  writes VERSION and the header's checksum,
 *                                as a newer libstock would have
 *
 * Exits 0, or 1 with a message (not a header of ours, I/O error).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "lib/little_endian.h"

#define HEADER_BYTES 32
#define HASHED_BYTES 24

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: format_version FILE [VERSION]\n");
        return 1;
    }
    FILE *file = fopen(argv[1], argc == 3 ? "r+b" : "rb");
    uint8_t header[HEADER_BYTES];
    if (file == NULL || fread(header, 1, sizeof header, file) != sizeof header ||
        (memcmp(header, "stockwal", 8) != 0 && memcmp(header, "stocksnp", 8) != 0) ||
        le_get_u64(header + HASHED_BYTES) != XXH3_64bits(header, HASHED_BYTES)) {
        fprintf(stderr, "format_version: %s has no whole stockd file header\n", argv[1]);
        return 1;
    }
    if (argc == 2) {
        printf("%u\n", le_get_u32(header + 8));
        return fclose(file) == 0 ? 0 : 1;
    }
    le_put_u32(header + 8, (uint32_t)strtoul(argv[2], NULL, 10));
    le_put_u64(header + HASHED_BYTES, XXH3_64bits(header, HASHED_BYTES));
    bool ok = fseek(file, 0, SEEK_SET) == 0 && fwrite(header, 1, sizeof header, file) == sizeof header;
    ok = fclose(file) == 0 && ok;
    if (!ok)
        fprintf(stderr, "format_version: cannot rewrite %s\n", argv[1]);
    return ok ? 0 : 1;
}
