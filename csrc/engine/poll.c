/*
 * poll.c: the POSIX poll() backend.
 *
 * Quirks:
 * - poll() takes the whole interest list on every call, so the cost of a
 *   wait grows with the number of fds watched, not the number ready.  The
 *   list is kept dense: a removed fd's slot is filled by the last one.
 * - It accepts any open fd, regular files included (always ready), so an
 *   fd is checked with fcntl(F_GETFD) when added, to fail early on EBADF
 *   as epoll does.
 * - An fd closed while registered comes back as POLLNVAL: reported as an
 *   error so the owner can remove it.
 * - The timeout is in milliseconds, rounded up.
 */
#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    struct pollfd *pfds; /* dense: pfds[0 .. len) */
    int len;
    int cap;
    int *slot; /* fd -> index in pfds, or -1 */
    int nslot;
} poll_state;

static void *
poll_create_state(void)
{
    return calloc(1, sizeof(poll_state));
}

static void
poll_destroy_state(void *state)
{
    poll_state *st = state;
    free(st->pfds);
    free(st->slot);
    free(st);
}

static int
poll_grow_slots(poll_state *st, int fd)
{
    if (fd < st->nslot) {
        return 0;
    }
    int n = st->nslot ? st->nslot : 64;
    while (n <= fd) {
        n *= 2;
    }
    int *slot = realloc(st->slot, (size_t)n * sizeof(*slot));
    if (slot == NULL) {
        errno = ENOMEM;
        return -1;
    }
    for (int i = st->nslot; i < n; i++) {
        slot[i] = -1;
    }
    st->slot = slot;
    st->nslot = n;
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
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    int idx = fd < st->nslot ? st->slot[fd] : -1;
    if (newmask == 0) {
        if (idx >= 0) {
            /* Keep the array dense: move the last entry into the hole. */
            st->len--;
            if (idx != st->len) {
                st->pfds[idx] = st->pfds[st->len];
                st->slot[st->pfds[idx].fd] = idx;
            }
            st->slot[fd] = -1;
        }
        return 0;
    }
    (void)oldmask;
    if (idx >= 0) {
        st->pfds[idx].events = poll_events_of(newmask);
        return 0;
    }
    if (fcntl(fd, F_GETFD) == -1) {
        return -1;
    }
    if (poll_grow_slots(st, fd) < 0) {
        return -1;
    }
    if (st->len == st->cap) {
        int ncap = st->cap ? st->cap * 2 : 64;
        struct pollfd *p = realloc(st->pfds, (size_t)ncap * sizeof(*p));
        if (p == NULL) {
            errno = ENOMEM;
            return -1;
        }
        st->pfds = p;
        st->cap = ncap;
    }
    st->pfds[st->len].fd = fd;
    st->pfds[st->len].events = poll_events_of(newmask);
    st->pfds[st->len].revents = 0;
    st->slot[fd] = st->len++;
    return 0;
}

static int
poll_wait_events(void *state, int64_t timeout_ns, iol_event *events,
                 int maxevents)
{
    poll_state *st = state;
    int ms;
    if (timeout_ns < 0) {
        ms = -1;
    }
    else if (timeout_ns >= (int64_t)INT_MAX * 1000000) {
        ms = INT_MAX;
    }
    else {
        ms = (int)((timeout_ns + 999999) / 1000000);
    }
    int ready = poll(st->pfds, (nfds_t)st->len, ms);
    if (ready <= 0) {
        return ready;
    }
    int n = 0;
    for (int i = 0; i < st->len && n < maxevents && ready > 0; i++) {
        short re = st->pfds[i].revents;
        if (re == 0) {
            continue;
        }
        ready--;
        int mask = 0;
        if (re & POLLIN) {
            mask |= IOL_READ;
        }
        if (re & POLLOUT) {
            mask |= IOL_WRITE;
        }
        if (re & (POLLERR | POLLNVAL)) {
            mask |= IOL_ERR;
        }
        if (re & POLLHUP) {
            mask |= IOL_HUP;
        }
        events[n].fd = st->pfds[i].fd;
        events[n].mask = mask;
        n++;
    }
    return n;
}

const iol_backend iol_backend_poll = {
    .name = "poll",
    .create = poll_create_state,
    .destroy = poll_destroy_state,
    .set = poll_set,
    .wait = poll_wait_events,
};
