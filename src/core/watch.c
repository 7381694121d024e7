/*
 * watch.c -- the list of stock levels an apply or replay moved (core.h,
 * core_watch), from which the events of docs/events.md are derived. One
 * entry per SKU and call: the level before its first move and after its
 * last, so that a confirm (units back to available, then taken as a line)
 * or an order with two lines on one SKU reads as one change.
 */
#include <string.h>

#include "core/core_internal.h"

void core_watch(core *state, core_changes *changes)
{
    assert(state != NULL);
    state->watch = changes;
}

void core_watch_note(core *state, const core_sku *sku, int64_t available)
{
    core_changes *changes = state->watch;
    assert(changes != NULL && changes->count <= CORE_CHANGES_MAX);
    size_t len = (size_t)(sku->id & 0xFF);
    for (uint32_t i = 0; i < changes->count; i++) {
        core_change *change = &changes->items[i];
        if (strncmp(change->sku, sku->name, len) == 0 && change->sku[len] == '\0') {
            change->after = available;
            return;
        }
    }
    /* A record moves at most CORE_CHANGES_MAX SKUs (core.h): a full list is
     * a caller that did not empty it between records. */
    assert(changes->count < CORE_CHANGES_MAX);
    core_change *change = &changes->items[changes->count++];
    memcpy(change->sku, sku->name, len);
    change->sku[len] = '\0';
    change->before = sku->available;
    change->after = available;
}
