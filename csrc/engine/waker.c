/*
 * waker.c: wakes a loop that sleeps in the kernel, from another thread.
 *
 * Linux has eventfd: one fd, a counter, 8-byte reads and writes.  Other
 * systems get a pipe.  Both ends are non-blocking and close-on-exec, so a
 * full pipe or a saturated counter (EAGAIN) means "already signalled" and
 * a child process never inherits them.
 */
#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/eventfd.h>
#endif

int
iol_fd_set_cloexec_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl == -1 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == -1) {
        return -1;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
        return -1;
    }
    return 0;
}

int
iol_waker_open(iol_waker *waker)
{
#ifdef __linux__
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd == -1) {
        return -1;
    }
    waker->rfd = waker->wfd = fd;
    return 0;
#else
    int fds[2];
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
    waker->rfd = fds[0];
    waker->wfd = fds[1];
    return 0;
#endif
}

int
iol_waker_signal(iol_waker *waker)
{
#ifdef __linux__
    uint64_t one = 1;
    const void *buf = &one;
    size_t len = sizeof(one);
#else
    char one = 1;
    const void *buf = &one;
    size_t len = 1;
#endif
    for (;;) {
        if (write(waker->wfd, buf, len) >= 0 || errno == EAGAIN) {
            return 0;
        }
        if (errno != EINTR) {
            return -1;
        }
    }
}

int
iol_waker_drain(iol_waker *waker)
{
    char buf[64];
    for (;;) {
        ssize_t n = read(waker->rfd, buf, sizeof(buf));
        if (n > 0) {
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        /* EAGAIN: empty, as wanted; anything else is not ours to fix. */
        return (n == -1 && errno != EAGAIN) ? -1 : 0;
    }
}

void
iol_waker_close(iol_waker *waker)
{
    if (waker->rfd >= 0) {
        close(waker->rfd);
    }
    if (waker->wfd >= 0 && waker->wfd != waker->rfd) {
        close(waker->wfd);
    }
    waker->rfd = waker->wfd = -1;
}
