/*
 * backend.c: the backends compiled into this build, best first, and the
 * one fd helper they and the waker share.
 *
 * The order is the default choice: the first entry is what a loop uses
 * unless told otherwise.  epoll and kqueue cost O(ready) per wait; poll
 * costs O(watched); select costs O(highest fd) and cannot watch fds at or
 * above FD_SETSIZE, so it comes last.
 */
#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

const iol_backend *const iol_backends[] = {
#ifdef __linux__
    &iol_backend_epoll,
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) ||    \
    defined(__NetBSD__) || defined(__DragonFly__)
    &iol_backend_kqueue,
#endif
    &iol_backend_poll,
    &iol_backend_select,
    NULL,
};

const iol_backend *
iol_backend_find(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; iol_backends[i] != NULL; i++) {
        if (strcmp(iol_backends[i]->name, name) == 0) {
            return iol_backends[i];
        }
    }
    return NULL;
}

int
iol_fd_set_cloexec_nonblock(int fd)
{
    /* Read-modify-write, so flags already set (O_APPEND, ...) survive. */
    int flags = fcntl(fd, F_GETFD);
    if (flags == -1) {
        return -1;
    }
    if (!(flags & FD_CLOEXEC) &&
        fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == -1) {
        return -1;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags == -1) {
        return -1;
    }
    if (!(flags & O_NONBLOCK) &&
        fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
        return -1;
    }
    return 0;
}

int
iol_timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0) {
        return -1;
    }
    if (timeout_ns > (int64_t)INT_MAX * 1000000 - 999999) {
        return INT_MAX;
    }
    return (int)((timeout_ns + 999999) / 1000000);
}

int
iol_fdmap_reserve(int **map, int *len, int fd)
{
    if (fd < *len) {
        return 0;
    }
    size_t n = *len ? (size_t)*len : 64;
    while (n <= (size_t)fd) {
        n *= 2;
    }
    if (n > INT_MAX) {
        n = (size_t)fd + 1;
    }
    int *grown = realloc(*map, n * sizeof(*grown));
    if (grown == NULL) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = (size_t)*len; i < n; i++) {
        grown[i] = -1;
    }
    *map = grown;
    *len = (int)n;
    return 0;
}
