/*
 * tls.h: TLS on the native transport, its data phase in C (tls.c; part
 * of internal.h, include that).  SSLProtocol (asyncio) keeps the state
 * machine; tls.c runs its WRAPPED read and write steps on the same
 * objects, which it reaches by these attribute names.
 */
#ifndef IOL_TLS_H
#define IOL_TLS_H

/* SSLProtocol's attributes that the C steps read, first: they are slots
 * of the TLSState base type (IOL_TS_N of them), so a read is a field
 * access and SSLProtocol's own Python code assigns them through the
 * slots' descriptors.  Then the other names tls.c uses. */
enum {
    IOL_TN_STATE,
    IOL_TN_APP_READING_PAUSED,
    IOL_TN_SSL_BUFFER,
    IOL_TN_INCOMING,
    IOL_TN_OUTGOING,
    IOL_TN_SSLOBJ,
    IOL_TN_APP_PROTOCOL,
    IOL_TN_APP_IS_BUFFER,
    IOL_TN_WRITE_BACKLOG,
    IOL_TN_SSL_WRITING_PAUSED,
    IOL_TN_TRANSPORT,
    IOL_TN_WRITE_BUFFER_SIZE,
    IOL_TN_OUT_HIGH,
    IOL_TN_OUT_LOW,
    IOL_TN_APP_WRITING_PAUSED,
    IOL_TN_IN_HIGH,
    IOL_TN_IN_LOW,
    IOL_TN_SSL_READING_PAUSED,
    IOL_TS_N,
    IOL_TN_READ = IOL_TS_N,
    IOL_TN_WRITE,
    IOL_TN_PENDING,
    IOL_TN_DO_WRITE,
    IOL_TN_CONTROL_APP_WRITING,
    IOL_TN_CONTROL_SSL_READING,
    IOL_TN_CALL_EOF,
    IOL_TN_START_SHUTDOWN,
    IOL_TN_FATAL_ERROR,
    IOL_TN_SSL_PROTOCOL,
    IOL_TN_WRITE_APPDATA,
    IOL_TN_MAX_SIZE,
    IOL_TN_APPEND,
    IOL_TN_DATA_RECEIVED,
    IOL_TN_JOIN,
    IOL_TLS_NNAMES
};

/* NativeSSLProtocol's instances start with this (ioloop_c/_tls.py puts
 * TLSState first in its bases). */
typedef struct {
    void *ssl, *rbio, *wbio; /* SSL *, BIO * (tls_ossl.c) */
} iol_tls_conn;

typedef struct {
    PyObject_HEAD
    PyObject *f[IOL_TS_N];
    /* tls_ossl.c's check of _sslobj, _incoming and _outgoing, for the
     * objects in d_key: d_ok, then their SSL and BIOs and the SSL
     * object's C object. */
    PyObject *d_key[3];
    PyObject *d_inner;
    iol_tls_conn d_conn;
    int d_ok;
} TLSStateObject;

/* The C methods called by descriptor (iol_tls_ccall). */
enum {
    IOL_TD_BIO_WRITE,
    IOL_TD_BIO_READ,
    IOL_TD_BIO_PENDING,
    IOL_TD_SSL_READ,
    IOL_TD_SSL_WRITE,
    IOL_TD_SSL_PENDING,
    IOL_TD_N
};

/* One step on one NativeSSLProtocol (a TLSStateObject). */
typedef struct {
    iol_modstate *st;
    PyObject *sp;
    int direct; /* st->tls_direct when the step began */
} iol_tls_ctx;

int iol_tls_open(iol_tls_ctx *c, iol_modstate *st, PyObject *sp);
void iol_tls_close(iol_tls_ctx *c);
/* sp.<name>: a new reference, or NULL with the error set; a slot (None
 * when unset, as its descriptor reads) or getattr() for other names. */
PyObject *iol_tls_get(iol_tls_ctx *c, int name);
int iol_tls_true(iol_tls_ctx *c, int name);
Py_ssize_t iol_tls_size(iol_tls_ctx *c, int name);
Py_ssize_t iol_tls_as_size(PyObject *v);
/* obj.<name>(a, b), either or both NULL for fewer arguments. */
PyObject *iol_tls_call(iol_modstate *st, PyObject *obj, int name,
                       PyObject *a, PyObject *b);
int iol_tls_call_none(iol_modstate *st, PyObject *obj, int name,
                      PyObject *a, PyObject *b);
int iol_tls_sp_call(iol_tls_ctx *c, int name, PyObject *a, PyObject *b);
/* A MemoryBIO's or _SSLSocket's method (IOL_TD_*) by descriptor. */
PyObject *iol_tls_ccall(iol_modstate *st, int which, PyObject *obj,
                        int name, PyObject *a);
Py_ssize_t iol_tls_pending(iol_modstate *st, PyObject *bio);
PyObject *iol_tls_inner(iol_tls_ctx *c);
/* SSLProtocol's "except Exception: self._fatal_error(exc, message)". */
int iol_tls_fatal(iol_tls_ctx *c, const char *message);
/* _process_outgoing() and _control_ssl_reading(). */
int iol_tls_outgoing(iol_tls_ctx *c);
int iol_tls_control_reading(iol_tls_ctx *c, PyObject *incoming);
/* _setup()'s six arguments into the module state. */
int iol_tls_setup(iol_modstate *st, PyObject *const *args);
extern PyMethodDef iol_tls_write_methods[];

/* Make the TLSWrite mixin and TLSState types and the names, into the
 * module state. */
int iol_tls_init(PyObject *mod, iol_modstate *st);
int iol_tls_traverse(iol_modstate *st, visitproc visit, void *arg);
void iol_tls_clear(iol_modstate *st);

/* The read step of a transport whose protocol is a NativeSSLProtocol:
 * as iol_transport_event()'s other read steps (0, or -1 for an exception
 * that must leave the loop). */
int iol_tls_read(TransportObject *tr);

/* The direct OpenSSL calls (tls_ossl.c). */
#include "tls_ossl.h"

#endif /* IOL_TLS_H */
