/*
 * transport_write.c: the native transport's output side.
 *
 * write() sends at once when nothing is queued; what the kernel does not
 * take is queued: `bytes` by reference (it cannot change), anything else
 * copied once.  The queue goes out with one sendmsg() of all its pieces
 * when the fd is writable.  The size of the queue drives the protocol's
 * pause_writing() / resume_writing() between the low and high water
 * marks, as asyncio's _FlowControlMixin does.  Errors on the fd go to the
 * transport's fatal-error path, as asyncio's transports do.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "../engine/sock.h"

/* asyncio.constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES */
#define IOL_CONNLOST_LOG 5
#define IOL_HIGH_WATER (64 * 1024)

static iol_modstate *
tr_state(TransportObject *tr)
{
    return tr->st;
}

int
iol_tr_want(TransportObject *tr, int want)
{
    return iol_trl_want((PyObject *)tr, &tr->life, tr->fd, want);
}

/* Hand the raised exception to self._fatal_error(exc, message), which
 * reports it as asyncio does and force-closes the transport.  -1 (the
 * exception set) for SystemExit / KeyboardInterrupt, which leave. */
int
iol_tr_fatal(TransportObject *tr, const char *message)
{
    return iol_transport_fatal((PyObject *)tr, message);
}

int
iol_transport_fatal(PyObject *tr, const char *message)
{
    PyObject *exc = iol_err_fetch();
    if (exc == NULL) {
        return 0;
    }
    int rc = iol_trl_report(tr, "_fatal_error", exc, message);
    Py_DECREF(exc);
    return rc;
}

void
iol_tr_queue_clear(TransportObject *tr)
{
    /* Only exact bytes are queued: dropping them runs no code. */
    for (Py_ssize_t i = 0; i < tr->wlen; i++) {
        Py_DECREF(tr->wq[tr->whead + i].data);
    }
    tr->whead = 0;
    tr->wlen = 0;
    tr->wsize = 0;
}

/* Queue data[off:], by reference if it is bytes, else (or with data
 * NULL) as a copy of buf. */
static int
queue_push(TransportObject *tr, PyObject *data, const char *buf,
           Py_ssize_t len, Py_ssize_t off)
{
    if (tr->whead + tr->wlen == tr->wcap) {
        if (tr->whead > 0) {
            memmove(tr->wq, tr->wq + tr->whead, tr->wlen * sizeof(*tr->wq));
            tr->whead = 0;
        }
        else {
            Py_ssize_t ncap = tr->wcap ? tr->wcap * 2 : 8;
            iol_wchunk *q = PyMem_Realloc(tr->wq, ncap * sizeof(*q));
            if (q == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            tr->wq = q;
            tr->wcap = ncap;
        }
    }
    PyObject *keep;
    if (data != NULL && PyBytes_CheckExact(data)) {
        keep = Py_NewRef(data);
    }
    else {
        keep = PyBytes_FromStringAndSize(buf + off, len - off);
        if (keep == NULL) {
            return -1;
        }
        off = 0;
    }
    iol_wchunk *c = &tr->wq[tr->whead + tr->wlen];
    c->data = keep;
    c->off = off;
    tr->wlen++;
    tr->wsize += PyBytes_GET_SIZE(keep) - off;
    return 0;
}

/* The protocol's pause_writing() / resume_writing(); a failure goes to
 * the exception handler, as in asyncio. */
static int
call_flow(TransportObject *tr, PyObject *name, const char *what)
{
    PyObject *proto = Py_XNewRef(tr->protocol);
    if (proto == NULL) {
        return 0;
    }
    PyObject *res = PyObject_CallMethodNoArgs(proto, name);
    int rc = 0;
    if (res == NULL) {
        PyObject *exc = iol_err_fetch();
        if (iol_is_exit(exc)) {
            iol_err_restore(exc);
            Py_DECREF(proto);
            return -1;
        }
        PyObject *ctx = Py_BuildValue("{sssOsOsO}", "message", what,
                                      "exception", exc, "transport", tr,
                                      "protocol", proto);
        PyObject *loop = tr->life.loop;
        if (ctx != NULL && loop != NULL) {
            res = PyObject_CallMethod(loop, "call_exception_handler", "O",
                                      ctx);
        }
        if (res == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
        }
        Py_XDECREF(ctx);
        Py_DECREF(exc);
    }
    Py_XDECREF(res);
    Py_DECREF(proto);
    return rc;
}

static int
maybe_pause(TransportObject *tr)
{
    if (tr->wsize <= tr->high || tr->protocol_paused) {
        return 0;
    }
    tr->protocol_paused = 1;
    return call_flow(tr, tr_state(tr)->str_pause_writing,
                     "protocol.pause_writing() failed");
}

static int
maybe_resume(TransportObject *tr)
{
    if (!tr->protocol_paused || tr->wsize > tr->low) {
        return 0;
    }
    tr->protocol_paused = 0;
    return call_flow(tr, tr_state(tr)->str_resume_writing,
                     "protocol.resume_writing() failed");
}

/* The queue is empty: stop watching for writability, tell sendfile, and
 * finish a close() or write_eof() that waited for it. */
static int
drained(TransportObject *tr)
{
    if (iol_tr_want(tr, tr->life.smask & ~IOL_WRITE) < 0) {
        return -1;
    }
    if (tr->empty_waiter != NULL && tr->empty_waiter != Py_None) {
        PyObject *res = PyObject_CallMethodOneArg(
            tr->empty_waiter, tr_state(tr)->str_set_result, Py_None);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    int lost = iol_trl_drained((PyObject *)tr, &tr->life);
    if (lost != 0) {
        return lost < 0 ? -1 : 0;
    }
    if (tr->eof && !tr->life.closing &&
        iol_sock_shutdown(tr->fd, SHUT_WR) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* Send as much of the queue as the kernel takes, in one call. */
int
iol_tr_flush(TransportObject *tr)
{
    struct iovec iov[IOL_SOCK_IOV_MAX];
    int n = tr->wlen < IOL_SOCK_IOV_MAX ? (int)tr->wlen : IOL_SOCK_IOV_MAX;
    for (int i = 0; i < n; i++) {
        iol_wchunk *c = &tr->wq[tr->whead + i];
        iov[i].iov_base = PyBytes_AS_STRING(c->data) + c->off;
        iov[i].iov_len = (size_t)(PyBytes_GET_SIZE(c->data) - c->off);
    }
    ssize_t sent = iol_sock_writev(tr->fd, iov, n);
    if (sent < 0) {
        if (iol_sock_would_block(errno)) {
            return 0;
        }
        PyErr_SetFromErrno(PyExc_OSError);
        PyObject *exc = iol_err_fetch();
        (void)iol_tr_want(tr, tr->life.smask & ~IOL_WRITE);
        iol_tr_queue_clear(tr);
        iol_err_restore(Py_XNewRef(exc));
        int rc = iol_tr_fatal(tr, "Fatal write error on socket transport");
        if (rc == 0 && tr->empty_waiter != NULL &&
            tr->empty_waiter != Py_None) {
            PyObject *res = PyObject_CallMethodOneArg(
                tr->empty_waiter, tr_state(tr)->str_set_exception, exc);
            if (res == NULL) {
                PyErr_WriteUnraisable(tr->empty_waiter);
            }
            Py_XDECREF(res);
        }
        Py_XDECREF(exc);
        return rc;
    }
    tr->wsize -= sent;
    while (sent > 0) {
        iol_wchunk *c = &tr->wq[tr->whead];
        Py_ssize_t left = PyBytes_GET_SIZE(c->data) - c->off;
        if (sent < left) {
            c->off += sent;
            break;
        }
        sent -= left;
        Py_DECREF(c->data);
        tr->whead++;
        tr->wlen--;
    }
    if (tr->wlen == 0) {
        tr->whead = 0;
    }
    if (maybe_resume(tr) < 0) {
        return -1;
    }
    if (tr->wlen == 0 && tr->life.loop != NULL) {
        return drained(tr);
    }
    return 0;
}

/* What write() and writelines() refuse before looking at the data. */
static int
check_writable(TransportObject *tr, const char *what)
{
    if (tr->eof) {
        PyErr_Format(PyExc_RuntimeError, "Cannot call %s() after "
                     "write_eof()", what);
        return -1;
    }
    if (tr->empty_waiter != NULL && tr->empty_waiter != Py_None) {
        PyErr_Format(PyExc_RuntimeError,
                     "unable to %s; sendfile is in progress", what);
        return -1;
    }
    return 0;
}

static int
check_data(PyObject *data)
{
    if (PyBytes_Check(data) || PyByteArray_Check(data) ||
        PyMemoryView_Check(data)) {
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "data argument must be a bytes-like object, not '%.200s'",
                 Py_TYPE(data)->tp_name);
    return -1;
}

/* Writes to a lost connection are dropped; after a few, asyncio warns
 * on each one, and so do we. */
static int
lost_write(TransportObject *tr)
{
    if (tr->life.conn_lost >= IOL_CONNLOST_LOG) {
        PyObject *res = PyObject_CallMethod((PyObject *)tr,
                                            "_warn_lost_write", NULL);
        if (res == NULL) {
            return -1;
        }
        Py_DECREF(res);
    }
    tr->life.conn_lost++;
    return 0;
}

/* write() on len bytes at buf, which data holds (queued by reference
 * if it is bytes) or NULL (a copy is queued): 0, or -1 with an error. */
static int
write_buf(TransportObject *tr, PyObject *data, const char *buf,
          Py_ssize_t len)
{
    Py_ssize_t off = 0;
    if (len == 0) {
        return 0;
    }
    if (tr->life.conn_lost || tr->life.loop == NULL) {
        return lost_write(tr);
    }
    if (tr->wlen == 0) {
        ssize_t n = iol_sock_send(tr->fd, buf, (size_t)len);
        if (n < 0 && !iol_sock_would_block(errno)) {
            PyErr_SetFromErrno(PyExc_OSError);
            return iol_tr_fatal(tr, "Fatal write error on socket "
                                "transport") < 0 ? -1 : 0;
        }
        off = n < 0 ? 0 : n;
        if (off == len) {
            return 0;
        }
        if (iol_tr_want(tr, tr->life.smask | IOL_WRITE) < 0) {
            return -1;
        }
    }
    if (queue_push(tr, data, buf, len, off) < 0 || maybe_pause(tr) < 0) {
        return -1;
    }
    return 0;
}

int
iol_tr_write_buf(TransportObject *tr, const char *buf, Py_ssize_t len)
{
    if (check_writable(tr, "write") < 0) {
        return -1;
    }
    return write_buf(tr, NULL, buf, len);
}

static PyObject *
Transport_write(TransportObject *tr, PyObject *data)
{
    if (check_data(data) < 0 || check_writable(tr, "write") < 0) {
        return NULL;
    }
    /* bytes, the common case, without the buffer protocol's round trip
     * (a tenth of a small write's instructions). */
    Py_buffer view = {.obj = NULL};
    if (PyBytes_CheckExact(data)) {
        view.buf = PyBytes_AS_STRING(data);
        view.len = PyBytes_GET_SIZE(data);
    }
    else if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    int rc = write_buf(tr, data, view.buf, view.len);
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return rc < 0 ? NULL : Py_NewRef(Py_None);
}

static PyObject *
Transport_writelines(TransportObject *tr, PyObject *iterable)
{
    if (check_writable(tr, "writelines") < 0) {
        return NULL;
    }
    /* All items are checked before any is queued, as b"".join() would. */
    PyObject *items = PySequence_Fast(iterable, "writelines() takes an "
                                      "iterable of bytes-like objects");
    if (items == NULL) {
        return NULL;
    }
    PyObject *ret = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (check_data(PySequence_Fast_GET_ITEM(items, i)) < 0) {
            goto done;
        }
    }
    if (n == 0) {
        goto ok;
    }
    if (tr->life.conn_lost || tr->life.loop == NULL) {
        if (lost_write(tr) < 0) {
            goto done;
        }
        goto ok;
    }
    int was_empty = tr->wlen == 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(items, i);
        Py_buffer view;
        if (PyObject_GetBuffer(item, &view, PyBUF_SIMPLE) < 0) {
            goto done;
        }
        int rc = view.len ? queue_push(tr, item, view.buf, view.len, 0) : 0;
        PyBuffer_Release(&view);
        if (rc < 0) {
            goto done;
        }
    }
    if (was_empty && tr->wlen && iol_tr_flush(tr) < 0) {
        goto done;
    }
    if (tr->wlen && !tr->life.conn_lost) {
        if (iol_tr_want(tr, tr->life.smask | IOL_WRITE) < 0 ||
            maybe_pause(tr) < 0) {
            goto done;
        }
    }
ok:
    ret = Py_NewRef(Py_None);
done:
    Py_DECREF(items);
    return ret;
}

static PyObject *
Transport_write_eof(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->life.closing || tr->eof) {
        Py_RETURN_NONE;
    }
    tr->eof = 1;
    if (tr->wlen == 0 && iol_sock_shutdown(tr->fd, SHUT_WR) < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_can_write_eof(TransportObject *Py_UNUSED(tr),
                        PyObject *Py_UNUSED(ignored))
{
    Py_RETURN_TRUE;
}

static PyObject *
Transport_get_write_buffer_size(TransportObject *tr,
                                PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(tr->wsize);
}

static PyObject *
Transport_get_write_buffer_limits(TransportObject *tr,
                                  PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(nn)", tr->low, tr->high);
}

static PyObject *
Transport_set_write_buffer_limits(TransportObject *tr, PyObject *args,
                                  PyObject *kwds)
{
    static char *kwlist[] = {"high", "low", NULL};
    PyObject *ohigh = Py_None, *olow = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:set_write_buffer_"
                                     "limits", kwlist, &ohigh, &olow)) {
        return NULL;
    }
    Py_ssize_t high, low;
    if (ohigh == Py_None) {
        high = IOL_HIGH_WATER;
        if (olow != Py_None) {
            low = PyNumber_AsSsize_t(olow, PyExc_OverflowError);
            if (low == -1 && PyErr_Occurred()) {
                return NULL;
            }
            high = low > PY_SSIZE_T_MAX / 4 ? PY_SSIZE_T_MAX : 4 * low;
        }
    }
    else {
        high = PyNumber_AsSsize_t(ohigh, PyExc_OverflowError);
        if (high == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (olow == Py_None) {
        low = high / 4;
    }
    else {
        low = PyNumber_AsSsize_t(olow, PyExc_OverflowError);
        if (low == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (!(high >= low && low >= 0)) {
        PyErr_Format(PyExc_ValueError,
                     "high (%zd) must be >= low (%zd) must be >= 0", high,
                     low);
        return NULL;
    }
    tr->high = high;
    tr->low = low;
    if (tr->life.loop != NULL && maybe_pause(tr) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_maybe_pause(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->life.loop != NULL && maybe_pause(tr) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Transport_maybe_resume(TransportObject *tr, PyObject *Py_UNUSED(ignored))
{
    if (tr->life.loop != NULL && maybe_resume(tr) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyMethodDef iol_transport_write_methods[] = {
    {"write", (PyCFunction)Transport_write, METH_O,
     "Send data (bytes-like) now, or queue what the kernel did not take."},
    {"writelines", (PyCFunction)Transport_writelines, METH_O,
     "Write each bytes-like object of an iterable, in one go."},
    {"write_eof", (PyCFunction)Transport_write_eof, METH_NOARGS,
     "Shut the write side down once the queue is sent."},
    {"can_write_eof", (PyCFunction)Transport_can_write_eof, METH_NOARGS,
     "True: a socket can be half closed."},
    {"get_write_buffer_size", (PyCFunction)Transport_get_write_buffer_size,
     METH_NOARGS, "Bytes queued and not sent yet."},
    {"get_write_buffer_limits",
     (PyCFunction)Transport_get_write_buffer_limits, METH_NOARGS,
     "(low, high) water marks."},
    {"set_write_buffer_limits",
     (PyCFunction)(void (*)(void))Transport_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS,
     "Set the water marks that pause and resume the protocol's writing."},
    {"_set_write_buffer_limits",
     (PyCFunction)(void (*)(void))Transport_set_write_buffer_limits,
     METH_VARARGS | METH_KEYWORDS, NULL},
    {"_maybe_pause_protocol", (PyCFunction)Transport_maybe_pause,
     METH_NOARGS, NULL},
    {"_maybe_resume_protocol", (PyCFunction)Transport_maybe_resume,
     METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
