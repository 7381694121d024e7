/*
 * http.c -- the stockctl commands that ask a running stockd's HTTP API,
 * because what they show or set is the server's, not the store's, so no
 * store is opened: `hot` (GET /v1/hot, docs/operations.md, "Hot SKUs": the
 * SKUs with the most operations and refusals over the server's sliding
 * window) and `threshold` (GET or PUT /v1/skus/{sku}/threshold,
 * docs/events.md). One plain HTTP/1.1 request on a blocking socket each.
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

#define HTTP_REPLY_MAX (1u << 20)   /* bytes of a whole reply: ten SKUs per ranking fit many times */
#define HTTP_HOST_MAX 256
#define HTTP_REQUEST_MAX 1024

static int http_failed(const ctl_args *args, const char *format, const char *detail)
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
    if (host_len == 0 || host_len >= HTTP_HOST_MAX || (colon != NULL && (port_len == 0 || port_len > 5)))
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

/* Sends the request and reads the reply until the server closes; false
 * on an I/O failure or a reply past HTTP_REPLY_MAX. */
static bool exchange(int fd, const char *host, const char *method, const char *target,
                     const char *body, buf *reply)
{
    const char *token = getenv("STOCKCTL_TOKEN");
    char request[HTTP_REQUEST_MAX];
    int length = snprintf(request, sizeof request,
                          "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                          "Content-Type: application/json\r\nContent-Length: %zu\r\n%s%s%s\r\n%s",
                          method, target, host, strlen(body), token ? "Authorization: Bearer " : "",
                          token ? token : "", token ? "\r\n" : "", body);
    if (length < 0 || (size_t)length >= sizeof request ||
        send(fd, request, (size_t)length, MSG_NOSIGNAL) != length)
        return false;
    for (;;) {
        if (!buf_reserve(reply, 4096) || reply->len > HTTP_REPLY_MAX)
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

/* Sends one request to --http and parses the reply: the JSON body and
 * its status. Returns -1 then, else the exit code of a failure it printed. */
static int http_call(const ctl_args *args, const char *method, const char *target,
                     const char *body, int *status, json_t **reply_body)
{
    char host[HTTP_HOST_MAX], port[6];
    if (!parse_http_url(args->http, host, port)) {
        ctl_usage_error("--http must be http://HOST[:PORT], not '%s'", args->http);
        return CTL_EXIT_USAGE;
    }
    int fd = connect_to(host, port);
    if (fd < 0)
        return http_failed(args, "cannot connect to %s", args->http);
    buf reply = {0};
    bool exchanged = exchange(fd, host, method, target, body, &reply);
    close(fd);
    const char *text = exchanged ? (const char *)reply.data : NULL;
    const char *body_text = text != NULL ? strstr(text, "\r\n\r\n") : NULL;
    json_error_t error;
    *reply_body = body_text != NULL && sscanf(text, "HTTP/1.1 %d ", status) == 1
                      ? json_loads(body_text + 4, 0, &error) : NULL;
    int code = *reply_body != NULL ? -1
               : http_failed(args, "no JSON reply from %s", args->http);
    buf_free(&reply);
    return code;
}

/* A reply other than 200: its problem details, as the failure. */
static int http_refused(const ctl_args *args, int status, json_t *body)
{
    const char *word = json_string_value(json_object_get(body, "code"));
    const char *detail = json_string_value(json_object_get(body, "detail"));
    char text[STOCK_MESSAGE_MAX];
    snprintf(text, sizeof text, "HTTP %d %s", status, detail != NULL ? detail : "");
    stock_code code = STOCK_UNAVAILABLE;
    for (int i = 0; word != NULL && i <= STOCK_CLOSED; i++)
        if (strcmp(word, stock_code_name((stock_code)i)) == 0)
            code = (stock_code)i;
    return ctl_print_failure(args, code, text);
}

static int print_json(json_t *body)
{
    json_dumpf(body, stdout, JSON_COMPACT);
    printf("\n");
    return CTL_EXIT_OK;
}

int ctl_hot(const ctl_args *args)
{
    int status = 0;
    json_t *body = NULL;
    int code = http_call(args, "GET", "/v1/hot", "", &status, &body);
    if (code >= 0)
        return code;
    if (status != 200 || !json_is_integer(json_object_get(body, "window_seconds")))
        code = status != 200 ? http_refused(args, status, body)
                             : http_failed(args, "the reply of %s is not the hot SKUs", args->http);
    else if (args->json)
        code = print_json(body);
    else {
        printf("hot SKUs over the last %lld s (rank, sku, operations or refusals)\n",
               (long long)json_integer_value(json_object_get(body, "window_seconds")));
        print_ranking(body, "operations");
        print_ranking(body, "refusals");
        code = CTL_EXIT_OK;
    }
    json_decref(body);
    return code;
}

int ctl_threshold(const ctl_args *args)
{
    const char *sku = args->positional[0];
    if (!stock_id_valid(stock_id_from_cstr(sku))) {
        ctl_usage_error("threshold: SKU must be 1..%d bytes of printable ASCII without space",
                        STOCK_ID_MAX);
        return CTL_EXIT_USAGE;
    }
    int64_t value = 0;
    bool set = args->positional_count == 2;
    if (set && (!ctl_parse_int64(args->positional[1], "N", &value) || value < 0)) {
        if (value < 0)
            ctl_usage_error("threshold: N must be 0..2^63-1 (0 removes it)");
        return CTL_EXIT_USAGE;
    }
    char target[64 + 3 * STOCK_ID_MAX], body[64];
    size_t at = (size_t)snprintf(target, sizeof target, "/v1/skus/");
    for (const char *c = sku; *c != '\0'; c++)   /* every byte escaped: ids are ASCII */
        at += (size_t)snprintf(target + at, sizeof target - at, "%%%02X", (unsigned char)*c);
    snprintf(target + at, sizeof target - at, "/threshold");
    snprintf(body, sizeof body, set ? "{\"threshold\":%lld}" : "", (long long)value);
    int status = 0;
    json_t *reply = NULL;
    int code = http_call(args, set ? "PUT" : "GET", target, body, &status, &reply);
    if (code >= 0)
        return code;
    if (status != 200)
        code = http_refused(args, status, reply);
    else if (args->json)
        code = print_json(reply);
    else {
        long long below = (long long)json_integer_value(json_object_get(reply, "threshold"));
        if (below > 0)
            printf("threshold sku %s: %lld\n", sku, below);
        else
            printf("threshold sku %s: none\n", sku);
        code = CTL_EXIT_OK;
    }
    json_decref(reply);
    return code;
}
