/* test_waker.c: the waker wakes each backend's wait, also from another
 * thread, and its fds are close-on-exec and non-blocking. */
#include "ctest.h"
#include "iol.h"

#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static void *
signal_later(void *arg)
{
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    iol_waker_signal(arg);
    return NULL;
}

int
main(void)
{
    iol_waker w;
    CHECK(iol_waker_open(&w) == 0);
    CHECK(fcntl(w.rfd, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(w.rfd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(w.wfd, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(w.wfd, F_GETFL) & O_NONBLOCK);

    for (int b = 0; iol_backends[b] != NULL; b++) {
        const iol_backend *be = iol_backends[b];
        void *st = be->create();
        CHECK(st != NULL);
        CHECK(be->set(st, w.rfd, 0, IOL_READ) == 0);
        iol_event ev[4];

        /* Signalled twice, drained once: no longer readable. */
        CHECK(iol_waker_signal(&w) == 0);
        CHECK(iol_waker_signal(&w) == 0);
        int n = be->wait(st, 0, ev, 4);
        CHECK(n == 1 && ev[0].fd == w.rfd && (ev[0].mask & IOL_READ));
        CHECK(iol_waker_drain(&w) == 0);
        CHECK(be->wait(st, 0, ev, 4) == 0);

        /* Another thread wakes a wait that would otherwise last 10 s. */
        pthread_t th;
        int64_t t0 = iol_clock_mono_ns();
        CHECK(pthread_create(&th, NULL, signal_later, &w) == 0);
        n = be->wait(st, 10 * (int64_t)1000000000, ev, 4);
        int64_t took = iol_clock_mono_ns() - t0;
        pthread_join(th, NULL);
        CHECK(n == 1 && ev[0].fd == w.rfd);
        CHECK(took < 5 * (int64_t)1000000000);
        CHECK(iol_waker_drain(&w) == 0);
        CHECK(be->set(st, w.rfd, IOL_READ, 0) == 0);
        be->destroy(st);
    }
    iol_waker_close(&w);
    CHECK(w.rfd == -1 && w.wfd == -1);
    return ctest_done("test_waker");
}
