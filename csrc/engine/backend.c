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

#include <fcntl.h>
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
