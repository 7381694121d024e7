/*
 * tls.c -- stockd's TLS sessions over memory BIOs (see tls.h).
 */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "lib/tls.h"
#include "server/tls.h"

#define TLS_SEAL_STEP (16u * 1024)   /* ciphertext taken from the BIO per read */
#define TLS_RECORD_HANDSHAKE 0x16    /* the type of a client's first record */

/* The CA for client certificates and how strictly they are asked for. */
static bool set_client_verification(SSL_CTX *context, const config *cfg,
                                    char *message, size_t size)
{
    if (cfg->tls_auth_clients == CONFIG_TLS_AUTH_NO)
        return true;
    char reason[TLS_REASON_MAX];
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca_cert_file);
    if (SSL_CTX_load_verify_locations(context, cfg->tls_ca_cert_file, NULL) != 1 ||
        names == NULL) {
        tls_error_text(reason, sizeof reason, "no certificate in it");
        snprintf(message, size, "--tls-ca-cert-file %s: %s", cfg->tls_ca_cert_file, reason);
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return false;
    }
    SSL_CTX_set_client_CA_list(context, names);
    int mode = SSL_VERIFY_PEER;
    if (cfg->tls_auth_clients == CONFIG_TLS_AUTH_YES)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(context, mode, NULL);
    return true;
}

SSL_CTX *tls_context_new(const config *cfg, char *message, size_t size)
{
    SSL_CTX *context = SSL_CTX_new(TLS_server_method());
    if (context == NULL) {
        snprintf(message, size, "cannot create a TLS context: out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(context, TLS_VERSION_MIN);
    /* Idle connections give their record buffers back; renegotiation is a
     * denial-of-service lever with no use here. */
    SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION);
    if (!tls_use_key_pair(context, "--tls-cert-file", cfg->tls_cert_file, "--tls-key-file",
                          cfg->tls_key_file, message, size)) {
        SSL_CTX_free(context);
        return NULL;
    }
    if (!set_client_verification(context, cfg, message, size)) {
        SSL_CTX_free(context);
        return NULL;
    }
    return context;
}

void tls_context_free(SSL_CTX *context)
{
    SSL_CTX_free(context);
}

bool tls_session_init(tls_session *session, SSL_CTX *context)
{
    memset(session, 0, sizeof *session);
    session->ssl = SSL_new(context);
    session->cipher_in = BIO_new(BIO_s_mem());
    session->cipher_out = BIO_new(BIO_s_mem());
    if (session->ssl == NULL || session->cipher_in == NULL || session->cipher_out == NULL) {
        SSL_free(session->ssl);
        BIO_free(session->cipher_in);
        BIO_free(session->cipher_out);
        ERR_clear_error();
        return false;
    }
    /* An empty input BIO means "wait for more" (SSL_ERROR_WANT_READ), not EOF. */
    BIO_set_mem_eof_return(session->cipher_in, -1);
    SSL_set_bio(session->ssl, session->cipher_in, session->cipher_out);   /* SSL owns both */
    SSL_set_accept_state(session->ssl);
    return true;
}

void tls_session_fini(tls_session *session)
{
    SSL_free(session->ssl);   /* frees the BIOs too */
    memset(session, 0, sizeof *session);
}

bool tls_plausible(const tls_session *session, const char *data, size_t len)
{
    assert(len > 0);
    return BIO_number_written(session->cipher_in) > 0 ||
           (unsigned char)data[0] == TLS_RECORD_HANDSHAKE;
}

bool tls_receive(tls_session *session, const char *data, size_t len)
{
    assert(len <= INT_MAX);
    return len == 0 || BIO_write(session->cipher_in, data, (int)len) == (int)len;
}

bool tls_ready(const tls_session *session)
{
    return SSL_is_init_finished(session->ssl);
}

tls_status tls_read(tls_session *session, char *plain, size_t cap, size_t *got,
                    char *reason, size_t reason_size)
{
    assert(cap > 0 && cap <= INT_MAX);
    *got = 0;
    int n = SSL_read(session->ssl, plain, (int)cap);
    if (n > 0) {
        *got = (size_t)n;
        return TLS_DATA;
    }
    switch (SSL_get_error(session->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TLS_MORE;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_CLOSED;
    default:
        break;
    }
    char text[TLS_REASON_MAX];
    tls_error_text(text, sizeof text, "protocol error");
    long verify = SSL_get_verify_result(session->ssl);
    if (verify != X509_V_OK)
        snprintf(reason, reason_size, "%s (client certificate: %s)", text,
                 X509_verify_cert_error_string(verify));
    else
        snprintf(reason, reason_size, "%s", text);
    return TLS_FAILED;
}

bool tls_goodbye(tls_session *session, buf *sealed)
{
    if (!tls_ready(session) || (SSL_get_shutdown(session->ssl) & SSL_SENT_SHUTDOWN))
        return false;
    SSL_shutdown(session->ssl);   /* with a memory BIO, queues the alert at once */
    ERR_clear_error();
    buf nothing = {0};
    return tls_seal(session, &nothing, sealed) && sealed->len > 0;
}

bool tls_seal(tls_session *session, buf *plain, buf *sealed)
{
    if (plain->len > 0 && tls_ready(session)) {
        assert(plain->len <= INT_MAX);
        /* A memory BIO takes every record, so the whole write succeeds. */
        int n = SSL_write(session->ssl, plain->data, (int)plain->len);
        if (n != (int)plain->len) {
            ERR_clear_error();
            return false;
        }
        buf_clear(plain);
    }
    size_t waiting = BIO_ctrl_pending(session->cipher_out);
    while (waiting > 0) {
        size_t step = waiting < TLS_SEAL_STEP ? waiting : TLS_SEAL_STEP;
        if (!buf_reserve(sealed, step))
            return false;
        int n = BIO_read(session->cipher_out, sealed->data + sealed->len, (int)step);
        assert(n == (int)step);
        sealed->len += (size_t)n;
        waiting -= step;
    }
    return true;
}
