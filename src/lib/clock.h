/*
 * clock.h -- the library's one clock reading, in microseconds.
 *
 * CLOCK_REALTIME is for times a record keeps (a line's time_us, a random
 * seed); CLOCK_MONOTONIC, which no settimeofday moves, is for durations and
 * deadlines (a sync's latency, a retry's pause, a replica's timeout).
 */
#ifndef STOCK_CLOCK_H
#define STOCK_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Microseconds on clock (CLOCK_REALTIME or CLOCK_MONOTONIC). */
static inline int64_t clock_now_us(clockid_t clock)
{
    struct timespec now;
    clock_gettime(clock, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

/* Initialises cond so that pthread_cond_timedwait reads its deadline on
 * CLOCK_MONOTONIC (see clock_monotonic_after_ms). The default clock is
 * CLOCK_REALTIME: a wall clock stepped back by an hour would then make a
 * 250 ms wait last an hour and 250 ms. Returns pthread_cond_init's
 * status. */
static inline int clock_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attributes;
    int status = pthread_condattr_init(&attributes);
    if (status != 0)
        return status;
    status = pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    if (status == 0)
        status = pthread_cond_init(cond, &attributes);
    pthread_condattr_destroy(&attributes);
    return status;
}

/* The CLOCK_MONOTONIC time ms from now: a deadline for a condition
 * variable made by clock_cond_init_monotonic. */
static inline struct timespec clock_monotonic_after_ms(long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += ms % 1000 * 1000000L;
    until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    return until;
}

#endif /* STOCK_CLOCK_H */
