/*
 * transport_stream.c: the read step for asyncio's streams.
 *
 * open_connection() and start_server() put an asyncio.StreamReaderProtocol
 * on the transport, and every read then runs, in Python:
 *
 *   StreamReaderProtocol.data_received(data):
 *       reader = self._stream_reader      (a property: _stream_reader_wr())
 *       if reader is not None: reader.feed_data(data)
 *   StreamReader.feed_data(data):
 *       assert not self._eof
 *       self._buffer.extend(data)
 *       self._wakeup_waiter()             (_waiter = None; set_result(None)
 *                                          unless cancelled)
 *       if len(self._buffer) > 2 * self._limit: pause the transport
 *
 * Four frames, the same in every asyncio from 3.11 to 3.15.  Here the
 * same steps are done from C, with what was read copied from the loop's
 * read buffer into the reader's bytearray, so no bytes object is made.
 *
 * It applies only while the protocol and the reader are those exact
 * classes and the four functions are still the ones registered with
 * _streams_configure() (checked in the class dicts at every read, as
 * transport_accept.c checks __init__), the reader's buffer is a
 * bytearray, it has not seen EOF, and the read leaves the buffer within
 * 2 * limit.  Anything else (a subclass, a function replaced, EOF, a
 * read that must pause the transport) takes the Protocol read step:
 * bytes to protocol.data_received(), which runs the Python above.
 */
#include "internal.h"

#include "../engine/sock.h"

/* _streams_configure(protocol_cls, reader_cls, data_received,
 *                    _stream_reader, feed_data, _wakeup_waiter) */
PyObject *
iol_streams_configure(PyObject *mod, PyObject *args)
{
    PyObject *pcls, *rcls, *fn[IOL_SR_NFUNC];
    if (!PyArg_ParseTuple(args, "O!O!OOOO:_streams_configure", &PyType_Type,
                          &pcls, &PyType_Type, &rcls, &fn[0], &fn[1], &fn[2],
                          &fn[3])) {
        return NULL;
    }
    static const char *const names[IOL_SR_NSTR] = {
        "data_received", "_stream_reader", "feed_data", "_wakeup_waiter",
        "_stream_reader_wr", "_eof", "_buffer", "_limit", "_waiter",
        "cancelled"};
    PyObject *strs[IOL_SR_NSTR];
    if (iol_intern_names(names, strs, IOL_SR_NSTR) < 0) {
        return NULL;
    }
    int ok = 1;
    /* What is registered must be what the classes hold now. */
    for (int i = 0; ok && i < IOL_SR_NFUNC; i++) {
        PyTypeObject *tp = (PyTypeObject *)(i < IOL_SR_FEED_DATA ? pcls : rcls);
        PyObject *cur = PyDict_GetItemWithError(tp->tp_dict, strs[i]);
        if (cur != fn[i]) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "%s.%U is not the function "
                             "given", tp->tp_name, strs[i]);
            }
            ok = 0;
        }
    }
    if (!ok) {
        for (int i = 0; i < IOL_SR_NSTR; i++) {
            Py_DECREF(strs[i]);
        }
        return NULL;
    }
    iol_modstate *st = PyModule_GetState(mod);
    iol_streams_clear(st);
    st->sr_protocol = Py_NewRef(pcls);
    st->sr_reader = Py_NewRef(rcls);
    for (int i = 0; i < IOL_SR_NFUNC; i++) {
        st->sr_func[i] = Py_NewRef(fn[i]);
    }
    memcpy(st->sr_str, strs, sizeof strs);
    Py_RETURN_NONE;
}

void
iol_streams_clear(iol_modstate *st)
{
    Py_CLEAR(st->sr_protocol);
    Py_CLEAR(st->sr_reader);
    for (int i = 0; i < IOL_SR_NFUNC; i++) {
        Py_CLEAR(st->sr_func[i]);
    }
    for (int i = 0; i < IOL_SR_NSTR; i++) {
        Py_CLEAR(st->sr_str[i]);
    }
}

int
iol_streams_traverse(iol_modstate *st, visitproc visit, void *arg)
{
    Py_VISIT(st->sr_protocol);
    Py_VISIT(st->sr_reader);
    for (int i = 0; i < IOL_SR_NFUNC; i++) {
        Py_VISIT(st->sr_func[i]);
    }
    return 0;
}

int
iol_streams_protocol(iol_modstate *st, PyObject *protocol)
{
    return st->sr_protocol != NULL &&
           Py_IS_TYPE(protocol, (PyTypeObject *)st->sr_protocol);
}

/* Whether cls's dict still holds the registered functions first..last. */
static int
funcs_unchanged(iol_modstate *st, PyObject *cls, int first, int last)
{
    PyObject *dict = ((PyTypeObject *)cls)->tp_dict;
    for (int i = first; i <= last; i++) {
        PyObject *cur = PyDict_GetItemWithError(dict, st->sr_str[i]);
        if (cur != st->sr_func[i]) {
            return cur == NULL && PyErr_Occurred() ? -1 : 0;
        }
    }
    return 1;
}

/* Whether feed_data() of `n` more bytes may be done here: 1 with
 * *buffer the reader's bytearray (a new reference), 0 if it must be
 * called instead (at EOF, a buffer or limit not of the usual types, or a
 * read that takes the buffer past 2 * limit), -1 an error. */
static int
reader_fits(iol_modstate *st, PyObject *reader, PyObject **buffer,
            ssize_t n)
{
    PyObject *eof = PyObject_GetAttr(reader, st->sr_str[IOL_SR_EOF]);
    if (eof == NULL) {
        return -1;
    }
    int at_eof = eof != Py_False;
    Py_DECREF(eof);
    if (at_eof) {
        return 0;  /* feed_data() asserts */
    }
    PyObject *limit = PyObject_GetAttr(reader, st->sr_str[IOL_SR_LIMIT]);
    if (limit == NULL) {
        return -1;
    }
    Py_ssize_t lim = PyLong_CheckExact(limit) ? PyLong_AsSsize_t(limit) : -1;
    Py_DECREF(limit);
    if (lim < 0) {
        PyErr_Clear();  /* not an int we can compare: feed_data() does */
        return 0;
    }
    PyObject *buf = PyObject_GetAttr(reader, st->sr_str[IOL_SR_BUFFER]);
    if (buf == NULL) {
        return -1;
    }
    Py_ssize_t len = PyByteArray_CheckExact(buf) ? PyByteArray_GET_SIZE(buf)
                                                 : -1;
    /* Past 2 * limit feed_data() pauses the transport: it does that. */
    if (len < 0 || (lim < PY_SSIZE_T_MAX / 2 && len + n > 2 * lim)) {
        Py_DECREF(buf);
        return 0;
    }
    *buffer = buf;
    return 1;
}

/* reader._wakeup_waiter() */
static int
wakeup_waiter(iol_modstate *st, PyObject *reader)
{
    PyObject *waiter = PyObject_GetAttr(reader, st->sr_str[IOL_SR_WAITER]);
    if (waiter == NULL) {
        return -1;
    }
    int rc = 0;
    if (waiter != Py_None) {
        PyObject *c = NULL;
        PyObject *name = st->sr_str[IOL_SR_WAITER];
        if (PyObject_SetAttr(reader, name, Py_None) == 0) {
            c = PyObject_CallMethodNoArgs(waiter,
                                          st->sr_str[IOL_SR_CANCELLED]);
        }
        rc = c ? PyObject_IsTrue(c) : -1;
        Py_XDECREF(c);
        if (rc == 0) {
            PyObject *res = PyObject_CallMethodOneArg(
                waiter, st->str_set_result, Py_None);
            rc = res ? 0 : -1;
            Py_XDECREF(res);
        }
        rc = rc < 0 ? -1 : 0;
    }
    Py_DECREF(waiter);
    return rc;
}

/* The protocol's reader if the C steps apply to it (a new reference,
 * or Py_None when the protocol has no reader left: data_received() then
 * drops the data), NULL if they do not (*err set for an error). */
static PyObject *
stream_reader(iol_modstate *st, PyObject *protocol, int *err)
{
    int ok = Py_IS_TYPE(protocol, (PyTypeObject *)st->sr_protocol)
                 ? funcs_unchanged(st, st->sr_protocol, IOL_SR_DATA_RECEIVED,
                                   IOL_SR_STREAM_READER)
                 : 0;
    if (ok <= 0) {
        *err = ok < 0;
        return NULL;
    }
    PyObject *wr = PyObject_GetAttr(protocol, st->sr_str[IOL_SR_READER_WR]);
    if (wr == NULL) {
        *err = 1;
        return NULL;
    }
    /* The property: None, or the weak reference called. */
    PyObject *reader = wr == Py_None ? Py_NewRef(Py_None)
                                     : PyObject_CallNoArgs(wr);
    Py_DECREF(wr);
    if (reader == NULL || reader == Py_None) {
        *err = reader == NULL;
        return reader;
    }
    ok = Py_IS_TYPE(reader, (PyTypeObject *)st->sr_reader)
             ? funcs_unchanged(st, st->sr_reader, IOL_SR_FEED_DATA,
                               IOL_SR_WAKEUP_WAITER)
             : 0;
    if (ok <= 0) {
        Py_DECREF(reader);
        *err = ok < 0;
        return NULL;
    }
    return reader;
}

int
iol_tr_read_stream(TransportObject *tr)
{
    static const char failed[] =
        "Fatal error: protocol.data_received() call failed.";
    iol_modstate *st = tr->st;
    int err = 0;
    PyObject *reader = stream_reader(st, tr->protocol, &err);
    if (reader == NULL) {
        return err ? iol_tr_fatal(tr, failed) : iol_tr_read_data(tr);
    }
    char *rbuf = iol_loop_read_buf((LoopObject *)tr->life.loop);
    if (rbuf == NULL) {
        Py_DECREF(reader);
        return iol_tr_fatal(tr, "Fatal read error on socket transport");
    }
    ssize_t n = iol_sock_recv(tr->fd, rbuf, IOL_READ_SIZE);
    if (n <= 0) {
        Py_DECREF(reader);
        return n < 0 ? iol_tr_read_error(tr) : iol_tr_on_eof(tr);
    }
    if (reader == Py_None) {
        Py_DECREF(reader);
        return 0;  /* data_received() with no reader: dropped */
    }
    PyObject *buf = NULL;
    int rc = reader_fits(st, reader, &buf, n);
    if (rc == 1) {
        Py_ssize_t len = PyByteArray_GET_SIZE(buf);
        rc = PyByteArray_Resize(buf, len + n);
        if (rc == 0) {
            memcpy(PyByteArray_AS_STRING(buf) + len, rbuf, (size_t)n);
            rc = wakeup_waiter(st, reader);
        }
        Py_DECREF(buf);
    }
    else if (rc == 0) {
        /* As the Protocol read step hands it on. */
        PyObject *data = PyBytes_FromStringAndSize(rbuf, n);
        PyObject *res = data ? PyObject_CallMethodOneArg(
                                   tr->protocol, st->str_data_received, data)
                             : NULL;
        Py_XDECREF(data);
        rc = res ? 0 : -1;
        Py_XDECREF(res);
    }
    Py_DECREF(reader);
    return rc < 0 ? iol_tr_fatal(tr, failed) : 0;
}
