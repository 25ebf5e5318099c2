/*
 * clock.c: the loop's clocks, in nanoseconds.
 *
 * CLOCK_MONOTONIC never jumps, so deadlines are kept in its terms; it is
 * read through the vDSO on Linux, which costs tens of nanoseconds and no
 * system call.  CLOCK_REALTIME is only for converting the wall-clock
 * deadlines of Tornado's API.  clock_gettime() cannot fail for these two
 * POSIX clocks with a valid pointer, so there is no error path.
 *
 * Ticks (see iol.h) time callbacks.  Their set-up and calibration are
 * process-wide facts about the hardware, kept in file-scope state that is
 * written once under pthread_once and only read afterwards.
 */
#include "iol.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

int iol_ticks_are_tsc = 0;
static int64_t ticks_origin; /* TSC at init */
static int64_t ns_origin;    /* CLOCK_MONOTONIC at init */
static double ns_per_tick = 1.0;
static pthread_once_t ticks_once = PTHREAD_ONCE_INIT;
static pthread_once_t calibrate_once = PTHREAD_ONCE_INIT;

/* Does the kernel keep time with the TSC?  It only does so once it has
 * found the TSC invariant and synchronised across CPUs. */
static int
kernel_uses_tsc(void)
{
    const char *env = getenv("IOLOOP_C_TICKS");
    if (env != NULL && strcmp(env, "clock") == 0) {
        return 0;
    }
    int fd = open("/sys/devices/system/clocksource/clocksource0/"
                  "current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buf[16] = {0};
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    (void)close(fd);
    return n >= 3 && strncmp(buf, "tsc", 3) == 0 &&
           (buf[3] == '\n' || buf[3] == 0);
}

static void
ticks_setup(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (kernel_uses_tsc()) {
        ns_origin = iol_clock_mono_ns();
        ticks_origin = (int64_t)__builtin_ia32_rdtsc();
        iol_ticks_are_tsc = 1;
    }
#endif
}

void
iol_ticks_init(void)
{
    (void)pthread_once(&ticks_once, ticks_setup);
}

/* The ratio from two readings of both clocks at least 2 ms apart: the
 * readings' own jitter (tens of ns) is then well under 0.01%. */
static void
ticks_calibrate(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (!iol_ticks_are_tsc) {
        return;
    }
    int64_t ns, ticks;
    do {
        ns = iol_clock_mono_ns();
        ticks = (int64_t)__builtin_ia32_rdtsc();
    } while (ns - ns_origin < 2000000);
    if (ticks > ticks_origin) {
        ns_per_tick =
            (double)(ns - ns_origin) / (double)(ticks - ticks_origin);
    }
#endif
}

/* Converting an out-of-range double to an integer is undefined. */
static int64_t
clamp_to_int64(double v)
{
    if (v >= 9.2e18) {
        return INT64_MAX;
    }
    if (v <= -9.2e18) {
        return INT64_MIN;
    }
    return (int64_t)v;
}

int64_t
iol_ticks_to_ns(int64_t ticks)
{
    if (!iol_ticks_are_tsc) {
        return ticks;
    }
    (void)pthread_once(&calibrate_once, ticks_calibrate);
    return clamp_to_int64((double)ticks * ns_per_tick);
}

int64_t
iol_ns_to_ticks(int64_t ns)
{
    if (!iol_ticks_are_tsc) {
        return ns;
    }
    (void)pthread_once(&calibrate_once, ticks_calibrate);
    return clamp_to_int64((double)ns / ns_per_tick);
}
