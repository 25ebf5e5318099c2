/*
 * tls_write.c: the native write() of ioloop_c's TLS app transport (see
 * tls.c), and the TLSWrite mixin's methods.
 *
 * In the WRAPPED state with nothing in the backlog, write(data) is
 * SSLProtocol's _write_appdata((data,)) -> _do_write() ->
 * _process_outgoing() in C: encrypt, take the records from the outgoing
 * BIO, hand them to the raw transport, which sends them at once.  In
 * every other case it calls _write_appdata() itself.
 */
#include "internal.h"

static const char ssl_protocol_failed[] = "Fatal error on SSL protocol";

/* What _write_appdata() leaves when SSL_write raised: the data in the
 * backlog, counted in _write_buffer_size as SSLProtocol counts it. */
static int
to_backlog(iol_tls_ctx *c, PyObject *data)
{
    Py_ssize_t len = PyObject_Size(data);
    Py_ssize_t size = len < 0 ? -1
                              : iol_tls_size(c, IOL_TN_WRITE_BUFFER_SIZE);
    PyObject *backlog = size < 0 ? NULL
                                 : iol_tls_get(c, IOL_TN_WRITE_BACKLOG);
    PyObject *nsize = backlog ? PyLong_FromSsize_t(size + len) : NULL;
    int rc = -1;
    if (nsize != NULL &&
        iol_tls_call_none(c->st, backlog, IOL_TN_APPEND, data, NULL) == 0) {
        rc = PyObject_SetAttr(c->sp,
                              c->st->tls_names[IOL_TN_WRITE_BUFFER_SIZE],
                              nsize);
    }
    Py_XDECREF(backlog);
    Py_XDECREF(nsize);
    return rc;
}

/* write_now() by SSL_write_ex on the SSL object's own SSL (tls_ossl.c):
 * 0 done, -1 an error to handle as write_now() does, 1 not done (not
 * possible here, or neither a success nor "wants input": the method
 * repeats the call and raises what it raises). */
static int
write_direct(iol_tls_ctx *c, PyObject *data)
{
    const iol_tls_conn *k = iol_tls_direct(c);
    if (k == NULL) {
        return 1;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        return 1;
    }
    int r = IOL_OSSL_OTHER;
    if (view.len <= INT_MAX) {
        size_t put;
        r = iol_ossl_write(k, view.buf, (size_t)view.len, &put);
    }
    PyBuffer_Release(&view);
    if (r == IOL_OSSL_OTHER) {
        return 1;
    }
    /* "Wants input" (a handshake message in flight): SSLProtocol keeps
     * the data in its backlog, and its next read writes it. */
    if (r == IOL_OSSL_WANT && to_backlog(c, data) < 0) {
        return -1;
    }
    return iol_tls_outgoing(c);
}

/* _write_appdata((data,)) in the WRAPPED state with no backlog: 0, or -1
 * for an exception that leaves write(). */
static int
write_now(iol_tls_ctx *c, PyObject *inner, PyObject *data)
{
    int rc = write_direct(c, data);
    if (rc != 1) {
        return rc < 0 ? iol_tls_fatal(c, ssl_protocol_failed) : 0;
    }
    PyObject *res = iol_tls_ccall(c->st, IOL_TD_SSL_WRITE, inner,
                                  IOL_TN_WRITE, data);
    Py_ssize_t count = iol_tls_as_size(res);
    Py_XDECREF(res);
    if (count < 0) {
        /* SSLProtocol queues the data before it tries to write it. */
        PyObject *exc = iol_err_fetch();
        int again = PyErr_GivenExceptionMatches(exc, c->st->tls_again);
        rc = to_backlog(c, data);
        if (rc < 0 || again) {
            Py_XDECREF(exc);
        }
        else {
            /* _do_write() raised into _write_appdata()'s except arm. */
            iol_err_restore(exc);
            return iol_tls_fatal(c, ssl_protocol_failed);
        }
        if (rc == 0) {
            rc = iol_tls_outgoing(c);
        }
    }
    else {
        Py_ssize_t len = PyObject_Size(data);
        if (len < 0) {
            rc = -1;
        }
        else if (count < len) {
            /* A short write (Python never asks OpenSSL for those): the
             * rest goes through SSLProtocol's own loop. */
            PyObject *rest = PySequence_GetSlice(data, count, len);
            rc = rest ? to_backlog(c, rest) : -1;
            Py_XDECREF(rest);
            if (rc == 0) {
                rc = iol_tls_sp_call(c, IOL_TN_DO_WRITE, NULL, NULL);
            }
        }
        else {
            rc = iol_tls_outgoing(c);
        }
    }
    return rc < 0 ? iol_tls_fatal(c, ssl_protocol_failed) : 0;
}

/* 1 if write() may encrypt at once: an exact NativeSSLProtocol, WRAPPED,
 * no backlog, the stdlib's SSL object (its C object returned); 0: the
 * Python path; -1: an error. */
static int
write_ready(iol_tls_ctx *c, PyObject **inner)
{
    PyObject *state = iol_tls_get(c, IOL_TN_STATE);
    if (state == NULL) {
        return -1;
    }
    int wrapped = state == c->st->tls_wrapped;
    Py_DECREF(state);
    if (!wrapped) {
        return 0;
    }
    PyObject *backlog = iol_tls_get(c, IOL_TN_WRITE_BACKLOG);
    Py_ssize_t n = backlog ? PyObject_Size(backlog) : -1;
    Py_XDECREF(backlog);
    if (n != 0) {
        return n < 0 ? -1 : 0;
    }
    *inner = iol_tls_inner(c);
    if (*inner == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    return 1;
}

static PyObject *
write_slow(iol_modstate *st, PyObject *sp, PyObject *data)
{
    PyObject *tuple = PyTuple_Pack(1, data);
    PyObject *ret = tuple ? iol_tls_call(st, sp, IOL_TN_WRITE_APPDATA,
                                         tuple, NULL)
                          : NULL;
    Py_XDECREF(tuple);
    return ret;
}

static PyObject *
TLSWrite_write(PyObject *self, PyTypeObject *cls, PyObject *const *args,
               Py_ssize_t nargs, PyObject *kwnames)
{
    /* write(data) or write(data=...), as the Python method takes it. */
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw != 1 ||
        (nkw && PyUnicode_CompareWithASCIIString(
                    PyTuple_GET_ITEM(kwnames, 0), "data") != 0)) {
        PyErr_SetString(PyExc_TypeError, "write() takes exactly one "
                        "argument (data)");
        return NULL;
    }
    iol_modstate *st = PyType_GetModuleState(cls);
    PyObject *data = args[0];
    if (!PyBytes_Check(data) && !PyByteArray_Check(data) &&
        !PyMemoryView_Check(data)) {
        PyErr_Format(PyExc_TypeError, "data: expecting a bytes-like "
                     "instance, got %.200s", Py_TYPE(data)->tp_name);
        return NULL;
    }
    int any = PyObject_IsTrue(data);
    if (any <= 0) {
        return any < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *sp = PyObject_GetAttr(self,
                                    st->tls_names[IOL_TN_SSL_PROTOCOL]);
    if (sp == NULL) {
        return NULL;
    }
    PyObject *ret = NULL;
    iol_tls_ctx c;
    if (st->tls_protocol_type == NULL ||
        !Py_IS_TYPE(sp, (PyTypeObject *)st->tls_protocol_type)) {
        ret = write_slow(st, sp, data);
        Py_DECREF(sp);
        return ret;
    }
    if (iol_tls_open(&c, st, sp) < 0) {
        Py_DECREF(sp);
        return NULL;
    }
    Py_DECREF(sp);
    PyObject *inner = NULL;
    int ready = write_ready(&c, &inner);
    if (ready == 0) {
        ret = write_slow(st, c.sp, data);
    }
    else if (ready > 0 && write_now(&c, inner, data) == 0) {
        ret = Py_NewRef(Py_None);
    }
    Py_XDECREF(inner);
    iol_tls_close(&c);
    return ret;
}

/* _setup(protocol_type, wrapped_state, sslobject_type, again_errors,
 *        memorybio_type, sslsocket_type, sslcontext_type), from
 * ioloop_c/_tls.py */
static PyObject *
TLSWrite_setup(PyObject *Py_UNUSED(type), PyTypeObject *cls,
               PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs != 7 || (kwnames && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "_setup(protocol_type, wrapped, "
                        "sslobject_type, again_errors, memorybio_type, "
                        "sslsocket_type, sslcontext_type)");
        return NULL;
    }
    if (!PyType_Check(args[0]) || !PyType_Check(args[2]) ||
        !PyTuple_Check(args[3]) || !PyType_Check(args[4]) ||
        !PyType_Check(args[5]) || !PyType_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError, "_setup: types, and a tuple of "
                        "exception types as the fourth argument");
        return NULL;
    }
    if (iol_tls_setup(PyType_GetModuleState(cls), args) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _set_direct(path): OpenSSL called directly, with the functions of the
 * _ssl extension at path (a str), or not (None).  Whether it is on. */
static PyObject *
TLSWrite_set_direct(PyObject *Py_UNUSED(type), PyTypeObject *cls,
                    PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    if (nargs != 1 || (kwnames && PyTuple_GET_SIZE(kwnames)) ||
        (args[0] != Py_None && !PyUnicode_Check(args[0]))) {
        PyErr_SetString(PyExc_TypeError, "_set_direct(path or None)");
        return NULL;
    }
    iol_modstate *st = PyType_GetModuleState(cls);
    int on = 0;
    if (args[0] != Py_None) {
        PyObject *b = PyUnicode_EncodeFSDefault(args[0]);
        if (b == NULL) {
            return NULL;
        }
        on = st->tls_context_type != NULL &&
             iol_ossl_load(PyBytes_AS_STRING(b));
        Py_DECREF(b);
    }
    st->tls_direct = on;
    return PyBool_FromLong(on);
}

PyMethodDef iol_tls_write_methods[] = {
    {"_set_direct", (PyCFunction)(void (*)(void))TLSWrite_set_direct,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS | METH_CLASS, NULL},
    {"write", (PyCFunction)(void (*)(void))TLSWrite_write,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS,
     "Encrypt and send data (bytes-like) at once when the TLS session is "
     "established and nothing is queued; else queue it as SSLProtocol "
     "does."},
    {"_setup", (PyCFunction)(void (*)(void))TLSWrite_setup,
     METH_METHOD | METH_FASTCALL | METH_KEYWORDS | METH_CLASS, NULL},
    {NULL, NULL, 0, NULL},
};
