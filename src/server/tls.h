/*
 * tls.h -- TLS for stockd's connections, with OpenSSL driven through memory
 * BIOs so that it never touches a socket and never blocks the loop.
 *
 * libuv owns the socket. What it reads (ciphertext) is handed to the
 * session (tls_receive), which decrypts it into plaintext the protocol
 * parsers read as from a plain connection (tls_read); replies are
 * encrypted into ciphertext that libuv writes (tls_seal). The handshake
 * runs inside those calls, one step per arrival of the client's bytes: a
 * slow or silent client costs the loop nothing but its buffers.
 *
 * Everything here runs on the loop thread.
 */
#ifndef STOCK_SERVER_TLS_H
#define STOCK_SERVER_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "lib/buf.h"
#include "server/config.h"

#define TLS_REASON_MAX 160          /* bytes of a handshake failure's reason */

/* One connection's TLS state: the session and its two memory BIOs. */
typedef struct tls_session {
    SSL *ssl;
    BIO *cipher_in;       /* ciphertext from the client, SSL reads it */
    BIO *cipher_out;      /* ciphertext for the client, SSL writes it */
} tls_session;

typedef enum tls_status {
    TLS_MORE,             /* nothing more to read until more bytes arrive */
    TLS_DATA,             /* *got bytes of plaintext were read */
    TLS_CLOSED,           /* the client ended the session (close_notify) */
    TLS_FAILED            /* the handshake or a record failed: reason says why */
} tls_status;

/*
 * Builds the server context from cfg's certificate, key, CA and
 * --tls-auth-clients; NULL (with message, size bytes) if a file cannot be
 * loaded or the key does not match the certificate.
 */
SSL_CTX *tls_context_new(const config *cfg, char *message, size_t size);

void tls_context_free(SSL_CTX *context);

/* A session for one accepted connection; false on out of memory. */
bool tls_session_init(tls_session *session, SSL_CTX *context);

void tls_session_fini(tls_session *session);

/* False if data (len > 0), the first bytes the client ever sent, cannot
 * start a TLS session: a plaintext client on a TLS port. Later bytes are
 * not judged: a record may be split anywhere across reads. */
bool tls_plausible(const tls_session *session, const char *data, size_t len);

/* Hands len bytes of ciphertext from the socket to the session. False on
 * out of memory. */
bool tls_receive(tls_session *session, const char *data, size_t len);

/*
 * Advances the handshake if it is not done, then decrypts up to cap bytes
 * of plaintext into plain. Any records it produces (handshake messages,
 * alerts) wait in the session: take them with tls_seal.
 */
tls_status tls_read(tls_session *session, char *plain, size_t cap, size_t *got,
                    char *reason, size_t reason_size);

/*
 * Once the handshake is done, encrypts all of plain into records (plain is
 * then cleared); before that, plain is kept for later. Then appends every
 * record waiting in the session to sealed. False on out of memory.
 */
bool tls_seal(tls_session *session, buf *plain, buf *sealed);

/*
 * Queues the close_notify alert that tells the client the session ends on
 * purpose (without it, OpenSSL 3 clients report an unexpected EOF), sealed
 * into sealed. True if it queued it now; false if it was already sent,
 * the handshake never finished, or there is no memory (the connection is
 * then simply closed).
 */
bool tls_goodbye(tls_session *session, buf *sealed);

/* True once the handshake is complete. */
bool tls_ready(const tls_session *session);

#endif /* STOCK_SERVER_TLS_H */
