/*
 * test_index.c -- unit tests of the entity index (src/core/store.c): a
 * table that fills grows a little at every insert instead of all at once,
 * into a table prepared before it is needed, and every entity stays findable, and every absent id absent, at each step
 * of the move.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/core_internal.h"

#define INDEX_TEST_ENTITIES 200000u
#define INDEX_TEST_CHECK_EVERY 4999u

static stock_id make_id(char *buf, const char *prefix, uint32_t n)
{
    int len = snprintf(buf, 32, "%s%u", prefix, n);
    return (stock_id){buf, (uint32_t)len};
}

static void add(core *state, uint32_t n)
{
    char buf[32];
    stock_id id = make_id(buf, "line-", n);
    assert_true(core_reserve_entities(state, &state->lines, &state->line_index, 1, id.len));
    assert_int_equal(core_entity_add(state, &state->lines, &state->line_index, core_hash(id), id), n);
}

static void assert_all_found(core *state, uint32_t count)
{
    char buf[32];
    for (uint32_t n = 0; n < count; n++) {
        stock_id id = make_id(buf, "line-", n);
        assert_int_equal(core_index_find(&state->line_index, &state->lines, &state->ids,
                                         core_hash(id), id), n);
        stock_id absent = make_id(buf, "none-", n);
        assert_int_equal(core_index_find(&state->line_index, &state->lines, &state->ids,
                                         core_hash(absent), absent), CORE_NONE);
    }
}

static void growth_is_spread_over_inserts(void **context)
{
    (void)context;
    core *state = core_create();
    assert_non_null(state);
    const core_index *index = &state->line_index;
    uint32_t growths = 0, checked_during_growth = 0;
    for (uint32_t n = 0; n < INDEX_TEST_ENTITIES; n++) {
        bool was_growing = index->old_slots != NULL;
        uint32_t moved_before = index->moved, capacity_before = index->capacity;
        add(state, n);
        if (index->capacity != capacity_before && capacity_before > 0) {
            /* The insert that starts a growth moves nothing yet. */
            growths++;
            assert_non_null(index->old_slots);
            assert_int_equal(index->old_capacity, capacity_before);
            assert_int_equal(index->moved, 0);
        } else if (was_growing && index->old_slots != NULL) {
            assert_true(index->moved - moved_before <= CORE_INDEX_MOVE_PER_INSERT);
        }
        assert_true((uint64_t)index->used * 4 <= (uint64_t)index->capacity * 3);
        if (index->old_slots != NULL && n % INDEX_TEST_CHECK_EVERY == 0) {
            assert_all_found(state, n + 1);
            checked_during_growth++;
        }
        if (index->old_slots != NULL)
            assert_int_equal(core_index_memory(index),
                             ((uint64_t)index->capacity + index->old_capacity) * sizeof(core_slot));
    }
    assert_true(growths >= 10);
    assert_true(checked_during_growth >= 3);
    assert_all_found(state, INDEX_TEST_ENTITIES);
    core_destroy(state);
}

/* A table of huge pages grows into one mapped from 5/8 load and written in
 * full by 11/16, so that the growth finds its pages ready (no burst of page
 * faults at the random homes of the inserts after it). */
static void next_table_is_ready_before_growth(void **context)
{
    (void)context;
    core *state = core_create();
    assert_non_null(state);
    const core_index *index = &state->line_index;
    uint32_t ready_growths = 0;
    const core_slot *prepared = NULL;
    for (uint32_t n = 0; n < INDEX_TEST_ENTITIES; n++) {
        uint32_t capacity_before = index->capacity;
        add(state, n);
        bool big = (uint64_t)index->capacity * 2 * sizeof(core_slot) >= ((uint64_t)2 << 20);
        if (index->capacity != capacity_before && prepared != NULL) {
            assert_ptr_equal(index->slots, prepared);   /* the growth took it */
            ready_growths++;
        }
        prepared = index->next_slots;
        if (big && (uint64_t)index->used * 8 > (uint64_t)index->capacity * CORE_INDEX_PREPARE_EIGHTHS) {
            assert_non_null(index->next_slots);
            assert_int_equal(index->next_capacity, index->capacity * 2);
            assert_null(index->old_slots);   /* never three tables */
            assert_int_equal(core_index_memory(index),
                             (uint64_t)index->capacity * 3 * sizeof(core_slot));
            if ((uint64_t)index->used * 16 >= (uint64_t)index->capacity * 11)
                assert_true(index->next_written >= (size_t)index->next_capacity * sizeof(core_slot));
        } else {
            assert_null(index->next_slots);
        }
    }
    assert_true(ready_growths >= 2);
    assert_all_found(state, INDEX_TEST_ENTITIES);
    core_destroy(state);
}

/* A bulk reserve (as a snapshot load makes) grows at once: no old table. */
static void bulk_reserve_grows_at_once(void **context)
{
    (void)context;
    core *state = core_create();
    assert_non_null(state);
    for (uint32_t n = 0; n < 1000; n++)
        add(state, n);
    assert_true(core_index_reserve(&state->line_index, 100000));
    assert_null(state->line_index.old_slots);
    assert_all_found(state, 1000);
    core_destroy(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(growth_is_spread_over_inserts),
        cmocka_unit_test(next_table_is_ready_before_growth),
        cmocka_unit_test(bulk_reserve_grows_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
