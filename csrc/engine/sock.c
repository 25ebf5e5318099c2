/*
 * sock.c: recv, send, sendmsg and shutdown for the stream transports.
 *
 * Portability: MSG_NOSIGNAL (Linux, the BSDs) keeps a write to a closed
 * peer from raising SIGPIPE; where it is missing (macOS) the interpreter
 * already ignores SIGPIPE, so EPIPE still comes back as an error.
 */
#include "sock.h"

#include <errno.h>
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
