/*
 * sock.h: the socket calls of the data path.  Plain C11, no Python.h.
 *
 * Each call retries EINTR itself (a signal must not lose or duplicate
 * data) and otherwise returns the kernel's answer: a byte count, or -1
 * with errno (EAGAIN / EWOULDBLOCK when a non-blocking socket is not
 * ready).  Sends never raise SIGPIPE: a closed peer is EPIPE.
 */
#ifndef IOL_SOCK_H
#define IOL_SOCK_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* At most this many pieces go out in one iol_sock_writev() call. */
#define IOL_SOCK_IOV_MAX 1024

/* recv() into buf; 0 means the peer shut its side down. */
ssize_t iol_sock_recv(int fd, void *buf, size_t len);

/* send() from buf; may send less than len. */
ssize_t iol_sock_send(int fd, const void *buf, size_t len);

/* sendmsg() of iovcnt pieces (at most IOL_SOCK_IOV_MAX; more is EINVAL);
 * falls back to writev() for an fd that is not a socket. */
ssize_t iol_sock_writev(int fd, const struct iovec *iov, int iovcnt);

/* shutdown(); how is SHUT_RD, SHUT_WR or SHUT_RDWR. */
int iol_sock_shutdown(int fd, int how);

/* Nonzero if errno says "try again when the fd is ready". */
int iol_sock_would_block(int err);

#endif /* IOL_SOCK_H */
