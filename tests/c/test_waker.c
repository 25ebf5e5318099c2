/*
 * test_waker.c: the waker wakes each backend's wait, also from another
 * thread; signals coalesce; its fds are close-on-exec and non-blocking.
 *
 * run.sh builds this twice: as is (eventfd on Linux) and with
 * -DIOL_WAKER_PIPE, so the pipe used on other systems is tested here too.
 */
#include "ctest.h"
#include "iol.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#ifdef IOL_WAKER_PIPE
#define TEST_NAME "test_waker_pipe"
#else
#define TEST_NAME "test_waker"
#endif

#define MS ((int64_t)1000000)

static int
has_flags(int fd)
{
    int fdfl = fcntl(fd, F_GETFD);
    int fl = fcntl(fd, F_GETFL);
    return fdfl != -1 && (fdfl & FD_CLOEXEC) && fl != -1 &&
           (fl & O_NONBLOCK);
}

static void
test_fds(void)
{
    iol_waker w;
    CHECK(iol_waker_open(&w) == 0);
    CHECK(w.rfd >= 0 && w.wfd >= 0);
    CHECK(has_flags(w.rfd));
    CHECK(has_flags(w.wfd));
#if defined(__linux__) && !defined(IOL_WAKER_PIPE)
    CHECK(w.rfd == w.wfd); /* eventfd */
#else
    CHECK(w.rfd != w.wfd); /* pipe */
#endif
    /* Draining an empty waker succeeds and does not block. */
    CHECK(iol_waker_drain(&w) == 0);
    int rfd = w.rfd;
    iol_waker_close(&w);
    CHECK(w.rfd == -1 && w.wfd == -1);
    CHECK(fcntl(rfd, F_GETFD) == -1 && errno == EBADF);
    iol_waker_close(&w); /* twice: harmless */
    CHECK(w.rfd == -1 && w.wfd == -1);

    /* The helper the engine uses on fds it did not create with flags. */
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(!has_flags(p[0]));
    CHECK(iol_fd_set_cloexec_nonblock(p[0]) == 0);
    CHECK(has_flags(p[0]));
    CHECK(iol_fd_set_cloexec_nonblock(p[0]) == 0);
    close(p[0]);
    close(p[1]);
    CHECK(iol_fd_set_cloexec_nonblock(p[0]) == -1 && errno == EBADF);
}

static void
test_saturation(void)
{
    /* Far more signals than a pipe holds (64 KiB on Linux): the extra
     * ones meet EAGAIN, which is success; one drain empties it all. */
    iol_waker w;
    CHECK(iol_waker_open(&w) == 0);
    int ok = 1;
    for (int i = 0; i < 70000; i++) {
        ok &= iol_waker_signal(&w) == 0;
    }
    CHECK(ok);
    CHECK(iol_waker_drain(&w) == 0);
    uint64_t u; /* eventfd reads need 8 bytes */
    CHECK(read(w.rfd, &u, sizeof(u)) == -1 && errno == EAGAIN);
    iol_waker_close(&w);
}

struct later {
    iol_waker *waker;
    int64_t delay_ns;
    int result;
};

static void *
signal_later(void *arg)
{
    struct later *l = arg;
    struct timespec ts = {(time_t)(l->delay_ns / 1000000000),
                          (long)(l->delay_ns % 1000000000)};
    nanosleep(&ts, NULL);
    l->result = iol_waker_signal(l->waker);
    return NULL;
}

static void
test_backend(const iol_backend *be, iol_waker *w)
{
    void *st = be->create();
    CHECK(st != NULL);
    if (st == NULL) {
        return;
    }
    CHECK(be->set(st, w->rfd, 0, IOL_READ) == 0);
    iol_event ev[4];

    /* Signalled twice, drained once: no longer readable. */
    CHECK(be->wait(st, 0, ev, 4) == 0);
    CHECK(iol_waker_signal(w) == 0);
    CHECK(iol_waker_signal(w) == 0);
    int n = be->wait(st, 0, ev, 4);
    CHECK(n == 1 && ev[0].fd == w->rfd && ev[0].mask == IOL_READ);
    CHECK(iol_waker_drain(w) == 0);
    CHECK(be->wait(st, 0, ev, 4) == 0);

    /* A signal made before the wait starts is not lost. */
    CHECK(iol_waker_signal(w) == 0);
    n = be->wait(st, 10000 * MS, ev, 4);
    CHECK(n == 1 && ev[0].fd == w->rfd);
    CHECK(iol_waker_drain(w) == 0);

    /* Another thread wakes a wait that would otherwise last 10 s.  It
     * signals 50 ms in, so the wait must have blocked that long, and it
     * must end well before its timeout (generous: a loaded machine). */
    struct later l = {w, 50 * MS, -1};
    pthread_t th;
    int64_t t0 = iol_clock_mono_ns();
    CHECK(pthread_create(&th, NULL, signal_later, &l) == 0);
    n = be->wait(st, 10000 * MS, ev, 4);
    int64_t took = iol_clock_mono_ns() - t0;
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(l.result == 0);
    CHECK(n == 1 && ev[0].fd == w->rfd && ev[0].mask == IOL_READ);
    CHECK(took >= 50 * MS);
    CHECK(took < 5000 * MS);
    CHECK(iol_waker_drain(w) == 0);
    CHECK(be->wait(st, 0, ev, 4) == 0);

    CHECK(be->set(st, w->rfd, IOL_READ, 0) == 0);
    be->destroy(st);
}

int
main(void)
{
    test_fds();
    test_saturation();
    iol_waker w;
    CHECK(iol_waker_open(&w) == 0);
    for (int b = 0; iol_backends[b] != NULL; b++) {
        test_backend(iol_backends[b], &w);
    }
    iol_waker_close(&w);
    return ctest_done(TEST_NAME);
}
