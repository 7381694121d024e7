/*
 * test_config.c -- unit tests of stockd's settings (src/server/config.c):
 * defaults, both flag forms, the config file and its order against flags,
 * and a clear message for each kind of bad value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/config.h"

static config cfg;
static char message[CONFIG_MESSAGE_MAX];

static config_result parse(int argc, char **argv)
{
    return config_from_args(&cfg, argc, argv, message, sizeof message);
}

static void test_defaults(void **state)
{
    (void)state;
    char *argv[] = {"stockd"};
    assert_int_equal(parse(1, argv), CONFIG_RUN);
    assert_string_equal(cfg.store, "./stockd-data");
    assert_string_equal(cfg.bind, "127.0.0.1");
    assert_int_equal(cfg.port, 7379);
    assert_int_equal(cfg.http_port, 7380);
    assert_string_equal(cfg.requirepass, "");
    assert_int_equal(cfg.maxclients, 10000);
    assert_int_equal(cfg.max_request_bytes, 1 << 20);
    assert_int_equal(cfg.idle_timeout_s, 300);
    assert_int_equal(cfg.durability, STOCK_DURABILITY_SYNC);
}

static void test_flags(void **state)
{
    (void)state;
    char *argv[] = {"stockd", "--port=0", "--http-port", "9000", "--bind", "::1",
                    "--durability=relaxed", "--requirepass", "pw", "--maxclients", "5",
                    "--max-request-bytes", "4096", "--idle-timeout", "0", "--store", "x"};
    assert_int_equal(parse(17, argv), CONFIG_RUN);
    assert_int_equal(cfg.port, 0);
    assert_int_equal(cfg.http_port, 9000);
    assert_string_equal(cfg.bind, "::1");
    assert_int_equal(cfg.durability, STOCK_DURABILITY_RELAXED);
    assert_string_equal(cfg.requirepass, "pw");
    assert_int_equal(cfg.maxclients, 5);
    assert_int_equal(cfg.max_request_bytes, 4096);
    assert_int_equal(cfg.idle_timeout_s, 0);
    assert_string_equal(cfg.store, "x");
}

static void expect_bad(int argc, char **argv, const char *words)
{
    assert_int_equal(parse(argc, argv), CONFIG_EXIT_BAD);
    if (strstr(message, words) == NULL)
        fail_msg("message '%s' lacks '%s'", message, words);
}

static void test_bad_flags(void **state)
{
    (void)state;
    char *port[] = {"stockd", "--port", "-1"};
    expect_bad(3, port, "port '-1' must be an integer in 0..65535");
    char *clients[] = {"stockd", "--maxclients", "0"};
    expect_bad(3, clients, "maxclients '0' must be an integer in 1..1000000");
    char *bytes[] = {"stockd", "--max-request-bytes=100"};
    expect_bad(2, bytes, "must be an integer in 4096..");
    char *unknown[] = {"stockd", "--prot", "1"};
    expect_bad(3, unknown, "unknown setting 'prot'");
    char *missing[] = {"stockd", "--store"};
    expect_bad(2, missing, "--store needs a value");
    char *stray[] = {"stockd", "data"};
    expect_bad(2, stray, "unexpected argument 'data'");
    char *nothing[] = {"stockd", "--port", "0", "--http-port", "0"};
    expect_bad(5, nothing, "nothing to serve");
    char *same[] = {"stockd", "--port", "80", "--http-port", "80"};
    expect_bad(5, same, "both 80");
    char *bind[] = {"stockd", "--bind", "example.com"};
    expect_bad(3, bind, "not an IPv4 or IPv6 address");
    char *empty[] = {"stockd", "--requirepass", ""};
    expect_bad(3, empty, "must be 1..");
}

static void test_protected_mode(void **state)
{
    (void)state;
    char *open_v4[] = {"stockd", "--bind", "0.0.0.0"};
    expect_bad(3, open_v4, "--protected-mode no");
    char *open_v6[] = {"stockd", "--bind", "2001:db8::1"};
    expect_bad(3, open_v6, "protected mode: --bind 2001:db8::1");
    char *bad[] = {"stockd", "--protected-mode", "off"};
    expect_bad(3, bad, "must be yes or no");
    char *off[] = {"stockd", "--bind", "0.0.0.0", "--protected-mode", "no"};
    assert_int_equal(parse(5, off), CONFIG_RUN);
    char *password[] = {"stockd", "--requirepass", "pw", "--bind", "::"};
    assert_int_equal(parse(5, password), CONFIG_RUN);
    const char *loopback[] = {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        char *argv[] = {"stockd", "--bind", (char *)loopback[i]};
        assert_int_equal(parse(3, argv), CONFIG_RUN);
    }
    const char *public[] = {"128.0.0.1", "10.0.0.1", "::2", "::ffff:10.0.0.1"};
    for (size_t i = 0; i < sizeof public / sizeof public[0]; i++)
        assert_false(config_bind_is_loopback(public[i]));
}

static void test_config_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# stockd\n\n  port   7400  \nhttp-port 0\nstore /var/lib/stockd\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *argv[] = {"stockd", "--port", "1", "--config", path, "--store", "y"};
    assert_int_equal(parse(7, argv), CONFIG_RUN);
    assert_int_equal(cfg.port, 7400);        /* the file after the flag wins */
    assert_int_equal(cfg.http_port, 0);
    assert_string_equal(cfg.store, "y");     /* the flag after the file wins */
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("port 7400\nidle-timeout soon\n", file);
    fclose(file);
    char *bad[] = {"stockd", "--config", path};
    char where[64];
    snprintf(where, sizeof where, "%s:2: idle-timeout 'soon'", path);
    expect_bad(3, bad, where);
    unlink(path);
    char *missing[] = {"stockd", "--config", "/nonexistent/stockd.conf"};
    expect_bad(3, missing, "No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_protected_mode),
        cmocka_unit_test(test_config_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
