/*
 * report.h -- how stockbench shows a finished run: a summary for people, a
 * JSON object for programs, and a PNG plot of throughput and latency over
 * time drawn by gnuplot.
 */
#ifndef STOCKBENCH_REPORT_H
#define STOCKBENCH_REPORT_H

#include <stdio.h>

#include "run.h"

#define REPORT_PERCENTILE_COUNT 4

/* The percentiles every report shows, besides max. */
extern const double report_percentiles[REPORT_PERCENTILE_COUNT];

/* Writes the summary for people (several lines) to out. */
void report_text(FILE *out, const run_config *config, const run_result *result);

/* Writes one JSON object and a newline to out. Returns 0, or -1 on out of
 * memory or a write error. */
int report_json(FILE *out, const run_config *config, const run_result *result);

/* Draws result->series into the PNG file at path with gnuplot (throughput
 * on the left axis, p50 and p99 latency on the right). Returns 0, or -1 with
 * a sentence in error (error_size bytes) when gnuplot is missing or fails. */
int report_plot(const char *path, const run_config *config,
                const run_result *result, char *error, size_t error_size);

#endif /* STOCKBENCH_REPORT_H */
