/*
 * clock.c: the loop's clocks.  CLOCK_MONOTONIC is read through the vDSO
 * on Linux, so a reading costs tens of nanoseconds and no system call.
 */
#include "iol.h"

#include <time.h>

static int64_t
clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
iol_clock_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t
iol_clock_wall_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}
