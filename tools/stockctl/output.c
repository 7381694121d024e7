/*
 * output.c -- how stockctl shows results: aligned text for people (failures
 * on stderr), or one JSON object per run on stdout for scripts (--json),
 * built with jansson so that it is always well-formed.
 *
 * Every JSON object has "ok" (true for OK and REPLAY), "code" (the wire word,
 * stock_code_name) and "replayed"; failures add "message" (the facts) and
 * "error" (the sentence of stock_strerror).
 */
#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stockctl.h"

static json_t *json_id(stock_id id)
{
    return json_stringn(id.ptr, id.len);
}

/* Emits and frees object; the exit code of code, or INTERNAL when stdout
 * fails. */
static int json_emit(json_t *object, stock_code code)
{
    assert(object != NULL);
    int failed = json_dumpf(object, stdout, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(object);
    if (failed != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "stockctl: cannot write the output\n");
        return CTL_EXIT_INTERNAL;
    }
    return ctl_exit_code(code);
}

static json_t *json_result(stock_code code)
{
    return json_pack("{s:b, s:s, s:b}", "ok", stock_code_succeeded(code),
                     "code", stock_code_name(code), "replayed",
                     code == STOCK_REPLAY);
}

/* The value that comes with a failure, per stock_op's contract. */
static bool failure_has_available(stock_code code)
{
    return code == STOCK_INSUFFICIENT || code == STOCK_MISMATCH ||
           code == STOCK_EXCEEDS;
}

static bool is_order(const stock_op *op)
{
    return op->type == STOCK_OP_ORDER || op->type == STOCK_OP_CONFIRM_ORDER;
}

static int print_op_failure(const ctl_args *args, const stock_op *op)
{
    assert(!stock_code_succeeded(op->code));
    if (args->json) {
        json_t *object = json_result(op->code);
        json_object_set_new(object, "message", json_string(op->message));
        json_object_set_new(object, "error", json_string(stock_strerror(op->code)));
        if (failure_has_available(op->code))
            json_object_set_new(object, "available", json_integer(op->available));
        if (is_order(op) && op->failed_line >= 0)
            json_object_set_new(object, "failed_line", json_integer(op->failed_line));
        return json_emit(object, op->code);
    }
    fprintf(stderr, "stockctl: %s: %s %s (%s)\n", args->command,
            stock_code_name(op->code), op->message, stock_strerror(op->code));
    if (is_order(op) && op->failed_line >= 0)
        fprintf(stderr, "stockctl: order: line %d (%.*s) is at fault\n",
                op->failed_line + 1, (int)op->lines[op->failed_line].line_id.len,
                op->lines[op->failed_line].line_id.ptr);
    return ctl_exit_code(op->code);
}

int ctl_print_failure(const ctl_args *args, stock_code code,
                      const char *message)
{
    assert(!stock_code_succeeded(code));
    if (args->json) {
        json_t *object = json_result(code);
        json_object_set_new(object, "message", json_string(message));
        json_object_set_new(object, "error", json_string(stock_strerror(code)));
        return json_emit(object, code);
    }
    fprintf(stderr, "stockctl: %s (%s)\n", message, stock_strerror(code));
    return ctl_exit_code(code);
}

static const char *replay_note(stock_code code)
{
    return code == STOCK_REPLAY ? " (replay: already done, original result)" : "";
}

/* What a level-changing op is about: its SKU, a refund's line, or the
 * hold a CONFIRM or RELEASE names (they carry no SKU). */
static const char *subject_kind(const stock_op *op)
{
    if (op->type == STOCK_OP_REFUND)
        return "line";
    if (op->type == STOCK_OP_CONFIRM || op->type == STOCK_OP_RELEASE)
        return "hold";
    return "sku";
}

static stock_id subject_id(const stock_op *op)
{
    if (op->type == STOCK_OP_REFUND)
        return op->line;
    if (op->type == STOCK_OP_CONFIRM || op->type == STOCK_OP_RELEASE)
        return op->id;
    return op->sku;
}

int ctl_print_level(const ctl_args *args, const char *verb, const stock_op *op)
{
    assert(op->type != STOCK_OP_ORDER && op->type != STOCK_OP_GET &&
           op->type != STOCK_OP_LINE && op->type != STOCK_OP_CONFIRM_ORDER &&
           op->type != STOCK_OP_HOLD_GET);
    if (!stock_code_succeeded(op->code))
        return print_op_failure(args, op);
    stock_id subject = subject_id(op);
    if (args->json) {
        json_t *object = json_result(op->code);
        if (op->type == STOCK_OP_REFUND)
            json_object_set_new(object, "refund", json_id(op->id));
        json_object_set_new(object, subject_kind(op), json_id(subject));
        if (op->type == STOCK_OP_DEDUCT)
            json_object_set_new(object, "line", json_id(op->id));
        if (op->type == STOCK_OP_HOLD)
            json_object_set_new(object, "hold", json_id(op->id));
        json_object_set_new(object, "available", json_integer(op->available));
        return json_emit(object, op->code);
    }
    printf("%s %s %.*s: available %" PRId64 "%s\n", verb, subject_kind(op),
           (int)subject.len, subject.ptr, op->available, replay_note(op->code));
    return ctl_exit_code(op->code);
}

/* An ORDER's lines, or a CONFIRM_ORDER's (a hold and a qty, 0 for all of
 * it, and no SKU). */
int ctl_print_order(const ctl_args *args, const stock_op *op)
{
    assert(is_order(op) && op->line_count >= 1);
    if (!stock_code_succeeded(op->code))
        return print_op_failure(args, op);
    bool holds = op->type == STOCK_OP_CONFIRM_ORDER;
    if (args->json) {
        json_t *object = json_result(op->code);
        json_t *lines = json_array();
        json_object_set_new(object, "order", json_id(op->id));
        for (uint32_t i = 0; i < op->line_count; i++) {
            const stock_order_line *line = &op->lines[i];
            json_t *entry = json_pack("{s:o, s:I, s:I}", "line", json_id(line->line_id),
                                      "qty", (json_int_t)line->qty, "available",
                                      (json_int_t)line->available);
            if (!holds)
                json_object_set_new(entry, "sku", json_id(line->sku));
            json_array_append_new(lines, entry);
        }
        json_object_set_new(object, "lines", lines);
        return json_emit(object, op->code);
    }
    printf("order %.*s: %u lines %s%s\n", (int)op->id.len, op->id.ptr,
           op->line_count, holds ? "confirmed" : "deducted", replay_note(op->code));
    for (uint32_t i = 0; i < op->line_count; i++) {
        const stock_order_line *line = &op->lines[i];
        if (holds)
            printf("  hold %-20.*s qty %-8" PRId64 " available %" PRId64 "\n",
                   (int)line->line_id.len, line->line_id.ptr, line->qty,
                   line->available);
        else
            printf("  line %-20.*s sku %-20.*s qty %-8" PRId64 " available %" PRId64 "\n",
                   (int)line->line_id.len, line->line_id.ptr, (int)line->sku.len,
                   line->sku.ptr, line->qty, line->available);
    }
    return ctl_exit_code(op->code);
}

int ctl_print_sku(const ctl_args *args, const stock_op *op)
{
    assert(op->type == STOCK_OP_GET);
    if (!stock_code_succeeded(op->code))
        return print_op_failure(args, op);
    const stock_sku_info *info = &op->info.sku_info;
    if (args->json) {
        json_t *object = json_result(op->code);
        json_object_set_new(object, "sku", json_id(op->sku));
        json_object_set_new(object, "available", json_integer(info->available));
        json_object_set_new(object, "adjusted", json_integer(info->adjusted));
        json_object_set_new(object, "deducted", json_integer(info->deducted));
        json_object_set_new(object, "refunded", json_integer(info->refunded));
        json_object_set_new(object, "held", json_integer(info->held));
        return json_emit(object, op->code);
    }
    printf("sku        %.*s\navailable  %" PRId64 "\nadjusted   %" PRId64
           "\ndeducted   %" PRId64 "\nrefunded   %" PRId64 "\nheld       %" PRId64 "\n",
           (int)op->sku.len, op->sku.ptr, info->available, info->adjusted,
           info->deducted, info->refunded, info->held);
    return ctl_exit_code(op->code);
}

/* Formats Unix microseconds as UTC ISO 8601 with microseconds. */
static void format_time(int64_t time_us, char *text, size_t size)
{
    time_t seconds = (time_t)(time_us / 1000000);
    struct tm utc;
    if (time_us < 0 || gmtime_r(&seconds, &utc) == NULL) {
        snprintf(text, size, "%" PRId64 " us", time_us);
        return;
    }
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(text, size, "%s.%06dZ", date, (int)(time_us % 1000000));
}

int ctl_print_line(const ctl_args *args, const stock_op *op)
{
    assert(op->type == STOCK_OP_LINE);
    if (!stock_code_succeeded(op->code))
        return print_op_failure(args, op);
    const stock_line_info *info = &op->info.line_info;
    if (args->json) {
        json_t *object = json_result(op->code);
        json_object_set_new(object, "line", json_id(op->line));
        json_object_set_new(object, "sku", json_string(info->sku));
        json_object_set_new(object, "order_id", json_string(info->order_id));
        json_object_set_new(object, "qty", json_integer(info->qty));
        json_object_set_new(object, "refunded", json_integer(info->refunded));
        json_object_set_new(object, "time_us", json_integer(info->time_us));
        json_object_set_new(object, "available_after", json_integer(info->available_after));
        return json_emit(object, op->code);
    }
    char when[64];
    format_time(info->time_us, when, sizeof when);
    printf("line             %.*s\nsku              %s\norder            %s\n"
           "qty              %" PRId64 "\nrefunded         %" PRId64
           "\ntime             %s\navailable after  %" PRId64 "\n",
           (int)op->line.len, op->line.ptr, info->sku,
           info->order_id[0] ? info->order_id : "-", info->qty, info->refunded,
           when, info->available_after);
    return ctl_exit_code(op->code);
}

int ctl_print_hold(const ctl_args *args, const stock_op *op)
{
    assert(op->type == STOCK_OP_HOLD_GET);
    if (!stock_code_succeeded(op->code))
        return print_op_failure(args, op);
    const stock_hold_info *info = &op->info.hold_info;
    if (args->json) {
        json_t *object = json_result(op->code);
        json_object_set_new(object, "hold", json_id(op->id));
        json_object_set_new(object, "sku", json_string(info->sku));
        json_object_set_new(object, "state", json_string(stock_hold_state_name(info->state)));
        json_object_set_new(object, "order_id", json_string(info->order_id));
        json_object_set_new(object, "qty", json_integer(info->qty));
        json_object_set_new(object, "confirmed", json_integer(info->confirmed));
        json_object_set_new(object, "time_us", json_integer(info->time_us));
        json_object_set_new(object, "deadline_us", json_integer(info->deadline_us));
        return json_emit(object, op->code);
    }
    char when[64], deadline[64];
    format_time(info->time_us, when, sizeof when);
    format_time(info->deadline_us, deadline, sizeof deadline);
    printf("hold       %.*s\nsku        %s\nstate      %s\norder      %s\n"
           "qty        %" PRId64 "\nconfirmed  %" PRId64 "\ntime       %s\n"
           "deadline   %s\n",
           (int)op->id.len, op->id.ptr, info->sku, stock_hold_state_name(info->state),
           info->order_id[0] ? info->order_id : "-", info->qty, info->confirmed,
           when, deadline);
    return ctl_exit_code(op->code);
}

int ctl_print_stats(const ctl_args *args, const char *backend,
                    stock_code code, const stock_stats *stats)
{
    if (code != STOCK_OK)
        return ctl_print_failure(args, code, "stats: this backend keeps no counters");
    const struct { const char *name; uint64_t value; } fields[] = {
        {"batches", stats->batches},       {"operations", stats->operations},
        {"syncs", stats->syncs},           {"sync_latency_us_sum", stats->sync_latency_us_sum},
        {"skus", stats->skus},             {"lines", stats->lines},
        {"memory_bytes", stats->memory_bytes}, {"log_bytes", stats->log_bytes},
        {"snapshots", stats->snapshots},
        {"recovered", stats->recovered},
        {"recovery_snapshot_loaded", stats->recovery_snapshot_loaded},
        {"recovery_snapshot_lsn", stats->recovery_snapshot_lsn},
        {"recovery_records", stats->recovery_records},
        {"recovery_torn_bytes", stats->recovery_torn_bytes},
        {"recovery_ms", stats->recovery_ms},
        {"holds_outstanding", stats->holds_outstanding},
        {"held_units", stats->held_units},
        {"hold_expiries", stats->hold_expiries},
        {"hold_confirmations", stats->hold_confirmations},
        {"hold_releases", stats->hold_releases},
    };
    size_t count = sizeof fields / sizeof fields[0];
    if (args->json) {
        json_t *object = json_result(code);
        json_object_set_new(object, "backend", json_string(backend));
        for (size_t i = 0; i < count; i++)
            json_object_set_new(object, fields[i].name,
                                json_integer((json_int_t)fields[i].value));
        return json_emit(object, code);
    }
    printf("%-24s %s\n", "backend", backend);
    for (size_t i = 0; i < count; i++)
        printf("%-24s %" PRIu64 "\n", fields[i].name, fields[i].value);
    return ctl_exit_code(code);
}

int ctl_print_reshard(const ctl_args *args, const stock_reshard_info *info)
{
    if (args->json) {
        json_t *object = json_result(STOCK_OK);
        json_object_set_new(object, "skus", json_integer((json_int_t)info->skus));
        json_object_set_new(object, "lines", json_integer((json_int_t)info->lines));
        json_object_set_new(object, "ids", json_integer((json_int_t)info->ids));
        json_object_set_new(object, "resumed", json_boolean(info->resumed));
        json_object_set_new(object, "already", json_boolean(info->already));
        return json_emit(object, STOCK_OK);
    }
    if (info->already)
        printf("reshard: the members form the new map already: nothing to move\n");
    else
        printf("reshard: %smoved %" PRIu64 " SKUs (%" PRIu64 " lines) and %" PRIu64
               " directory entries; the store opens with the new member list\n",
               info->resumed ? "finished an interrupted move: " : "", info->skus, info->lines,
               info->ids);
    return CTL_EXIT_OK;
}

int ctl_print_backup(const ctl_args *args, const char *verb, const char *folder,
                     const stock_backup_info *info)
{
    if (args->json) {
        json_t *object = json_result(STOCK_OK);
        json_object_set_new(object, verb, json_string(folder));
        json_object_set_new(object, "end_lsn", json_integer((json_int_t)info->end_lsn));
        json_object_set_new(object, "snapshot_lsn", json_integer((json_int_t)info->snapshot_lsn));
        json_object_set_new(object, "files", json_integer((json_int_t)info->files));
        json_object_set_new(object, "bytes", json_integer((json_int_t)info->bytes));
        return json_emit(object, STOCK_OK);
    }
    printf("%s %s: holds the first %" PRIu64 " records (the backup point), snapshot at lsn %"
           PRIu64 ", %" PRIu64 " files, %" PRIu64 " bytes\n", verb, folder, info->end_lsn,
           info->snapshot_lsn, info->files, info->bytes);
    return CTL_EXIT_OK;
}
