/*
 * redis_conn.c -- opening a connection for the redis backend: connect with a
 * timeout, AUTH, check the server is Redis 7 or newer (Functions), check or
 * write the key layout version, and load the function library
 * (redis_functions.lua, embedded by the build as a byte list).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/redis.h"

const char rd_functions_source[] = {
#include "backend/redis_functions.inc"
    , 0
};

static stock_code fail(char *message, size_t size, stock_code code, const char *what,
                       const char *detail)
{
    if (message != NULL && size > 0)
        snprintf(message, size, "redis: %s%s%.*s", what, detail[0] != '\0' ? ": " : "",
                 (int)strcspn(detail, "\r\n"), detail);
    return code;
}

/* Runs a command given as argv; the reply, or NULL when the link failed. */
static redisReply *run(redisContext *conn, int count, const char **argv)
{
    return redisCommandArgv(conn, count, argv, NULL);
}

static stock_code authenticate(redisContext *conn, const rd_options *options, char *message,
                               size_t size)
{
    if (options->password[0] == '\0')
        return STOCK_OK;
    const char *argv[] = {"AUTH", options->password};
    redisReply *reply = run(conn, 2, argv);
    stock_code code = STOCK_OK;
    if (reply == NULL)
        code = fail(message, size, STOCK_UNAVAILABLE, "the connection failed during AUTH",
                    conn->errstr);
    else if (reply->type == REDIS_REPLY_ERROR)
        code = fail(message, size, STOCK_INVALID, "the server refused the password",
                    reply->str);
    freeReplyObject(reply);
    return code;
}

/* Reads redis_version from INFO server; Redis 7 brought Functions. */
static stock_code check_version(redisContext *conn, char *message, size_t size)
{
    const char *argv[] = {"INFO", "server"};
    redisReply *reply = run(conn, 2, argv);
    if (reply == NULL)
        return fail(message, size, STOCK_UNAVAILABLE, "the connection failed", conn->errstr);
    stock_code code = STOCK_OK;
    const char *version = reply->type == REDIS_REPLY_STRING
                              ? strstr(reply->str, "redis_version:") : NULL;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOAUTH", 6) == 0) {
        code = fail(message, size, STOCK_INVALID, "the server wants a password "
                    "(redis://:PASSWORD@host:port or password=)", reply->str);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        code = fail(message, size, STOCK_IO, "INFO server failed", reply->str);
    } else if (version == NULL) {
        code = fail(message, size, STOCK_UNSUPPORTED, "the server does not say its "
                    "redis_version; Redis 7 or newer is needed", "");
    } else if (atoi(version + strlen("redis_version:")) < RD_REDIS_MAJOR_MIN) {
        char found[32];
        snprintf(found, sizeof found, "%.*s", (int)strcspn(version, "\r\n"), version);
        code = fail(message, size, STOCK_UNSUPPORTED, "Redis 7 or newer is needed "
                    "(Functions), the server has", found);
    }
    freeReplyObject(reply);
    return code;
}

/* Runs a command and fails with the server's words unless the reply is of
 * the wanted type (-1: any but an error). *out receives the reply. */
static stock_code run_checked(redisContext *conn, int count, const char **argv, int type,
                              const char *what, redisReply **out, char *message, size_t size)
{
    redisReply *reply = run(conn, count, argv);
    *out = reply;
    if (reply == NULL)
        return fail(message, size, STOCK_UNAVAILABLE, "the connection failed", conn->errstr);
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "OOM", 3) == 0)
        return fail(message, size, STOCK_IO, "the server is out of memory (maxmemory)",
                    reply->str);
    if (reply->type == REDIS_REPLY_ERROR || (type >= 0 && reply->type != type))
        return fail(message, size, STOCK_IO, what,
                    reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    return STOCK_OK;
}

/* Checks the layout version of an existing store, or writes it for a new
 * one (a server that is full can still open a store it already holds). */
static stock_code check_layout(redisContext *conn, const rd_options *options, char *message,
                               size_t size)
{
    char key[RD_PREFIX_MAX + 32];
    snprintf(key, sizeof key, "%sstock:layout", options->prefix);
    const char *get[] = {"GET", key};
    redisReply *reply = NULL;
    stock_code code = run_checked(conn, 2, get, -1, "cannot read the layout version", &reply,
                                  message, size);
    if (code == STOCK_OK && reply->type == REDIS_REPLY_NIL) {
        freeReplyObject(reply);
        const char *set[] = {"SET", key, RD_LAYOUT_VERSION, "NX", "GET"};
        code = run_checked(conn, 5, set, -1, "cannot write the layout version", &reply,
                           message, size);
    }
    if (code == STOCK_OK && reply->type == REDIS_REPLY_STRING &&
        strcmp(reply->str, RD_LAYOUT_VERSION) != 0) {
        char what[STOCK_MESSAGE_MAX];
        snprintf(what, sizeof what, "key %s holds layout version '%.20s', this library "
                 "reads version " RD_LAYOUT_VERSION " only; refusing to open", key, reply->str);
        code = fail(message, size, STOCK_CORRUPT, what, "");
    }
    freeReplyObject(reply);
    return code;
}

/* Loads the library unless the server holds this very code already. */
static stock_code load_functions(redisContext *conn, char *message, size_t size)
{
    const char *list[] = {"FUNCTION", "LIST", "LIBRARYNAME", RD_LIBRARY, "WITHCODE"};
    redisReply *reply = NULL;
    stock_code code = run_checked(conn, 5, list, REDIS_REPLY_ARRAY, "FUNCTION LIST failed",
                                  &reply, message, size);
    bool loaded = false;
    for (size_t i = 0; code == STOCK_OK && i < reply->elements; i++) {
        const redisReply *library = reply->element[i];
        for (size_t k = 0; library->type == REDIS_REPLY_ARRAY && k + 1 < library->elements; k++)
            if (library->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(library->element[k]->str, "library_code") == 0 &&
                library->element[k + 1]->type == REDIS_REPLY_STRING)
                loaded = strcmp(library->element[k + 1]->str, rd_functions_source) == 0;
    }
    freeReplyObject(reply);
    if (code != STOCK_OK || loaded)
        return code;
    const char *load[] = {"FUNCTION", "LOAD", "REPLACE", rd_functions_source};
    code = run_checked(conn, 4, load, -1, "FUNCTION LOAD of the stockd library failed", &reply,
                       message, size);
    freeReplyObject(reply);
    return code;
}

stock_code rd_connect(const rd_options *options, redisContext **out, char *message,
                      size_t size)
{
    *out = NULL;
    struct timeval timeout = {options->timeout_ms / 1000, (options->timeout_ms % 1000) * 1000};
    redisContext *conn = redisConnectWithTimeout(options->host, options->port, timeout);
    if (conn == NULL)
        return fail(message, size, STOCK_NOMEM, "cannot allocate a connection", "");
    if (conn->err != 0) {
        char what[RD_HOST_MAX + 64];
        snprintf(what, sizeof what, "cannot connect to %s:%d", options->host, options->port);
        stock_code code = fail(message, size, STOCK_UNAVAILABLE, what, conn->errstr);
        redisFree(conn);
        return code;
    }
    stock_code code = redisSetTimeout(conn, timeout) == REDIS_OK
                          ? STOCK_OK
                          : fail(message, size, STOCK_IO, "cannot set the timeout", conn->errstr);
    if (code == STOCK_OK)
        code = authenticate(conn, options, message, size);
    if (code == STOCK_OK)
        code = check_version(conn, message, size);
    if (code == STOCK_OK)
        code = check_layout(conn, options, message, size);
    if (code == STOCK_OK)
        code = load_functions(conn, message, size);
    if (code != STOCK_OK) {
        redisFree(conn);
        return code;
    }
    *out = conn;
    return STOCK_OK;
}
