/*
 * sockaddr.c: socket addresses in the form the socket module gives them,
 * made in C for the paths that see one per connection or per datagram
 * (accepted peers, a transport's own name, datagram senders).
 */
#include "internal.h"

#include <netdb.h>
#include <string.h>
#include <netinet/in.h>

#include "../engine/sock.h"

/* (host, port[, flowinfo, scope_id]), made by hand: a third of what
 * Py_BuildValue() costs in parsing its format.  Steals host. */
static PyObject *
inet_tuple(PyObject *host, unsigned port, int v6, unsigned long flowinfo,
           unsigned long scope_id)
{
    if (host == NULL) {
        return NULL;
    }
    Py_ssize_t n = v6 ? 4 : 2;
    PyObject *t = PyTuple_New(n);
    if (t == NULL) {
        Py_DECREF(host);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, host);
    PyObject *items[3] = {PyLong_FromLong((long)port),
                          v6 ? PyLong_FromUnsignedLong(flowinfo) : NULL,
                          v6 ? PyLong_FromUnsignedLong(scope_id) : NULL};
    int failed = 0;
    for (Py_ssize_t i = 1; i < n; i++) {
        failed |= items[i - 1] == NULL;
        PyTuple_SET_ITEM(t, i, items[i - 1]);  /* NULL is fine to free */
    }
    if (failed) {
        Py_DECREF(t);
        return NULL;
    }
    return t;
}

/* The dotted quad as a str: it is ASCII, so its bytes are copied in. */
static PyObject *
ascii_str(const char *text, Py_ssize_t len)
{
    PyObject *s = PyUnicode_New(len, 127);
    if (s != NULL) {
        memcpy(PyUnicode_DATA(s), text, (size_t)len);
    }
    return s;
}

PyObject *
iol_inet_addr_to_python(const struct sockaddr *sa, socklen_t salen)
{
    /* NI_MAXHOST fits a scoped IPv6 address ("fe80::1%ifname"). */
    char host[NI_MAXHOST];
    if (sa->sa_family == AF_INET &&
        salen >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        int n = iol_sock_ipv4_text(&in->sin_addr, host, sizeof host);
        if (n < 0) {
            return NULL;
        }
        return inet_tuple(ascii_str(host, n), ntohs(in->sin_port), 0, 0, 0);
    }
    if (sa->sa_family == AF_INET6 &&
        salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        /* getnameinfo(), as the socket module calls it: a link-local
         * address keeps its %scope. */
        if (iol_sock_addr_host(sa, salen, host, sizeof host) < 0) {
            return NULL;
        }
        /* Decoded as the socket module decodes it. */
        return inet_tuple(PyUnicode_FromString(host), ntohs(in6->sin6_port), 1,
                          (unsigned long)ntohl(in6->sin6_flowinfo),
                          (unsigned long)in6->sin6_scope_id);
    }
    return NULL;
}
