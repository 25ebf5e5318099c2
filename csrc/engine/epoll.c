/*
 * epoll.c: the Linux backend.
 *
 * Quirks:
 * - The interest set holds open file descriptions, keyed by (description,
 *   fd number), not fd numbers.  close() drops an entry only when no dup()
 *   of the description is left; until then its events keep arriving under
 *   the old number, which the caller must ignore if it no longer knows it.
 *   Hence the fallbacks in set(): ADD meets EEXIST when a number was closed
 *   and then re-pointed at the same description (dup2), so it becomes MOD;
 *   MOD meets ENOENT when the number now names a new description, so it
 *   becomes ADD; DEL of a closed fd gives EBADF (or ENOENT), which only
 *   means the kernel forgot the fd already, so it counts as success.
 * - Regular files and directories cannot be polled: ADD fails with EPERM,
 *   and nothing is added.  poll and select accept them as always ready.
 * - An fd closed while registered (and not dup()ed) simply stops
 *   reporting: no event, unlike poll and select.
 * - EPOLLERR and EPOLLHUP are reported whether asked for or not.
 * - The timeout is in milliseconds: it is rounded up, or the loop would
 *   wake just before a timer is due and spin until it is.
 * - The ready list is level-triggered and the kernel rotates it, so with
 *   a short events buffer every ready fd still gets its turn.
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
    int cap;                    /* length of `events` */
    struct epoll_event *events; /* what epoll_wait() fills in */
} epoll_state;

static void *
epoll_create_state(void)
{
    epoll_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        errno = ENOMEM;
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
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    /* Zeroed whole: valgrind checks all 8 bytes of `data` on the way in. */
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
        /* EBADF, EPERM, ENOMEM...: the kernel changed nothing. */
        return -1;
    }
    return epoll_ctl(st->epfd, op, fd, &ev);
}

static int
epoll_wait_events(void *state, int64_t timeout_ns, iol_event *events,
                  int maxevents)
{
    epoll_state *st = state;
    if (maxevents <= 0) {
        errno = EINVAL;
        return -1;
    }
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
    int n = epoll_wait(st->epfd, st->events, maxevents,
                       iol_timeout_ms(timeout_ns));
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

#else

/* ISO C wants at least one declaration in a file. */
typedef int iol_epoll_absent;

#endif /* __linux__ */
