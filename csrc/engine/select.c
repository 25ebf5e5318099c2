/*
 * select.c: the select() backend, the lowest common denominator.
 *
 * Quirks:
 * - fd_set is a fixed bitmap: fds at or above FD_SETSIZE (1024 on Linux
 *   and macOS) cannot be watched at all.  set() refuses them with EINVAL
 *   instead of writing past the end of the set (glibc's fortified FD_SET
 *   would abort).  Negative fds get EBADF.
 * - select() accepts any open fd, so set() checks with fcntl(F_GETFD)
 *   that an fd is open when it adds it, and fails with EBADF otherwise.
 *   Regular files are accepted and always ready.
 * - select() fails as a whole with EBADF when any fd in its sets has been
 *   closed.  Then every registered fd that fcntl() finds closed is
 *   reported as IOL_ERR instead, so its owner can remove it; until then
 *   it is reported on every wait.
 * - There is no hang-up or error bit: a closed peer shows as readable
 *   (read() returns 0) and a socket error as readable and writable (the
 *   next call fails).  The "exceptional" set means TCP urgent data, not
 *   errors, so it is not used, and this backend reports IOL_HUP never and
 *   IOL_ERR only for closed fds.
 * - A wait costs O(highest fd watched).  The timeout is a timeval,
 *   rounded up to the microsecond, and capped at 10^8 seconds, past
 *   which macOS refuses it with EINVAL.
 * - When more fds are ready than the events buffer holds, the next scan
 *   starts where this one stopped, so no fd starves.
 */
#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/time.h>

#define SELECT_MAX_SECONDS 100000000

typedef struct {
    fd_set rset;
    fd_set wset;
    int maxfd; /* no fd above this is set; -1 when none may be */
    int start; /* the fd where the next scan of results begins */
} select_state;

static void *
select_create_state(void)
{
    select_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        errno = ENOMEM;
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
select_is_set(const select_state *st, int fd)
{
    return FD_ISSET(fd, &st->rset) || FD_ISSET(fd, &st->wset);
}

static int
select_set(void *state, int fd, int oldmask, int newmask)
{
    select_state *st = state;
    (void)oldmask; /* the fd_sets are the truth, whatever the caller says */
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (fd >= FD_SETSIZE) {
        errno = EINVAL;
        return -1;
    }
    if (newmask != 0 && !select_is_set(st, fd) &&
        fcntl(fd, F_GETFD) == -1) {
        return -1; /* EBADF */
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
    /* maxfd is only an upper bound after a removal; wait() lowers it. */
    return 0;
}

/* After EBADF: report each registered fd that is closed as an error. */
static int
select_report_closed(select_state *st, iol_event *events, int maxevents)
{
    int n = 0;
    for (int fd = 0; fd <= st->maxfd && n < maxevents; fd++) {
        if (select_is_set(st, fd) && fcntl(fd, F_GETFD) == -1 &&
            errno == EBADF) {
            events[n].fd = fd;
            events[n].mask = IOL_ERR;
            n++;
        }
    }
    if (n == 0) {
        /* Nothing is closed now: the fd was reopened in between (another
         * thread closed a registered fd, a caller's bug).  Say so. */
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
    if (maxevents <= 0) {
        errno = EINVAL;
        return -1;
    }
    while (st->maxfd >= 0 && !select_is_set(st, st->maxfd)) {
        st->maxfd--;
    }
    fd_set r = st->rset;
    fd_set w = st->wset;
    struct timeval tv;
    struct timeval *tvp = NULL;
    if (timeout_ns >= 0) {
        int64_t us = timeout_ns / 1000 + (timeout_ns % 1000 != 0);
        if (us >= (int64_t)SELECT_MAX_SECONDS * 1000000) {
            us = (int64_t)SELECT_MAX_SECONDS * 1000000;
        }
        tv.tv_sec = (time_t)(us / 1000000);
        tv.tv_usec = (suseconds_t)(us % 1000000);
        tvp = &tv;
    }
    int ready = select(st->maxfd + 1, &r, &w, NULL, tvp);
    if (ready == -1) {
        return errno == EBADF ? select_report_closed(st, events, maxevents)
                              : -1;
    }
    if (ready == 0) {
        return 0;
    }
    /* `ready` counts set bits, not fds: an fd both readable and writable
     * counts twice.  Scan from `start`, wrapping round, until all are
     * seen or the buffer is full. */
    int nfds = st->maxfd + 1;
    int fd = st->start < nfds ? st->start : 0;
    int n = 0;
    for (int seen = 0; seen < nfds && ready > 0 && n < maxevents; seen++) {
        int mask = 0;
        if (FD_ISSET(fd, &r)) {
            mask |= IOL_READ;
            ready--;
        }
        if (FD_ISSET(fd, &w)) {
            mask |= IOL_WRITE;
            ready--;
        }
        if (mask != 0) {
            events[n].fd = fd;
            events[n].mask = mask;
            n++;
        }
        fd = fd + 1 < nfds ? fd + 1 : 0;
    }
    st->start = ready > 0 ? fd : 0;
    return n;
}

const iol_backend iol_backend_select = {
    .name = "select",
    .create = select_create_state,
    .destroy = select_destroy_state,
    .set = select_set,
    .wait = select_wait_events,
};
