/*
 * handle.h: Handle and TimerHandle, the units of work (part of
 * internal.h; include that).
 */
#ifndef IOL_HANDLE_H
#define IOL_HANDLE_H

/* What a handle does when it runs, and where its errors go. */
enum {
    /* callback(*args) in its context; errors to the exception handler. */
    IOL_KIND_ASYNCIO = 0,
    /* callback(*args, **kwargs); errors logged; awaitable results awaited. */
    IOL_KIND_TORNADO = 1,
    /* handler(fileobj, events): a Tornado fd handler; errors logged. */
    IOL_KIND_FD = 2,
};

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
    PyObject *repr;      /* debug mode: the repr kept when cancelled */
    PyObject *weakreflist;
    int kind;
    int cancelled;
} HandleObject;

typedef struct {
    HandleObject base;
    iol_timer timer;
    double when; /* as the user gave it, in loop.time() terms */
} TimerHandleObject;

/* handle.c */
extern PyType_Spec iol_handle_spec;
extern PyType_Spec iol_timer_handle_spec;
void iol_handle_freelists_clear(iol_modstate *st);
HandleObject *iol_handle_new(PyTypeObject *tp, LoopObject *loop, int kind,
                             PyObject *callback, PyObject *const *argv,
                             Py_ssize_t argc, PyObject *kwargs,
                             PyObject *context);
int iol_handle_traverse(HandleObject *h, visitproc visit, void *arg);
void iol_handle_clear_refs(HandleObject *h);
void iol_handle_cancel(HandleObject *h);
PyObject *iol_handle_repr_configure(PyObject *mod, PyObject *args);
PyObject *iol_handle_describe(iol_modstate *st, PyObject *obj);

/* TimerHandle is the only handle type of that size. */
static inline int
iol_is_timer(const HandleObject *h)
{
    return Py_TYPE(h)->tp_basicsize == (Py_ssize_t)sizeof(TimerHandleObject);
}
int iol_handle_run(HandleObject *h, int mask);

#endif /* IOL_HANDLE_H */
