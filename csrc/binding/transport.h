/*
 * transport.h: the native stream transport (part of internal.h; include
 * that).  The type is made at import from asyncio's own
 * transports._FlowControlMixin, so that it is an asyncio.Transport to
 * everything that checks; ioloop_c/_transport.py subclasses it with the
 * parts that are not on the data path.
 */
#ifndef IOL_TRANSPORT_H
#define IOL_TRANSPORT_H

/* Make the type and the names it calls, into the module state.  Where
 * this Python's asyncio lays its transport classes out differently from
 * what the type builds on, the type is left NULL (asyncio's own Python
 * transport is then used) and 0 is returned. */
int iol_transport_type_init(PyObject *mod, iol_modstate *st);

/* Run a transport's fd events (READ / WRITE / ERROR bits) in the tick:
 * read and call the protocol, flush the write queue.  -1 only for an
 * exception that must leave the loop (SystemExit, KeyboardInterrupt);
 * every other error goes to the transport's fatal-error path. */
int iol_transport_event(PyObject *tr, int mask);

/* An exception that must leave the loop rather than be reported (and a
 * transport closed, or a connection dropped). */
static inline int
iol_is_exit(PyObject *exc)
{
    return PyErr_GivenExceptionMatches(exc, PyExc_SystemExit) ||
           PyErr_GivenExceptionMatches(exc, PyExc_KeyboardInterrupt);
}

/* A call that reports an error (to a transport's or a server's Python
 * half) raised in turn: -1 with it set again if it is one that leaves
 * the loop, else it is unraisable (for `where`) and 0. */
int iol_report_failed(PyObject *where);

/* What the shared life cycle (transport_life.c) asks of each kind of
 * native transport: its tick entry, its fd-table interest, its queue. */
typedef struct {
    iol_stream_fn event;                 /* the fd's events, in the tick */
    int (*want)(PyObject *tr, int mask); /* set the interest in the fd */
    void (*queue_clear)(PyObject *tr);   /* drop what is queued to send */
} iol_trops;

/* The life-cycle state the stream and the datagram transport share, a
 * member of each: attached to a loop, watching its fd, paused, closing,
 * connection_lost scheduled.  The transport functions below take the
 * transport object and this member of it. */
typedef struct {
    const iol_trops *ops;
    PyObject *loop;     /* a LoopObject; NULL once released */
    PyObject *sock;     /* the socket.socket; NULL once closed */
    PyObject *context;  /* entered around the fd's callbacks */
    int smask;          /* interest held in the loop's fd table */
    int conn_lost;      /* connection_lost scheduled (and later sends) */
    char closing, paused;
    char explicit_context; /* context given by asyncio: pass to call_soon */
} iol_trlife;

/* transport_life.c */
/* loop.call_soon(cb[, arg][, context=context]) through the loop's own
 * method, as the Python code calls it (context None: no keyword).  0, or
 * -1 with the error set. */
int iol_call_soon(iol_modstate *st, PyObject *loop, PyObject *cb,
                  PyObject *arg, PyObject *context);
int iol_trl_want(PyObject *tr, iol_trlife *lf, int fd, int want);
int iol_trl_start_reading(PyObject *tr, iol_trlife *lf);
int iol_trl_pause_reading(PyObject *tr, iol_trlife *lf);
int iol_trl_resume_reading(PyObject *tr, iol_trlife *lf);
int iol_trl_close(PyObject *tr, iol_trlife *lf, Py_ssize_t queued);
int iol_trl_force_close(PyObject *tr, iol_trlife *lf, PyObject *exc);
int iol_trl_drained(PyObject *tr, iol_trlife *lf);
PyObject *iol_trl_release(PyObject *tr, iol_trlife *lf, iol_modstate *st);
int iol_trl_report(PyObject *tr, const char *method, PyObject *exc,
                   const char *message);
int iol_trl_traverse(iol_trlife *lf, visitproc visit, void *arg);
void iol_trl_clear(iol_trlife *lf);

/* asyncio's _FlowControlMixin instances are an object header and these
 * many object slots (_extra; _loop, _protocol_paused, _high_water,
 * _low_water).  The type's own descriptors shadow all but _extra; the
 * slots are kept (and visited) so that the layout is the base's. */
#define IOL_TR_BASE_SLOTS 5

/* One queued piece of output: exact bytes, of which `off` are sent. */
typedef struct {
    PyObject *data;
    Py_ssize_t off;
} iol_wchunk;

typedef struct TransportObject {
    PyObject_HEAD
    PyObject *base_slots[IOL_TR_BASE_SLOTS];
    iol_modstate *st;
    iol_trlife life;
    PyObject *protocol;
    PyObject *empty_waiter; /* sendfile's "queue drained" future, or None */
    PyObject *server;   /* the asyncio.Server that accepted it, or None */
    iol_wchunk *wq;     /* the write queue: wq[whead .. whead + wlen) */
    Py_ssize_t whead, wlen, wcap;
    Py_ssize_t wsize;   /* bytes queued, not yet sent */
    Py_ssize_t high, low;
    int fd;
    /* The read step, picked when the protocol is set: exact bytes for a
     * Protocol, get_buffer() for a BufferedProtocol, tls.c's for
     * ioloop_c's SSLProtocol. */
    int (*read)(struct TransportObject *tr);
    int big_reads;      /* reads come large: recv into fresh bytes */
    int protocol_connected;
    int protocol_paused; /* pause_writing() called, resume not yet */
    int eof;
} TransportObject;

/* Whether asyncio's _FlowControlMixin (base) has the layout the native
 * transports mirror (transport.c). */
int iol_tr_base_layout_ok(PyTypeObject *base, PyObject *transports);

/* Hand the raised exception to tr._fatal_error(exc, message) (any
 * transport); -1 with it set for SystemExit / KeyboardInterrupt. */
int iol_transport_fatal(PyObject *tr, const char *message);

/* transport_write.c, for transport.c */
extern PyMethodDef iol_transport_write_methods[];
int iol_tr_want(TransportObject *tr, int want);
int iol_tr_flush(TransportObject *tr);
void iol_tr_queue_clear(TransportObject *tr);
int iol_tr_fatal(TransportObject *tr, const char *message);
/* write() of len bytes at buf (copied if they cannot go out at once),
 * for tls.c: 0, or -1 with the error set. */
int iol_tr_write_buf(TransportObject *tr, const char *buf, Py_ssize_t len);

/* server.c: the native accept loop.  Make the Listener type (and what
 * it needs from the socket module) into the module state. */
int iol_listener_type_init(PyObject *mod, iol_modstate *st);

/* Accept from a listener's socket in the tick (see iol_transport_event
 * for the return value). */
int iol_listener_event(PyObject *ls, int mask);
/* _native_init() for C callers: attach the transport to the loop, the
 * socket, the protocol and the context (None: a copy of the current
 * one).  0, or -1 with an exception set. */
int iol_transport_native_init(TransportObject *tr, PyObject *loop,
                              PyObject *sock, PyObject *protocol,
                              PyObject *context);

/* transport_accept.c: the transport of an accepted connection made in
 * C, as SocketTransport.__init__ would make it; NULL without an
 * exception where that class (or its __init__) is not the configured
 * one, and the caller calls the class instead. */
PyObject *iol_transport_accepted(iol_modstate *st, PyObject *loop,
                                 PyObject *sock, PyObject *protocol,
                                 PyObject *extra, PyObject *server,
                                 PyObject *context, PyObject *cls);
PyObject *iol_accept_configure(PyObject *mod, PyObject *args);
void iol_accept_clear(iol_modstate *st);
int iol_accept_traverse(iol_modstate *st, visitproc visit, void *arg);

/* The most a stream read takes at once (transport.c says why). */
#define IOL_READ_SIZE (128 * 1024 - 256)

/* transport.c's read steps, for tls.c and transport_stream.c */
int iol_tr_read_data(TransportObject *tr);
int iol_tr_read_buffered(TransportObject *tr);
int iol_tr_read_error(TransportObject *tr);
int iol_tr_on_eof(TransportObject *tr);

/* transport_stream.c: asyncio's StreamReaderProtocol and StreamReader
 * read step in C, while the classes are the registered ones. */
PyObject *iol_streams_configure(PyObject *mod, PyObject *args);
void iol_streams_clear(iol_modstate *st);
int iol_streams_traverse(iol_modstate *st, visitproc visit, void *arg);
/* Whether the protocol is of the registered StreamReaderProtocol. */
int iol_streams_protocol(iol_modstate *st, PyObject *protocol);
int iol_tr_read_stream(TransportObject *tr);

#endif /* IOL_TRANSPORT_H */
