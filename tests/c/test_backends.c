/* test_backends.c: every compiled backend, the same checks. */
#include "ctest.h"
#include "iol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

static int
find(const iol_event *ev, int n, int fd)
{
    for (int i = 0; i < n; i++) {
        if (ev[i].fd == fd) {
            return ev[i].mask;
        }
    }
    return -1;
}

static void
check_backend(const iol_backend *be)
{
    printf("backend %s\n", be->name);
    void *st = be->create();
    CHECK(st != NULL);
    iol_event ev[256];
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);

    /* Nothing watched, zero timeout: no events. */
    CHECK(be->wait(st, 0, ev, 256) == 0);

    /* Readable after the peer writes. */
    CHECK(be->set(st, sv[0], 0, IOL_READ) == 0);
    CHECK(be->wait(st, 0, ev, 256) == 0);
    CHECK(write(sv[1], "x", 1) == 1);
    int n = be->wait(st, 0, ev, 256);
    CHECK(n == 1 && (find(ev, n, sv[0]) & IOL_READ));

    /* READ -> WRITE: a socket with room is writable, not reported
     * readable any more. */
    CHECK(be->set(st, sv[0], IOL_READ, IOL_WRITE) == 0);
    n = be->wait(st, 0, ev, 256);
    CHECK(n == 1 && find(ev, n, sv[0]) == IOL_WRITE);
    CHECK(be->set(st, sv[0], IOL_WRITE, IOL_READ | IOL_WRITE) == 0);
    n = be->wait(st, 0, ev, 256);
    CHECK(n == 1 && find(ev, n, sv[0]) == (IOL_READ | IOL_WRITE));

    /* Removed: silent. */
    CHECK(be->set(st, sv[0], IOL_READ | IOL_WRITE, 0) == 0);
    CHECK(be->wait(st, 0, ev, 256) == 0);

    /* A timeout is never cut short: rounded up, not down. */
    CHECK(be->set(st, sv[1], 0, IOL_READ) == 0);
    int64_t t0 = iol_clock_mono_ns();
    n = be->wait(st, 1500000, ev, 256);
    int64_t took = iol_clock_mono_ns() - t0;
    CHECK(n == 0);
    CHECK(took >= 1500000);

    /* Peer closed: hang-up or readable EOF. */
    close(sv[0]);
    n = be->wait(st, 0, ev, 256);
    CHECK(n == 1 && (find(ev, n, sv[1]) & (IOL_READ | IOL_HUP)));
    CHECK(be->set(st, sv[1], IOL_READ, 0) == 0);

    /* Bad fds: negative, closed. */
    CHECK(be->set(st, -1, 0, IOL_READ) == -1 && errno == EBADF);
    int closed_fd = dup(sv[1]);
    close(closed_fd);
    CHECK(be->set(st, closed_fd, 0, IOL_READ) == -1 && errno == EBADF);

    /* A regular file: epoll refuses it (EPERM) and keeps nothing, so the
     * same number can be added again once it is a socket. */
    FILE *f = tmpfile();
    int ffd = fileno(f);
    int r = be->set(st, ffd, 0, IOL_READ);
    if (strcmp(be->name, "epoll") == 0) {
        CHECK(r == -1 && errno == EPERM);
    }
    else {
        CHECK(r == 0);
        CHECK(be->set(st, ffd, IOL_READ, 0) == 0);
    }
    fclose(f);
    int sv2[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0);
    if (sv2[0] != ffd) {
        CHECK(dup2(sv2[0], ffd) == ffd);
        close(sv2[0]);
        sv2[0] = ffd;
    }
    CHECK(be->set(st, sv2[0], 0, IOL_READ) == 0);
    CHECK(write(sv2[1], "y", 1) == 1);
    n = be->wait(st, 0, ev, 256);
    CHECK(n == 1 && (find(ev, n, sv2[0]) & IOL_READ));

    /* Closed while registered: the wait does not fail or crash.  poll
     * and select report it as an error; epoll forgets it. */
    close(sv2[0]);
    n = be->wait(st, 0, ev, 256);
    CHECK(n >= 0);
    if (strcmp(be->name, "epoll") != 0) {
        CHECK(n == 1 && (find(ev, n, sv2[0]) & IOL_ERR));
    }
    CHECK(be->set(st, sv2[0], IOL_READ, 0) == 0);
    CHECK(be->wait(st, 0, ev, 256) == 0);
    close(sv2[1]);
    close(sv[1]);

    /* 200 socketpairs, 2 active: exactly those two are reported. */
    int pairs[200][2];
    for (int i = 0; i < 200; i++) {
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) == 0);
        CHECK(be->set(st, pairs[i][0], 0, IOL_READ) == 0);
    }
    CHECK(write(pairs[17][1], "a", 1) == 1);
    CHECK(write(pairs[150][1], "b", 1) == 1);
    n = be->wait(st, 0, ev, 256);
    CHECK(n == 2);
    CHECK(find(ev, n, pairs[17][0]) == IOL_READ);
    CHECK(find(ev, n, pairs[150][0]) == IOL_READ);
    /* A small event buffer is respected. */
    n = be->wait(st, 0, ev, 1);
    CHECK(n == 1);
    for (int i = 0; i < 200; i++) {
        CHECK(be->set(st, pairs[i][0], IOL_READ, 0) == 0);
        close(pairs[i][0]);
        close(pairs[i][1]);
    }

    /* select cannot watch fds at or past FD_SETSIZE. */
    if (strcmp(be->name, "select") == 0) {
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur > FD_SETSIZE + 1) {
            int high = dup2(STDIN_FILENO, FD_SETSIZE);
            CHECK(high == FD_SETSIZE);
            CHECK(be->set(st, high, 0, IOL_READ) == -1 && errno == EINVAL);
            close(high);
        }
        else {
            printf("  (RLIMIT_NOFILE too low to test fd >= FD_SETSIZE)\n");
        }
    }
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
    CHECK(count >= 2);
    CHECK(iol_backend_find("no-such-backend") == NULL);
    return ctest_done("test_backends");
}
