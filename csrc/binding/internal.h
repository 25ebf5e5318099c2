/*
 * internal.h: types shared by the binding's files.
 *
 * The binding is the thin layer between the engine (csrc/engine, no
 * Python) and the interpreter: the Loop type, the Handle and TimerHandle
 * types, and the module that holds them.  All state lives in the module
 * state or in the objects; nothing is global.
 */
#ifndef IOL_INTERNAL_H
#define IOL_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/types.h>

#include "../engine/iol.h"

/* What a handle does when it runs, and where its errors go. */
enum {
    /* callback(*args) in its context; errors to the exception handler. */
    IOL_KIND_ASYNCIO = 0,
    /* callback(*args, **kwargs); errors logged; awaitable results awaited. */
    IOL_KIND_TORNADO = 1,
    /* handler(fileobj, events): a Tornado fd handler; errors logged. */
    IOL_KIND_FD = 2,
};

typedef struct LoopObject LoopObject;
typedef struct iol_modstate iol_modstate;

/* Handles kept per freelist (each one under 100 bytes). */
#define IOL_HANDLE_FREELIST 256

typedef struct {
    PyObject_HEAD
    LoopObject *loop;
    PyObject *callback;
    /* The arguments: a lone positional argument without keywords is kept
     * in `arg` (most callbacks take one: a future, a fileobj), saving a
     * tuple per call; otherwise `args` is a tuple, or both are NULL. */
    PyObject *arg;
    PyObject *args;
    PyObject *kwargs;  /* dict, or NULL */
    PyObject *context; /* contextvars.Context, or NULL */
    PyObject *source_tb; /* asyncio debug mode's _source_traceback */
    PyObject *weakreflist;
    int kind;
    int cancelled;
} HandleObject;

typedef struct {
    HandleObject base;
    iol_timer timer;
    double when; /* as the user gave it, in loop.time() terms */
} TimerHandleObject;

/* One queued unit of work: a handle and, for fd handlers, the events. */
typedef struct {
    HandleObject *handle;
    int mask;
} iol_ready_item;

typedef struct {
    iol_ready_item *items;
    size_t head;
    size_t len;
    size_t cap; /* a power of two, or 0 */
} iol_ready;

/* What the loop knows about one fd.  A Tornado handler and asyncio
 * readers/writers are kept apart; the kernel sees the union. */
typedef struct {
    HandleObject *handler; /* Tornado add_handler, or NULL */
    HandleObject *reader;  /* asyncio add_reader, or NULL */
    HandleObject *writer;  /* asyncio add_writer, or NULL */
    int tmask;             /* Tornado interest, READ | WRITE | ERROR */
    int kmask;             /* what the backend watches: READ | WRITE */
} iol_fdslot;

typedef struct {
    uint64_t ticks;
    uint64_t callbacks;
    uint64_t fd_events;
    uint64_t timers_scheduled;
    uint64_t timers_cancelled;
    uint64_t timers_fired;
    int64_t wait_ns;
    int64_t run_ns;
    int64_t slowest_ticks; /* see iol_ticks() */
} iol_stats;

struct LoopObject {
    PyObject_HEAD
    PyObject *weakreflist;
    const iol_backend *backend;
    void *bstate;
    iol_waker waker;
    iol_heap timers;
    iol_ready ready;
    iol_fdslot *fds;
    int nfds; /* slots allocated in fds */
    int nwatched;
    iol_event *events;
    int maxevents;
    int64_t now; /* cached monotonic ns, refreshed after every wait */
    int running;
    int stopping;
    int closed;
    int initialized;
    int wall_clock; /* time() and call_at() in time.time() terms */
    int64_t wall_offset; /* wall minus monotonic ns, for wall deadlines */
    uint64_t wall_checked; /* stats.ticks + 1 when last checked; 0: never */
    volatile int polling;     /* in the kernel, the GIL released */
    volatile int wake_pending;
    unsigned long thread_id;
    pid_t pid;
    iol_stats stats;
    iol_modstate *st;        /* the module's state, looked up once */
    PyObject *slowest_repr;  /* repr of the slowest handle so far */
    int64_t slow_ticks;      /* report callbacks this slow; <0: off */
    int timing;              /* time each callback (one tick read each) */
};

struct iol_modstate {
    PyTypeObject *LoopType;
    PyTypeObject *HandleType;
    PyTypeObject *TimerHandleType;
    PyObject *str_report_handle;   /* "_report_handle_exception" */
    PyObject *str_report_callback; /* "_report_callback_exception" */
    PyObject *str_callback_result; /* "_handle_callback_result" */
    PyObject *str_total_seconds;
    PyObject *str_report_slow; /* "_report_slow_callback" */
    PyObject *str_close;
    /* Freed handles (exact HandleType and TimerHandleType), kept for
     * reuse as uvloop and CPython's own freelists do: a reused handle
     * costs no allocation and does not count towards the next garbage
     * collection.  Untracked, refcount zero, references cleared. */
    HandleObject *free_handles[IOL_HANDLE_FREELIST];
    int nfree_handles;
    HandleObject *free_timers[IOL_HANDLE_FREELIST];
    int nfree_timers;
};

/* Take the raised exception as one object (traceback attached), or NULL
 * if none is set; and put one back.  PyErr_GetRaisedException() does this
 * from Python 3.12 on. */
static inline PyObject *
iol_err_fetch(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

static inline void
iol_err_restore(PyObject *exc)
{
    if (exc == NULL) {
        return;
    }
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc,
                  PyException_GetTraceback(exc));
}

/* An int argument, or -1 with OverflowError / TypeError set. */
static inline int
iol_long_as_int(PyObject *obj)
{
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (v < INT_MIN || v > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "value out of range for int");
        return -1;
    }
    return (int)v;
}

/* module.c */
iol_modstate *iol_state_of_type(PyTypeObject *tp);

/* handle.c */
extern PyType_Spec iol_handle_spec;
extern PyType_Spec iol_timer_handle_spec;
void iol_handle_freelists_clear(iol_modstate *st);
HandleObject *iol_handle_new(PyTypeObject *tp, LoopObject *loop, int kind,
                             PyObject *callback, PyObject *const *argv,
                             Py_ssize_t argc, PyObject *kwargs,
                             PyObject *context);
void iol_handle_clear_refs(HandleObject *h);
void iol_handle_cancel(HandleObject *h);

/* TimerHandle is the only handle type of that size. */
static inline int
iol_is_timer(const HandleObject *h)
{
    return Py_TYPE(h)->tp_basicsize == (Py_ssize_t)sizeof(TimerHandleObject);
}
int iol_handle_run(HandleObject *h, int mask);

/* loop.c */
extern PyType_Spec iol_loop_spec;
int iol_ready_push(iol_ready *q, HandleObject *h, int mask);
int64_t iol_seconds_to_ns(double s);
int iol_loop_check_open(LoopObject *self);
void iol_loop_timer_cancel(LoopObject *self, TimerHandleObject *t);

/* loop_sched.c: scheduling methods of the Loop type. */
#define IOL_FASTCALL_KW(f) ((PyCFunction)(void (*)(void))(f))
PyObject *Loop_call_soon(LoopObject *, PyObject *const *, Py_ssize_t,
                         PyObject *);
PyObject *Loop_call_soon_threadsafe(LoopObject *, PyObject *const *,
                                    Py_ssize_t, PyObject *);
PyObject *Loop_call_later(LoopObject *, PyObject *const *, Py_ssize_t,
                          PyObject *);
PyObject *Loop_call_at(LoopObject *, PyObject *const *, Py_ssize_t,
                       PyObject *);
PyObject *Loop_tornado_call_later(LoopObject *, PyObject *const *,
                                  Py_ssize_t, PyObject *);
PyObject *Loop_tornado_call_at(LoopObject *, PyObject *const *, Py_ssize_t,
                               PyObject *);
PyObject *Loop_add_callback(LoopObject *, PyObject *const *, Py_ssize_t,
                            PyObject *);
PyObject *Loop_add_timeout(LoopObject *, PyObject *const *, Py_ssize_t,
                           PyObject *);
PyObject *Loop_tornado_call_at_wall(LoopObject *, PyObject *const *,
                                    Py_ssize_t, PyObject *);
PyObject *Loop_add_timeout_wall(LoopObject *, PyObject *const *, Py_ssize_t,
                                PyObject *);
PyObject *Loop_remove_timeout(LoopObject *, PyObject *);

/* loop_fd.c: fd methods of the Loop type. */
PyObject *Loop_add_handler(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *Loop_update_handler(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *Loop_remove_handler(LoopObject *, PyObject *);
PyObject *Loop_add_reader(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *Loop_add_writer(LoopObject *, PyObject *const *, Py_ssize_t);
PyObject *Loop_remove_reader(LoopObject *, PyObject *);
PyObject *Loop_remove_writer(LoopObject *, PyObject *);
PyObject *Loop_fd_info(LoopObject *, PyObject *);
PyObject *Loop_watched_fds(LoopObject *, PyObject *);

/* loop_fd.c, internal */
int iol_fd_dispatch(LoopObject *self, const iol_event *ev);
void iol_fd_clear_all(LoopObject *self, int close_fds);
int iol_fd_traverse(LoopObject *self, visitproc visit, void *arg);

#endif /* IOL_INTERNAL_H */
