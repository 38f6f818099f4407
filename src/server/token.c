/*
 * token.c — the API's bearer token (see server.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/server.h"

static int read_token(char *buf, size_t len, const char *path, ps_error *err)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot read the API token %s", path);
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n < 16)
		return ps_error_set(err, PS_EINVAL, "the API token in %s is shorter than 16 characters; "
		                    "delete the file and restart the server to make a new one", path);
	return PS_OK;
}

int ps_random_hex(char *buf, size_t len, size_t nbytes, ps_error *err)
{
	unsigned char raw[64];
	FILE *rnd;

	if (nbytes > sizeof(raw) || len < 2 * nbytes + 1)
		return ps_error_set(err, PS_ETOOBIG, "random hex: buffer too small");
	rnd = fopen("/dev/urandom", "rb");
	if (!rnd || fread(raw, 1, nbytes, rnd) != nbytes) {
		if (rnd)
			fclose(rnd);
		return ps_error_set_errno(err, PS_EIO, errno, "cannot read /dev/urandom");
	}
	fclose(rnd);
	for (size_t i = 0; i < nbytes; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	return PS_OK;
}

static int make_token(char *buf, size_t len, const char *path, ps_error *err)
{
	int fd = -1, rc;

	rc = ps_random_hex(buf, len, 32, err);
	if (rc != PS_OK)
		return ps_error_add_context(err, "making the API token");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		if (errno == EEXIST)   /* another server made it first */
			return read_token(buf, len, path, err);
		return ps_error_set_errno(err, PS_EIO, errno, "cannot create the API token file %s", path);
	}
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0)
		rc = ps_error_set_errno(err, PS_EIO, errno, "cannot write the API token file %s", path);
	close(fd);
	return rc;
}

int ps_api_token(char *buf, size_t len, const char *state_dir, bool create, ps_error *err)
{
	const char *env = getenv("PENSTOCK_API_TOKEN");
	char path[1100];
	struct stat st;

	if (env && env[0]) {
		if (strlen(env) < 16)
			return ps_error_set(err, PS_EINVAL, "PENSTOCK_API_TOKEN is shorter than 16 "
			                    "characters; use a longer random token");
		snprintf(buf, len, "%s", env);
		return PS_OK;
	}
	snprintf(path, sizeof(path), "%s/api-token", state_dir);
	if (stat(path, &st) == 0)
		return read_token(buf, len, path, err);
	if (!create)
		return ps_error_set(err, PS_EINVAL, "no API token: set PENSTOCK_API_TOKEN, or run where "
		                    "%s (written by `penstock server` on its first start) is readable, "
		                    "or pass --state-dir", path);
	return make_token(buf, len, path, err);
}
