/*
 * iol.h: the ioloop_c engine.  Plain C11, no Python.h.
 *
 * The engine owns what touches the kernel or needs no interpreter: the
 * backends that watch file descriptors, the timer heap, the waker that
 * interrupts a sleeping wait, and the clocks.  Every function returns 0
 * (or a count) on success and -1 with errno set on failure; nothing here
 * aborts or prints.  The binding layer turns errno into OSError once.
 */
#ifndef IOL_H
#define IOL_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"

/* Event bits: the values of Tornado's IOLoop.READ / WRITE / ERROR, so the
 * binding passes masks through untouched.  ERROR is HUP | ERR. */
#define IOL_READ 0x001
#define IOL_WRITE 0x004
#define IOL_ERR 0x008
#define IOL_HUP 0x010
#define IOL_ERROR (IOL_ERR | IOL_HUP)

/* A timeout meaning "wait until an event arrives". */
#define IOL_WAIT_FOREVER ((int64_t)-1)

/* One ready file descriptor, as every backend reports it.  A backend that
 * gets read and write readiness separately (kqueue) merges them, so each
 * fd appears at most once per wait. */
typedef struct iol_event {
    int fd;
    int mask;
} iol_event;

/*
 * A backend is a table of functions over an opaque state, chosen at run
 * time.  `set` moves an fd's interest from `oldmask` to `newmask` (both
 * subsets of IOL_READ | IOL_WRITE): oldmask 0 adds it, newmask 0 removes
 * it.  A failed `set` leaves the kernel's view as it was before the call.
 * `wait` blocks for at most timeout_ns (IOL_WAIT_FOREVER: no limit),
 * rounding the timeout up to its own resolution so that it never returns
 * before a deadline; it returns the number of events written, or -1 with
 * errno (EINTR included: the caller decides whether to retry).
 */
typedef struct iol_backend {
    const char *name;
    void *(*create)(void);
    void (*destroy)(void *state);
    int (*set)(void *state, int fd, int oldmask, int newmask);
    int (*wait)(void *state, int64_t timeout_ns, iol_event *events,
                int maxevents);
} iol_backend;

/* The backends compiled into this build, best first, NULL-terminated. */
extern const iol_backend *const iol_backends[];

/* Find a compiled backend by name; NULL if it is not in this build. */
const iol_backend *iol_backend_find(const char *name);

/* Backends, each in its own file; absent ones are NULL-free omissions. */
extern const iol_backend iol_backend_epoll;  /* Linux */
extern const iol_backend iol_backend_kqueue; /* BSD, macOS */
extern const iol_backend iol_backend_poll;   /* POSIX */
extern const iol_backend iol_backend_select; /* POSIX, fd < FD_SETSIZE */

/*
 * Timer heap: a binary min-heap of caller-owned timers ordered by
 * (when, seq).  Each timer records its own slot, so removal is O(log n).
 * `seq` is assigned at push from a counter, so equal deadlines come out in
 * the order they went in.  A timer not in the heap has index IOL_NO_INDEX.
 */
#define IOL_NO_INDEX ((size_t)-1)

typedef struct iol_timer {
    int64_t when; /* monotonic nanoseconds */
    uint64_t seq;
    size_t index;
} iol_timer;

/* One heap slot: the timer and a copy of its key, so that sifting
 * compares within the array and only writes through to the timers it
 * moves (their index). */
typedef struct iol_heap_slot {
    int64_t when;
    uint64_t seq;
    iol_timer *timer;
} iol_heap_slot;

typedef struct iol_heap {
    iol_heap_slot *items;
    size_t len;
    size_t cap;
    uint64_t next_seq;
} iol_heap;

void iol_heap_init(iol_heap *heap);
void iol_heap_free(iol_heap *heap); /* frees the array, not the timers */
/* Make room for one more push; -1 ENOMEM.  push after reserve cannot fail. */
int iol_heap_reserve(iol_heap *heap);
int iol_heap_push(iol_heap *heap, iol_timer *timer);
void iol_heap_remove(iol_heap *heap, iol_timer *timer);
static inline iol_timer *
iol_heap_peek(const iol_heap *heap)
{
    return heap->len ? heap->items[0].timer : NULL;
}
iol_timer *iol_heap_pop(iol_heap *heap);

/*
 * Waker: wakes a wait from another thread.  eventfd on Linux, a
 * non-blocking pipe elsewhere; both ends close-on-exec.  `rfd` is what the
 * loop watches for IOL_READ.  Signalling an already signalled waker is a
 * no-op success (EAGAIN means "already signalled").
 */
typedef struct iol_waker {
    int rfd;
    int wfd; /* equals rfd for eventfd */
} iol_waker;

int iol_waker_open(iol_waker *waker);
int iol_waker_signal(iol_waker *waker);
int iol_waker_drain(iol_waker *waker);
void iol_waker_close(iol_waker *waker);

/* Set close-on-exec and non-blocking on an fd the engine creates. */
int iol_fd_set_cloexec_nonblock(int fd);

/* For backends.  A timeout in nanoseconds as whole milliseconds: -1 for
 * no limit, rounded up so a wait never ends before its deadline, capped
 * at INT_MAX. */
int iol_timeout_ms(int64_t timeout_ns);
/* Grow an fd -> index map so that (*map)[fd] exists; new entries are -1.
 * -1 with ENOMEM leaves the map as it was. */
int iol_fdmap_reserve(int **map, int *len, int fd);

#endif /* IOL_H */
