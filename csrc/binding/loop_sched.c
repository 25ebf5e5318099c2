/*
 * loop_sched.c: putting work on the loop: call_soon and friends (asyncio
 * face), add_callback and add_timeout (Tornado face), and timers.
 *
 * These are the hot paths.  Each builds one handle, takes a copy of the
 * caller's context as asyncio does, and appends to the ready queue or the
 * heap.  The handle is complete before it is queued: allocating it may run
 * a garbage collection, which may run arbitrary Python code, and the
 * queue must never be seen half-updated.
 */
#include "internal.h"

#include <math.h>

/* The parsed form of (fixed..., callback, *args, context=None, **kwargs). */
typedef struct {
    PyObject *callback;
    PyObject *const *argv; /* borrowed from the call's own arguments */
    Py_ssize_t argc;
    PyObject *kwargs;  /* new reference or NULL */
    PyObject *context; /* new reference */
} call_spec;

static void
call_spec_clear(call_spec *c)
{
    Py_CLEAR(c->kwargs);
    Py_CLEAR(c->context);
}

/* Is `cb` a coroutine or a coroutine function?  asyncio refuses both in
 * call_soon() and friends.  A cheap structural test: functions (and bound
 * methods of functions) whose code has CO_COROUTINE, and coroutine
 * objects. */
int
iol_is_coroutine_like(PyObject *cb)
{
    if (PyCoro_CheckExact(cb)) {
        return 1;
    }
    if (PyMethod_Check(cb)) {
        cb = PyMethod_GET_FUNCTION(cb);
    }
    if (PyFunction_Check(cb)) {
        PyCodeObject *code = (PyCodeObject *)PyFunction_GET_CODE(cb);
        return (code->co_flags & CO_COROUTINE) != 0;
    }
    return 0;
}

/* Parse the callback and what follows it.  `skip` positional arguments
 * come before the callback.  asyncio methods take only `context=`;
 * Tornado methods bind any other keyword arguments too. */
static int
parse_call(const char *method, PyObject *const *args, Py_ssize_t nargs,
           PyObject *kwnames, Py_ssize_t skip, int tornado, call_spec *c)
{
    c->kwargs = c->context = NULL;
    if (nargs <= skip) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing required positional argument%s", method,
                     skip ? "s" : "");
        return -1;
    }
    c->callback = args[skip];
    if (!tornado && iol_is_coroutine_like(c->callback)) {
        PyErr_Format(PyExc_TypeError, "coroutines cannot be used with %s()",
                     method);
        return -1;
    }
    if (!PyCallable_Check(c->callback)) {
        PyErr_Format(PyExc_TypeError,
                     "a callable object was expected by %s(), got %R",
                     method, c->callback);
        return -1;
    }
    c->argv = args + skip + 1;
    c->argc = nargs - skip - 1;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject *val = args[nargs + i];
        if (PyUnicode_CompareWithASCIIString(key, "context") == 0) {
            if (val != Py_None && !PyContext_CheckExact(val)) {
                PyErr_Format(PyExc_TypeError,
                             "context must be a contextvars.Context, got %R",
                             val);
                goto fail;
            }
            if (val != Py_None) {
                Py_INCREF(val);
                Py_XSETREF(c->context, val);
            }
            continue;
        }
        if (!tornado) {
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument %R",
                         method, key);
            goto fail;
        }
        if (c->kwargs == NULL && (c->kwargs = PyDict_New()) == NULL) {
            goto fail;
        }
        if (PyDict_SetItem(c->kwargs, key, val) < 0) {
            goto fail;
        }
    }
    if (c->context == NULL && (c->context = PyContext_CopyCurrent()) == NULL) {
        goto fail;
    }
    return 0;
fail:
    call_spec_clear(c);
    return -1;
}

static PyObject *
schedule_soon(LoopObject *self, int kind, const call_spec *c, int wake)
{
    iol_modstate *st = self->st;
    HandleObject *h = iol_handle_new(st->HandleType, self, kind, c->callback,
                                     c->argv, c->argc, c->kwargs,
                                     c->context);
    if (h == NULL) {
        return NULL;
    }
    if (iol_loop_push_soon(self, h) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    if (wake && self->polling && !self->wake_pending) {
        self->wake_pending = 1;
        iol_waker_signal(&self->waker);
    }
    return (PyObject *)h;
}

/* Read a time in seconds: any real number; NaN is refused (asyncio
 * accepts it and corrupts its heap). */
static int
read_seconds(PyObject *obj, const char *what, double *out)
{
    if (obj == Py_None) {
        PyErr_Format(PyExc_TypeError, "%s must not be None", what);
        return -1;
    }
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (isnan(v)) {
        PyErr_Format(PyExc_ValueError, "%s must not be NaN", what);
        return -1;
    }
    *out = v;
    return 0;
}

/* Put a timer in the heap for monotonic `when_ns`; `when` is what
 * TimerHandle.when() reports.  The heap owns one reference. */
static PyObject *
schedule_timer(LoopObject *self, int kind, const call_spec *c,
               int64_t when_ns, double when)
{
    iol_modstate *st = self->st;
    HandleObject *h = iol_handle_new(st->TimerHandleType, self, kind,
                                     c->callback, c->argv, c->argc,
                                     c->kwargs, c->context);
    if (h == NULL) {
        return NULL;
    }
    /* Reserve after allocating: the allocation may have run a garbage
     * collection, and with it Python code that closed the loop. */
    if (iol_loop_check_open(self) < 0) {
        Py_DECREF(h);
        return NULL;
    }
    if (iol_heap_reserve(&self->timers) < 0) {
        Py_DECREF(h);
        return PyErr_NoMemory();
    }
    TimerHandleObject *t = (TimerHandleObject *)h;
    t->timer.when = when_ns;
    t->when = when;
    iol_heap_push(&self->timers, &t->timer);
    Py_INCREF(h);
    self->stats.timers_scheduled++;
    if (self->polling && !self->wake_pending) {
        /* A timer added from another thread may be earlier than the
         * sleeping wait's timeout. */
        self->wake_pending = 1;
        iol_waker_signal(&self->waker);
    }
    return (PyObject *)h;
}

/* The monotonic deadline for `when`, in time.time() terms if `wall`, else
 * in monotonic terms.  Wall-clock deadlines are converted with an offset
 * between the two clocks that is kept while it stays within a millisecond
 * of the truth: equal wall deadlines must map to equal monotonic ones, or
 * timers added at the same `when` would fire out of the order added.  A
 * real clock step moves the offset.  The check costs three clock reads,
 * so a running loop makes it once per tick: a step is noticed within a
 * tick, and a callback adding many timeouts pays for one check. */
static int64_t
deadline_at(LoopObject *self, double when, int wall)
{
    if (!wall) {
        return iol_seconds_to_ns(when);
    }
    uint64_t tick = self->stats.ticks + 1;
    if (self->running && self->wall_checked == tick) {
        return iol_seconds_to_ns(when) - self->wall_offset;
    }
    /* Read the wall clock between two monotonic readings; if the thread
     * was preempted in between, the sample says nothing about a clock
     * step, so the kept offset stands (and the next call looks again). */
    int64_t m0 = iol_clock_mono_ns();
    int64_t wall_ns = iol_clock_wall_ns();
    int64_t m1 = iol_clock_mono_ns();
    if (m1 - m0 < 100000) {
        self->wall_checked = tick;
        int64_t offset = wall_ns - (m0 + (m1 - m0) / 2);
        int64_t drift = offset - self->wall_offset;
        if (drift > 1000000 || drift < -1000000) {
            self->wall_offset = offset;
        }
    }
    return iol_seconds_to_ns(when) - self->wall_offset;
}

static double
loop_now_seconds(LoopObject *self)
{
    int64_t ns = self->wall_clock ? iol_clock_wall_ns() : iol_clock_mono_ns();
    return (double)ns / 1e9;
}

static PyObject *
call_later_impl(LoopObject *self, const char *method, int kind,
                PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    call_spec c;
    double delay;
    if (iol_loop_check_open(self) < 0) {
        return NULL;
    }
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing argument 'delay'",
                     method);
        return NULL;
    }
    if (read_seconds(args[0], "delay", &delay) < 0 ||
        parse_call(method, args, nargs, kwnames, 1,
                   kind != IOL_KIND_ASYNCIO, &c) < 0) {
        return NULL;
    }
    /* One clock read: on the asyncio face time() is this same monotonic
     * clock; only the wall-clock (Tornado) face needs a second one. */
    int64_t now_ns = iol_clock_mono_ns();
    double now = self->wall_clock ? loop_now_seconds(self)
                                  : (double)now_ns / 1e9;
    PyObject *h = schedule_timer(self, kind, &c,
                                 now_ns + iol_seconds_to_ns(delay),
                                 now + delay);
    call_spec_clear(&c);
    return h;
}

static PyObject *
call_at_impl(LoopObject *self, const char *method, int kind, int wall,
             PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    call_spec c;
    double when;
    if (iol_loop_check_open(self) < 0) {
        return NULL;
    }
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing argument 'when'",
                     method);
        return NULL;
    }
    if (read_seconds(args[0], "when", &when) < 0 ||
        parse_call(method, args, nargs, kwnames, 1,
                   kind != IOL_KIND_ASYNCIO, &c) < 0) {
        return NULL;
    }
    PyObject *h = schedule_timer(self, kind, &c, deadline_at(self, when, wall),
                                 when);
    call_spec_clear(&c);
    return h;
}

PyObject *
Loop_call_soon(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    call_spec c;
    if (iol_loop_check_open(self) < 0 ||
        parse_call("call_soon", args, nargs, kwnames, 0, 0, &c) < 0) {
        return NULL;
    }
    PyObject *h = schedule_soon(self, IOL_KIND_ASYNCIO, &c, 0);
    call_spec_clear(&c);
    return h;
}

PyObject *
Loop_call_soon_threadsafe(LoopObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames)
{
    call_spec c;
    if (iol_loop_check_open(self) < 0 ||
        parse_call("call_soon_threadsafe", args, nargs, kwnames, 0, 0,
                   &c) < 0) {
        return NULL;
    }
    PyObject *h = schedule_soon(self, IOL_KIND_ASYNCIO, &c, 1);
    call_spec_clear(&c);
    return h;
}

PyObject *
Loop_call_later(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    return call_later_impl(self, "call_later", IOL_KIND_ASYNCIO, args, nargs,
                           kwnames);
}

PyObject *
Loop_call_at(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    return call_at_impl(self, "call_at", IOL_KIND_ASYNCIO, self->wall_clock,
                        args, nargs, kwnames);
}

PyObject *
Loop_tornado_call_later(LoopObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    return call_later_impl(self, "call_later", IOL_KIND_TORNADO, args, nargs,
                           kwnames);
}

PyObject *
Loop_tornado_call_at(LoopObject *self, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    return call_at_impl(self, "call_at", IOL_KIND_TORNADO, self->wall_clock,
                        args, nargs, kwnames);
}

/* Tornado's call_at with a time.time() deadline, whatever this loop's own
 * clock: what ioloop_c.tornado's shim calls on an asyncio-face loop. */
PyObject *
Loop_tornado_call_at_wall(LoopObject *self, PyObject *const *args,
                          Py_ssize_t nargs, PyObject *kwnames)
{
    return call_at_impl(self, "call_at", IOL_KIND_TORNADO, 1, args, nargs,
                        kwnames);
}

/* Tornado's add_callback: safe from any thread and from signal handlers;
 * after close() the callback is dropped silently, as Tornado does. */
PyObject *
Loop_add_callback(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    call_spec c;
    if (parse_call("add_callback", args, nargs, kwnames, 0, 1, &c) < 0) {
        return NULL;
    }
    PyObject *h = NULL;
    if (self->initialized && !self->closed) {
        h = schedule_soon(self, IOL_KIND_TORNADO, &c, 1);
    }
    call_spec_clear(&c);
    if (h == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    /* Tornado's add_callback returns None; don't make callers pay for a
     * handle they never see. */
    Py_DECREF(h);
    Py_RETURN_NONE;
}

/* add_timeout(deadline, ...): a real number is absolute, in time.time()
 * terms if `wall`, else monotonic; anything with total_seconds()
 * (datetime.timedelta) is relative. */
static PyObject *
add_timeout_impl(LoopObject *self, int wall, PyObject *const *args,
                 Py_ssize_t nargs, PyObject *kwnames)
{
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "add_timeout() missing argument 'deadline'");
        return NULL;
    }
    PyObject *deadline = args[0];
    if (PyFloat_Check(deadline) || PyLong_Check(deadline)) {
        return call_at_impl(self, "add_timeout", IOL_KIND_TORNADO, wall, args,
                            nargs, kwnames);
    }
    iol_modstate *st = self->st;
    PyObject *meth = PyObject_GetAttr(deadline, st->str_total_seconds);
    if (meth == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "Unsupported deadline %R",
                         deadline);
        }
        return NULL;
    }
    PyObject *secs = PyObject_CallNoArgs(meth);
    Py_DECREF(meth);
    if (secs == NULL) {
        return NULL;
    }
    /* Re-dispatch as call_later(secs, ...) with the same trailing args. */
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject **argv = PyMem_Malloc(total * sizeof(PyObject *));
    if (argv == NULL) {
        Py_DECREF(secs);
        return PyErr_NoMemory();
    }
    argv[0] = secs;
    for (Py_ssize_t i = 1; i < total; i++) {
        argv[i] = args[i];
    }
    PyObject *h = call_later_impl(self, "add_timeout", IOL_KIND_TORNADO,
                                  argv, nargs, kwnames);
    PyMem_Free(argv);
    Py_DECREF(secs);
    return h;
}

PyObject *
Loop_add_timeout(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    return add_timeout_impl(self, self->wall_clock, args, nargs, kwnames);
}

PyObject *
Loop_add_timeout_wall(LoopObject *self, PyObject *const *args,
                      Py_ssize_t nargs, PyObject *kwnames)
{
    return add_timeout_impl(self, 1, args, nargs, kwnames);
}

PyObject *
Loop_remove_timeout(LoopObject *self, PyObject *handle)
{
    iol_modstate *st = self->st;
    if (PyObject_TypeCheck(handle, st->HandleType)) {
        iol_handle_cancel((HandleObject *)handle);
        Py_RETURN_NONE;
    }
    /* Some other cancellable object (e.g. an asyncio TimerHandle). */
    PyObject *cancel = handle == Py_None
                           ? NULL
                           : PyObject_GetAttrString(handle, "cancel");
    if (cancel == NULL) {
        if (handle != Py_None &&
            !PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "remove_timeout() expects a handle from add_timeout(), "
                     "got %R",
                     handle);
        return NULL;
    }
    PyObject *res = PyObject_CallNoArgs(cancel);
    Py_DECREF(cancel);
    return res;
}

char *
iol_loop_read_buf(LoopObject *self)
{
    if (self->read_buf == NULL) {
        self->read_buf = PyMem_Malloc(IOL_READ_BUF_SIZE);
        if (self->read_buf == NULL) {
            PyErr_NoMemory();
        }
    }
    return self->read_buf;
}

/* asyncio's Future and Task ask the loop for get_debug() as they are
 * made, and streams make a future per read through create_future(): two
 * Python frames per operation when inherited from BaseEventLoop, here
 * none.  Both read what asyncio itself would: the _debug attribute that
 * BaseEventLoop.__init__ and set_debug() assign, and asyncio.futures'
 * Future as it is at the time of the call. */
PyObject *
Loop_get_debug(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->debug == NULL) {
        PyErr_SetString(PyExc_AttributeError,
                        "loop has no _debug: BaseEventLoop.__init__ "
                        "has not run");
        return NULL;
    }
    return Py_NewRef(self->debug);
}

/* First use: asyncio.futures, its C Future where there is one, and the
 * keywords.  -1 with an exception set. */
static int
create_future_init(LoopObject *self)
{
    PyObject *mod = PyImport_ImportModule("asyncio.futures");
    if (mod == NULL) {
        return -1;
    }
    PyObject *kw = Py_BuildValue("(s)", "loop");
    PyObject *name = PyUnicode_InternFromString("Future");
    /* Not for a closed loop: see Loop_close_core(). */
    PyObject *kwd = self->closed ? NULL
                                 : Py_BuildValue("{sO}", "loop",
                                                 (PyObject *)self);
    if (kw == NULL || name == NULL || (kwd == NULL && !self->closed)) {
        Py_DECREF(mod);
        Py_XDECREF(kw);
        Py_XDECREF(name);
        Py_XDECREF(kwd);
        return -1;
    }
    PyObject *cmod = PyImport_ImportModule("_asyncio");
    if (cmod == NULL) {
        PyErr_Clear();
    }
    else {
        self->c_future = PyObject_GetAttrString(cmod, "Future");
        Py_DECREF(cmod);
        if (self->c_future != NULL && !PyType_Check(self->c_future)) {
            Py_CLEAR(self->c_future);
        }
        PyErr_Clear();
    }
    self->futures = mod;
    self->kw_loop = kw;
    self->str_future = name;
    self->kw_dict = kwd;
    return 0;
}

PyObject *
Loop_create_future(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->futures == NULL && create_future_init(self) < 0) {
        return NULL;
    }
    /* The module's dict, read as a plain attribute lookup would read it
     * (asyncio.futures has no __getattr__); a miss goes the long way,
     * for its error. */
    PyObject *cls = PyDict_GetItemWithError(PyModule_GetDict(self->futures),
                                            self->str_future);
    if (cls != NULL) {
        Py_INCREF(cls);
    }
    else if (PyErr_Occurred()) {
        return NULL;
    }
    else {
        cls = PyObject_GetAttr(self->futures, self->str_future);
        if (cls == NULL) {
            return NULL;
        }
    }
    PyObject *fut;
    if (cls == self->c_future && self->kw_dict != NULL) {
        /* The C Future reads its keywords from a dict: one kept for
         * the purpose spares making one per future.  Its __init__ only
         * reads the dict. */
        PyObject *none = PyTuple_New(0);  /* the shared empty tuple */
        fut = none == NULL ? NULL : PyObject_Call(cls, none, self->kw_dict);
        Py_XDECREF(none);
    }
    else {
        PyObject *args[2] = {NULL, (PyObject *)self};
        fut = PyObject_Vectorcall(
            cls, args + 1, 0 | PY_VECTORCALL_ARGUMENTS_OFFSET, self->kw_loop);
    }
    Py_DECREF(cls);
    return fut;
}

/* Whether BaseEventLoop.create_task would hand these keywords to Task
 * unchanged: up to 3.13 it takes name= and context= and passes both on;
 * from 3.14 it passes on whatever it is given (name, context,
 * eager_start), and a loop= among them must meet the error it meets
 * there. */
static int
task_keywords_plain(PyObject *kwnames)
{
    Py_ssize_t n = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
#if PY_VERSION_HEX >= 0x030E0000
        if (PyUnicode_CompareWithASCIIString(k, "loop") == 0) {
            return 0;
        }
#else
        if (PyUnicode_CompareWithASCIIString(k, "name") != 0 &&
            PyUnicode_CompareWithASCIIString(k, "context") != 0) {
            return 0;
        }
#endif
    }
    return 1;
}

/* create_task(coro), asyncio's common case without its two Python frames
 * (BaseEventLoop.create_task and _check_closed): an open loop with no
 * task factory, not in debug mode (where BaseEventLoop trims the Task's
 * source traceback), and no keywords but those it passes to Task as they
 * are (task_keywords_plain: name, context, 3.14's eager_start, which
 * aiohttp gives for every request).  That case makes asyncio.tasks' Task
 * as it is at the time of the call, as BaseEventLoop.create_task does;
 * every other goes to that method. */
PyObject *
Loop_create_task(LoopObject *self, PyObject *const *args, Py_ssize_t nargs,
                 PyObject *kwnames)
{
    if (self->base_create_task == NULL) {
        PyObject *mod = PyImport_ImportModule("asyncio.base_events");
        PyObject *cls = mod ? PyObject_GetAttrString(mod, "BaseEventLoop")
                            : NULL;
        PyObject *fn = cls ? PyObject_GetAttrString(cls, "create_task")
                           : NULL;
        PyObject *tasks = fn ? PyImport_ImportModule("asyncio.tasks") : NULL;
        Py_XDECREF(mod);
        Py_XDECREF(cls);
        if (tasks == NULL) {
            Py_XDECREF(fn);
            return NULL;
        }
        self->base_create_task = fn;
        self->tasks = tasks;
    }
    if (self->futures == NULL && create_future_init(self) < 0) {
        return NULL;
    }
    PyObject *factory = NULL;
    if (nargs == 1 && !self->closed && self->debug == Py_False &&
        (kwnames == NULL ||
         (self->kw_dict != NULL && task_keywords_plain(kwnames)))) {
        factory = PyObject_GetAttr((PyObject *)self,
                                   self->st->str_task_factory);
        if (factory == NULL) {
            PyErr_Clear();
        }
    }
    if (factory != Py_None) {
        Py_XDECREF(factory);
        /* The long way: BaseEventLoop.create_task(self, *args, **kw). */
        Py_ssize_t n = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
        PyObject *small[8];
        PyObject **buf = n + 1 <= 8 ? small
                                    : PyMem_Malloc((n + 1) * sizeof(*buf));
        if (buf == NULL) {
            return PyErr_NoMemory();
        }
        buf[0] = (PyObject *)self;
        for (Py_ssize_t i = 0; i < n; i++) {
            buf[i + 1] = args[i];
        }
        PyObject *res = PyObject_Vectorcall(self->base_create_task, buf,
                                            nargs + 1, kwnames);
        if (buf != small) {
            PyMem_Free(buf);
        }
        return res;
    }
    Py_DECREF(factory);
    PyObject *cls = PyObject_GetAttr(self->tasks, self->st->str_Task);
    if (cls == NULL) {
        return NULL;
    }
    PyObject *task;
    if (self->kw_dict != NULL) {
        /* As in create_future(): the C Task reads its keywords from a
         * dict, and this one is kept for the purpose; given keywords go
         * into a copy of it. */
        PyObject *kw = kwnames ? PyDict_Copy(self->kw_dict)
                               : Py_NewRef(self->kw_dict);
        for (Py_ssize_t i = 0; kw && kwnames && i < PyTuple_GET_SIZE(kwnames);
             i++) {
            if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i),
                               args[nargs + i]) < 0) {
                Py_CLEAR(kw);
            }
        }
        PyObject *targs = kw ? PyTuple_Pack(1, args[0]) : NULL;
        task = targs ? PyObject_Call(cls, targs, kw) : NULL;
        Py_XDECREF(targs);
        Py_XDECREF(kw);
    }
    else {
        PyObject *targs[2] = {args[0], (PyObject *)self};
        task = PyObject_Vectorcall(cls, targs, 1, self->kw_loop);
    }
    Py_DECREF(cls);
    return task;
}
