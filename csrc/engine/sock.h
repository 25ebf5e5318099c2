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
#include <stdint.h>
#include <sys/socket.h>
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

/* recvfrom() of one datagram into buf (a longer one is cut to len).  The
 * sender's address goes to *sa, which is zeroed first so that a short
 * or absent address (an unnamed Unix socket: *salen 0) leaves no stale
 * bytes; *salen is its length. */
ssize_t iol_sock_recvfrom(int fd, void *buf, size_t len,
                          struct sockaddr_storage *sa, socklen_t *salen);

/* sendto() of one datagram; with sa NULL, send() on a connected
 * socket.  A datagram goes whole or not at all (EMSGSIZE if too big). */
ssize_t iol_sock_sendto(int fd, const void *buf, size_t len,
                        const struct sockaddr *sa, socklen_t salen);

/* The dotted-quad text of an IPv4 address (4 bytes, network order), as
 * inet_ntop() writes it, NUL included, into out; its length, or -1 with
 * ENOSPC if outlen is too small (16 always fits). */
int iol_sock_ipv4_text(const void *in_addr, char *out, size_t outlen);

/* The numeric host of an AF_INET / AF_INET6 address, as getnameinfo()
 * with NI_NUMERICHOST writes it (a link-local IPv6 address carries its
 * %scope); -1 with EAFNOSUPPORT or EINVAL if it has none. */
int iol_sock_addr_host(const struct sockaddr *sa, socklen_t salen,
                       char *host, size_t hostlen);

/* Fill *sa from a numeric host (inet_pton: no names, no scope suffix),
 * a port and, for AF_INET6, flowinfo and scope_id; -1 with EINVAL if
 * the host is not numeric for the family, EAFNOSUPPORT for another
 * family. */
int iol_sock_addr_inet(int family, const char *host, unsigned port,
                       uint32_t flowinfo, uint32_t scope_id,
                       struct sockaddr_storage *sa, socklen_t *salen);

/* Fill *sa with an AF_UNIX address of len bytes (a leading NUL is
 * Linux's abstract namespace); -1 with ENAMETOOLONG if it does not fit
 * in sun_path. */
int iol_sock_addr_unix(const char *path, size_t len,
                       struct sockaddr_storage *sa, socklen_t *salen);
/* One accepted connection: its fd (non-blocking, close-on-exec) and the
 * peer's address as the kernel gave it. */
typedef struct {
    int fd;
    socklen_t addrlen;
    struct sockaddr_storage addr;
} iol_accepted;

/* Accept up to max connections from the listening socket fd into out.
 * Returns how many were accepted (0 to max).  A connection the peer
 * aborted before accept() is skipped (it uses up one of max); EINTR is
 * retried.  The first other failure stops the batch and its errno goes
 * to *err (EAGAIN / EWOULDBLOCK: none left); *err is 0 when the batch
 * ran to max.  The fds in out are the caller's to close. */
int iol_sock_accept_batch(int fd, iol_accepted *out, int max, int *err);

/* Nonzero if errno says "try again when the fd is ready". */
int iol_sock_would_block(int err);

#endif /* IOL_SOCK_H */
