/*
 * clock.c: the loop's clocks, in nanoseconds.
 *
 * CLOCK_MONOTONIC never jumps, so deadlines are kept in its terms; it is
 * read through the vDSO on Linux, which costs tens of nanoseconds and no
 * system call.  CLOCK_REALTIME is only for converting the wall-clock
 * deadlines of Tornado's API.  clock_gettime() cannot fail for these two
 * POSIX clocks with a valid pointer, so there is no error path.
 */
#include "iol.h"

#include <time.h>

static int64_t
clock_ns(clockid_t id)
{
    struct timespec ts = {0, 0};
    (void)clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
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
