/*
 * kqueue.c: the BSD and macOS backend.  It compiles to nothing elsewhere,
 * so this project's Linux CI never runs it: change it with care.
 *
 * Quirks:
 * - Read and write interest are separate filters (EVFILT_READ and
 *   EVFILT_WRITE), registered and reported separately.  wait() merges the
 *   two kevents of one fd into one event, as Redis's ae_kqueue.c does, so
 *   dispatch never depends on the backend.
 * - close() removes an fd's filters from every kqueue by itself, so a
 *   reused fd number starts clean, and a later EV_DELETE fails with
 *   ENOENT or EBADF, which only means the filter is gone already.  That
 *   also means the caller's `oldmask` may be stale: set() therefore adds
 *   every filter in `newmask` (EV_ADD on a live filter just updates it)
 *   rather than trusting `oldmask` to say which already exist.
 * - kevent() applies a change list in order and stops at the first
 *   failure, so a failed set() deletes the filters it had just added.
 * - EV_EOF marks a hang-up: reported as IOL_HUP, beside READ or WRITE.
 *   The read filter sets it as soon as the peer shuts down its writing
 *   side, so a half-closed socket reports IOL_HUP here where epoll and
 *   poll report only IOL_READ.  EV_ERROR is reported as IOL_ERR.
 * - The kernel's per-filter user data is left unused (zero): a pointer
 *   there would dangle once the caller forgets the fd.  Events are keyed
 *   by fd alone.
 * - Regular files are accepted; unlike poll, the read filter reports one
 *   readable only while its offset is short of the end.
 * - The timeout is a timespec, exact to the nanosecond; capped at 10^8
 *   seconds, as select's is, to stay within every system's limit.
 * - A kqueue is not inherited across fork(): a child makes its own loop.
 *   kqueue() takes no flags on macOS, so close-on-exec is set just after.
 */
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) ||    \
    defined(__NetBSD__) || defined(__DragonFly__)

#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#define KQUEUE_MAX_SECONDS 100000000

typedef struct {
    int kq;
    int cap;               /* length of `events` */
    struct kevent *events; /* what kevent() fills in */
    int *slot; /* fd -> its merged event during a wait, else -1 */
    int nslot; /* slot covers fds [0 .. nslot) */
} kqueue_state;

static void *
kqueue_create_state(void)
{
    kqueue_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    st->kq = kqueue();
    if (st->kq == -1 || fcntl(st->kq, F_SETFD, FD_CLOEXEC) == -1) {
        int saved = errno;
        if (st->kq != -1) {
            close(st->kq);
        }
        free(st);
        errno = saved;
        return NULL;
    }
    return st;
}

static void
kqueue_destroy_state(void *state)
{
    kqueue_state *st = state;
    close(st->kq);
    free(st->events);
    free(st->slot);
    free(st);
}

/* Delete the filters in `mask`, each on its own so one already gone does
 * not stop the other.  ENOENT and EBADF mean "gone already". */
static int
kqueue_delete(kqueue_state *st, int fd, int mask)
{
    static const struct {
        int bit;
        short filter;
    } filters[] = {{IOL_READ, EVFILT_READ}, {IOL_WRITE, EVFILT_WRITE}};
    int err = 0;
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        if (!(mask & filters[i].bit)) {
            continue;
        }
        struct kevent ch;
        EV_SET(&ch, (uintptr_t)fd, filters[i].filter, EV_DELETE, 0, 0, 0);
        if (kevent(st->kq, &ch, 1, NULL, 0, NULL) == -1 &&
            errno != ENOENT && errno != EBADF && err == 0) {
            err = errno;
        }
    }
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

static int
kqueue_set(void *state, int fd, int oldmask, int newmask)
{
    kqueue_state *st = state;
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    int want = newmask & (IOL_READ | IOL_WRITE);
    int had = oldmask & (IOL_READ | IOL_WRITE);
    /* slot[fd] lets wait() merge this fd's kevents in O(1). */
    if (want != 0 && iol_fdmap_reserve(&st->slot, &st->nslot, fd) < 0) {
        return -1;
    }
    struct kevent ch[2];
    int n = 0;
    if (want & IOL_READ) {
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_READ, EV_ADD, 0, 0, 0);
    }
    if (want & IOL_WRITE) {
        EV_SET(&ch[n++], (uintptr_t)fd, EVFILT_WRITE, EV_ADD, 0, 0, 0);
    }
    /* With no room for results, kevent() reports the first failing change
     * as -1 and errno, having applied the changes before it. */
    if ((n > 0 && kevent(st->kq, ch, n, NULL, 0, NULL) == -1) ||
        kqueue_delete(st, fd, had & ~want) == -1) {
        /* Undo only the filters that are new: those in `had` were there
         * before and stay. */
        int saved = errno;
        (void)kqueue_delete(st, fd, want & ~had);
        errno = saved;
        return -1;
    }
    return 0;
}

/* Where fd's merged event is among the first n, or n if it has none. */
static int
kqueue_merge_index(const kqueue_state *st, int fd, const iol_event *events,
                   int n)
{
    if (fd >= 0 && fd < st->nslot) {
        return st->slot[fd] >= 0 ? st->slot[fd] : n;
    }
    /* Not reserved by set(), so not ours; merge it all the same. */
    int j = 0;
    while (j < n && events[j].fd != fd) {
        j++;
    }
    return j;
}

static int
kqueue_wait_events(void *state, int64_t timeout_ns, iol_event *events,
                   int maxevents)
{
    kqueue_state *st = state;
    /* kevent() with no room for results returns at once: refuse that
     * rather than let the caller spin. */
    if (maxevents <= 0) {
        errno = EINVAL;
        return -1;
    }
    if (st->cap < maxevents) {
        struct kevent *buf =
            realloc(st->events, (size_t)maxevents * sizeof(*buf));
        if (buf == NULL) {
            errno = ENOMEM;
            return -1;
        }
        st->events = buf;
        st->cap = maxevents;
    }
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (timeout_ns >= 0) {
        if (timeout_ns / 1000000000 >= KQUEUE_MAX_SECONDS) {
            ts.tv_sec = KQUEUE_MAX_SECONDS;
            ts.tv_nsec = 0;
        }
        else {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000);
            ts.tv_nsec = (long)(timeout_ns % 1000000000);
        }
        tsp = &ts;
    }
    int got = kevent(st->kq, NULL, 0, st->events, maxevents, tsp);
    if (got <= 0) {
        return got;
    }
    /* Merging never makes more events than kevents, so n <= maxevents. */
    int n = 0;
    for (int i = 0; i < got; i++) {
        const struct kevent *k = &st->events[i];
        int fd = (int)k->ident;
        int mask = 0;
        if (k->flags & EV_ERROR) {
            mask |= IOL_ERR;
        }
        else if (k->filter == EVFILT_READ) {
            mask |= IOL_READ;
        }
        else if (k->filter == EVFILT_WRITE) {
            mask |= IOL_WRITE;
        }
        if (k->flags & EV_EOF) {
            mask |= IOL_HUP;
        }
        int j = kqueue_merge_index(st, fd, events, n);
        if (j == n) {
            events[n].fd = fd;
            events[n].mask = 0;
            if (fd >= 0 && fd < st->nslot) {
                st->slot[fd] = n;
            }
            n++;
        }
        events[j].mask |= mask;
    }
    /* Leave the map clean for the next wait. */
    for (int j = 0; j < n; j++) {
        if (events[j].fd >= 0 && events[j].fd < st->nslot) {
            st->slot[events[j].fd] = -1;
        }
    }
    return n;
}

const iol_backend iol_backend_kqueue = {
    .name = "kqueue",
    .create = kqueue_create_state,
    .destroy = kqueue_destroy_state,
    .set = kqueue_set,
    .wait = kqueue_wait_events,
};

#else

/* ISO C wants at least one declaration in a file. */
typedef int iol_kqueue_absent;

#endif /* BSD, macOS */
