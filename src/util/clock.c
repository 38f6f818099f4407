/*
 * clock.c — the monotonic and the wall clock (see clock.h).
 */
#include <time.h>

#include "util/clock.h"

uint64_t ps_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t ps_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int64_t ps_wall_ms(void)
{
	return ps_wall_us() / 1000;
}
