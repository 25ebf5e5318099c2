/*
 * roofline.c: what the benchmarks' workloads cost with no Python at all.
 *
 *     cc -O2 -o roofline benchmarks/roofline.c && ./roofline [N]
 *
 * The same work the Python benchmarks ask of a loop, done with raw epoll
 * and a small binary heap: a socketpair ping-pong (1 byte each way, a
 * readiness wait before each read), timer churn (insert a timer, remove
 * it), and timers firing (insert N, pop N in order).  Prints one JSON
 * object of nanoseconds per operation; benchmarks/run_all.py shows each
 * Python loop as a fraction of these limits.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- ping-pong ------------------------------------------------------ */

static double
pingpong(long n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0) {
        perror("socketpair");
        exit(1);
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < 2; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = sv[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, sv[i], &ev);
    }
    char c = 'p';
    long trips = 0;
    double t0 = now_ns();
    if (write(sv[0], &c, 1) != 1) {
        exit(1);
    }
    while (trips < n) {
        struct epoll_event evs[2];
        int k = epoll_wait(ep, evs, 2, -1);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            if (read(fd, &c, 1) != 1) {
                exit(1);
            }
            if (fd == sv[0]) {
                trips++;
                if (trips == n) {
                    break;
                }
            }
            if (write(fd, &c, 1) != 1) {
                exit(1);
            }
        }
    }
    double per = (now_ns() - t0) / (double)n;
    close(ep);
    close(sv[0]);
    close(sv[1]);
    return per;
}

/* ---- a binary heap of (when, seq) with slot indexes ------------------ */

typedef struct {
    int64_t when;
    uint64_t seq;
    size_t index;
} timer;

typedef struct {
    timer **items;
    size_t len;
    uint64_t seq;
} heap;

static int
less(const timer *a, const timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void
place(heap *h, size_t i, timer *t)
{
    h->items[i] = t;
    t->index = i;
}

static void
sift_up(heap *h, size_t i)
{
    timer *t = h->items[i];
    while (i > 0 && less(t, h->items[(i - 1) / 2])) {
        place(h, i, h->items[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    place(h, i, t);
}

static void
sift_down(heap *h, size_t i)
{
    timer *t = h->items[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len) {
            break;
        }
        if (c + 1 < h->len && less(h->items[c + 1], h->items[c])) {
            c++;
        }
        if (!less(h->items[c], t)) {
            break;
        }
        place(h, i, h->items[c]);
        i = c;
    }
    place(h, i, t);
}

static void
push(heap *h, timer *t)
{
    t->seq = h->seq++;
    place(h, h->len++, t);
    sift_up(h, h->len - 1);
}

static void
remove_at(heap *h, size_t i)
{
    h->len--;
    if (i != h->len) {
        place(h, i, h->items[h->len]);
        sift_up(h, i);
        sift_down(h, h->items[i]->index);
    }
}

/* Insert a timer 60 s out and remove it again, n times, with `live`
 * other timers in the heap. */
static double
churn(long n, long live)
{
    heap h = {malloc((size_t)(live + 1) * sizeof(timer *)), 0, 0};
    timer *ts = malloc((size_t)(live + 1) * sizeof(timer));
    for (long i = 0; i < live; i++) {
        ts[i].when = 1000000000LL + (int64_t)(rand() % 100000) * 1000000;
        push(&h, &ts[i]);
    }
    timer *t = &ts[live];
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        t->when = 60000000000LL + i;
        push(&h, t);
        remove_at(&h, t->index);
    }
    double per = (now_ns() - t0) / (double)n;
    free(ts);
    free(h.items);
    return per;
}

/* Insert n timers due now, then pop them all in order. */
static double
firing(long n)
{
    heap h = {malloc((size_t)n * sizeof(timer *)), 0, 0};
    timer *ts = malloc((size_t)n * sizeof(timer));
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        ts[i].when = (int64_t)now_ns();
        push(&h, &ts[i]);
    }
    int64_t last = INT64_MIN;
    while (h.len > 0) {
        timer *top = h.items[0];
        if (top->when < last) {
            fprintf(stderr, "heap out of order\n");
            exit(1);
        }
        last = top->when;
        remove_at(&h, 0);
    }
    double per = (now_ns() - t0) / (double)n;
    free(ts);
    free(h.items);
    return per;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    if (n < 1) {
        n = 1;
    }
    srand(1);
    printf("{\"pingpong_ns\": %.1f, \"timer_churn_ns\": %.1f, "
           "\"timers_firing_ns\": %.1f, \"n\": %ld}\n",
           pingpong(n), churn(n, 0), firing(n), n);
    return 0;
}
