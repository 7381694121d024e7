/*
 * reconcile_report.c -- what `stockctl reconcile` prints: each difference
 * the moment it is found (a line of text, or an element of the JSON
 * object's "differences" array, which is streamed so that a million
 * differences never sit in memory), the summary, and the progress line on
 * stderr when it is a terminal.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "reconcile.h"

static int64_t now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

bool rc_fail(rc_run *run, const char *what, stock_code code, const char *message)
{
    if (!run->failed)
        snprintf(run->error, sizeof run->error, "%.100s: %s %s", what, stock_code_name(code),
                 message);
    run->failed = true;
    return false;
}

void rc_report_begin(rc_run *run)
{
    if (run->args->json)
        printf("{\"differences\":[");
}

/* A side's value for JSON: an integer, a string, or null when it lacks the
 * thing. */
static json_t *json_value(const rc_diff *diff, const char *value)
{
    if (value[0] == '\0')
        return json_null();
    return diff->numeric ? json_integer(strtoll(value, NULL, 10)) : json_string(value);
}

static void report_json(rc_run *run, const rc_diff *diff)
{
    json_t *object = json_pack("{s:s, s:s}", "sku", diff->sku, "reason", diff->reason);
    if (diff->line != NULL)
        json_object_set_new(object, "line", json_string(diff->line));
    if (diff->refund != NULL)
        json_object_set_new(object, "refund", json_string(diff->refund));
    if (diff->field != NULL)
        json_object_set_new(object, "field", json_string(diff->field));
    bool own = strcmp(diff->reason, RC_REASON_I2) == 0;
    json_object_set_new(object, own ? "counter" : "a", json_value(diff, diff->a));
    json_object_set_new(object, own ? "flow" : "b", json_value(diff, diff->b));
    if (run->repair) {
        json_object_set_new(object, "repaired", json_boolean(diff->repaired));
        json_object_set_new(object, "repair", json_string(diff->repair));
    }
    if (!run->json_first)
        putchar(',');
    if (json_dumpf(object, stdout, JSON_COMPACT | JSON_ENSURE_ASCII) != 0)
        run->output_failed = true;
    json_decref(object);
}

static void report_text(const rc_diff *diff)
{
    if (diff->refund != NULL)
        printf("refund %s (line %s, sku %s): %s", diff->refund, diff->line, diff->sku,
               diff->reason);
    else if (diff->line != NULL)
        printf("line %s (sku %s): %s", diff->line, diff->sku, diff->reason);
    else
        printf("sku %s: %s", diff->sku, diff->reason);
    if (strcmp(diff->reason, RC_REASON_I2) == 0)
        printf(": %s: %s vs %s", diff->field, diff->a, diff->b);
    else if (diff->field != NULL)
        printf(": %s A=%s B=%s", diff->field, diff->a, diff->b);
    else if (diff->a[0] != '\0')
        printf(": in A (%s %s), not in B", diff->line != NULL ? "qty" : "available", diff->a);
    else
        printf(": in B (%s %s), not in A", diff->line != NULL ? "qty" : "available", diff->b);
    if (diff->repair[0] != '\0')
        printf("; %s%s", diff->repaired ? "repaired: " : "", diff->repair);
    putchar('\n');
}

void rc_report(rc_run *run, const rc_diff *diff)
{
    run->differences++;
    run->repaired += diff->repaired;
    if (run->progress)
        fputs("\r\033[K", stderr);   /* the report line replaces the progress */
    if (run->args->json)
        report_json(run, diff);
    else
        report_text(diff);
    run->json_first = false;
}

void rc_progress(rc_run *run, bool last)
{
    if (!run->progress)
        return;
    int64_t now = now_us();
    if (!last && now - run->progress_us < RC_PROGRESS_US)
        return;
    run->progress_us = now;
    fprintf(stderr, "\rreconcile: %" PRIu64 " SKUs, %" PRIu64 " lines, %" PRIu64
            " differences%s", run->skus, run->lines, run->differences, last ? "\n" : "");
}

static int exit_code(const rc_run *run)
{
    if (run->failed || run->repair_failed || run->output_failed)
        return RC_EXIT_ERROR;
    return run->differences > 0 ? RC_EXIT_DIFFERENT : RC_EXIT_EQUAL;
}

int rc_report_end(rc_run *run)
{
    bool equal = !run->failed && run->differences == 0;
    if (run->args->json) {
        json_t *summary = json_pack("{s:I, s:I, s:I, s:I, s:b, s:b}", "skus",
                                    (json_int_t)run->skus, "lines", (json_int_t)run->lines,
                                    "different", (json_int_t)run->differences, "repaired",
                                    (json_int_t)run->repaired, "equal", equal, "self_check",
                                    run->uri_b == NULL);
        json_object_set_new(summary, "error",
                            run->failed ? json_string(run->error) : json_null());
        char *text = json_dumps(summary, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(summary);
        if (text == NULL)
            run->output_failed = true;
        else
            printf("],%s\n", text + 1);   /* the summary's members follow the array */
        free(text);
    } else {
        if (run->failed)
            fprintf(stderr, "stockctl: reconcile: %s\n", run->error);
        printf("reconcile: %" PRIu64 " SKUs and %" PRIu64 " lines compared%s: %s",
               run->skus, run->lines, run->uri_b == NULL ? " with their own flow" : "",
               run->failed ? "stopped by an error; " : "");
        if (run->differences == 0)
            printf("%s\n", run->failed ? "no difference so far" : "equal");
        else
            printf("%" PRIu64 " differences, %" PRIu64 " repaired\n", run->differences,
                   run->repaired);
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        run->output_failed = true;
    return exit_code(run);
}
