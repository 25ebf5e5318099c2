/*
 * test_clock.c: the clocks and the tick counter that times callbacks.
 *
 * Run once as is (TSC ticks where the kernel keeps time with the TSC) and
 * once with IOLOOP_C_TICKS=clock (ticks are monotonic nanoseconds); both
 * must measure a sleep correctly and convert both ways.
 */
#include "ctest.h"
#include "iol.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void
check_ticks(void)
{
    iol_ticks_init();
    iol_ticks_init(); /* idempotent */

    /* Never backwards over many reads. */
    int64_t prev = iol_ticks();
    int backwards = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t t = iol_ticks();
        backwards += t < prev;
        prev = t;
    }
    CHECK(backwards == 0);

    /* A 20 ms sleep, timed in ticks, is 20 ms give or take a busy machine. */
    int64_t k0 = iol_ticks();
    int64_t n0 = iol_clock_mono_ns();
    sleep_ms(20);
    int64_t k1 = iol_ticks();
    int64_t n1 = iol_clock_mono_ns();
    int64_t by_ticks = iol_ticks_to_ns(k1 - k0);
    int64_t by_clock = n1 - n0;
    CHECK(by_ticks >= 19000000 && by_ticks < 2000000000);
    /* The two agree within 1% (both bracket the same sleep). */
    int64_t diff =
        by_ticks > by_clock ? by_ticks - by_clock : by_clock - by_ticks;
    CHECK(diff < by_clock / 100 + 20000);

    /* Round trips, and no overflow at the extremes. */
    int64_t ms = 1000000;
    int64_t back = iol_ticks_to_ns(iol_ns_to_ticks(ms));
    CHECK(back > ms - 1000 && back < ms + 1000);
    CHECK(iol_ns_to_ticks(0) == 0 && iol_ticks_to_ns(0) == 0);
    CHECK(iol_ns_to_ticks(INT64_MAX) > 0);
    CHECK(iol_ticks_to_ns(INT64_MAX) > 0);
    CHECK(iol_ns_to_ticks(INT64_MIN) < 0);

    if (getenv("IOLOOP_C_TICKS") != NULL) {
        /* The fallback: ticks are nanoseconds. */
        CHECK(!iol_ticks_are_tsc);
        CHECK(iol_ticks_to_ns(12345) == 12345);
    }
}

static void
check_clocks(void)
{
    int64_t m0 = iol_clock_mono_ns();
    int64_t m1 = iol_clock_mono_ns();
    CHECK(m1 >= m0);
    /* The wall clock is after 2020 and before 2200. */
    int64_t w = iol_clock_wall_ns();
    CHECK(w > INT64_C(1577836800) * 1000000000 &&
          w < INT64_C(7258118400) * 1000000000);
}

int
main(void)
{
    check_clocks();
    check_ticks();
    int fallback = getenv("IOLOOP_C_TICKS") != NULL;
    return ctest_done(fallback ? "test_clock (ticks=clock)" : "test_clock");
}
