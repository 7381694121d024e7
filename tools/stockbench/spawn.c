/*
 * spawn.c -- start, kill and stop the stockd of crash mode (see spawn.h).
 */
#include "spawn.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 20
#define PORT_TEXT_MAX 16

static void sleep_ms(long ms)
{
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

/* True once 127.0.0.1:port accepts a TCP connection. */
static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool open = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
    close(fd);
    return open;
}

/* In the child: output to the log, then become stockd. Never returns. */
static void exec_server(const spawn *server)
{
    int log = open(server->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        close(log);
    }
    char port[PORT_TEXT_MAX];
    snprintf(port, sizeof port, "%d", server->port);
    execl(server->path, server->path, "--store", server->data, "--port", port,
          "--http-port", "0", "--bind", "127.0.0.1", (char *)NULL);
    fprintf(stderr, "stockbench: cannot run %s: %s\n", server->path,
            strerror(errno));
    _exit(127);
}

int spawn_start(spawn *server, char *error, size_t error_size)
{
    assert(server != NULL && server->path != NULL && server->data != NULL);
    assert(server->pid == 0 && server->port > 0 && server->port < 65536);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(error, error_size, "cannot fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0)
        exec_server(server);
    server->pid = pid;
    for (long waited = 0; waited < SPAWN_READY_TIMEOUT_MS; waited += POLL_MS) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            server->pid = 0;
            snprintf(error, error_size, "%s exited during start-up (status %d); "
                     "see %s", server->path, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                     server->log_path);
            return -1;
        }
        if (port_open(server->port))
            return 0;
        sleep_ms(POLL_MS);
    }
    spawn_kill(server);
    snprintf(error, error_size, "%s did not listen on 127.0.0.1:%d within %d ms; "
             "see %s", server->path, server->port, SPAWN_READY_TIMEOUT_MS,
             server->log_path);
    return -1;
}

void spawn_kill(spawn *server)
{
    assert(server != NULL);
    if (server->pid == 0)
        return;
    kill(server->pid, SIGKILL);
    while (waitpid(server->pid, NULL, 0) < 0 && errno == EINTR)
        continue;
    server->pid = 0;
}

bool spawn_stop(spawn *server)
{
    assert(server != NULL);
    if (server->pid == 0)
        return true;
    kill(server->pid, SIGTERM);
    for (long waited = 0; waited < SPAWN_STOP_TIMEOUT_MS; waited += POLL_MS) {
        int status;
        if (waitpid(server->pid, &status, WNOHANG) == server->pid) {
            server->pid = 0;
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        sleep_ms(POLL_MS);
    }
    spawn_kill(server);
    return false;
}
