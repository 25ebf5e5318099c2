/*
 * kqueue.c: the BSD and macOS backend.  Not compiled on Linux, and so not
 * tested by this project's CI, which runs on Linux only.
 *
 * Quirks:
 * - Read and write interest are separate filters (EVFILT_READ,
 *   EVFILT_WRITE), and come back as separate kevents.  They are merged
 *   here into one event per fd, so dispatch never depends on the backend.
 * - The kernel's user data is left unused: a pointer there would dangle
 *   once the loop forgets a registration.  Events are keyed by fd.
 * - A closed fd drops out of the kqueue by itself; deleting it afterwards
 *   gives ENOENT or EBADF, which only means it is already gone.
 * - EV_EOF marks a hang-up; EV_ERROR carries an errno in `data`.
 * - The timeout is a timespec, exact to the nanosecond.
 * - A kqueue is not inherited across fork(): the child must make its own
 *   loop, as DESIGN.md requires anyway.
 */
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) ||    \
    defined(__NetBSD__) || defined(__DragonFly__)

#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct {
    int kq;
    int cap;
    struct kevent *events;
} kqueue_state;

static void *
kqueue_create_state(void)
{
    kqueue_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
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
    free(st);
}

static int
kqueue_set(void *state, int fd, int oldmask, int newmask)
{
    kqueue_state *st = state;
    struct kevent ch[2];
    int n = 0;
    int add = (newmask & ~oldmask) & (IOL_READ | IOL_WRITE);
    int del = (oldmask & ~newmask) & (IOL_READ | IOL_WRITE);
    if (add & IOL_READ) {
        EV_SET(&ch[n++], fd, EVFILT_READ, EV_ADD, 0, 0, 0);
    }
    if (add & IOL_WRITE) {
        EV_SET(&ch[n++], fd, EVFILT_WRITE, EV_ADD, 0, 0, 0);
    }
    if (n > 0 && kevent(st->kq, ch, n, NULL, 0, NULL) == -1) {
        /* Undo a half-applied addition so a failure leaves no trace. */
        int saved = errno;
        for (int i = 0; i < n; i++) {
            ch[i].flags = EV_DELETE;
            (void)kevent(st->kq, &ch[i], 1, NULL, 0, NULL);
        }
        errno = saved;
        return -1;
    }
    n = 0;
    if (del & IOL_READ) {
        EV_SET(&ch[n++], fd, EVFILT_READ, EV_DELETE, 0, 0, 0);
    }
    if (del & IOL_WRITE) {
        EV_SET(&ch[n++], fd, EVFILT_WRITE, EV_DELETE, 0, 0, 0);
    }
    for (int i = 0; i < n; i++) {
        if (kevent(st->kq, &ch[i], 1, NULL, 0, NULL) == -1 &&
            errno != ENOENT && errno != EBADF) {
            return -1;
        }
    }
    return 0;
}

static int
kqueue_wait_events(void *state, int64_t timeout_ns, iol_event *events,
                   int maxevents)
{
    kqueue_state *st = state;
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
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    int got = kevent(st->kq, NULL, 0, st->events, maxevents, tsp);
    if (got <= 0) {
        return got;
    }
    /* Merge the read and write kevents of one fd into one event. */
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
        int j;
        for (j = 0; j < n && events[j].fd != fd; j++) {
        }
        if (j == n) {
            events[n].fd = fd;
            events[n].mask = 0;
            n++;
        }
        events[j].mask |= mask;
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

#endif /* BSD, macOS */
