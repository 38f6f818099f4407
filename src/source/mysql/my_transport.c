/*
 * my_transport.c — the binlog dump connection: COM_BINLOG_DUMP sent with
 * Connector/C's public command hook, packets read on a thread of its own.
 *
 * NOTES ON THE DESIGN
 *
 * 1. Why not mariadb_rpl_fetch: Connector/C 3.3 parses every event itself
 *    before handing it out (and gives nothing back when its parser
 *    disagrees: "Packet corrupted"), allocates a memory root per event, and
 *    its fetch blocks with no timeout. We only need the raw bytes, which
 *    our own bounds-checked, fuzzed decoder reads. The dump request is four
 *    fields (offset, flags, server id, file name), sent through
 *    MYSQL.methods->db_command, and each reply packet is read with
 *    mysql_net_read_packet: both are declared in mysql.h. A packet is 0x00
 *    then one event, 0xFE at the end (non-blocking dumps only), or an error
 *    that Connector/C turns into the handle's error.
 * 2. The reading thread queues raw events, bounded by `limit` bytes (one
 *    event may exceed it: it is queued alone). read() on the reader thread
 *    waits on a condition variable with its timeout, so a stop or a
 *    keepalive is never stuck behind a blocking socket read.
 * 3. Stop: the socket is shut down, which ends a blocked read at once; then
 *    the thread is joined and the handle closed.
 * 4. A MariaDB GTID start sets @slave_connect_state and sends an empty file
 *    name at offset 4; @mariadb_slave_capability=4 keeps GTID events as
 *    they are (below 4 the server rewrites them into BEGIN queries).
 *    @master_heartbeat_period makes the server send a HEARTBEAT whenever the
 *    binlog is idle for that long, which tells us the connection is alive.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "source/mysql/my_internal.h"
#include "util/myconn.h"

struct my_event_node {
	struct my_event_node *next;
	size_t len;
	uint8_t data[];
};

static void set_error(my_transport *t, int rc, const ps_error *err)
{
	pthread_mutex_lock(&t->mu);
	if (!t->ended) {
		t->rc = rc;
		if (err)
			t->err = *err;
		t->ended = true;
	}
	pthread_cond_broadcast(&t->more);
	pthread_mutex_unlock(&t->mu);
}

static void *receive_main(void *arg)
{
	my_transport *t = arg;
	ps_error err;

	ps_error_clear(&err);
	for (;;) {
		unsigned long n = mysql_net_read_packet(t->conn);
		const uint8_t *p = t->conn->net.read_pos;
		my_event_node *node;

		if (atomic_load(&t->stop)) {
			set_error(t, PS_ESTOPPED, NULL);
			break;
		}
		if (n == packet_error || n == 0) {
			my_error(&err, t->conn, "reading the binlog stream");
			ps_error_add_context(&err, "binlog dump from %s", t->where);
			set_error(t, err.code, &err);
			break;
		}
		if (p[0] == 0xFE && n < 9) {
			ps_error_set(&err, PS_ECONNECT, "the server ended the binlog stream");
			set_error(t, PS_ECONNECT, &err);
			break;
		}
		if (p[0] != 0x00) {
			ps_error_set(&err, PS_EPROTO, "binlog stream: packet of kind 0x%02x", p[0]);
			set_error(t, PS_EPROTO, &err);
			break;
		}
		node = malloc(sizeof(*node) + n - 1);
		if (!node) {
			ps_error_set(&err, PS_ENOMEM, "out of memory receiving a binlog event of %lu bytes",
			             n - 1);
			set_error(t, PS_ENOMEM, &err);
			break;
		}
		node->next = NULL;
		node->len = n - 1;
		memcpy(node->data, p + 1, n - 1);
		pthread_mutex_lock(&t->mu);
		while (t->head && t->bytes + node->len > t->limit && !atomic_load(&t->stop))
			pthread_cond_wait(&t->space, &t->mu);
		if (t->tail)
			t->tail->next = node;
		else
			t->head = node;
		t->tail = node;
		t->bytes += node->len;
		pthread_cond_broadcast(&t->more);
		pthread_mutex_unlock(&t->mu);
	}
	return NULL;
}

static int send_dump(my_transport *t, const my_dump_request *req, ps_error *err)
{
	char sql[PS_POSITION_MAX + 512];
	unsigned long long hb_ns = (unsigned long long)req->heartbeat_ms * 1000000ull;
	uint8_t cmd[10 + MY_FILE_MAX];
	size_t flen = strlen(req->file);
	int rc;

	rc = my_exec(t->conn, "SET @master_binlog_checksum = @@global.binlog_checksum, "
	             "@mariadb_slave_capability = 4", "preparing the binlog dump", err);
	if (rc == PS_OK) {
		snprintf(sql, sizeof(sql), "SET @master_heartbeat_period = %llu", hb_ns);
		rc = my_exec(t->conn, sql, "setting the heartbeat period", err);
	}
	if (rc == PS_OK && req->gtid) {
		ps_buf b;
		ps_buf_init(&b, 4096);
		ps_buf_puts(&b, "SET @slave_connect_state = ");
		my_quote_literal(t->conn, &b, req->gtid);
		ps_buf_puts(&b, ", @slave_gtid_strict_mode = 1, @slave_gtid_ignore_duplicates = 0");
		rc = b.data ? my_exec(t->conn, b.data, "setting the GTID to start from", err)
		            : ps_error_set(err, PS_ENOMEM, "out of memory");
		ps_buf_free(&b);
	}
	if (rc != PS_OK)
		return rc;
	if (flen >= MY_FILE_MAX)
		return ps_error_set(err, PS_EINVAL, "binlog file name '%s' is too long", req->file);
	cmd[0] = (uint8_t)(req->offset);
	cmd[1] = (uint8_t)(req->offset >> 8);
	cmd[2] = (uint8_t)(req->offset >> 16);
	cmd[3] = (uint8_t)(req->offset >> 24);
	cmd[4] = 0x02;   /* BINLOG_SEND_ANNOTATE_ROWS_EVENT */
	cmd[5] = 0;
	cmd[6] = (uint8_t)(req->server_id);
	cmd[7] = (uint8_t)(req->server_id >> 8);
	cmd[8] = (uint8_t)(req->server_id >> 16);
	cmd[9] = (uint8_t)(req->server_id >> 24);
	memcpy(cmd + 10, req->file, flen);
	if (t->conn->methods->db_command(t->conn, COM_BINLOG_DUMP, (const char *)cmd, 10 + flen, 1,
	                                 NULL) != 0)
		return my_error(err, t->conn, "sending the binlog dump request");
	return PS_OK;
}

int my_transport_start(my_transport *t, MYSQL *conn, const my_dump_request *req, size_t limit,
                       const char *where, ps_error *err)
{
	int rc;

	memset(t, 0, sizeof(*t));
	t->conn = conn;
	t->limit = limit;
	snprintf(t->where, sizeof(t->where), "%s", where);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->more, NULL);
	pthread_cond_init(&t->space, NULL);
	rc = send_dump(t, req, err);
	if (rc == PS_OK && pthread_create(&t->thread, NULL, receive_main, t) != 0)
		rc = ps_error_set(err, PS_ERR, "cannot start the binlog receiving thread");
	if (rc != PS_OK) {
		mysql_close(t->conn);
		t->conn = NULL;
		pthread_mutex_destroy(&t->mu);
		pthread_cond_destroy(&t->more);
		pthread_cond_destroy(&t->space);
		return rc;
	}
	t->started = true;
	return PS_OK;
}

int my_transport_next(my_transport *t, uint8_t **ev, size_t *len, int timeout_ms,
                      ps_error *err)
{
	struct timespec deadline;
	my_event_node *node;
	int rc = 0;

	*ev = NULL;
	*len = 0;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&t->mu);
	while (!t->head && !t->ended && timeout_ms > 0)
		if (pthread_cond_timedwait(&t->more, &t->mu, &deadline) == ETIMEDOUT)
			break;
	node = t->head;
	if (node) {
		t->head = node->next;
		if (!t->head)
			t->tail = NULL;
		t->bytes -= node->len;
		pthread_cond_signal(&t->space);
	} else if (t->ended) {
		rc = t->rc != PS_OK ? t->rc : PS_ECONNECT;
		*err = t->err;
		if (err->code == PS_OK)
			ps_error_set(err, rc, "the binlog stream ended");
	}
	pthread_mutex_unlock(&t->mu);
	if (!node)
		return rc;
	/* hand out the bytes: the node's header is moved out of the way */
	*len = node->len;
	memmove(node, node->data, node->len);
	*ev = (uint8_t *)node;
	return 1;
}

int my_transport_check(my_transport *t, ps_error *err)
{
	int rc = PS_OK;

	if (!t->started)
		return PS_OK;
	pthread_mutex_lock(&t->mu);
	if (t->ended) {
		rc = t->rc != PS_OK ? t->rc : PS_ECONNECT;
		*err = t->err;
		if (err->code == PS_OK)
			ps_error_set(err, rc, "the binlog stream ended");
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void my_transport_stop(my_transport *t)
{
	if (!t->started)
		return;
	atomic_store(&t->stop, 1);
	if (t->conn && mysql_get_socket(t->conn) >= 0)
		shutdown(mysql_get_socket(t->conn), SHUT_RDWR);
	pthread_mutex_lock(&t->mu);
	pthread_cond_broadcast(&t->space);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	while (t->head) {
		my_event_node *n = t->head;
		t->head = n->next;
		free(n);
	}
	t->tail = NULL;
	t->bytes = 0;
	mysql_close(t->conn);
	t->conn = NULL;
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->more);
	pthread_cond_destroy(&t->space);
	t->started = false;
}
