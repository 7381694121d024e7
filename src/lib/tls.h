/*
 * tls.h -- what stockd's server and the remote backend share about TLS
 * (Debian's OpenSSL): turning OpenSSL's error queue into one sentence, and
 * the protocol floor both sides set.
 */
#ifndef STOCK_LIB_TLS_H
#define STOCK_LIB_TLS_H

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

#endif /* STOCK_LIB_TLS_H */
