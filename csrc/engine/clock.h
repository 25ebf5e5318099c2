/*
 * clock.h: the engine's clocks and the tick counter (part of iol.h;
 * include that).
 */
#ifndef IOL_CLOCK_H
#define IOL_CLOCK_H

#include <stdint.h>

/* Clocks, in nanoseconds: monotonic (the loop's own) and wall-clock. */
int64_t iol_clock_mono_ns(void);
int64_t iol_clock_wall_ns(void);

/*
 * Ticks: a cheap counter for timing each callback.  On x86-64, where the
 * kernel keeps time with the time-stamp counter (so it is invariant and
 * the same on every core), a tick is a TSC cycle: reading it costs a few
 * nanoseconds and does not stall the pipeline.  Elsewhere, or with
 * IOLOOP_C_TICKS=clock in the environment, ticks are CLOCK_MONOTONIC
 * nanoseconds.  Call iol_ticks_init() once before use (it is idempotent
 * and thread-safe).  The tick/ns ratio is measured on the first
 * conversion, at least 2 ms after init (waiting out the rest if needed).
 */
void iol_ticks_init(void);
int64_t iol_ticks_to_ns(int64_t ticks);
int64_t iol_ns_to_ticks(int64_t ns);
extern int iol_ticks_are_tsc;

static inline int64_t
iol_ticks(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (iol_ticks_are_tsc) {
        return (int64_t)__builtin_ia32_rdtsc();
    }
#endif
    return iol_clock_mono_ns();
}

#endif /* IOL_CLOCK_H */
