/*
 * test_sock.c: the data path's socket calls on socketpairs: data goes
 * through whole and in order, a non-blocking socket says EAGAIN instead
 * of blocking, a gathered write counts its bytes across pieces, a closed
 * peer is EOF for recv and EPIPE (never SIGPIPE) for send, shutdown is a
 * half close, and bad arguments are errors, not crashes.
 */
#include "ctest.h"
#include "sock.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

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
    return ctest_done("test_sock");
}
