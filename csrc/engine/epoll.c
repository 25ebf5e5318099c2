/*
 * epoll.c: the Linux backend.
 *
 * Quirks:
 * - The kernel set holds open file descriptions, not fd numbers.  Closing
 *   an fd removes it only if no dup() of it remains; otherwise its events
 *   keep arriving under the old number.  So ADD may meet EEXIST for a
 *   number that was closed and reused (fall back to MOD), MOD may meet
 *   ENOENT (fall back to ADD), and DEL of a closed fd gives EBADF or
 *   ENOENT, which only means the kernel already forgot it.
 * - Regular files and directories are refused with EPERM: they are always
 *   ready, and epoll will not pretend otherwise.
 * - EPOLLERR and EPOLLHUP are reported whether asked for or not.
 * - The timeout is in milliseconds: round up, or the loop wakes just
 *   before a timer is due and spins.
 */
#ifdef __linux__

#include "iol.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

typedef struct {
    int epfd;
    int cap;
    struct epoll_event *events;
} epoll_state;

static void *
epoll_create_state(void)
{
    epoll_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd == -1) {
        int saved = errno;
        free(st);
        errno = saved;
        return NULL;
    }
    return st;
}

static void
epoll_destroy_state(void *state)
{
    epoll_state *st = state;
    close(st->epfd);
    free(st->events);
    free(st);
}

static int
epoll_set(void *state, int fd, int oldmask, int newmask)
{
    epoll_state *st = state;
    struct epoll_event ev = {0};
    ev.data.fd = fd;
    if (newmask & IOL_READ) {
        ev.events |= EPOLLIN;
    }
    if (newmask & IOL_WRITE) {
        ev.events |= EPOLLOUT;
    }
    if (newmask == 0) {
        if (epoll_ctl(st->epfd, EPOLL_CTL_DEL, fd, &ev) == -1 &&
            errno != ENOENT && errno != EBADF) {
            return -1;
        }
        return 0;
    }
    int op = oldmask ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(st->epfd, op, fd, &ev) == 0) {
        return 0;
    }
    if (op == EPOLL_CTL_ADD && errno == EEXIST) {
        op = EPOLL_CTL_MOD;
    }
    else if (op == EPOLL_CTL_MOD && errno == ENOENT) {
        op = EPOLL_CTL_ADD;
    }
    else {
        return -1;
    }
    return epoll_ctl(st->epfd, op, fd, &ev);
}

static int
epoll_wait_events(void *state, int64_t timeout_ns, iol_event *events,
                  int maxevents)
{
    epoll_state *st = state;
    if (st->cap < maxevents) {
        struct epoll_event *buf =
            realloc(st->events, (size_t)maxevents * sizeof(*buf));
        if (buf == NULL) {
            errno = ENOMEM;
            return -1;
        }
        st->events = buf;
        st->cap = maxevents;
    }
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
    int n = epoll_wait(st->epfd, st->events, maxevents, ms);
    for (int i = 0; i < n; i++) {
        uint32_t e = st->events[i].events;
        int mask = 0;
        if (e & EPOLLIN) {
            mask |= IOL_READ;
        }
        if (e & EPOLLOUT) {
            mask |= IOL_WRITE;
        }
        if (e & EPOLLERR) {
            mask |= IOL_ERR;
        }
        if (e & EPOLLHUP) {
            mask |= IOL_HUP;
        }
        events[i].fd = st->events[i].data.fd;
        events[i].mask = mask;
    }
    return n;
}

const iol_backend iol_backend_epoll = {
    .name = "epoll",
    .create = epoll_create_state,
    .destroy = epoll_destroy_state,
    .set = epoll_set,
    .wait = epoll_wait_events,
};

#endif /* __linux__ */
