/*
 * str.c — small shared helpers (see str.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/str.h"

int ps_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void ps_secret_free(char *secret)
{
	if (!secret)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

int ps_fsync_dir(const char *dir, ps_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = PS_OK;

	if (fd < 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot open directory '%s'", dir);
	if (fsync(fd) != 0)
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot fsync directory '%s'", dir);
	close(fd);
	return rc;
}
