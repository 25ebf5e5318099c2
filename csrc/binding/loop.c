/*
 * loop.c: the Loop type: its life cycle, running and stopping, and its
 * method table.  The tick itself is in loop_tick.c, scheduling methods
 * in loop_sched.c, fd methods in loop_fd.c, statistics in loop_stats.c.
 */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>
#include <structmember.h>

int
iol_loop_check_open(LoopObject *self)
{
    if (!self->initialized) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the loop's __init__ was not called");
        return -1;
    }
    if (self->closed) {
        PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle */

static void
loop_release_engine(LoopObject *self)
{
    if (self->bstate != NULL) {
        self->backend->destroy(self->bstate);
        self->bstate = NULL;
    }
    iol_waker_close(&self->waker);
}

static int
Loop_init(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"backend", "wall_clock", NULL};
    const char *name = NULL;
    int wall_clock = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|z$p:Loop", kwlist, &name,
                                     &wall_clock)) {
        return -1;
    }
    if (self->initialized) {
        PyErr_SetString(PyExc_RuntimeError, "loop already initialized");
        return -1;
    }
    /* Until initialization succeeds the loop counts as closed, so that a
     * failed __init__ leaves an object that asyncio's __del__ ignores. */
    self->closed = 1;
    if (name == NULL) {
        name = getenv("IOLOOP_C_BACKEND");
        if (name != NULL && name[0] == '\0') {
            name = NULL;
        }
    }
    const iol_backend *be = name ? iol_backend_find(name) : iol_backends[0];
    if (be == NULL) {
        PyErr_Format(PyExc_ValueError, "unknown or unavailable backend '%s'",
                     name);
        return -1;
    }
    self->backend = be;
    self->bstate = be->create();
    if (self->bstate == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (iol_waker_open(&self->waker) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    if (be->set(self->bstate, self->waker.rfd, 0, IOL_READ) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    self->maxevents = 64;
    self->events = PyMem_Malloc(self->maxevents * sizeof(iol_event));
    if (self->events == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    self->wall_clock = wall_clock;
    self->wall_offset = iol_clock_wall_ns() - iol_clock_mono_ns();
    self->now = iol_clock_mono_ns();
    self->pid = getpid();
    self->initialized = 1;
    self->closed = 0;
    return 0;
fail:
    loop_release_engine(self);
    return -1;
}

static PyObject *
Loop_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
         PyObject *Py_UNUSED(kwds))
{
    iol_modstate *st = iol_state_of_type(type);
    if (st == NULL) {
        return NULL;
    }
    LoopObject *self = (LoopObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->st = st;
    self->waker.rfd = -1;
    self->waker.wfd = -1;
    self->slow_ticks = -1;
    self->timing = 1;
    self->closed = 1; /* until __init__ succeeds */
    iol_heap_init(&self->timers);
    return (PyObject *)self;
}

static int
Loop_traverse(LoopObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    int rc = iol_loop_traverse_work(self, visit, arg);
    if (rc != 0) {
        return rc;
    }
    Py_VISIT(self->slowest_repr);
    Py_VISIT(self->debug);
    Py_VISIT(self->futures);
    Py_VISIT(self->kw_loop);
    Py_VISIT(self->str_future);
    Py_VISIT(self->c_future);
    Py_VISIT(self->kw_dict);
    Py_VISIT(self->tasks);
    Py_VISIT(self->base_create_task);
    return iol_fd_traverse(self, visit, arg);
}

static int
Loop_clear(LoopObject *self)
{
    iol_loop_drop_work(self);
    iol_fd_clear_all(self, 0);
    Py_CLEAR(self->slowest_repr);
    Py_CLEAR(self->debug);
    Py_CLEAR(self->futures);
    Py_CLEAR(self->kw_loop);
    Py_CLEAR(self->str_future);
    Py_CLEAR(self->c_future);
    Py_CLEAR(self->kw_dict);
    Py_CLEAR(self->tasks);
    Py_CLEAR(self->base_create_task);
    return 0;
}

static void
Loop_dealloc(LoopObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    Loop_clear(self);
    loop_release_engine(self);
    PyMem_Free(self->ready.items);
    PyMem_Free(self->fds);
    PyMem_Free(self->events);
    PyMem_Free(self->read_buf);
    iol_heap_free(&self->timers);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}


static int
loop_check_startable(LoopObject *self)
{
    if (iol_loop_check_open(self) < 0) {
        return -1;
    }
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "This event loop is already running");
        return -1;
    }
    if (self->pid != getpid()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this loop was created in another process (before "
                        "fork()); create a new loop in the child");
        return -1;
    }
    return 0;
}

static PyObject *
Loop_run(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (loop_check_startable(self) < 0) {
        return NULL;
    }
    self->running = 1;
    self->thread_id = PyThread_get_thread_ident();
    self->now = iol_clock_mono_ns();
    int rc = 0;
    /* stop() called before start() or by a callback ends the loop after
     * the tick in progress; before start(), that tick waits for nothing. */
    do {
        rc = iol_loop_tick(self);
    } while (rc == 0 && !self->stopping && !self->closed);
    self->running = 0;
    self->stopping = 0;
    self->thread_id = 0;
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Loop_run_once(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (loop_check_startable(self) < 0) {
        return NULL;
    }
    self->running = 1;
    self->thread_id = PyThread_get_thread_ident();
    self->now = iol_clock_mono_ns();
    int rc = iol_loop_tick(self);
    self->running = 0;
    self->thread_id = 0;
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static void
loop_wake(LoopObject *self)
{
    if (self->polling && !self->wake_pending) {
        self->wake_pending = 1;
        iol_waker_signal(&self->waker);
    }
}

static PyObject *
Loop_wakeup(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->initialized && !self->closed) {
        loop_wake(self);
    }
    Py_RETURN_NONE;
}

static PyObject *
Loop_stop(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    self->stopping = 1;
    if (self->initialized && !self->closed) {
        loop_wake(self);
    }
    Py_RETURN_NONE;
}

static PyObject *
Loop_close_core(LoopObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"all_fds", NULL};
    int all_fds = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p:_close", kwlist,
                                     &all_fds)) {
        return NULL;
    }
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot close a running event loop");
        return NULL;
    }
    if (self->closed || !self->initialized) {
        self->closed = 1;
        Py_RETURN_NONE;
    }
    self->closed = 1;
    /* {"loop": self} would keep a closed loop in a cycle until the next
     * collection; create_future() then goes the long way. */
    Py_CLEAR(self->kw_dict);
    iol_fd_clear_all(self, all_fds);
    iol_loop_drop_work(self);
    loop_release_engine(self);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
Loop_time(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    int64_t ns = self->wall_clock ? iol_clock_wall_ns() : iol_clock_mono_ns();
    return PyFloat_FromDouble((double)ns / 1e9);
}

static PyObject *
Loop_is_running(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->running);
}

static PyObject *
Loop_is_closed(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(self->closed);
}

static PyObject *
Loop_get_backend(LoopObject *self, void *Py_UNUSED(closure))
{
    if (self->backend == NULL) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(self->backend->name);
}

static PyObject *
Loop_get_thread_id(LoopObject *self, void *Py_UNUSED(closure))
{
    if (!self->running) {
        Py_RETURN_NONE;
    }
    return PyLong_FromUnsignedLong(self->thread_id);
}

static PyObject *
Loop_get_stopping(LoopObject *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->stopping);
}

static PyObject *
Loop_get_waker_fd(LoopObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(self->waker.rfd);
}

static PyMethodDef loop_methods[] = {
    {"get_debug", (PyCFunction)Loop_get_debug, METH_NOARGS,
     "get_debug($self, /)\n--\n\nWhether the loop is in debug mode."},
    {"create_task", IOL_FASTCALL_KW(Loop_create_task),
     METH_FASTCALL | METH_KEYWORDS,
     "create_task($self, coro, /, **kwargs)\n--\n\n"
     "Schedule a coroutine object; return its Task."},
    {"create_future", (PyCFunction)Loop_create_future, METH_NOARGS,
     "create_future($self, /)\n--\n\n"
     "An asyncio.Future attached to the loop."},
    {"_run", (PyCFunction)Loop_run, METH_NOARGS,
     "Run ticks until stop() is called."},
    {"_run_once", (PyCFunction)Loop_run_once, METH_NOARGS,
     "_run_once($self, /)\n--\n\nRun a single tick."},
    {"stop", (PyCFunction)Loop_stop, METH_NOARGS,
     "stop($self, /)\n--\n\nStop the loop after the current tick (or the next one, if idle)."},
    {"_wakeup", (PyCFunction)Loop_wakeup, METH_NOARGS,
     "Wake the loop if it is waiting in the kernel."},
    {"_close", (PyCFunction)(void (*)(void))Loop_close_core,
     METH_VARARGS | METH_KEYWORDS,
     "Release the native resources; all_fds closes registered fds."},
    {"time", (PyCFunction)Loop_time, METH_NOARGS,
     "time($self, /)\n--\n\nThe loop's clock, in seconds."},
    {"is_running", (PyCFunction)Loop_is_running, METH_NOARGS,
     "is_running($self, /)\n--\n\nReturn True while the loop runs."},
    {"is_closed", (PyCFunction)Loop_is_closed, METH_NOARGS,
     "is_closed($self, /)\n--\n\nReturn True once the loop was closed."},
    {"stats", (PyCFunction)Loop_stats, METH_NOARGS,
     "Counters kept by the loop, as a dict."},
    {"_set_slow_threshold", (PyCFunction)Loop_set_slow_threshold, METH_O,
     "Report callbacks that run at least this many seconds; None: off."},
    {"_set_timing", (PyCFunction)Loop_set_timing, METH_O,
     "Time each callback (True, the default) or only each batch."},
    {"call_soon", IOL_FASTCALL_KW(Loop_call_soon),
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon($self, callback, /, *args, context=None)\n--\n\n"
     "Call callback(*args) in context on the next tick."},
    {"call_soon_threadsafe", IOL_FASTCALL_KW(Loop_call_soon_threadsafe),
     METH_FASTCALL | METH_KEYWORDS,
     "call_soon_threadsafe($self, callback, /, *args, context=None)\n"
     "--\n\nLike call_soon(), from any thread."},
    {"call_later", IOL_FASTCALL_KW(Loop_call_later),
     METH_FASTCALL | METH_KEYWORDS,
     "call_later($self, delay, callback, /, *args, context=None)\n--\n\n"
     "Call callback(*args) in context after delay seconds."},
    {"call_at", IOL_FASTCALL_KW(Loop_call_at),
     METH_FASTCALL | METH_KEYWORDS,
     "call_at($self, when, callback, /, *args, context=None)\n--\n\n"
     "Call callback(*args) in context at loop time when."},
    {"_tornado_call_later", IOL_FASTCALL_KW(Loop_tornado_call_later),
     METH_FASTCALL | METH_KEYWORDS, "Tornado's call_later."},
    {"_tornado_call_at", IOL_FASTCALL_KW(Loop_tornado_call_at),
     METH_FASTCALL | METH_KEYWORDS, "Tornado's call_at."},
    {"add_callback", IOL_FASTCALL_KW(Loop_add_callback),
     METH_FASTCALL | METH_KEYWORDS,
     "add_callback(callback, *args, **kwargs); safe from any thread."},
    {"add_callback_from_signal", IOL_FASTCALL_KW(Loop_add_callback),
     METH_FASTCALL | METH_KEYWORDS, "Same as add_callback()."},
    {"spawn_callback", IOL_FASTCALL_KW(Loop_add_callback),
     METH_FASTCALL | METH_KEYWORDS, "Same as add_callback()."},
    {"add_timeout", IOL_FASTCALL_KW(Loop_add_timeout),
     METH_FASTCALL | METH_KEYWORDS,
     "add_timeout(deadline, callback, *args, **kwargs)"},
    {"_tornado_call_at_wall", IOL_FASTCALL_KW(Loop_tornado_call_at_wall),
     METH_FASTCALL | METH_KEYWORDS, "Tornado's call_at, time.time() terms."},
    {"_add_timeout_wall", IOL_FASTCALL_KW(Loop_add_timeout_wall),
     METH_FASTCALL | METH_KEYWORDS, "add_timeout, time.time() terms."},
    {"remove_timeout", (PyCFunction)Loop_remove_timeout, METH_O,
     "Cancel a pending timeout."},
    {"add_handler", (PyCFunction)(void (*)(void))Loop_add_handler,
     METH_FASTCALL, "add_handler(fd, handler, events)"},
    {"update_handler", (PyCFunction)(void (*)(void))Loop_update_handler,
     METH_FASTCALL, "update_handler(fd, events)"},
    {"remove_handler", (PyCFunction)Loop_remove_handler, METH_O,
     "remove_handler(fd); an unknown fd is ignored."},
    {"_add_reader", IOL_FASTCALL_KW(Loop_add_reader),
     METH_FASTCALL | METH_KEYWORDS,
     "_add_reader($self, fd, callback, /, *args, context=None)\n--\n\n"
     "Call callback(*args) in context when fd is readable."},
    {"_add_writer", IOL_FASTCALL_KW(Loop_add_writer),
     METH_FASTCALL | METH_KEYWORDS,
     "_add_writer($self, fd, callback, /, *args, context=None)\n--\n\n"
     "Call callback(*args) in context when fd is writable."},
    {"_remove_reader", (PyCFunction)Loop_remove_reader, METH_O,
     "_remove_reader($self, fd, /)\n--\n\nStop watching fd for reading."},
    {"_remove_writer", (PyCFunction)Loop_remove_writer, METH_O,
     "_remove_writer($self, fd, /)\n--\n\nStop watching fd for writing."},
    {"_fd_info", (PyCFunction)Loop_fd_info, METH_O,
     "_fd_info(fd) -> None or (events, reader, writer)"},
    {"_watched_fds", (PyCFunction)Loop_watched_fds, METH_NOARGS,
     "Fds with an asyncio reader or writer."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef loop_getset[] = {
    {"backend", (getter)Loop_get_backend, NULL, "The backend's name.", NULL},
    {"_core_thread_id", (getter)Loop_get_thread_id, NULL, NULL, NULL},
    {"_core_stopping", (getter)Loop_get_stopping, NULL, NULL, NULL},
    {"_waker_fd", (getter)Loop_get_waker_fd, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef loop_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(LoopObject, weakreflist),
     READONLY, NULL},
    {"_debug", T_OBJECT_EX, offsetof(LoopObject, debug), 0,
     "asyncio's debug flag, as set_debug() leaves it."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot loop_slots[] = {
    {Py_tp_new, Loop_new},
    {Py_tp_init, Loop_init},
    {Py_tp_dealloc, Loop_dealloc},
    {Py_tp_traverse, Loop_traverse},
    {Py_tp_clear, Loop_clear},
    {Py_tp_methods, loop_methods},
    {Py_tp_getset, loop_getset},
    {Py_tp_members, loop_members},
    {Py_tp_doc, "The native core of an ioloop_c event loop."},
    {0, NULL},
};

PyType_Spec iol_loop_spec = {
    .name = "ioloop_c._core.Loop",
    .basicsize = sizeof(LoopObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = loop_slots,
};
