/*
 * sdnotify.c — the service manager's notification protocol (systemd's
 * sd_notify(3)), written here instead of linking libsystemd: it is one
 * datagram of "KEY=VALUE" lines to the AF_UNIX socket named by
 * NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), which is
 * all penstock needs (READY=1, WATCHDOG=1, STATUS=..., STOPPING=1). Without
 * NOTIFY_SOCKET every call does nothing, so the server runs the same under
 * systemd, in a container or in a terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/sdnotify.h"

int ps_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t n;
	ssize_t sent;
	int fd, rc = 1;

	if (!path || !*path || !state)
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return -EINVAL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';   /* abstract: no terminating NUL is counted */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/' ? 1 : 0));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	if (sent < 0)
		rc = -errno;
	close(fd);
	return rc;
}

uint64_t ps_sd_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end = NULL;
	unsigned long long v;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid) {
		long p = strtol(pid, &end, 10);
		if (!end || *end || p != (long)getpid())
			return 0;   /* meant for another process */
	}
	v = strtoull(usec, &end, 10);
	if (!end || *end)
		return 0;
	return (uint64_t)v;
}
