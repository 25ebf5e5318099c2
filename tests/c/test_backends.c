/*
 * test_backends.c: every backend in iol_backends[], the same scenarios.
 *
 * Where the backends differ by design (epoll refuses regular files, select
 * has no hang-up bit, a closed fd is an error event under poll and select
 * but silence under epoll), the expectation names the backend, so each
 * difference is pinned down here rather than discovered by the binding.
 */
#include "ctest.h"
#include "iol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAXEV 256
#define MS ((int64_t)1000000)

static iol_event ev[MAXEV];

static int
is(const iol_backend *be, const char *name)
{
    return strcmp(be->name, name) == 0;
}

/* The mask reported for fd among n events, or -1 if it is absent. */
static int
mask_of(int n, int fd)
{
    for (int i = 0; i < n; i++) {
        if (ev[i].fd == fd) {
            return ev[i].mask;
        }
    }
    return -1;
}

static int
pair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
}

/* Give `fd` the number `want` (closing what held it), for tests that
 * need a new description under an old number. */
static int
renumber(int fd, int want)
{
    if (fd == want) {
        return fd;
    }
    if (dup2(fd, want) != want) {
        return -1;
    }
    close(fd);
    return want;
}

static void
test_create_destroy(const iol_backend *be)
{
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        void *st = be->create();
        ok &= st != NULL;
        if (st != NULL) {
            ok &= be->wait(st, 0, ev, MAXEV) == 0;
            be->destroy(st);
        }
    }
    CHECK(ok);
}

static void
test_read_write(const iol_backend *be, void *st)
{
    int sv[2];
    char c;
    CHECK(pair(sv) == 0);
    CHECK(be->set(st, sv[0], 0, IOL_READ) == 0);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);

    /* Readable once the peer writes, level-triggered until read. */
    CHECK(write(sv[1], "x", 1) == 1);
    int n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, sv[0]) == IOL_READ);
    n = be->wait(st, IOL_WAIT_FOREVER, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, sv[0]) == IOL_READ);

    /* READ -> WRITE: writable, and the pending byte no longer shows. */
    CHECK(be->set(st, sv[0], IOL_READ, IOL_WRITE) == 0);
    n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, sv[0]) == IOL_WRITE);
    CHECK(be->set(st, sv[0], IOL_WRITE, IOL_READ | IOL_WRITE) == 0);
    n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, sv[0]) == (IOL_READ | IOL_WRITE));

    /* -> 0: silent, though readable and writable; removing again (or an
     * fd never added) is not an error. */
    CHECK(be->set(st, sv[0], IOL_READ | IOL_WRITE, 0) == 0);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    CHECK(be->set(st, sv[0], IOL_READ, 0) == 0);
    CHECK(be->set(st, sv[1], IOL_READ, 0) == 0);

    /* Added back, then drained: quiet again. */
    CHECK(be->set(st, sv[0], 0, IOL_READ) == 0);
    CHECK(be->wait(st, 0, ev, MAXEV) == 1);
    CHECK(read(sv[0], &c, 1) == 1);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    CHECK(be->set(st, sv[0], IOL_READ, 0) == 0);

    /* A huge timeout is clamped, not refused, and ready data ends it. */
    CHECK(be->set(st, sv[1], 0, IOL_WRITE) == 0);
    n = be->wait(st, INT64_MAX, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, sv[1]) == IOL_WRITE);
    CHECK(be->set(st, sv[1], IOL_WRITE, 0) == 0);

    /* No room for events: refused rather than returning at once. */
    CHECK(be->wait(st, 0, ev, 0) == -1 && errno == EINVAL);
    close(sv[0]);
    close(sv[1]);
}

static void
test_bad_fds(const iol_backend *be, void *st)
{
    int sv[2];
    CHECK(pair(sv) == 0);
    CHECK(be->set(st, -1, 0, IOL_READ) == -1 && errno == EBADF);
    int closed = dup(sv[0]);
    CHECK(closed >= 0);
    close(closed);
    CHECK(be->set(st, closed, 0, IOL_READ) == -1 && errno == EBADF);
    CHECK(be->set(st, closed, IOL_READ, IOL_WRITE) == -1 && errno == EBADF);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);

    /* A regular file: epoll refuses it with EPERM and keeps nothing, so a
     * socket given the same number later is added and watched afresh.
     * The others take it as always ready. */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    int ffd = fileno(f);
    int r = be->set(st, ffd, 0, IOL_READ);
    if (is(be, "epoll")) {
        CHECK(r == -1 && errno == EPERM);
        CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    }
    else {
        CHECK(r == 0);
        int n = be->wait(st, 0, ev, MAXEV);
        CHECK(n == 1 && (mask_of(n, ffd) & IOL_READ));
        CHECK(be->set(st, ffd, IOL_READ, 0) == 0);
    }
    fclose(f);
    CHECK(renumber(sv[0], ffd) == ffd);
    CHECK(be->set(st, ffd, 0, IOL_READ) == 0);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    CHECK(write(sv[1], "y", 1) == 1);
    int n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, ffd) == IOL_READ);
    CHECK(be->set(st, ffd, IOL_READ, 0) == 0);
    close(ffd);
    close(sv[1]);
}

static void
test_timeout(const iol_backend *be, void *st)
{
    int sv[2];
    CHECK(pair(sv) == 0);
    CHECK(be->set(st, sv[0], 0, IOL_READ) == 0);
    /* 1.5 ms must not become 1 ms: rounded up, never cut short.  A few
     * rounds, since an early return may depend on where in a clock tick
     * the wait starts. */
    int ok = 1;
    int64_t shortest = INT64_MAX;
    for (int i = 0; i < 5; i++) {
        int64_t t0 = iol_clock_mono_ns();
        int n = be->wait(st, 1500000, ev, MAXEV);
        int64_t took = iol_clock_mono_ns() - t0;
        ok &= n == 0;
        shortest = took < shortest ? took : shortest;
    }
    CHECK(ok);
    CHECK(shortest >= 1500000);
    if (shortest < 1500000) {
        fprintf(stderr, "  %s: a 1.5 ms wait took %lld ns\n", be->name,
                (long long)shortest);
    }
    /* A zero timeout does not block. */
    int64_t t0 = iol_clock_mono_ns();
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    CHECK(iol_clock_mono_ns() - t0 < 1000 * MS);
    CHECK(be->set(st, sv[0], IOL_READ, 0) == 0);
    close(sv[0]);
    close(sv[1]);
}

static void
on_alarm(int sig)
{
    (void)sig;
}

static void
test_eintr(const iol_backend *be, void *st)
{
    /* A signal ends the wait with EINTR; retrying is the caller's call. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, &old) == 0);
    struct itimerval it = {{0, 0}, {0, 20000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
    int64_t t0 = iol_clock_mono_ns();
    int r = be->wait(st, 10000 * MS, ev, MAXEV);
    int err = errno;
    CHECK(r == -1 && err == EINTR);
    CHECK(iol_clock_mono_ns() - t0 < 5000 * MS);
    CHECK(sigaction(SIGALRM, &old, NULL) == 0);
}

static void
test_hangup(const iol_backend *be, void *st)
{
    int sv[2];
    /* Half close: the peer shuts down writing only. */
    CHECK(pair(sv) == 0);
    CHECK(be->set(st, sv[0], 0, IOL_READ) == 0);
    CHECK(shutdown(sv[1], SHUT_WR) == 0);
    int n = be->wait(st, 0, ev, MAXEV);
    int m = mask_of(n, sv[0]);
    CHECK(n == 1 && (m & IOL_READ));
    if (!is(be, "kqueue")) {
        CHECK(!(m & IOL_HUP)); /* kqueue's EV_EOF says HUP here */
    }
    CHECK(be->set(st, sv[0], IOL_READ, 0) == 0);
    close(sv[0]);
    close(sv[1]);

    /* Full close: a hang-up, except under select, which has no such bit
     * and shows it as readable (read() gives 0). */
    CHECK(pair(sv) == 0);
    CHECK(be->set(st, sv[0], 0, IOL_READ) == 0);
    close(sv[1]);
    n = be->wait(st, 0, ev, MAXEV);
    m = mask_of(n, sv[0]);
    CHECK(n == 1);
    if (is(be, "select")) {
        CHECK(m == IOL_READ);
    }
    else {
        CHECK(m == (IOL_READ | IOL_HUP));
    }
    CHECK(be->set(st, sv[0], IOL_READ, 0) == 0);
    close(sv[0]);
}

static void
test_socket_error(const iol_backend *be, void *st)
{
    /* A refused connect: an error bit, except under select, where it
     * shows as writable (and getsockopt(SO_ERROR) tells).  Linux sets
     * both ERR and HUP; kqueue reports EV_EOF. */
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(probe >= 0);
    CHECK(bind(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    CHECK(getsockname(probe, (struct sockaddr *)&sa, &len) == 0);
    close(probe); /* now nothing listens on that port */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(s >= 0 && iol_fd_set_cloexec_nonblock(s) == 0);
    int r = connect(s, (struct sockaddr *)&sa, sizeof(sa));
    CHECK(r == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
    CHECK(be->set(st, s, 0, IOL_WRITE) == 0);
    int n = be->wait(st, 5000 * MS, ev, MAXEV);
    int m = mask_of(n, s);
    CHECK(n == 1);
    if (is(be, "select")) {
        CHECK(m != -1 && (m & IOL_WRITE));
    }
    else if (is(be, "kqueue")) {
        CHECK(m != -1 && (m & IOL_ERROR)); /* EV_EOF: HUP */
    }
    else {
        CHECK(m != -1 && (m & IOL_ERR)); /* POLLERR, from sk_err */
    }
    CHECK(be->set(st, s, IOL_WRITE, 0) == 0);
    close(s);
}

static void
test_closed_while_registered(const iol_backend *be, void *st)
{
    int sv[2];
    CHECK(pair(sv) == 0);
    int a = sv[0];
    CHECK(be->set(st, a, 0, IOL_READ) == 0);
    CHECK(write(sv[1], "z", 1) == 1);
    close(a);
    /* Must not fail or crash.  epoll forgot the fd with its last close;
     * poll (POLLNVAL) and select (EBADF, then a check) report IOL_ERR. */
    int n = be->wait(st, 0, ev, MAXEV);
    if (is(be, "epoll") || is(be, "kqueue")) {
        CHECK(n == 0);
    }
    else {
        CHECK(n == 1 && mask_of(n, a) == IOL_ERR);
    }
    CHECK(be->set(st, a, IOL_READ, 0) == 0);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);

    /* The number reused by a new socket while the caller still believes
     * the old one registered: a modify must watch the new one (epoll:
     * MOD gives ENOENT, so ADD). */
    CHECK(be->set(st, a, 0, IOL_READ) == -1 && errno == EBADF);
    int sv2[2];
    CHECK(pair(sv2) == 0);
    CHECK(renumber(sv2[0], a) == a);
    CHECK(be->set(st, a, IOL_READ, IOL_READ | IOL_WRITE) == 0);
    n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, a) == IOL_WRITE);
    CHECK(write(sv2[1], "w", 1) == 1);
    n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, a) == (IOL_READ | IOL_WRITE));
    CHECK(be->set(st, a, IOL_READ | IOL_WRITE, 0) == 0);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    close(a);
    close(sv2[1]);
    close(sv[1]);
}

static void
test_closed_with_dup(const iol_backend *be, void *st)
{
    int sv[2];
    CHECK(pair(sv) == 0);
    int a = sv[0];
    CHECK(be->set(st, a, 0, IOL_READ) == 0);
    int b = dup(a);
    CHECK(b >= 0);
    close(a);
    CHECK(write(sv[1], "d", 1) == 1);
    /* epoll keys on the description, which b keeps alive: its events go
     * on arriving under the closed number a, even after a remove (DEL of
     * a closed fd fails with EBADF, taken as success).  The caller must
     * drop events for fds it does not know. */
    int n = be->wait(st, 0, ev, MAXEV);
    if (is(be, "epoll")) {
        CHECK(n == 1 && mask_of(n, a) == IOL_READ);
    }
    else if (!is(be, "kqueue")) {
        CHECK(n == 1 && mask_of(n, a) == IOL_ERR);
    }
    CHECK(be->set(st, a, IOL_READ, 0) == 0);
    n = be->wait(st, 0, ev, MAXEV);
    if (is(be, "epoll")) {
        CHECK(n == 1 && mask_of(n, a) == IOL_READ);
    }
    else {
        CHECK(n == 0);
    }
    /* a made to name the same description again: ADD meets EEXIST under
     * epoll and becomes MOD; after that a remove really removes. */
    CHECK(dup2(b, a) == a);
    CHECK(be->set(st, a, 0, IOL_READ) == 0);
    n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 1 && mask_of(n, a) == IOL_READ);
    CHECK(be->set(st, a, IOL_READ, 0) == 0);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    close(a);
    close(b);
    close(sv[1]);
}

static void
test_many(const iol_backend *be, void *st)
{
    /* 200 socketpairs, 1% active: exactly the active ones. */
    enum { NPAIRS = 200 };
    static int p[NPAIRS][2];
    int ok = 1;
    for (int i = 0; i < NPAIRS; i++) {
        ok &= pair(p[i]) == 0;
        ok &= be->set(st, p[i][0], 0, IOL_READ) == 0;
    }
    CHECK(ok);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    CHECK(write(p[17][1], "a", 1) == 1);
    CHECK(write(p[150][1], "b", 1) == 1);
    int n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 2);
    CHECK(mask_of(n, p[17][0]) == IOL_READ);
    CHECK(mask_of(n, p[150][0]) == IOL_READ);

    /* A one-event buffer: both still get their turn on successive waits,
     * so a short buffer cannot starve an fd. */
    int first = -1, second = -1;
    CHECK(be->wait(st, 0, ev, 1) == 1);
    first = ev[0].fd;
    CHECK(be->wait(st, 0, ev, 1) == 1);
    second = ev[0].fd;
    CHECK(first != second);
    CHECK((first == p[17][0] || first == p[150][0]) &&
          (second == p[17][0] || second == p[150][0]));

    /* Removing every other pair keeps the rest watched correctly. */
    for (int i = 0; i < NPAIRS; i += 2) {
        ok &= be->set(st, p[i][0], IOL_READ, 0) == 0;
    }
    CHECK(ok);
    CHECK(write(p[199][1], "c", 1) == 1);
    n = be->wait(st, 0, ev, MAXEV);
    CHECK(n == 2); /* 17 and 199; 150 is even, removed */
    CHECK(mask_of(n, p[17][0]) == IOL_READ);
    CHECK(mask_of(n, p[199][0]) == IOL_READ);
    for (int i = 0; i < NPAIRS; i++) {
        if (i % 2) {
            ok &= be->set(st, p[i][0], IOL_READ, 0) == 0;
        }
        close(p[i][0]);
        close(p[i][1]);
    }
    CHECK(ok);
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
}

static void
test_high_fd(const iol_backend *be, void *st)
{
    /* Past FD_SETSIZE: select refuses (EINVAL); the others watch it. */
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    int high = FD_SETSIZE + 10;
    if (rl.rlim_cur <= (rlim_t)high) {
        printf("  %s: RLIMIT_NOFILE %llu too low to test fd %d; skipped\n",
               be->name, (unsigned long long)rl.rlim_cur, high);
        return;
    }
    int sv[2];
    CHECK(pair(sv) == 0);
    CHECK(renumber(sv[0], high) == high);
    if (is(be, "select")) {
        CHECK(be->set(st, high, 0, IOL_READ) == -1 && errno == EINVAL);
    }
    else {
        CHECK(be->set(st, high, 0, IOL_READ) == 0);
        CHECK(write(sv[1], "h", 1) == 1);
        int n = be->wait(st, 0, ev, MAXEV);
        CHECK(n == 1 && mask_of(n, high) == IOL_READ);
        CHECK(be->set(st, high, IOL_READ, 0) == 0);
    }
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    close(high);
    close(sv[1]);
}

static void
check_backend(const iol_backend *be)
{
    printf("backend %s\n", be->name);
    test_create_destroy(be);
    void *st = be->create();
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }
    test_read_write(be, st);
    test_bad_fds(be, st);
    test_timeout(be, st);
    test_eintr(be, st);
    test_hangup(be, st);
    test_socket_error(be, st);
    test_closed_while_registered(be, st);
    test_closed_with_dup(be, st);
    test_many(be, st);
    test_high_fd(be, st);
    /* Every scenario cleaned up after itself. */
    CHECK(be->wait(st, 0, ev, MAXEV) == 0);
    be->destroy(st);
}

int
main(void)
{
    int count = 0;
    for (int i = 0; iol_backends[i] != NULL; i++) {
        check_backend(iol_backends[i]);
        CHECK(iol_backend_find(iol_backends[i]->name) == iol_backends[i]);
        count++;
    }
#ifdef __linux__
    CHECK(iol_backends[0] == &iol_backend_epoll);
#endif
    CHECK(iol_backend_find("poll") == &iol_backend_poll);
    CHECK(iol_backend_find("select") == &iol_backend_select);
    CHECK(count >= 3);
    CHECK(iol_backend_find("no-such-backend") == NULL);
    CHECK(iol_backend_find(NULL) == NULL);
    return ctest_done("test_backends");
}
