/*
 * main.c -- stockd's entry point: reads the settings, opens the store (and
 * logs what its recovery did), starts the persister when --persist-to asks,
 * serves until SIGTERM or SIGINT, stops the persister, closes the store. Exit codes: 0 after an orderly shutdown, 1 when the store or a
 * port cannot be opened, 2 for a bad flag or config value.
 */
#include <stdio.h>
#include <string.h>

#include "server/config.h"
#include "server/log.h"
#include "server/persister.h"
#include "server/server.h"

/* Says what the store's open did to rebuild its state (after a crash: how
 * much log it replayed and whether it cut a torn write), so that the
 * operator sees a recovery's cost and outcome. Backends that keep their
 * state elsewhere (postgres, remote) recover nothing: no line. */
static void log_recovery(const stock_stats *stats)
{
    if (!stats->recovered)
        return;
    char snapshot[64];
    if (stats->recovery_snapshot_loaded)
        snprintf(snapshot, sizeof snapshot, "snapshot at lsn %llu loaded",
                 (unsigned long long)stats->recovery_snapshot_lsn);
    else
        snprintf(snapshot, sizeof snapshot, "no snapshot");
    log_info("recovery: %s, %llu records replayed, %llu bytes of torn tail cut, %llu ms",
             snapshot, (unsigned long long)stats->recovery_records,
             (unsigned long long)stats->recovery_torn_bytes,
             (unsigned long long)stats->recovery_ms);
}

static int serve(const config *cfg)
{
    /* The loop submits one batch per turn (batch.c): syncing it in the loop
     * saves two thread wake-ups per batch (docs/engine.md, "Threads and
     * group commit"). */
    stock_config options = {.durability = cfg->durability, .sync_in_caller = true,
                            .log = log_library};
    stock_t *store = NULL;
    char message[STOCK_MESSAGE_MAX];
    /* A durability= in the URI wins over the flag (docs/operations.md). */
    const char *durability = strstr(cfg->store, "durability=") != NULL ? "as the store URI sets it"
                             : cfg->durability == STOCK_DURABILITY_SYNC ? "sync" : "relaxed";
    log_info("stockd %s starting: store %s, durability %s", STOCK_VERSION, cfg->store, durability);
    if (cfg->secret_in_argv != NULL)
        log_warn("--%s was given on the command line, where every local user can read it "
                 "(ps, /proc); use --%s-file PATH, the environment or a --config file of mode 600",
                 cfg->secret_in_argv, cfg->secret_in_argv);
    if (!config_bind_is_loopback(cfg->bind) && cfg->requirepass[0] == '\0')
        log_warn("--protected-mode no: listening on %s with no password, anyone who can "
                 "reach this host can change stock", cfg->bind);
    stock_code code = stock_open(cfg->store, &options, &store, message);
    if (code != STOCK_OK) {
        log_error("cannot open the store %s: %s: %s", cfg->store, stock_code_name(code),
                  message);
        return 1;
    }
    stock_stats stats;
    stock_get_stats(store, &stats);
    log_info("store opened: backend %s, %llu SKUs, %llu lines, %llu log bytes since the last snapshot",
             stock_backend_name(store), (unsigned long long)stats.skus,
             (unsigned long long)stats.lines, (unsigned long long)stats.log_bytes);
    log_recovery(&stats);
    server_persister *persister = NULL;
    if (cfg->persist_to[0] != '\0' && (persister = persister_start(cfg)) == NULL) {
        stock_close(store);
        return 1;
    }
    int exit_code = server_run(cfg, store, persister);
    persister_stop(persister);
    code = stock_close(store);
    if (code != STOCK_OK) {
        log_error("closing the store failed: %s", stock_strerror(code));
        return 1;
    }
    log_info("store closed; stockd stopped");
    return exit_code;
}

int main(int argc, char **argv)
{
    static config cfg;
    char message[CONFIG_MESSAGE_MAX];
    switch (config_from_args(&cfg, argc, argv, message, sizeof message)) {
    case CONFIG_EXIT_OK:
        return 0;
    case CONFIG_EXIT_BAD:
        fprintf(stderr, "stockd: %s\n", message);
        return 2;
    case CONFIG_RUN:
        break;
    }
    config_scrub_secrets(argc, argv);
    return serve(&cfg);
}
