/*
 * iostream.h: the native core of Tornado's IOStream face (part of
 * internal.h; include that).  ioloop_c/_iostream.py subclasses both
 * tornado.iostream.IOStream and this type: the read buffer, the write
 * queue and the socket calls are here, Tornado's control flow is there.
 */
#ifndef IOL_IOSTREAM_H
#define IOL_IOSTREAM_H

/* One queued piece of output: an exact bytes object, or a memoryview
 * over a large buffer the caller gave (kept, not copied, as Tornado's own
 * write buffer keeps it); `off` bytes of it are sent. */
typedef struct {
    PyObject *obj;
    const char *ptr;
    Py_ssize_t len;
    Py_ssize_t off;
} iol_schunk;

typedef struct {
    PyObject_HEAD
    iol_modstate *st;
    /* The read buffer: unread bytes are rbuf[rpos .. rpos + rlen), in
     * the bytes object rblock (rbuf is its data). */
    PyObject *rblock;
    char *rbuf;
    Py_ssize_t rpos, rlen, rcap;
    Py_ssize_t exports; /* memoryviews over the unread bytes */
    /* A delimiter search that failed need not look at the same bytes
     * again: the next one for `fdelim` starts at `fscan`. */
    PyObject *fdelim;
    Py_ssize_t fscan;
    Py_ssize_t hscan; /* the same for the end of an HTTP header block */
    /* read_into(): reads go into the caller's buffer, ufill bytes so far */
    int user;
    PyObject *uobj;
    Py_ssize_t ufill;
    /* The write queue: wq[whead .. whead + wlen), wsize bytes unsent. */
    iol_schunk *wq;
    Py_ssize_t whead, wlen, wcap;
    Py_ssize_t wsize;
    long long wdone; /* bytes ever sent: Tornado's _total_write_done_index */
    int fd;
    int native_recv; /* read_from_fd() is Tornado's own: recv() here */
    /* BaseIOStream's instance attributes that the event path reads, kept
     * here (member descriptors) instead of in the instance dict. */
    PyObject *read_future, *read_bytes, *read_delimiter, *read_regex;
    PyObject *read_max_bytes, *read_partial, *read_until_close;
    PyObject *closed, *connecting, *state, *close_callback;
    PyObject *write_futures, *io_loop, *socket;
    PyObject *max_buffer_size, *read_chunk_size, *max_write_buffer_size;
    long long total_write_index; /* Tornado's _total_write_index */
} IOStreamCoreObject;

/* The names the event path calls (module state ios_str[]). */
enum {
    IOL_IOS_S_CANCELLED,
    IOL_IOS_S_SET_RESULT,
    IOL_IOS_S_POPLEFT,
    IOL_IOS_S_UPDATE_HANDLER,
    IOL_IOS_S_RECV_FAILED,
    IOL_IOS_S_BUFFER_FULL,
    IOL_IOS_S_READ_FAILED,
    IOL_IOS_S_WRITE_FAILED,
    IOL_IOS_S_EVENT_FAILED,
    IOL_IOS_S_ERROR_EVENT,
    IOL_IOS_S_FIND_REGEX,
    IOL_IOS_S_CHECK_MAX,
    IOL_IOS_S_READ_TO_BUFFER,
    IOL_IOS_S_CLOSE,
    IOL_IOS_S_CHECK_CLOSED,
    IOL_IOS_S_WRITE_FULL,
    IOL_IOS_S_ADD_DONE_CALLBACK,
    IOL_IOS_S_APPEND,
    IOL_IOS_S_REMOVE_DONE_CALLBACK,
    IOL_IOS_S_FILENO,
    IOL_IOS_S_IS_CONNRESET,
    IOL_IOS_S_MAYBE_ADD_ERROR_LISTENER,
    IOL_IOS_NSTR
};

/* Make the type into the module state. */
int iol_iostream_type_init(PyObject *mod, iol_modstate *st);

/* iostream_buf.c: the read buffer */
#define IOL_IOS_GOT_EXC (-2)
int iol_ios_check_exports(IOStreamCoreObject *s);
int iol_ios_reserve(IOStreamCoreObject *s, Py_ssize_t want);
void iol_ios_rbuf_free(IOStreamCoreObject *s);
void iol_ios_drop(IOStreamCoreObject *s, Py_ssize_t n);
ssize_t iol_ios_recv(IOStreamCoreObject *s, Py_ssize_t size);
Py_ssize_t iol_ios_find_delim(IOStreamCoreObject *s, PyObject *delim);
Py_ssize_t iol_ios_find_blank_line(IOStreamCoreObject *s);
PyObject *iol_ios_take(IOStreamCoreObject *s, Py_ssize_t n);
void iol_ios_user_end(IOStreamCoreObject *s);

/* iostream_event.c */
extern PyMethodDef iol_ios_event_methods[];
int iol_ios_event_init(PyObject *mod, iol_modstate *st);
PyObject *iol_ios_configure(PyObject *mod, PyObject *args);
PyObject *iol_ios_name(IOStreamCoreObject *s, int which);
PyObject *iol_ios_done(int rc);
int iol_ios_is_closed(IOStreamCoreObject *s);
int iol_ios_hand_exception(IOStreamCoreObject *s, int which);
/* future.cancelled(): 1, 0, or -1 with the error set. */
int iol_ios_cancelled(IOStreamCoreObject *s, PyObject *future);
int iol_ios_set_result(IOStreamCoreObject *s, PyObject *future,
                       PyObject *value);
int iol_ios_add_io_state(IOStreamCoreObject *s, long state);
int iol_ios_maybe_add_error_listener(IOStreamCoreObject *s);

/* iostream_write.c */
int iol_ios_flush(IOStreamCoreObject *s);
extern PyMethodDef iol_ios_write_methods[];
extern PyGetSetDef iol_ios_write_getset[];
void iol_ios_queue_clear(IOStreamCoreObject *s);
int iol_ios_handle_write(IOStreamCoreObject *s);

#endif /* IOL_IOSTREAM_H */
