/*
 * spawn.h -- the stockd that stockbench's crash mode starts, SIGKILLs and
 * restarts itself (--kill-every): a child process serving RESP on
 * 127.0.0.1:port over the embedded engine in a data folder, with HTTP off.
 */
#ifndef STOCKBENCH_SPAWN_H
#define STOCKBENCH_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SPAWN_READY_TIMEOUT_MS 20000    /* start-up, recovery included */
#define SPAWN_STOP_TIMEOUT_MS 20000     /* SIGTERM before SIGKILL */

typedef struct spawn {
    const char *path;       /* the stockd binary (borrowed) */
    const char *data;       /* its data folder (borrowed) */
    const char *log_path;   /* where its output goes (borrowed) */
    int port;               /* RESP port on 127.0.0.1 */
    pid_t pid;              /* 0 while not running */
} spawn;

/* Starts the server and waits until its port accepts connections. Returns
 * 0, or -1 with a sentence in error (it did not start, or died, or did not
 * listen within SPAWN_READY_TIMEOUT_MS). */
int spawn_start(spawn *server, char *error, size_t error_size);

/* SIGKILLs the running server and reaps it. */
void spawn_kill(spawn *server);

/* Asks the server to stop (SIGTERM), waits up to SPAWN_STOP_TIMEOUT_MS,
 * then SIGKILLs it. Returns true if it exited 0 on SIGTERM. No-op (true)
 * when it is not running. */
bool spawn_stop(spawn *server);

#endif /* STOCKBENCH_SPAWN_H */
