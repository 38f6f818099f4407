/*
 * server.c — `penstock server`: the daemon (src/server/).
 *
 * Holds an exclusive lock on the state directory (server.lock), so two
 * servers never drive the same jobs. SIGINT/SIGTERM: running jobs drain and
 * checkpoint, their states stay, exit 0; the next start resumes them.
 * SIGHUP: the API token is read again (token rotation without a restart).
 * --tls-cert/--tls-key: the API is served over HTTPS only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/checkpoint.h"
#include "core/fault.h"
#include "server/server.h"
#include "util/log.h"

static atomic_int g_stop;
static atomic_int *g_reload;

static void on_signal(int sig)
{
	if (sig == SIGHUP) {
		if (g_reload)
			atomic_store(g_reload, 1);
		return;
	}
	atomic_store(&g_stop, 1);
}

static void usage(FILE *f)
{
	fputs("usage: penstock server [--listen HOST:PORT] [--state-dir DIR] [--tls-cert FILE "
	      "--tls-key FILE] [--log-level LEVEL] [--log-format text|json]\n"
	      "\n"
	      "Runs the job server: REST API under /v1, /metrics, /healthz (docs/api.md).\n"
	      "  --listen HOST:PORT  address to serve (default 127.0.0.1:7654)\n"
	      "  --state-dir DIR     job store, checkpoints and the API token (default\n"
	      "                      $PENSTOCK_STATE_DIR, else ~/.local/state/penstock)\n"
	      "  --tls-cert FILE     serve HTTPS with this PEM certificate (chain), and\n"
	      "  --tls-key FILE      its PEM private key (not readable by others: chmod 600)\n"
	      "Every request needs \"Authorization: Bearer <token>\": PENSTOCK_API_TOKEN, or the\n"
	      "token generated into DIR/api-token (mode 0600) on the first start.\n"
	      "SIGINT/SIGTERM: running jobs drain and checkpoint; they resume on the next start.\n"
	      "SIGHUP: the token is read again from DIR/api-token (rotation without a restart).\n",
	      f);
}

static int lock_state_dir(const char *dir, int *fd, ps_error *err)
{
	char path[1100];

	snprintf(path, sizeof(path), "%s/server.lock", dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return ps_error_set_errno(err, PS_EIO, errno, "cannot open %s", path);
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0)
		return ps_error_set(err, PS_EINVAL, "another penstock server uses the state directory %s; "
		                    "stop it, or give this one its own --state-dir", dir);
	return PS_OK;
}

int ps_cli_server(int argc, char **argv)
{
	const char *listen = "127.0.0.1:7654", *state_opt = NULL, *v;
	const char *cert_path = NULL, *key_path = NULL;
	char path[1100];
	ps_server srv;
	struct sigaction sa;
	ps_error err;
	int rc, lock_fd = -1;

	memset(&srv, 0, sizeof(srv));
	ps_error_clear(&err);
	for (int i = 1; i < argc; i++) {
		int c = ps_cli_common_option(argc, argv, &i);
		if (c < 0)
			return PS_EXIT_USAGE;
		if (c > 0)
			continue;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return PS_EXIT_OK;
		} else if ((v = ps_cli_option_value(argc, argv, &i, "--listen"))) {
			listen = v;
		} else if ((v = ps_cli_option_value(argc, argv, &i, "--state-dir"))) {
			state_opt = v;
		} else if ((v = ps_cli_option_value(argc, argv, &i, "--tls-cert"))) {
			cert_path = v;
		} else if ((v = ps_cli_option_value(argc, argv, &i, "--tls-key"))) {
			key_path = v;
		} else {
			fprintf(stderr, "penstock: error: server: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return PS_EXIT_USAGE;
		}
	}
	if (!*listen || (state_opt && !*state_opt)) {
		fprintf(stderr, "penstock: error: server: --listen and --state-dir need a value\n");
		return PS_EXIT_USAGE;
	}
	if (!cert_path != !key_path || (cert_path && (!*cert_path || !*key_path))) {
		fprintf(stderr, "penstock: error: server: --tls-cert and --tls-key go together: give "
		        "both (a PEM certificate and its private key) for HTTPS, or neither for HTTP\n");
		return PS_EXIT_USAGE;
	}
	pthread_mutex_init(&srv.mu, NULL);
	pthread_mutex_init(&srv.token_mu, NULL);
	pthread_cond_init(&srv.changed, NULL);
	srv.started_ms = ps_time_now_ms();
	rc = ps_fault_init(&err);
	if (rc == PS_OK && cert_path)
		rc = ps_tls_file_read(&srv.tls_cert, cert_path, "--tls-cert", false, &err);
	if (rc == PS_OK && key_path)
		rc = ps_tls_file_read(&srv.tls_key, key_path, "--tls-key", true, &err);
	if (rc == PS_OK)
		rc = ps_state_dir_resolve(srv.state_dir, sizeof(srv.state_dir), state_opt, &err);
	if (rc == PS_OK)
		rc = ps_state_dir_ensure(srv.state_dir, &err);
	if (rc == PS_OK)
		rc = lock_state_dir(srv.state_dir, &lock_fd, &err);
	if (rc == PS_OK)
		rc = ps_api_token(srv.token, sizeof(srv.token), srv.state_dir, true, &err);
	if (rc == PS_OK) {
		snprintf(path, sizeof(path), "%s/penstock.db", srv.state_dir);
		rc = ps_store_open(&srv.store, path, &err);
	}
	if (rc == PS_OK) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		g_reload = &srv.reload_token;
		sigaction(SIGHUP, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
	}
	if (rc == PS_OK)
		rc = ps_http_serve(&srv, listen, &g_stop, &err);
	if (rc != PS_OK) {
		ps_server_jobs_shutdown(&srv);
		ps_server_jobs_free(&srv);
		ps_cli_report(&err);
	} else {
		ps_log_info("penstock server stopped");
	}
	ps_store_close(srv.store);
	if (lock_fd >= 0)
		close(lock_fd);
	memset(srv.token, 0, sizeof(srv.token));
	if (srv.tls_key) {
		memset(srv.tls_key, 0, strlen(srv.tls_key));
		free(srv.tls_key);
	}
	free(srv.tls_cert);
	return ps_cli_exit_code(rc);
}
