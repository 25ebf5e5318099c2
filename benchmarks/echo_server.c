/*
 * echo_server.c: the roofline of the echo benchmark, an echo server in C
 * with raw epoll and no Python.
 *
 *     cc -O2 -o echo_server benchmarks/echo_server.c
 *     echo_server (--tcp PORT | --unix PATH)
 *
 * One thread, level-triggered epoll, non-blocking sockets.  Each
 * readiness: one recv() into a 256 KiB buffer, one send() of what came;
 * what the kernel does not take waits in the connection's buffer with
 * EPOLLOUT on and reading paused, so memory stays bounded.  Prints
 * "serving on PORT" (or the path) once listening, then runs until killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF (256 * 1024)

typedef struct {
    int fd;
    size_t off, len;   /* bytes of buf still to send */
    unsigned char buf[BUF];
} conn;

static int epfd;

static void
die(const char *what)
{
    fprintf(stderr, "echo_server: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void
drop(conn *c)
{
    close(c->fd);
    free(c);
}

static void
want(conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        die("epoll_ctl");
    }
}

/* 0: all sent; 1: some left (EAGAIN); -1: the connection is gone. */
static int
flush(conn *c)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return 1;
            }
            return -1;
        }
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    return 0;
}

static void
on_conn(conn *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        int rc = flush(c);
        if (rc < 0) {
            drop(c);
            return;
        }
        if (rc == 0) {
            want(c, EPOLLIN);
        }
        return;
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        return;
    }
    ssize_t n = recv(c->fd, c->buf, BUF, 0);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        drop(c);
        return;
    }
    c->off = 0;
    c->len = (size_t)n;
    int rc = flush(c);
    if (rc < 0) {
        drop(c);
    }
    else if (rc > 0) {
        want(c, EPOLLOUT);
    }
}

static void
on_accept(int lfd, int tcp)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) {
                return;
            }
            if (errno == EMFILE || errno == ENFILE) {
                return;
            }
            die("accept4");
        }
        if (tcp) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        conn *c = malloc(sizeof(conn));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            die("epoll_ctl");
        }
    }
}

int
main(int argc, char **argv)
{
    int lfd, tcp = 0;
    if (argc == 3 && strcmp(argv[1], "--tcp") == 0) {
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((unsigned short)atoi(argv[2]));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            die("bind");
        }
        tcp = 1;
    }
    else if (argc == 3 && strcmp(argv[1], "--unix") == 0) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        if (strlen(argv[2]) >= sizeof(sa.sun_path)) {
            fprintf(stderr, "echo_server: path too long\n");
            return 1;
        }
        strcpy(sa.sun_path, argv[2]);
        unlink(argv[2]);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            die("bind");
        }
    }
    else {
        fprintf(stderr, "usage: echo_server (--tcp PORT | --unix PATH)\n");
        return 1;
    }
    if (listen(lfd, 1024) < 0) {
        die("listen");
    }
    signal(SIGPIPE, SIG_IGN);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        die("epoll");
    }
    printf("serving on %s\n", argv[2]);
    fflush(stdout);
    struct epoll_event evs[256];
    for (;;) {
        int k = epoll_wait(epfd, evs, 256, -1);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            if (evs[i].data.ptr == NULL) {
                on_accept(lfd, tcp);
            }
            else {
                on_conn(evs[i].data.ptr, evs[i].events);
            }
        }
    }
}
