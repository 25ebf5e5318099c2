/*
 * backend.c: the backends compiled into this build, best first.
 */
#include "iol.h"

#include <string.h>

const iol_backend *const iol_backends[] = {
#ifdef __linux__
    &iol_backend_epoll,
#endif
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) ||    \
    defined(__NetBSD__) || defined(__DragonFly__)
    &iol_backend_kqueue,
#endif
    &iol_backend_poll,
    &iol_backend_select,
    NULL,
};

const iol_backend *
iol_backend_find(const char *name)
{
    for (int i = 0; iol_backends[i] != NULL; i++) {
        if (strcmp(iol_backends[i]->name, name) == 0) {
            return iol_backends[i];
        }
    }
    return NULL;
}
