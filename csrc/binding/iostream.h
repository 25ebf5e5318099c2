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
    /* The read buffer: unread bytes are rbuf[rpos .. rpos + rlen). */
    char *rbuf;
    Py_ssize_t rpos, rlen, rcap;
    Py_ssize_t exports; /* memoryviews over the unread bytes */
    /* A delimiter search that failed need not look at the same bytes
     * again: the next one for `fdelim` starts at `fscan`. */
    PyObject *fdelim;
    Py_ssize_t fscan;
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
} IOStreamCoreObject;

/* Make the type into the module state. */
int iol_iostream_type_init(PyObject *mod, iol_modstate *st);

#endif /* IOL_IOSTREAM_H */
