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

char **ps_strv_copy(char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof(char *));

	for (size_t i = 0; out && i < n; i++) {
		out[i] = strdup(v[i]);
		if (!out[i]) {
			ps_strv_free(out, i);
			return NULL;
		}
	}
	return out;
}

void ps_strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

bool ps_strv_equal(char *const *a, size_t na, char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
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
