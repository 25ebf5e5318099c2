/*
 * transport_accept.c: the transport of an accepted connection, made in
 * C.  SocketTransport.__init__ (ioloop_c/_transport.py) is the
 * reference; for what the accept loop hands it (the peer's address in
 * `extra`, no waiter, TCP_NODELAY already set) it does, in order:
 *
 *   self._extra = extra                    (BaseTransport.__init__)
 *   self._native_init(loop, sock, protocol, context)
 *   self._server = server; server._attach(self)    (if a server)
 *   loop._transports[fd] = self            (a weak reference)
 *   loop.call_soon(protocol.connection_made, self[, context=context])
 *   loop.call_soon(self._start_reading[, context=context])
 *
 * and, if a step after _native_init() fails, self._abandon() undoes
 * what was done before the error goes on to the accept loop's report.
 * Here each step is the same call made from C, without the Python
 * frames around them (a fifth of what a connection cost in user
 * space).  It runs only while the class and its __init__ are the ones
 * _transport.py registered with _accept_configure(); a subclass, or an
 * __init__ replaced later, gets the class called as before.
 */
#include "internal.h"

/* _accept_configure(cls, init, table_type, attach_takes_transport) */
PyObject *
iol_accept_configure(PyObject *mod, PyObject *args)
{
    PyObject *cls, *init, *table;
    int takes;
    if (!PyArg_ParseTuple(args, "O!OO!p:_accept_configure", &PyType_Type,
                          &cls, &init, &PyType_Type, &table, &takes)) {
        return NULL;
    }
    iol_modstate *st = PyModule_GetState(mod);
    if (st->TransportType == NULL ||
        !PyType_IsSubtype((PyTypeObject *)cls, st->TransportType)) {
        PyErr_SetString(PyExc_TypeError,
                        "cls must subclass the native stream transport");
        return NULL;
    }
    static const char *const names[IOL_ACC_NSTR] = {
        "_extra", "_server", "_attach", "_transports", "connection_made",
        "_start_reading", "__init__", "_abandon"};
    PyObject *strs[IOL_ACC_NSTR];
    if (iol_intern_names(names, strs, IOL_ACC_NSTR) < 0) {
        return NULL;
    }
    iol_accept_clear(st);
    st->acc_class = Py_NewRef(cls);
    st->acc_init = Py_NewRef(init);
    st->acc_table_type = Py_NewRef(table);
    st->acc_takes_transport = takes;
    memcpy(st->acc_str, strs, sizeof strs);
    Py_RETURN_NONE;
}

void
iol_accept_clear(iol_modstate *st)
{
    Py_CLEAR(st->acc_class);
    Py_CLEAR(st->acc_init);
    Py_CLEAR(st->acc_table_type);
    for (int i = 0; i < IOL_ACC_NSTR; i++) {
        Py_CLEAR(st->acc_str[i]);
    }
}

int
iol_accept_traverse(iol_modstate *st, visitproc visit, void *arg)
{
    Py_VISIT(st->acc_class);
    Py_VISIT(st->acc_init);
    Py_VISIT(st->acc_table_type);
    return 0;
}

/* loop._transports[fd] = tr: a plain weak reference for the
 * TransportTable (what _transport.register() stores), an item set for
 * any other table put on the loop. */
static int
register_fd(iol_modstate *st, PyObject *loop, PyObject *tr, int fd)
{
    PyObject *table = PyObject_GetAttr(loop, st->acc_str[IOL_ACC_TRANSPORTS]);
    if (table == NULL) {
        return -1;
    }
    PyObject *key = PyLong_FromLong(fd);
    int rc = -1;
    if (key != NULL) {
        if (Py_IS_TYPE(table, (PyTypeObject *)st->acc_table_type)) {
            PyObject *ref = PyWeakref_NewRef(tr, NULL);
            if (ref != NULL) {
                rc = PyDict_SetItem(table, key, ref);
                Py_DECREF(ref);
            }
        }
        else {
            rc = PyObject_SetItem(table, key, tr);
        }
        Py_DECREF(key);
    }
    Py_DECREF(table);
    return rc;
}

PyObject *
iol_transport_accepted(iol_modstate *st, PyObject *loop, PyObject *sock,
                       PyObject *protocol, PyObject *extra,
                       PyObject *server, PyObject *context, PyObject *cls)
{
    if (cls != st->acc_class) {
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    PyObject *init = PyDict_GetItemWithError(tp->tp_dict,
                                             st->acc_str[IOL_ACC_INIT]);
    if (init != st->acc_init) {
        return NULL;  /* replaced: the class is called (or the error) */
    }
    PyObject *none = PyTuple_New(0);  /* the shared empty tuple */
    if (none == NULL) {
        return NULL;
    }
    PyObject *tr = tp->tp_new(tp, none, NULL);
    Py_DECREF(none);
    if (tr == NULL) {
        return NULL;
    }
    TransportObject *t = (TransportObject *)tr;
    if (PyObject_SetAttr(tr, st->acc_str[IOL_ACC_EXTRA], extra) < 0 ||
        iol_transport_native_init(t, loop, sock, protocol, context) < 0) {
        Py_DECREF(tr);
        return NULL;
    }
    if (server != Py_None) {
        if (PyObject_SetAttr(tr, st->acc_str[IOL_ACC_SERVER], server) < 0) {
            goto fail;
        }
        PyObject *name = st->acc_str[IOL_ACC_ATTACH];
        PyObject *res = st->acc_takes_transport
                            ? PyObject_CallMethodOneArg(server, name, tr)
                            : PyObject_CallMethodNoArgs(server, name);
        if (res == NULL) {
            goto fail;
        }
        Py_DECREF(res);
    }
    if (register_fd(st, loop, tr, t->fd) < 0) {
        goto fail;
    }
    PyObject *made = PyObject_GetAttr(protocol,
                                      st->acc_str[IOL_ACC_CONNECTION_MADE]);
    if (made == NULL) {
        goto fail;
    }
    int rc = iol_call_soon(st, loop, made, tr, context);
    Py_DECREF(made);
    if (rc < 0) {
        goto fail;
    }
    PyObject *start = PyObject_GetAttr(tr, st->acc_str[IOL_ACC_START_READING]);
    if (start == NULL) {
        goto fail;
    }
    rc = iol_call_soon(st, loop, start, NULL, context);
    Py_DECREF(start);
    if (rc < 0) {
        goto fail;
    }
    return tr;
fail:;
    /* As __init__ does: the steps so far undone, the error kept. */
    PyObject *exc = iol_err_fetch();
    PyObject *res = PyObject_CallMethodNoArgs(tr,
                                              st->acc_str[IOL_ACC_ABANDON]);
    if (res == NULL) {
        PyErr_WriteUnraisable(tr);
    }
    Py_XDECREF(res);
    iol_err_restore(exc);
    Py_DECREF(tr);
    return NULL;
}
