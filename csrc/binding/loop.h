/*
 * loop.h: the Loop object and the functions its files share (part of
 * internal.h; include that).
 */
#ifndef IOL_LOOP_H
#define IOL_LOOP_H

/* What the tick calls for an fd owned natively (a stream or datagram
 * transport, a listener): the owner, and the fd's READ / WRITE / ERROR
 * bits.  -1 only for an exception that must leave the loop. */
typedef int (*iol_stream_fn)(PyObject *owner, int mask);

/* One queued unit of work: a handle and, for fd handlers, the events;
 * or, with `fn` set, a native owner of an fd and its events (no handle
 * is made for those).  `fn` is the owner's own entry point, given when
 * it registered, so the tick makes one call and no type checks. */
typedef struct {
    PyObject *obj;
    iol_stream_fn fn;
    int mask;
} iol_ready_item;

typedef struct {
    iol_ready_item *items;
    size_t head;
    size_t len;
    size_t cap; /* a power of two, or 0 */
} iol_ready;

/* What the loop knows about one fd.  A Tornado handler, asyncio
 * readers/writers and a native transport are kept apart; the kernel sees
 * the union. */
typedef struct {
    HandleObject *handler; /* Tornado add_handler, or NULL */
    HandleObject *reader;  /* asyncio add_reader, or NULL */
    HandleObject *writer;  /* asyncio add_writer, or NULL */
    PyObject *stream;      /* a transport or listener, or NULL */
    iol_stream_fn on_event; /* what the tick runs for `stream` */
    int tmask;             /* Tornado interest, READ | WRITE | ERROR */
    int smask;             /* the transport's interest, READ | WRITE */
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
    /* The newest call_soon() handle in the ready queue, still tracked
     * because its caller may hold it; see loop_settle_held(). */
    HandleObject *held;
    PyObject *debug;   /* asyncio's _debug, a member: get_debug() in C */
    PyObject *futures; /* asyncio.futures, imported by create_future() */
    PyObject *kw_loop; /* ("loop",): create_future()'s keyword names */
    PyObject *str_future; /* "Future" */
    PyObject *c_future; /* _asyncio.Future, or NULL where there is none */
    PyObject *kw_dict; /* {"loop": self}: create_future()'s keywords */
    PyObject *tasks;   /* asyncio.tasks, imported by create_task() */
    PyObject *base_create_task; /* BaseEventLoop.create_task */
    /* Datagram and stream transports read into this (IOL_READ_BUF_SIZE
     * bytes, made at the first read; iol_loop_read_buf()) and copy what
     * came out at its size before any Python runs. */
    char *read_buf;
};

/* loop.c */
extern PyType_Spec iol_loop_spec;
int iol_loop_check_open(LoopObject *self);

/* loop_tick.c: the ready queue, the timers' heap and the tick. */
int iol_ready_push(iol_ready *q, HandleObject *h, int mask);
int iol_ready_push_owner(iol_ready *q, PyObject *owner, iol_stream_fn fn,
                         int mask);
int iol_loop_push_soon(LoopObject *self, HandleObject *h);
int64_t iol_seconds_to_ns(double s);
/* The loop's read buffer (see LoopObject.read_buf); NULL with
 * MemoryError set if it cannot be made. */
#define IOL_READ_BUF_SIZE (256 * 1024)
char *iol_loop_read_buf(LoopObject *self);
void iol_loop_timer_cancel(LoopObject *self, TimerHandleObject *t);
int iol_loop_tick(LoopObject *self);
void iol_loop_drop_work(LoopObject *self);
int iol_loop_traverse_work(LoopObject *self, visitproc visit, void *arg);

/* loop_stats.c, loop_sched.c */
int iol_loop_note_slow(LoopObject *self, PyObject *h, int64_t took);
int iol_is_coroutine_like(PyObject *cb);

/* loop_fd.c, internal */
int iol_fd_dispatch(LoopObject *self, const iol_event *ev);
void iol_fd_clear_all(LoopObject *self, int close_fds);
int iol_fd_traverse(LoopObject *self, visitproc visit, void *arg);
int iol_fd_stream_set(LoopObject *self, int fd, PyObject *owner,
                      iol_stream_fn on_event, int want);

#endif /* IOL_LOOP_H */
