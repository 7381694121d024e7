/*
 * remote_link.h -- the remote backend's connection to a stockd: a TCP
 * socket, TLS on it for stockds:// (Debian's OpenSSL), and hiredis's reply
 * reader. The connection thread alone uses a link; every call waits at
 * most the link's timeout, so a silent server costs a timeout, never a
 * hang.
 *
 * hiredis 0.14 (Debian 12) has no TLS, so the link does its own I/O and
 * borrows only hiredis's command formatting and reply parsing.
 */
#ifndef STOCK_REMOTE_LINK_H
#define STOCK_REMOTE_LINK_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include "stock.h"

#define REMOTE_LINK_ERROR_MAX 160   /* bytes of a link's last error */
/* The longest array a stockd sends is a page of a listing. */
#define REMOTE_REPLY_ELEMENTS_MAX STOCK_LIST_MAX
/* Bytes of replies the link holds before they parse: a page of a listing is
 * a few hundred kilobytes, so more is a peer that is not a stockd. */
#define REMOTE_REPLY_BYTES_MAX (16u << 20)

typedef struct remote_link {
    int fd;                 /* -1 when closed */
    SSL *ssl;               /* NULL on a plaintext link */
    redisReader *reader;
    bool reply_oversize;    /* the reader met an array over the limit */
    int timeout_ms;         /* per wait for the socket */
    char error[REMOTE_LINK_ERROR_MAX];   /* why the last call failed */
} remote_link;

/*
 * hiredis's reply reader, bounded: an array of more than
 * REMOTE_REPLY_ELEMENTS_MAX elements stops it with an error and sets
 * *oversize (borrowed, must outlive the reader), where hiredis alone would
 * allocate whatever count the peer announces. Any thread. NULL when out of
 * memory; free with redisReaderFree.
 */
redisReader *remote_reader_create(bool *oversize);

/* A closed link (fd -1), ready for remote_link_open. */
void remote_link_init(remote_link *link);

/*
 * Connects to host:port within connect_timeout_ms and, with context (else
 * NULL: plaintext), completes a TLS handshake that verifies the server's
 * certificate for host (a name or an IP address). Later calls wait at most
 * timeout_ms each. False with link->error set; the link is then closed.
 */
bool remote_link_open(remote_link *link, const char *host, int port, SSL_CTX *context,
                      int connect_timeout_ms, int timeout_ms);

/* Sends len bytes, all of them. False with link->error set. */
bool remote_link_send(remote_link *link, const char *data, size_t len);

/* Reads the next reply (the caller frees it with freeReplyObject). False
 * with link->error set when the server closed, timed out or sent garbage. */
bool remote_link_reply(remote_link *link, redisReply **reply);

/* True if an idle link still looks usable: the server sent nothing (TLS
 * housekeeping such as session tickets aside) and did not close it. */
bool remote_link_idle_ok(remote_link *link);

/* Closes the link (and its TLS session); a closed link stays closed. */
void remote_link_close(remote_link *link);

/*
 * A client TLS context that trusts ca_file (NULL: the system's CAs) and,
 * with cert_file and key_file (both or neither), shows that certificate to
 * servers asking for one (mutual TLS). NULL with message set.
 */
SSL_CTX *remote_link_tls_context(const char *ca_file, const char *cert_file,
                                 const char *key_file, char *message, size_t size);

#endif /* STOCK_REMOTE_LINK_H */
