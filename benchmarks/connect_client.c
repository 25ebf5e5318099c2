/*
 * connect_client.c: a closed-loop connection-rate client.
 *
 *     cc -O2 -o connect_client benchmarks/connect_client.c
 *     connect_client PORT [-c SLOTS] [-d SECONDS] [-w SECONDS]
 *
 * Keeps SLOTS connections in flight to 127.0.0.1:PORT.  Each one
 * connects (non-blocking), sends one byte, waits for that byte to come
 * back and then for the server to close, closes its end and starts over.
 * One thread, epoll.  After a warm-up of -w seconds the count restarts;
 * after -d more seconds it prints one JSON object: completed connections
 * per second, the count, failures (refused, reset, wrong byte), the
 * count including the warm-up (`total`), and the client's own CPU time (near the wall time means the client may be the
 * limit).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, WAIT_ECHO, WAIT_EOF };

typedef struct {
    int fd;
    int state;
} slot;

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static struct sockaddr_in target;

static int
start(int ep, slot *s, int idx)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (s->fd < 0) {
        return -1;
    }
    s->state = CONNECTING;
    if (connect(s->fd, (struct sockaddr *)&target, sizeof target) < 0 &&
        errno != EINPROGRESS) {
        close(s->fd);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)idx};
    return epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

/* Advance one slot; 1 when a connection completed, 0 when it goes on,
 * -1 when it failed (the slot is restarted either way by the caller). */
static int
step(int ep, slot *s, int idx)
{
    char b = 'x';
    if (s->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || send(s->fd, &b, 1, MSG_NOSIGNAL) != 1) {
            return -1;
        }
        s->state = WAIT_ECHO;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)idx};
        return epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) < 0 ? -1 : 0;
    }
    char in[16];
    ssize_t n = recv(s->fd, in, sizeof in, 0);
    if (n < 0) {
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    }
    if (s->state == WAIT_ECHO) {
        if (n != 1 || in[0] != 'x') {
            return -1;
        }
        s->state = WAIT_EOF;
        return 0;
    }
    return n == 0 ? 1 : -1;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: connect_client PORT [-c N] [-d S] [-w S]\n");
        return 2;
    }
    int port = atoi(argv[1]), nslots = 8;
    double duration = 2.0, warmup = 0.5;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-c") == 0) {
            nslots = atoi(argv[i + 1]);
        }
        else if (strcmp(argv[i], "-d") == 0) {
            duration = atof(argv[i + 1]);
        }
        else if (strcmp(argv[i], "-w") == 0) {
            warmup = atof(argv[i + 1]);
        }
    }
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    slot *slots = calloc((size_t)nslots, sizeof *slots);
    if (ep < 0 || slots == NULL) {
        perror("setup");
        return 1;
    }
    for (int i = 0; i < nslots; i++) {
        if (start(ep, &slots[i], i) < 0) {
            perror("connect");
            return 1;
        }
    }
    struct epoll_event evs[256];
    double t0 = now(), measure_from = t0 + warmup;
    double end = measure_from + duration, cpu0 = 0.0;
    long done = 0, failed = 0, total = 0;
    int measuring = 0;
    for (;;) {
        double t = now();
        if (!measuring && t >= measure_from) {
            measuring = 1;
            done = failed = 0;
            cpu0 = cpu();
        }
        if (t >= end) {
            break;
        }
        int n = epoll_wait(ep, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            int idx = (int)evs[i].data.u32;
            slot *s = &slots[idx];
            int r = step(ep, s, idx);
            if (r == 0) {
                continue;
            }
            if (r > 0) {
                done++;
                total++;
            }
            else {
                failed++;
            }
            close(s->fd);
            if (start(ep, s, idx) < 0) {
                perror("connect");
                return 1;
            }
        }
    }
    double took = now() - measure_from;
    printf("{\"cps\": %.1f, \"connections\": %ld, \"failed\": %ld, "
           "\"client_cpu\": %.3f, \"seconds\": %.3f, \"total\": %ld}\n",
           (double)done / took, done, failed, cpu() - cpu0, took, total);
    return 0;
}
