/*
 * tls.c -- OpenSSL's errors as one sentence (see tls.h).
 */
#include <assert.h>
#include <stdio.h>

#include <openssl/err.h>

#include "lib/message.h"
#include "lib/tls.h"

void tls_error_text(char *text, size_t size, const char *fallback)
{
    assert(text != NULL && size > 0 && fallback != NULL);
    unsigned long error = ERR_get_error();
    const char *reason = error != 0 ? ERR_reason_error_string(error) : NULL;
    snprintf(text, size, "%s", reason != NULL ? reason : fallback);
    ERR_clear_error();
}

bool tls_use_key_pair(SSL_CTX *context, const char *cert_label, const char *cert_file,
                      const char *key_label, const char *key_file, char *message, size_t size)
{
    const char *label = NULL, *path = NULL;
    if (SSL_CTX_use_certificate_chain_file(context, cert_file) != 1)
        label = cert_label, path = cert_file;
    else if (SSL_CTX_use_PrivateKey_file(context, key_file, SSL_FILETYPE_PEM) != 1 ||
             SSL_CTX_check_private_key(context) != 1)
        label = key_label, path = key_file;
    if (label == NULL)
        return true;
    char reason[160];
    tls_error_text(reason, sizeof reason, "cannot be loaded");
    message_set(message, size, "%s %s: %s", label, path, reason);
    return false;
}
