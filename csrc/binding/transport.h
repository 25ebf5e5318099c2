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

typedef struct {
    PyObject_HEAD
    PyObject *base_slots[IOL_TR_BASE_SLOTS];
    iol_modstate *st;
    PyObject *loop;     /* a LoopObject; NULL once connection_lost ran */
    PyObject *sock;     /* the socket.socket; NULL once closed */
    PyObject *protocol;
    PyObject *context;  /* entered around the fd's callbacks */
    PyObject *empty_waiter; /* sendfile's "queue drained" future, or None */
    PyObject *server;   /* the asyncio.Server that accepted it, or None */
    iol_wchunk *wq;     /* the write queue: wq[whead .. whead + wlen) */
    Py_ssize_t whead, wlen, wcap;
    Py_ssize_t wsize;   /* bytes queued, not yet sent */
    Py_ssize_t high, low;
    int fd;
    int smask;          /* interest held in the loop's fd table */
    int explicit_context; /* context given by asyncio: pass to call_soon */
    int buffered;       /* the protocol is a BufferedProtocol */
    int tls;            /* the protocol is ioloop_c's SSLProtocol (tls.c) */
    int protocol_connected;
    int protocol_paused; /* pause_writing() called, resume not yet */
    int closing, paused, eof, conn_lost;
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
int iol_tr_call_soon_lost(TransportObject *tr, PyObject *exc);

/* server.c: the native accept loop.  Make the Listener type (and what
 * it needs from the socket module) into the module state. */
int iol_listener_type_init(PyObject *mod, iol_modstate *st);

/* Accept from a listener's socket in the tick (see iol_transport_event
 * for the return value). */
int iol_listener_event(PyObject *ls, int mask);
/* transport.c's read steps, for tls.c */
int iol_tr_read_buffered(TransportObject *tr);
int iol_tr_read_error(TransportObject *tr);
int iol_tr_on_eof(TransportObject *tr);

#endif /* IOL_TRANSPORT_H */
