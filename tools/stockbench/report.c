/*
 * report.c -- summary, JSON and plot of a finished run (see report.h).
 */
#include "report.h"

#include <assert.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLOT_DATA_TEMPLATE "/tmp/stockbench-plot-XXXXXX"

const double report_percentiles[REPORT_PERCENTILE_COUNT] = {50, 90, 99, 99.9};
static const char *const percentile_names[REPORT_PERCENTILE_COUNT] = {
    "p50", "p90", "p99", "p99.9"};
static const char *const kind_names[WORKLOAD_OP_KIND_COUNT] = {
    "deduct", "replay", "refund", "read", "order"};

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static double throughput(const run_result *result)
{
    return result->elapsed_s > 0 ? (double)result->ops / result->elapsed_s : 0;
}

/* The URI without its query, which may hold a password. */
static const char *display_uri(const char *uri, char *buffer, size_t size)
{
    assert(uri != NULL && size > 0);
    size_t length = strcspn(uri, "?");
    snprintf(buffer, size, "%.*s", (int)length, uri);
    return buffer;
}

static const char *loop_name(const run_config *config)
{
    return config->rate > 0 ? "open loop" : "closed loop";
}

/* What the backend's own counters say about the load: how well it batched
 * and, for a durable one, what each sync cost. */
static void report_store_stats(FILE *out, const run_result *result)
{
    const stock_stats *stats = &result->store_stats;
    if (!result->has_store_stats || stats->batches == 0)
        return;
    fprintf(out, "  store      %" PRIu64 " batches, %.1f ops per batch", stats->batches,
            (double)stats->operations / (double)stats->batches);
    if (stats->syncs > 0)
        fprintf(out, "; %" PRIu64 " syncs, %.1f ops per sync, %.3f ms per sync",
                stats->syncs, (double)stats->operations / (double)stats->syncs,
                (double)stats->sync_latency_us_sum / (double)stats->syncs / 1e3);
    fputc('\n', out);
}

void report_text(FILE *out, const run_config *config, const run_result *result)
{
    assert(out != NULL && config != NULL && result != NULL);
    char uri[RUN_ERROR_MAX];
    fprintf(out, "stockbench: %s on %s (%s), %" PRIu32 " x %" PRIu32 " %s, "
            "%" PRIu32 " store handle(s), %" PRIu32 " SKU(s), prefix %s\n",
            workload_kind_name(config->workload.kind),
            display_uri(config->uri, uri, sizeof uri), result->backend,
            config->connections, config->pipeline,
            loop_name(config), result->stores, result->skus, result->prefix);
    fprintf(out, "  operations %" PRIu64 " in %.2f s: %.0f ops/s\n",
            result->ops, result->elapsed_s, throughput(result));
    if (result->unsent_ops > 0)
        fprintf(out, "  behind     %" PRIu64 " operations fell due but were not "
                "sent: the store did not keep up with --rate\n",
                result->unsent_ops);
    if (result->retries > 0 || result->kills > 0)
        fprintf(out, "  recovery   %" PRIu32 " stockd kill(s), %" PRIu64
                " op(s) resent after an unknown outcome\n",
                result->kills, result->retries);
    report_store_stats(out, result);
    fprintf(out, "  latency   ");
    for (int i = 0; i < REPORT_PERCENTILE_COUNT; i++)
        fprintf(out, " %s %.3f ms", percentile_names[i],
                ms(histogram_percentile(&result->latency,
                                        report_percentiles[i])));
    fprintf(out, " max %.3f ms\n", ms(result->latency.max));
    fprintf(out, "  results   ");
    for (int code = 0; code < STOCK_CODE_COUNT; code++)
        if (result->codes[code] > 0)
            fprintf(out, " %s %" PRIu64, stock_code_name(code),
                    result->codes[code]);
    fprintf(out, "\n  operations");
    for (int kind = 0; kind < WORKLOAD_OP_KIND_COUNT; kind++)
        if (result->kinds[kind] > 0)
            fprintf(out, " %s %" PRIu64, kind_names[kind], result->kinds[kind]);
    fprintf(out, "\n  units      deducted %" PRId64 " refunded %" PRId64 "\n",
            result->deducted, result->refunded);
    if (result->check_failures == 0)
        fprintf(out, "  check      passed (I1, I2 on %" PRIu32 " SKU(s); I4 on "
                "%" PRIu64 " replays; I5 on %" PRIu64 " refunds; %" PRId64
                " acknowledged lines read back)\n",
                result->skus, result->kinds[WORKLOAD_OP_REPLAY],
                result->kinds[WORKLOAD_OP_REFUND], result->lines_checked);
    else
        fprintf(out, "  check      FAILED: %" PRIu64 " failure(s), see above\n",
                result->check_failures);
}

static json_t *latency_json(const histogram *latency)
{
    json_t *object = json_object();
    if (object == NULL)
        return NULL;
    for (int i = 0; i < REPORT_PERCENTILE_COUNT; i++)
        json_object_set_new(object, percentile_names[i],
                            json_real(ms(histogram_percentile(
                                latency, report_percentiles[i]))));
    json_object_set_new(object, "max", json_real(ms(latency->max)));
    json_object_set_new(object, "mean", json_real(histogram_mean(latency) / 1e6));
    return object;
}

static json_t *counts_json(const run_result *result)
{
    json_t *codes = json_object();
    for (int code = 0; codes != NULL && code < STOCK_CODE_COUNT; code++)
        if (result->codes[code] > 0)
            json_object_set_new(codes, stock_code_name(code),
                                json_integer((json_int_t)result->codes[code]));
    return codes;
}

static json_t *series_json(const run_result *result)
{
    json_t *series = json_array();
    for (uint32_t i = 0; series != NULL && i < result->series_count; i++) {
        const run_point *point = &result->series[i];
        json_array_append_new(series,
                              json_pack("{s:f,s:f,s:f,s:f}", "time_s",
                                        point->time_s, "ops_per_s",
                                        point->ops_per_s, "p50_ms",
                                        ms(point->p50_ns), "p99_ms",
                                        ms(point->p99_ns)));
    }
    return series;
}

static void set_integer(json_t *object, const char *key, uint64_t value)
{
    json_object_set_new(object, key, json_integer((json_int_t)value));
}

/* What was run: the store, the workload, the client settings. */
static void add_setup(json_t *root, const run_config *config,
                      const run_result *result)
{
    char uri[RUN_ERROR_MAX];
    json_object_set_new(root, "workload",
                        json_string(workload_kind_name(config->workload.kind)));
    json_object_set_new(root, "uri",
                        json_string(display_uri(config->uri, uri, sizeof uri)));
    json_object_set_new(root, "backend", json_string(result->backend));
    json_object_set_new(root, "prefix", json_string(result->prefix));
    json_object_set_new(root, "loop",
                        json_string(config->rate > 0 ? "open" : "closed"));
    set_integer(root, "connections", config->connections);
    set_integer(root, "pipeline", config->pipeline);
    json_object_set_new(root, "rate", json_real(config->rate));
    json_object_set_new(root, "durability",
                        json_string(config->store.durability ==
                                            STOCK_DURABILITY_SYNC
                                        ? "sync"
                                        : "relaxed"));
    set_integer(root, "skus", result->skus);
}

/* What came of it: counts, latency, the check, the series. */
static void add_outcome(json_t *root, const run_result *result)
{
    set_integer(root, "operations_total", result->ops);
    json_object_set_new(root, "elapsed_s", json_real(result->elapsed_s));
    json_object_set_new(root, "ops_per_s", json_real(throughput(result)));
    json_object_set_new(root, "latency_ms", latency_json(&result->latency));
    json_object_set_new(root, "results", counts_json(result));
    json_t *operations = json_object();
    for (int kind = 0; operations != NULL && kind < WORKLOAD_OP_KIND_COUNT; kind++)
        set_integer(operations, kind_names[kind], result->kinds[kind]);
    json_object_set_new(root, "operations", operations);
    json_object_set_new(root, "deducted", json_integer(result->deducted));
    json_object_set_new(root, "refunded", json_integer(result->refunded));
    set_integer(root, "unsent", result->unsent_ops);
    set_integer(root, "retries", result->retries);
    set_integer(root, "kills", result->kills);
    if (result->has_store_stats)
        json_object_set_new(root, "store",
                            json_pack("{s:I,s:I,s:I,s:I}", "batches",
                                      (json_int_t)result->store_stats.batches,
                                      "operations",
                                      (json_int_t)result->store_stats.operations,
                                      "syncs", (json_int_t)result->store_stats.syncs,
                                      "sync_latency_us_sum",
                                      (json_int_t)result->store_stats.sync_latency_us_sum));
    json_object_set_new(root, "lines_checked", json_integer(result->lines_checked));
    json_object_set_new(root, "check",
                        json_pack("{s:b,s:I}", "passed",
                                  result->check_failures == 0, "failures",
                                  (json_int_t)result->check_failures));
    json_object_set_new(root, "series", series_json(result));
}

int report_json(FILE *out, const run_config *config, const run_result *result)
{
    assert(out != NULL && config != NULL && result != NULL);
    json_t *root = json_object();
    if (root == NULL)
        return -1;
    add_setup(root, config, result);
    add_outcome(root, result);
    int status = json_dumpf(root, out, JSON_COMPACT);
    json_decref(root);
    if (status != 0 || fputc('\n', out) == EOF || fflush(out) != 0)
        return -1;
    return 0;
}

/* Writes the series as "time ops/s p50_ms p99_ms" rows into a new temporary
 * file whose name is left in data_path. */
static int write_plot_data(const run_result *result, char *data_path)
{
    int fd = mkstemp(data_path);
    if (fd < 0)
        return -1;
    FILE *data = fdopen(fd, "w");
    if (data == NULL) {
        close(fd);
        return -1;
    }
    for (uint32_t i = 0; i < result->series_count; i++) {
        const run_point *point = &result->series[i];
        fprintf(data, "%.3f %.1f %.4f %.4f\n", point->time_s, point->ops_per_s,
                ms(point->p50_ns), ms(point->p99_ns));
    }
    return fclose(data) == 0 ? 0 : -1;
}

/* Runs gnuplot with the script on its standard input. */
static int run_gnuplot(const char *script, char *error, size_t error_size)
{
    FILE *pipe = popen("gnuplot", "w");
    if (pipe == NULL) {
        snprintf(error, error_size, "cannot start gnuplot");
        return -1;
    }
    fputs(script, pipe);
    int status = pclose(pipe);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(error, error_size, "gnuplot failed (exit status %d); is "
                 "gnuplot-nox installed?", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return 0;
}

int report_plot(const char *path, const run_config *config,
                const run_result *result, char *error, size_t error_size)
{
    assert(path != NULL && config != NULL && result != NULL && error != NULL);
    if (strpbrk(path, "'\n") != NULL) {
        snprintf(error, error_size, "the plot path must not contain a quote "
                 "or a newline");
        return -1;
    }
    if (result->series_count == 0) {
        snprintf(error, error_size, "the run was too short to plot");
        return -1;
    }
    char data_path[] = PLOT_DATA_TEMPLATE;
    if (write_plot_data(result, data_path) != 0) {
        snprintf(error, error_size, "cannot write the plot data to /tmp");
        return -1;
    }
    char script[2048];
    char uri[RUN_ERROR_MAX];
    snprintf(script, sizeof script,
             "set terminal pngcairo size 1000,500 noenhanced\n"
             "set output '%s'\n"
             "set title '%s on %s (%s), %u x %u, %s'\n"
             "set xlabel 'time (s)'\nset ylabel 'ops/s'\n"
             "set y2label 'latency (ms)'\nset ytics nomirror\nset y2tics\n"
             "set xrange [0:*]\nset yrange [0:*]\nset y2range [0:*]\n"
             "set key outside top center horizontal\n"
             "plot '%s' using 1:2 with linespoints title 'ops/s' axes x1y1, "
             "'' using 1:3 with lines title 'p50 ms' axes x1y2, "
             "'' using 1:4 with lines title 'p99 ms' axes x1y2\n",
             path, workload_kind_name(config->workload.kind), result->backend,
             strchr(config->uri, '\'') ? "uri"
                                        : display_uri(config->uri, uri, sizeof uri),
             config->connections, config->pipeline, loop_name(config),
             data_path);
    int status = run_gnuplot(script, error, error_size);
    unlink(data_path);
    return status;
}
