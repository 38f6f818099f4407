/*
 * token.c — the API's bearer token and the server's other secret files:
 * the TLS certificate and key of --tls-cert / --tls-key (see server.h).
 *
 * The token is replaced in place on SIGHUP (ps_server_token_reload) under
 * srv->token_mu; a request compares against the token of the moment its
 * headers arrived, so one in flight is not cut off by a rotation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/server.h"
#include "util/log.h"

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

void ps_server_token_copy(ps_server *srv, char *buf, size_t len)
{
	pthread_mutex_lock(&srv->token_mu);
	snprintf(buf, len, "%s", srv->token);
	pthread_mutex_unlock(&srv->token_mu);
}

void ps_server_token_reload(ps_server *srv)
{
	char fresh[sizeof(srv->token)];
	const char *env = getenv("PENSTOCK_API_TOKEN");
	ps_error err;
	bool same;

	ps_error_clear(&err);
	if (env && env[0]) {
		ps_log_warn("SIGHUP: the API token comes from PENSTOCK_API_TOKEN, which a running "
		            "server cannot re-read; it stays. To rotate without a restart, unset it and "
		            "keep the token in %s/api-token", srv->state_dir);
		return;
	}
	if (ps_api_token(fresh, sizeof(fresh), srv->state_dir, false, &err) != PS_OK) {
		ps_log_error("SIGHUP: the API token was not replaced, the old one stays: %s", err.message);
		memset(fresh, 0, sizeof(fresh));
		return;
	}
	pthread_mutex_lock(&srv->token_mu);
	same = strcmp(fresh, srv->token) == 0;
	snprintf(srv->token, sizeof(srv->token), "%s", fresh);
	pthread_mutex_unlock(&srv->token_mu);
	memset(fresh, 0, sizeof(fresh));
	if (same)
		ps_log_info("SIGHUP: the API token in %s/api-token is unchanged", srv->state_dir);
	else
		ps_log_info("SIGHUP: API token replaced from %s/api-token; requests with the old one "
		            "are refused from now on", srv->state_dir);
}

int ps_tls_file_read(char **out, const char *path, const char *option, bool secret,
                     ps_error *err)
{
	const size_t max = 1u << 20;
	struct stat st;
	char *text = NULL;
	size_t n = 0;
	int fd = -1, rc = PS_OK;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = ps_error_set_errno(err, PS_EINVAL, errno, "%s: cannot open %s", option, path);
		goto cleanup;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = ps_error_set(err, PS_EINVAL, "%s: %s is not a regular file", option, path);
		goto cleanup;
	}
	if (secret && (st.st_mode & S_IRWXO)) {
		rc = ps_error_set(err, PS_EINVAL, "%s: the private key %s can be read by every user "
		                  "(mode %03o); make it private with `chmod 600 %s` (or 640 with a "
		                  "group of its own) and start again", option, path,
		                  (unsigned)(st.st_mode & 0777), path);
		goto cleanup;
	}
	if ((size_t)st.st_size > max) {
		rc = ps_error_set(err, PS_EINVAL, "%s: %s is larger than 1 MiB; expected one PEM "
		                  "certificate chain or key", option, path);
		goto cleanup;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		rc = ps_error_set(err, PS_ENOMEM, "%s: out of memory", option);
		goto cleanup;
	}
	while (n < (size_t)st.st_size) {
		ssize_t got = read(fd, text + n, (size_t)st.st_size - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = ps_error_set_errno(err, PS_EINVAL, errno, "%s: cannot read %s", option, path);
			goto cleanup;
		}
		n += (size_t)got;
	}
	text[n] = '\0';
	if (!strstr(text, "-----BEGIN ")) {
		rc = ps_error_set(err, PS_EINVAL, "%s: %s is not in PEM form (no \"-----BEGIN\" line); "
		                  "give the %s as PEM text", option, path,
		                  secret ? "private key" : "certificate (chain)");
		goto cleanup;
	}
	*out = text;
	text = NULL;
cleanup:
	if (text) {
		memset(text, 0, n);
		free(text);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}
