/*
 * waker.c: wakes a loop that sleeps in the kernel, from another thread.
 * iol_waker_signal() makes no call but write(), so a signal handler may
 * use it too (saving errno around it, as any handler must).
 *
 * Linux has eventfd: one fd, a 64-bit counter, 8-byte reads and writes.
 * Elsewhere a pipe stands in, one byte per signal.  Both ends are
 * non-blocking, so a full pipe or a saturated counter gives EAGAIN, which
 * only means "already signalled", and a signal never blocks its sender.
 * Both are close-on-exec, so a child process never inherits them; they
 * are created that way atomically where the system allows (eventfd flags,
 * pipe2), which closes the window in which a fork+exec on another thread
 * could leak them.
 *
 * Defining IOL_WAKER_PIPE selects the pipe on Linux too, so the tests can
 * exercise that path on a Linux host.
 */
#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#if defined(__linux__) && !defined(IOL_WAKER_PIPE)
#define IOL_HAVE_EVENTFD 1
#include <sys/eventfd.h>
#endif

/* pipe2() is in Linux, the BSDs and Solaris, but not in macOS. */
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) ||     \
    defined(__OpenBSD__) || defined(__DragonFly__) || defined(__sun)
#define IOL_HAVE_PIPE2 1
#endif

#ifndef IOL_HAVE_EVENTFD
static int
waker_pipe(int fds[2])
{
#ifdef IOL_HAVE_PIPE2
    return pipe2(fds, O_CLOEXEC | O_NONBLOCK);
#else
    if (pipe(fds) == -1) {
        return -1;
    }
    if (iol_fd_set_cloexec_nonblock(fds[0]) == -1 ||
        iol_fd_set_cloexec_nonblock(fds[1]) == -1) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        errno = saved;
        return -1;
    }
    return 0;
#endif
}
#endif

int
iol_waker_open(iol_waker *waker)
{
    waker->rfd = waker->wfd = -1;
#ifdef IOL_HAVE_EVENTFD
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd == -1) {
        return -1;
    }
    waker->rfd = waker->wfd = fd;
#else
    int fds[2];
    if (waker_pipe(fds) == -1) {
        return -1;
    }
    waker->rfd = fds[0];
    waker->wfd = fds[1];
#endif
    return 0;
}

int
iol_waker_signal(iol_waker *waker)
{
#ifdef IOL_HAVE_EVENTFD
    /* eventfd accepts only 8-byte writes of the value to add. */
    uint64_t one = 1;
#else
    unsigned char one = 1;
#endif
    for (;;) {
        if (write(waker->wfd, &one, sizeof(one)) >= 0) {
            return 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0; /* full: a wake-up is already pending */
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

int
iol_waker_drain(iol_waker *waker)
{
    /* One read empties an eventfd (it returns and resets the counter); a
     * pipe may hold many bytes, so read until it reports empty. */
    uint64_t buf[16];
    for (;;) {
        ssize_t n = read(waker->rfd, buf, sizeof(buf));
        if (n > 0) {
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return -1;
        }
        /* Empty (EAGAIN), or a pipe whose write end is gone (0). */
        return 0;
    }
}

void
iol_waker_close(iol_waker *waker)
{
    if (waker->wfd >= 0 && waker->wfd != waker->rfd) {
        close(waker->wfd);
    }
    if (waker->rfd >= 0) {
        close(waker->rfd);
    }
    waker->rfd = waker->wfd = -1;
}
