/*
 * iostream.c: the native core under Tornado's IOStream face.
 *
 * Tornado's IOStream keeps its read buffer in a bytearray that every
 * read appends to (after reading into a fresh bytearray of
 * read_chunk_size) and every consume deletes from the front of, and its
 * write buffer in a deque of bytearrays and memoryviews sent one piece
 * per send().  This type holds both in C instead:
 *
 * - the read buffer (iostream_buf.c) is one contiguous, growable block
 *   with a read position; recv() goes straight into its free tail,
 *   delimiters are found with memmem(), a consume copies the bytes out
 *   and moves the position (or hands a whole block over); here the
 *   unread bytes are exported read-only through the buffer protocol, so
 *   read_until_regex() searches them in place;
 * - read_into() reads straight into the caller's buffer;
 * - the write queue (iostream_write.c) holds the caller's bytes objects
 *   by reference and goes out with one sendmsg() of all its pieces.
 *
 * ioloop_c/_iostream.py subclasses tornado.iostream.IOStream and this
 * type, and keeps Tornado's control flow around these primitives.
 */
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <structmember.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../engine/sock.h"

/* _c_recv(size): iol_ios_recv() for Python: the count, 0 at end of file,
 * None if nothing was there (EAGAIN), OSError for anything else;
 * Tornado's read_from_fd() and buffer append in one step. */
static PyObject *
IOStreamCore_recv(IOStreamCoreObject *s, PyObject *arg)
{
    Py_ssize_t size = PyLong_AsSsize_t(arg);
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size <= 0) {
        PyErr_SetString(PyExc_ValueError, "size must be positive");
        return NULL;
    }
    ssize_t n = iol_ios_recv(s, size);
    if (n == IOL_IOS_GOT_EXC) {
        return NULL;
    }
    if (n < 0) {
        if (iol_sock_would_block(errno)) {
            Py_RETURN_NONE;
        }
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromSsize_t(n);
}

/* _c_append(data): add bytes read by some other means (a subclass's own
 * read_from_fd()) to the read buffer, or count them in read_into(). */
static PyObject *
IOStreamCore_append(IOStreamCoreObject *s, PyObject *arg)
{
    if (s->user) {
        Py_ssize_t n = PyLong_AsSsize_t(arg);
        if (n == -1 && PyErr_Occurred()) {
            return NULL;
        }
        s->ufill += n;
        Py_RETURN_NONE;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    int rc = iol_ios_reserve(s, view.len);
    if (rc == 0 && view.len > 0) {
        memcpy(s->rbuf + s->rpos + s->rlen, view.buf, (size_t)view.len);
        s->rlen += view.len;
    }
    PyBuffer_Release(&view);
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _c_find(delimiter): see iol_ios_find_delim(). */
static PyObject *
IOStreamCore_find(IOStreamCoreObject *s, PyObject *delim)
{
    Py_ssize_t pos = iol_ios_find_delim(s, delim);
    return pos == IOL_IOS_GOT_EXC ? NULL : PyLong_FromSsize_t(pos);
}

/* _c_take(n): see iol_ios_take(). */
static PyObject *
IOStreamCore_take(IOStreamCoreObject *s, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return iol_ios_take(s, n);
}

/* _c_user_begin(buf): start a read_into(buf).  What is buffered already
 * goes first (as much as fits), and later reads go straight into buf.
 * Returns how many bytes were copied. */
static PyObject *
IOStreamCore_user_begin(IOStreamCoreObject *s, PyObject *buf)
{
    if (s->user) {
        PyErr_SetString(PyExc_RuntimeError, "already reading into a buffer");
        return NULL;
    }
    if (iol_ios_check_exports(s) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    Py_ssize_t n = view.len < s->rlen ? view.len : s->rlen;
    if (n > 0) {
        memcpy(view.buf, s->rbuf + s->rpos, (size_t)n);
        iol_ios_drop(s, n);
    }
    PyBuffer_Release(&view);
    s->user = 1;
    s->ufill = n;
    s->uobj = Py_NewRef(buf);
    return PyLong_FromSsize_t(n);
}

static PyObject *
IOStreamCore_user_end(IOStreamCoreObject *s, PyObject *Py_UNUSED(ignored))
{
    iol_ios_user_end(s);
    Py_RETURN_NONE;
}

static PyObject *
IOStreamCore_set_fd(IOStreamCoreObject *s, PyObject *arg)
{
    int fd = iol_long_as_int(arg);
    if (fd == -1 && PyErr_Occurred()) {
        return NULL;
    }
    s->fd = fd;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* Attributes Tornado's own code reads */

static PyObject *
get_read_buffer_size(IOStreamCoreObject *s, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(s->user ? s->ufill : s->rlen);
}

/* BaseIOStream.__init__ sets it to 0; the size is the buffer's own. */
static int
set_read_buffer_size(IOStreamCoreObject *s, PyObject *v, void *Py_UNUSED(c))
{
    Py_ssize_t n = v ? PyLong_AsSsize_t(v) : -1;
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (n != (s->user ? s->ufill : s->rlen)) {
        PyErr_SetString(PyExc_AttributeError,
                        "_read_buffer_size follows the native read buffer");
        return -1;
    }
    return 0;
}

/* A copy of the unread bytes (the caller's buffer during read_into). */
static PyObject *
get_read_buffer(IOStreamCoreObject *s, void *Py_UNUSED(c))
{
    if (s->user) {
        return Py_NewRef(s->uobj);
    }
    return PyByteArray_FromStringAndSize(s->rlen ? s->rbuf + s->rpos : "",
                                         s->rlen);
}

/* BaseIOStream.__init__ sets an empty bytearray; anything else would be
 * a second buffer the native one knows nothing of. */
static int
set_read_buffer(IOStreamCoreObject *s, PyObject *v, void *Py_UNUSED(c))
{
    Py_ssize_t n = v ? PyObject_Size(v) : -1;
    if (n < 0 && PyErr_Occurred()) {
        return -1;
    }
    if (n != 0 || s->rlen != 0 || s->user) {
        PyErr_SetString(PyExc_AttributeError,
                        "_read_buffer is the native read buffer");
        return -1;
    }
    return 0;
}

static PyObject *
get_user(IOStreamCoreObject *s, void *Py_UNUSED(c))
{
    return PyBool_FromLong(s->user);
}

/* BaseIOStream.__init__ sets False; read_into() is the native one. */
static int
set_user(IOStreamCoreObject *s, PyObject *v, void *Py_UNUSED(c))
{
    int b = v ? PyObject_IsTrue(v) : -1;
    if (b < 0 && PyErr_Occurred()) {
        return -1;
    }
    if (b != s->user) {
        PyErr_SetString(PyExc_AttributeError,
                        "_user_read_buffer follows the native read_into()");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Two calls Tornado's HTTP connection makes on every request */

/* set_close_callback(callback), as BaseIOStream has it: store it, then
 * _maybe_add_error_listener(), the C step for this class and whatever a
 * subclass has for the others. */
static PyObject *
IOStreamCore_set_close_callback(IOStreamCoreObject *s, PyObject *callback)
{
    Py_XSETREF(s->close_callback, Py_NewRef(callback));
    if ((PyObject *)Py_TYPE(s) == s->st->ios_class) {
        return iol_ios_done(iol_ios_maybe_add_error_listener(s));
    }
    PyObject *self = (PyObject *)s;
    return PyObject_VectorcallMethod(
        iol_ios_name(s, IOL_IOS_S_MAYBE_ADD_ERROR_LISTENER), &self,
        1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* The OSError just raised by setsockopt(): None if the stream's
 * _is_connreset() calls it a reset (Tornado passes those over), else NULL
 * with it raised again. */
static PyObject *
nodelay_failed(IOStreamCoreObject *s)
{
    PyObject *exc = iol_err_fetch();
    PyObject *argv[] = {(PyObject *)s, exc};
    PyObject *r = PyObject_VectorcallMethod(
        iol_ios_name(s, IOL_IOS_S_IS_CONNRESET), argv,
        2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    int reset = r == NULL ? -1 : PyObject_IsTrue(r);
    Py_XDECREF(r);
    if (reset < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    if (reset) {
        Py_DECREF(exc);
        Py_RETURN_NONE;
    }
    iol_err_restore(exc);
    return NULL;
}

/* set_nodelay(value), as Tornado's IOStream has it: TCP_NODELAY on or
 * off for an AF_INET or AF_INET6 socket, nothing for others or for no
 * socket.  For a plain socket.socket the family comes from _socket's own
 * member (the socket.family property builds an AddressFamily on each
 * call, most of what Tornado's method costs) and the option is set here;
 * any other socket object takes Tornado's method itself. */
static PyObject *
IOStreamCore_set_nodelay(IOStreamCoreObject *s, PyObject *value)
{
    iol_modstate *st = s->st;
    PyObject *sock = s->socket;
    if (sock == Py_None) {
        Py_RETURN_NONE;
    }
    if (st->ios_set_nodelay == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_iostream_configure() first");
        return NULL;
    }
    if (sock == NULL || (PyObject *)Py_TYPE(sock) != st->ios_socket_type) {
        PyObject *argv[] = {(PyObject *)s, value};
        return PyObject_Vectorcall(st->ios_set_nodelay, argv, 2, NULL);
    }
    Py_INCREF(sock);
    PyObject *res = NULL;
    PyObject *fam = Py_TYPE(st->ios_family)->tp_descr_get(st->ios_family,
                                                          sock, NULL);
    long family = fam ? PyLong_AsLong(fam) : -1;
    Py_XDECREF(fam);
    if (family == -1 && PyErr_Occurred()) {
        goto done;
    }
    if (family != AF_INET && family != AF_INET6) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    int on = PyObject_IsTrue(value);
    if (on < 0) {
        goto done;
    }
    PyObject *fdo = PyObject_VectorcallMethod(
        iol_ios_name(s, IOL_IOS_S_FILENO), &sock,
        1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    int fd = fdo ? iol_long_as_int(fdo) : -1;
    Py_XDECREF(fdo);
    if (fd == -1 && PyErr_Occurred()) {
        goto done;
    }
    /* A closed socket says -1, which setsockopt() answers with EBADF, as
     * the socket's own method would.  EINVAL Tornado passes over. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0 ||
        errno == EINVAL) {
        res = Py_NewRef(Py_None);
    }
    else {
        PyErr_SetFromErrno(PyExc_OSError);
        res = nodelay_failed(s);
    }
done:
    Py_DECREF(sock);
    return res;
}

/* ------------------------------------------------------------------ */
/* The buffer protocol: the unread bytes, read-only, for regex search */

static int
IOStreamCore_getbuffer(IOStreamCoreObject *s, Py_buffer *view, int flags)
{
    if (s->user) {
        PyErr_SetString(PyExc_BufferError, "reading into a caller's buffer");
        view->obj = NULL;
        return -1;
    }
    char *p = s->rlen ? s->rbuf + s->rpos : "";
    if (PyBuffer_FillInfo(view, (PyObject *)s, p, s->rlen, 1, flags) < 0) {
        return -1;
    }
    s->exports++;
    return 0;
}

static void
IOStreamCore_releasebuffer(IOStreamCoreObject *s, Py_buffer *Py_UNUSED(v))
{
    s->exports--;
}

/* ------------------------------------------------------------------ */
/* The type */

static PyObject *
IOStreamCore_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
                 PyObject *Py_UNUSED(kwds))
{
    IOStreamCoreObject *s = (IOStreamCoreObject *)type->tp_alloc(type, 0);
    if (s == NULL) {
        return NULL;
    }
    s->st = iol_state_of_type(type);
    if (s->st == NULL) {
        Py_DECREF(s);
        return NULL;
    }
    s->fd = -1;
    return (PyObject *)s;
}

static int
IOStreamCore_traverse(IOStreamCoreObject *s, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(s));
    Py_VISIT(s->uobj);
    Py_VISIT(s->fdelim);
    Py_VISIT(s->read_future);
    Py_VISIT(s->read_bytes);
    Py_VISIT(s->read_delimiter);
    Py_VISIT(s->read_regex);
    Py_VISIT(s->read_max_bytes);
    Py_VISIT(s->read_partial);
    Py_VISIT(s->read_until_close);
    Py_VISIT(s->closed);
    Py_VISIT(s->connecting);
    Py_VISIT(s->state);
    Py_VISIT(s->close_callback);
    Py_VISIT(s->write_futures);
    Py_VISIT(s->io_loop);
    Py_VISIT(s->socket);
    Py_VISIT(s->max_buffer_size);
    Py_VISIT(s->read_chunk_size);
    Py_VISIT(s->max_write_buffer_size);
    for (Py_ssize_t i = 0; i < s->wlen; i++) {
        Py_VISIT(s->wq[s->whead + i].obj);
    }
    return 0;
}

static int
IOStreamCore_clear(IOStreamCoreObject *s)
{
    iol_ios_user_end(s);
    iol_ios_queue_clear(s);
    Py_CLEAR(s->fdelim);
    Py_CLEAR(s->read_future);
    Py_CLEAR(s->read_bytes);
    Py_CLEAR(s->read_delimiter);
    Py_CLEAR(s->read_regex);
    Py_CLEAR(s->read_max_bytes);
    Py_CLEAR(s->read_partial);
    Py_CLEAR(s->read_until_close);
    Py_CLEAR(s->closed);
    Py_CLEAR(s->connecting);
    Py_CLEAR(s->state);
    Py_CLEAR(s->close_callback);
    Py_CLEAR(s->write_futures);
    Py_CLEAR(s->io_loop);
    Py_CLEAR(s->socket);
    Py_CLEAR(s->max_buffer_size);
    Py_CLEAR(s->read_chunk_size);
    Py_CLEAR(s->max_write_buffer_size);
    return 0;
}

static void
IOStreamCore_dealloc(IOStreamCoreObject *s)
{
    PyTypeObject *tp = Py_TYPE(s);
    PyObject_GC_UnTrack(s);
    IOStreamCore_clear(s);
    iol_ios_rbuf_free(s);
    tp->tp_free((PyObject *)s);
    Py_DECREF(tp);
}

static PyMethodDef iostream_methods[] = {
    {"_c_recv", (PyCFunction)IOStreamCore_recv, METH_O, NULL},
    {"_c_append", (PyCFunction)IOStreamCore_append, METH_O, NULL},
    {"_c_find", (PyCFunction)IOStreamCore_find, METH_O, NULL},
    {"_c_take", (PyCFunction)IOStreamCore_take, METH_O, NULL},
    {"_c_user_begin", (PyCFunction)IOStreamCore_user_begin, METH_O, NULL},
    {"_c_user_end", (PyCFunction)IOStreamCore_user_end, METH_NOARGS, NULL},
    {"_c_set_fd", (PyCFunction)IOStreamCore_set_fd, METH_O, NULL},
    {"_c_set_close_callback", (PyCFunction)IOStreamCore_set_close_callback,
     METH_O, NULL},
    {"_c_set_nodelay", (PyCFunction)IOStreamCore_set_nodelay, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef iostream_getset[] = {
    {"_read_buffer_size", (getter)get_read_buffer_size,
     (setter)set_read_buffer_size, NULL, NULL},
    {"_read_buffer", (getter)get_read_buffer, (setter)set_read_buffer,
     NULL, NULL},
    {"_user_read_buffer", (getter)get_user, (setter)set_user, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define IOL_IOS_MEMBER(name, field)                                          \
    {name, T_OBJECT_EX, offsetof(IOStreamCoreObject, field), 0, NULL}
static PyMemberDef iostream_members[] = {
    IOL_IOS_MEMBER("_read_future", read_future),
    IOL_IOS_MEMBER("_read_bytes", read_bytes),
    IOL_IOS_MEMBER("_read_delimiter", read_delimiter),
    IOL_IOS_MEMBER("_read_regex", read_regex),
    IOL_IOS_MEMBER("_read_max_bytes", read_max_bytes),
    IOL_IOS_MEMBER("_read_partial", read_partial),
    IOL_IOS_MEMBER("_read_until_close", read_until_close),
    IOL_IOS_MEMBER("_closed", closed),
    IOL_IOS_MEMBER("_connecting", connecting),
    IOL_IOS_MEMBER("_state", state),
    IOL_IOS_MEMBER("_close_callback", close_callback),
    IOL_IOS_MEMBER("_write_futures", write_futures),
    IOL_IOS_MEMBER("io_loop", io_loop),
    IOL_IOS_MEMBER("socket", socket),
    IOL_IOS_MEMBER("max_buffer_size", max_buffer_size),
    IOL_IOS_MEMBER("read_chunk_size", read_chunk_size),
    {"_total_write_index", T_LONGLONG,
     offsetof(IOStreamCoreObject, total_write_index), 0, NULL},
    IOL_IOS_MEMBER("max_write_buffer_size", max_write_buffer_size),
    {"_c_native_recv", T_INT, offsetof(IOStreamCoreObject, native_recv), 0,
     NULL},
    {NULL, 0, 0, 0, NULL},
};
#undef IOL_IOS_MEMBER

static PyType_Slot iostream_slots[] = {
    {Py_tp_members, iostream_members},
    {Py_tp_new, IOStreamCore_new},
    {Py_tp_dealloc, IOStreamCore_dealloc},
    {Py_tp_traverse, IOStreamCore_traverse},
    {Py_tp_clear, IOStreamCore_clear},
    {Py_tp_methods, iostream_methods},
    {Py_tp_getset, iostream_getset},
    {Py_bf_getbuffer, IOStreamCore_getbuffer},
    {Py_bf_releasebuffer, IOStreamCore_releasebuffer},
    {Py_tp_doc, "The native core of ioloop_c's Tornado IOStream: the read "
                "buffer, the write queue and the socket calls."},
    {0, NULL},
};

static PyType_Spec iostream_spec = {
    .name = "ioloop_c._core.IOStreamCore",
    .basicsize = sizeof(IOStreamCoreObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = iostream_slots,
};

static int
add_descr(PyTypeObject *tp, const char *name, PyObject *d)
{
    if (d == NULL) {
        return -1;
    }
    int rc = PyDict_SetItemString(tp->tp_dict, name, d);
    Py_DECREF(d);
    return rc;
}

/* A spec has one method table and one getset table; those of the event
 * path and of the write side live in their own files and are added
 * here. */
static int
add_methods(PyTypeObject *tp)
{
    PyMethodDef *tables[] = {iol_ios_event_methods, iol_ios_write_methods};
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        for (PyMethodDef *m = tables[t]; m->ml_name; m++) {
            if (add_descr(tp, m->ml_name, PyDescr_NewMethod(tp, m)) < 0) {
                return -1;
            }
        }
    }
    for (PyGetSetDef *g = iol_ios_write_getset; g->name; g++) {
        if (add_descr(tp, g->name, PyDescr_NewGetSet(tp, g)) < 0) {
            return -1;
        }
    }
    PyType_Modified(tp);
    return 0;
}

int
iol_iostream_type_init(PyObject *mod, iol_modstate *st)
{
    st->IOStreamCoreType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &iostream_spec, NULL);
    if (st->IOStreamCoreType == NULL || add_methods(st->IOStreamCoreType) <
        0 || iol_ios_event_init(mod, st) < 0) {
        return -1;
    }
    return PyModule_AddType(mod, st->IOStreamCoreType);
}
