/*
 * loop.c: the Loop type's life cycle and its tick.
 *
 * One tick, in the order DESIGN.md fixes:
 *   1. compute the timeout (0 if work is queued or a stop is pending),
 *   2. release the GIL and wait in the kernel,
 *   3. refresh `now`, turn fd events into ready items,
 *   4. move every due timer to the ready queue,
 *   5. run exactly the items queued by then; later work waits a tick.
 * Scheduling methods live in loop_sched.c, fd methods in loop_fd.c.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <structmember.h>

/* Deadlines are clamped well inside int64 so that `when - now` and
 * `now + delay` cannot overflow: about 73 years either way. */
#define IOL_NS_LIMIT ((int64_t)1 << 61)

int64_t
iol_seconds_to_ns(double s)
{
    double ns = s * 1e9;
    if (ns >= (double)IOL_NS_LIMIT) {
        return IOL_NS_LIMIT;
    }
    if (ns <= -(double)IOL_NS_LIMIT) {
        return -IOL_NS_LIMIT;
    }
    return (int64_t)ns;
}

/* ------------------------------------------------------------------ */
/* The ready queue: a ring of (handle, mask) that owns its references. */

static int
ready_grow(iol_ready *q)
{
    size_t ncap = q->cap ? q->cap * 2 : 64;
    iol_ready_item *items = PyMem_Malloc(ncap * sizeof(*items));
    if (items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* Unroll the ring into the new array, oldest first. */
    for (size_t i = 0; i < q->len; i++) {
        items[i] = q->items[(q->head + i) & (q->cap - 1)];
    }
    PyMem_Free(q->items);
    q->items = items;
    q->head = 0;
    q->cap = ncap;
    return 0;
}

int
iol_ready_push_obj(iol_ready *q, PyObject *obj, int mask)
{
    if (q->len == q->cap && ready_grow(q) < 0) {
        return -1;
    }
    iol_ready_item *it = &q->items[(q->head + q->len) & (q->cap - 1)];
    it->obj = Py_NewRef(obj);
    it->mask = mask;
    q->len++;
    return 0;
}

int
iol_ready_push(iol_ready *q, HandleObject *h, int mask)
{
    return iol_ready_push_obj(q, (PyObject *)h, mask);
}

static iol_ready_item
ready_pop(iol_ready *q)
{
    iol_ready_item it = q->items[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
    return it;
}

/*
 * Handles made by call_soon() and add_callback() leave the cyclic
 * collector's lists while they wait in the ready queue.  A batch of
 * callbacks would otherwise hand the collector thousands of young objects
 * to scan on every generation-0 pass: that was close to half the cost of
 * call_soon.
 *
 * This stays correct because the loop's tp_traverse stands in for such a
 * handle.  Only a handle that nothing but the queue refers to (refcount 1)
 * is untracked; it belongs to the loop alone, so the loop visits what the
 * handle refers to as if it held those references itself, and a cycle
 * through it (a loop dropped with work pending) is still collected.
 *
 * A new handle starts tracked, since whoever called call_soon() may keep
 * it.  The loop remembers the newest one in `held`, and the next push or
 * the next tick untracks it if by then the queue is its only owner.  Once
 * untracked, no one can get at the handle again except through the loop,
 * when it leaves the queue to run: any new owner it gains then (an
 * exception handler that keeps it, say) gets it back tracked.
 */
static void
loop_settle_held(LoopObject *self)
{
    HandleObject *h = self->held;
    if (h != NULL) {
        self->held = NULL;
        if (Py_REFCNT(h) == 1) {
            PyObject_GC_UnTrack(h);
        }
    }
}

int
iol_loop_push_soon(LoopObject *self, HandleObject *h)
{
    if (iol_ready_push(&self->ready, h, 0) < 0) {
        return -1;
    }
    loop_settle_held(self);
    self->held = h;
    return 0;
}

/* Take the next item; the caller owns its reference. */
static iol_ready_item
loop_pop(LoopObject *self)
{
    iol_ready_item it = ready_pop(&self->ready);
    if (it.obj == (PyObject *)self->held) {
        self->held = NULL;
    }
    return it;
}

/* Give up the queue's reference to a popped item, tracking a handle
 * first if it outlives the queue untracked (transports stay tracked). */
static void
loop_release(PyObject *h)
{
    if (Py_REFCNT(h) > 1 && !PyObject_GC_IsTracked(h)) {
        PyObject_GC_Track(h);
    }
    Py_DECREF(h);
}

/* ------------------------------------------------------------------ */
/* Timers */

static TimerHandleObject *
timer_of(iol_timer *t)
{
    return (TimerHandleObject *)((char *)t - offsetof(TimerHandleObject,
                                                      timer));
}

/* Take a cancelled timer out of the heap at once: no garbage is left for
 * a later sweep.  The heap's reference to the handle goes with it. */
void
iol_loop_timer_cancel(LoopObject *self, TimerHandleObject *t)
{
    if (t->timer.index == IOL_NO_INDEX) {
        return;
    }
    iol_heap_remove(&self->timers, &t->timer);
    self->stats.timers_cancelled++;
    Py_DECREF(t);
}

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

static void
loop_drop_work(LoopObject *self)
{
    while (self->ready.len) {
        loop_release(loop_pop(self).obj);
    }
    iol_timer *t;
    while ((t = iol_heap_pop(&self->timers)) != NULL) {
        Py_DECREF(timer_of(t));
    }
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
    for (size_t i = 0; i < self->ready.len; i++) {
        PyObject *h = self->ready.items[(self->ready.head + i) &
                                        (self->ready.cap - 1)].obj;
        if (PyObject_GC_IsTracked(h)) {
            Py_VISIT(h);
        }
        else if (Py_REFCNT(h) == 1) {
            /* The loop's own: see loop_settle_held().  An untracked
             * handle with other owners would be a bug; not visiting it
             * can only keep objects alive, never free one in use. */
            int rc = iol_handle_traverse((HandleObject *)h, visit, arg);
            if (rc != 0) {
                return rc;
            }
        }
    }
    for (size_t i = 0; i < self->timers.len; i++) {
        Py_VISIT(timer_of(self->timers.items[i].timer));
    }
    Py_VISIT(self->slowest_repr);
    Py_VISIT(self->debug);
    Py_VISIT(self->futures);
    Py_VISIT(self->kw_loop);
    Py_VISIT(self->str_future);
    return iol_fd_traverse(self, visit, arg);
}

static int
Loop_clear(LoopObject *self)
{
    loop_drop_work(self);
    iol_fd_clear_all(self, 0);
    Py_CLEAR(self->slowest_repr);
    Py_CLEAR(self->debug);
    Py_CLEAR(self->futures);
    Py_CLEAR(self->kw_loop);
    Py_CLEAR(self->str_future);
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

/* ------------------------------------------------------------------ */
/* The tick */

/* How long the next wait may sleep, from the clock reading `now`. */
static int64_t
loop_timeout(LoopObject *self, int64_t now)
{
    if (self->ready.len || self->stopping) {
        return 0;
    }
    iol_timer *t = iol_heap_peek(&self->timers);
    if (t == NULL) {
        return IOL_WAIT_FOREVER;
    }
    int64_t d = t->when - now;
    return d > 0 ? d : 0;
}

/* Wait in the kernel.  A first look with a zero timeout keeps the GIL:
 * under load something is usually ready already, and that saves handing
 * the GIL to other threads and taking it back on every tick.  Only a wait
 * that may block releases the GIL, and only around the wait itself.
 * EINTR runs Python's signal handlers; if one raised (Ctrl-C), the
 * exception leaves the loop; otherwise the wait is retried with a timeout
 * recomputed from scratch, since a handler may have queued work. */
static int
loop_wait(LoopObject *self)
{
    /* The previous tick ended a moment ago: its last clock reading stands
     * for "now" here, which saves a reading on every tick. */
    int64_t t0 = self->now;
    int n = self->backend->wait(self->bstate, 0, self->events,
                                self->maxevents);
    int err = errno;
    for (;;) {
        if (n == 0) {
            int64_t timeout = loop_timeout(self, t0);
            if (timeout != 0) {
                self->polling = 1;
                Py_BEGIN_ALLOW_THREADS
                n = self->backend->wait(self->bstate, timeout, self->events,
                                        self->maxevents);
                err = errno;
                Py_END_ALLOW_THREADS
                self->polling = 0;
            }
        }
        self->now = iol_clock_mono_ns();
        self->stats.wait_ns += self->now - t0;
        if (n >= 0) {
            return n;
        }
        if (err != EINTR) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) {
            return -1;
        }
        t0 = self->now;
        n = 0;
    }
}

static int
loop_tick(LoopObject *self)
{
    loop_settle_held(self);
    int n = loop_wait(self);
    if (n < 0) {
        return -1;
    }
    self->stats.ticks++;
    for (int i = 0; i < n; i++) {
        const iol_event *ev = &self->events[i];
        if (ev->fd == self->waker.rfd) {
            iol_waker_drain(&self->waker);
            self->wake_pending = 0;
            /* A signal caught by another thread wakes us through the
             * wakeup fd, without EINTR here.  Run its Python handler now,
             * where its exception (Ctrl-C) leaves the loop, rather than at
             * some later bytecode boundary, such as inside a gc callback,
             * where the interpreter would only report it as unraisable. */
            if (PyErr_CheckSignals() < 0) {
                return -1;
            }
            continue;
        }
        if (iol_fd_dispatch(self, ev) < 0) {
            return -1;
        }
    }
    /* A full batch hints that more fds are ready: take more next time. */
    if (n == self->maxevents && self->maxevents < 4096) {
        iol_event *bigger = PyMem_Realloc(
            self->events, 2 * self->maxevents * sizeof(iol_event));
        if (bigger != NULL) {
            self->events = bigger;
            self->maxevents *= 2;
        }
    }
    /* Collect every due timer before running any, so a timer re-armed
     * with a past deadline in its own callback waits for the next tick. */
    iol_timer *t;
    while ((t = iol_heap_peek(&self->timers)) != NULL &&
           t->when <= self->now) {
        iol_heap_pop(&self->timers);
        TimerHandleObject *th = timer_of(t);
        /* The heap's reference moves to the ready queue. */
        if (iol_ready_push(&self->ready, &th->base, 0) < 0) {
            Py_DECREF(th);
            return -1;
        }
        Py_DECREF(th);
        self->stats.timers_fired++;
    }
    /* Run exactly what is queued now; what these add waits a tick.  With
     * timing on, one tick read per callback times it: the end of one is
     * the start of the next. */
    size_t count = self->ready.len;
    if (count == 0) {
        return 0;
    }
    int64_t t_start = self->now;
    int timing = self->timing;
    int64_t k_start = timing ? iol_ticks() : 0;
    int64_t k_prev = k_start;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        iol_ready_item it = loop_pop(self);
        int ran = 1;
        if (it.mask & IOL_ITEM_STREAM) {
            self->stats.callbacks++;
            int m = it.mask & ~IOL_ITEM_STREAM;
            PyTypeObject *dt = self->st->DatagramType;
            if (Py_IS_TYPE(it.obj, self->st->ListenerType)) {
                rc = iol_listener_event(it.obj, m);
            }
            else if (dt != NULL && PyObject_TypeCheck(it.obj, dt)) {
                rc = iol_datagram_event(it.obj, m);
            }
            else {
                rc = iol_transport_event(it.obj, m);
            }
        }
        else {
            /* Read before running: the callback may cancel its own
             * handle. */
            HandleObject *h = (HandleObject *)it.obj;
            ran = !h->cancelled;
            if (ran) {
                self->stats.callbacks++;
                rc = iol_handle_run(h, it.mask);
            }
        }
        if (timing && ran) {
            int64_t k = iol_ticks();
            int64_t took = k - k_prev;
            k_prev = k;
            if (took > self->stats.slowest_ticks ||
                (self->slow_ticks >= 0 && took >= self->slow_ticks)) {
                if (iol_loop_note_slow(self, it.obj, took) < 0) {
                    rc = -1;
                }
                k_prev = iol_ticks();
            }
        }
        loop_release(it.obj);
    }
    /* With timing on, the last tick reading already says when the batch
     * ended, which saves a clock reading per tick. */
    int64_t t_end = timing ? t_start + iol_ticks_to_ns(k_prev - k_start)
                           : iol_clock_mono_ns();
    self->stats.run_ns += t_end - t_start;
    self->now = t_end;
    return rc;
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
        rc = loop_tick(self);
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
    int rc = loop_tick(self);
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

/* Exported for loop_sched.c through the method table only. */
PyObject *
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
    iol_fd_clear_all(self, all_fds);
    loop_drop_work(self);
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
