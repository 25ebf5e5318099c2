/*
 * tls_ossl.c: OpenSSL called directly on an SSLObject's own SSL and
 * memory BIOs, in the established phase of the steps in tls_read.c and
 * tls_write.c.
 *
 * The C steps otherwise call _ssl._SSLSocket.read / write and
 * MemoryBIO.read / write / pending as Python methods: an argument parse,
 * an int or bytes object and, for "no more data", an SSLWantReadError
 * per record.  Here the same OpenSSL calls (SSL_read_ex, SSL_write_ex,
 * BIO_write, BIO_read, BIO_ctrl_pending, SSL_pending) are made on the
 * very SSL and BIO that those objects hold, so the TLS session, the
 * user's SSLContext and everything Python can observe (ssl_object,
 * peercert, session, ...) stay the stdlib's.
 *
 * No OpenSSL at build time: the few functions are looked up at run time
 * in the _ssl extension that is already loaded (dlopen with RTLD_NOLOAD,
 * then dlsym, which also searches the libssl and libcrypto it links), so
 * they are exactly the OpenSSL that _ssl uses, and called through our
 * own prototypes over opaque pointers.  If any is missing, the method
 * path runs.
 *
 * CPython has no API for the SSL * of an _SSLSocket or the BIO * of a
 * MemoryBIO.  Modules/_ssl.c has kept the leading fields of the three
 * objects from 3.x to 3.15 (later fields moved):
 * PySSLContext {PyObject_HEAD; SSL_CTX *ctx; ...},
 * PySSLSocket {PyObject_HEAD; PyObject *Socket; SSL *ssl; ...},
 * PySSLMemoryBIO {PyObject_HEAD; BIO *bio; ...}.  Only those leading
 * fields are read, and only after checking at run time that they agree
 * with OpenSSL itself: the SSL's SSL_CTX is the context's, its read BIO
 * the incoming MemoryBIO's and its write BIO the outgoing one's.  Any
 * mismatch keeps the method path for that connection.
 *
 * Only a plain result is handled here: success, or "wants more input".
 * Anything else (close_notify, an alert, a bad record, a syscall error)
 is left exactly as OpenSSL left it, error queue included, and the
 * caller repeats the call through the Python method, which finds the
 * same state and raises (or returns 0) just as it would have the first
 * time.  An error some earlier call left in the queue makes OpenSSL's
 * SSL_get_error() report SSL_ERROR_SSL instead of "wants input", so that
 * case too goes to the method, which meets the queue as it would have.
 * The plain results add nothing to the queue, so nothing stale reaches a
 * later Python call from here.  The GIL
 * stays held: memory BIOs do no I/O, and _ssl's callbacks (which take
 * the GIL) do not run in the established phase when the context has no
 * message callback or key log, which is checked.
 */
#include "internal.h"

#include <dlfcn.h>

/* OpenSSL's values (ssl.h). */
#define OSSL_ERROR_WANT_READ 2

/* The functions, as _ssl's OpenSSL exports them, over opaque pointers. */
static struct {
    int (*ssl_read_ex)(void *ssl, void *buf, size_t num, size_t *got);
    int (*ssl_write_ex)(void *ssl, const void *buf, size_t num,
                        size_t *put);
    int (*ssl_get_error)(const void *ssl, int ret);
    int (*ssl_pending)(const void *ssl);
    void *(*ssl_get_rbio)(const void *ssl);
    void *(*ssl_get_wbio)(const void *ssl);
    void *(*ssl_get_ssl_ctx)(const void *ssl);
    int (*bio_read)(void *bio, void *buf, int len);
    int (*bio_write)(void *bio, const void *buf, int len);
    size_t (*bio_ctrl_pending)(void *bio);
    int loaded;
} ossl;

static const char *const ossl_names[] = {
    "SSL_read_ex", "SSL_write_ex", "SSL_get_error", "SSL_pending",
    "SSL_get_rbio", "SSL_get_wbio", "SSL_get_SSL_CTX", "BIO_read",
    "BIO_write", "BIO_ctrl_pending",
};

/* The leading fields of _ssl's objects (see above). */
typedef struct {
    PyObject_HEAD
    void *ctx;
} ossl_context_head;

typedef struct {
    PyObject_HEAD
    PyObject *socket;
    void *ssl;
} ossl_socket_head;

typedef struct {
    PyObject_HEAD
    void *bio;
} ossl_bio_head;

int
iol_ossl_load(const char *path)
{
#ifdef Py_GIL_DISABLED
    /* _ssl locks its objects there; these calls would not. */
    (void)path;
    return 0;
#else
    if (ossl.loaded) {
        return 1;
    }
    /* Kept open: the extension is never unloaded, and neither is what
     * it links. */
    void *lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (lib == NULL) {
        return 0;
    }
    void *fn[sizeof(ossl_names) / sizeof(ossl_names[0])];
    for (size_t i = 0; i < sizeof(fn) / sizeof(fn[0]); i++) {
        fn[i] = dlsym(lib, ossl_names[i]);
        if (fn[i] == NULL) {
            return 0;
        }
    }
    /* A function pointer and a data pointer have the same size on the
     * platforms with dlsym (POSIX requires it). */
    memcpy(&ossl.ssl_read_ex, &fn[0], sizeof(void *));
    memcpy(&ossl.ssl_write_ex, &fn[1], sizeof(void *));
    memcpy(&ossl.ssl_get_error, &fn[2], sizeof(void *));
    memcpy(&ossl.ssl_pending, &fn[3], sizeof(void *));
    memcpy(&ossl.ssl_get_rbio, &fn[4], sizeof(void *));
    memcpy(&ossl.ssl_get_wbio, &fn[5], sizeof(void *));
    memcpy(&ossl.ssl_get_ssl_ctx, &fn[6], sizeof(void *));
    memcpy(&ossl.bio_read, &fn[7], sizeof(void *));
    memcpy(&ossl.bio_write, &fn[8], sizeof(void *));
    memcpy(&ossl.bio_ctrl_pending, &fn[9], sizeof(void *));
    ossl.loaded = 1;
    return 1;
#endif
}

/* Whether the context runs Python code on records (a message callback)
 * or on key updates (a key log): then the methods keep running, as
 * they release the GIL and chain what those callbacks raise. */
static int
context_quiet(PyObject *ctx)
{
    static const char *const attrs[] = {"_msg_callback", "keylog_filename"};
    for (int i = 0; i < 2; i++) {
        PyObject *v = PyObject_GetAttrString(ctx, attrs[i]);
        if (v == NULL) {
            PyErr_Clear();
            return 0;
        }
        int none = v == Py_None;
        Py_DECREF(v);
        if (!none) {
            return 0;
        }
    }
    return 1;
}

/* Check the connection afresh: 1 if the direct calls may run on it. */
static int
conn_check(iol_tls_ctx *c, TLSStateObject *ts, PyObject *sslobj,
           PyObject *incoming, PyObject *outgoing)
{
    iol_modstate *st = c->st;
    PyTypeObject *bio_type = (PyTypeObject *)st->tls_bio_type;
    if (!Py_IS_TYPE(sslobj, (PyTypeObject *)st->tls_sslobject_type) ||
        !Py_IS_TYPE(incoming, bio_type) || !Py_IS_TYPE(outgoing, bio_type)) {
        return 0;
    }
    PyObject *inner = PyObject_GetAttr(sslobj,
                                       st->tls_names[IOL_TN_SSLOBJ]);
    if (inner == NULL) {
        PyErr_Clear();
        return 0;
    }
    int ok = 0;
    PyObject *ctx = NULL;
    if (!Py_IS_TYPE(inner, (PyTypeObject *)st->tls_sslsock_type)) {
        goto done;
    }
    ctx = PyObject_GetAttrString(inner, "context");
    if (ctx == NULL) {
        PyErr_Clear();
        goto done;
    }
    if (!PyObject_TypeCheck(ctx, (PyTypeObject *)st->tls_context_type) ||
        !context_quiet(ctx)) {
        goto done;
    }
    void *ssl = ((ossl_socket_head *)inner)->ssl;
    void *rbio = ((ossl_bio_head *)incoming)->bio;
    void *wbio = ((ossl_bio_head *)outgoing)->bio;
    if (ssl == NULL || rbio == NULL || wbio == NULL ||
        ossl.ssl_get_ssl_ctx(ssl) != ((ossl_context_head *)ctx)->ctx ||
        ossl.ssl_get_rbio(ssl) != rbio || ossl.ssl_get_wbio(ssl) != wbio) {
        goto done;
    }
    ts->d_conn.ssl = ssl;
    ts->d_conn.rbio = rbio;
    ts->d_conn.wbio = wbio;
    Py_XSETREF(ts->d_inner, Py_NewRef(inner));
    ok = 1;
done:
    Py_XDECREF(ctx);
    Py_DECREF(inner);
    return ok;
}

const iol_tls_conn *
iol_tls_direct_check(iol_tls_ctx *c)
{
    TLSStateObject *ts = (TLSStateObject *)c->sp;
    PyObject *sslobj = ts->f[IOL_TN_SSLOBJ];
    PyObject *incoming = ts->f[IOL_TN_INCOMING];
    PyObject *outgoing = ts->f[IOL_TN_OUTGOING];
    if (sslobj == NULL || incoming == NULL || outgoing == NULL) {
        return NULL;
    }
    /* The cache holds what it was made for, so no other object can take
     * the same address meanwhile. */
    Py_XSETREF(ts->d_key[0], Py_NewRef(sslobj));
    Py_XSETREF(ts->d_key[1], Py_NewRef(incoming));
    Py_XSETREF(ts->d_key[2], Py_NewRef(outgoing));
    Py_CLEAR(ts->d_inner);
    ts->d_ok = conn_check(c, ts, sslobj, incoming, outgoing);
    return ts->d_ok ? &ts->d_conn : NULL;
}

PyObject *
iol_tls_direct_inner(iol_tls_ctx *c)
{
    return ((TLSStateObject *)c->sp)->d_inner;
}

/* SSL_read_ex's or SSL_write_ex's return value as one of ours. */
static int
ossl_result(const iol_tls_conn *k, int r)
{
    if (r == 1) {
        return IOL_OSSL_OK;
    }
    return ossl.ssl_get_error(k->ssl, r) == OSSL_ERROR_WANT_READ
               ? IOL_OSSL_WANT
               : IOL_OSSL_OTHER;
}

int
iol_ossl_read(const iol_tls_conn *k, char *buf, size_t len, size_t *got)
{
    *got = 0;
    return ossl_result(k, ossl.ssl_read_ex(k->ssl, buf, len, got));
}

int
iol_ossl_write(const iol_tls_conn *k, const char *buf, size_t len,
               size_t *put)
{
    *put = 0;
    return ossl_result(k, ossl.ssl_write_ex(k->ssl, buf, len, put));
}

int
iol_ossl_more(const iol_tls_conn *k)
{
    return ossl.bio_ctrl_pending(k->rbio) > 0 || ossl.ssl_pending(k->ssl) > 0;
}

size_t
iol_ossl_pending(void *bio)
{
    return ossl.bio_ctrl_pending(bio);
}

int
iol_ossl_bio_write(void *bio, const char *buf, int len)
{
    return ossl.bio_write(bio, buf, len);
}

int
iol_ossl_bio_read(void *bio, char *buf, int len)
{
    return ossl.bio_read(bio, buf, len);
}
