/*
 * tls_ossl.h: OpenSSL called directly on an SSLObject's own SSL and
 * memory BIOs (tls_ossl.c; part of tls.h, include internal.h).
 */
#ifndef IOL_TLS_OSSL_H
#define IOL_TLS_OSSL_H

/* tls_ossl.c: OpenSSL on the SSL object's own SSL and BIOs.  Load the
 * functions from the _ssl extension at path: 1, or 0 if not there. */
int iol_ossl_load(const char *path);
/* The connection's SSL and BIOs if the direct calls may run now, else
 * NULL (no error set): the check cached in the TLSState while _sslobj
 * and the BIOs are the objects it was made for, else made afresh. */
const iol_tls_conn *iol_tls_direct_check(iol_tls_ctx *c);

static inline const iol_tls_conn *
iol_tls_direct(iol_tls_ctx *c)
{
    TLSStateObject *ts = (TLSStateObject *)c->sp;
    if (!c->direct) {
        return NULL;
    }
    if (ts->d_key[0] == ts->f[IOL_TN_SSLOBJ] &&
        ts->d_key[1] == ts->f[IOL_TN_INCOMING] &&
        ts->d_key[2] == ts->f[IOL_TN_OUTGOING] && ts->d_key[0] != NULL) {
        return ts->d_ok ? &ts->d_conn : NULL;
    }
    return iol_tls_direct_check(c);
}
/* The _SSLSocket that iol_tls_direct() checked (borrowed), or NULL. */
PyObject *iol_tls_direct_inner(iol_tls_ctx *c);
enum { IOL_OSSL_OTHER = -1, IOL_OSSL_WANT = 0, IOL_OSSL_OK = 1 };
/* SSL_read_ex / SSL_write_ex: OK, WANT (more input needed) or OTHER
 * (the caller repeats the call through the Python method). */
int iol_ossl_read(const iol_tls_conn *k, char *buf, size_t len,
                  size_t *got);
int iol_ossl_write(const iol_tls_conn *k, const char *buf, size_t len,
                   size_t *put);
/* Input in the read BIO or plaintext held by the SSL. */
int iol_ossl_more(const iol_tls_conn *k);
size_t iol_ossl_pending(void *bio);
int iol_ossl_bio_write(void *bio, const char *buf, int len);
int iol_ossl_bio_read(void *bio, char *buf, int len);

#endif /* IOL_TLS_OSSL_H */
