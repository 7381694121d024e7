/*
 * tls.c -- OpenSSL's errors as one sentence (see tls.h).
 */
#include <assert.h>
#include <stdio.h>

#include <openssl/err.h>

#include "lib/tls.h"

void tls_error_text(char *text, size_t size, const char *fallback)
{
    assert(text != NULL && size > 0 && fallback != NULL);
    unsigned long error = ERR_get_error();
    const char *reason = error != 0 ? ERR_reason_error_string(error) : NULL;
    snprintf(text, size, "%s", reason != NULL ? reason : fallback);
    ERR_clear_error();
}
