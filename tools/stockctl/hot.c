/*
 * hot.c -- `stockctl hot`: the hot SKUs of a running stockd (its GET /v1/hot,
 * docs/operations.md, "Hot SKUs"): the SKUs with the most operations and
 * the most refusals over the server's sliding window. A plain HTTP/1.1 GET
 * on a blocking socket, since the rankings are the server's, not the
 * store's: no store is opened.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/buf.h"
#include "stockctl.h"

#define HOT_REPLY_MAX (1u << 20)   /* bytes of the whole reply: ten SKUs per ranking fit many times */
#define HOT_HOST_MAX 256

static int hot_failed(const ctl_args *args, const char *format, const char *detail)
{
    char text[STOCK_MESSAGE_MAX];
    snprintf(text, sizeof text, format, detail);
    return ctl_print_failure(args, STOCK_UNAVAILABLE, text);
}

/* Splits "http://host:port" into host and port; false if it is not one. */
static bool parse_http_url(const char *url, char *host, char *port)
{
    const char *scheme = "http://";
    if (strncmp(url, scheme, strlen(scheme)) != 0)
        return false;
    const char *start = url + strlen(scheme);
    size_t length = strcspn(start, "/");
    if (start[length] != '\0' && strcmp(start + length, "/") != 0)
        return false;
    const char *colon = memchr(start, ':', length);
    size_t host_len = colon != NULL ? (size_t)(colon - start) : length;
    size_t port_len = colon != NULL ? length - host_len - 1 : 0;
    if (host_len == 0 || host_len >= HOT_HOST_MAX || (colon != NULL && (port_len == 0 || port_len > 5)))
        return false;
    memcpy(host, start, host_len);
    host[host_len] = '\0';
    if (colon == NULL) {
        strcpy(port, "80");
        return true;
    }
    memcpy(port, colon + 1, port_len);
    port[port_len] = '\0';
    return strspn(port, "0123456789") == port_len;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    if (getaddrinfo(host, port, &hints, &found) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *at = found; at != NULL && fd < 0; at = at->ai_next) {
        fd = socket(at->ai_family, at->ai_socktype | SOCK_CLOEXEC, at->ai_protocol);
        if (fd >= 0 && connect(fd, at->ai_addr, at->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(found);
    return fd;
}

/* Sends the GET and reads the reply until the server closes; false on an
 * I/O failure or a reply past HOT_REPLY_MAX. */
static bool fetch(int fd, const char *host, const char *token, buf *reply)
{
    char request[1024];
    int length = snprintf(request, sizeof request,
                          "GET /v1/hot HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s%s%s\r\n",
                          host, token ? "Authorization: Bearer " : "", token ? token : "",
                          token ? "\r\n" : "");
    if (length < 0 || (size_t)length >= sizeof request ||
        send(fd, request, (size_t)length, MSG_NOSIGNAL) != length)
        return false;
    for (;;) {
        if (!buf_reserve(reply, 4096) || reply->len > HOT_REPLY_MAX)
            return false;
        ssize_t got = recv(fd, reply->data + reply->len, reply->cap - reply->len - 1, 0);
        if (got < 0)
            return false;
        if (got == 0)
            break;
        reply->len += (size_t)got;
    }
    reply->data[reply->len] = '\0';
    return true;
}

static void print_ranking(json_t *body, const char *name)
{
    json_t *list = json_object_get(body, name);
    printf("by %s:\n", name);
    if (json_array_size(list) == 0)
        printf("  (none)\n");
    size_t index;
    json_t *item;
    json_array_foreach(list, index, item) {
        printf("  %2zu  %-32s %10lld", index + 1, json_string_value(json_object_get(item, "sku")),
               (long long)json_integer_value(json_object_get(item, "count")));
        long long error = (long long)json_integer_value(json_object_get(item, "error"));
        if (error > 0)
            printf("  (at most %lld fewer)", error);
        printf("\n");
    }
}

/* Prints the reply's body: as is with --json, else as two rankings. */
static int print_hot(const ctl_args *args, const char *reply)
{
    const char *body_text = strstr(reply, "\r\n\r\n");
    if (strncmp(reply, "HTTP/1.1 200 ", 13) != 0 || body_text == NULL)
        return hot_failed(args, "hot: the server answered '%.60s'", reply);
    json_error_t error;
    json_t *body = json_loads(body_text + 4, 0, &error);
    if (body == NULL || !json_is_integer(json_object_get(body, "window_seconds"))) {
        json_decref(body);
        return hot_failed(args, "hot: the reply is not the hot SKUs: %s", error.text);
    }
    if (args->json) {
        json_dumpf(body, stdout, JSON_COMPACT);
        printf("\n");
    } else {
        printf("hot SKUs over the last %lld s (rank, sku, operations or refusals)\n",
               (long long)json_integer_value(json_object_get(body, "window_seconds")));
        print_ranking(body, "operations");
        print_ranking(body, "refusals");
    }
    json_decref(body);
    return fflush(stdout) == 0 && !ferror(stdout) ? CTL_EXIT_OK : CTL_EXIT_INTERNAL;
}

int ctl_hot(const ctl_args *args)
{
    char host[HOT_HOST_MAX], port[6];
    if (!parse_http_url(args->http, host, port)) {
        ctl_usage_error("hot: --http must be http://HOST[:PORT], not '%s'", args->http);
        return CTL_EXIT_USAGE;
    }
    int fd = connect_to(host, port);
    if (fd < 0)
        return hot_failed(args, "hot: cannot connect to %s", args->http);
    buf reply = {0};
    bool fetched = fetch(fd, host, getenv("STOCKCTL_TOKEN"), &reply);
    close(fd);
    int code = fetched ? print_hot(args, (const char *)reply.data)
                       : hot_failed(args, "hot: no whole reply from %s", args->http);
    buf_free(&reply);
    return code;
}
