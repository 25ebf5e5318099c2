/*
 * poll.c: the POSIX poll() backend.
 *
 * Quirks:
 * - poll() is handed the whole interest list on every call, so a wait
 *   costs O(fds watched), not O(fds ready).  The list is kept dense, and
 *   an fd -> slot map makes set() O(1): a removed fd's slot is filled by
 *   the last entry.
 * - poll() takes any open fd, and a closed one only shows up at the next
 *   wait (as POLLNVAL).  set() checks with fcntl(F_GETFD) that an fd is
 *   open when it adds it, so bad input fails at registration with EBADF,
 *   as under epoll.
 * - Regular files are accepted and always ready (epoll refuses them).
 * - An fd closed while registered comes back as POLLNVAL, reported as
 *   IOL_ERR, so its owner can remove it.  Until then it is reported on
 *   every wait.
 * - POLLERR and POLLHUP are reported whether asked for or not.
 * - The timeout is in milliseconds, rounded up so no wait ends early.
 * - When more fds are ready than the events buffer holds, the next scan
 *   starts where this one stopped, so no fd starves.
 */
#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>

typedef struct {
    struct pollfd *pfds; /* dense: pfds[0 .. len) */
    int len;
    int cap;
    int *slot; /* fd -> index in pfds, or -1; covers fds [0 .. nslot) */
    int nslot;
    int start; /* where the next scan of revents begins */
} poll_state;

static void *
poll_create_state(void)
{
    poll_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        errno = ENOMEM;
    }
    return st;
}

static void
poll_destroy_state(void *state)
{
    poll_state *st = state;
    free(st->pfds);
    free(st->slot);
    free(st);
}

/* Make slot[fd] and one more pollfd exist, before anything is changed. */
static int
poll_reserve(poll_state *st, int fd)
{
    if (iol_fdmap_reserve(&st->slot, &st->nslot, fd) < 0) {
        return -1;
    }
    if (st->len == st->cap) {
        size_t ncap = st->cap ? 2 * (size_t)st->cap : 64;
        struct pollfd *p = realloc(st->pfds, ncap * sizeof(*p));
        if (p == NULL) {
            errno = ENOMEM;
            return -1;
        }
        st->pfds = p;
        st->cap = (int)ncap;
    }
    return 0;
}

static short
poll_events_of(int mask)
{
    short ev = 0;
    if (mask & IOL_READ) {
        ev |= POLLIN;
    }
    if (mask & IOL_WRITE) {
        ev |= POLLOUT;
    }
    return ev;
}

static int
poll_set(void *state, int fd, int oldmask, int newmask)
{
    poll_state *st = state;
    (void)oldmask; /* the slot map is the truth, whatever the caller says */
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    int idx = fd < st->nslot ? st->slot[fd] : -1;
    if (newmask == 0) {
        if (idx >= 0) {
            st->len--;
            if (idx != st->len) {
                st->pfds[idx] = st->pfds[st->len];
                st->slot[st->pfds[idx].fd] = idx;
            }
            st->slot[fd] = -1;
        }
        return 0;
    }
    if (idx >= 0) {
        st->pfds[idx].events = poll_events_of(newmask);
        return 0;
    }
    if (fcntl(fd, F_GETFD) == -1) {
        return -1; /* EBADF */
    }
    if (poll_reserve(st, fd) < 0) {
        return -1;
    }
    st->pfds[st->len].fd = fd;
    st->pfds[st->len].events = poll_events_of(newmask);
    st->pfds[st->len].revents = 0;
    st->slot[fd] = st->len++;
    return 0;
}

static int
poll_mask_of(short revents)
{
    int mask = 0;
    if (revents & POLLIN) {
        mask |= IOL_READ;
    }
    if (revents & POLLOUT) {
        mask |= IOL_WRITE;
    }
    if (revents & (POLLERR | POLLNVAL)) {
        mask |= IOL_ERR;
    }
    if (revents & POLLHUP) {
        mask |= IOL_HUP;
    }
    return mask;
}

static int
poll_wait_events(void *state, int64_t timeout_ns, iol_event *events,
                 int maxevents)
{
    poll_state *st = state;
    if (maxevents <= 0) {
        errno = EINVAL;
        return -1;
    }
    int ready = poll(st->pfds, (nfds_t)st->len, iol_timeout_ms(timeout_ns));
    if (ready <= 0) {
        return ready;
    }
    /* `ready` counts the entries with revents set: stop once all are
     * seen, and remember where to resume if the buffer filled first. */
    int n = 0;
    int i = st->start < st->len ? st->start : 0;
    for (int seen = 0; seen < st->len && ready > 0 && n < maxevents;
         seen++) {
        short re = st->pfds[i].revents;
        if (re != 0) {
            ready--;
            events[n].fd = st->pfds[i].fd;
            events[n].mask = poll_mask_of(re);
            n++;
        }
        i = i + 1 < st->len ? i + 1 : 0;
    }
    st->start = ready > 0 ? i : 0;
    return n;
}

const iol_backend iol_backend_poll = {
    .name = "poll",
    .create = poll_create_state,
    .destroy = poll_destroy_state,
    .set = poll_set,
    .wait = poll_wait_events,
};
