/*
 * select.c: the select() backend, the lowest common denominator.
 *
 * Quirks:
 * - fd_set is a fixed bitmap: fds at or above FD_SETSIZE (usually 1024)
 *   cannot be watched at all, and are refused with EINVAL rather than
 *   written past the end of the set.
 * - select() fails as a whole with EBADF if any fd in the sets was
 *   closed.  Then each registered fd is checked and the closed ones are
 *   reported as errors, so their owners can remove them and the loop
 *   does not spin on the failure.
 * - The timeout is a timeval: microseconds, rounded up.
 * - Regular files are accepted and always ready.
 */
#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

typedef struct {
    fd_set rset;
    fd_set wset;
    int maxfd; /* highest fd that may be set, or -1 */
} select_state;

static void *
select_create_state(void)
{
    select_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    FD_ZERO(&st->rset);
    FD_ZERO(&st->wset);
    st->maxfd = -1;
    return st;
}

static void
select_destroy_state(void *state)
{
    free(state);
}

static int
select_set(void *state, int fd, int oldmask, int newmask)
{
    select_state *st = state;
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (fd >= FD_SETSIZE) {
        errno = EINVAL;
        return -1;
    }
    if (oldmask == 0 && newmask != 0 && fcntl(fd, F_GETFD) == -1) {
        return -1;
    }
    FD_CLR(fd, &st->rset);
    FD_CLR(fd, &st->wset);
    if (newmask & IOL_READ) {
        FD_SET(fd, &st->rset);
    }
    if (newmask & IOL_WRITE) {
        FD_SET(fd, &st->wset);
    }
    if (newmask != 0 && fd > st->maxfd) {
        st->maxfd = fd;
    }
    /* maxfd is only an upper bound; it shrinks lazily in wait(). */
    return 0;
}

/* After EBADF: report each registered fd that is closed as an error. */
static int
select_report_closed(select_state *st, iol_event *events, int maxevents)
{
    int n = 0;
    for (int fd = 0; fd <= st->maxfd && n < maxevents; fd++) {
        if ((FD_ISSET(fd, &st->rset) || FD_ISSET(fd, &st->wset)) &&
            fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
            events[n].fd = fd;
            events[n].mask = IOL_ERR;
            n++;
        }
    }
    if (n == 0) {
        errno = EBADF;
        return -1;
    }
    return n;
}

static int
select_wait_events(void *state, int64_t timeout_ns, iol_event *events,
                   int maxevents)
{
    select_state *st = state;
    while (st->maxfd >= 0 && !FD_ISSET(st->maxfd, &st->rset) &&
           !FD_ISSET(st->maxfd, &st->wset)) {
        st->maxfd--;
    }
    fd_set r = st->rset, w = st->wset;
    struct timeval tv, *tvp = NULL;
    if (timeout_ns >= 0) {
        int64_t us = (timeout_ns + 999) / 1000;
        tv.tv_sec = (time_t)(us / 1000000);
        tv.tv_usec = (suseconds_t)(us % 1000000);
        tvp = &tv;
    }
    int ready = select(st->maxfd + 1, &r, &w, NULL, tvp);
    if (ready == -1) {
        return errno == EBADF ? select_report_closed(st, events, maxevents)
                              : -1;
    }
    int n = 0;
    for (int fd = 0; fd <= st->maxfd && n < maxevents && ready > 0; fd++) {
        int mask = 0;
        if (FD_ISSET(fd, &r)) {
            mask |= IOL_READ;
            ready--;
        }
        if (FD_ISSET(fd, &w)) {
            mask |= IOL_WRITE;
            ready--;
        }
        if (mask) {
            events[n].fd = fd;
            events[n].mask = mask;
            n++;
        }
    }
    return n;
}

const iol_backend iol_backend_select = {
    .name = "select",
    .create = select_create_state,
    .destroy = select_destroy_state,
    .set = select_set,
    .wait = select_wait_events,
};
