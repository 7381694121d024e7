/*
 * fuzz_outbox.c -- libFuzzer target for the readers of the redis store's
 * outbox entries (docs/redis.md, "The outbox"): the persister's
 * (outbox_entry_add, persist_outbox.c) and stock events' (rd_entry_move,
 * rd_lines_start/rd_lines_move, rd_entry_lost, redis_events.c), and under
 * both rd_lines_next, which cuts a 'lines' entry's field r into records.
 * The streams may live on a server shared with other data, and any client
 * of it may write an entry: whatever its fields hold, a reader must refuse
 * it or read it within its bytes, in a bounded number of steps.
 *
 * The input is one entry: a mode byte, then pieces split at '\n', the
 * entry's id and then its fields and values in turn (a piece is any bytes
 * but '\n'). Mode bit 0 makes the fields nil (an entry deleted while
 * pending), bits 1..7 pick how full the persister's cycle already is. The
 * whole input after the mode byte is also read as a field r on its own.
 * Checked: tokens are non-empty, without spaces and inside the text; a
 * record takes at least 16 bytes of r (8 tokens, 7 spaces, a separator);
 * the persister adds one record, or nr of a 'lines' entry, or none when it
 * refuses, never past its cycle; events hand out at most nr moves, each
 * with a SKU that fits and a sequence of the entry's slot.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/persist_internal.h"
#include "backend/redis.h"

#define FUZZ_PIECES 64            /* the id and up to 63 fields and values */
#define FUZZ_SLOT 4242            /* the entry's stream's slot, for events */
#define FUZZ_RECORD_MIN 16        /* bytes of r a record takes at least */

/* The entry of the input, over a copy of its bytes cut at each '\n'. */
typedef struct fuzz_entry {
    char *bytes;
    size_t size;
    redisReply pieces[FUZZ_PIECES];
    redisReply *fields_of[FUZZ_PIECES];
    redisReply fields;
    redisReply *parts[2];
    redisReply entry;
} fuzz_entry;

static void entry_build(fuzz_entry *e, const uint8_t *data, size_t size, bool nil_fields)
{
    e->bytes = malloc(size + 1);
    assert(e->bytes != NULL);
    memcpy(e->bytes, data, size);
    e->bytes[size] = '\0';
    e->size = size;
    size_t count = 0;
    for (char *at = e->bytes; count < FUZZ_PIECES;) {
        char *end = strchr(at, '\n');
        e->pieces[count] = (redisReply){.type = REDIS_REPLY_STRING, .str = at,
                                        .len = end != NULL ? (size_t)(end - at) : strlen(at)};
        count++;
        if (end == NULL)
            break;
        *end = '\0';
        at = end + 1;
    }
    for (size_t i = 1; i < count; i++)
        e->fields_of[i - 1] = &e->pieces[i];
    e->fields = nil_fields ? (redisReply){.type = REDIS_REPLY_NIL}
                           : (redisReply){.type = REDIS_REPLY_ARRAY, .elements = count - 1,
                                          .element = e->fields_of};
    e->parts[0] = &e->pieces[0];
    e->parts[1] = &e->fields;
    e->entry = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 2, .element = e->parts};
}

/* The value of the entry's first field name (the one the readers take),
 * or NULL. */
static const redisReply *field_value(const fuzz_entry *e, const char *name)
{
    for (size_t f = 0; e->fields.type == REDIS_REPLY_ARRAY && f + 1 < e->fields.elements; f += 2)
        if (strcmp(e->fields.element[f]->str, name) == 0)
            return e->fields.element[f + 1];
    return NULL;
}

static size_t field_size(const fuzz_entry *e, const char *name)
{
    const redisReply *value = field_value(e, name);
    return value != NULL ? value->len : 0;
}

static bool lines_kind(const fuzz_entry *e)
{
    const redisReply *kind = field_value(e, "k");
    return kind != NULL && strcmp(kind->str, RD_LINES_KIND) == 0;
}

static bool inside(const char *token, const char *bytes, size_t size)
{
    return token >= bytes && token < bytes + size;
}

/* rd_lines_next over the whole input as one field r. */
static void lines_check(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    assert(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    char *at = text;
    size_t records = 0;
    rd_lines_record record;
    while (rd_lines_next(&at, &record)) {
        records++;
        assert(records * FUZZ_RECORD_MIN <= size + 1);
        const char *tokens[] = {record.sku, record.line, record.qty, record.available,
                                record.adjusted, record.deducted, record.refunded,
                                record.before};
        for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
            assert(inside(tokens[i], text, size));
            size_t length = strlen(tokens[i]);
            assert(length > 0 && tokens[i] + length <= text + size);
            assert(strchr(tokens[i], ' ') == NULL);
        }
        assert(at >= text && at <= text + size);
    }
    assert(at >= text && at <= text + size);
    free(text);
}

/* The persister's reading of the entry into a cycle already holding
 * `held` records. */
static uint32_t persister_check(persister *p, const fuzz_entry *e, uint32_t held)
{
    p->record_count = held;
    persist_entry_added added = outbox_entry_add(p, 0, &e->entry);
    assert(p->record_count <= PERSIST_CYCLE_MAX);
    /* Room is refused only when the cycle is short of it. */
    assert(added != PERSIST_ENTRY_NO_ROOM || held > 0);
    if (added != PERSIST_ENTRY_ADDED) {
        assert(p->record_count == held);
        return 0;
    }
    uint32_t count = p->record_count - held;
    assert(count >= 1);
    if (count > 1)
        assert(count * FUZZ_RECORD_MIN <= field_size(e, "r") + 1);
    for (uint32_t i = held; i < p->record_count; i++) {
        const persist_record *r = &p->records[i];
        assert(r->stream == 0 && r->id == e->pieces[0].str);
        for (int k = 0; k < PERSIST_PARAMS; k++) {
            assert(r->params[k] != NULL);
            assert(strlen(r->params[k]) <= e->size + sizeof r->seq + PERSIST_KEY_MAX);
        }
    }
    return count;
}

static void change_check(const core_change *change, uint64_t seq)
{
    assert(memchr(change->sku, '\0', sizeof change->sku) != NULL);
    assert(seq % RD_SLOTS == FUZZ_SLOT);
}

/* Stock events' reading of the entry, after a last entry read of last;
 * for a 'lines' entry, how many records it handed out or skipped (their
 * SKU too long), else 0. */
static uint64_t events_check(const fuzz_entry *e, uint64_t last)
{
    uint64_t last_entry = last;
    uint64_t lost = rd_entry_lost(&e->entry, &last_entry);
    assert(last_entry >= last);
    assert(e->fields.type == REDIS_REPLY_ARRAY || lost == 1);
    uint64_t seq = 0;
    core_change change;
    if (!lines_kind(e)) {
        if (rd_entry_move(&e->entry, FUZZ_SLOT, &seq, &change))
            change_check(&change, seq);
        return 0;
    }
    rd_lines_cursor lines;
    rd_lines_start(&lines, &e->entry, 7);
    uint64_t nr = lines.left, steps = 0, moves = 0, records = 0;
    size_t r_size = field_size(e, "r");
    while (lines.left > 0) {
        steps++;
        assert(steps <= r_size / FUZZ_RECORD_MIN + 2);
        uint64_t left = lines.left;
        const char *text = lines.text;
        bool moved = rd_lines_move(&lines, FUZZ_SLOT, &seq, &change);
        records += lines.text != text && lines.left == left - 1;
        if (moved) {
            moves++;
            change_check(&change, seq);
            assert(lines.left == left - 1);
        }
    }
    assert(moves <= nr && moves * FUZZ_RECORD_MIN <= r_size + 1);
    return records;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static persister *p;
    if (p == NULL) {
        p = calloc(1, sizeof *p);
        assert(p != NULL);
        strcpy(p->streams[0].key, "P{outbox:1}");
        p->stream_count = 1;
    }
    if (size < 1)
        return -1;
    lines_check(data + 1, size - 1);

    fuzz_entry *e = malloc(sizeof *e);
    assert(e != NULL);
    entry_build(e, data + 1, size - 1, (data[0] & 1) != 0);
    uint32_t fill = data[0] >> 1;
    uint32_t persisted = persister_check(p, e, fill < 64 ? 0 : PERSIST_CYCLE_MAX - (fill - 64));
    free(e->bytes);
    entry_build(e, data + 1, size - 1, (data[0] & 1) != 0);
    uint64_t handed = events_check(e, fill);
    /* Both readers take a 'lines' entry whole or refuse it: stock events
     * never publish a record the persister will not apply. An entry that
     * only failed to fit the cycle, or has no time t (which only the
     * persister needs), or an id Redis would not make, is not compared. */
    if (lines_kind(e) && fill < 64 && field_value(e, "t") != NULL &&
        strchr(e->pieces[0].str, '-') != NULL)
        assert(handed == persisted);
    free(e->bytes);
    free(e);
    return 0;
}
