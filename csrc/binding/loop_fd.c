/*
 * loop_fd.c: watching file descriptors.
 *
 * Two registries share one fd table: Tornado's add_handler (one handler
 * per fd, called with the registered object and the event mask) and
 * asyncio's add_reader / add_writer (a callback per direction).  The
 * kernel is asked for the union.  Registration is all or nothing: the
 * backend is changed first, and the table only once that succeeded.
 *
 * An event becomes a ready item that points at the registration's handle.
 * Removing a registration cancels its handle, so an event already queued
 * for it in this tick is skipped, and a new registration on the same fd
 * number (a closed fd reused) gets a new handle that the stale item does
 * not point at.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define IOL_RW (IOL_READ | IOL_WRITE)

static iol_fdslot *
slot_get(LoopObject *self, int fd)
{
    if (fd < 0 || fd >= self->nfds) {
        return NULL;
    }
    return &self->fds[fd];
}

static iol_fdslot *
slot_ensure(LoopObject *self, int fd)
{
    if (fd >= self->nfds) {
        int n = self->nfds ? self->nfds : 64;
        while (n <= fd) {
            n *= 2;
        }
        iol_fdslot *fds = PyMem_Realloc(self->fds, n * sizeof(*fds));
        if (fds == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        memset(fds + self->nfds, 0, (n - self->nfds) * sizeof(*fds));
        self->fds = fds;
        self->nfds = n;
    }
    return &self->fds[fd];
}

static int
slot_kmask(const iol_fdslot *s)
{
    int m = 0;
    if (s->handler != NULL) {
        m |= s->tmask & IOL_RW;
    }
    if (s->reader != NULL) {
        m |= IOL_READ;
    }
    if (s->writer != NULL) {
        m |= IOL_WRITE;
    }
    return m | s->smask;
}

static int
slot_used(const iol_fdslot *s)
{
    return s->handler != NULL || s->reader != NULL || s->writer != NULL ||
           s->stream != NULL;
}

/* Tell the backend about a change of interest.  A registration with no
 * READ or WRITE (Tornado's ERROR only) has nothing to ask the kernel, but
 * the fd is still checked, so a bad one fails here and not later.
 * `rearm` asks the kernel again even when nothing changed: when a callback
 * is replaced, the fd may have been closed and its number reused since it
 * was registered, and epoll and kqueue forget an fd when it is closed. */
static int
apply_kmask(LoopObject *self, int fd, int oldk, int newk, int rearm)
{
    if (oldk == newk && !(rearm && newk != 0)) {
        if (newk == 0 && fcntl(fd, F_GETFD) == -1) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        return 0;
    }
    if (self->backend->set(self->bstate, fd, oldk, newk) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return 0;
}

/* Let go of a registration's handle once it is out of the table: cancel
 * it, so an event already queued for it is skipped, and drop the table's
 * reference.  This can run arbitrary code (finalizers), so callers finish
 * with the table first: a slot pointer may be stale afterwards. */
static void
release_handle(HandleObject *h)
{
    if (h != NULL) {
        iol_handle_cancel(h);
        Py_DECREF(h);
    }
}

static HandleObject *
take(HandleObject **where)
{
    HandleObject *h = *where;
    *where = NULL;
    return h;
}

static int
fd_of(PyObject *obj)
{
    return PyObject_AsFileDescriptor(obj);
}

/* A Tornado event mask: READ | WRITE | ERROR bits only.  A non-integer
 * is a TypeError; any other integer, however large, a ValueError. */
static int
read_mask(PyObject *obj, int *out)
{
    int events = iol_long_as_int(obj);
    if (events == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "invalid event mask %R", obj);
        return -1;
    }
    if (events & ~(IOL_RW | IOL_ERROR)) {
        PyErr_Format(PyExc_ValueError, "invalid event mask 0x%x", events);
        return -1;
    }
    *out = events;
    return 0;
}

/* Tornado: add_handler(fd_or_fileobj, handler, events). */
PyObject *
Loop_add_handler(LoopObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "add_handler() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *fileobj = args[0], *handler = args[1];
    if (iol_loop_check_open(self) < 0) {
        return NULL;
    }
    int fd = fd_of(fileobj);
    if (fd < 0) {
        return NULL;
    }
    /* A coroutine function would be called and its coroutine dropped,
     * never run: refuse it rather than lose the handler's work. */
    if (iol_is_coroutine_like(handler)) {
        PyErr_SetString(PyExc_TypeError,
                        "coroutines cannot be used as fd handlers");
        return NULL;
    }
    if (!PyCallable_Check(handler)) {
        PyErr_Format(PyExc_TypeError, "handler must be callable, got %R",
                     handler);
        return NULL;
    }
    int events;
    if (read_mask(args[2], &events) < 0) {
        return NULL;
    }
    iol_fdslot *s = slot_get(self, fd);
    if (s != NULL && s->handler != NULL) {
        PyErr_Format(PyExc_ValueError, "fd %d added twice", fd);
        return NULL;
    }
    if (s != NULL && slot_used(s)) {
        PyErr_Format(PyExc_ValueError,
                     "fd %d is already watched by add_reader()/add_writer()",
                     fd);
        return NULL;
    }
    PyObject *ctx = PyContext_CopyCurrent();
    iol_modstate *st = self->st;
    HandleObject *h = NULL;
    if (ctx != NULL) {
        h = iol_handle_new(st->HandleType, self, IOL_KIND_FD, handler,
                           &fileobj, 1, NULL, ctx);
    }
    Py_XDECREF(ctx);
    if (h == NULL) {
        return NULL;
    }
    /* Only now touch the table: the allocations above may have run
     * arbitrary code through the garbage collector. */
    s = slot_ensure(self, fd);
    if (s == NULL || slot_used(s)) {
        if (s != NULL) {
            PyErr_Format(PyExc_ValueError, "fd %d added twice", fd);
        }
        Py_DECREF(h);
        return NULL;
    }
    if (apply_kmask(self, fd, 0, events & IOL_RW, 0) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    s->handler = h;
    s->tmask = events;
    self->nwatched++;
    Py_RETURN_NONE;
}

PyObject *
Loop_update_handler(LoopObject *self, PyObject *const *args,
                    Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "update_handler() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (iol_loop_check_open(self) < 0) {
        return NULL;
    }
    int fd = fd_of(args[0]);
    if (fd < 0) {
        return NULL;
    }
    int events;
    if (read_mask(args[1], &events) < 0) {
        return NULL;
    }
    iol_fdslot *s = slot_get(self, fd);
    if (s == NULL || s->handler == NULL) {
        PyErr_Format(PyExc_ValueError, "fd %d is not registered", fd);
        return NULL;
    }
    int oldk = slot_kmask(s);
    int oldt = s->tmask;
    s->tmask = events;
    if (apply_kmask(self, fd, oldk, slot_kmask(s), 0) < 0) {
        s->tmask = oldt;
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Find the slot a Tornado handler was registered under with `obj`: used
 * when obj.fileno() no longer answers (a socket closed before removal). */
static int
fd_of_registered(LoopObject *self, PyObject *obj)
{
    for (int fd = 0; fd < self->nfds; fd++) {
        HandleObject *h = self->fds[fd].handler;
        if (h != NULL && h->arg == obj) {
            return fd;
        }
    }
    return -1;
}

static void
slot_update_kernel(LoopObject *self, int fd, int oldk)
{
    iol_fdslot *s = &self->fds[fd];
    int newk = slot_kmask(s);
    /* The fd may be closed already; the kernel then forgot it itself, so
     * an error here is not the caller's concern. */
    if (oldk != newk && self->pid == getpid()) {
        (void)self->backend->set(self->bstate, fd, oldk, newk);
    }
    if (!slot_used(s)) {
        self->nwatched--;
    }
}

PyObject *
Loop_remove_handler(LoopObject *self, PyObject *obj)
{
    if (!self->initialized || self->closed) {
        Py_RETURN_NONE;
    }
    int fd;
    if (PyLong_Check(obj)) {
        fd = iol_long_as_int(obj);
        if (fd == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else {
        fd = PyObject_AsFileDescriptor(obj);
        if (fd < 0) {
            PyErr_Clear();
        }
        iol_fdslot *s = slot_get(self, fd);
        if (s == NULL || s->handler == NULL ||
            s->handler->arg != obj) {
            fd = fd_of_registered(self, obj);
        }
    }
    iol_fdslot *s = slot_get(self, fd);
    if (s == NULL || s->handler == NULL) {
        Py_RETURN_NONE;
    }
    int oldk = slot_kmask(s);
    HandleObject *old = take(&s->handler);
    s->tmask = 0;
    slot_update_kernel(self, fd, oldk);
    release_handle(old);
    Py_RETURN_NONE;
}

/* The `context=` keyword of _add_reader / _add_writer (3.15's selector
 * transports pass their own): a contextvars.Context, or None for a copy
 * of the caller's.  Any other keyword is a TypeError, as a Python method
 * with that signature would raise.  Returns a new reference. */
static PyObject *
rw_context(const char *name, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames)
{
    PyObject *ctx = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *val = args[nargs + i];
        if (PyUnicode_CompareWithASCIIString(key, "context") != 0) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument %R", name,
                         key);
            return NULL;
        }
        if (val != Py_None && !PyContext_CheckExact(val)) {
            PyErr_Format(PyExc_TypeError,
                         "context must be a contextvars.Context, got %R",
                         val);
            return NULL;
        }
        ctx = val;
    }
    if (ctx == NULL || ctx == Py_None) {
        return PyContext_CopyCurrent();
    }
    return Py_NewRef(ctx);
}

/* asyncio: _add_reader(fd, callback, *args, context=None) / _add_writer;
 * a callback already there is replaced.  The callback runs in `context`
 * when one is given, else in a copy of the caller's. */
static PyObject *
add_rw(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
       PyObject *kwnames, int write)
{
    const char *name = write ? "_add_writer" : "_add_reader";
    if (nargs < 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes at least 2 positional "
                     "arguments (%zd given)", name, nargs);
        return NULL;
    }
    if (iol_loop_check_open(self) < 0) {
        return NULL;
    }
    int fd = fd_of(args[0]);
    if (fd < 0) {
        /* asyncio's selectors say ValueError for what is not a file. */
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "Invalid file object: %R",
                         args[0]);
        }
        return NULL;
    }
    PyObject *cb = args[1];
    if (iol_is_coroutine_like(cb)) {
        PyErr_Format(PyExc_TypeError, "coroutines cannot be used with %s()",
                     name + 1);
        return NULL;
    }
    if (!PyCallable_Check(cb)) {
        PyErr_Format(PyExc_TypeError,
                     "a callable object was expected by %s(), got %R",
                     name + 1, cb);
        return NULL;
    }
    PyObject *ctx = rw_context(name, args, nargs, kwnames);
    iol_modstate *st = self->st;
    HandleObject *h = NULL;
    if (ctx != NULL) {
        h = iol_handle_new(st->HandleType, self, IOL_KIND_ASYNCIO, cb,
                           args + 2, nargs - 2, NULL, ctx);
    }
    Py_XDECREF(ctx);
    if (h == NULL) {
        return NULL;
    }
    iol_fdslot *s = slot_ensure(self, fd);
    if (s == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    if (s->handler != NULL) {
        PyErr_Format(PyExc_ValueError,
                     "fd %d is already watched by add_handler()", fd);
        Py_DECREF(h);
        return NULL;
    }
    int was_used = slot_used(s);
    int oldk = slot_kmask(s);
    int newk = oldk | (write ? IOL_WRITE : IOL_READ);
    HandleObject **where = write ? &s->writer : &s->reader;
    if (apply_kmask(self, fd, oldk, newk, *where != NULL) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    HandleObject *old = *where;
    *where = h;
    if (!was_used) {
        self->nwatched++;
    }
    release_handle(old);
    return Py_NewRef((PyObject *)h);
}

static PyObject *
remove_rw(LoopObject *self, PyObject *obj, int write)
{
    if (!self->initialized || self->closed) {
        Py_RETURN_FALSE;
    }
    int fd = fd_of(obj);
    if (fd < 0) {
        /* Not a file descriptor: it cannot be registered, as asyncio's
         * selector answers for an unknown object. */
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    iol_fdslot *s = slot_get(self, fd);
    HandleObject **where = NULL;
    if (s != NULL) {
        where = write ? &s->writer : &s->reader;
    }
    if (where == NULL || *where == NULL) {
        Py_RETURN_FALSE;
    }
    int oldk = slot_kmask(s);
    HandleObject *old = take(where);
    slot_update_kernel(self, fd, oldk);
    release_handle(old);
    Py_RETURN_TRUE;
}

PyObject *
Loop_add_reader(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    return add_rw(self, args, nargs, kwnames, 0);
}

PyObject *
Loop_add_writer(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    return add_rw(self, args, nargs, kwnames, 1);
}

PyObject *
Loop_remove_reader(LoopObject *self, PyObject *obj)
{
    return remove_rw(self, obj, 0);
}

PyObject *
Loop_remove_writer(LoopObject *self, PyObject *obj)
{
    return remove_rw(self, obj, 1);
}

/* _fd_info(fd) -> None, or (events, reader, writer) with selectors'
 * EVENT_READ = 1 and EVENT_WRITE = 2, for the selector view asyncio's
 * code and tests look at. */
PyObject *
Loop_fd_info(LoopObject *self, PyObject *obj)
{
    int fd = fd_of(obj);
    if (fd < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    iol_fdslot *s = slot_get(self, fd);
    if (s == NULL || (s->reader == NULL && s->writer == NULL)) {
        Py_RETURN_NONE;
    }
    int events = (s->reader ? 1 : 0) | (s->writer ? 2 : 0);
    return Py_BuildValue("(iOO)", events,
                         s->reader ? (PyObject *)s->reader : Py_None,
                         s->writer ? (PyObject *)s->writer : Py_None);
}

/* _watched_fds() -> list of fds with a reader or writer. */
PyObject *
Loop_watched_fds(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(0);
    for (int fd = 0; list != NULL && fd < self->nfds; fd++) {
        if (self->fds[fd].reader == NULL && self->fds[fd].writer == NULL) {
            continue;
        }
        PyObject *n = PyLong_FromLong(fd);
        if (n == NULL || PyList_Append(list, n) < 0) {
            Py_XDECREF(n);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(n);
    }
    return list;
}

/*
 * A native owner's interest in its fd (a stream or datagram transport,
 * a listener): `want` is READ | WRITE or 0, and `on_event` the owner's
 * entry point, which the tick calls with the fd's events.  Each owner
 * hands its own, so the tick needs no type checks to find it; the slot
 * and the ready queue are the loop thread's, and a function pointer is
 * never written anywhere else (nothing here for a free-threaded build
 * to lock).
 * The slot holds a reference to the transport while it wants anything,
 * as a registered handle holds its callback, and none once it wants
 * nothing (a paused, idle transport is not kept alive by the loop).  An
 * asyncio reader or writer may share the fd (asyncio's sendfile adds a
 * writer while the transport waits); a Tornado handler may not.
 * Dropping interest never fails: on a closed loop, or a slot that went
 * to another owner, there is nothing left to drop.
 */
int
iol_fd_stream_set(LoopObject *self, int fd, PyObject *owner,
                  iol_stream_fn on_event, int want)
{
    if (!self->initialized || self->closed) {
        if (want == 0) {
            return 0;
        }
        return iol_loop_check_open(self);
    }
    iol_fdslot *s = want ? slot_ensure(self, fd) : slot_get(self, fd);
    if (s == NULL) {
        return want ? -1 : 0;
    }
    if (s->stream != NULL && s->stream != owner) {
        if (want == 0) {
            return 0;
        }
        PyErr_Format(PyExc_RuntimeError,
                     "fd %d is already used by another transport", fd);
        return -1;
    }
    if (want && s->handler != NULL) {
        PyErr_Format(PyExc_ValueError,
                     "fd %d is already watched by add_handler()", fd);
        return -1;
    }
    int was_used = slot_used(s);
    int oldk = slot_kmask(s);
    int olds = s->smask;
    s->smask = want;
    int newk = slot_kmask(s);
    if (want == 0) {
        PyObject *old = s->stream;
        s->stream = NULL;
        s->on_event = NULL;
        slot_update_kernel(self, fd, oldk);
        Py_XDECREF(old);
        return 0;
    }
    /* First interest: ask the kernel even if a reader already made it
     * watch this fd, since the fd may be new under an old number. */
    if (apply_kmask(self, fd, oldk, newk, olds == 0) < 0) {
        s->smask = olds;
        return -1;
    }
    if (s->stream == NULL) {
        s->stream = Py_NewRef(owner);
        s->on_event = on_event;
        if (!was_used) {
            self->nwatched++;
        }
    }
    return 0;
}

/* Turn one kernel event into ready items.  The mask is cut down to what
 * is still wanted (ERROR always goes through), as libuv does. */
int
iol_fd_dispatch(LoopObject *self, const iol_event *ev)
{
    iol_fdslot *s = slot_get(self, ev->fd);
    if (s == NULL || !slot_used(s)) {
        return 0;
    }
    self->stats.fd_events++;
    int mask = ev->mask;
    if (s->handler != NULL) {
        int m = mask & (s->tmask | IOL_ERROR);
        if (m && iol_ready_push(&self->ready, s->handler, m) < 0) {
            return -1;
        }
    }
    /* As in selectors: an error or hang-up wakes both directions. */
    if (s->reader != NULL && (mask & (IOL_READ | IOL_ERROR)) &&
        iol_ready_push(&self->ready, s->reader, IOL_READ) < 0) {
        return -1;
    }
    if (s->writer != NULL && (mask & (IOL_WRITE | IOL_ERROR)) &&
        iol_ready_push(&self->ready, s->writer, IOL_WRITE) < 0) {
        return -1;
    }
    /* The transport looks at its own state when the item runs, so an
     * event that went stale meanwhile (paused, closed) does nothing. */
    if (s->stream != NULL && (mask & (s->smask | IOL_ERROR)) &&
        iol_ready_push_owner(&self->ready, s->stream, s->on_event,
                             mask) < 0) {
        return -1;
    }
    return 0;
}

static void
close_fileobj(PyObject *obj)
{
    if (PyLong_Check(obj)) {
        int fd = iol_long_as_int(obj);
        if (fd >= 0) {
            close(fd);
        }
        PyErr_Clear();
        return;
    }
    PyObject *res = PyObject_CallMethod(obj, "close", NULL);
    if (res == NULL) {
        /* Tornado ignores errors from closing here too. */
        PyErr_Clear();
    }
    Py_XDECREF(res);
}

/* Drop every registration without telling the kernel: this runs on
 * close() or collection, when the backend is about to go, and after a
 * fork the kernel set is shared with the parent and must not change. */
void
iol_fd_clear_all(LoopObject *self, int close_fds)
{
    for (int fd = 0; fd < self->nfds; fd++) {
        /* Re-read the slot each time: closing or releasing can run code
         * that registers fds and moves the table. */
        HandleObject *h = take(&self->fds[fd].handler);
        HandleObject *r = take(&self->fds[fd].reader);
        HandleObject *w = take(&self->fds[fd].writer);
        PyObject *tr = self->fds[fd].stream;
        self->fds[fd].stream = NULL;
        self->fds[fd].on_event = NULL;
        self->fds[fd].smask = 0;
        self->fds[fd].tmask = 0;
        if (h != NULL && close_fds && h->arg != NULL) {
            PyObject *obj = Py_NewRef(h->arg);
            close_fileobj(obj);
            Py_DECREF(obj);
        }
        release_handle(h);
        release_handle(r);
        release_handle(w);
        Py_XDECREF(tr);
    }
    self->nwatched = 0;
}

int
iol_fd_traverse(LoopObject *self, visitproc visit, void *arg)
{
    for (int fd = 0; fd < self->nfds; fd++) {
        Py_VISIT(self->fds[fd].handler);
        Py_VISIT(self->fds[fd].reader);
        Py_VISIT(self->fds[fd].writer);
        Py_VISIT(self->fds[fd].stream);
    }
    return 0;
}
