/*
 * transport.c: the native stream transport for TCP and Unix sockets.
 *
 * asyncio's transport contract (selector_events._SelectorSocketTransport
 * is the reference behaviour) with the data path in C: the transport
 * owns its fd in the loop's fd table, so a readable or writable socket
 * runs iol_transport_event() straight from the tick, with no handle made
 * and no Python frame between the kernel and data_received().
 *
 * Reads: a Protocol gets exact-size bytes, read into a bytes object
 * and cut to size; a BufferedProtocol gets get_buffer(-1), a recv() into
 * it and buffer_updated(n).  The output side is in transport_write.c,
 * the life cycle shared with the datagram transport (pausing, close,
 * abort, release) in transport_life.c; the parts off the data path
 * (set-up, connection_lost, error reports, repr, sendfile's waiter) are
 * Python, in ioloop_c/_transport.py.
 *
 * The type derives from asyncio's transports._FlowControlMixin (what
 * asyncio's own socket transports derive from, and what its sendfile
 * fallback insists on), so it is made at import from that class, after
 * checking that its instances are the object slots this struct mirrors.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <structmember.h>

#include "../engine/sock.h"

/* The largest read that recv_data() counts as small: bytes objects up
 * to here come from pymalloc (its limit is 512 B with the object's
 * header). */
#define IOL_SMALL_READ 448
_Static_assert(IOL_READ_SIZE <= IOL_READ_BUF_SIZE,
               "a stream read must fit the loop's read buffer");
#define IOL_LOW_WATER (16 * 1024)

/* Call protocol.<name>(arg or nothing); NULL with the error set. */
static PyObject *
call_protocol(TransportObject *tr, PyObject *name, PyObject *arg)
{
    PyObject *proto = Py_NewRef(tr->protocol);
    PyObject *res = arg ? PyObject_CallMethodOneArg(proto, name, arg)
                        : PyObject_CallMethodNoArgs(proto, name);
    Py_DECREF(proto);
    return res;
}

static int
tr_close(TransportObject *tr)
{
    return iol_trl_close((PyObject *)tr, &tr->life, tr->wlen);
}

int
iol_tr_on_eof(TransportObject *tr)
{
    PyObject *res = call_protocol(tr, tr->st->str_eof_received, NULL);
    int keep_open = res ? PyObject_IsTrue(res) : -1;
    Py_XDECREF(res);
    if (keep_open < 0) {
        return iol_tr_fatal(tr, "Fatal error: protocol.eof_received() "
                            "call failed.");
    }
    if (keep_open) {
        /* Nothing more to read, but the protocol may still write. */
        return iol_tr_want(tr, tr->life.smask & ~IOL_READ);
    }
    return tr_close(tr);
}

int
iol_tr_read_error(TransportObject *tr)
{
    if (iol_sock_would_block(errno)) {
        return 0;
    }
    PyErr_SetFromErrno(PyExc_OSError);
    return iol_tr_fatal(tr, "Fatal read error on socket transport");
}

/* A Protocol's read, one of two ways, as the last read was small or
 * not.  Small: recv() into the loop's read buffer, then exact-size bytes
 * from pymalloc, a copy of a few hundred bytes.  Large: recv() into a
 * fresh bytes object of IOL_READ_SIZE, cut down to what came (shrinking
 * keeps the block where it is): no copy, but a malloc, a realloc and a
 * free in glibc.  Callgrind, instructions per echo round trip (10
 * connections): at 100 B the large way alone cost 2,447, the two ways
 * 1,732; at 4 KiB copying costs more (2,657) than the large way (2,431).
 * IOL_READ_SIZE stays just below glibc's mmap threshold (128 KiB, with
 * the object's header and malloc's own), so a read's object comes from
 * the heap: asyncio's 256 KiB objects each cost an mmap, page faults and
 * a munmap (freeing a chunk already shrunk does not raise the threshold).
 * Echo of 1 MiB messages per server CPU-second, ours / uvloop at 10 and
 * 100 connections: 0.81 and 0.72 reading 64 KiB at a time, 1.03 and 1.12
 * reading this much (uvloop reads up to 256 KB). */
static PyObject *
recv_data(TransportObject *tr, ssize_t *n)
{
    PyObject *data;
    if (tr->big_reads) {
        data = PyBytes_FromStringAndSize(NULL, IOL_READ_SIZE);
        if (data == NULL) {
            return NULL;
        }
        *n = iol_sock_recv(tr->fd, PyBytes_AS_STRING(data), IOL_READ_SIZE);
        if (*n <= 0) {
            int err = errno;
            Py_DECREF(data);
            errno = err;
            return NULL;
        }
        tr->big_reads = *n > IOL_SMALL_READ;
        if (*n < IOL_READ_SIZE && _PyBytes_Resize(&data, *n) < 0) {
            return NULL;
        }
        return data;
    }
    char *buf = iol_loop_read_buf((LoopObject *)tr->life.loop);
    if (buf == NULL) {
        return NULL;
    }
    *n = iol_sock_recv(tr->fd, buf, IOL_READ_SIZE);
    if (*n <= 0) {
        return NULL;
    }
    tr->big_reads = *n > IOL_SMALL_READ;
    return PyBytes_FromStringAndSize(buf, *n);
}

int
iol_tr_read_data(TransportObject *tr)
{
    ssize_t n = 1;
    PyObject *data = recv_data(tr, &n);
    if (data == NULL) {
        if (n > 0) {
            return iol_tr_fatal(tr, "Fatal read error on socket transport");
        }
        return n < 0 ? iol_tr_read_error(tr) : iol_tr_on_eof(tr);
    }
    PyObject *res = call_protocol(tr, tr->st->str_data_received, data);
    Py_DECREF(data);
    if (res == NULL) {
        return iol_tr_fatal(tr, "Fatal error: protocol.data_received() "
                            "call failed.");
    }
    Py_DECREF(res);
    return 0;
}

int
iol_tr_read_buffered(TransportObject *tr)
{
    static const char get_failed[] =
        "Fatal error: protocol.get_buffer() call failed.";
    PyObject *m1 = PyLong_FromLong(-1);
    PyObject *buf = m1 ? call_protocol(tr, tr->st->str_get_buffer, m1)
                       : NULL;
    Py_XDECREF(m1);
    if (buf == NULL) {
        return iol_tr_fatal(tr, get_failed);
    }
    Py_ssize_t size = PyObject_Size(buf);
    if (size <= 0) {
        Py_DECREF(buf);
        if (size == 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "get_buffer() returned an empty buffer");
        }
        return iol_tr_fatal(tr, get_failed);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) < 0) {
        /* What socket.recv_into() says of a read-only buffer. */
        if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Format(PyExc_TypeError, "get_buffer() must return a "
                         "writable buffer, not '%.200s'",
                         Py_TYPE(buf)->tp_name);
        }
        Py_DECREF(buf);
        return iol_tr_fatal(tr, "Fatal read error on socket transport");
    }
    ssize_t n = iol_sock_recv(tr->fd, view.buf, (size_t)view.len);
    int err = errno;
    PyBuffer_Release(&view);
    Py_DECREF(buf);
    if (n < 0) {
        errno = err;
        return iol_tr_read_error(tr);
    }
    if (n == 0) {
        return iol_tr_on_eof(tr);
    }
    PyObject *nobj = PyLong_FromSsize_t(n);
    PyObject *res = nobj ? call_protocol(tr, tr->st->str_buffer_updated,
                                         nobj)
                         : NULL;
    Py_XDECREF(nobj);
    if (res == NULL) {
        return iol_tr_fatal(tr, "Fatal error: protocol.buffer_updated() "
                            "call failed.");
    }
    Py_DECREF(res);
    return 0;
}

int
iol_transport_event(PyObject *obj, int mask)
{
    TransportObject *tr = (TransportObject *)obj;
    iol_trlife *lf = &tr->life;
    if (lf->loop == NULL || tr->protocol == NULL || lf->conn_lost) {
        return 0;
    }
    PyObject *ctx = Py_XNewRef(lf->context);
    if (ctx != NULL && PyContext_Enter(ctx) < 0) {
        Py_DECREF(ctx);
        return iol_tr_fatal(tr, "Fatal error on transport");
    }
    int rc = 0;
    /* As in selectors, an error or hang-up wakes both directions. */
    if ((mask & (IOL_READ | IOL_ERROR)) && (lf->smask & IOL_READ)) {
        rc = tr->read(tr);
    }
    if (rc == 0 && (mask & (IOL_WRITE | IOL_ERROR)) &&
        (lf->smask & IOL_WRITE) && tr->wlen && !lf->conn_lost &&
        lf->loop != NULL) {
        rc = iol_tr_flush(tr);
    }
    /* Anything else that failed (connection_lost() raising when a close
     * completes, a call_soon() refused) is this transport's fatal error:
     * only SystemExit and KeyboardInterrupt leave the loop. */
    if (rc < 0) {
        rc = iol_tr_fatal(tr, "Fatal error on transport");
    }
    if (ctx != NULL) {
        PyObject *exc = iol_err_fetch();
        if (PyContext_Exit(ctx) < 0) {
            PyErr_WriteUnraisable(ctx);
        }
        iol_err_restore(exc);
        Py_DECREF(ctx);
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Methods */

static int
set_protocol(TransportObject *tr, PyObject *protocol)
{
    int buffered = PyObject_IsInstance(protocol, tr->st->BufferedProtocol);
    if (buffered < 0) {
        return -1;
    }
    int tls = tr->st->tls_protocol_type != NULL &&
              Py_IS_TYPE(protocol, (PyTypeObject *)tr->st->tls_protocol_type);
    tr->read = tls ? iol_tls_read
               : buffered ? iol_tr_read_buffered
               : iol_streams_protocol(tr->st, protocol) ? iol_tr_read_stream
               : iol_tr_read_data;
    Py_XSETREF(tr->protocol, Py_NewRef(protocol));
    tr->protocol_connected = 1;
    return 0;
}

int
iol_transport_native_init(TransportObject *tr, PyObject *loop,
                          PyObject *sock, PyObject *protocol,
                          PyObject *context)
{
    if (!PyObject_TypeCheck(loop, tr->st->LoopType)) {
        PyErr_Format(PyExc_TypeError, "an ioloop_c loop is required, got "
                     "%R", loop);
        return -1;
    }
    if (tr->life.loop != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "transport already set up");
        return -1;
    }
    if (context != Py_None && !PyContext_CheckExact(context)) {
        PyErr_Format(PyExc_TypeError, "context must be a "
                     "contextvars.Context, got %R", context);
        return -1;
    }
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0) {
        return -1;
    }
    PyObject *ctx = context == Py_None ? PyContext_CopyCurrent()
                                       : Py_NewRef(context);
    if (ctx == NULL) {
        return -1;
    }
    if (set_protocol(tr, protocol) < 0) {
        Py_DECREF(ctx);
        return -1;
    }
    tr->life.explicit_context = context != Py_None;
    Py_XSETREF(tr->life.context, ctx);
    Py_XSETREF(tr->life.sock, Py_NewRef(sock));
    Py_XSETREF(tr->life.loop, Py_NewRef(loop));
    tr->fd = fd;
    return 0;
}

/* _native_init(loop, sock, protocol, context=None) */
static PyObject *
Transport_native_init(TransportObject *tr, PyObject *args)
{
    PyObject *loop, *sock, *protocol, *context = Py_None;
    if (!PyArg_ParseTuple(args, "OOO|O:_native_init", &loop, &sock,
                          &protocol, &context)) {
        return NULL;
    }
    if (iol_transport_native_init(tr, loop, sock, protocol, context) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_start_reading(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    if (iol_trl_start_reading((PyObject *)tr, &tr->life) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_close(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr_close(tr) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _force_close(exc): drop the queue, close at once, connection_lost(exc)
 * soon after. */
static PyObject *
Transport_force_close(TransportObject *tr, PyObject *exc)
{
    if (iol_trl_force_close((PyObject *)tr, &tr->life, exc) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_abort(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    return Transport_force_close(tr, Py_None);
}

static PyObject *
Transport_pause_reading(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    if (iol_trl_pause_reading((PyObject *)tr, &tr->life) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_resume_reading(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    if (iol_trl_resume_reading((PyObject *)tr, &tr->life) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_is_reading(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!tr->life.closing && !tr->life.paused);
}

static PyObject *
Transport_is_closing(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(tr->life.closing);
}

static PyObject *
Transport_set_protocol(TransportObject *tr, PyObject *protocol)
{
    if (set_protocol(tr, protocol) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_get_protocol(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(tr->protocol ? tr->protocol : Py_None);
}

/* _release(): once connection_lost ran, leave the loop, close the socket
 * and drop the protocol and the loop. */
static PyObject *
Transport_release(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    PyObject *res = iol_trl_release((PyObject *)tr, &tr->life, tr->st);
    Py_CLEAR(tr->protocol);
    Py_CLEAR(tr->life.loop);
    return res;
}

/* _inet_sockname(): the socket's own address as getsockname() gives it,
 * for IPv4 and IPv6 (without the socket module's round trip through
 * getnameinfo() and sprintf() for IPv4); None for any other family or
 * failure, which the caller asks the socket object about instead. */
static PyObject *
Transport_inet_sockname(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (tr->fd < 0 || getsockname(tr->fd, (struct sockaddr *)&ss, &len) < 0) {
        Py_RETURN_NONE;
    }
    PyObject *addr = iol_inet_addr_to_python((struct sockaddr *)&ss, len);
    if (addr == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return addr;
}

static PyObject *
Transport_get_polling(TransportObject *tr, void *closure)
{
    int m = tr->life.smask;
    return PyBool_FromLong(m & (closure ? IOL_WRITE : IOL_READ));
}

static PyMethodDef transport_methods[] = {
    {"_native_init", (PyCFunction)Transport_native_init, METH_VARARGS,
     "_native_init(loop, sock, protocol, context=None)"},
    {"_start_reading", (PyCFunction)Transport_start_reading, METH_NOARGS,
     "Watch the socket for reading, unless paused or closing."},
    {"close", (PyCFunction)Transport_close, METH_NOARGS,
     "Stop reading; once the queue is sent, call connection_lost(None)."},
    {"abort", (PyCFunction)Transport_abort, METH_NOARGS,
     "Close at once, dropping the queue."},
    {"_force_close", (PyCFunction)Transport_force_close, METH_O, NULL},
    {"pause_reading", (PyCFunction)Transport_pause_reading, METH_NOARGS,
     "Stop calling the protocol with received data."},
    {"resume_reading", (PyCFunction)Transport_resume_reading, METH_NOARGS,
     "Undo pause_reading()."},
    {"is_reading", (PyCFunction)Transport_is_reading, METH_NOARGS,
     "True unless paused or closing."},
    {"is_closing", (PyCFunction)Transport_is_closing, METH_NOARGS,
     "True once close() or abort() was called or the connection lost."},
    {"set_protocol", (PyCFunction)Transport_set_protocol, METH_O,
     "Switch to another protocol (Protocol or BufferedProtocol)."},
    {"get_protocol", (PyCFunction)Transport_get_protocol, METH_NOARGS,
     "The current protocol."},
    {"_release", (PyCFunction)Transport_release, METH_NOARGS, NULL},
    {"_inet_sockname", (PyCFunction)Transport_inet_sockname, METH_NOARGS,
     NULL},
    {NULL, NULL, 0, NULL},
};

#define TR_MEMBER(name, type, field, flags)                                 \
    {name, type, offsetof(TransportObject, field), flags, NULL}

static PyMemberDef transport_members[] = {
    /* Writable, as asyncio's is: code written against asyncio's transport
     * (CPython's test_ssl) swaps in a wrapper.  The data path uses the fd,
     * never this object; it is what _release() closes. */
    TR_MEMBER("_sock", T_OBJECT, life.sock, 0),
    TR_MEMBER("_sock_fd", T_INT, fd, READONLY),
    TR_MEMBER("_protocol", T_OBJECT, protocol, READONLY),
    TR_MEMBER("_loop", T_OBJECT, life.loop, READONLY),
    TR_MEMBER("_context", T_OBJECT, life.context, READONLY),
    TR_MEMBER("_empty_waiter", T_OBJECT, empty_waiter, 0),
    TR_MEMBER("_server", T_OBJECT, server, 0),
    /* Ints, not bools, as before the flags moved into `life`. */
    TR_MEMBER("_closing", T_BYTE, life.closing, READONLY),
    TR_MEMBER("_conn_lost", T_INT, life.conn_lost, READONLY),
    TR_MEMBER("_paused", T_BYTE, life.paused, READONLY),
    TR_MEMBER("_eof", T_INT, eof, READONLY),
    TR_MEMBER("_protocol_connected", T_INT, protocol_connected, 0),
    TR_MEMBER("_protocol_paused", T_INT, protocol_paused, READONLY),
    TR_MEMBER("_high_water", T_PYSSIZET, high, READONLY),
    TR_MEMBER("_low_water", T_PYSSIZET, low, READONLY),
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef transport_getset[] = {
    {"_read_polling", (getter)Transport_get_polling, NULL, NULL, NULL},
    {"_write_polling", (getter)Transport_get_polling, NULL, NULL, ""},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------------ */
/* Life cycle */

static int
ops_want(PyObject *tr, int mask)
{
    return iol_tr_want((TransportObject *)tr, mask);
}

static void
ops_queue_clear(PyObject *tr)
{
    iol_tr_queue_clear((TransportObject *)tr);
}

static const iol_trops transport_ops = {
    .event = iol_transport_event,
    .want = ops_want,
    .queue_clear = ops_queue_clear,
};

static PyObject *
Transport_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
              PyObject *Py_UNUSED(kwds))
{
    iol_modstate *st = iol_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    TransportObject *tr = (TransportObject *)type->tp_alloc(type, 0);
    if (tr == NULL) {
        return NULL;
    }
    tr->st = st;
    tr->life.ops = &transport_ops;
    tr->read = iol_tr_read_data;
    tr->fd = -1;
    tr->high = 4 * IOL_LOW_WATER;
    tr->low = IOL_LOW_WATER;
    return (PyObject *)tr;
}

static int
Transport_traverse(TransportObject *tr, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(tr));
    for (int i = 0; i < IOL_TR_BASE_SLOTS; i++) {
        Py_VISIT(tr->base_slots[i]);
    }
    Py_VISIT(tr->protocol);
    Py_VISIT(tr->empty_waiter);
    Py_VISIT(tr->server);
    return iol_trl_traverse(&tr->life, visit, arg);
}

static int
Transport_clear(TransportObject *tr)
{
    for (int i = 0; i < IOL_TR_BASE_SLOTS; i++) {
        Py_CLEAR(tr->base_slots[i]);
    }
    iol_trl_clear(&tr->life);
    Py_CLEAR(tr->protocol);
    Py_CLEAR(tr->empty_waiter);
    Py_CLEAR(tr->server);
    return 0;
}

static void
Transport_dealloc(TransportObject *tr)
{
    PyTypeObject *tp = Py_TYPE(tr);
    PyObject_GC_UnTrack(tr);
    /* The loop's fd table holds a reference while the transport watches
     * its fd, so none is held here. */
    Transport_clear(tr);
    iol_tr_queue_clear(tr);
    PyMem_Free(tr->wq);
    tp->tp_free((PyObject *)tr);
    Py_DECREF(tp);
}

static PyType_Slot transport_slots[] = {
    {Py_tp_new, Transport_new},
    {Py_tp_dealloc, Transport_dealloc},
    {Py_tp_traverse, Transport_traverse},
    {Py_tp_clear, Transport_clear},
    {Py_tp_methods, transport_methods},
    {Py_tp_members, transport_members},
    {Py_tp_getset, transport_getset},
    {Py_tp_doc, "The native core of ioloop_c's socket transport."},
    {0, NULL},
};

static PyType_Spec transport_spec = {
    .name = "ioloop_c._core.StreamTransport",
    .basicsize = sizeof(TransportObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = transport_slots,
};

/* Whether asyncio's _FlowControlMixin instances are exactly an object
 * header and IOL_TR_BASE_SLOTS object slots, _extra first: only Python
 * classes with __slots__ from there up to object, no __dict__, no
 * weak references. */
int
iol_tr_base_layout_ok(PyTypeObject *base, PyObject *transports)
{
    if (base->tp_basicsize != (Py_ssize_t)offsetof(TransportObject, st) ||
        base->tp_itemsize != 0 || base->tp_dictoffset != 0 ||
        base->tp_weaklistoffset != 0) {
        return 0;
    }
    for (PyTypeObject *t = base; t != &PyBaseObject_Type; t = t->tp_base) {
        if (t == NULL || !(t->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            return 0;
        }
    }
    PyObject *bt = PyObject_GetAttrString(transports, "BaseTransport");
    PyObject *d = bt ? PyObject_GetAttrString(bt, "_extra") : NULL;
    Py_XDECREF(bt);
    int ok = d != NULL && Py_IS_TYPE(d, &PyMemberDescr_Type) &&
             ((PyMemberDescrObject *)d)->d_member->offset ==
                 (Py_ssize_t)offsetof(TransportObject, base_slots);
    Py_XDECREF(d);
    PyErr_Clear();
    return ok;
}

/* A spec has one method table; the output side's lives in its own file
 * and is added here. */
static int
add_methods(PyTypeObject *tp)
{
    for (PyMethodDef *m = iol_transport_write_methods; m->ml_name; m++) {
        PyObject *d = PyDescr_NewMethod(tp, m);
        if (d == NULL) {
            return -1;
        }
        int rc = PyDict_SetItemString(tp->tp_dict, m->ml_name, d);
        Py_DECREF(d);
        if (rc < 0) {
            return -1;
        }
    }
    PyType_Modified(tp);
    return 0;
}

int
iol_transport_type_init(PyObject *mod, iol_modstate *st)
{
    int rc = -1;
    PyObject *transports = PyImport_ImportModule("asyncio.transports");
    PyObject *protocols = PyImport_ImportModule("asyncio.protocols");
    PyObject *base = NULL, *bases = NULL;
    if (transports == NULL || protocols == NULL) {
        goto done;
    }
    st->BufferedProtocol = PyObject_GetAttrString(protocols,
                                                  "BufferedProtocol");
    base = PyObject_GetAttrString(transports, "_FlowControlMixin");
    if (st->BufferedProtocol == NULL || base == NULL) {
        goto done;
    }
    if (!PyType_Check(base) ||
        !iol_tr_base_layout_ok((PyTypeObject *)base, transports)) {
        rc = 0; /* asyncio's own transport serves */
        goto done;
    }
    bases = PyTuple_Pack(1, base);
    if (bases == NULL) {
        goto done;
    }
    st->TransportType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &transport_spec, bases);
    if (st->TransportType == NULL || add_methods(st->TransportType) < 0 ||
        PyModule_AddType(mod, st->TransportType) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(transports);
    Py_XDECREF(protocols);
    Py_XDECREF(base);
    Py_XDECREF(bases);
    return rc;
}
