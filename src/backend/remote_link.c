/*
 * remote_link.c -- the remote backend's socket, with TLS when asked (see
 * remote_link.h). The socket is non-blocking and every wait is a poll()
 * bounded by the link's timeout.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "backend/remote_link.h"
#include "lib/message.h"
#include "lib/tls.h"

#define REMOTE_LINK_READ_BYTES (16 * 1024)

/* hiredis's own reply constructors, with createArray bounded. */
static redisReplyObjectFunctions bounded_functions;
static void *(*create_array)(const redisReadTask *, int);
static pthread_once_t bounded_once = PTHREAD_ONCE_INIT;

static void *create_array_bounded(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > REMOTE_REPLY_ELEMENTS_MAX) {
        *(bool *)task->privdata = true;
        return NULL;
    }
    return create_array(task, elements);
}

/* hiredis keeps its default constructors private; a reader made the
 * ordinary way points at them. */
static void bounded_init(void)
{
    redisReader *plain = redisReaderCreate();
    if (plain == NULL)
        return;
    bounded_functions = *plain->fn;
    create_array = plain->fn->createArray;
    bounded_functions.createArray = create_array_bounded;
    redisReaderFree(plain);
}

redisReader *remote_reader_create(bool *oversize)
{
    pthread_once(&bounded_once, bounded_init);
    if (create_array == NULL)
        return NULL;
    redisReader *reader = redisReaderCreateWithFunctions(&bounded_functions);
    if (reader != NULL)
        reader->privdata = oversize;
    return reader;
}

void remote_link_init(remote_link *link)
{
    memset(link, 0, sizeof *link);
    link->fd = -1;
}

static bool fail(remote_link *link, const char *what, const char *why)
{
    message_set(link->error, sizeof link->error, "%s: %s", what, why);
    return false;
}

/* Waits until fd is ready for events; false (link->error) on timeout. */
static bool wait_for(remote_link *link, short events, int timeout_ms)
{
    struct pollfd probe = {.fd = link->fd, .events = events};
    int ready;
    do
        ready = poll(&probe, 1, timeout_ms);
    while (ready < 0 && errno == EINTR);
    if (ready == 0)
        return fail(link, "timed out", events & POLLOUT ? "the server takes no data"
                                                        : "no reply from the server");
    if (ready < 0)
        return fail(link, "poll", strerror(errno));
    return true;
}

/* A non-blocking connect to one address, waited for. */
static bool connect_to(remote_link *link, const struct addrinfo *address, int timeout_ms)
{
    link->fd = socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      address->ai_protocol);
    if (link->fd < 0)
        return fail(link, "socket", strerror(errno));
    if (connect(link->fd, address->ai_addr, address->ai_addrlen) != 0 && errno != EINPROGRESS)
        return fail(link, "connect", strerror(errno));
    if (!wait_for(link, POLLOUT, timeout_ms))
        return false;
    int error = 0;
    socklen_t len = sizeof error;
    getsockopt(link->fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0)
        return fail(link, "connect", strerror(error));
    int on = 1;
    setsockopt(link->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(link->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    return true;
}

/* Waits as an SSL call that returned rc asks; false if it failed instead. */
static bool tls_wait(remote_link *link, int rc, const char *what)
{
    int error = SSL_get_error(link->ssl, rc);
    if (error == SSL_ERROR_WANT_READ)
        return wait_for(link, POLLIN, link->timeout_ms);
    if (error == SSL_ERROR_WANT_WRITE)
        return wait_for(link, POLLOUT, link->timeout_ms);
    char reason[REMOTE_LINK_ERROR_MAX];
    if (error == SSL_ERROR_ZERO_RETURN)
        snprintf(reason, sizeof reason, "the server closed the connection");
    else
        tls_error_text(reason, sizeof reason, error == SSL_ERROR_SYSCALL && errno != 0
                       ? strerror(errno) : "the server closed the connection");
    long verify = SSL_get_verify_result(link->ssl);
    if (verify != X509_V_OK && strstr(what, "handshake") != NULL) {
        char both[REMOTE_LINK_ERROR_MAX];
        snprintf(both, sizeof both, "%.60s (%.80s)", reason, X509_verify_cert_error_string(verify));
        return fail(link, what, both);
    }
    return fail(link, what, reason);
}

/* The TLS handshake, checking the certificate names host. */
static bool handshake(remote_link *link, SSL_CTX *context, const char *host)
{
    link->ssl = SSL_new(context);
    if (link->ssl == NULL || SSL_set_fd(link->ssl, link->fd) != 1)
        return fail(link, "TLS", "out of memory");
    X509_VERIFY_PARAM *param = SSL_get0_param(link->ssl);
    unsigned char address[sizeof(struct in6_addr)];
    bool is_ip = inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;
    if (is_ip)
        X509_VERIFY_PARAM_set1_ip_asc(param, host);
    else {
        X509_VERIFY_PARAM_set1_host(param, host, 0);
        SSL_set_tlsext_host_name(link->ssl, host);
    }
    for (;;) {
        int rc = SSL_connect(link->ssl);
        if (rc == 1)
            return true;
        if (!tls_wait(link, rc, "TLS handshake"))
            return false;
    }
}

bool remote_link_open(remote_link *link, const char *host, int port, SSL_CTX *context,
                      int connect_timeout_ms, int timeout_ms)
{
    assert(link->fd < 0 && timeout_ms > 0);
    link->timeout_ms = timeout_ms;
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0)
        return fail(link, host, gai_strerror(rc));
    bool ok = false;
    for (const struct addrinfo *a = found; a != NULL && !ok; a = a->ai_next) {
        if (link->fd >= 0)
            close(link->fd);
        link->fd = -1;
        ok = connect_to(link, a, connect_timeout_ms);
    }
    freeaddrinfo(found);
    link->reply_oversize = false;
    link->reader = ok ? remote_reader_create(&link->reply_oversize) : NULL;
    if (ok && link->reader == NULL)
        ok = fail(link, "reader", "out of memory");
    if (ok && context != NULL)
        ok = handshake(link, context, host);
    if (!ok) {
        char error[REMOTE_LINK_ERROR_MAX];
        memcpy(error, link->error, sizeof error);
        remote_link_close(link);
        memcpy(link->error, error, sizeof error);
    }
    return ok;
}

bool remote_link_send(remote_link *link, const char *data, size_t len)
{
    assert(link->fd >= 0);
    while (len > 0) {
        ssize_t n;
        if (link->ssl != NULL) {
            int rc = SSL_write(link->ssl, data, len > INT32_MAX ? INT32_MAX : (int)len);
            if (rc <= 0) {
                if (!tls_wait(link, rc, "TLS write"))
                    return false;
                continue;
            }
            n = rc;
        } else {
            n = send(link->fd, data, len, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (!wait_for(link, POLLOUT, link->timeout_ms))
                    return false;
                continue;
            }
            if (n < 0)
                return fail(link, "write", strerror(errno));
        }
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads what the socket has into the reader; false (link->error) if closed. */
static bool read_some(remote_link *link)
{
    char data[REMOTE_LINK_READ_BYTES];
    for (;;) {
        ssize_t n;
        if (link->ssl != NULL) {
            int rc = SSL_read(link->ssl, data, sizeof data);
            if (rc <= 0) {
                if (!tls_wait(link, rc, "TLS read"))
                    return false;
                continue;
            }
            n = rc;
        } else {
            n = recv(link->fd, data, sizeof data, 0);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (!wait_for(link, POLLIN, link->timeout_ms))
                    return false;
                continue;
            }
            if (n < 0)
                return fail(link, "read", strerror(errno));
            if (n == 0)
                return fail(link, "read", "the server closed the connection");
        }
        if (redisReaderFeed(link->reader, data, (size_t)n) != REDIS_OK)
            return fail(link, "reader", "out of memory");
        if (link->reader->len - link->reader->pos > REMOTE_REPLY_BYTES_MAX) {
            message_set(link->error, sizeof link->error,
                        "protocol error: a reply of over %u MiB: the server is not a "
                        "stockd", REMOTE_REPLY_BYTES_MAX >> 20);
            return false;
        }
        return true;
    }
}

bool remote_link_reply(remote_link *link, redisReply **reply)
{
    assert(link->fd >= 0 && link->reader != NULL);
    *reply = NULL;
    for (;;) {
        void *parsed = NULL;
        if (redisReaderGetReply(link->reader, &parsed) != REDIS_OK) {
            if (!link->reply_oversize)
                return fail(link, "protocol error", link->reader->errstr);
            message_set(link->error, sizeof link->error,
                        "protocol error: an array of over %d elements: the server is "
                        "not a stockd", REMOTE_REPLY_ELEMENTS_MAX);
            return false;
        }
        if (parsed != NULL) {
            *reply = parsed;
            return true;
        }
        if (!read_some(link))
            return false;
    }
}

bool remote_link_idle_ok(remote_link *link)
{
    assert(link->fd >= 0);
    struct pollfd probe = {.fd = link->fd, .events = POLLIN};
    if (poll(&probe, 1, 0) == 0)
        return true;
    if (link->ssl == NULL)
        return false;   /* EOF, or bytes no request asked for */
    /* TLS 1.3 servers send session tickets after the handshake: reading
     * them leaves nothing to read on a healthy link. */
    char byte;
    int rc = SSL_peek(link->ssl, &byte, 1);
    bool ok = rc <= 0 && SSL_get_error(link->ssl, rc) == SSL_ERROR_WANT_READ;
    ERR_clear_error();
    return ok;
}

void remote_link_close(remote_link *link)
{
    if (link->ssl != NULL)
        SSL_free(link->ssl);
    if (link->fd >= 0)
        close(link->fd);
    if (link->reader != NULL)
        redisReaderFree(link->reader);
    remote_link_init(link);
}

SSL_CTX *remote_link_tls_context(const char *ca_file, const char *cert_file,
                                 const char *key_file, char *message, size_t size)
{
    char reason[REMOTE_LINK_ERROR_MAX];
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (context == NULL) {
        message_set(message, size, "cannot create a TLS context: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(context, TLS_VERSION_MIN);
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    if ((ca_file != NULL ? SSL_CTX_load_verify_locations(context, ca_file, NULL)
                         : SSL_CTX_set_default_verify_paths(context)) != 1) {
        tls_error_text(reason, sizeof reason, "cannot be loaded");
        message_set(message, size, "ca %s: %s", ca_file != NULL ? ca_file : "(the system's)", reason);
        SSL_CTX_free(context);
        return NULL;
    }
    if (cert_file != NULL &&
        !tls_use_key_pair(context, "cert", cert_file, "key", key_file, message, size)) {
        SSL_CTX_free(context);
        return NULL;
    }
    return context;
}
