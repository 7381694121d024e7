/*
 * fuzz_tls.c -- libFuzzer target for stockd's TLS-wrapped read path
 * (src/server/tls.c), the bytes a client sends to a TLS port:
 *
 *   - raw (first byte even): the input is what arrives on the socket, in
 *     pieces whose sizes come from the input, before any handshake -- a
 *     broken or hostile client. The session must fail or wait, never hand
 *     out plaintext it was not sent, never crash;
 *   - through TLS (first byte odd): a real client (OpenSSL, memory BIOs)
 *     completes a handshake with the session, then sends the rest of the
 *     input as application data; its records reach the session in pieces
 *     of fuzzed sizes. The plaintext tls_read returns must be exactly what
 *     was sent, and it is then parsed as RESP, as stockd does.
 *
 * The server's key and certificate are made once, in memory (P-256,
 * self-signed): the client does not verify them, the session is the target.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proto/resp.h"
#include "server/tls.h"

#define FUZZ_PLAIN_MAX 16384
#define FUZZ_STEPS_MAX 4096

static SSL_CTX *server_context, *client_context;

static void make_contexts(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    assert(key != NULL && cert != NULL);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    assert(X509_sign(cert, key, EVP_sha256()) > 0);
    server_context = SSL_CTX_new(TLS_server_method());
    client_context = SSL_CTX_new(TLS_client_method());
    assert(server_context != NULL && client_context != NULL);
    assert(SSL_CTX_use_certificate(server_context, cert) == 1);
    assert(SSL_CTX_use_PrivateKey(server_context, key) == 1);
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* Moves every record the session has for the client into the client. */
static void to_client(tls_session *session, BIO *client_in)
{
    buf nothing = {0}, sealed = {0};
    assert(tls_seal(session, &nothing, &sealed));
    if (sealed.len > 0)
        BIO_write(client_in, sealed.data, (int)sealed.len);
    buf_free(&sealed);
    buf_free(&nothing);
}

/* Feeds data to the session in pieces of 1..64 bytes (sizes from seed);
 * appends the plaintext it yields to plain. Returns the last status. */
static tls_status feed(tls_session *session, const uint8_t *data, size_t len, uint8_t seed,
                       buf *plain)
{
    tls_status status = TLS_MORE;
    char out[4096], reason[TLS_REASON_MAX];
    size_t offset = 0;
    for (int steps = 0; offset < len && steps < FUZZ_STEPS_MAX; steps++) {
        size_t piece = (size_t)(seed = (uint8_t)(seed * 33 + 7)) % 64 + 1;
        if (piece > len - offset)
            piece = len - offset;
        assert(tls_receive(session, (const char *)data + offset, piece));
        offset += piece;
        size_t got = 0;
        while ((status = tls_read(session, out, sizeof out, &got, reason, sizeof reason)) ==
               TLS_DATA) {
            assert(got > 0 && got <= sizeof out);
            assert(buf_append(plain, out, got));
        }
        if (status == TLS_FAILED) {
            assert(reason[0] != '\0');
            return status;
        }
        if (status == TLS_CLOSED)
            return status;
    }
    return status;
}

static void fuzz_raw(const uint8_t *data, size_t size)
{
    tls_session session;
    assert(tls_session_init(&session, server_context));
    (void)tls_plausible(&session, (const char *)data, size);
    buf plain = {0};
    (void)feed(&session, data, size, data[0], &plain);
    assert(plain.len == 0 || tls_ready(&session));   /* no plaintext before a handshake */
    buf sealed = {0};
    (void)tls_goodbye(&session, &sealed);
    buf_free(&sealed);
    buf_free(&plain);
    tls_session_fini(&session);
}

/* Runs the handshake between client and session; false if it fails. */
static bool handshake(SSL *client, BIO *client_in, BIO *client_out, tls_session *session)
{
    char scratch[64], reason[TLS_REASON_MAX];
    for (int round = 0; round < 16; round++) {
        int done = SSL_do_handshake(client);
        char wire[16384];
        int n;
        while ((n = BIO_read(client_out, wire, sizeof wire)) > 0)
            assert(tls_receive(session, wire, (size_t)n));
        size_t got = 0;
        tls_status status = tls_read(session, scratch, sizeof scratch, &got, reason, sizeof reason);
        assert(status != TLS_DATA);
        if (status == TLS_FAILED)
            return false;
        to_client(session, client_in);
        if (done == 1 && tls_ready(session))
            return true;
    }
    return false;
}

static void fuzz_through_tls(const uint8_t *data, size_t size)
{
    SSL *client = SSL_new(client_context);
    BIO *client_in = BIO_new(BIO_s_mem()), *client_out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(client_in, -1);
    SSL_set_bio(client, client_in, client_out);
    SSL_set_connect_state(client);
    tls_session session;
    assert(tls_session_init(&session, server_context));
    assert(handshake(client, client_in, client_out, &session));
    size_t len = size - 1 < FUZZ_PLAIN_MAX ? size - 1 : FUZZ_PLAIN_MAX;
    if (len > 0)
        assert(SSL_write(client, data + 1, (int)len) == (int)len);
    buf wire = {0}, plain = {0};
    char chunk[16384];
    int n;
    while ((n = BIO_read(client_out, chunk, sizeof chunk)) > 0)
        assert(buf_append(&wire, chunk, (size_t)n));
    tls_status status = feed(&session, (const uint8_t *)wire.data, wire.len, data[0], &plain);
    assert(status != TLS_FAILED && status != TLS_CLOSED);
    assert(plain.len == len && (len == 0 || memcmp(plain.data, data + 1, len) == 0));
    resp_request request;
    size_t offset = 0;
    for (int count = 0; offset < plain.len && count < FUZZ_STEPS_MAX; count++) {
        size_t used = 0;
        const char *error = NULL;
        if (resp_parse((const char *)plain.data + offset, plain.len - offset, 4096, &request,
                       &used, &error) !=
            RESP_DONE)
            break;
        assert(used > 0);
        offset += used;
    }
    buf_free(&wire);
    buf_free(&plain);
    tls_session_fini(&session);
    SSL_free(client);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (server_context == NULL)
        make_contexts();
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0)
        fuzz_raw(data, size);
    else
        fuzz_through_tls(data, size);
    return 0;
}
