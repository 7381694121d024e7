/*
 * persister.c -- the persister on its own thread (persister.h). The thread
 * runs persist_run until the stop flag is set; persist_run checks the flag
 * between cycles, so a stop waits at most for one cycle (its servers'
 * timeouts bound it).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/log.h"
#include "server/persister.h"

struct server_persister {
    persister *p;
    pthread_t thread;
    atomic_bool stop;
};

/* The persister's log hook: its messages as stockd's lines. */
static void persister_log(void *user, stock_log_level level, const char *message)
{
    (void)user;
    if (level == STOCK_LOG_ERROR)
        log_error("persister: %s", message);
    else if (level == STOCK_LOG_WARNING)
        log_warn("persister: %s", message);
    else
        log_info("persister: %s", message);
}

static void *persister_main(void *arg)
{
    server_persister *sp = arg;
    const stock_log_hook log = {persister_log, NULL};
    persist_run(sp->p, &sp->stop, &log);
    return NULL;
}

server_persister *persister_start(const config *cfg)
{
    persist_options options;
    persist_options_default(&options);
    char host_pid[sizeof options.name];   /* the default name, <host>-<pid> */
    memcpy(host_pid, options.name, sizeof host_pid);
    snprintf(options.name, sizeof options.name, "stockd-%.56s", host_pid);
    options.redis_uri = cfg->store;
    options.postgres_uri = cfg->persist_to;
    server_persister *sp = calloc(1, sizeof *sp);
    char message[STOCK_MESSAGE_MAX] = "out of memory";
    if (sp != NULL)
        sp->p = persist_new(&options, message, sizeof message);
    if (sp == NULL || sp->p == NULL) {
        log_error("persister: %s", message);
        free(sp);
        return NULL;
    }
    atomic_init(&sp->stop, false);
    int rc = pthread_create(&sp->thread, NULL, persister_main, sp);
    if (rc != 0) {
        log_error("persister: cannot start its thread: error %d", rc);
        persist_free(sp->p);
        free(sp);
        return NULL;
    }
    log_info("persister %s started: the outbox of %s into PostgreSQL (--persist-to)",
             options.name, cfg->store);
    return sp;
}

void persister_stop(server_persister *sp)
{
    if (sp == NULL)
        return;
    atomic_store(&sp->stop, true);
    pthread_join(sp->thread, NULL);
    persist_free(sp->p);
    free(sp);
    log_info("persister stopped");
}

void persister_status(server_persister *sp, persist_status *status)
{
    if (sp == NULL) {
        *status = (persist_status){0};
        return;
    }
    persist_status_read(sp->p, status);
}
