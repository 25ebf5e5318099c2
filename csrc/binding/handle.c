/*
 * handle.c: Handle and TimerHandle, the units of work in the ready queue.
 *
 * A Handle is what call_soon, add_callback and fd registrations return or
 * keep.  Its `kind` says how it is called and where its exceptions go;
 * see internal.h.  A TimerHandle embeds the engine's iol_timer, so
 * scheduling a timer allocates nothing but the handle itself.
 */
#include "internal.h"

#include <math.h>
#include <string.h>
#include <structmember.h>

/* The freelist for exact type tp, or NULL if tp is another type (a
 * subclass) or the module is being torn down. */
static HandleObject **
handle_freelist(PyTypeObject *tp, int **count)
{
    /* Both handle types are the module's own, so their module is at
     * hand without a lookup (and without raising, as dealloc needs). */
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) ||
        ((PyHeapTypeObject *)tp)->ht_module == NULL) {
        return NULL;
    }
    iol_modstate *st = PyModule_GetState(((PyHeapTypeObject *)tp)->ht_module);
    if (st == NULL) {
        return NULL;
    }
    if (tp == st->HandleType) {
        *count = &st->nfree_handles;
        return st->free_handles;
    }
    if (tp == st->TimerHandleType) {
        *count = &st->nfree_timers;
        return st->free_timers;
    }
    return NULL;
}

static HandleObject *
handle_reuse(PyTypeObject *tp)
{
    int *count;
    HandleObject **list = handle_freelist(tp, &count);
    if (list == NULL || *count == 0) {
        return NULL;
    }
    HandleObject *h = list[--*count];
    /* Sets the type (taking a reference to it) and the refcount. */
    (void)PyObject_Init((PyObject *)h, tp);
    return h;
}

void
iol_handle_freelists_clear(iol_modstate *st)
{
    while (st->nfree_handles > 0) {
        PyObject_GC_Del(st->free_handles[--st->nfree_handles]);
    }
    while (st->nfree_timers > 0) {
        PyObject_GC_Del(st->free_timers[--st->nfree_timers]);
    }
}

HandleObject *
iol_handle_new(PyTypeObject *tp, LoopObject *loop, int kind,
               PyObject *callback, PyObject *const *argv, Py_ssize_t argc,
               PyObject *kwargs, PyObject *context)
{
    PyObject *arg = NULL, *args = NULL;
    if (argc == 1 && kwargs == NULL) {
        arg = Py_NewRef(argv[0]);
    }
    /* PyObject_Call needs a tuple, even an empty one, beside kwargs. */
    else if (argc > 0 || kwargs != NULL) {
        args = PyTuple_New(argc);
        if (args == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < argc; i++) {
            PyTuple_SET_ITEM(args, i, Py_NewRef(argv[i]));
        }
    }
    HandleObject *h = handle_reuse(tp);
    if (h == NULL && (h = PyObject_GC_New(HandleObject, tp)) == NULL) {
        Py_XDECREF(arg);
        Py_XDECREF(args);
        return NULL;
    }
    Py_INCREF(loop);
    h->loop = loop;
    Py_INCREF(callback);
    h->callback = callback;
    h->arg = arg;
    h->args = args;
    Py_XINCREF(kwargs);
    h->kwargs = kwargs;
    Py_XINCREF(context);
    h->context = context;
    h->source_tb = NULL;
    h->repr = NULL;
    h->weakreflist = NULL;
    h->kind = kind;
    h->cancelled = 0;
    if (tp->tp_basicsize == (Py_ssize_t)sizeof(TimerHandleObject)) {
        TimerHandleObject *t = (TimerHandleObject *)h;
        t->timer.when = 0;
        t->timer.seq = 0;
        t->timer.index = IOL_NO_INDEX;
        t->when = 0.0;
    }
    PyObject_GC_Track(h);
    return h;
}

/* Drop what the handle would call, as asyncio does on cancel, so that a
 * cancelled handle no longer keeps its callback's objects alive. */
void
iol_handle_clear_refs(HandleObject *h)
{
    Py_CLEAR(h->arg);
    Py_CLEAR(h->args);
    Py_CLEAR(h->kwargs);
    Py_CLEAR(h->context);
    Py_CLEAR(h->callback);
}

int
iol_handle_traverse(HandleObject *h, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(h));
    Py_VISIT(h->loop);
    Py_VISIT(h->callback);
    Py_VISIT(h->arg);
    Py_VISIT(h->args);
    Py_VISIT(h->kwargs);
    Py_VISIT(h->context);
    Py_VISIT(h->source_tb);
    Py_VISIT(h->repr);
    return 0;
}

static int
handle_clear(HandleObject *h)
{
    iol_handle_clear_refs(h);
    Py_CLEAR(h->source_tb);
    Py_CLEAR(h->repr);
    Py_CLEAR(h->loop);
    return 0;
}

static void
handle_dealloc(HandleObject *h)
{
    PyTypeObject *tp = Py_TYPE(h);
    PyObject_GC_UnTrack(h);
    if (h->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)h);
    }
    handle_clear(h);
    int *count;
    HandleObject **list = handle_freelist(tp, &count);
    if (list != NULL && *count < IOL_HANDLE_FREELIST) {
        list[(*count)++] = h;
    }
    else {
        tp->tp_free((PyObject *)h);
    }
    Py_DECREF(tp);
}

/* Report an exception raised by a handle through the loop's Python-level
 * reporter.  KeyboardInterrupt and SystemExit are not reported: they
 * leave the loop, as in asyncio.  Returns -1 when one must propagate. */
static int
handle_report(HandleObject *h, PyObject *callback)
{
    if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
        PyErr_ExceptionMatches(PyExc_SystemExit)) {
        return -1;
    }
    PyObject *exc = iol_err_fetch();
    iol_modstate *st = h->loop->st;
    PyObject *name, *what;
    if (h->kind == IOL_KIND_ASYNCIO) {
        name = st->str_report_handle;
        what = (PyObject *)h;
    }
    else {
        name = st->str_report_callback;
        what = callback;
    }
    PyObject *res = PyObject_CallMethodObjArgs((PyObject *)h->loop, name,
                                               what, exc, NULL);
    Py_DECREF(exc);
    if (res == NULL) {
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
            PyErr_ExceptionMatches(PyExc_SystemExit)) {
            return -1;
        }
        /* The reporter itself failed: say so and carry on. */
        PyErr_WriteUnraisable((PyObject *)h->loop);
        return 0;
    }
    Py_DECREF(res);
    return 0;
}

/* Run a handle once.  Returns 0 when the loop may go on (the callback's
 * own exception, if any, was reported), -1 when an exception must leave
 * the loop.  The caller keeps a reference to h. */
int
iol_handle_run(HandleObject *h, int mask)
{
    if (h->cancelled || h->callback == NULL) {
        return 0;
    }
    /* Hold our own references: the callback may cancel its own handle,
     * which clears these fields. */
    PyObject *callback = Py_NewRef(h->callback);
    PyObject *arg = Py_XNewRef(h->arg);
    PyObject *args = Py_XNewRef(h->args);
    PyObject *kwargs = Py_XNewRef(h->kwargs);
    PyObject *context = Py_XNewRef(h->context);
    PyObject *res = NULL;
    int rc = 0;

    if (context != NULL && PyContext_Enter(context) < 0) {
        goto report;
    }
    if (h->kind == IOL_KIND_FD) {
        PyObject *mobj = PyLong_FromLong(mask);
        if (mobj != NULL) {
            PyObject *argv[2] = {arg, mobj};
            res = PyObject_Vectorcall(callback, argv, 2, NULL);
            Py_DECREF(mobj);
        }
    }
    else if (kwargs != NULL) {
        res = PyObject_Call(callback, args, kwargs);
    }
    else if (arg != NULL) {
        res = PyObject_Vectorcall(callback, &arg, 1, NULL);
    }
    else if (args != NULL) {
        res = PyObject_Vectorcall(callback, &PyTuple_GET_ITEM(args, 0),
                                  PyTuple_GET_SIZE(args), NULL);
    }
    else {
        res = PyObject_CallNoArgs(callback);
    }
    if (context != NULL) {
        /* Exiting only fails if the context is not the current one, which
         * the callback cannot arrange; keep the callback's error first. */
        PyObject *exc = iol_err_fetch();
        if (PyContext_Exit(context) < 0) {
            PyErr_WriteUnraisable(context);
        }
        iol_err_restore(exc);
    }
    if (res != NULL) {
        if (h->kind == IOL_KIND_TORNADO && res != Py_None) {
            iol_modstate *st = h->loop->st;
            PyObject *r2 = PyObject_CallMethodOneArg(
                (PyObject *)h->loop, st->str_callback_result, res);
            Py_DECREF(res);
            res = r2;
            if (res == NULL) {
                goto report;
            }
        }
        Py_DECREF(res);
        goto done;
    }
report:
    rc = handle_report(h, callback);
done:
    Py_DECREF(callback);
    Py_XDECREF(arg);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    Py_XDECREF(context);
    return rc;
}

void
iol_handle_cancel(HandleObject *h)
{
    if (h->cancelled) {
        return;
    }
    h->cancelled = 1;
    if (iol_is_timer(h) && h->loop != NULL) {
        iol_loop_timer_cancel(h->loop, (TimerHandleObject *)h);
    }
    iol_handle_clear_refs(h);
}

static PyObject *Handle_repr(HandleObject *h);

static PyObject *
Handle_cancel(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    if (!h->cancelled && h->loop != NULL && h->loop->debug != NULL) {
        /* As asyncio does in debug mode: keep the repr, callback and
         * arguments included, for the reports that name the handle
         * after its references are gone. */
        int debug = PyObject_IsTrue(h->loop->debug);
        if (debug < 0) {
            return NULL;
        }
        if (debug) {
            h->cancelled = 1; /* the kept repr says "cancelled" */
            PyObject *kept = Handle_repr(h);
            h->cancelled = 0;
            if (kept == NULL) {
                /* A repr that raises (a callback whose name cannot be
                 * read) does not stop the cancel, as in asyncio; its
                 * error is the call's. */
                PyObject *exc = iol_err_fetch();
                iol_handle_cancel(h);
                iol_err_restore(exc);
                return NULL;
            }
            Py_XSETREF(h->repr, kept);
        }
    }
    iol_handle_cancel(h);
    Py_RETURN_NONE;
}

static PyObject *
Handle_cancelled(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(h->cancelled);
}

static PyObject *
Handle_get_context(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    if (h->context == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(h->context);
}

static PyObject *
Handle_run(HandleObject *h, PyObject *Py_UNUSED(ignored))
{
    if (iol_handle_run(h, 0) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* _handle_repr_configure(repr_func, describe_func) */
PyObject *
iol_handle_repr_configure(PyObject *mod, PyObject *args)
{
    PyObject *repr_func, *describe;
    if (!PyArg_ParseTuple(args, "OO:_handle_repr_configure", &repr_func,
                          &describe)) {
        return NULL;
    }
    if (!PyCallable_Check(repr_func) || !PyCallable_Check(describe)) {
        PyErr_SetString(PyExc_TypeError, "both functions must be callable");
        return NULL;
    }
    iol_modstate *st = PyModule_GetState(mod);
    Py_XSETREF(st->handle_repr, Py_NewRef(repr_func));
    Py_XSETREF(st->handle_describe, Py_NewRef(describe));
    Py_RETURN_NONE;
}

/* What ran, as asyncio's reports name a handle (the slowest callback, a
 * slow one): a task's step by the task, anything else by its repr. */
PyObject *
iol_handle_describe(iol_modstate *st, PyObject *obj)
{
    /* What the ready queue ran: a handle, or a native fd owner (a
     * transport, a stream), which its own repr names. */
    if (st->handle_describe == NULL ||
        !PyObject_TypeCheck(obj, st->HandleType)) {
        return PyObject_Repr(obj);
    }
    PyObject *r = PyObject_CallOneArg(st->handle_describe, obj);
    if (r != NULL && !PyUnicode_Check(r)) {
        PyErr_Format(PyExc_TypeError, "handle description is %.200s",
                     Py_TYPE(r)->tp_name);
        Py_CLEAR(r);
    }
    return r;
}

/* The repr before _compat.py has given its function (or once the module
 * is torn down): the type, the callback's repr, a timer's deadline. */
static PyObject *
handle_repr_plain(HandleObject *h)
{
    /* "TimerHandle", not "ioloop_c._core.TimerHandle". */
    const char *name = strrchr(Py_TYPE(h)->tp_name, '.');
    name = name ? name + 1 : Py_TYPE(h)->tp_name;
    if (h->cancelled) {
        return PyUnicode_FromFormat("<%s cancelled>", name);
    }
    if (iol_is_timer(h)) {
        TimerHandleObject *t = (TimerHandleObject *)h;
        PyObject *when = PyFloat_FromDouble(t->when);
        if (when == NULL) {
            return NULL;
        }
        PyObject *r = PyUnicode_FromFormat("<%s when=%R %R>", name, when,
                                           h->callback);
        Py_DECREF(when);
        return r;
    }
    /* A C method or wrapper (asyncio's Task.task_wakeup, the task step
     * wrapper) shows the repr of the object it is bound to, which names
     * the task and its coroutine, rather than "object at 0x...". */
    PyObject *cb = h->callback;
    if (cb != NULL && !PyMethod_Check(cb) && !PyFunction_Check(cb)) {
        PyObject *self = PyObject_GetAttrString(cb, "__self__");
        if (self == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                return NULL;
            }
            PyErr_Clear();
        }
        else if (self != Py_None && !PyModule_Check(self)) {
            const char *what = PyCFunction_Check(cb)
                                   ? ((PyCFunctionObject *)cb)->m_ml->ml_name
                                   : Py_TYPE(cb)->tp_name;
            PyObject *r =
                PyUnicode_FromFormat("<%s %s of %R>", name, what, self);
            Py_DECREF(self);
            return r;
        }
        else {
            Py_DECREF(self);
        }
    }
    return PyUnicode_FromFormat("<%s %R>", name, cb);
}

/* asyncio's Handle.__repr__: the callback as asyncio formats it (its
 * arguments only in debug mode on 3.13+), "cancelled", a timer's
 * "when=", and "created at" in debug mode; _compat.py does the
 * formatting with asyncio's own helpers for the running version. */
static PyObject *
Handle_repr(HandleObject *h)
{
    if (h->repr != NULL) {
        return Py_NewRef(h->repr);
    }
    iol_modstate *st = h->loop != NULL ? h->loop->st : NULL;
    if (st == NULL || st->handle_repr == NULL) {
        return handle_repr_plain(h);
    }
    PyObject *when = Py_None;
    if (iol_is_timer(h)) {
        when = PyFloat_FromDouble(((TimerHandleObject *)h)->when);
        if (when == NULL) {
            return NULL;
        }
    }
    else {
        Py_INCREF(when);
    }
    /* Held: set_debug() from inside the call may replace the loop's. */
    PyObject *debug =
        Py_NewRef(h->loop->debug != NULL ? h->loop->debug : Py_False);
    PyObject *argv[3] = {(PyObject *)h, debug, when};
    PyObject *r = PyObject_Vectorcall(st->handle_repr, argv, 3, NULL);
    Py_DECREF(debug);
    Py_DECREF(when);
    if (r != NULL && !PyUnicode_Check(r)) {
        PyErr_Format(PyExc_TypeError, "handle repr returned %.200s",
                     Py_TYPE(r)->tp_name);
        Py_CLEAR(r);
    }
    return r;
}

static PyObject *
Handle_get_callback(HandleObject *h, void *Py_UNUSED(closure))
{
    return Py_NewRef(h->callback ? h->callback : Py_None);
}

static PyObject *
Handle_get_args(HandleObject *h, void *Py_UNUSED(closure))
{
    if (h->arg != NULL) {
        return PyTuple_Pack(1, h->arg);
    }
    if (h->args == NULL) {
        if (h->callback == NULL) {
            Py_RETURN_NONE;
        }
        return PyTuple_New(0);
    }
    return Py_NewRef(h->args);
}

static PyObject *
Handle_get_kwargs(HandleObject *h, void *Py_UNUSED(closure))
{
    return Py_NewRef(h->kwargs ? h->kwargs : Py_None);
}

static PyObject *
Handle_get_loop(HandleObject *h, void *Py_UNUSED(closure))
{
    return Py_NewRef(h->loop ? (PyObject *)h->loop : Py_None);
}

static PyObject *
Handle_get_cancelled(HandleObject *h, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(h->cancelled);
}

static PyMethodDef handle_methods[] = {
    {"cancel", (PyCFunction)Handle_cancel, METH_NOARGS,
     "Cancel the call; a no-op if it already ran or was cancelled."},
    {"cancelled", (PyCFunction)Handle_cancelled, METH_NOARGS,
     "Return True if the call was cancelled."},
    {"get_context", (PyCFunction)Handle_get_context, METH_NOARGS,
     "Return the contextvars.Context the callback runs in."},
    {"_run", (PyCFunction)Handle_run, METH_NOARGS,
     "Run the callback now (asyncio compatibility)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef handle_getset[] = {
    {"_callback", (getter)Handle_get_callback, NULL, NULL, NULL},
    {"_args", (getter)Handle_get_args, NULL, NULL, NULL},
    {"_kwargs", (getter)Handle_get_kwargs, NULL, NULL, NULL},
    {"_loop", (getter)Handle_get_loop, NULL, NULL, NULL},
    {"_cancelled", (getter)Handle_get_cancelled, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef handle_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(HandleObject, weakreflist),
     READONLY, NULL},
    {"_source_traceback", T_OBJECT, offsetof(HandleObject, source_tb), 0,
     "Where the handle was created (asyncio debug mode only)."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot handle_slots[] = {
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, iol_handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_repr, Handle_repr},
    {Py_tp_methods, handle_methods},
    {Py_tp_getset, handle_getset},
    {Py_tp_members, handle_members},
    {Py_tp_doc, "A callback scheduled on an ioloop_c loop."},
    {0, NULL},
};

PyType_Spec iol_handle_spec = {
    .name = "ioloop_c._core.Handle",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = handle_slots,
};

static PyObject *
TimerHandle_when(TimerHandleObject *t, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(t->when);
}

static PyMethodDef timer_handle_methods[] = {
    {"when", (PyCFunction)TimerHandle_when, METH_NOARGS,
     "Return the time the callback is scheduled for, in loop.time() "
     "terms."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot timer_handle_slots[] = {
    {Py_tp_dealloc, handle_dealloc},
    {Py_tp_traverse, iol_handle_traverse},
    {Py_tp_clear, handle_clear},
    {Py_tp_methods, timer_handle_methods},
    {Py_tp_doc, "A callback scheduled for a point in time."},
    {0, NULL},
};

PyType_Spec iol_timer_handle_spec = {
    .name = "ioloop_c._core.TimerHandle",
    .basicsize = sizeof(TimerHandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = timer_handle_slots,
};
