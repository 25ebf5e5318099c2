/*
 * sock.c: recv, send, sendmsg and shutdown for the stream transports;
 * recvfrom, sendto and the address conversions for the datagram one;
 * batches of accept() for the servers.
 *
 * Portability: MSG_NOSIGNAL (Linux, the BSDs) keeps a write to a closed
 * peer from raising SIGPIPE; where it is missing (macOS) the interpreter
 * already ignores SIGPIPE, so EPIPE still comes back as an error.
 * accept4() (Linux, the BSDs) makes the new fd non-blocking and
 * close-on-exec in the same call; elsewhere fcntl() does it right after,
 * before anyone else can see the fd.
 */
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

ssize_t
iol_sock_recvfrom(int fd, void *buf, size_t len,
                  struct sockaddr_storage *sa, socklen_t *salen)
{
    ssize_t n;
    do {
        memset(sa, 0, sizeof(*sa));
        *salen = (socklen_t)sizeof(*sa);
        n = recvfrom(fd, buf, len, 0, (struct sockaddr *)sa, salen);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        *salen = 0;
    }
    return n;
}

ssize_t
iol_sock_sendto(int fd, const void *buf, size_t len,
                const struct sockaddr *sa, socklen_t salen)
{
    ssize_t n;
    do {
        n = sa ? sendto(fd, buf, len, IOL_SEND_FLAGS, sa, salen)
               : send(fd, buf, len, IOL_SEND_FLAGS);
    } while (n < 0 && errno == EINTR);
    return n;
}

int
iol_sock_ipv4_text(const void *in_addr, char *out, size_t outlen)
{
    const unsigned char *b = in_addr;
    char text[16];
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100) {
            text[n++] = (char)('0' + v / 100);
        }
        if (v >= 10) {
            text[n++] = (char)('0' + v / 10 % 10);
        }
        text[n++] = (char)('0' + v % 10);
        text[n++] = i < 3 ? '.' : '\0';
    }
    if (n > outlen) {
        errno = ENOSPC;
        return -1;
    }
    memcpy(out, text, n);
    return (int)n - 1;
}

int
iol_sock_addr_host(const struct sockaddr *sa, socklen_t salen, char *host,
                   size_t hostlen)
{
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (sa->sa_family == AF_INET &&
        salen >= (socklen_t)sizeof(struct sockaddr_in)) {
        /* getnameinfo() ends in sprintf() for this; the text is the
         * same dotted quad. */
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (iol_sock_ipv4_text(&in->sin_addr, host, hostlen) < 0) {
            errno = EINVAL;
            return -1;
        }
        return 0;
    }
    /* What the socket module itself calls, so the text is the same. */
    if (getnameinfo(sa, salen, host, (socklen_t)hostlen, NULL, 0,
                    NI_NUMERICHOST) != 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int
iol_sock_addr_inet(int family, const char *host, unsigned port,
                   uint32_t flowinfo, uint32_t scope_id,
                   struct sockaddr_storage *sa, socklen_t *salen)
{
    memset(sa, 0, sizeof(*sa));
    if (port > 65535) {
        errno = EINVAL;
        return -1;
    }
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
            errno = EINVAL;
            return -1;
        }
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *salen = (socklen_t)sizeof(*in);
        return 0;
    }
    if (family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
            errno = EINVAL;
            return -1;
        }
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        in6->sin6_flowinfo = htonl(flowinfo);
        in6->sin6_scope_id = scope_id;
        *salen = (socklen_t)sizeof(*in6);
        return 0;
    }
    errno = EAFNOSUPPORT;
    return -1;
}

int
iol_sock_addr_unix(const char *path, size_t len,
                   struct sockaddr_storage *sa, socklen_t *salen)
{
    struct sockaddr_un *un = (struct sockaddr_un *)sa;
    memset(sa, 0, sizeof(*sa));
    if (len > sizeof(un->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, len);
    *salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    return 0;
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
