/*
 * sockaddr.c: socket addresses in the form the socket module gives them,
 * made in C for the paths that see one per connection or per datagram
 * (accepted peers, a transport's own name, datagram senders).
 */
#include "internal.h"

#include <netdb.h>
#include <netinet/in.h>

#include "../engine/sock.h"

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
        return Py_BuildValue("(s#i)", host, (Py_ssize_t)n,
                             (int)ntohs(in->sin_port));
    }
    if (sa->sa_family == AF_INET6 &&
        salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        /* getnameinfo(), as the socket module calls it: a link-local
         * address keeps its %scope. */
        if (iol_sock_addr_host(sa, salen, host, sizeof host) < 0) {
            return NULL;
        }
        return Py_BuildValue("(siII)", host, (int)ntohs(in6->sin6_port),
                             (unsigned int)ntohl(in6->sin6_flowinfo),
                             (unsigned int)in6->sin6_scope_id);
    }
    return NULL;
}
