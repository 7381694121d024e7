/*
 * test_auth.c -- unit tests of stockd's users and failure limit
 * (src/server/auth.c): which role each user and password pair earns, and
 * the per-address window of failed attempts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "server/auth.h"

static auth_role check(const config *cfg, const char *user, const char *password)
{
    return auth_check(cfg, user, user != NULL ? strlen(user) : 0, password, strlen(password));
}

static void test_roles(void **state)
{
    (void)state;
    config cfg = {0};
    assert_int_equal(auth_initial_role(&cfg), AUTH_FULL);
    assert_int_equal(check(&cfg, NULL, "anything"), AUTH_NONE);
    strcpy(cfg.requirepass, "full");
    strcpy(cfg.readonly_user, "reader");
    assert_int_equal(auth_initial_role(&cfg), AUTH_NONE);
    assert_int_equal(check(&cfg, NULL, "full"), AUTH_FULL);
    assert_int_equal(check(&cfg, "default", "full"), AUTH_FULL);
    assert_int_equal(check(&cfg, NULL, "ful"), AUTH_NONE);
    assert_int_equal(check(&cfg, NULL, "fullx"), AUTH_NONE);
    assert_int_equal(check(&cfg, NULL, "ro"), AUTH_NONE);   /* no read-only user yet */
    strcpy(cfg.readonly_pass, "ro");
    assert_int_equal(check(&cfg, NULL, "ro"), AUTH_READ_ONLY);
    assert_int_equal(check(&cfg, "reader", "ro"), AUTH_READ_ONLY);
    assert_int_equal(check(&cfg, "reader", "full"), AUTH_NONE);
    assert_int_equal(check(&cfg, "default", "ro"), AUTH_NONE);
    assert_int_equal(check(&cfg, "readers", "ro"), AUTH_NONE);
    assert_string_equal(auth_user_name(&cfg, AUTH_READ_ONLY), "reader");
    assert_string_equal(auth_user_name(&cfg, AUTH_FULL), "default");
}

static auth_limiter limiter;

static void test_limit(void **state)
{
    (void)state;
    uint32_t retry_s = 0;
    for (int i = 1; i < AUTH_FAILURES_MAX; i++) {
        assert_false(auth_limited(&limiter, "10.0.0.1", 1000, &retry_s));
        assert_false(auth_failed(&limiter, "10.0.0.1", 1000));
    }
    assert_true(auth_failed(&limiter, "10.0.0.1", 1000));   /* the one that reaches it */
    assert_true(auth_limited(&limiter, "10.0.0.1", 1000 + 30000, &retry_s));
    assert_int_equal(retry_s, 30);
    assert_false(auth_limited(&limiter, "10.0.0.2", 1000, &retry_s));   /* others unaffected */
    assert_false(auth_limited(&limiter, "10.0.0.1", 1000 + AUTH_WINDOW_MS, &retry_s));
    /* Many addresses: the table stays bounded, each still counted. */
    char address[AUTH_ADDRESS_MAX];
    for (int i = 0; i < 4 * AUTH_ADDRESSES_MAX; i++) {
        snprintf(address, sizeof address, "10.1.%d.%d", i / 256, i % 256);
        auth_failed(&limiter, address, 5000);
    }
    for (int i = 0; i < AUTH_FAILURES_MAX; i++)
        auth_failed(&limiter, "10.9.9.9", 6000);
    assert_true(auth_limited(&limiter, "10.9.9.9", 6000, &retry_s));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
