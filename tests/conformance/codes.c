/*
 * codes.c -- the parts of the contract that need no state: result code
 * names and sentences, identifier rules, opening by URI, the backend's name
 * and its counters.
 */
#include "conformance.h"

/* The wire word of every code, as stock.h and docs/semantics.md spell it. */
static const char *const wire_words[STOCK_CODE_COUNT] = {
    [STOCK_OK] = "OK",
    [STOCK_REPLAY] = "REPLAY",
    [STOCK_INSUFFICIENT] = "INSUFFICIENT",
    [STOCK_NOT_FOUND] = "NOTFOUND",
    [STOCK_CONFLICT] = "CONFLICT",
    [STOCK_EXCEEDS] = "EXCEEDS",
    [STOCK_MISMATCH] = "MISMATCH",
    [STOCK_INVALID] = "INVALID",
    [STOCK_IO] = "IOERR",
    [STOCK_CORRUPT] = "CORRUPT",
    [STOCK_NOMEM] = "NOMEM",
    [STOCK_UNAVAILABLE] = "UNAVAILABLE",
    [STOCK_UNSUPPORTED] = "UNSUPPORTED",
    [STOCK_EXPIRED] = "EXPIRED",
    [STOCK_CLOSED] = "CLOSED",
};

static void code_names_are_the_wire_words(void **state)
{
    (void)state;
    for (int code = 0; code < STOCK_CODE_COUNT; code++)
        assert_string_equal(stock_code_name((stock_code)code), wire_words[code]);
    assert_non_null(stock_code_name(STOCK_CODE_COUNT));
    assert_non_null(stock_code_name((stock_code)-1));
}

static void every_code_has_its_own_sentence(void **state)
{
    (void)state;
    for (int code = 0; code < STOCK_CODE_COUNT; code++) {
        const char *sentence = stock_strerror((stock_code)code);
        assert_non_null(sentence);
        assert_true(strlen(sentence) > 0);
        for (int other = 0; other < code; other++)
            assert_string_not_equal(sentence, stock_strerror((stock_code)other));
    }
    assert_non_null(stock_strerror(STOCK_CODE_COUNT));
    assert_non_null(stock_strerror((stock_code)-1));
}

static void only_ok_and_replay_succeed(void **state)
{
    (void)state;
    for (int code = 0; code < STOCK_CODE_COUNT; code++)
        assert_int_equal(stock_code_succeeded((stock_code)code),
                         code == STOCK_OK || code == STOCK_REPLAY);
}

static void id_rules(void **state)
{
    (void)state;
    char text[STOCK_ID_MAX + 2];
    memset(text, 'a', sizeof text);
    assert_true(stock_id_valid((stock_id){text, 1}));
    assert_true(stock_id_valid((stock_id){text, STOCK_ID_MAX}));
    assert_false(stock_id_valid((stock_id){text, 0}));
    assert_false(stock_id_valid((stock_id){text, STOCK_ID_MAX + 1}));
    assert_false(stock_id_valid((stock_id){NULL, 3}));
    assert_false(stock_id_valid(stock_id_from_cstr(NULL)));
    assert_false(stock_id_valid(stock_id_from_cstr("")));
    /* Every byte outside 0x21..0x7E is refused, wherever it stands. */
    for (int byte = 0; byte < 256; byte++) {
        text[1] = (char)byte;
        bool printable = byte >= 0x21 && byte <= 0x7E;
        assert_int_equal(stock_id_valid((stock_id){text, 3}), printable);
    }
}

static void open_refuses_an_empty_uri(void **state)
{
    (void)state;
    stock_t *store = (stock_t *)&store;
    char message[STOCK_MESSAGE_MAX] = "";
    assert_code(stock_open("", NULL, &store, message),
                STOCK_INVALID, message);
    assert_null(store);
    assert_true(strlen(message) > 0);
}

static void backend_has_a_name_and_counters_or_none(void **state)
{
    (void)state;
    const char *name = stock_backend_name(conf_store);
    assert_non_null(name);
    assert_true(strlen(name) > 0);
    stock_stats stats;
    stock_code code = stock_get_stats(conf_store, &stats);
    assert_true(code == STOCK_OK || code == STOCK_UNSUPPORTED);
    /* Only the embedded engine rebuilds its state from files of its own at
     * open; every other backend leaves the recovery fields zero. */
    assert_int_equal(stats.recovered, strcmp(name, "embedded") == 0);
    if (!stats.recovered) {
        assert_false(stats.recovery_snapshot_loaded);
        assert_int_equal(stats.recovery_snapshot_lsn, 0);
        assert_int_equal(stats.recovery_records, 0);
        assert_int_equal(stats.recovery_torn_bytes, 0);
        assert_int_equal(stats.recovery_ms, 0);
    } else if (!stats.recovery_snapshot_loaded) {
        assert_int_equal(stats.recovery_snapshot_lsn, 0);
    }
}

int conf_run_codes(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(code_names_are_the_wire_words),
        cmocka_unit_test(every_code_has_its_own_sentence),
        cmocka_unit_test(only_ok_and_replay_succeed),
        cmocka_unit_test(id_rules),
        cmocka_unit_test(open_refuses_an_empty_uri),
        cmocka_unit_test(backend_has_a_name_and_counters_or_none),
    };
    return cmocka_run_group_tests_name("codes", tests, NULL, NULL);
}
