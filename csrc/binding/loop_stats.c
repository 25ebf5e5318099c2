/*
 * loop_stats.c: seeing inside the loop.  The counters stats() reports,
 * the slowest callback, and the slow-callback detector.  Callbacks are
 * timed in ticks (see iol_ticks() in the engine), converted to seconds
 * only when reported.
 */
#include "internal.h"

/* A callback took `took` ticks: remember it if it is the slowest so far,
 * and report it if it crossed the threshold.  Rare, so Python calls are
 * fine; the reporter's own time is not charged to the next callback. */
static int
note_slow(LoopObject *self, PyObject *h, int64_t took)
{
    if (took > self->stats.slowest_ticks) {
        PyObject *r = iol_handle_describe(self->st, h);
        if (r == NULL) {
            PyErr_Clear();
        }
        else {
            self->stats.slowest_ticks = took;
            Py_XSETREF(self->slowest_repr, r);
        }
    }
    if (self->slow_ticks < 0 || took < self->slow_ticks) {
        return 0;
    }
    iol_modstate *st = self->st;
    PyObject *secs = PyFloat_FromDouble((double)iol_ticks_to_ns(took) / 1e9);
    PyObject *res = NULL;
    if (secs != NULL) {
        res = PyObject_CallMethodObjArgs((PyObject *)self, st->str_report_slow,
                                         h, secs, NULL);
        Py_DECREF(secs);
    }
    if (res == NULL) {
        if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
            PyErr_ExceptionMatches(PyExc_SystemExit)) {
            return -1;
        }
        PyErr_WriteUnraisable((PyObject *)self);
        return 0;
    }
    Py_DECREF(res);
    return 0;
}

/* Record how long `h` held the loop: the slowest so far, and a report when
 * over the threshold.  May be called with an exception set (the callback
 * raised KeyboardInterrupt or SystemExit): that exception is put aside
 * while the repr and the report run, since neither may run with one
 * pending, and it wins over any they raise.  Returns -1 with an exception
 * set, else 0. */
int
iol_loop_note_slow(LoopObject *self, PyObject *h, int64_t took)
{
    if (!PyErr_Occurred()) {
        return note_slow(self, h, took);
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (note_slow(self, h, took) < 0) {
        PyErr_Clear();
    }
    PyErr_Restore(type, value, tb);
    return -1;
}

PyObject *
Loop_stats(LoopObject *self, PyObject *Py_UNUSED(ignored))
{
    const iol_stats *s = &self->stats;
    return Py_BuildValue(
        "{sKsKsKsKsKsKsnsisdsdsdsOsO}", "ticks", (unsigned long long)s->ticks,
        "callbacks", (unsigned long long)s->callbacks, "fd_events",
        (unsigned long long)s->fd_events, "timers_scheduled",
        (unsigned long long)s->timers_scheduled, "timers_cancelled",
        (unsigned long long)s->timers_cancelled, "timers_fired",
        (unsigned long long)s->timers_fired, "timers_live",
        (Py_ssize_t)self->timers.len, "fds_watched", self->nwatched,
        "wait_seconds", (double)s->wait_ns / 1e9, "run_seconds",
        (double)s->run_ns / 1e9, "slowest_callback_seconds",
        (double)iol_ticks_to_ns(s->slowest_ticks) / 1e9, "slowest_callback",
        self->slowest_repr ? self->slowest_repr : Py_None, "callback_timing",
        self->timing ? Py_True : Py_False);
}

PyObject *
Loop_set_timing(LoopObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    self->timing = on;
    Py_RETURN_NONE;
}

PyObject *
Loop_set_slow_threshold(LoopObject *self, PyObject *arg)
{
    if (arg == Py_None) {
        self->slow_ticks = -1;
        Py_RETURN_NONE;
    }
    double secs = PyFloat_AsDouble(arg);
    if (secs == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!(secs >= 0.0)) {
        PyErr_SetString(PyExc_ValueError,
                        "threshold must be a non-negative number of seconds");
        return NULL;
    }
    self->slow_ticks = iol_ns_to_ticks(iol_seconds_to_ns(secs));
    self->timing = 1; /* the detector needs every callback timed */
    Py_RETURN_NONE;
}
