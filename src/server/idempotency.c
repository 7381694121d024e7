/*
 * idempotency.c -- Idempotency-Key values and the keys in flight (see
 * idempotency.h). The table chains the entries that live in the requests'
 * calls, so it holds no memory of its own and needs no bound beyond the
 * requests a server already bounds (CONN_PENDING_MAX per connection).
 */
#include <assert.h>
#include <string.h>

#include "server/idempotency.h"

#define IDEMPOTENCY_BUCKETS 4096   /* a power of 2 */

static idempotency_entry *buckets[IDEMPOTENCY_BUCKETS];

const char *idempotency_parse(const char *value, char *key, size_t size)
{
    assert(size > STOCK_ID_MAX);
    size_t len = 0;
    bool quoted = value[0] == '"';
    const char *at = value + (quoted ? 1 : 0);
    for (; *at != '\0' && !(quoted && *at == '"'); at++) {
        if (quoted && *at == '\\') {
            at++;
            if (*at != '"' && *at != '\\')
                return "Idempotency-Key: a '\\' must escape '\"' or '\\'";
        }
        if (len == STOCK_ID_MAX)
            return "Idempotency-Key must be 1-64 printable ASCII characters without spaces";
        key[len++] = *at;
    }
    if (quoted && (*at != '"' || at[1] != '\0'))
        return "Idempotency-Key: a string must end with its one closing '\"'";
    key[len] = '\0';
    if (!stock_id_valid((stock_id){key, (uint32_t)len}))
        return "Idempotency-Key must be 1-64 printable ASCII characters without spaces";
    return NULL;
}

static idempotency_entry **bucket_of(uint16_t route, const char *key)
{
    uint32_t hash = 2166136261u ^ route;   /* FNV-1a */
    for (const char *at = key; *at != '\0'; at++)
        hash = (hash ^ (unsigned char)*at) * 16777619u;
    return &buckets[hash & (IDEMPOTENCY_BUCKETS - 1)];
}

bool idempotency_in_flight(uint16_t route, const char *key)
{
    for (idempotency_entry *entry = *bucket_of(route, key); entry != NULL; entry = entry->next)
        if (entry->route == route && strcmp(entry->key, key) == 0)
            return true;
    return false;
}

void idempotency_begin(idempotency_entry *entry, uint16_t route, const char *key)
{
    assert(!entry->registered && strlen(key) <= STOCK_ID_MAX);
    idempotency_entry **bucket = bucket_of(route, key);
    entry->route = route;
    strcpy(entry->key, key);
    entry->registered = true;
    entry->next = *bucket;
    *bucket = entry;
}

void idempotency_end(idempotency_entry *entry)
{
    if (!entry->registered)
        return;
    idempotency_entry **link = bucket_of(entry->route, entry->key);
    while (*link != entry) {
        assert(*link != NULL);
        link = &(*link)->next;
    }
    *link = entry->next;
    entry->registered = false;
}
