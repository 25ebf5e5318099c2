/*
 * echo_client.c: a closed-loop load client for echo servers.
 *
 *     cc -O2 -o echo_client benchmarks/echo_client.c -lssl -lcrypto
 *     cc -O2 -DECHO_NO_TLS -o echo_client benchmarks/echo_client.c
 *
 *     echo_client (--tcp HOST:PORT | --unix PATH) [-c CONNS] [-s SIZE]
 *                 [-d SECONDS] [-w SECONDS] [--tls] [--server-pid PID]
 *                 [--check-every N]
 *
 * Opens CONNS connections; each sends a SIZE-byte message and waits for
 * the whole echo (checked byte for byte) before it sends the next one.
 * One thread, non-blocking sockets, level-triggered epoll: one read per
 * readiness, EPOLLOUT asked for only while a send is incomplete.  After
 * a warm-up of -w seconds the counters restart and the client runs for
 * -d seconds, then prints one JSON object: round trips per second (the
 * echo bytes received in the measured time over the message size, so a
 * round trip straddling the start or the end counts for its part), the
 * count of round trips completed, and the p50 / p99 / max latency of a
 * completed round trip in microseconds.  Exits
 * non-zero, with the reason on stderr, if a connection fails or an echo
 * comes back wrong.
 *
 * --server-pid PID adds the CPU time the server process used in the
 * measured phase (from /proc/PID/schedstat or /proc/PID/stat) and, from it, round trips per
 * server CPU-second: on a machine shared with other work, a server that
 * gets only part of its CPU still shows its cost per round trip.  The
 * client's own CPU use is reported too (near 1.0 means the client, not
 * the server, may be the limit).
 *
 * --crlf-end makes the message's last four bytes "\r\n\r\n" (the rest
 * are letters), so a server can read each one with read_until().
 *
 * --spin polls epoll with a zero timeout and never sleeps.  A sleeping
 * client costs both sides a wake-up per burst of echoes (the server's
 * send wakes the client, which then rarely has more than a few events);
 * at 100 B that is a large part of a round trip, the same for every
 * server, and it shrinks the differences between fast servers.  Spinning
 * takes the client's CPU whole (client_cpu reads 1.0 whatever the load).
 *
 * --check-every N checks one echo in N on each connection (the first,
 * then every Nth) and lets the kernel drop the others' bytes unread
 * (recv with MSG_TRUNC: counted, never copied out).  A fully checked
 * echo costs the client a 64 KiB copy and compare per round trip, as
 * much as the server's own copy: at 64 KiB and up that makes the client
 * the limit (client_cpu near 1.0 for every server, the raw C server
 * included), and the rate then measures the client.  Wrong bytes are
 * caught on the checked echoes, and an echo with bytes too many shifts
 * every later one, which the next checked echo catches (one too short
 * stalls its connection, as it does with every echo checked).  TLS
 * echoes are always decrypted and checked.  Default 1 (every echo
 * checked).
 *
 * --tls wraps every connection in TLS (OpenSSL, no certificate check:
 * the servers use a self-signed certificate made for the run).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef ECHO_NO_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

#define READ_CHUNK (256 * 1024)

typedef struct {
    int fd;
    size_t sent;       /* bytes of the current message sent */
    size_t got;        /* bytes of its echo received */
    int want_out;      /* EPOLLOUT registered */
    double t_start;    /* when the current message started, ns */
    unsigned long msgs; /* messages started on this connection */
    int check;         /* the current echo is copied out and compared */
#ifndef ECHO_NO_TLS
    SSL *ssl;
#endif
} conn;

static size_t msg_size = 100;
static unsigned char *msg;
static unsigned char *scratch;
static int epfd = -1;
static int use_tls;
static int spin;       /* --spin: poll epoll without sleeping */
static long check_every = 1; /* --check-every: compare one echo in this many */
#ifndef ECHO_NO_TLS
static SSL_CTX *ssl_ctx;
#endif

/* Latency samples of the measured phase, in ns. */
static double *lat;
static size_t lat_len, lat_cap;
static int measuring;
/* Echo bytes received in the measured phase: the rate of round trips is
 * this over the message size, which stays exact when a run holds only a
 * few round trips per connection (large messages). */
static double bytes_in;

static double
cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU time of a process in seconds, or -1: its main thread's run time
 * in ns from /proc/PID/schedstat (the servers have one thread), else
 * utime + stime from /proc/PID/stat (clock ticks, 10 ms). */
static double
cpu_of_pid(long pid)
{
    char path[64], buf[1024];
    unsigned long long run_ns;
    snprintf(path, sizeof(path), "/proc/%ld/schedstat", pid);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        int ok = fscanf(f, "%llu", &run_ns) == 1;
        fclose(f);
        if (ok) {
            return (double)run_ns / 1e9;
        }
    }
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1.0;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses: state is
     * field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return -1.0;
    }
    unsigned long long ut = 0, st = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2) {
        return -1.0;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void
die(const char *what)
{
    fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void
fail(const char *what)
{
    fprintf(stderr, "echo_client: %s\n", what);
    exit(3);
}

static void
record(double ns)
{
    if (!measuring) {
        return;
    }
    if (lat_len == lat_cap) {
        lat_cap = lat_cap ? lat_cap * 2 : 1 << 16;
        lat = realloc(lat, lat_cap * sizeof(double));
        if (lat == NULL) {
            fail("out of memory");
        }
    }
    lat[lat_len++] = ns;
}

static int
open_socket(const char *tcp, const char *unix_path)
{
    int fd;
    if (unix_path != NULL) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        if (strlen(unix_path) >= sizeof(sa.sun_path)) {
            fail("unix socket path too long");
        }
        strcpy(sa.sun_path, unix_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            die("connect (unix)");
        }
        return fd;
    }
    char host[256];
    const char *colon = strrchr(tcp, ':');
    if (colon == NULL || (size_t)(colon - tcp) >= sizeof(host)) {
        fail("--tcp wants HOST:PORT");
    }
    memcpy(host, tcp, (size_t)(colon - tcp));
    host[colon - tcp] = '\0';
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "echo_client: %s: %s\n", tcp, gai_strerror(rc));
        exit(2);
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        die("connect (tcp)");
    }
    freeaddrinfo(res);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void
set_events(conn *c, int want_out)
{
    struct epoll_event ev;
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        die("epoll_ctl");
    }
    c->want_out = want_out;
}

/* Send what is left of the current message; 0 when all of it went. */
static int
push_out(conn *c)
{
    while (c->sent < msg_size) {
        ssize_t n;
#ifndef ECHO_NO_TLS
        if (use_tls) {
            size_t done = 0;
            int rc = SSL_write_ex(c->ssl, msg + c->sent, msg_size - c->sent,
                                  &done);
            if (rc <= 0) {
                int e = SSL_get_error(c->ssl, rc);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    return 1;
                }
                ERR_print_errors_fp(stderr);
                fail("SSL_write failed");
            }
            c->sent += done;
            continue;
        }
#endif
        n = send(c->fd, msg + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return 1;
            }
            die("send");
        }
        c->sent += (size_t)n;
    }
    return 0;
}

static void
start_message(conn *c)
{
    c->sent = 0;
    c->got = 0;
    c->t_start = now_ns();
    c->check = use_tls || c->msgs % (unsigned long)check_every == 0;
    c->msgs++;
    int pending = push_out(c);
    if (pending != c->want_out) {
        set_events(c, pending);
    }
}

/* Take what has arrived; 1 when the echo is complete. */
static int
pull_in(conn *c)
{
    for (;;) {
        size_t room = msg_size - c->got;
        size_t want = room < READ_CHUNK ? room : READ_CHUNK;
        ssize_t n;
        if (want == 0) {
            return 1;
        }
#ifndef ECHO_NO_TLS
        if (use_tls) {
            size_t done = 0;
            int rc = SSL_read_ex(c->ssl, scratch, want, &done);
            if (rc <= 0) {
                int e = SSL_get_error(c->ssl, rc);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    return 0;
                }
                ERR_print_errors_fp(stderr);
                fail("SSL_read failed or the server closed");
            }
            n = (ssize_t)done;
        }
        else
#endif
        {
            /* An unchecked echo's bytes are dropped by the kernel (TCP's
             * MSG_TRUNC: the length is returned, nothing is copied). */
            n = recv(c->fd, scratch, want, c->check ? 0 : MSG_TRUNC);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return 0;
                }
                die("recv");
            }
            if (n == 0) {
                fail("the server closed a connection");
            }
        }
        if (c->check && memcmp(scratch, msg + c->got, (size_t)n) != 0) {
            fail("the echo differs from the message sent");
        }
        c->got += (size_t)n;
        if (measuring) {
            bytes_in += (double)n;
        }
        if (c->got == msg_size) {
            return 1;
        }
        /* Plain sockets: one read per readiness (level-triggered).  TLS:
         * keep reading while OpenSSL may hold decrypted bytes. */
        if (!use_tls) {
            return 0;
        }
    }
}

static void
on_event(conn *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
        fail("a connection failed (EPOLLERR/EPOLLHUP)");
    }
    if (c->sent < msg_size) {
        int pending = push_out(c);
        if (pending != c->want_out) {
            set_events(c, pending);
        }
    }
    if (events & EPOLLIN) {
        if (pull_in(c)) {
            if (c->sent < msg_size) {
                fail("echo complete before the message was sent");
            }
            record(now_ns() - c->t_start);
            start_message(c);
        }
    }
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
pct(double p)
{
    if (lat_len == 0) {
        return 0.0;
    }
    size_t i = (size_t)(p * (double)(lat_len - 1) + 0.5);
    return lat[i] / 1000.0;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: echo_client (--tcp HOST:PORT | --unix PATH) [-c CONNS] "
            "[-s SIZE] [-d SECONDS] [-w SECONDS] [--tls] [--crlf-end] [--spin] "
            "[--server-pid PID] [--check-every N]\n");
    exit(1);
}

#ifndef ECHO_NO_TLS
static void
tls_handshake(conn *c)
{
    c->ssl = SSL_new(ssl_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        fail("SSL_new");
    }
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* The socket is still blocking here. */
    if (SSL_connect(c->ssl) != 1) {
        ERR_print_errors_fp(stderr);
        fail("TLS handshake failed");
    }
}
#endif

int
main(int argc, char **argv)
{
    const char *tcp = NULL, *unix_path = NULL;
    long nconn = 10, server_pid = 0;
    int crlf_end = 0;
    double duration = 5.0, warmup = 1.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--tls") == 0) {
            use_tls = 1;
            continue;
        }
        if (strcmp(a, "--crlf-end") == 0) {
            crlf_end = 1;
            continue;
        }
        if (strcmp(a, "--spin") == 0) {
            spin = 1;
            continue;
        }
        if (v == NULL) {
            usage();
        }
        if (strcmp(a, "--tcp") == 0) {
            tcp = v;
        }
        else if (strcmp(a, "--unix") == 0) {
            unix_path = v;
        }
        else if (strcmp(a, "-c") == 0) {
            nconn = atol(v);
        }
        else if (strcmp(a, "-s") == 0) {
            msg_size = (size_t)atol(v);
        }
        else if (strcmp(a, "-d") == 0) {
            duration = atof(v);
        }
        else if (strcmp(a, "-w") == 0) {
            warmup = atof(v);
        }
        else if (strcmp(a, "--server-pid") == 0) {
            server_pid = atol(v);
        }
        else if (strcmp(a, "--check-every") == 0) {
            check_every = atol(v);
        }
        else {
            usage();
        }
        i++;
    }
    if ((tcp == NULL) == (unix_path == NULL) || nconn < 1 || msg_size < 1 ||
        duration <= 0 || warmup < 0 || server_pid < 0 || check_every < 1 ||
        (crlf_end && msg_size < 4)) {
        usage();
    }
#ifdef ECHO_NO_TLS
    if (use_tls) {
        fail("built without TLS (ECHO_NO_TLS)");
    }
#else
    if (use_tls) {
        ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (ssl_ctx == NULL) {
            fail("SSL_CTX_new");
        }
        SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
    }
#endif
    signal(SIGPIPE, SIG_IGN);
    msg = malloc(msg_size);
    scratch = malloc(READ_CHUNK);
    conn *conns = calloc((size_t)nconn, sizeof(conn));
    if (msg == NULL || scratch == NULL || conns == NULL) {
        fail("out of memory");
    }
    for (size_t i = 0; i < msg_size; i++) {
        msg[i] = (unsigned char)('a' + (i * 7 + i / 251) % 26);
    }
    if (crlf_end) {
        memcpy(msg + msg_size - 4, "\r\n\r\n", 4);
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        die("epoll_create1");
    }
    for (long i = 0; i < nconn; i++) {
        conn *c = &conns[i];
        c->fd = open_socket(tcp, unix_path);
#ifndef ECHO_NO_TLS
        if (use_tls) {
            tls_handshake(c);
        }
#endif
        int fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            die("fcntl");
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            die("epoll_ctl");
        }
    }
    for (long i = 0; i < nconn; i++) {
        start_message(&conns[i]);
    }

    struct epoll_event evs[256];
    double t0 = now_ns();
    double t_measure = t0 + warmup * 1e9;
    double t_end = t_measure + duration * 1e9;
    double t_begun = t0;
    double srv_cpu0 = server_pid ? cpu_of_pid(server_pid) : -1.0;
    double my_cpu0 = cpu_self_s();
    if (warmup == 0) {
        measuring = 1;
    }
    for (;;) {
        int k = epoll_wait(epfd, evs, 256, spin ? 0 : 100);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            on_event(evs[i].data.ptr, evs[i].events);
        }
        double t = now_ns();
        if (!measuring && t >= t_measure) {
            measuring = 1;
            lat_len = 0;
            bytes_in = 0;
            t_begun = t;
            srv_cpu0 = server_pid ? cpu_of_pid(server_pid) : -1.0;
            my_cpu0 = cpu_self_s();
        }
        if (t >= t_end) {
            break;
        }
        if (k == 0 && measuring && lat_len == 0 &&
            t - t_begun > 10e9) {
            fail("no echo in 10 s");
        }
    }
    double elapsed = (now_ns() - t_begun) / 1e9;
    double srv_cpu = -1.0;
    if (server_pid && srv_cpu0 >= 0) {
        double c1 = cpu_of_pid(server_pid);
        srv_cpu = c1 >= 0 ? c1 - srv_cpu0 : -1.0;
    }
    double my_cpu = cpu_self_s() - my_cpu0;
    double rps = bytes_in / (double)msg_size / elapsed;
    qsort(lat, lat_len, sizeof(double), cmp_double);
    printf("{\"connections\": %ld, \"size\": %zu, \"tls\": %s, "
           "\"transport\": \"%s\", \"seconds\": %.3f, \"round_trips\": %zu, "
           "\"rps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, "
           "\"max_us\": %.1f, \"client_cpu\": %.3f, \"server_cpu\": %.3f, "
           "\"rps_per_server_cpu\": %.1f, \"check_every\": %ld}\n",
           nconn, msg_size, use_tls ? "true" : "false",
           unix_path ? "unix" : "tcp", elapsed, lat_len, rps, pct(0.50),
           pct(0.99), lat_len ? lat[lat_len - 1] / 1000.0 : 0.0,
           my_cpu / elapsed, srv_cpu >= 0 ? srv_cpu / elapsed : -1.0,
           srv_cpu > 0 ? rps * elapsed / srv_cpu : -1.0, check_every);
    for (long i = 0; i < nconn; i++) {
#ifndef ECHO_NO_TLS
        if (conns[i].ssl != NULL) {
            SSL_free(conns[i].ssl);
        }
#endif
        close(conns[i].fd);
    }
#ifndef ECHO_NO_TLS
    if (ssl_ctx != NULL) {
        SSL_CTX_free(ssl_ctx);
    }
#endif
    free(conns);
    free(lat);
    free(scratch);
    free(msg);
    close(epfd);
    return 0;
}
