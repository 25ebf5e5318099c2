/*
 * iostream_write.c: the native IOStream's output side.
 *
 * write() queues the caller's object: bytes by reference (it cannot
 * change), a small mutable buffer as a copy, a large one as a memoryview
 * over it, which holds the caller's export until sent, as Tornado's own
 * _StreamBuffer does (the caller may not resize it meanwhile).  The queue
 * goes out with one sendmsg() of all its pieces; the write futures
 * resolve in order as the count of bytes sent passes each one's index,
 * as in BaseIOStream._handle_write.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "../engine/sock.h"

/* Small writes of mutable buffers are copied, larger ones are kept as a
 * view (Tornado's _StreamBuffer._large_buf_threshold). */
#define IOL_LARGE_WRITE 2048
#define T_WRITE 0x004

void
iol_ios_queue_clear(IOStreamCoreObject *s)
{
    /* Detach first: dropping a memoryview may run code. */
    iol_schunk *q = s->wq;
    Py_ssize_t head = s->whead, len = s->wlen;
    s->wq = NULL;
    s->whead = s->wlen = s->wcap = 0;
    s->wsize = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_DECREF(q[head + i].obj);
    }
    PyMem_Free(q);
}

static int
is_none_obj(PyObject *o)
{
    return o == NULL || o == Py_None;
}

static int
queue_grow(IOStreamCoreObject *s)
{
    if (s->whead + s->wlen < s->wcap) {
        return 0;
    }
    if (s->whead > 0) {
        memmove(s->wq, s->wq + s->whead, (size_t)s->wlen * sizeof(*s->wq));
        s->whead = 0;
        return 0;
    }
    Py_ssize_t ncap = s->wcap ? s->wcap * 2 : 8;
    iol_schunk *q = PyMem_Realloc(s->wq, (size_t)ncap * sizeof(*q));
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->wq = q;
    s->wcap = ncap;
    return 0;
}

/* _c_queue(data): queue a bytes-like object; returns its length. */
static PyObject *
IOStreamCore_queue(IOStreamCoreObject *s, PyObject *data)
{
    PyObject *keep;
    const char *ptr;
    Py_ssize_t len;
    if (PyBytes_CheckExact(data)) {
        keep = Py_NewRef(data);
        ptr = PyBytes_AS_STRING(data);
        len = PyBytes_GET_SIZE(data);
    }
    else {
        Py_buffer view;
        if (PyObject_GetBuffer(data, &view, PyBUF_C_CONTIGUOUS) < 0) {
            return NULL;
        }
        len = view.len;
        if (len <= IOL_LARGE_WRITE) {
            keep = PyBytes_FromStringAndSize(view.buf, len);
            PyBuffer_Release(&view);
            if (keep == NULL) {
                return NULL;
            }
            ptr = PyBytes_AS_STRING(keep);
        }
        else {
            /* The memoryview holds the caller's export until sent. */
            PyBuffer_Release(&view);
            keep = PyMemoryView_FromObject(data);
            if (keep == NULL) {
                return NULL;
            }
            ptr = PyMemoryView_GET_BUFFER(keep)->buf;
        }
    }
    if (len == 0) {
        Py_DECREF(keep);
        return PyLong_FromLong(0);
    }
    if (queue_grow(s) < 0) {
        Py_DECREF(keep);
        return NULL;
    }
    iol_schunk *c = &s->wq[s->whead + s->wlen];
    c->obj = keep;
    c->ptr = ptr;
    c->len = len;
    c->off = 0;
    s->wlen++;
    s->wsize += len;
    return PyLong_FromSsize_t(len);
}

/* Send what the kernel takes, until the queue is empty or the socket is
 * full; -1 with errno for an error. */
int
iol_ios_flush(IOStreamCoreObject *s)
{
    struct iovec iov[64];
    while (s->wlen > 0) {
        int cnt = 0;
        for (Py_ssize_t i = 0; i < s->wlen && cnt < 64; i++) {
            iol_schunk *c = &s->wq[s->whead + i];
            iov[cnt].iov_base = (void *)(c->ptr + c->off);
            iov[cnt].iov_len = (size_t)(c->len - c->off);
            cnt++;
        }
        ssize_t n = iol_sock_writev(s->fd, iov, cnt);
        if (n < 0) {
            return iol_sock_would_block(errno) ? 0 : -1;
        }
        if (n == 0) {
            return 0;
        }
        s->wsize -= n;
        s->wdone += n;
        while (n > 0) {
            iol_schunk *c = &s->wq[s->whead];
            Py_ssize_t left = c->len - c->off;
            if (n < left) {
                c->off += n;
                break;
            }
            n -= left;
            PyObject *obj = c->obj;
            s->whead++;
            s->wlen--;
            Py_DECREF(obj);
        }
        if (s->wlen == 0) {
            s->whead = 0;
        }
    }
    return 0;
}

/* _c_flush(): send the queue (see queue_flush); returns the count of
 * bytes ever sent, or raises OSError. */
static PyObject *
IOStreamCore_flush(IOStreamCoreObject *s, PyObject *Py_UNUSED(ignored))
{
    if (iol_ios_flush(s) < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLongLong(s->wdone);
}

static PyObject *
IOStreamCore_clear_writes(IOStreamCoreObject *s,
                          PyObject *Py_UNUSED(ignored))
{
    iol_ios_queue_clear(s);
    Py_RETURN_NONE;
}


int
iol_ios_cancelled(IOStreamCoreObject *s, PyObject *future)
{
    PyObject *c = PyObject_CallMethodNoArgs(
        future, iol_ios_name(s, IOL_IOS_S_CANCELLED));
    if (c == NULL) {
        return -1;
    }
    int cancelled = PyObject_IsTrue(c);
    Py_DECREF(c);
    return cancelled;
}

/* A write future's success, as future_set_result_unless_cancelled.
 * write() gave it the done callback that marks its exception retrieved
 * (Tornado's `lambda f: f.exception()`); with a result it would only
 * cost a loop callback that does nothing, so it is removed first.  A
 * future that fails (in _signal_closed) or is cancelled keeps it. */
static int
resolve_write(IOStreamCoreObject *s, PyObject *future)
{
    int cancelled = iol_ios_cancelled(s, future);
    if (cancelled != 0) {
        return cancelled < 0 ? -1 : 0;
    }
    PyObject *res = PyObject_CallMethodOneArg(
        future, iol_ios_name(s, IOL_IOS_S_REMOVE_DONE_CALLBACK),
        s->st->ios_retrieve);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return iol_ios_set_result(s, future, Py_None);
}

int
iol_ios_handle_write(IOStreamCoreObject *s)
{
    if (iol_ios_flush(s) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return iol_ios_hand_exception(s, IOL_IOS_S_WRITE_FAILED);
    }
    PyObject *futures = s->write_futures;
    if (futures == NULL) {
        return 0;
    }
    Py_INCREF(futures);
    int rc = 0;
    while (rc == 0 && PyObject_Length(futures) > 0) {
        PyObject *item = PySequence_GetItem(futures, 0);
        if (item == NULL) {
            rc = -1;
            break;
        }
        long long index = -1;
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2) {
            index = PyLong_AsLongLong(PyTuple_GET_ITEM(item, 0));
        }
        else {
            PyErr_SetString(PyExc_TypeError, "bad _write_futures entry");
        }
        if (PyErr_Occurred() || index > s->wdone) {
            rc = PyErr_Occurred() ? -1 : 0;
            Py_DECREF(item);
            break;
        }
        PyObject *popped = PyObject_CallMethodNoArgs(
            futures, iol_ios_name(s, IOL_IOS_S_POPLEFT));
        Py_XDECREF(popped);
        rc = popped == NULL ? -1
                            : resolve_write(s, PyTuple_GET_ITEM(item, 1));
        Py_DECREF(item);
    }
    Py_DECREF(futures);
    return rc;
}

/* write(data): BaseIOStream.write. */
static PyObject *
IOS_write(IOStreamCoreObject *s, PyObject *data)
{
    iol_modstate *st = s->st;
    if (st->ios_future == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_iostream_configure() not run");
        return NULL;
    }
    if (iol_ios_is_closed(s)) {
        PyObject *res = PyObject_CallMethodNoArgs(
            (PyObject *)s, iol_ios_name(s, IOL_IOS_S_CHECK_CLOSED));
        Py_XDECREF(res);
        return NULL;
    }
    int nonempty = PyObject_IsTrue(data);
    if (nonempty < 0) {
        return NULL;
    }
    if (nonempty) {
        PyObject *d = PyMemoryView_Check(data)
                          ? PyObject_CallMethod(data, "cast", "s", "B")
                          : Py_NewRef(data);
        if (d == NULL) {
            return NULL;
        }
        Py_ssize_t len = PyObject_Size(d);
        int full = 0;
        if (len >= 0 && !is_none_obj(s->max_write_buffer_size)) {
            Py_ssize_t max = PyLong_AsSsize_t(s->max_write_buffer_size);
            full = !(max == -1 && PyErr_Occurred()) && s->wsize + len > max;
        }
        PyObject *n = NULL;
        if (full) {
            PyObject *res = PyObject_CallMethodNoArgs(
                (PyObject *)s, iol_ios_name(s, IOL_IOS_S_WRITE_FULL));
            Py_XDECREF(res);
        }
        else if (!PyErr_Occurred()) {
            n = IOStreamCore_queue(s, d);
        }
        Py_DECREF(d);
        if (n == NULL) {
            return NULL;
        }
        s->total_write_index += PyLong_AsLongLong(n);
        Py_DECREF(n);
    }
    PyObject *future = PyObject_CallNoArgs(st->ios_future);
    if (future == NULL) {
        return NULL;
    }
    PyObject *entry = NULL;
    PyObject *res = PyObject_CallMethodOneArg(
        future, iol_ios_name(s, IOL_IOS_S_ADD_DONE_CALLBACK),
        st->ios_retrieve);
    if (res != NULL) {
        Py_DECREF(res);
        entry = Py_BuildValue("(LO)", s->total_write_index, future);
    }
    if (entry != NULL) {
        res = PyObject_CallMethodOneArg(s->write_futures,
                                        iol_ios_name(s, IOL_IOS_S_APPEND),
                                        entry);
        Py_DECREF(entry);
        Py_XDECREF(res);
    }
    int rc = res == NULL ? -1 : 0;
    if (rc == 0 && s->connecting != NULL &&
        (rc = PyObject_IsTrue(s->connecting)) == 0) {
        rc = iol_ios_handle_write(s);
        if (rc == 0 && s->wsize > 0) {
            rc = iol_ios_add_io_state(s, T_WRITE);
        }
        if (rc == 0) {
            rc = iol_ios_maybe_add_error_listener(s);
        }
    }
    if (rc < 0) {
        Py_DECREF(future);
        return NULL;
    }
    return future;
}

static PyObject *
IOS_handle_write(IOStreamCoreObject *s, PyObject *Py_UNUSED(ignored))
{
    return iol_ios_done(iol_ios_handle_write(s));
}

PyMethodDef iol_ios_write_methods[] = {
    {"_c_write", (PyCFunction)IOS_write, METH_O, NULL},
    {"_c_handle_write", (PyCFunction)IOS_handle_write, METH_NOARGS, NULL},
    {"_c_queue", (PyCFunction)IOStreamCore_queue, METH_O, NULL},
    {"_c_flush", (PyCFunction)IOStreamCore_flush, METH_NOARGS, NULL},
    {"_c_clear_writes", (PyCFunction)IOStreamCore_clear_writes,
     METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyObject *
get_wsize(IOStreamCoreObject *s, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(s->wsize);
}

static PyObject *
get_wdone(IOStreamCoreObject *s, void *Py_UNUSED(c))
{
    return PyLong_FromLongLong(s->wdone);
}

static int
set_wdone(IOStreamCoreObject *s, PyObject *v, void *Py_UNUSED(c))
{
    long long n = v ? PyLong_AsLongLong(v) : -1;
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "must be >= 0");
        return -1;
    }
    s->wdone = n;
    return 0;
}

PyGetSetDef iol_ios_write_getset[] = {
    {"_total_write_done_index", (getter)get_wdone, (setter)set_wdone, NULL,
     NULL},
    {"_c_wsize", (getter)get_wsize, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
