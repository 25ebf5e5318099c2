/*
 * tls.c: TLS on the native transport, with the data phase in C.
 *
 * asyncio's SSLProtocol (Lib/asyncio/sslproto.py) keeps the TLS state
 * machine: handshake and its timeout, shutdown and its timeout, flow
 * control, errors, the extra info.  ioloop_c/_tls.py subclasses it
 * (NativeSSLProtocol, with TLSState below as its first base) and gives
 * it an app transport whose class puts TLSWrite first in its bases.
 * While such a protocol is WRAPPED and nothing unusual is pending, two
 * steps run in C instead of in Python:
 *
 * - the raw transport's read (iol_tls_read, tls_read.c): recv() into
 *   the protocol's own buffer, feed its incoming MemoryBIO, decrypt with
 *   the SSLObject's C object and hand the plaintext to data_received(),
 *   then send what the SSL object wrote; SSLProtocol's buffer_updated()
 *   -> _do_read() -> _do_read__copied() -> _process_outgoing() step for
 *   step;
 * - the app transport's write() (tls_write.c): encrypt at once and send,
 *   as write() -> _write_appdata() -> _do_write() -> _process_outgoing().
 *
 * Both work on the protocol's own attributes, which TLSState holds as
 * slots, so SSLProtocol's Python methods, which run for everything else
 * (handshake, shutdown, a paused reader, a BufferedProtocol app, a write
 * backlog, flow control changes, errors), always find the state they
 * expect.  The names are the same from 3.11 to 3.15; ioloop_c/_tls.py
 * and tests/test_tls.py check them.  This file holds what both steps
 * use, and the types.
 */
#include "internal.h"

#include <structmember.h>

static const char *const tls_names[IOL_TLS_NNAMES] = {
    [IOL_TN_STATE] = "_state",
    [IOL_TN_APP_READING_PAUSED] = "_app_reading_paused",
    [IOL_TN_SSL_BUFFER] = "_ssl_buffer",
    [IOL_TN_INCOMING] = "_incoming",
    [IOL_TN_OUTGOING] = "_outgoing",
    [IOL_TN_SSLOBJ] = "_sslobj",
    [IOL_TN_APP_PROTOCOL] = "_app_protocol",
    [IOL_TN_APP_IS_BUFFER] = "_app_protocol_is_buffer",
    [IOL_TN_WRITE_BACKLOG] = "_write_backlog",
    [IOL_TN_SSL_WRITING_PAUSED] = "_ssl_writing_paused",
    [IOL_TN_TRANSPORT] = "_transport",
    [IOL_TN_WRITE_BUFFER_SIZE] = "_write_buffer_size",
    [IOL_TN_OUT_HIGH] = "_outgoing_high_water",
    [IOL_TN_OUT_LOW] = "_outgoing_low_water",
    [IOL_TN_APP_WRITING_PAUSED] = "_app_writing_paused",
    [IOL_TN_IN_HIGH] = "_incoming_high_water",
    [IOL_TN_IN_LOW] = "_incoming_low_water",
    [IOL_TN_SSL_READING_PAUSED] = "_ssl_reading_paused",
    [IOL_TN_READ] = "read",
    [IOL_TN_WRITE] = "write",
    [IOL_TN_PENDING] = "pending",
    [IOL_TN_DO_WRITE] = "_do_write",
    [IOL_TN_CONTROL_APP_WRITING] = "_control_app_writing",
    [IOL_TN_CONTROL_SSL_READING] = "_control_ssl_reading",
    [IOL_TN_CALL_EOF] = "_call_eof_received",
    [IOL_TN_START_SHUTDOWN] = "_start_shutdown",
    [IOL_TN_FATAL_ERROR] = "_fatal_error",
    [IOL_TN_SSL_PROTOCOL] = "_ssl_protocol",
    [IOL_TN_WRITE_APPDATA] = "_write_appdata",
    [IOL_TN_MAX_SIZE] = "max_size",
    [IOL_TN_APPEND] = "append",
    [IOL_TN_DATA_RECEIVED] = "data_received",
    [IOL_TN_JOIN] = "join",
};

int
iol_tls_open(iol_tls_ctx *c, iol_modstate *st, PyObject *sp)
{
    c->st = st;
    c->sp = NULL;
    c->direct = st->tls_direct;
    if (st->TLSStateType == NULL ||
        !PyObject_TypeCheck(sp, st->TLSStateType)) {
        PyErr_Format(PyExc_TypeError, "not a TLSState: %R", sp);
        return -1;
    }
    c->sp = Py_NewRef(sp);
    return 0;
}

void
iol_tls_close(iol_tls_ctx *c)
{
    Py_CLEAR(c->sp);
}

PyObject *
iol_tls_get(iol_tls_ctx *c, int name)
{
    if (name < IOL_TS_N) {
        PyObject *v = ((TLSStateObject *)c->sp)->f[name];
        return Py_NewRef(v ? v : Py_None);
    }
    return PyObject_GetAttr(c->sp, c->st->tls_names[name]);
}

/* An attribute's truth: 1, 0, or -1 with the error set. */
int
iol_tls_true(iol_tls_ctx *c, int name)
{
    PyObject *v = iol_tls_get(c, name);
    int r = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    return r;
}

Py_ssize_t
iol_tls_as_size(PyObject *v)
{
    Py_ssize_t r = v ? PyNumber_AsSsize_t(v, PyExc_OverflowError) : -1;
    if (r < 0 && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "negative size in SSLProtocol");
        r = -1;
    }
    return r;
}

/* An int attribute, or -1 with the error set (the values are sizes). */
Py_ssize_t
iol_tls_size(iol_tls_ctx *c, int name)
{
    /* The usual case, a small int in a slot, without a new reference. */
    PyObject *f = name < IOL_TS_N ? ((TLSStateObject *)c->sp)->f[name]
                                  : NULL;
    if (f != NULL && PyLong_CheckExact(f)) {
        Py_ssize_t r = PyLong_AsSsize_t(f);
        if (r >= 0) {
            return r;
        }
        if (PyErr_Occurred()) {
            PyErr_Clear();
        }
    }
    PyObject *v = iol_tls_get(c, name);
    Py_ssize_t r = iol_tls_as_size(v);
    Py_XDECREF(v);
    return r;
}

/* obj.<name>(arg...) with 0 to 2 arguments; a new reference or NULL. */
PyObject *
iol_tls_call(iol_modstate *st, PyObject *obj, int name, PyObject *a,
             PyObject *b)
{
    PyObject *args[3] = {obj, a, b};
    size_t n = b ? 3 : a ? 2 : 1;
    return PyObject_VectorcallMethod(st->tls_names[name], args, n, NULL);
}

int
iol_tls_call_none(iol_modstate *st, PyObject *obj, int name, PyObject *a,
          PyObject *b)
{
    PyObject *res = iol_tls_call(st, obj, name, a, b);
    Py_XDECREF(res);
    return res ? 0 : -1;
}

/* A method of the protocol itself. */
int
iol_tls_sp_call(iol_tls_ctx *c, int name, PyObject *a, PyObject *b)
{
    return iol_tls_call_none(c->st, c->sp, name, a, b);
}

/* A method of a MemoryBIO or of the SSL object's C object: through the
 * descriptor taken from its type at set-up when the object is exactly of
 * that type (no method lookup), else by name. */
PyObject *
iol_tls_ccall(iol_modstate *st, int which, PyObject *obj, int name,
              PyObject *a)
{
    PyObject *tp = which < IOL_TD_SSL_READ ? st->tls_bio_type
                                           : st->tls_sslsock_type;
    if (Py_IS_TYPE(obj, (PyTypeObject *)tp)) {
        PyObject *args[2] = {obj, a};
        return PyObject_Vectorcall(st->tls_desc[which], args, a ? 2 : 1,
                                   NULL);
    }
    return iol_tls_call(st, obj, name, a, NULL);
}

/* bio.pending, through its getter when bio is a MemoryBIO. */
Py_ssize_t
iol_tls_pending(iol_modstate *st, PyObject *bio)
{
    PyObject *v;
    if (Py_IS_TYPE(bio, (PyTypeObject *)st->tls_bio_type)) {
        PyObject *desc = st->tls_desc[IOL_TD_BIO_PENDING];
        v = Py_TYPE(desc)->tp_descr_get(desc, bio, st->tls_bio_type);
    }
    else {
        v = PyObject_GetAttr(bio, st->tls_names[IOL_TN_PENDING]);
    }
    Py_ssize_t r = iol_tls_as_size(v);
    Py_XDECREF(v);
    return r;
}

/* The C object behind sp._sslobj when that is exactly an ssl.SSLObject
 * (whose read / write / pending only forward to it), else NULL with no
 * error set; NULL with an error set if an attribute lookup failed. */
PyObject *
iol_tls_inner(iol_tls_ctx *c)
{
    if (iol_tls_direct(c) != NULL) {
        return Py_NewRef(iol_tls_direct_inner(c));
    }
    PyObject *sslobj = iol_tls_get(c, IOL_TN_SSLOBJ);
    if (sslobj == NULL) {
        return NULL;
    }
    PyObject *inner = NULL;
    if (Py_IS_TYPE(sslobj, (PyTypeObject *)c->st->tls_sslobject_type)) {
        inner = PyObject_GetAttr(sslobj, c->st->tls_names[IOL_TN_SSLOBJ]);
    }
    Py_DECREF(sslobj);
    return inner;
}

/* The SSLProtocol's except-Exception arm: an Exception goes to
 * sp._fatal_error(exc, message) (0 once handled); anything else stays
 * raised (-1), as it leaves SSLProtocol's methods. */
int
iol_tls_fatal(iol_tls_ctx *c, const char *message)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *exc = iol_err_fetch();
    PyObject *msg = PyUnicode_FromString(message);
    int rc = msg ? iol_tls_sp_call(c, IOL_TN_FATAL_ERROR, exc, msg) : -1;
    Py_XDECREF(msg);
    Py_DECREF(exc);
    return rc;
}

/* _control_app_writing() runs only when it would change something.
 * `pend` is what the outgoing BIO holds when the caller knows it (the
 * direct path, which has just drained it), or -1 to ask the BIO. */
static int
control_app_writing(iol_tls_ctx *c, PyObject *outgoing, Py_ssize_t pend)
{
    if (pend < 0) {
        const iol_tls_conn *k = iol_tls_direct(c);
        pend = k ? (Py_ssize_t)iol_ossl_pending(k->wbio)
                 : iol_tls_pending(c->st, outgoing);
    }
    Py_ssize_t backlog = pend < 0 ? -1
                                  : iol_tls_size(c, IOL_TN_WRITE_BUFFER_SIZE);
    Py_ssize_t high = backlog < 0 ? -1 : iol_tls_size(c, IOL_TN_OUT_HIGH);
    Py_ssize_t low = high < 0 ? -1 : iol_tls_size(c, IOL_TN_OUT_LOW);
    int paused = low < 0 ? -1 : iol_tls_true(c, IOL_TN_APP_WRITING_PAUSED);
    if (paused < 0) {
        return -1;
    }
    Py_ssize_t size = pend + backlog;
    if ((size >= high && !paused) || (size <= low && paused)) {
        return iol_tls_sp_call(c, IOL_TN_CONTROL_APP_WRITING, NULL, NULL);
    }
    return 0;
}

/* _process_outgoing(): what the SSL object wrote goes to the raw
 * transport, unless that asked us to pause.  (An empty BIO would give
 * b"", which SSLProtocol does not send.) */
/* Whether raw is a native transport whose write() is the native one
 * (ioloop_c's SocketTransport subclasses it, write untouched): the
 * type last found so is kept. */
static int
native_raw(iol_modstate *st, PyObject *raw)
{
    PyTypeObject *tp = Py_TYPE(raw);
    if (st->TransportType == NULL) {
        return 0;
    }
    if (tp == st->TransportType || (PyObject *)tp == st->tls_raw_type) {
        return 1;
    }
    if (!PyType_IsSubtype(tp, st->TransportType)) {
        return 0;
    }
    PyObject *mine = PyObject_GetAttr((PyObject *)tp,
                                      st->tls_names[IOL_TN_WRITE]);
    PyObject *base = mine ? PyObject_GetAttr((PyObject *)st->TransportType,
                                             st->tls_names[IOL_TN_WRITE])
                          : NULL;
    int same = base != NULL && mine == base;
    Py_XDECREF(mine);
    Py_XDECREF(base);
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    if (same) {
        Py_XSETREF(st->tls_raw_type, Py_NewRef((PyObject *)tp));
    }
    return same;
}

/* What the direct calls leave in the outgoing BIO, to the raw transport:
 * from a buffer of ours to the native transport, in a bytes object to
 * any other.  No Python code runs between the BIO's pending and read.
 * Sets *left to what the BIO still holds after (0 once drained, or -1
 * when that is not known), which saves control_app_writing() a query. */
static int
outgoing_direct(iol_tls_ctx *c, const iol_tls_conn *k, Py_ssize_t *left)
{
    *left = -1;
    size_t pend = iol_ossl_pending(k->wbio);
    if (pend == 0) {
        *left = 0;
        return 0;
    }
    if (pend > INT_MAX) {
        pend = INT_MAX;
    }
    PyObject *raw = iol_tls_get(c, IOL_TN_TRANSPORT);
    if (raw == NULL) {
        return -1;
    }
    int rc = -1;
    PyObject *data = NULL;
    if (native_raw(c->st, raw)) {
        char stack[16384];
        char *buf = pend <= sizeof(stack) ? stack : PyMem_Malloc(pend);
        if (buf == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        TransportObject *tr = (TransportObject *)raw;
        int n = iol_ossl_bio_read(k->wbio, buf, (int)pend);
        rc = iol_tr_write_buf(tr, buf, n > 0 ? n : 0);
        if (buf != stack) {
            PyMem_Free(buf);
        }
        /* Sent whole at once: then no Python code ran (a queued write may
         * call pause_writing(), a failed one the exception handler), and
         * the BIO is as empty as the read left it. */
        if (rc == 0 && (size_t)n == pend && pend < INT_MAX && tr->wlen == 0 &&
            !tr->life.conn_lost && !tr->life.closing) {
            *left = 0;
        }
        goto done;
    }
    data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)pend);
    if (data == NULL) {
        goto done;
    }
    int n = iol_ossl_bio_read(k->wbio, PyBytes_AS_STRING(data), (int)pend);
    if (n > 0 && (size_t)n < pend) {
        /* Not expected of a memory BIO; keep what came. */
        Py_SETREF(data, PyBytes_FromStringAndSize(PyBytes_AS_STRING(data),
                                                  n));
    }
    rc = n <= 0 || data == NULL
             ? (data == NULL ? -1 : 0)
             : iol_tls_call_none(c->st, raw, IOL_TN_WRITE, data, NULL);
done:
    Py_XDECREF(data);
    Py_DECREF(raw);
    return rc;
}

int
iol_tls_outgoing(iol_tls_ctx *c)
{
    int rc = -1;
    PyObject *outgoing = iol_tls_get(c, IOL_TN_OUTGOING);
    PyObject *data = NULL, *raw = NULL;
    if (outgoing == NULL) {
        goto done;
    }
    int paused = iol_tls_true(c, IOL_TN_SSL_WRITING_PAUSED);
    if (paused < 0) {
        goto done;
    }
    const iol_tls_conn *k = paused ? NULL : iol_tls_direct(c);
    if (k != NULL) {
        Py_ssize_t left;
        if (outgoing_direct(c, k, &left) < 0) {
            goto done;
        }
        rc = control_app_writing(c, outgoing, left);
        goto done;
    }
    Py_ssize_t pend = paused ? 0 : iol_tls_pending(c->st, outgoing);
    if (pend < 0) {
        goto done;
    }
    if (pend > 0) {
        data = iol_tls_ccall(c->st, IOL_TD_BIO_READ, outgoing, IOL_TN_READ,
                             NULL);
        Py_ssize_t n = data ? PyObject_Size(data) : -1;
        if (n < 0) {
            goto done;
        }
        if (n > 0) {
            raw = iol_tls_get(c, IOL_TN_TRANSPORT);
            if (raw == NULL ||
                iol_tls_call_none(c->st, raw, IOL_TN_WRITE, data, NULL) < 0) {
                goto done;
            }
        }
    }
    rc = control_app_writing(c, outgoing, -1);
done:
    Py_XDECREF(outgoing);
    Py_XDECREF(data);
    Py_XDECREF(raw);
    return rc;
}

/* _control_ssl_reading(), only when it would pause or resume. */
int
iol_tls_control_reading(iol_tls_ctx *c, PyObject *incoming)
{
    const iol_tls_conn *k = iol_tls_direct(c);
    Py_ssize_t size = k ? (Py_ssize_t)iol_ossl_pending(k->rbio)
                        : iol_tls_pending(c->st, incoming);
    Py_ssize_t high = size < 0 ? -1 : iol_tls_size(c, IOL_TN_IN_HIGH);
    Py_ssize_t low = high < 0 ? -1 : iol_tls_size(c, IOL_TN_IN_LOW);
    int paused = low < 0 ? -1 : iol_tls_true(c, IOL_TN_SSL_READING_PAUSED);
    if (paused < 0) {
        return -1;
    }
    if ((size >= high && !paused) || (size <= low && paused)) {
        return iol_tls_sp_call(c, IOL_TN_CONTROL_SSL_READING, NULL, NULL);
    }
    return 0;
}

/* The methods tls.c calls on C objects, taken from their types by
 * iol_tls_setup() (IOL_TD_* order). */
static const struct {
    int bio;
    const char *name;
} tls_descs[IOL_TD_N] = {
    [IOL_TD_BIO_WRITE] = {1, "write"},
    [IOL_TD_BIO_READ] = {1, "read"},
    [IOL_TD_BIO_PENDING] = {1, "pending"},
    [IOL_TD_SSL_READ] = {0, "read"},
    [IOL_TD_SSL_WRITE] = {0, "write"},
    [IOL_TD_SSL_PENDING] = {0, "pending"},
};

int
iol_tls_setup(iol_modstate *st, PyObject *const *args)
{
    /* protocol type, WRAPPED, ssl.SSLObject, the again errors,
     * ssl.MemoryBIO, _ssl._SSLSocket, _ssl._SSLContext */
    PyObject *desc[IOL_TD_N] = {NULL};
    for (int i = 0; i < IOL_TD_N; i++) {
        PyObject *tp = tls_descs[i].bio ? args[4] : args[5];
        desc[i] = PyObject_GetAttrString(tp, tls_descs[i].name);
        if (desc[i] == NULL ||
            (i == IOL_TD_BIO_PENDING ? Py_TYPE(desc[i])->tp_descr_get == NULL
                                     : !PyCallable_Check(desc[i]))) {
            if (desc[i] != NULL) {
                PyErr_Format(PyExc_TypeError, "%R.%s is not what tls.c "
                             "calls", tp, tls_descs[i].name);
            }
            for (int j = 0; j <= i; j++) {
                Py_XDECREF(desc[j]);
            }
            return -1;
        }
    }
    for (int i = 0; i < IOL_TD_N; i++) {
        Py_XSETREF(st->tls_desc[i], desc[i]);
    }
    Py_XSETREF(st->tls_protocol_type, Py_NewRef(args[0]));
    Py_XSETREF(st->tls_wrapped, Py_NewRef(args[1]));
    Py_XSETREF(st->tls_sslobject_type, Py_NewRef(args[2]));
    Py_XSETREF(st->tls_again, Py_NewRef(args[3]));
    Py_XSETREF(st->tls_bio_type, Py_NewRef(args[4]));
    Py_XSETREF(st->tls_sslsock_type, Py_NewRef(args[5]));
    Py_XSETREF(st->tls_context_type, Py_NewRef(args[6]));
    return 0;
}

/* TLSState: the slots.  SSLProtocol's Python code reads and assigns
 * them as attributes, through member descriptors made from tls_names. */
static PyMemberDef tls_state_members[IOL_TS_N + 1];

static int
TLSState_traverse(TLSStateObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    for (int i = 0; i < IOL_TS_N; i++) {
        Py_VISIT(self->f[i]);
    }
    for (int i = 0; i < 3; i++) {
        Py_VISIT(self->d_key[i]);
    }
    Py_VISIT(self->d_inner);
    return 0;
}

static int
TLSState_clear(TLSStateObject *self)
{
    for (int i = 0; i < IOL_TS_N; i++) {
        Py_CLEAR(self->f[i]);
    }
    for (int i = 0; i < 3; i++) {
        Py_CLEAR(self->d_key[i]);
    }
    Py_CLEAR(self->d_inner);
    self->d_ok = 0;
    return 0;
}

static void
TLSState_dealloc(TLSStateObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    TLSState_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* For the tests: whether tls_ossl.c's check passed for the connection
 * (a getter, so that the member descriptors are exactly the slots). */
static PyObject *
TLSState_direct(TLSStateObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->d_ok);
}

static PyGetSetDef tls_state_getset[] = {
    {"_direct_ossl", (getter)TLSState_direct, NULL,
     "Whether the native steps call OpenSSL directly on this "
     "connection.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot tls_state_slots[] = {
    {Py_tp_getset, tls_state_getset},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, TLSState_dealloc},
    {Py_tp_traverse, TLSState_traverse},
    {Py_tp_clear, TLSState_clear},
    {Py_tp_members, tls_state_members},
    {Py_tp_doc, "Base of ioloop_c's SSLProtocol: the attributes its "
                "native steps read, as slots."},
    {0, NULL},
};

static PyType_Spec tls_state_spec = {
    .name = "ioloop_c._core.TLSState",
    .basicsize = sizeof(TLSStateObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = tls_state_slots,
};

static PyType_Slot tls_write_slots[] = {
    {Py_tp_methods, iol_tls_write_methods},
    {Py_tp_doc, "Mixin: the native write() of ioloop_c's TLS app "
                "transport."},
    {0, NULL},
};

static PyType_Spec tls_write_spec = {
    .name = "ioloop_c._core.TLSWrite",
    .basicsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = tls_write_slots,
};

int
iol_tls_init(PyObject *mod, iol_modstate *st)
{
    for (int i = 0; i < IOL_TLS_NNAMES; i++) {
        st->tls_names[i] = PyUnicode_InternFromString(tls_names[i]);
        if (st->tls_names[i] == NULL) {
            return -1;
        }
    }
    st->tls_empty = PyBytes_FromStringAndSize(NULL, 0);
    if (st->tls_empty == NULL) {
        return -1;
    }
    st->TLSWriteType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &tls_write_spec, NULL);
    if (st->TLSWriteType == NULL ||
        PyModule_AddType(mod, st->TLSWriteType) < 0) {
        return -1;
    }
    /* The member table is the same for every module object; filling it
     * again writes the same values. */
    for (int i = 0; i < IOL_TS_N; i++) {
        tls_state_members[i] = (PyMemberDef){
            tls_names[i], T_OBJECT,
            (Py_ssize_t)(offsetof(TLSStateObject, f) +
                         (size_t)i * sizeof(PyObject *)),
            0, NULL};
    }

    st->TLSStateType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &tls_state_spec, NULL);
    if (st->TLSStateType == NULL ||
        PyModule_AddType(mod, st->TLSStateType) < 0) {
        return -1;
    }
    return 0;
}

int
iol_tls_traverse(iol_modstate *st, visitproc visit, void *arg)
{
    Py_VISIT(st->TLSWriteType);
    Py_VISIT(st->TLSStateType);
    Py_VISIT(st->tls_protocol_type);
    Py_VISIT(st->tls_wrapped);
    Py_VISIT(st->tls_sslobject_type);
    Py_VISIT(st->tls_again);
    Py_VISIT(st->tls_bio_type);
    Py_VISIT(st->tls_sslsock_type);
    Py_VISIT(st->tls_context_type);
    Py_VISIT(st->tls_raw_type);
    for (int i = 0; i < IOL_TD_N; i++) {
        Py_VISIT(st->tls_desc[i]);
    }
    return 0;
}

void
iol_tls_clear(iol_modstate *st)
{
    for (int i = 0; i < IOL_TLS_NNAMES; i++) {
        Py_CLEAR(st->tls_names[i]);
    }
    for (int i = 0; i < IOL_TD_N; i++) {
        Py_CLEAR(st->tls_desc[i]);
    }
    Py_CLEAR(st->tls_empty);
    Py_CLEAR(st->TLSWriteType);
    Py_CLEAR(st->TLSStateType);
    Py_CLEAR(st->tls_protocol_type);
    Py_CLEAR(st->tls_wrapped);
    Py_CLEAR(st->tls_sslobject_type);
    Py_CLEAR(st->tls_again);
    Py_CLEAR(st->tls_bio_type);
    Py_CLEAR(st->tls_sslsock_type);
    Py_CLEAR(st->tls_context_type);
    Py_CLEAR(st->tls_raw_type);
}
