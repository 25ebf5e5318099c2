/*
 * test_sock.c: the data path's socket calls on socketpairs: data goes
 * through whole and in order, a non-blocking socket says EAGAIN instead
 * of blocking, a gathered write counts its bytes across pieces, a closed
 * peer is EOF for recv and EPIPE (never SIGPIPE) for send, shutdown is a
 * half close, and bad arguments are errors, not crashes.  Datagrams:
 * recvfrom names the sender (none for an unnamed Unix socket), sendto
 * goes to the address given, a datagram too big is EMSGSIZE, a connected
 * UDP socket hears ECONNREFUSED, and the address conversions match what
 * the socket module produces.  Accept batches: every queued connection
 * in one call, no more than asked, each new fd non-blocking and
 * close-on-exec with the peer's address, EAGAIN once the queue is empty,
 * EMFILE at the fd limit with the connection still queued for later.
 */
#include "ctest.h"
#include "sock.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Under valgrind the fd limit is valgrind's own: the kernel accepts, and
 * valgrind closes the fd above its limit and says EMFILE, so the
 * connection is gone instead of still queued. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static int
pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        int fl = fcntl(sv[i], F_GETFL);
        if (fl == -1 || fcntl(sv[i], F_SETFL, fl | O_NONBLOCK) == -1) {
            return -1;
        }
    }
    return 0;
}

static void
test_send_recv(void)
{
    int sv[2];
    char buf[16];
    CHECK(pair(sv) == 0);
    CHECK(iol_sock_recv(sv[1], buf, sizeof buf) == -1 &&
          iol_sock_would_block(errno));
    CHECK(iol_sock_send(sv[0], "hello", 5) == 5);
    CHECK(iol_sock_recv(sv[1], buf, sizeof buf) == 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    /* A short buffer takes what fits; the rest stays queued. */
    CHECK(iol_sock_send(sv[0], "abcdef", 6) == 6);
    CHECK(iol_sock_recv(sv[1], buf, 4) == 4 && memcmp(buf, "abcd", 4) == 0);
    CHECK(iol_sock_recv(sv[1], buf, 4) == 2 && memcmp(buf, "ef", 2) == 0);
    close(sv[0]);
    close(sv[1]);
}

static void
test_writev(void)
{
    int sv[2];
    char buf[32];
    CHECK(pair(sv) == 0);
    struct iovec iov[3] = {
        {"one ", 4}, {"", 0}, {"two", 3},
    };
    CHECK(iol_sock_writev(sv[0], iov, 3) == 7);
    CHECK(iol_sock_recv(sv[1], buf, sizeof buf) == 7);
    CHECK(memcmp(buf, "one two", 7) == 0);
    CHECK(iol_sock_writev(sv[0], iov, 0) == 0);
    errno = 0;
    CHECK(iol_sock_writev(sv[0], iov, IOL_SOCK_IOV_MAX + 1) == -1 &&
          errno == EINVAL);
    CHECK(iol_sock_writev(sv[0], iov, -1) == -1 && errno == EINVAL);
    close(sv[0]);
    close(sv[1]);
}

/* A full socket buffer: the gathered write is partial, then EAGAIN; all
 * that was accepted arrives, in order. */
static void
test_full_buffer(void)
{
    int sv[2];
    CHECK(pair(sv) == 0);
    size_t chunk = 64 * 1024;
    char *a = malloc(chunk), *b = malloc(chunk), *in = malloc(chunk);
    CHECK(a != NULL && b != NULL && in != NULL);
    if (a == NULL || b == NULL || in == NULL) {
        goto done;
    }
    memset(a, 'a', chunk);
    memset(b, 'b', chunk);
    size_t sent = 0;
    ssize_t n;
    int rounds = 0;
    for (;;) {
        struct iovec iov[2] = {{a, chunk}, {b, chunk}};
        n = iol_sock_writev(sv[0], iov, 2);
        if (n < 0) {
            break;
        }
        sent += (size_t)n;
        if (++rounds > 10000) {
            break;
        }
    }
    CHECK(n == -1 && iol_sock_would_block(errno));
    CHECK(sent > 0 && sent < (size_t)rounds * 2 * chunk + 1);
    size_t got = 0, bad = 0;
    while ((n = iol_sock_recv(sv[1], in, chunk)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            size_t pos = (got + (size_t)i) % (2 * chunk);
            if (in[i] != (pos < chunk ? 'a' : 'b')) {
                bad++;
            }
        }
        got += (size_t)n;
    }
    CHECK(got == sent);
    CHECK(bad == 0);
done:
    free(a);
    free(b);
    free(in);
    close(sv[0]);
    close(sv[1]);
}

static void
test_peer_closed(void)
{
    int sv[2];
    char buf[8];
    CHECK(pair(sv) == 0);
    CHECK(iol_sock_send(sv[0], "x", 1) == 1);
    close(sv[0]);
    /* Data sent before the close still comes, then EOF. */
    CHECK(iol_sock_recv(sv[1], buf, sizeof buf) == 1);
    CHECK(iol_sock_recv(sv[1], buf, sizeof buf) == 0);
    /* SIGPIPE is at its default here (it would kill the test): the send
     * must report EPIPE instead. */
    CHECK(iol_sock_send(sv[1], "y", 1) == -1 && errno == EPIPE);
    struct iovec iov = {"z", 1};
    CHECK(iol_sock_writev(sv[1], &iov, 1) == -1 && errno == EPIPE);
    close(sv[1]);
}

static void
test_shutdown(void)
{
    int sv[2];
    char buf[8];
    CHECK(pair(sv) == 0);
    CHECK(iol_sock_shutdown(sv[0], SHUT_WR) == 0);
    CHECK(iol_sock_recv(sv[1], buf, sizeof buf) == 0);
    /* Half closed: the other direction still works. */
    CHECK(iol_sock_send(sv[1], "back", 4) == 4);
    CHECK(iol_sock_recv(sv[0], buf, sizeof buf) == 4);
    CHECK(iol_sock_send(sv[0], "no", 2) == -1 && errno == EPIPE);
    close(sv[0]);
    close(sv[1]);
}

static void
test_bad_fds(void)
{
    char buf[4] = "abc";
    struct iovec iov = {buf, sizeof buf};
    CHECK(iol_sock_recv(-1, buf, sizeof buf) == -1 && errno == EBADF);
    CHECK(iol_sock_send(-1, buf, sizeof buf) == -1 && errno == EBADF);
    CHECK(iol_sock_writev(-1, &iov, 1) == -1 && errno == EBADF);
    CHECK(iol_sock_shutdown(-1, SHUT_WR) == -1 && errno == EBADF);
    /* A pipe is not a socket: recv and shutdown say so, the gathered
     * write falls back to writev(). */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(iol_sock_recv(p[0], buf, sizeof buf) == -1 && errno == ENOTSOCK);
    CHECK(iol_sock_shutdown(p[1], SHUT_WR) == -1 && errno == ENOTSOCK);
    struct iovec out = {"pipe", 4};
    CHECK(iol_sock_writev(p[1], &out, 1) == 4);
    CHECK(read(p[0], buf, sizeof buf) == 4 && memcmp(buf, "pipe", 4) == 0);
    close(p[0]);
    close(p[1]);
}

static int
nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
        return -1;
    }
    return fd;
}

/* A non-blocking UDP socket bound to an ephemeral port of 127.0.0.1. */
static int
udp4(struct sockaddr_storage *sa, socklen_t *salen)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || nonblock(fd) < 0) {
        return -1;
    }
    if (iol_sock_addr_inet(AF_INET, "127.0.0.1", 0, 0, 0, sa, salen) < 0 ||
        bind(fd, (struct sockaddr *)sa, *salen) < 0) {
        close(fd);
        return -1;
    }
    *salen = (socklen_t)sizeof(*sa);
    if (getsockname(fd, (struct sockaddr *)sa, salen) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
test_datagram_unix(void)
{
    int sv[2];
    char buf[16];
    memset(buf, 0, sizeof buf);
    struct sockaddr_storage sa;
    socklen_t salen = 99;
    CHECK(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0);
    CHECK(nonblock(sv[0]) >= 0 && nonblock(sv[1]) >= 0);
    CHECK(iol_sock_recvfrom(sv[1], buf, sizeof buf, &sa, &salen) == -1 &&
          iol_sock_would_block(errno) && salen == 0);
    /* Datagrams keep their bounds, an empty one included; a longer one
     * is cut to the buffer. */
    CHECK(iol_sock_sendto(sv[0], "one", 3, NULL, 0) == 3);
    CHECK(iol_sock_sendto(sv[0], "", 0, NULL, 0) == 0);
    CHECK(iol_sock_sendto(sv[0], "abcdefgh", 8, NULL, 0) == 8);
    CHECK(iol_sock_recvfrom(sv[1], buf, sizeof buf, &sa, &salen) == 3 &&
          memcmp(buf, "one", 3) == 0);
    /* The peer of a socketpair has no name. */
    CHECK(salen == 0);
    CHECK(iol_sock_recvfrom(sv[1], buf, sizeof buf, &sa, &salen) == 0);
    CHECK(iol_sock_recvfrom(sv[1], buf, 4, &sa, &salen) == 4 &&
          memcmp(buf, "abcd", 4) == 0);
    CHECK(iol_sock_recvfrom(sv[1], buf, sizeof buf, &sa, &salen) == -1 &&
          iol_sock_would_block(errno));
    close(sv[0]);
    close(sv[1]);
    /* Abstract (leading NUL) and too long Unix addresses. */
    char path[200];
    memset(path, 'p', sizeof path);
    CHECK(iol_sock_addr_unix(path, sizeof path, &sa, &salen) == -1 &&
          errno == ENAMETOOLONG);
    int a = socket(AF_UNIX, SOCK_DGRAM, 0), b = socket(AF_UNIX, SOCK_DGRAM, 0);
    char name[] = "\0iol-test-sock-XXXXXX";
    snprintf(name + 15, 7, "%06u", (unsigned)getpid() % 1000000u);
    CHECK(iol_sock_addr_unix(name, sizeof name - 1, &sa, &salen) == 0);
    CHECK(salen == offsetof(struct sockaddr_un, sun_path) + sizeof name - 1);
    CHECK(bind(a, (struct sockaddr *)&sa, salen) == 0);
    CHECK(iol_sock_sendto(b, "abs", 3, (struct sockaddr *)&sa, salen) == 3);
    struct sockaddr_storage from;
    socklen_t fromlen = 0;
    CHECK(iol_sock_recvfrom(a, buf, sizeof buf, &from, &fromlen) == 3);
    /* b is unbound: at most the family comes back, no path. */
    CHECK(fromlen <= sizeof(sa_family_t));
    close(a);
    close(b);
}

static void
test_datagram_inet(void)
{
    struct sockaddr_storage sa, sb, from;
    socklen_t salen, sblen, fromlen;
    char buf[64], host[64];
    memset(buf, 0, sizeof buf);
    memset(host, 0, sizeof host);
    int a = udp4(&sa, &salen), b = udp4(&sb, &sblen);
    CHECK(a >= 0 && b >= 0);
    CHECK(iol_sock_sendto(b, "ping", 4, (struct sockaddr *)&sa, salen) == 4);
    CHECK(iol_sock_recvfrom(a, buf, sizeof buf, &from, &fromlen) == 4 &&
          memcmp(buf, "ping", 4) == 0);
    /* The sender is b, by address and port. */
    CHECK(fromlen == sizeof(struct sockaddr_in));
    CHECK(memcmp(&((struct sockaddr_in *)&from)->sin_port,
                 &((struct sockaddr_in *)&sb)->sin_port, 2) == 0);
    CHECK(iol_sock_addr_host((struct sockaddr *)&from, fromlen, host,
                             sizeof host) == 0 &&
          strcmp(host, "127.0.0.1") == 0);
    /* Too big for UDP: nothing is sent. */
    size_t big = 70000;
    char *huge = calloc(1, big);
    CHECK(huge != NULL);
    CHECK(iol_sock_sendto(b, huge, big, (struct sockaddr *)&sa, salen) ==
              -1 &&
          errno == EMSGSIZE);
    free(huge);
    CHECK(iol_sock_recvfrom(a, buf, sizeof buf, &from, &fromlen) == -1 &&
          iol_sock_would_block(errno));
    /* Connected to a port nobody listens on: the ICMP answer comes back
     * as ECONNREFUSED on a later call. */
    close(a);
    CHECK(connect(b, (struct sockaddr *)&sa, salen) == 0);
    CHECK(iol_sock_sendto(b, "x", 1, NULL, 0) == 1);
    ssize_t n = -1;
    int err = 0;
    for (int i = 0; i < 200 && err != ECONNREFUSED; i++) {
        n = iol_sock_recvfrom(b, buf, sizeof buf, &from, &fromlen);
        err = n < 0 ? errno : 0;
        if (iol_sock_would_block(err)) {
            usleep(5000);
        }
    }
    CHECK(n == -1 && err == ECONNREFUSED);
    close(b);
}

static void
test_addr_conversions(void)
{
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    char host[64];
    memset(host, 0, sizeof host);
    CHECK(iol_sock_addr_inet(AF_INET, "10.1.2.3", 8080, 0, 0, &sa,
                             &salen) == 0);
    struct sockaddr_in *in = (struct sockaddr_in *)&sa;
    CHECK(salen == sizeof(*in) && ntohs(in->sin_port) == 8080);
    CHECK(iol_sock_addr_host((struct sockaddr *)&sa, salen, host,
                             sizeof host) == 0 &&
          strcmp(host, "10.1.2.3") == 0);
    /* Names and short forms are not numeric here: the caller resolves
     * those another way. */
    CHECK(iol_sock_addr_inet(AF_INET, "localhost", 1, 0, 0, &sa, &salen) ==
              -1 &&
          errno == EINVAL);
    CHECK(iol_sock_addr_inet(AF_INET, "127.1", 1, 0, 0, &sa, &salen) == -1);
    CHECK(iol_sock_addr_inet(AF_INET, "1.2.3.4", 65536, 0, 0, &sa,
                             &salen) == -1 &&
          errno == EINVAL);
    CHECK(iol_sock_addr_inet(AF_INET6, "::1", 53, 7, 0, &sa, &salen) == 0);
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
    CHECK(salen == sizeof(*in6) && ntohs(in6->sin6_port) == 53 &&
          ntohl(in6->sin6_flowinfo) == 7);
    CHECK(iol_sock_addr_host((struct sockaddr *)&sa, salen, host,
                             sizeof host) == 0 &&
          strcmp(host, "::1") == 0);
    CHECK(iol_sock_addr_inet(AF_INET6, "fe80::1%lo", 1, 0, 0, &sa,
                             &salen) == -1);
    CHECK(iol_sock_addr_inet(AF_UNIX, "x", 1, 0, 0, &sa, &salen) == -1 &&
          errno == EAFNOSUPPORT);
    CHECK(iol_sock_addr_unix("/tmp/x", 6, &sa, &salen) == 0);
    CHECK(iol_sock_addr_host((struct sockaddr *)&sa, salen, host,
                             sizeof host) == -1 &&
          errno == EAFNOSUPPORT);
}

/* The hand-made dotted quad is inet_ntop()'s, byte for byte, for every
 * digit count in every position, and a short buffer is an error. */
static void
test_ipv4_text(void)
{
    static const unsigned char vals[] = {0, 1, 9, 10, 42, 99, 100, 127,
                                         199, 200, 250, 255};
    size_t nv = sizeof vals;
    char mine[16], theirs[INET_ADDRSTRLEN];
    int bad = 0;
    for (size_t i = 0; i < nv * nv * nv * nv; i++) {
        unsigned char b[4] = {vals[i % nv], vals[i / nv % nv],
                              vals[i / (nv * nv) % nv],
                              vals[i / (nv * nv * nv) % nv]};
        int n = iol_sock_ipv4_text(b, mine, sizeof mine);
        inet_ntop(AF_INET, b, theirs, sizeof theirs);
        if (n != (int)strlen(theirs) || strcmp(mine, theirs) != 0) {
            bad++;
        }
    }
    CHECK(bad == 0);
    unsigned char top[4] = {255, 255, 255, 255};
    CHECK(iol_sock_ipv4_text(top, mine, 15) == -1 && errno == ENOSPC);
    CHECK(iol_sock_ipv4_text(top, mine, 16) == 15);
    unsigned char zero[4] = {0, 0, 0, 0};
    CHECK(iol_sock_ipv4_text(zero, mine, 8) == 7 &&
          strcmp(mine, "0.0.0.0") == 0);
}

/* A listening TCP socket on 127.0.0.1, non-blocking; its port in *port. */
static int
listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    int fl = fcntl(fd, F_GETFL);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0 || fl == -1 ||
        fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1) {
        close(fd);
        return -1;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

/* A blocking connect to 127.0.0.1:port; the kernel completes it before
 * accept(), so it is queued when this returns. */
static int
connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)port);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void
test_accept_batch(void)
{
    enum { N = 5 };
    int port = 0, cl[N], err = -1;
    iol_accepted got[N + 2];
    memset(got, 0, sizeof got);
    int lfd = listener(&port);
    CHECK(lfd >= 0);
    /* Nothing queued: EAGAIN at once, nothing accepted. */
    CHECK(iol_sock_accept_batch(lfd, got, N, &err) == 0);
    CHECK(iol_sock_would_block(err));
    for (int i = 0; i < N; i++) {
        cl[i] = connect_to(port);
        CHECK(cl[i] >= 0);
    }
    /* No more than asked for, and no error for stopping there. */
    CHECK(iol_sock_accept_batch(lfd, got, 2, &err) == 2 && err == 0);
    CHECK(iol_sock_accept_batch(lfd, got + 2, N, &err) == N - 2);
    CHECK(iol_sock_would_block(err));
    for (int i = 0; i < N; i++) {
        int fd = got[i].fd;
        CHECK(fd >= 0);
        CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        const struct sockaddr_in *peer =
            (const struct sockaddr_in *)&got[i].addr;
        CHECK(got[i].addrlen == sizeof(struct sockaddr_in));
        CHECK(peer->sin_family == AF_INET);
        CHECK(peer->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
        /* The accepted end talks to the client it came from. */
        struct sockaddr_in local;
        socklen_t len = sizeof local;
        CHECK(getsockname(cl[i], (struct sockaddr *)&local, &len) == 0);
        int match = 0;
        for (int j = 0; j < N; j++) {
            const struct sockaddr_in *p =
                (const struct sockaddr_in *)&got[j].addr;
            match += p->sin_port == local.sin_port;
        }
        CHECK(match == 1);
    }
    char buf[4] = "abc";
    CHECK(iol_sock_send(cl[0], buf, 3) == 3);
    int seen = 0;
    for (int i = 0; i < N; i++) {
        char in[4] = {0};
        if (iol_sock_recv(got[i].fd, in, sizeof in) == 3) {
            seen += memcmp(in, "abc", 3) == 0;
        }
    }
    CHECK(seen == 1);
    for (int i = 0; i < N; i++) {
        close(cl[i]);
        close(got[i].fd);
    }
    close(lfd);
}

/* At the fd limit accept() fails with EMFILE and the connection stays
 * queued: once an fd is free, the next batch takes it. */
static void
test_accept_emfile(void)
{
    int port = 0, err = 0;
    iol_accepted got[2];
    memset(got, 0, sizeof got);
    int lfd = listener(&port);
    int cl = connect_to(port);
    CHECK(lfd >= 0 && cl >= 0);
    int spare = dup(0);
    CHECK(spare >= 0);
    struct rlimit old, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    /* The highest fd in use is at most spare's neighbourhood; a limit of
     * spare + 1 leaves no number free once spare is held. */
    int top = spare > lfd ? spare : lfd;
    top = top > cl ? top : cl;
    low = old;
    low.rlim_cur = (rlim_t)top + 1;
    /* Fill every number below the limit, so none is free. */
    int filler[64];
    int nfill = 0;
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
    while (nfill < 64) {
        int f = dup(0);
        if (f < 0) {
            break;
        }
        filler[nfill++] = f;
    }
    CHECK(iol_sock_accept_batch(lfd, got, 2, &err) == 0 && err == EMFILE);
    close(spare);
    for (int i = 0; i < nfill; i++) {
        close(filler[i]);
    }
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
    int n = iol_sock_accept_batch(lfd, got, 2, &err);
    CHECK(n == (RUNNING_ON_VALGRIND ? 0 : 1));
    CHECK(iol_sock_would_block(err));
    if (n == 1) {
        close(got[0].fd);
    }
    close(cl);
    close(lfd);
}

static void
test_accept_bad(void)
{
    int err = 0;
    iol_accepted got[1];
    memset(got, 0, sizeof got);
    CHECK(iol_sock_accept_batch(-1, got, 1, &err) == 0 && err == EBADF);
    /* A socket that is not listening. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0);
    CHECK(iol_sock_accept_batch(s, got, 1, &err) == 0 && err == EINVAL);
    close(s);
    /* max 0 asks for nothing and gets nothing, without a call. */
    CHECK(iol_sock_accept_batch(-1, got, 0, &err) == 0 && err == 0);
}


int
main(void)
{
    signal(SIGPIPE, SIG_DFL);
    test_send_recv();
    test_writev();
    test_full_buffer();
    test_peer_closed();
    test_shutdown();
    test_bad_fds();
    test_datagram_unix();
    test_datagram_inet();
    test_addr_conversions();
    test_ipv4_text();
    test_accept_batch();
    test_accept_emfile();
    test_accept_bad();
    return ctest_done("test_sock");
}
