/*
 * clock.h — the two clocks, and which one to use.
 *
 *   ps_now_ns      monotonic: deadlines, intervals, timing. Never jumps
 *                  when the wall clock is set, so a deadline computed from
 *                  it passes exactly once.
 *   ps_wall_us/ms  the wall clock (Unix epoch): timestamps that leave the
 *                  process (events, checkpoints, a commit time, a log line).
 */
#ifndef PS_UTIL_CLOCK_H
#define PS_UTIL_CLOCK_H

#include <stdint.h>

uint64_t ps_now_ns(void);    /* CLOCK_MONOTONIC, nanoseconds */
int64_t ps_wall_us(void);    /* CLOCK_REALTIME, microseconds since the epoch */
int64_t ps_wall_ms(void);    /* CLOCK_REALTIME, milliseconds since the epoch */

#endif
