/*
 * datagram.c: the native datagram transport (UDP and Unix datagram
 * sockets), behind loop.create_datagram_endpoint().
 *
 * asyncio's selector_events._SelectorDatagramTransport is the reference
 * behaviour, version by version; the data path is C.  The transport owns
 * its fd in the loop's fd table, so a readable socket runs
 * iol_datagram_event() straight from the tick: recvfrom() into the
 * loop's one read buffer, a copy out at the datagram's size, and
 * datagram_received(data, addr), with no handle and no Python frame in
 * between.  A readiness event takes a few datagrams at once (asyncio
 * takes one per event), so a busy socket costs fewer wake-ups.
 *
 * The sender's address becomes what socket.recvfrom() would return: a
 * (host, port) tuple for AF_INET, (host, port, flowinfo, scope_id) for
 * AF_INET6, a path (str, or bytes for Linux's abstract names) for
 * AF_UNIX, None for an unnamed sender.  The last one is kept, so a peer
 * that keeps talking costs no new tuple.  The output side, sendto() and
 * its queue, is in datagram_send.c; the life cycle shared with the
 * stream transport in transport_life.c; set-up, connection_lost, reports
 * and repr are Python, in ioloop_c/_datagram.py and ioloop_c/_transport.py.
 */
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <structmember.h>
#include <sys/un.h>

#include "../engine/sock.h"

/* At most this many datagrams per readiness event. */
#define IOL_DGRAM_BATCH 16

/* The Python form of a sender's address, as the socket module makes it;
 * NULL with an exception set. */
static PyObject *
addr_to_python(DatagramObject *dg, const struct sockaddr_storage *sa,
               socklen_t salen)
{
    if (salen == 0) {
        return Py_NewRef(Py_None);
    }
    if (dg->rx_addr != NULL && salen == dg->rx_salen &&
        memcmp(sa, &dg->rx_sa, salen) == 0) {
        return Py_NewRef(dg->rx_addr);
    }
    PyObject *addr = NULL;
    if (sa->ss_family == AF_INET || sa->ss_family == AF_INET6) {
        addr = iol_inet_addr_to_python((const struct sockaddr *)sa, salen);
        if (addr == NULL && !PyErr_Occurred()) {
            errno = EINVAL;
            PyErr_SetFromErrno(PyExc_OSError);
        }
    }
    else if (sa->ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t len = salen > off ? (size_t)salen - off : 0;
        if (len > 0 && un->sun_path[0] == '\0') {
            /* Linux's abstract namespace: the bytes as they are. */
            addr = PyBytes_FromStringAndSize(un->sun_path, (Py_ssize_t)len);
        }
        else {
            /* A path, up to its NUL (the storage was zeroed). */
            size_t n = strnlen(un->sun_path, sizeof(*sa) - off);
            addr = PyUnicode_DecodeFSDefaultAndSize(un->sun_path,
                                                    (Py_ssize_t)n);
        }
    }
    else {
        PyErr_Format(PyExc_OSError, "unsupported address family %d",
                     (int)sa->ss_family);
    }
    if (addr != NULL) {
        Py_XSETREF(dg->rx_addr, Py_NewRef(addr));
        memcpy(&dg->rx_sa, sa, salen);
        dg->rx_salen = salen;
    }
    return addr;
}

/* Call protocol.<name>(args...); a failure is reported as asyncio's loop
 * reports a callback that raised, and reading goes on.  -1 only for
 * SystemExit / KeyboardInterrupt. */
static int
call_protocol(DatagramObject *dg, PyObject *name, PyObject *a,
              PyObject *b, const char *message)
{
    PyObject *proto = Py_NewRef(dg->protocol);
    PyObject *res = PyObject_CallMethodObjArgs(proto, name, a, b, NULL);
    Py_DECREF(proto);
    if (res != NULL) {
        Py_DECREF(res);
        return 0;
    }
    PyObject *exc = iol_err_fetch();
    int rc = iol_dg_report(dg, exc, message);
    Py_XDECREF(exc);
    return rc;
}

/* One datagram, or an error, to the protocol; 1 when the socket has no
 * more for now. */
_Static_assert(IOL_DGRAM_MAX <= IOL_READ_BUF_SIZE,
               "a datagram read must fit the loop's read buffer");

static int
read_one(DatagramObject *dg)
{
    char *buf = iol_loop_read_buf((LoopObject *)dg->life.loop);
    if (buf == NULL) {
        return iol_transport_fatal((PyObject *)dg, "Fatal read error on "
                                   "datagram transport");
    }
    struct sockaddr_storage sa;
    socklen_t salen;
    ssize_t n = iol_sock_recvfrom(dg->fd, buf, IOL_DGRAM_MAX, &sa, &salen);
    if (n < 0) {
        if (iol_sock_would_block(errno)) {
            return 1;
        }
        /* ECONNREFUSED after an ICMP answer, and the like: the
         * transport stays open. */
        PyErr_SetFromErrno(PyExc_OSError);
        PyObject *exc = iol_err_fetch();
        int rc = call_protocol(dg, dg->st->str_error_received, exc, NULL,
                               "protocol.error_received() call failed.");
        Py_DECREF(exc);
        return rc < 0 ? -1 : 1;
    }
    PyObject *data = PyBytes_FromStringAndSize(buf, n);
    PyObject *addr = data ? addr_to_python(dg, &sa, salen) : NULL;
    if (addr == NULL) {
        Py_XDECREF(data);
        return iol_transport_fatal((PyObject *)dg, "Fatal read error on "
                                   "datagram transport");
    }
    int rc = call_protocol(dg, dg->st->str_datagram_received, data, addr,
                           "protocol.datagram_received() call failed.");
    Py_DECREF(data);
    Py_DECREF(addr);
    return rc;
}

static int
read_ready(DatagramObject *dg)
{
    iol_trlife *lf = &dg->life;
    for (int i = 0; i < IOL_DGRAM_BATCH; i++) {
        /* The protocol may have closed, paused or switched us. */
        if (lf->conn_lost || lf->loop == NULL || dg->protocol == NULL ||
            !(lf->smask & IOL_READ)) {
            return 0;
        }
        int rc = read_one(dg);
        if (rc != 0) {
            return rc < 0 ? -1 : 0;
        }
    }
    return 0;
}

int
iol_datagram_event(PyObject *obj, int mask)
{
    DatagramObject *dg = (DatagramObject *)obj;
    if (dg->life.loop == NULL || dg->protocol == NULL) {
        return 0;
    }
    Py_INCREF(dg);
    PyObject *ctx = Py_XNewRef(dg->life.context);
    int rc = 0;
    if (ctx != NULL && PyContext_Enter(ctx) < 0) {
        rc = iol_transport_fatal(obj, "Fatal error on transport");
        goto done;
    }
    if ((mask & (IOL_READ | IOL_ERROR)) && (dg->life.smask & IOL_READ) &&
        !dg->life.conn_lost) {
        rc = read_ready(dg);
    }
    if (rc == 0 && (mask & (IOL_WRITE | IOL_ERROR)) &&
        (dg->life.smask & IOL_WRITE) && dg->wlen && dg->life.loop != NULL) {
        rc = iol_dg_flush(dg);
    }
    if (ctx != NULL) {
        PyObject *exc = iol_err_fetch();
        if (PyContext_Exit(ctx) < 0) {
            PyErr_WriteUnraisable(ctx);
        }
        iol_err_restore(exc);
    }
done:
    Py_XDECREF(ctx);
    Py_DECREF(dg);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Methods */

/* _native_init(loop, sock, protocol, address, connected, header,
 *              allow_empty) */
static PyObject *
Datagram_native_init(DatagramObject *dg, PyObject *args)
{
    PyObject *loop, *sock, *protocol, *address;
    int connected, allow_empty;
    Py_ssize_t header;
    if (!PyArg_ParseTuple(args, "OOOOpnp:_native_init", &loop, &sock,
                          &protocol, &address, &connected, &header,
                          &allow_empty)) {
        return NULL;
    }
    if (!PyObject_TypeCheck(loop, dg->st->LoopType)) {
        PyErr_Format(PyExc_TypeError, "an ioloop_c loop is required, got "
                     "%R", loop);
        return NULL;
    }
    if (dg->life.loop != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "transport already set up");
        return NULL;
    }
    if (header < 0) {
        PyErr_SetString(PyExc_ValueError, "header must be >= 0");
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(sock);
    if (fd < 0) {
        return NULL;
    }
    PyObject *fam = PyObject_GetAttrString(sock, "family");
    int family = fam ? iol_long_as_int(fam) : -1;
    Py_XDECREF(fam);
    if (family < 0) {
        return NULL;
    }
    PyObject *ctx = PyContext_CopyCurrent();
    if (ctx == NULL) {
        return NULL;
    }
    Py_XSETREF(dg->life.context, ctx);
    Py_XSETREF(dg->protocol, Py_NewRef(protocol));
    Py_XSETREF(dg->address, Py_NewRef(address));
    Py_XSETREF(dg->life.sock, Py_NewRef(sock));
    Py_XSETREF(dg->life.loop, Py_NewRef(loop));
    dg->protocol_connected = 1;
    dg->fd = fd;
    dg->family = family;
    dg->connected = connected;
    dg->header = header;
    dg->allow_empty = allow_empty;
    Py_RETURN_NONE;
}

/* The life-cycle methods are transport_life.c's, as the stream
 * transport's are; these only unwrap the result.  A close() with
 * datagrams queued is finished by the last one sent. */
static PyObject *
life_result(int rc)
{
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Datagram_start_reading(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    return life_result(iol_trl_start_reading((PyObject *)dg, &dg->life));
}

static PyObject *
Datagram_close(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    return life_result(iol_trl_close((PyObject *)dg, &dg->life, dg->wlen));
}

/* _force_close(exc): drop the queue, stop at once, connection_lost(exc)
 * soon after. */
static PyObject *
Datagram_force_close(DatagramObject *dg, PyObject *exc)
{
    return life_result(iol_trl_force_close((PyObject *)dg, &dg->life, exc));
}

static PyObject *
Datagram_abort(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    return Datagram_force_close(dg, Py_None);
}

static PyObject *
Datagram_pause_reading(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    return life_result(iol_trl_pause_reading((PyObject *)dg, &dg->life));
}

static PyObject *
Datagram_resume_reading(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    return life_result(iol_trl_resume_reading((PyObject *)dg, &dg->life));
}

static PyObject *
Datagram_is_reading(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(!dg->life.closing && !dg->life.paused);
}

static PyObject *
Datagram_is_closing(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(dg->life.closing);
}

static PyObject *
Datagram_set_protocol(DatagramObject *dg, PyObject *protocol)
{
    Py_XSETREF(dg->protocol, Py_NewRef(protocol));
    dg->protocol_connected = 1;
    Py_RETURN_NONE;
}

static PyObject *
Datagram_get_protocol(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(dg->protocol ? dg->protocol : Py_None);
}

/* _release(): once connection_lost ran, leave the loop, close the socket
 * and drop the protocol and the loop. */
static PyObject *
Datagram_release(DatagramObject *dg, PyObject *Py_UNUSED(ignored))
{
    PyObject *res = iol_trl_release((PyObject *)dg, &dg->life, dg->st);
    Py_CLEAR(dg->protocol);
    Py_CLEAR(dg->life.loop);
    Py_CLEAR(dg->rx_addr);
    Py_CLEAR(dg->tx_addr);
    return res;
}

static PyObject *
Datagram_get_polling(DatagramObject *dg, void *closure)
{
    int m = dg->life.smask;
    return PyBool_FromLong(m & (closure ? IOL_WRITE : IOL_READ));
}

static PyMethodDef datagram_methods[] = {
    {"_native_init", (PyCFunction)Datagram_native_init, METH_VARARGS,
     "_native_init(loop, sock, protocol, address, connected, header, "
     "allow_empty)"},
    {"_start_reading", (PyCFunction)Datagram_start_reading, METH_NOARGS,
     "Watch the socket for reading, unless paused or closing."},
    {"close", (PyCFunction)Datagram_close, METH_NOARGS,
     "Stop reading; once the queue is sent, call connection_lost(None)."},
    {"abort", (PyCFunction)Datagram_abort, METH_NOARGS,
     "Close at once, dropping the queue."},
    {"_force_close", (PyCFunction)Datagram_force_close, METH_O, NULL},
    {"pause_reading", (PyCFunction)Datagram_pause_reading, METH_NOARGS,
     "Stop calling the protocol with received datagrams."},
    {"resume_reading", (PyCFunction)Datagram_resume_reading, METH_NOARGS,
     "Undo pause_reading()."},
    {"is_reading", (PyCFunction)Datagram_is_reading, METH_NOARGS,
     "True unless paused or closing."},
    {"is_closing", (PyCFunction)Datagram_is_closing, METH_NOARGS,
     "True once close() or abort() was called."},
    {"set_protocol", (PyCFunction)Datagram_set_protocol, METH_O,
     "Switch to another protocol."},
    {"get_protocol", (PyCFunction)Datagram_get_protocol, METH_NOARGS,
     "The current protocol."},
    {"_release", (PyCFunction)Datagram_release, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

#define DG_MEMBER(name, type, field, flags)                                 \
    {name, type, offsetof(DatagramObject, field), flags, NULL}

static PyMemberDef datagram_members[] = {
    DG_MEMBER("_sock", T_OBJECT, life.sock, 0),
    DG_MEMBER("_sock_fd", T_INT, fd, READONLY),
    DG_MEMBER("_protocol", T_OBJECT, protocol, READONLY),
    DG_MEMBER("_loop", T_OBJECT, life.loop, READONLY),
    DG_MEMBER("_context", T_OBJECT, life.context, READONLY),
    DG_MEMBER("_address", T_OBJECT, address, READONLY),
    DG_MEMBER("_closing", T_BOOL, life.closing, READONLY),
    DG_MEMBER("_paused", T_BOOL, life.paused, READONLY),
    DG_MEMBER("_conn_lost", T_INT, life.conn_lost, READONLY),
    DG_MEMBER("_buffer_size", T_PYSSIZET, wsize, READONLY),
    DG_MEMBER("_header_size", T_PYSSIZET, header, READONLY),
    /* _FlowControlMixin's own Python methods (set_write_buffer_limits,
     * _maybe_pause_protocol...) read and write these. */
    DG_MEMBER("_protocol_connected", T_BOOL, protocol_connected, 0),
    DG_MEMBER("_protocol_paused", T_BOOL, protocol_paused, 0),
    DG_MEMBER("_high_water", T_PYSSIZET, high, 0),
    DG_MEMBER("_low_water", T_PYSSIZET, low, 0),
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef datagram_getset[] = {
    {"_read_polling", (getter)Datagram_get_polling, NULL, NULL, NULL},
    {"_write_polling", (getter)Datagram_get_polling, NULL, NULL, ""},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------------ */
/* Life cycle */

static int
ops_want(PyObject *dg, int mask)
{
    return iol_dg_want((DatagramObject *)dg, mask);
}

static void
ops_queue_clear(PyObject *dg)
{
    iol_dg_queue_clear((DatagramObject *)dg);
}

static const iol_trops datagram_ops = {
    .event = iol_datagram_event,
    .want = ops_want,
    .queue_clear = ops_queue_clear,
};

static PyObject *
Datagram_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
             PyObject *Py_UNUSED(kwds))
{
    iol_modstate *st = iol_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    DatagramObject *dg = (DatagramObject *)type->tp_alloc(type, 0);
    if (dg == NULL) {
        return NULL;
    }
    dg->st = st;
    dg->life.ops = &datagram_ops;
    dg->fd = -1;
    /* asyncio's _FlowControlMixin defaults. */
    dg->high = 64 * 1024;
    dg->low = 16 * 1024;
    return (PyObject *)dg;
}

static int
Datagram_traverse(DatagramObject *dg, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(dg));
    for (int i = 0; i < IOL_TR_BASE_SLOTS; i++) {
        Py_VISIT(dg->base_slots[i]);
    }
    Py_VISIT(dg->protocol);
    Py_VISIT(dg->address);
    Py_VISIT(dg->rx_addr);
    Py_VISIT(dg->tx_addr);
    for (Py_ssize_t i = 0; i < dg->wlen; i++) {
        Py_VISIT(dg->wq[dg->whead + i].addr);
    }
    return iol_trl_traverse(&dg->life, visit, arg);
}

static int
Datagram_clear(DatagramObject *dg)
{
    for (int i = 0; i < IOL_TR_BASE_SLOTS; i++) {
        Py_CLEAR(dg->base_slots[i]);
    }
    iol_trl_clear(&dg->life);
    Py_CLEAR(dg->protocol);
    Py_CLEAR(dg->address);
    Py_CLEAR(dg->rx_addr);
    Py_CLEAR(dg->tx_addr);
    iol_dg_queue_clear(dg);
    return 0;
}

static void
Datagram_dealloc(DatagramObject *dg)
{
    PyTypeObject *tp = Py_TYPE(dg);
    PyObject_GC_UnTrack(dg);
    Datagram_clear(dg);
    PyMem_Free(dg->wq);
    tp->tp_free((PyObject *)dg);
    Py_DECREF(tp);
}

static PyType_Slot datagram_slots[] = {
    {Py_tp_new, Datagram_new},
    {Py_tp_dealloc, Datagram_dealloc},
    {Py_tp_traverse, Datagram_traverse},
    {Py_tp_clear, Datagram_clear},
    {Py_tp_methods, datagram_methods},
    {Py_tp_members, datagram_members},
    {Py_tp_getset, datagram_getset},
    {Py_tp_doc, "The native core of ioloop_c's datagram transport."},
    {0, NULL},
};

static PyType_Spec datagram_spec = {
    .name = "ioloop_c._core.DatagramTransport",
    .basicsize = sizeof(DatagramObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = datagram_slots,
};

static int
add_methods(PyTypeObject *tp)
{
    for (PyMethodDef *m = iol_dgram_send_methods; m->ml_name; m++) {
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
iol_datagram_type_init(PyObject *mod, iol_modstate *st)
{
    int rc = -1;
    PyObject *transports = PyImport_ImportModule("asyncio.transports");
    PyObject *base = NULL, *dbase = NULL, *bases = NULL;
    if (transports == NULL) {
        goto done;
    }
    base = PyObject_GetAttrString(transports, "_FlowControlMixin");
    dbase = base ? PyObject_GetAttrString(transports, "DatagramTransport")
                 : NULL;
    if (dbase == NULL) {
        goto done;
    }
    /* DatagramTransport must add nothing to BaseTransport's layout. */
    if (!PyType_Check(base) || !PyType_Check(dbase) ||
        ((PyTypeObject *)dbase)->tp_basicsize !=
            (Py_ssize_t)offsetof(DatagramObject, base_slots[1]) ||
        !iol_tr_base_layout_ok((PyTypeObject *)base, transports)) {
        rc = 0; /* asyncio's own transport serves */
        goto done;
    }
    bases = PyTuple_Pack(2, base, dbase);
    if (bases == NULL) {
        goto done;
    }
    st->DatagramType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &datagram_spec, bases);
    if (st->DatagramType == NULL || add_methods(st->DatagramType) < 0 ||
        PyModule_AddType(mod, st->DatagramType) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(transports);
    Py_XDECREF(base);
    Py_XDECREF(dbase);
    Py_XDECREF(bases);
    return rc;
}
