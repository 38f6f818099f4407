/*
 * kafka_options.c — the Kafka target's options (fields of the spec's
 * "target", penstock/options.h), its URL, and the client settings they
 * make (docs/kafka.md lists them).
 *
 *   kafka://host:port[,host:port...]/?topic_prefix=<prefix>
 *
 * The password (target.password_env / password_file) goes to the client
 * only: sasl.password with a SASL security protocol, else ssl.key.password
 * with a client key. It is wiped when the options are freed and appears in
 * no message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink/kafka/kafka_internal.h"
#include "util/str.h"

/* Kafka's topic names: [a-zA-Z0-9._-], at most 249 characters. */
static const char *check_topic(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 200)
		return "is not a topic name: 1 to 200 characters of a-z, A-Z, 0-9, '.', '_' and '-'";
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return "is not a topic name: 1 to 200 characters of a-z, A-Z, 0-9, '.', '_' and '-'";
	}
	if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
		return "is not a topic name: '.' and '..' are not allowed";
	return NULL;
}

static const char *check_printable(const char *v)
{
	if (!*v)
		return "must not be empty";
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			return "must hold printable characters only";
	return NULL;
}

static void default_txn_id(const char *job, char *buf, size_t len)
{
	snprintf(buf, len, "penstock-%s", job ? job : "");
}

static const char *const delivery_choices[] = {"exactly_once", "at_least_once", NULL};
static const char *const decimal_choices[] = {"string", "precise", NULL};
static const char *const protocol_choices[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl",
                                               NULL};
static const char *const mechanism_choices[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};
static const char *const ident_choices[] = {"https", "none", NULL};
static const char *const split_choices[] = {"none", "operation", NULL};

#define BOOL_OPT(n, d, text) \
	{.name = n, .kind = PS_OPTION_BOOL, .default_int = d, .doc = text}
#define INT_OPT(n, lo, hi, d, text) \
	{.name = n, .kind = PS_OPTION_INTEGER, .min = lo, .max = hi, .default_int = d, .doc = text}
#define STR_OPT(n, d, chk, text) \
	{.name = n, .kind = PS_OPTION_STRING, .default_text = d, .check = chk, .doc = text}
#define CHOICE_OPT(n, c, d, text) \
	{.name = n, .kind = PS_OPTION_CHOICE, .choices = c, .default_text = d, .doc = text}

const ps_option_def ps__kafka_options[] = {
	CHOICE_OPT("delivery", delivery_choices, "exactly_once",
	           "exactly_once: Kafka transactions with the checkpoint; at_least_once: idempotent "
	           "producer, checkpoint in the state directory, repeats marked reprocessing"),
	BOOL_OPT("schemas", 1, "key and value as the JSON converter with schemas writes them "
	                       "({\"schema\", \"payload\"}); false: the payload alone"),
	BOOL_OPT("flatten", 0, "the row after the change with __deleted, __op, __source_ts_ms and "
	                       "__lsn (Debezium's ExtractNewRecordState) instead of the envelope"),
	BOOL_OPT("tombstones", 1, "a record with a null value after each delete"),
	BOOL_OPT("truncate_events", 0, "a record for each truncated table (op t)"),
	BOOL_OPT("transaction_metadata", 0, "BEGIN and END records on <prefix>.transaction and a "
	                                    "transaction block in each event"),
	INT_OPT("heartbeat_interval_ms", 0, 86400000, 0,
	        "a record on __debezium-heartbeat.<prefix> this often; 0: none"),
	CHOICE_OPT("decimal_handling", decimal_choices, "string",
	           "string: exact decimal text; precise: Debezium's bytes (Kafka Connect Decimal)"),
	{.name = "transactional_id", .kind = PS_OPTION_STRING, .default_fn = default_txn_id,
	 .check = check_printable, .restart = true,
	 .doc = "the producer's transactional id; default penstock-<name>"},
	{.name = "checkpoint_topic", .kind = PS_OPTION_STRING,
	 .default_text = KF_DEFAULT_CHECKPOINT_TOPIC, .check = check_topic, .restart = true,
	 .doc = "the compacted single-partition topic of the jobs' checkpoints"},
	INT_OPT("topic_partitions", -1, 100000, -1,
	        "partitions of the topics penstock creates; -1: the brokers' default"),
	INT_OPT("replication_factor", -1, 32767, -1,
	        "replication of the topics penstock creates; -1: the brokers' default"),
	INT_OPT("transaction_timeout_ms", 1000, 3600000, 600000,
	        "how long a transaction may stay open (at most the brokers' "
	        "transaction.max.timeout.ms)"),
	INT_OPT("timeout_ms", 1000, 600000, 30000,
	        "how long to wait for the brokers (connect, commit, metadata)"),
	STR_OPT("unavailable_value_placeholder", "__debezium_unavailable_value", NULL,
	        "what a value the source did not send (unchanged TOAST) reads as"),
	CHOICE_OPT("security_protocol", protocol_choices, "plaintext",
	           "how to talk to the brokers (librdkafka security.protocol)"),
	CHOICE_OPT("sasl_mechanism", mechanism_choices, NULL, "SASL mechanism (sasl.mechanisms)"),
	STR_OPT("sasl_username", NULL, check_printable, "SASL user; the password comes from "
	                                                "password_env or password_file"),
	STR_OPT("ssl_ca_location", NULL, check_printable, "CA certificate file (ssl.ca.location)"),
	STR_OPT("ssl_certificate_location", NULL, check_printable,
	        "client certificate file (ssl.certificate.location)"),
	STR_OPT("ssl_key_location", NULL, check_printable,
	        "client key file (ssl.key.location); its password from password_env/_file"),
	CHOICE_OPT("ssl_endpoint_identification", ident_choices, NULL,
	           "check the broker's host name in its certificate "
	           "(ssl.endpoint.identification.algorithm)"),
	PS_NETCHG_OPTION_DEFS,
	CHOICE_OPT("split", split_choices, "none",
	           "operation: a table's events on a topic per operation, "
	           "<prefix>.<schema>.<table>.insert, .update, .delete, .load, .truncate"),
	{.name = NULL},
};

/* --- parsing -------------------------------------------------------------------- */

static char *dup_opt(const json_t *opts, const char *name, const char *dflt)
{
	const char *v = ps_option_str(opts, name);

	return strdup(v ? v : dflt);
}

static int add_prop(char ***props, size_t *n, const char *k, const char *v, ps_error *err)
{
	char **more = realloc(*props, (*n + 3) * sizeof(*more));

	if (!more)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	*props = more;
	more[*n] = strdup(k);
	more[*n + 1] = strdup(v);
	more[*n + 2] = NULL;
	if (!more[*n] || !more[*n + 1]) {
		free(more[*n]);
		free(more[*n + 1]);
		more[*n] = NULL;
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	}
	*n += 2;
	return PS_OK;
}

/* The security settings (and the password) as client settings. */
static int security_props(kf_opts *o, const ps_sink_config *cfg, ps_error *err)
{
	static const char *const map[][2] = {
		{"sasl_mechanism", "sasl.mechanisms"},
		{"sasl_username", "sasl.username"},
		{"ssl_ca_location", "ssl.ca.location"},
		{"ssl_certificate_location", "ssl.certificate.location"},
		{"ssl_key_location", "ssl.key.location"},
		{"ssl_endpoint_identification", "ssl.endpoint.identification.algorithm"},
	};
	const char *proto = ps_option_str(cfg->options, "security_protocol");
	bool sasl = proto && strncmp(proto, "sasl_", 5) == 0;
	size_t n = 0;
	int rc = PS_OK;

	o->props = calloc(1, sizeof(*o->props));
	if (!o->props)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (proto)
		rc = add_prop(&o->props, &n, "security.protocol", proto, err);
	for (size_t i = 0; rc == PS_OK && i < sizeof(map) / sizeof(map[0]); i++) {
		const char *v = ps_option_str(cfg->options, map[i][0]);
		if (v)
			rc = add_prop(&o->props, &n, map[i][1], v, err);
	}
	if (rc != PS_OK)
		return rc;
	if (sasl && (!ps_option_str(cfg->options, "sasl_mechanism") ||
	             !ps_option_str(cfg->options, "sasl_username") || !cfg->password))
		return ps_error_set(err, PS_EINVAL,
		                    "target.security_protocol %s needs target.sasl_mechanism, "
		                    "target.sasl_username and a password (target.password_env or "
		                    "target.password_file)", proto);
	if (!sasl && (ps_option_str(cfg->options, "sasl_mechanism") ||
	              ps_option_str(cfg->options, "sasl_username")))
		return ps_error_set(err, PS_EINVAL,
		                    "target.sasl_mechanism and target.sasl_username need "
		                    "target.security_protocol sasl_plaintext or sasl_ssl");
	if (cfg->password && sasl)
		rc = add_prop(&o->props, &n, "sasl.password", cfg->password, err);
	else if (cfg->password && ps_option_str(cfg->options, "ssl_key_location"))
		rc = add_prop(&o->props, &n, "ssl.key.password", cfg->password, err);
	else if (cfg->password)
		rc = ps_error_set(err, PS_EINVAL,
		                  "target has a password but nothing to use it for: it is the SASL "
		                  "password (target.security_protocol sasl_*) or the password of "
		                  "target.ssl_key_location");
	return rc;
}

static int parse_url(kf_opts *o, const ps_sink_config *cfg, ps_error *err)
{
	extern const ps_url_syntax ps_kafka_url_syntax[];
	ps_url url;
	const char *prefix = NULL, *why;
	int rc = ps_url_parse(&url, cfg->url, err);

	if (rc != PS_OK)
		return rc;
	if (url.syntax != ps_kafka_url_syntax)
		return ps_error_set(err, PS_EINVAL, "sink kafka cannot write to '%s'", url.redacted);
	for (int i = 0; i < url.nparams; i++) {
		if (strcmp(url.params[i].key, "topic_prefix") != 0)
			return ps_error_set(err, PS_EINVAL,
			                    "unknown kafka URL parameter '%s' (the only one is topic_prefix; "
			                    "other settings are fields of \"target\", see docs/kafka.md)",
			                    url.params[i].key);
		prefix = url.params[i].value;
	}
	if (!url.host[0])
		return ps_error_set(err, PS_EINVAL, "kafka URL '%s' names no broker: write "
		                    "kafka://host:port[,host:port...]/?topic_prefix=...", url.redacted);
	if (!prefix)
		prefix = cfg->job_name;
	why = check_topic(prefix ? prefix : "");
	if (why)
		return ps_error_set(err, PS_EINVAL, "topic_prefix '%s' %s", prefix ? prefix : "", why);
	o->brokers = strdup(url.host);
	o->topic_prefix = strdup(prefix);
	if (!o->brokers || !o->topic_prefix)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	return PS_OK;
}

int ps__kafka_opts_parse(kf_opts *o, const ps_sink_config *cfg, ps_error *err)
{
	const json_t *opts = cfg->options;
	const char *v;
	char txn[PS_OPTION_TEXT_MAX];
	int rc;

	memset(o, 0, sizeof(*o));
	rc = parse_url(o, cfg, err);
	if (rc != PS_OK)
		return rc;
	v = ps_option_str(opts, "delivery");
	o->exactly_once = !v || strcmp(v, "exactly_once") == 0;
	o->schemas = ps_option_bool(opts, "schemas", true);
	o->flatten = ps_option_bool(opts, "flatten", false);
	o->tombstones = ps_option_bool(opts, "tombstones", true);
	o->truncate_events = ps_option_bool(opts, "truncate_events", false);
	o->transaction_metadata = ps_option_bool(opts, "transaction_metadata", false);
	o->heartbeat_ms = ps_option_int(opts, "heartbeat_interval_ms", 0);
	v = ps_option_str(opts, "decimal_handling");
	o->decimals = v && strcmp(v, "precise") == 0 ? PS_DECIMAL_PRECISE : PS_DECIMAL_STRING;
	default_txn_id(cfg->job_name, txn, sizeof(txn));
	o->transactional_id = dup_opt(opts, "transactional_id", txn);
	o->checkpoint_topic = dup_opt(opts, "checkpoint_topic", KF_DEFAULT_CHECKPOINT_TOPIC);
	o->placeholder = dup_opt(opts, "unavailable_value_placeholder", "__debezium_unavailable_value");
	o->topic_partitions = (int)ps_option_int(opts, "topic_partitions", -1);
	o->replication_factor = (int)ps_option_int(opts, "replication_factor", -1);
	o->transaction_timeout_ms = (int)ps_option_int(opts, "transaction_timeout_ms", 600000);
	o->timeout_ms = (int)ps_option_int(opts, "timeout_ms", 30000);
	if (!o->transactional_id || !o->checkpoint_topic || !o->placeholder)
		return ps_error_set(err, PS_ENOMEM, "out of memory");
	if (o->topic_partitions == 0 || o->replication_factor == 0)
		return ps_error_set(err, PS_EINVAL, "target.topic_partitions and "
		                    "target.replication_factor are -1 (the brokers' default) or at least 1");
	rc = ps_netchg_options(opts, &o->net, &o->net_opts, err);
	if (rc != PS_OK)
		return rc;
	if (o->net && o->transaction_metadata)
		return ps_error_set(err, PS_EINVAL, "target.transaction_metadata does not go with "
		                    "target.changes \"net\": a net event is the sum of many source "
		                    "transactions; remove one of them");
	v = ps_option_str(opts, "split");
	o->split = v && strcmp(v, "operation") == 0;
	if (o->timeout_ms >= o->transaction_timeout_ms)
		return ps_error_set(err, PS_EINVAL, "target.timeout_ms (%d) must be below "
		                    "target.transaction_timeout_ms (%d)", o->timeout_ms,
		                    o->transaction_timeout_ms);
	return security_props(o, cfg, err);
}

void ps__kafka_opts_free(kf_opts *o)
{
	for (size_t i = 0; o->props && o->props[i]; i++) {
		ps_secret_free(o->props[i]);   /* wipes, then frees */
	}
	free(o->props);
	free(o->brokers);
	free(o->topic_prefix);
	free(o->transactional_id);
	free(o->checkpoint_topic);
	free(o->placeholder);
	memset(o, 0, sizeof(*o));
}
