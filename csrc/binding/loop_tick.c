/*
 * loop_tick.c: the tick, and the queues it runs from.
 *
 * One tick, in the order DESIGN.md fixes:
 *   1. compute the timeout (0 if work is queued or a stop is pending),
 *   2. release the GIL and wait in the kernel,
 *   3. refresh `now`, turn fd events into ready items,
 *   4. move every due timer to the ready queue,
 *   5. run exactly the items queued by then; later work waits a tick.
 * The ready queue and the timers' heap live here; the Loop type's life
 * cycle and methods in loop.c, fd registrations in loop_fd.c.
 */
#include "internal.h"

#include <errno.h>

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
/* The ready queue: a ring of (handle or owner, mask) that owns its
 * references. */

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

static int
ready_push(iol_ready *q, PyObject *obj, iol_stream_fn fn, int mask)
{
    if (q->len == q->cap && ready_grow(q) < 0) {
        return -1;
    }
    iol_ready_item *it = &q->items[(q->head + q->len) & (q->cap - 1)];
    it->obj = Py_NewRef(obj);
    it->fn = fn;
    it->mask = mask;
    q->len++;
    return 0;
}

int
iol_ready_push(iol_ready *q, HandleObject *h, int mask)
{
    return ready_push(q, (PyObject *)h, NULL, mask);
}

int
iol_ready_push_owner(iol_ready *q, PyObject *owner, iol_stream_fn fn,
                     int mask)
{
    return ready_push(q, owner, fn, mask);
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


void
iol_loop_drop_work(LoopObject *self)
{
    while (self->ready.len) {
        loop_release(loop_pop(self).obj);
    }
    iol_timer *t;
    while ((t = iol_heap_pop(&self->timers)) != NULL) {
        Py_DECREF(timer_of(t));
    }
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

int
iol_loop_tick(LoopObject *self)
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
        if (it.fn != NULL) {
            /* A native owner of an fd: its own entry point, which looks
             * at its state first, so an event gone stale does nothing. */
            self->stats.callbacks++;
            rc = it.fn(it.obj, it.mask);
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

/* Visit what the ready queue and the timers' heap hold, for the loop's
 * tp_traverse. */
int
iol_loop_traverse_work(LoopObject *self, visitproc visit, void *arg)
{
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
    return 0;
}
