/*
 * transport_life.c: the life cycle the stream transport (transport.c)
 * and the datagram transport (datagram.c) share.
 *
 * Both follow asyncio's selector transports: interest in the fd is held
 * in the loop's fd table; pause_reading() drops the READ interest and
 * resume_reading() takes it back; close() stops reading and, once the
 * queue is sent, schedules connection_lost(None); abort() drops the
 * queue and schedules connection_lost(None) at once; the fatal-error
 * path force-closes with the exception.  What differs between the two
 * (the queue, the fd's owner entry) comes through the transport's
 * iol_trops; the state is the iol_trlife member of each object.
 */
#include "internal.h"

int
iol_trl_want(PyObject *tr, iol_trlife *lf, int fd, int want)
{
    if (want == lf->smask) {
        return 0;
    }
    if (lf->loop != NULL &&
        iol_fd_stream_set((LoopObject *)lf->loop, fd, tr, lf->ops->event,
                          want) < 0) {
        return -1;
    }
    lf->smask = want;
    return 0;
}

static int
is_reading(iol_trlife *lf)
{
    return !lf->closing && !lf->paused;
}

int
iol_trl_start_reading(PyObject *tr, iol_trlife *lf)
{
    if (is_reading(lf)) {
        return lf->ops->want(tr, lf->smask | IOL_READ);
    }
    return 0;
}

int
iol_trl_pause_reading(PyObject *tr, iol_trlife *lf)
{
    if (is_reading(lf)) {
        lf->paused = 1;
        return lf->ops->want(tr, lf->smask & ~IOL_READ);
    }
    return 0;
}

int
iol_trl_resume_reading(PyObject *tr, iol_trlife *lf)
{
    if (lf->closing || !lf->paused) {
        return 0;
    }
    lf->paused = 0;
    return iol_trl_start_reading(tr, lf);
}

int
iol_call_soon(iol_modstate *st, PyObject *loop, PyObject *cb, PyObject *arg,
              PyObject *context)
{
    PyObject *argv[4] = {loop, cb, NULL, NULL};
    size_t n = 2;
    if (arg != NULL) {
        argv[n++] = arg;
    }
    PyObject *kw = NULL;
    if (context != Py_None) {
        argv[n] = context;
        kw = st->kw_context;
    }
    PyObject *res = PyObject_VectorcallMethod(st->str_call_soon, argv, n, kw);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

/* loop.call_soon(tr._call_connection_lost, exc[, context=...]): the
 * context only where asyncio gave the transport one. */
static int
call_soon_lost(PyObject *tr, iol_trlife *lf, PyObject *exc)
{
    if (lf->loop == NULL) {
        return 0;
    }
    iol_modstate *st = ((LoopObject *)lf->loop)->st;
    PyObject *cb = PyObject_GetAttr(tr, st->str_call_connection_lost);
    if (cb == NULL) {
        return -1;
    }
    PyObject *loop = Py_NewRef(lf->loop);
    int rc = iol_call_soon(st, loop, cb, exc,
                           lf->explicit_context ? lf->context : Py_None);
    Py_DECREF(loop);
    Py_DECREF(cb);
    return rc;
}

/* close(): stop reading; with nothing queued (`queued` is the queue's
 * length), connection_lost(None) is scheduled now, else once the queue
 * is sent (iol_trl_drained()). */
int
iol_trl_close(PyObject *tr, iol_trlife *lf, Py_ssize_t queued)
{
    if (lf->closing) {
        return 0;
    }
    lf->closing = 1;
    if (lf->ops->want(tr, lf->smask & ~IOL_READ) < 0) {
        return -1;
    }
    if (queued == 0) {
        lf->conn_lost++;
        if (lf->ops->want(tr, 0) < 0) {
            return -1;
        }
        return call_soon_lost(tr, lf, Py_None);
    }
    return 0;
}

/* _force_close(exc), and abort() with None: drop the queue, stop at
 * once, connection_lost(exc) soon after. */
int
iol_trl_force_close(PyObject *tr, iol_trlife *lf, PyObject *exc)
{
    if (lf->conn_lost) {
        return 0;
    }
    lf->ops->queue_clear(tr);
    lf->closing = 1;
    lf->conn_lost++;
    if (lf->ops->want(tr, 0) < 0) {
        return -1;
    }
    return call_soon_lost(tr, lf, exc);
}

/* The queue was sent out: a close() that waited for it ends here, with
 * connection_lost(None) called at once, as asyncio's write path does.
 * 1 if it did, 0 if no close was waiting, -1 with an exception set. */
int
iol_trl_drained(PyObject *tr, iol_trlife *lf)
{
    if (!lf->closing || lf->conn_lost) {
        return 0;
    }
    lf->conn_lost++;
    PyObject *res = lf->loop != NULL
        ? PyObject_CallMethodOneArg(
              tr, ((LoopObject *)lf->loop)->st->str_call_connection_lost,
              Py_None)
        : PyObject_CallMethod(tr, "_call_connection_lost", "O", Py_None);
    Py_XDECREF(res);
    return res == NULL ? -1 : 1;
}

/* _release(), once connection_lost ran: leave the loop's fd table, drop
 * the queue, and close the socket; returns what its close() returned.
 * The caller then drops the protocol and the loop. */
PyObject *
iol_trl_release(PyObject *tr, iol_trlife *lf, iol_modstate *st)
{
    (void)lf->ops->want(tr, 0);
    lf->ops->queue_clear(tr);
    PyObject *sock = lf->sock;
    lf->sock = NULL;
    if (sock == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *res = PyObject_CallMethodNoArgs(sock, st->str_close);
    Py_DECREF(sock);
    return res;
}

/* Hand `exc` to tr.<method>(exc, message) (_fatal_error,
 * _report_protocol_error), which reports it as asyncio does.  -1 (an
 * exception set) for SystemExit / KeyboardInterrupt, in `exc` or raised
 * by the report, which leave the loop; any other failure of the report
 * is unraisable. */
int
iol_trl_report(PyObject *tr, const char *method, PyObject *exc,
               const char *message)
{
    if (iol_is_exit(exc)) {
        iol_err_restore(Py_NewRef(exc));
        return -1;
    }
    PyObject *res = PyObject_CallMethod(tr, method, "Os", exc, message);
    if (res == NULL) {
        return iol_report_failed(tr);
    }
    Py_DECREF(res);
    return 0;
}

int
iol_report_failed(PyObject *where)
{
    PyObject *err = iol_err_fetch();
    if (err != NULL && iol_is_exit(err)) {
        iol_err_restore(err);
        return -1;
    }
    iol_err_restore(err);
    PyErr_WriteUnraisable(where);
    return 0;
}

int
iol_trl_traverse(iol_trlife *lf, visitproc visit, void *arg)
{
    Py_VISIT(lf->loop);
    Py_VISIT(lf->sock);
    Py_VISIT(lf->context);
    return 0;
}

void
iol_trl_clear(iol_trlife *lf)
{
    Py_CLEAR(lf->loop);
    Py_CLEAR(lf->sock);
    Py_CLEAR(lf->context);
}
