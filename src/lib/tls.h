/*
 * tls.h -- what stockd's server and the remote backend share about TLS
 * (Debian's OpenSSL): turning OpenSSL's error queue into one sentence, and
 * the protocol floor both sides set.
 */
#ifndef STOCK_LIB_TLS_H
#define STOCK_LIB_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* TLS 1.2 and later: older versions have known weaknesses. */
#define TLS_VERSION_MIN TLS1_2_VERSION

/*
 * Writes the reason of the oldest error on this thread's OpenSSL error
 * queue into text (e.g. "certificate verify failed" or "no certificate
 * returned"), or fallback when the queue is empty, and empties the queue
 * so that the next failure is not blamed on this one. Never fails.
 */
void tls_error_text(char *text, size_t size, const char *fallback);

/*
 * Loads the certificate chain at cert_file and its key at key_file (PEM)
 * into context. On failure returns false with message (size bytes) as
 * "<label of the file> <path>: <OpenSSL's reason>", the labels naming
 * the files as the caller's user knows them (a flag, a URI option).
 */
bool tls_use_key_pair(SSL_CTX *context, const char *cert_label, const char *cert_file,
                      const char *key_label, const char *key_file, char *message, size_t size);

#endif /* STOCK_LIB_TLS_H */
