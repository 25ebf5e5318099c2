/*
 * server.c: the accept loop of asyncio servers, in C.
 *
 * A Listener owns a listening socket's fd in the loop's fd table, as a
 * transport owns its connection's (loop_fd.c), so that readiness runs
 * iol_listener_event() straight from the tick, with no handle made.  It
 * accepts up to `backlog` connections in one go (accept4 in batches, from
 * the engine), sets TCP_NODELAY on TCP ones as asyncio does, and for each
 * calls protocol_factory() and makes the native transport with the
 * server attached, in a copy of the server's context.  TLS connections
 * (and every connection in debug mode, where asyncio logs each one) are
 * handed to Python, to asyncio's own _accept_connection2.
 *
 * asyncio's Server object is kept as it is: the Loop's _start_serving()
 * and _stop_serving() make and close Listeners (ioloop_c/_server.py, which
 * also holds the parts that report errors and time the retry after an
 * fd shortage).
 */
#include "internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <sys/un.h>
#include <structmember.h>
#include <unistd.h>

#include "../engine/sock.h"

/* Connections taken from the kernel per engine call; the whole batch of
 * one readiness is `backlog` connections, in chunks of this size. */
#define IOL_ACCEPT_CHUNK 32

typedef struct {
    PyObject_HEAD
    iol_modstate *st;
    PyObject *loop;      /* the LoopObject */
    PyObject *sock;      /* the listening socket.socket */
    PyObject *factory;   /* protocol_factory */
    PyObject *server;    /* the asyncio.Server, or None */
    PyObject *hooks;     /* ioloop_c._server.Hooks: reports, TLS, retry */
    PyObject *transport; /* the transport class to make */
    PyObject *context;   /* each connection runs in a copy of this */
    int fd, family, type, proto;
    int backlog;
    int nodelay;  /* TCP over IP: TCP_NODELAY on each connection */
    int slow;     /* TLS: every connection goes to hooks.accept_slow */
    int pass_context; /* 3.15+: the transport runs in the copy itself */
    int watching; /* READ interest held in the loop's fd table */
    int closed;
} ListenerObject;

static int
want(ListenerObject *ls, int on)
{
    if (on == ls->watching) {
        return 0;
    }
    if (iol_fd_stream_set((LoopObject *)ls->loop, ls->fd, (PyObject *)ls,
                          iol_listener_event, on ? IOL_READ : 0) < 0) {
        return -1;
    }
    ls->watching = on;
    return 0;
}

/* Call hooks.<name>(listener, *args).  An error from the hook itself is
 * unraisable, except SystemExit / KeyboardInterrupt: -1, set, to leave
 * the loop. */
static int
call_hook(ListenerObject *ls, const char *name, PyObject *a, PyObject *b)
{
    PyObject *res = PyObject_CallMethod(ls->hooks, name, "OOO", ls,
                                        a ? a : Py_None, b ? b : Py_None);
    if (res == NULL) {
        return iol_report_failed(ls->hooks);
    }
    Py_DECREF(res);
    return 0;
}

/* Hand the raised exception to hooks.<name>; -1 only for the exceptions
 * that leave the loop. */
static int
report(ListenerObject *ls, const char *name, PyObject *protocol)
{
    PyObject *exc = iol_err_fetch();
    if (exc == NULL) {
        return 0;
    }
    if (iol_is_exit(exc)) {
        iol_err_restore(exc);
        return -1;
    }
    int rc = call_hook(ls, name, exc, protocol);
    Py_DECREF(exc);
    return rc;
}

/* The peer's address as socket.accept() gives it, for the common cases
 * (IPv4, IPv6, an unnamed Unix peer); NULL without an error for the
 * rest, which the transport asks getpeername() for. */
static PyObject *
peer_address(const iol_accepted *a)
{
    PyObject *addr = iol_inet_addr_to_python(
        (const struct sockaddr *)&a->addr, a->addrlen);
    if (addr != NULL || PyErr_Occurred()) {
        return addr;
    }
    if (a->addr.ss_family == AF_UNIX &&
        a->addrlen <= (socklen_t)offsetof(struct sockaddr_un, sun_path)) {
        return PyUnicode_FromStringAndSize("", 0);
    }
    return NULL;
}

/* socket.socket(family, type, proto, fileno=fd) for an accepted fd.  The
 * fd is already non-blocking: where SOCK_NONBLOCK exists, passing it in
 * the type tells the socket object so without a system call (it keeps
 * the plain type); elsewhere setblocking(False) says it. */
static PyObject *
make_conn(ListenerObject *ls, int fd)
{
    iol_modstate *st = ls->st;
    PyObject *args[4] = {NULL, NULL, NULL, NULL};
    PyObject *conn = NULL;
    args[0] = PyLong_FromLong(ls->family);
    args[1] = PyLong_FromLong(ls->type | st->sock_nonblock);
    args[2] = PyLong_FromLong(ls->proto);
    args[3] = PyLong_FromLong(fd);
    if (args[0] && args[1] && args[2] && args[3]) {
        conn = PyObject_Vectorcall(st->socket_class, args, 3,
                                   st->kw_fileno);
    }
    for (int i = 0; i < 4; i++) {
        Py_XDECREF(args[i]);
    }
    if (conn == NULL) {
        close(fd);
        return NULL;
    }
    if (st->sock_nonblock == 0) {
        PyObject *res = PyObject_CallMethod(conn, "setblocking", "O",
                                            Py_False);
        if (res == NULL) {
            PyObject *exc = iol_err_fetch();
            res = PyObject_CallMethodNoArgs(conn, st->str_close);
            PyErr_Clear();
            iol_err_restore(exc);
            Py_CLEAR(conn);
        }
        Py_XDECREF(res);
    }
    return conn;
}

/* protocol_factory() and the transport, in a copy of the listener's
 * context.  From 3.15 on the transport runs every callback in that copy,
 * as asyncio's does; before, it is only current while the transport is
 * made, and each callback gets its own copy of it (asyncio's call_soon
 * without a context). */
static int
connect_fast(ListenerObject *ls, PyObject *conn, PyObject *addr)
{
    PyObject *ctx = PyContext_Copy(ls->context);
    if (ctx == NULL || PyContext_Enter(ctx) < 0) {
        Py_XDECREF(ctx);
        return report(ls, "accept_failed", NULL);
    }
    PyObject *protocol = PyObject_CallNoArgs(ls->factory);
    PyObject *extra = NULL, *tr = NULL;
    int rc = 0;
    if (protocol != NULL && ls->closed) {
        /* The factory closed the server: this connection is not served,
         * as none after it in the batch are. */
        PyObject *res = PyObject_CallMethodNoArgs(conn, ls->st->str_close);
        Py_XDECREF(res);
        rc = report(ls, "accept_failed", NULL);
        goto done;
    }
    extra = protocol ? PyDict_New() : NULL;
    if (extra != NULL &&
        (addr == NULL ||
         PyDict_SetItem(extra, ls->st->str_peername, addr) == 0)) {
        /* (loop, sock, protocol, waiter, extra, server, context,
         *  nodelay): TCP_NODELAY is set already. */
        PyObject *pass = ls->pass_context ? ctx : Py_None;
        tr = addr == NULL ? NULL
                          : iol_transport_accepted(ls->st, ls->loop, conn,
                                                   protocol, extra,
                                                   ls->server, pass,
                                                   ls->transport);
        if (tr == NULL && !PyErr_Occurred()) {
            PyObject *args[8] = {ls->loop, conn,       protocol, Py_None,
                                 extra,    ls->server, pass,     Py_False};
            tr = PyObject_Vectorcall(ls->transport, args, 8, NULL);
        }
    }
    if (tr == NULL) {
        PyObject *exc = iol_err_fetch();
        PyObject *res = PyObject_CallMethodNoArgs(conn, ls->st->str_close);
        Py_XDECREF(res);
        PyErr_Clear();
        iol_err_restore(exc);
        rc = report(ls, "factory_failed", protocol);
    }
done:;
    PyObject *exc = iol_err_fetch();
    if (PyContext_Exit(ctx) < 0) {
        PyErr_WriteUnraisable(ctx);
    }
    iol_err_restore(exc);
    Py_XDECREF(tr);
    Py_XDECREF(extra);
    Py_XDECREF(protocol);
    Py_DECREF(ctx);
    return rc;
}

/* One accepted connection; -1 only for an exception leaving the loop. */
static int
accepted(ListenerObject *ls, const iol_accepted *a, int slow)
{
    if (ls->nodelay) {
        int one = 1;
        /* As asyncio's _set_nodelay(); a peer gone already is no error
         * worth reporting here. */
        (void)setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    PyObject *conn = make_conn(ls, a->fd);
    if (conn == NULL) {
        return report(ls, "accept_failed", NULL);
    }
    PyObject *addr = peer_address(a);
    int rc;
    if (addr == NULL && PyErr_Occurred()) {
        PyObject *res = PyObject_CallMethodNoArgs(conn, ls->st->str_close);
        Py_XDECREF(res);
        rc = report(ls, "accept_failed", NULL);
    }
    else if (slow) {
        rc = call_hook(ls, "accept_slow", conn, addr);
    }
    else {
        rc = connect_fast(ls, conn, addr);
    }
    Py_XDECREF(addr);
    Py_DECREF(conn);
    return rc;
}

/* What stopped a batch.  EMFILE and its kin: asyncio's answer, stop
 * watching and try again after a delay (the hook reports and times it),
 * since the fd stays readable and would spin the loop. */
static int
accept_error(ListenerObject *ls, int err)
{
    if (iol_sock_would_block(err)) {
        return 0;
    }
    int short_of = err == EMFILE || err == ENFILE || err == ENOBUFS ||
                   err == ENOMEM;
    if (short_of && want(ls, 0) < 0) {
        return report(ls, "accept_failed", NULL);
    }
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return report(ls, short_of ? "out_of_resources" : "accept_failed",
                  NULL);
}

static int
loop_debug(ListenerObject *ls)
{
    PyObject *res = PyObject_CallMethod(ls->loop, "get_debug", NULL);
    int on = res ? PyObject_IsTrue(res) : -1;
    Py_XDECREF(res);
    if (on < 0) {
        PyErr_Clear();
        on = 0;
    }
    return on;
}

static int
accept_batch(ListenerObject *ls)
{
    iol_accepted chunk[IOL_ACCEPT_CHUNK];
    int slow = ls->slow || loop_debug(ls);
    int left = ls->backlog > 0 ? ls->backlog : 1;
    int rc = 0;
    while (rc == 0 && left > 0 && ls->watching && !ls->closed) {
        int max = left < IOL_ACCEPT_CHUNK ? left : IOL_ACCEPT_CHUNK;
        int err = 0;
        int n = iol_sock_accept_batch(ls->fd, chunk, max, &err);
        left -= max;
        for (int i = 0; i < n; i++) {
            /* Closed by a protocol factory in this batch, or leaving:
             * the rest are not served. */
            if (rc < 0 || ls->closed) {
                close(chunk[i].fd);
                continue;
            }
            rc = accepted(ls, &chunk[i], slow);
        }
        if (rc == 0 && err != 0) {
            rc = accept_error(ls, err);
            break;
        }
    }
    return rc;
}

int
iol_listener_event(PyObject *obj, int Py_UNUSED(mask))
{
    ListenerObject *ls = (ListenerObject *)obj;
    if (!ls->watching || ls->closed) {
        return 0;
    }
    if (PyContext_Enter(ls->context) < 0) {
        return report(ls, "accept_failed", NULL);
    }
    int rc = accept_batch(ls);
    PyObject *exc = iol_err_fetch();
    if (PyContext_Exit(ls->context) < 0) {
        PyErr_WriteUnraisable(ls->context);
    }
    iol_err_restore(exc);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Methods */

static int
int_attr(PyObject *obj, const char *name, int *out)
{
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (v == NULL) {
        return -1;
    }
    *out = iol_long_as_int(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static const char listener_doc[] =
    "Listener(loop, sock, protocol_factory, server, backlog, context, "
    "hooks, transport_class, slow, pass_context=False)\n\n"
    "The native accept loop of one listening socket (see "
    "ioloop_c/_server.py).";

static PyObject *
Listener_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *loop, *sock, *factory, *server, *context, *hooks, *trcls;
    int backlog, slow, pass_context = 0;
    static char *kwlist[] = {"loop", "sock", "protocol_factory", "server",
                             "backlog", "context", "hooks",
                             "transport_class", "slow", "pass_context",
                             NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOiOOOp|p:Listener",
                                     kwlist, &loop, &sock, &factory,
                                     &server, &backlog, &context, &hooks,
                                     &trcls, &slow, &pass_context)) {
        return NULL;
    }
    iol_modstate *st = iol_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    if (!PyObject_TypeCheck(loop, st->LoopType)) {
        PyErr_Format(PyExc_TypeError, "an ioloop_c loop is required, got "
                     "%R", loop);
        return NULL;
    }
    if (!PyContext_CheckExact(context)) {
        PyErr_Format(PyExc_TypeError, "context must be a "
                     "contextvars.Context, got %R", context);
        return NULL;
    }
    if (!PyCallable_Check(factory) || !PyCallable_Check(trcls)) {
        PyErr_SetString(PyExc_TypeError, "protocol_factory and "
                        "transport_class must be callable");
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(sock);
    int family, stype, proto;
    if (fd < 0 || int_attr(sock, "family", &family) < 0 ||
        int_attr(sock, "type", &stype) < 0 ||
        int_attr(sock, "proto", &proto) < 0) {
        return NULL;
    }
    ListenerObject *ls = (ListenerObject *)type->tp_alloc(type, 0);
    if (ls == NULL) {
        return NULL;
    }
    ls->st = st;
    ls->loop = Py_NewRef(loop);
    ls->sock = Py_NewRef(sock);
    ls->factory = Py_NewRef(factory);
    ls->server = Py_NewRef(server);
    ls->hooks = Py_NewRef(hooks);
    ls->transport = Py_NewRef(trcls);
    ls->context = Py_NewRef(context);
    ls->fd = fd;
    ls->family = family;
    ls->type = stype;
    ls->proto = proto;
    ls->backlog = backlog;
    ls->slow = slow;
    ls->pass_context = pass_context;
    ls->nodelay = (family == AF_INET || family == AF_INET6) &&
                  stype == SOCK_STREAM && proto == IPPROTO_TCP;
    return (PyObject *)ls;
}

static PyObject *
Listener_start(ListenerObject *ls, PyObject *Py_UNUSED(ignored))
{
    if (!ls->closed && want(ls, 1) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Listener_pause(ListenerObject *ls, PyObject *Py_UNUSED(ignored))
{
    if (want(ls, 0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Listener_close(ListenerObject *ls, PyObject *Py_UNUSED(ignored))
{
    ls->closed = 1;
    if (want(ls, 0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef listener_methods[] = {
    {"start", (PyCFunction)Listener_start, METH_NOARGS,
     "Watch the socket and accept (unless closed)."},
    {"pause", (PyCFunction)Listener_pause, METH_NOARGS,
     "Stop watching the socket for now."},
    {"close", (PyCFunction)Listener_close, METH_NOARGS,
     "Stop for good (the socket itself is the caller's to close)."},
    {NULL, NULL, 0, NULL},
};

#define LS_MEMBER(name, type, field)                                        \
    {name, type, offsetof(ListenerObject, field), READONLY, NULL}

static PyMemberDef listener_members[] = {
    LS_MEMBER("sock", T_OBJECT, sock),
    LS_MEMBER("fd", T_INT, fd),
    LS_MEMBER("backlog", T_INT, backlog),
    LS_MEMBER("watching", T_BOOL, watching),
    LS_MEMBER("closed", T_BOOL, closed),
    LS_MEMBER("nodelay", T_BOOL, nodelay),
    {NULL, 0, 0, 0, NULL},
};

/* ------------------------------------------------------------------ */
/* Life cycle */

static int
Listener_traverse(ListenerObject *ls, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(ls));
    Py_VISIT(ls->loop);
    Py_VISIT(ls->sock);
    Py_VISIT(ls->factory);
    Py_VISIT(ls->server);
    Py_VISIT(ls->hooks);
    Py_VISIT(ls->transport);
    Py_VISIT(ls->context);
    return 0;
}

static int
Listener_clear(ListenerObject *ls)
{
    Py_CLEAR(ls->loop);
    Py_CLEAR(ls->sock);
    Py_CLEAR(ls->factory);
    Py_CLEAR(ls->server);
    Py_CLEAR(ls->hooks);
    Py_CLEAR(ls->transport);
    Py_CLEAR(ls->context);
    return 0;
}

static void
Listener_dealloc(ListenerObject *ls)
{
    PyTypeObject *tp = Py_TYPE(ls);
    /* The loop's fd table holds a reference while the listener watches,
     * so none is held here. */
    PyObject_GC_UnTrack(ls);
    Listener_clear(ls);
    tp->tp_free((PyObject *)ls);
    Py_DECREF(tp);
}

static PyType_Slot listener_slots[] = {
    {Py_tp_new, Listener_new},
    {Py_tp_dealloc, Listener_dealloc},
    {Py_tp_traverse, Listener_traverse},
    {Py_tp_clear, Listener_clear},
    {Py_tp_methods, listener_methods},
    {Py_tp_members, listener_members},
    {Py_tp_doc, (void *)listener_doc},
    {0, NULL},
};

/* Not a base type: the tick tells a listener from a transport by its
 * exact type. */
static PyType_Spec listener_spec = {
    .name = "ioloop_c._core.Listener",
    .basicsize = sizeof(ListenerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = listener_slots,
};

int
iol_listener_type_init(PyObject *mod, iol_modstate *st)
{
    int rc = -1;
    PyObject *socket = PyImport_ImportModule("socket");
    if (socket == NULL) {
        goto done;
    }
    st->socket_class = PyObject_GetAttrString(socket, "socket");
    st->kw_fileno = Py_BuildValue("(s)", "fileno");
    if (st->socket_class == NULL || st->kw_fileno == NULL) {
        goto done;
    }
#ifdef SOCK_NONBLOCK
    st->sock_nonblock = SOCK_NONBLOCK;
#else
    st->sock_nonblock = 0;
#endif
    st->ListenerType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &listener_spec, NULL);
    if (st->ListenerType == NULL ||
        PyModule_AddType(mod, st->ListenerType) < 0) {
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(socket);
    return rc;
}
