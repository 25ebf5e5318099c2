/*
 * internal.h: types shared by the binding's files.
 *
 * The binding is the thin layer between the engine (csrc/engine, no
 * Python) and the interpreter: the Loop type, the Handle and TimerHandle
 * types, and the module that holds them.  All state lives in the module
 * state or in the objects; nothing is global.
 *
 * Every binding file includes this header only; it pulls in handle.h
 * (the handle types), loop.h (the Loop type and its files' internals),
 * loop_methods.h (its methods defined outside loop.c) and the native
 * transports' headers.
 */
#ifndef IOL_INTERNAL_H
#define IOL_INTERNAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/types.h>

#include "../engine/iol.h"

typedef struct LoopObject LoopObject;
typedef struct iol_modstate iol_modstate;

#include "handle.h"
#include "loop.h"
#include "loop_methods.h"
#include "transport.h"
#include "datagram.h"
#include "tls.h"
#include "iostream.h"

/* transport_accept.c's names, in iol_modstate.acc_str. */
enum {
    IOL_ACC_EXTRA,
    IOL_ACC_SERVER,
    IOL_ACC_ATTACH,
    IOL_ACC_TRANSPORTS,
    IOL_ACC_CONNECTION_MADE,
    IOL_ACC_START_READING,
    IOL_ACC_INIT,
    IOL_ACC_ABANDON,
    IOL_ACC_NSTR
};

/* transport_stream.c's names, in iol_modstate.sr_str; the first
 * IOL_SR_NFUNC are the functions registered in sr_func. */
enum {
    IOL_SR_DATA_RECEIVED,   /* StreamReaderProtocol's */
    IOL_SR_STREAM_READER,
    IOL_SR_FEED_DATA,       /* StreamReader's */
    IOL_SR_WAKEUP_WAITER,
    IOL_SR_NFUNC,
    IOL_SR_READER_WR = IOL_SR_NFUNC,
    IOL_SR_EOF,
    IOL_SR_BUFFER,
    IOL_SR_LIMIT,
    IOL_SR_WAITER,
    IOL_SR_CANCELLED,
    IOL_SR_NSTR
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
    /* transport.c: the native transport type (NULL where asyncio's
     * transport classes do not have the layout it builds on), and what
     * it calls by name. */
    PyTypeObject *TransportType;
    PyObject *BufferedProtocol;
    PyObject *str_data_received;
    PyObject *str_get_buffer;
    PyObject *str_buffer_updated;
    PyObject *str_eof_received;
    PyObject *str_pause_writing;
    PyObject *str_resume_writing;
    PyObject *str_call_soon;
    PyObject *kw_context; /* ("context",): call_soon()'s keyword names */
    PyObject *str_call_connection_lost;
    PyObject *str_peername;
    PyObject *str_set_result;
    PyObject *str_set_exception;
    PyObject *str_task_factory; /* "_task_factory" */
    PyObject *str_Task;
    /* datagram.c: the native datagram transport type, or NULL. */
    PyTypeObject *DatagramType;
    PyObject *str_datagram_received;
    PyObject *str_error_received;
    /* server.c: the accept loop's type, socket.socket, ("fileno",) and
     * SOCK_NONBLOCK (0 where the platform has none). */
    PyTypeObject *ListenerType;
    PyObject *socket_class;
    PyObject *kw_fileno;
    int sock_nonblock;
    /* transport_accept.c: what _accept_configure() registered (the
     * transport class, its __init__, the TransportTable type, whether
     * Server._attach takes the transport), the names. */
    PyObject *acc_class;
    PyObject *acc_init;
    PyObject *acc_table_type;
    int acc_takes_transport;
    PyObject *acc_str[IOL_ACC_NSTR];
    /* transport_stream.c: what _streams_configure() registered (asyncio's
     * StreamReaderProtocol and StreamReader, their functions), names. */
    PyObject *sr_protocol;
    PyObject *sr_reader;
    PyObject *sr_func[IOL_SR_NFUNC];
    PyObject *sr_str[IOL_SR_NSTR];
    /* tls.c: the TLSWrite mixin, what ioloop_c/_tls.py registers
     * (its SSLProtocol subclass, the WRAPPED state, ssl.SSLObject, the
     * (SSLWantReadError, SSLSyscallError) pair) and the names used. */
    PyTypeObject *TLSWriteType;
    PyTypeObject *TLSStateType;
    PyObject *tls_protocol_type;
    PyObject *tls_wrapped;
    PyObject *tls_sslobject_type;
    PyObject *tls_again;
    PyObject *tls_bio_type;     /* ssl.MemoryBIO */
    PyObject *tls_sslsock_type; /* _ssl._SSLSocket */
    PyObject *tls_context_type; /* _ssl._SSLContext */
    int tls_direct;             /* tls_ossl.c's calls are on */
    PyObject *tls_raw_type;     /* a native transport subclass, checked */
    PyObject *tls_desc[IOL_TD_N];
    PyObject *tls_empty;
    PyObject *tls_names[IOL_TLS_NNAMES];
    /* iostream.c: the core of the Tornado IOStream face. */
    PyTypeObject *IOStreamCoreType;
    PyObject *ios_str[IOL_IOS_NSTR];
    PyObject *ios_class;         /* the class on the C event path */
    PyObject *ios_handle_events; /* BaseIOStream._handle_events */
    PyObject *ios_add_io_state;  /* BaseIOStream._add_io_state */
    PyObject *ios_header_regex;  /* Tornado's compiled header regex */
    PyObject *ios_future;        /* tornado.concurrent.Future */
    PyObject *ios_retrieve;      /* marks a write future's error seen */
    PyObject *ios_socket_type;   /* socket.socket */
    PyObject *ios_family;        /* _socket.socket's `family` member */
    PyObject *ios_set_nodelay;   /* tornado.iostream.IOStream.set_nodelay */
    /* handle.c: asyncio's Handle.__repr__ and the name its reports give
     * a handle (a task step by its task), both in _compat.py. */
    PyObject *handle_repr;
    PyObject *handle_describe;
    /* Freed handles (exact HandleType and TimerHandleType), kept for
     * reuse as uvloop and CPython's own freelists do: a reused handle
     * costs no allocation and does not count towards the next garbage
     * collection.  Untracked, refcount zero, references cleared. */
    HandleObject *free_handles[IOL_HANDLE_FREELIST];
    int nfree_handles;
    HandleObject *free_timers[IOL_HANDLE_FREELIST];
    int nfree_timers;
};

/* out[i] = the interned names[i], for i < n: 0, or -1 with the error
 * set and out[] all NULL (module.c). */
int iol_intern_names(const char *const *names, PyObject **out, int n);

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

/* sockaddr.c: the Python form of an AF_INET or AF_INET6 address, as the
 * socket module makes it ((host, port), or (host, port, flowinfo,
 * scope_id)).  NULL without an exception for another family, a short
 * length or a host the text of which cannot be had; NULL with one if
 * Python fails. */
struct sockaddr;
PyObject *iol_inet_addr_to_python(const struct sockaddr *sa,
                                  socklen_t salen);

#endif /* IOL_INTERNAL_H */
