/*
 * udp_client.c: a closed-loop load client for UDP echo servers.
 *
 *     cc -O2 -o udp_client benchmarks/udp_client.c
 *
 *     udp_client HOST:PORT [-c CLIENTS] [-s SIZE] [-d SECONDS]
 *                [-w SECONDS] [--server-pid PID]
 *
 * Opens CLIENTS UDP sockets, each connected to the server; each sends a
 * SIZE-byte datagram (its first 8 bytes a sequence number) and waits for
 * its echo, checked byte for byte, before sending the next.  A datagram
 * that gets no answer within 200 ms is counted as lost and sent again
 * with a new number (a late echo of an old number is ignored), so a
 * dropped datagram costs time, not a hang.  One thread, level-triggered
 * epoll.  After a warm-up of -w seconds the counters restart and the
 * client runs -d seconds, then prints one JSON object: round trips per
 * second, the count, losses, p50 / p99 latency in microseconds and, with
 * --server-pid, the server's CPU seconds in the measured phase and round
 * trips per server CPU-second (from /proc/PID/schedstat).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RETRY_NS 200000000LL
#define MAX_SAMPLES (1 << 22)

typedef struct {
    int fd;
    uint64_t seq;
    int64_t sent_at;
} client;

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double
server_cpu(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/schedstat", pid);
    FILE *f = fopen(path, "r");
    unsigned long long ns = 0;
    if (f == NULL) {
        return -1.0;
    }
    if (fscanf(f, "%llu", &ns) != 1) {
        ns = 0;
    }
    fclose(f);
    return (double)ns / 1e9;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void
fill(unsigned char *buf, size_t size, uint64_t seq)
{
    memset(buf, 0, size);
    memcpy(buf, &seq, size < 8 ? size : 8);
    for (size_t i = 8; i < size; i++) {
        buf[i] = (unsigned char)(seq + i);
    }
}

static int
send_next(client *c, unsigned char *buf, size_t size)
{
    c->seq++;
    fill(buf, size, c->seq);
    c->sent_at = now_ns();
    if (send(c->fd, buf, size, 0) < 0 && errno != EAGAIN) {
        perror("send");
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *target = NULL;
    int nclients = 1;
    size_t size = 100;
    double duration = 2.0, warmup = 0.5;
    long server_pid = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            nclients = atoi(argv[++i]);
        }
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            size = (size_t)atol(argv[++i]);
        }
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
            duration = atof(argv[++i]);
        }
        else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
            warmup = atof(argv[++i]);
        }
        else if (strcmp(argv[i], "--server-pid") == 0 && i + 1 < argc) {
            server_pid = atol(argv[++i]);
        }
        else {
            target = argv[i];
        }
    }
    if (target == NULL || nclients < 1 || size < 8 || size > 65000) {
        fprintf(stderr, "usage: udp_client HOST:PORT [-c N] [-s SIZE>=8] "
                        "[-d S] [-w S] [--server-pid PID]\n");
        return 2;
    }
    char host[256];
    const char *colon = strrchr(target, ':');
    if (colon == NULL || (size_t)(colon - target) >= sizeof host) {
        fprintf(stderr, "bad target %s\n", target);
        return 2;
    }
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        fprintf(stderr, "cannot resolve %s\n", target);
        return 2;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    client *cs = calloc((size_t)nclients, sizeof(*cs));
    unsigned char *out = calloc(1, size), *in = calloc(1, size + 1);
    int64_t *lat = calloc(MAX_SAMPLES, sizeof(*lat));
    if (ep < 0 || cs == NULL || out == NULL || in == NULL || lat == NULL) {
        perror("setup");
        return 1;
    }
    for (int i = 0; i < nclients; i++) {
        int fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            perror("socket/connect");
            return 1;
        }
        cs[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("epoll_ctl");
            return 1;
        }
    }
    freeaddrinfo(ai);
    int64_t start = now_ns();
    int64_t measure_at = start + (int64_t)(warmup * 1e9);
    int64_t end = measure_at + (int64_t)(duration * 1e9);
    int measuring = 0;
    long long done = 0, lost = 0;
    size_t nlat = 0;
    double cpu0 = 0.0;
    struct rusage ru0;
    memset(&ru0, 0, sizeof ru0);
    for (int i = 0; i < nclients; i++) {
        if (send_next(&cs[i], out, size) < 0) {
            return 1;
        }
    }
    struct epoll_event evs[256];
    for (;;) {
        int64_t t = now_ns();
        if (!measuring && t >= measure_at) {
            measuring = 1;
            done = lost = 0;
            nlat = 0;
            cpu0 = server_pid ? server_cpu(server_pid) : 0.0;
            getrusage(RUSAGE_SELF, &ru0);
        }
        if (t >= end) {
            break;
        }
        int n = epoll_wait(ep, evs, 256, 20);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int k = 0; k < n; k++) {
            client *c = &cs[evs[k].data.u32];
            for (;;) {
                ssize_t r = recv(c->fd, in, size + 1, 0);
                if (r < 0) {
                    if (errno == EAGAIN || errno == EINTR) {
                        break;
                    }
                    perror("recv");
                    return 1;
                }
                uint64_t seq = 0;
                memcpy(&seq, in, r < 8 ? (size_t)r : 8);
                if (seq != c->seq) {
                    continue; /* a late echo of a datagram sent again */
                }
                fill(out, size, c->seq);
                if ((size_t)r != size || memcmp(in, out, size) != 0) {
                    fprintf(stderr, "echo %llu came back wrong\n",
                            (unsigned long long)seq);
                    return 1;
                }
                int64_t now = now_ns();
                done++;
                if (nlat < MAX_SAMPLES) {
                    lat[nlat++] = now - c->sent_at;
                }
                if (send_next(c, out, size) < 0) {
                    return 1;
                }
            }
        }
        t = now_ns();
        for (int i = 0; i < nclients; i++) {
            if (t - cs[i].sent_at > RETRY_NS) {
                lost++;
                if (send_next(&cs[i], out, size) < 0) {
                    return 1;
                }
            }
        }
    }
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    double elapsed = (double)(now_ns() - measure_at) / 1e9;
    double cpu = 0.0;
    if (server_pid) {
        cpu = server_cpu(server_pid) - cpu0;
    }
    double self_cpu =
        (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
                 ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
        (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
                 ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    qsort(lat, nlat, sizeof(*lat), cmp_i64);
    double p50 = nlat ? (double)lat[nlat / 2] / 1e3 : 0.0;
    double p99 = nlat ? (double)lat[(nlat * 99) / 100] / 1e3 : 0.0;
    printf("{\"rps\": %.1f, \"round_trips\": %lld, \"lost\": %lld, "
           "\"p50_us\": %.1f, \"p99_us\": %.1f, \"client_cpu\": %.3f",
           (double)done / elapsed, done, lost, p50, p99,
           self_cpu / elapsed);
    if (server_pid) {
        printf(", \"server_cpu_s\": %.3f, \"rps_per_server_cpu\": %.1f", cpu,
               cpu > 0 ? (double)done / cpu : 0.0);
    }
    printf("}\n");
    for (int i = 0; i < nclients; i++) {
        close(cs[i].fd);
    }
    close(ep);
    free(cs);
    free(out);
    free(in);
    free(lat);
    return 0;
}
