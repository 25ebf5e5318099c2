/*
 * iostream_event.c: Tornado's IOStream event path, in C.
 *
 * The methods here are BaseIOStream's _handle_events, _handle_read,
 * _read_to_buffer_loop, _find_read_pos, _read_from_buffer, _finish_read,
 * _maybe_add_error_listener and _add_io_state (with _handle_write and
 * write() in iostream_write.c), step for step as Tornado 6 writes them,
 * over the native buffers of iostream.c and the instance attributes the
 * type keeps as members.  The rare turns (a read or write error, a full
 * buffer, an unsatisfiable read, an error event, the first registration
 * with the IOLoop, a regex other than HTTP's) call back into Tornado's
 * Python or into the small helpers of ioloop_c/_iostream.py, which keep
 * Tornado's logging and closing to the letter.  A stream of another class
 * than the one registered with _iostream_configure() (a subclass that
 * may override any step) runs Tornado's own _handle_events.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#include "../engine/sock.h"

/* Tornado's IOLoop.READ, WRITE and ERROR. */
#define T_READ 0x001
#define T_WRITE 0x004
#define T_ERROR 0x018

static const char *const str_text[IOL_IOS_NSTR] = {
    [IOL_IOS_S_CANCELLED] = "cancelled",
    [IOL_IOS_S_SET_RESULT] = "set_result",
    [IOL_IOS_S_POPLEFT] = "popleft",
    [IOL_IOS_S_UPDATE_HANDLER] = "update_handler",
    [IOL_IOS_S_RECV_FAILED] = "_c_recv_failed",
    [IOL_IOS_S_BUFFER_FULL] = "_c_buffer_full",
    [IOL_IOS_S_READ_FAILED] = "_c_read_failed",
    [IOL_IOS_S_WRITE_FAILED] = "_c_write_failed",
    [IOL_IOS_S_EVENT_FAILED] = "_c_event_failed",
    [IOL_IOS_S_ERROR_EVENT] = "_c_error_event",
    [IOL_IOS_S_FIND_REGEX] = "_find_read_pos_regex",
    [IOL_IOS_S_CHECK_MAX] = "_check_max_bytes",
    [IOL_IOS_S_READ_TO_BUFFER] = "_read_to_buffer",
    [IOL_IOS_S_CLOSE] = "close",
    [IOL_IOS_S_CHECK_CLOSED] = "_check_closed",
    [IOL_IOS_S_WRITE_FULL] = "_c_write_full",
    [IOL_IOS_S_ADD_DONE_CALLBACK] = "add_done_callback",
    [IOL_IOS_S_APPEND] = "append",
    [IOL_IOS_S_REMOVE_DONE_CALLBACK] = "remove_done_callback",
    [IOL_IOS_S_FILENO] = "fileno",
    [IOL_IOS_S_IS_CONNRESET] = "_is_connreset",
    [IOL_IOS_S_MAYBE_ADD_ERROR_LISTENER] = "_maybe_add_error_listener",
};

PyObject *
iol_ios_name(IOStreamCoreObject *s, int which)
{
    return s->st->ios_str[which];
}

static Py_ssize_t
size_of(IOStreamCoreObject *s)
{
    return s->user ? s->ufill : s->rlen;
}

static int
is_none(PyObject *o)
{
    return o == NULL || o == Py_None;
}

/* self._closed, which Tornado keeps a bool. */
int
iol_ios_is_closed(IOStreamCoreObject *s)
{
    return s->closed != NULL && PyObject_IsTrue(s->closed) == 1;
}

/* Call self.<which>(arg or nothing) and drop the result; 0 or -1. */
static int
call_self(IOStreamCoreObject *s, int which, PyObject *arg)
{
    PyObject *self = (PyObject *)s;
    PyObject *meth = iol_ios_name(s, which);
    PyObject *res = arg ? PyObject_CallMethodOneArg(self, meth, arg)
                        : PyObject_CallMethodNoArgs(self, meth);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

/* Hand the raised exception to self.<which>(exc); 0 if it returns. */
int
iol_ios_hand_exception(IOStreamCoreObject *s, int which)
{
    PyObject *exc = iol_err_fetch();
    if (exc == NULL) {
        return 0;
    }
    int rc = call_self(s, which, exc);
    Py_DECREF(exc);
    return rc;
}

static int
set_field(PyObject **field, PyObject *value)
{
    Py_XSETREF(*field, Py_NewRef(value));
    return 0;
}

/* tornado.concurrent.future_set_result_unless_cancelled */
int
iol_ios_set_result(IOStreamCoreObject *s, PyObject *future, PyObject *value)
{
    int cancelled = iol_ios_cancelled(s, future);
    if (cancelled != 0) {
        return cancelled < 0 ? -1 : 0;
    }
    PyObject *res = PyObject_CallMethodOneArg(
        future, iol_ios_name(s, IOL_IOS_S_SET_RESULT), value);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

static int
as_ssize(PyObject *o, Py_ssize_t *out)
{
    *out = PyLong_AsSsize_t(o);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* io_loop.update_handler(self.socket, state) */
static int
update_handler(IOStreamCoreObject *s, long state)
{
    PyObject *st = PyLong_FromLong(state);
    if (st == NULL) {
        return -1;
    }
    Py_XSETREF(s->state, Py_NewRef(st));
    if (s->io_loop == NULL || s->socket == NULL) {
        Py_DECREF(st);
        PyErr_SetString(PyExc_AttributeError, "stream has no io_loop or "
                        "socket");
        return -1;
    }
    /* Our own references: the call may close the stream. */
    PyObject *argv[] = {Py_NewRef(s->io_loop), Py_NewRef(s->socket), st};
    PyObject *res = PyObject_VectorcallMethod(
        iol_ios_name(s, IOL_IOS_S_UPDATE_HANDLER), argv, 3, NULL);
    Py_DECREF(argv[0]);
    Py_DECREF(argv[1]);
    Py_DECREF(st);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

/* _add_io_state: the first registration is Tornado's own (add_handler). */
int
iol_ios_add_io_state(IOStreamCoreObject *s, long state)
{
    if (iol_ios_is_closed(s)) {
        return 0;
    }
    if (is_none(s->state)) {
        PyObject *st = PyLong_FromLong(state);
        PyObject *res = NULL;
        if (st != NULL) {
            PyObject *argv[] = {(PyObject *)s, st};
            res = PyObject_Vectorcall(s->st->ios_add_io_state, argv, 2,
                                      NULL);
            Py_DECREF(st);
        }
        Py_XDECREF(res);
        return res == NULL ? -1 : 0;
    }
    long cur = PyLong_AsLong(s->state);
    if (cur == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!(cur & state)) {
        return update_handler(s, cur | state);
    }
    return 0;
}

int
iol_ios_maybe_add_error_listener(IOStreamCoreObject *s)
{
    if (!is_none(s->state)) {
        long cur = PyLong_AsLong(s->state);
        if (cur == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (cur != T_ERROR) {
            return 0;
        }
    }
    if (!iol_ios_is_closed(s) && size_of(s) == 0 &&
        !is_none(s->close_callback)) {
        return iol_ios_add_io_state(s, T_READ);
    }
    return 0;
}

/* _check_max_bytes: Tornado raises UnsatisfiableReadError with its own
 * message, so the check that fails is made by its method. */
static int
check_max(IOStreamCoreObject *s, PyObject *delim, Py_ssize_t size)
{
    if (is_none(s->read_max_bytes)) {
        return 0;
    }
    Py_ssize_t max;
    if (as_ssize(s->read_max_bytes, &max) < 0) {
        return -1;
    }
    if (size <= max) {
        return 0;
    }
    PyObject *n = PyLong_FromSsize_t(size);
    if (n == NULL) {
        return -1;
    }
    PyObject *argv[] = {(PyObject *)s, delim, n};
    PyObject *res = PyObject_VectorcallMethod(
        iol_ios_name(s, IOL_IOS_S_CHECK_MAX), argv,
        3, NULL);
    Py_DECREF(n);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

/* Whether regex is Tornado's HTTP header regex, rb"\r?\n\r?\n" with no
 * flags (re.compile's cache gives the same object each time; the first
 * one seen is remembered), which is searched in C. */
static int
is_header_regex(IOStreamCoreObject *s, PyObject *regex)
{
    iol_modstate *st = s->st;
    if (regex == st->ios_header_regex) {
        return 1;
    }
    if (st->ios_header_regex != NULL) {
        return 0;
    }
    PyObject *pattern = PyObject_GetAttrString(regex, "pattern");
    PyObject *flags = pattern ? PyObject_GetAttrString(regex, "flags")
                              : NULL;
    int rc = -1;
    if (flags != NULL) {
        rc = PyBytes_CheckExact(pattern) &&
             PyBytes_GET_SIZE(pattern) == 6 &&
             memcmp(PyBytes_AS_STRING(pattern), "\r?\n\r?\n", 6) == 0 &&
             PyLong_CheckExact(flags) && PyLong_AsLong(flags) == 0;
    }
    else if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        rc = 0;
    }
    Py_XDECREF(pattern);
    Py_XDECREF(flags);
    if (rc == 1) {
        st->ios_header_regex = Py_NewRef(regex);
    }
    return rc;
}

/* _find_read_pos: 1 with *pos set, 0 if the read cannot be satisfied
 * yet, -1 for an exception. */
static int
find_read_pos(IOStreamCoreObject *s, Py_ssize_t *pos)
{
    Py_ssize_t size = size_of(s);
    if (!is_none(s->read_bytes)) {
        Py_ssize_t want;
        if (as_ssize(s->read_bytes, &want) < 0) {
            return -1;
        }
        int partial = s->read_partial ? PyObject_IsTrue(s->read_partial)
                                      : 0;
        if (partial < 0) {
            return -1;
        }
        if (size >= want || (partial && size > 0)) {
            *pos = want < size ? want : size;
            return 1;
        }
    }
    if (!is_none(s->read_delimiter)) {
        if (size == 0) {
            return 0;
        }
        PyObject *delim = Py_NewRef(s->read_delimiter);
        Py_ssize_t loc = iol_ios_find_delim(s, delim);
        int rc = 0;
        if (loc == IOL_IOS_GOT_EXC) {
            rc = -1;
        }
        else if (loc >= 0) {
            Py_ssize_t end = loc + PyObject_Size(delim);
            rc = check_max(s, delim, end) < 0 ? -1 : 1;
            *pos = end;
        }
        else {
            rc = check_max(s, delim, size);
        }
        Py_DECREF(delim);
        return rc;
    }
    if (!is_none(s->read_regex)) {
        int header = is_header_regex(s, s->read_regex);
        if (header < 0) {
            return -1;
        }
        if (header) {
            if (size == 0) {
                return 0;
            }
            PyObject *regex = Py_NewRef(s->read_regex);
            Py_ssize_t end = iol_ios_find_blank_line(s);
            int rc = check_max(s, regex, end >= 0 ? end : size);
            Py_DECREF(regex);
            *pos = end;
            return rc < 0 ? -1 : end >= 0;
        }
        PyObject *res = PyObject_CallMethodNoArgs(
            (PyObject *)s, iol_ios_name(s, IOL_IOS_S_FIND_REGEX));
        if (res == NULL) {
            return -1;
        }
        int rc = 0;
        if (res != Py_None) {
            rc = as_ssize(res, pos) < 0 ? -1 : 1;
        }
        Py_DECREF(res);
        return rc;
    }
    return 0;
}

/* _read_to_buffer: the count read, 0 if nothing came (or the stream
 * closed), -1 for an exception.  `more` is what a read_bytes() still
 * needs: a recv() asks for that much at once (up to max_buffer_size)
 * rather than read_chunk_size, which never reads past the target, so
 * Tornado's checks see what they would see, in fewer calls. */
static Py_ssize_t
read_to_buffer(IOStreamCoreObject *s, Py_ssize_t more)
{
    if (!s->native_recv) {
        /* read_from_fd() was replaced: the Python path calls it. */
        PyObject *res = PyObject_CallMethodNoArgs(
            (PyObject *)s, iol_ios_name(s, IOL_IOS_S_READ_TO_BUFFER));
        if (res == NULL) {
            return -1;
        }
        Py_ssize_t n = 0;
        if (res != Py_None && as_ssize(res, &n) < 0) {
            n = -1;
        }
        Py_DECREF(res);
        return n;
    }
    Py_ssize_t chunk, max;
    if (as_ssize(s->read_chunk_size, &chunk) < 0 ||
        as_ssize(s->max_buffer_size, &max) < 0) {
        return -1;
    }
    if (more > chunk) {
        /* The block is reserved for all of it at once (its pages are
         * touched only as data arrives), so a large message lands in
         * one block of its own size, which becomes the result. */
        /* Never past max_buffer_size by more than one read_chunk_size:
         * the bound Tornado's reads keep. */
        Py_ssize_t cap = max - size_of(s);
        cap = cap > 0 ? cap + chunk : chunk;
        chunk = more < cap ? more : cap;
    }
    ssize_t n = iol_ios_recv(s, chunk > 0 ? chunk : 1);
    if (n == IOL_IOS_GOT_EXC) {
        return -1;
    }
    if (n < 0) {
        if (iol_sock_would_block(errno)) {
            return 0;
        }
        PyErr_SetFromErrno(PyExc_OSError);
        return iol_ios_hand_exception(s, IOL_IOS_S_RECV_FAILED);
    }
    if (n == 0) {
        return call_self(s, IOL_IOS_S_CLOSE, NULL);
    }
    if (size_of(s) > max) {
        if (call_self(s, IOL_IOS_S_BUFFER_FULL, NULL) == 0) {
            PyErr_SetString(PyExc_RuntimeError, "_c_buffer_full returned");
        }
        return -1;
    }
    return n;
}

static int
read_to_buffer_loop(IOStreamCoreObject *s, Py_ssize_t *pos)
{
    int has_target = 1, exact = 0;
    Py_ssize_t target = 0;
    if (!is_none(s->read_bytes)) {
        if (as_ssize(s->read_bytes, &target) < 0) {
            return -1;
        }
        exact = !s->user;
    }
    else if (!is_none(s->read_max_bytes)) {
        if (as_ssize(s->read_max_bytes, &target) < 0) {
            return -1;
        }
    }
    else if (!is_none(s->read_future)) {
        has_target = 0;
    }
    Py_ssize_t next_find = 0;
    while (!iol_ios_is_closed(s)) {
        Py_ssize_t n = read_to_buffer(s, exact ? target - size_of(s) : 0);
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        Py_ssize_t size = size_of(s);
        if (has_target && size >= target) {
            break;
        }
        if (size >= next_find) {
            int f = find_read_pos(s, pos);
            if (f != 0) {
                return f;
            }
            next_find = size * 2;
        }
    }
    return find_read_pos(s, pos);
}

static int
finish_read(IOStreamCoreObject *s, Py_ssize_t size)
{
    PyObject *result;
    if (s->user) {
        iol_ios_user_end(s);
        result = PyLong_FromSsize_t(size);
    }
    else {
        result = iol_ios_take(s, size);
    }
    if (result == NULL) {
        return -1;
    }
    int rc = 0;
    if (!is_none(s->read_future)) {
        PyObject *future = s->read_future;
        s->read_future = Py_NewRef(Py_None);
        rc = iol_ios_set_result(s, future, result);
        Py_DECREF(future);
    }
    Py_DECREF(result);
    if (rc == 0) {
        rc = iol_ios_maybe_add_error_listener(s);
    }
    return rc;
}

static int
read_from_buffer(IOStreamCoreObject *s, Py_ssize_t pos)
{
    set_field(&s->read_bytes, Py_None);
    set_field(&s->read_delimiter, Py_None);
    set_field(&s->read_regex, Py_None);
    set_field(&s->read_partial, Py_False);
    return finish_read(s, pos);
}

/* _handle_read: errors other than an unsatisfiable read close the stream
 * with a warning, in _c_read_failed (which re-raises the others). */
static int
handle_read(IOStreamCoreObject *s)
{
    Py_ssize_t pos = 0;
    int f = read_to_buffer_loop(s, &pos);
    if (f < 0) {
        return iol_ios_hand_exception(s, IOL_IOS_S_READ_FAILED);
    }
    return f ? read_from_buffer(s, pos) : 0;
}

PyObject *
iol_ios_done(int rc)
{
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _handle_events(fd, events) */
static PyObject *
IOS_handle_events(IOStreamCoreObject *s, PyObject *const *args,
                  Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_handle_events(fd, events)");
        return NULL;
    }
    iol_modstate *st = s->st;
    if ((PyObject *)Py_TYPE(s) != st->ios_class || iol_ios_is_closed(s) ||
        s->connecting == NULL || PyObject_IsTrue(s->connecting) != 0) {
        PyObject *argv[] = {(PyObject *)s, args[0], args[1]};
        return PyObject_Vectorcall(st->ios_handle_events, argv, 3, NULL);
    }
    long events = PyLong_AsLong(args[1]);
    if (events == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int rc = 0;
    if ((events & T_READ) && (rc = handle_read(s)) < 0) {
        goto failed;
    }
    if (iol_ios_is_closed(s)) {
        Py_RETURN_NONE;
    }
    if ((events & T_WRITE) && (rc = iol_ios_handle_write(s)) < 0) {
        goto failed;
    }
    if (iol_ios_is_closed(s)) {
        Py_RETURN_NONE;
    }
    if (events & T_ERROR) {
        if (call_self(s, IOL_IOS_S_ERROR_EVENT, NULL) < 0) {
            goto failed;
        }
        Py_RETURN_NONE;
    }
    long state = T_ERROR;
    if (!is_none(s->read_future)) {
        state |= T_READ;
    }
    if (s->wsize > 0) {
        state |= T_WRITE;
    }
    if (state == T_ERROR && size_of(s) == 0) {
        state |= T_READ;
    }
    if (is_none(s->state)) {
        PyErr_SetString(PyExc_AssertionError, "shouldn't happen: "
                        "_handle_events without self._state");
        goto failed;
    }
    long cur = PyLong_AsLong(s->state);
    if ((cur == -1 && PyErr_Occurred()) ||
        (state != cur && update_handler(s, state) < 0)) {
        goto failed;
    }
    Py_RETURN_NONE;
failed:
    return iol_ios_done(iol_ios_hand_exception(s, IOL_IOS_S_EVENT_FAILED));
}

static PyObject *
IOS_handle_read(IOStreamCoreObject *s, PyObject *Py_UNUSED(ignored))
{
    return iol_ios_done(handle_read(s));
}

static PyObject *
IOS_read_to_buffer_loop(IOStreamCoreObject *s, PyObject *Py_UNUSED(ign))
{
    Py_ssize_t pos = 0;
    int f = read_to_buffer_loop(s, &pos);
    if (f < 0) {
        return NULL;
    }
    return f ? PyLong_FromSsize_t(pos) : Py_NewRef(Py_None);
}

static PyObject *
IOS_find_read_pos(IOStreamCoreObject *s, PyObject *Py_UNUSED(ignored))
{
    Py_ssize_t pos = 0;
    int f = find_read_pos(s, &pos);
    if (f < 0) {
        return NULL;
    }
    return f ? PyLong_FromSsize_t(pos) : Py_NewRef(Py_None);
}

static PyObject *
IOS_read_from_buffer(IOStreamCoreObject *s, PyObject *arg)
{
    Py_ssize_t pos;
    if (as_ssize(arg, &pos) < 0) {
        return NULL;
    }
    return iol_ios_done(read_from_buffer(s, pos));
}

static PyObject *
IOS_finish_read(IOStreamCoreObject *s, PyObject *arg)
{
    Py_ssize_t size;
    if (as_ssize(arg, &size) < 0) {
        return NULL;
    }
    return iol_ios_done(finish_read(s, size));
}

static PyObject *
IOS_maybe_add_error_listener(IOStreamCoreObject *s,
                             PyObject *Py_UNUSED(ignored))
{
    return iol_ios_done(iol_ios_maybe_add_error_listener(s));
}

static PyObject *
IOS_add_io_state(IOStreamCoreObject *s, PyObject *arg)
{
    long state = PyLong_AsLong(arg);
    if (state == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return iol_ios_done(iol_ios_add_io_state(s, state));
}

PyMethodDef iol_ios_event_methods[] = {
    {"_c_handle_events", (PyCFunction)(void (*)(void))IOS_handle_events,
     METH_FASTCALL, NULL},
    {"_c_handle_read", (PyCFunction)IOS_handle_read, METH_NOARGS, NULL},
    {"_c_read_to_buffer_loop", (PyCFunction)IOS_read_to_buffer_loop,
     METH_NOARGS, NULL},
    {"_c_find_read_pos", (PyCFunction)IOS_find_read_pos, METH_NOARGS, NULL},
    {"_c_read_from_buffer", (PyCFunction)IOS_read_from_buffer, METH_O,
     NULL},
    {"_c_finish_read", (PyCFunction)IOS_finish_read, METH_O, NULL},
    {"_c_maybe_add_error_listener",
     (PyCFunction)IOS_maybe_add_error_listener, METH_NOARGS, NULL},
    {"_c_add_io_state", (PyCFunction)IOS_add_io_state, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

/* _iostream_configure(cls, handle_events, add_io_state, future, retrieve,
 *                     socket_type, family, set_nodelay):
 * the class whose streams take the C event path; Tornado's own
 * _handle_events and _add_io_state for the others and for the first
 * registration; the Future class of write() and the done callback that
 * marks a write future's exception retrieved; socket.socket, _socket's
 * own `family` member and Tornado's IOStream.set_nodelay, for
 * set_nodelay() (iostream.c). */
PyObject *
iol_ios_configure(PyObject *mod, PyObject *args)
{
    iol_modstate *st = PyModule_GetState(mod);
    PyObject *cls, *handle_events, *add_state, *future, *retrieve;
    PyObject *sock_type, *family, *set_nodelay;
    if (!PyArg_ParseTuple(args, "O!OOOOO!OO:_iostream_configure",
                          &PyType_Type, &cls, &handle_events, &add_state,
                          &future, &retrieve, &PyType_Type, &sock_type,
                          &family, &set_nodelay)) {
        return NULL;
    }
    if (Py_TYPE(family)->tp_descr_get == NULL) {
        PyErr_SetString(PyExc_TypeError, "family must be a descriptor");
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)cls, st->IOStreamCoreType)) {
        PyErr_SetString(PyExc_TypeError, "not an IOStreamCore subclass");
        return NULL;
    }
    if (!PyCallable_Check(handle_events) || !PyCallable_Check(add_state) ||
        !PyCallable_Check(future) || !PyCallable_Check(retrieve) ||
        !PyCallable_Check(set_nodelay)) {
        PyErr_SetString(PyExc_TypeError, "callables required");
        return NULL;
    }
    Py_XSETREF(st->ios_class, Py_NewRef(cls));
    Py_XSETREF(st->ios_handle_events, Py_NewRef(handle_events));
    Py_XSETREF(st->ios_add_io_state, Py_NewRef(add_state));
    Py_XSETREF(st->ios_future, Py_NewRef(future));
    Py_XSETREF(st->ios_retrieve, Py_NewRef(retrieve));
    Py_XSETREF(st->ios_socket_type, Py_NewRef(sock_type));
    Py_XSETREF(st->ios_family, Py_NewRef(family));
    Py_XSETREF(st->ios_set_nodelay, Py_NewRef(set_nodelay));
    Py_RETURN_NONE;
}

int
iol_ios_event_init(PyObject *Py_UNUSED(mod), iol_modstate *st)
{
    for (int i = 0; i < IOL_IOS_NSTR; i++) {
        st->ios_str[i] = PyUnicode_InternFromString(str_text[i]);
        if (st->ios_str[i] == NULL) {
            return -1;
        }
    }
    return 0;
}
