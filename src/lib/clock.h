/*
 * clock.h -- the library's one clock reading, in microseconds.
 *
 * CLOCK_REALTIME is for times a record keeps (a line's time_us, a random
 * seed); CLOCK_MONOTONIC, which no settimeofday moves, is for durations and
 * deadlines (a sync's latency, a retry's pause, a replica's timeout).
 */
#ifndef STOCK_CLOCK_H
#define STOCK_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Microseconds on clock (CLOCK_REALTIME or CLOCK_MONOTONIC). */
static inline int64_t clock_now_us(clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

#endif /* STOCK_CLOCK_H */
