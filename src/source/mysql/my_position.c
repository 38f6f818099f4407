/*
 * my_position.c — positions of the MySQL/MariaDB source and GTID states.
 *
 * NOTES ON THE DESIGN
 *
 * 1. A position names a transaction boundary twice: as binlog file and
 *    offset (where the next event starts) and as the MariaDB GTID state
 *    there (the last GTID of every domain, what @@gtid_binlog_pos says).
 *    "binlog.000003:1234/0-1-57,1-2-9". The file part orders positions of
 *    one server (file number, then offset) and restarts a dump exactly; the
 *    GTID part is what an operator reads and what a user may give to start
 *    from. The GTID part is dropped when the whole would exceed
 *    PS_POSITION_MAX: the file part alone is enough to resume.
 * 2. Ordering never looks at GTIDs: with several domains a GTID state is
 *    not totally ordered, and a multi-domain "newest" is the classic bug.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/mysql/my_internal.h"

uint64_t my_file_number(const char *file)
{
	const char *dot = strrchr(file, '.');
	uint64_t n = 0;

	if (!dot)
		return 0;
	for (const char *p = dot + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	return n;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int my_pos_parse(const char *text, my_pos *out, ps_error *err)
{
	const char *slash, *colon;
	size_t flen;

	memset(out, 0, sizeof(*out));
	if (!text || !*text)
		return PS_OK;
	slash = strchr(text, '/');
	colon = strrchr(text, ':');
	if (colon && slash && colon > slash)
		colon = NULL;
	if (!colon) {
		/* a GTID state alone */
		my_gtid_state s;
		int rc = my_gtid_state_parse(&s, text, err);
		if (rc != PS_OK)
			return ps_error_set(err, PS_EINVAL, "position '%s' is neither file:offset "
			                    "(binlog.000003:1234), file:offset/GTID list nor a GTID list "
			                    "(0-1-57,1-2-9)", text);
		snprintf(out->gtid, sizeof(out->gtid), "%s", text);
		return PS_OK;
	}
	flen = (size_t)(colon - text);
	if (flen == 0 || flen >= sizeof(out->file) ||
	    !all_digits(colon + 1, slash ? (size_t)(slash - colon - 1) : strlen(colon + 1)))
		return ps_error_set(err, PS_EINVAL, "position '%s' is not file:offset "
		                    "(binlog.000003:1234), optionally followed by /GTID list", text);
	memcpy(out->file, text, flen);
	out->file[flen] = '\0';
	out->filenum = my_file_number(out->file);
	out->offset = strtoull(colon + 1, NULL, 10);
	if (slash && slash[1]) {
		my_gtid_state s;
		if (my_gtid_state_parse(&s, slash + 1, err) != PS_OK)
			return ps_error_set(err, PS_EINVAL, "position '%s': the GTID list after '/' is "
			                    "not domain-server-seqno[,...]", text);
		snprintf(out->gtid, sizeof(out->gtid), "%s", slash + 1);
	}
	return PS_OK;
}

void my_pos_format(char *buf, size_t len, const char *file, uint64_t offset, const char *gtid)
{
	int n = snprintf(buf, len, "%s:%llu", file, (unsigned long long)offset);

	if (n < 0 || (size_t)n >= len || !gtid || !*gtid)
		return;
	if ((size_t)n + 1 + strlen(gtid) < len)
		snprintf(buf + n, len - (size_t)n, "/%s", gtid);
}

int my_pos_compare(const char *a, const char *b)
{
	my_pos x, y;
	ps_error e;

	if (my_pos_parse(a, &x, &e) != PS_OK)
		memset(&x, 0, sizeof(x));
	if (my_pos_parse(b, &y, &e) != PS_OK)
		memset(&y, 0, sizeof(y));
	if (!x.file[0] || !y.file[0])
		return (x.file[0] != 0) - (y.file[0] != 0);
	if (x.filenum != y.filenum)
		return x.filenum < y.filenum ? -1 : 1;
	return (x.offset > y.offset) - (x.offset < y.offset);
}

int my_position_compare(const char *a, const char *b)
{
	return my_pos_compare(a, b);
}

/* --- GTID states ---------------------------------------------------------- */

void my_gtid_state_clear(my_gtid_state *s)
{
	s->n = 0;
}

void my_gtid_state_set(my_gtid_state *s, uint32_t domain, uint32_t server, uint64_t seq)
{
	int i = 0;

	while (i < s->n && s->g[i].domain_id < domain)
		i++;
	if (i < s->n && s->g[i].domain_id == domain) {
		s->g[i].server_id = server;
		s->g[i].seq_no = seq;
		return;
	}
	if (s->n == MY_GTID_DOMAINS_MAX)
		return;   /* more domains than any real setup: the file part still resumes */
	memmove(&s->g[i + 1], &s->g[i], (size_t)(s->n - i) * sizeof(s->g[0]));
	s->g[i].domain_id = domain;
	s->g[i].server_id = server;
	s->g[i].seq_no = seq;
	s->n++;
}

int my_gtid_state_parse(my_gtid_state *s, const char *text, ps_error *err)
{
	const char *p = text;

	my_gtid_state_clear(s);
	while (*p) {
		unsigned long long v[3];
		for (int k = 0; k < 3; k++) {
			char *end = NULL;
			if (*p < '0' || *p > '9')
				return ps_error_set(err, PS_EINVAL, "GTID list '%s' is not "
				                    "domain-server-seqno[,...]", text);
			v[k] = strtoull(p, &end, 10);
			p = end;
			if (k < 2 && *p++ != '-')
				return ps_error_set(err, PS_EINVAL, "GTID list '%s' is not "
				                    "domain-server-seqno[,...]", text);
		}
		if (v[0] > UINT32_MAX || v[1] > UINT32_MAX)
			return ps_error_set(err, PS_EINVAL, "GTID list '%s': domain or server id out of "
			                    "range", text);
		my_gtid_state_set(s, (uint32_t)v[0], (uint32_t)v[1], v[2]);
		if (*p == ',')
			p++;
		else if (*p)
			return ps_error_set(err, PS_EINVAL, "GTID list '%s' is not "
			                    "domain-server-seqno[,...]", text);
	}
	return PS_OK;
}

void my_gtid_state_format(const my_gtid_state *s, char *buf, size_t len)
{
	size_t used = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (int i = 0; i < s->n; i++) {
		int n = snprintf(buf + used, len - used, "%s%u-%u-%llu", i ? "," : "",
		                 s->g[i].domain_id, s->g[i].server_id,
		                 (unsigned long long)s->g[i].seq_no);
		if (n < 0 || used + (size_t)n >= len) {
			buf[0] = '\0';   /* never a cut list: a partial state would lose domains */
			return;
		}
		used += (size_t)n;
	}
}
