/*
 * sdnotify.h — telling a service manager (systemd, Type=notify) that the
 * server is ready, alive (watchdog) and stopping; see sdnotify.c.
 */
#ifndef PS_SERVER_SDNOTIFY_H
#define PS_SERVER_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>

/* Sends state ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET. 1: sent; 0: no
 * socket to send to (not under a service manager); < 0: -errno. */
int ps_sd_notify(const char *state);

/* The watchdog period the manager asked for ($WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or this process), in microseconds; 0: none. Ping
 * (WATCHDOG=1) at least every half of it. */
uint64_t ps_sd_watchdog_usec(void);

#endif
