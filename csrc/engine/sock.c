/*
 * sock.c: recv, send, sendmsg and shutdown for the stream transports,
 * and batches of accept() for the servers.
 *
 * Portability: MSG_NOSIGNAL (Linux, the BSDs) keeps a write to a closed
 * peer from raising SIGPIPE; where it is missing (macOS) the interpreter
 * already ignores SIGPIPE, so EPIPE still comes back as an error.
 * accept4() (Linux, the BSDs) makes the new fd non-blocking and
 * close-on-exec in the same call; elsewhere fcntl() does it right after,
 * before anyone else can see the fd.
 */
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef MSG_NOSIGNAL
#define IOL_SEND_FLAGS MSG_NOSIGNAL
#else
#define IOL_SEND_FLAGS 0
#endif

int
iol_sock_would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

ssize_t
iol_sock_recv(int fd, void *buf, size_t len)
{
    ssize_t n;
    do {
        n = recv(fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t
iol_sock_send(int fd, const void *buf, size_t len)
{
    ssize_t n;
    do {
        n = send(fd, buf, len, IOL_SEND_FLAGS);
    } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t
iol_sock_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOL_SOCK_IOV_MAX) {
        errno = EINVAL;
        return -1;
    }
    struct msghdr msg = {0};
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)iovcnt;
    ssize_t n;
    do {
        n = sendmsg(fd, &msg, IOL_SEND_FLAGS);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ENOTSOCK) {
        do {
            n = writev(fd, iov, iovcnt);
        } while (n < 0 && errno == EINTR);
    }
    return n;
}

int
iol_sock_shutdown(int fd, int how)
{
    return shutdown(fd, how);
}

static int
accept_one(int fd, struct sockaddr *addr, socklen_t *len)
{
    int c;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    do {
        c = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (c < 0 && errno == EINTR);
#else
    do {
        c = accept(fd, addr, len);
    } while (c < 0 && errno == EINTR);
    if (c >= 0) {
        int fl = fcntl(c, F_GETFL);
        if (fl == -1 || fcntl(c, F_SETFL, fl | O_NONBLOCK) == -1 ||
            fcntl(c, F_SETFD, FD_CLOEXEC) == -1) {
            int e = errno;
            close(c);
            errno = e;
            return -1;
        }
    }
#endif
    return c;
}

int
iol_sock_accept_batch(int fd, iol_accepted *out, int max, int *err)
{
    int n = 0;
    *err = 0;
    for (int tries = 0; tries < max; tries++) {
        iol_accepted *a = &out[n];
        memset(a, 0, sizeof(*a));
        a->addrlen = (socklen_t)sizeof(a->addr);
        a->fd = accept_one(fd, (struct sockaddr *)&a->addr, &a->addrlen);
        if (a->fd >= 0) {
            n++;
            continue;
        }
        if (errno == ECONNABORTED) {
            continue;
        }
        *err = errno;
        break;
    }
    return n;
}
