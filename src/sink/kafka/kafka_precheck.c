/*
 * kafka_precheck.c — the Kafka target's prechecks (sink.h precheck,
 * penstock/check.h; each id is in docs/prechecks.md):
 *
 *   target.connect           the brokers answer (a metadata request)
 *   target.topics            each selected table's topic exists with at least
 *                            target.topic_partitions partitions, or can be
 *                            created (CreateTopics with validate_only)
 *   target.checkpoint_topic  exactly once: the checkpoint topic exists with
 *                            cleanup.policy=compact (DescribeConfigs), or can
 *                            be created so
 *
 * Nothing is created: the cluster's topics are listed with a metadata
 * request for all topics, which never creates one, and a creation is only
 * validated. Brokers that do not take CreateTopics or DescribeConfigs
 * (librdkafka's mock cluster) give a warning saying what could not be
 * checked, never a pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "sink/kafka/kafka_internal.h"
#include "util/buf.h"

#define ERRSTR 512

typedef struct pc_ctx {
	ps_check_report *report;
	const kf_opts *o;
	rd_kafka_t *rk;
	const struct rd_kafka_metadata *md;
	bool controller;              /* CreateTopics can be sent (kafka_rdlog.c) */
	int rc;
} pc_ctx;

#define ADD(c, id, level, result, fix, ...)                                         \
	do {                                                                            \
		if ((c)->rc == 0)                                                           \
			(c)->rc = ps_check_add((c)->report, id, level, result, fix, __VA_ARGS__); \
	} while (0)

static const struct rd_kafka_metadata_topic *find_topic(pc_ctx *c, const char *name)
{
	for (int i = 0; i < c->md->topic_cnt; i++)
		if (strcmp(c->md->topics[i].topic, name) == 0 && !c->md->topics[i].err)
			return &c->md->topics[i];
	return NULL;
}

/* Whether the brokers would create topic (validate_only): 0 yes; else the
 * error code, with its message in why. */
static int can_create(pc_ctx *c, const char *topic, int partitions, bool compacted, char *why,
                      size_t why_len)
{
	rd_kafka_NewTopic_t *nt;
	rd_kafka_AdminOptions_t *opt;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	char errstr[ERRSTR];
	int code = 0;

	why[0] = '\0';
	if (!c->controller) {
		snprintf(why, why_len, "the brokers name no controller");
		return RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE;
	}
	nt = rd_kafka_NewTopic_new(topic, partitions, c->o->replication_factor, errstr,
	                           sizeof(errstr));
	if (!nt) {
		snprintf(why, why_len, "%s", errstr);
		return RD_KAFKA_RESP_ERR__INVALID_ARG;
	}
	if (compacted)
		rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
	opt = rd_kafka_AdminOptions_new(c->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_validate_only(opt, 1, errstr, sizeof(errstr));
	rd_kafka_AdminOptions_set_request_timeout(opt, c->o->timeout_ms, errstr, sizeof(errstr));
	q = rd_kafka_queue_new(c->rk);
	rd_kafka_CreateTopics(c->rk, &nt, 1, opt, q);
	ev = rd_kafka_queue_poll(q, c->o->timeout_ms + 1000);
	if (!ev) {
		code = RD_KAFKA_RESP_ERR__TIMED_OUT;
		snprintf(why, why_len, "no answer");
	} else if (rd_kafka_event_error(ev)) {
		code = rd_kafka_event_error(ev);
		snprintf(why, why_len, "%s", rd_kafka_event_error_string(ev));
	} else {
		size_t n = 0;
		const rd_kafka_topic_result_t **tr =
			rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
		if (n == 1 && rd_kafka_topic_result_error(tr[0])) {
			code = rd_kafka_topic_result_error(tr[0]);
			snprintf(why, why_len, "%s", rd_kafka_topic_result_error_string(tr[0]) ?
			         rd_kafka_topic_result_error_string(tr[0]) : rd_kafka_err2str(code));
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_NewTopic_destroy(nt);
	return code;
}

static bool unsupported(int code)
{
	return code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
	       code == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION || code == RD_KAFKA_RESP_ERR_INVALID_REQUEST;
}

/* The topic's cleanup.policy into policy; 0, or the error code. */
static int cleanup_policy(pc_ctx *c, const char *topic, char *policy, size_t len)
{
	rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(c->rk,
	                                                         RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
	rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
	rd_kafka_event_t *ev;
	char errstr[ERRSTR];
	int code = 0;

	policy[0] = '\0';
	rd_kafka_AdminOptions_set_request_timeout(opt, c->o->timeout_ms, errstr, sizeof(errstr));
	rd_kafka_DescribeConfigs(c->rk, &cr, 1, opt, q);
	ev = rd_kafka_queue_poll(q, c->o->timeout_ms + 1000);
	if (!ev) {
		code = RD_KAFKA_RESP_ERR__TIMED_OUT;
	} else if (rd_kafka_event_error(ev)) {
		code = rd_kafka_event_error(ev);
	} else {
		size_t nres = 0, ncfg = 0;
		const rd_kafka_ConfigResource_t **res = rd_kafka_DescribeConfigs_result_resources(
			rd_kafka_event_DescribeConfigs_result(ev), &nres);
		if (nres == 1 && rd_kafka_ConfigResource_error(res[0])) {
			code = rd_kafka_ConfigResource_error(res[0]);
		} else if (nres == 1) {
			const rd_kafka_ConfigEntry_t **cfgs = rd_kafka_ConfigResource_configs(res[0], &ncfg);
			for (size_t i = 0; i < ncfg; i++)
				if (strcmp(rd_kafka_ConfigEntry_name(cfgs[i]), "cleanup.policy") == 0 &&
				    rd_kafka_ConfigEntry_value(cfgs[i]))
					snprintf(policy, len, "%s", rd_kafka_ConfigEntry_value(cfgs[i]));
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_ConfigResource_destroy(cr);
	return code;
}

static void topic_of(const kf_opts *o, const ps_check_table *t, char *buf, size_t len)
{
	snprintf(buf, len, "%s.%s.%s", o->topic_prefix, t->schema, t->name);
	for (char *p = buf + strlen(o->topic_prefix) + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			*p = '_';
}

static void check_topics(pc_ctx *c, const ps_check_tables *tables)
{
	ps_buf few, missing, refused, fixes;
	size_t nmissing = 0, nok = 0;
	int want = c->o->topic_partitions, unsupported_code = 0;
	char topic[700], why[ERRSTR], first_why[ERRSTR] = "";

	if (!tables || !tables->listed) {
		ADD(c, "target.topics", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "not checked: the source could not list its tables");
		return;
	}
	ps_buf_init(&few, 1 << 20);
	ps_buf_init(&missing, 1 << 20);
	ps_buf_init(&refused, 1 << 20);
	ps_buf_init(&fixes, 1 << 20);
	for (size_t i = 0; i < tables->n; i++) {
		const struct rd_kafka_metadata_topic *mt;
		int code;

		topic_of(c->o, &tables->items[i], topic, sizeof(topic));
		mt = find_topic(c, topic);
		if (mt && (want <= 0 || mt->partition_cnt >= want)) {
			nok++;
		} else if (mt) {
			ps_buf_printf(&few, "%s%s (%d)", few.len ? ", " : "", topic, mt->partition_cnt);
			ps_buf_printf(&fixes, "%skafka-topics.sh --bootstrap-server %s --alter --topic %s "
			              "--partitions %d", fixes.len ? "; " : "", c->o->brokers, topic, want);
		} else if ((code = can_create(c, topic, want, false, why, sizeof(why))) == 0) {
			nmissing++;
		} else if (unsupported(code)) {
			unsupported_code = code;
			ps_buf_printf(&missing, "%s%s", missing.len ? ", " : "", topic);
		} else {
			ps_buf_printf(&refused, "%s%s", refused.len ? ", " : "", topic);
			if (!first_why[0])
				snprintf(first_why, sizeof(first_why), "%s", why);
		}
	}
	if (few.len)
		ADD(c, "target.topics", PS_CHECK_ERROR, PS_CHECK_FAILED, fixes.data,
		    "topics with fewer partitions than target.topic_partitions (%d): %s", want, few.data);
	else if (refused.len)
		ADD(c, "target.topics", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "grant penstock's user CREATE on the cluster or these topics, or create them",
		    "the brokers would refuse to create %s: %s", refused.data, first_why);
	else if (unsupported_code)
		ADD(c, "target.topics", PS_CHECK_WARNING, PS_CHECK_FAILED,
		    "create the topics, or make sure the brokers have auto.create.topics.enable=true",
		    "the brokers cannot create topics by request (%s): %s will be created by the "
		    "brokers' automatic creation, with their default partitions, if they allow it",
		    rd_kafka_err2name(unsupported_code), missing.data);
	else
		ADD(c, "target.topics", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "%zu topic%s exist%s, %zu will be created", nok, nok == 1 ? "" : "s",
		    nok == 1 ? "s" : "", nmissing);
	ps_buf_free(&few);
	ps_buf_free(&missing);
	ps_buf_free(&refused);
	ps_buf_free(&fixes);
}

static void check_checkpoint_topic(pc_ctx *c)
{
	const char *t = c->o->checkpoint_topic;
	const struct rd_kafka_metadata_topic *mt;
	char policy[128], why[ERRSTR], fix[1024];
	int code;

	if (!c->o->exactly_once) {
		ADD(c, "target.checkpoint_topic", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
		    "target.delivery is at_least_once: the checkpoint is kept in the state directory");
		return;
	}
	snprintf(fix, sizeof(fix), "kafka-configs.sh --bootstrap-server %s --alter --entity-type "
	         "topics --entity-name %s --add-config cleanup.policy=compact", c->o->brokers, t);
	mt = find_topic(c, t);
	if (!mt) {
		code = can_create(c, t, 1, true, why, sizeof(why));
		if (code == 0)
			ADD(c, "target.checkpoint_topic", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
			    "%s will be created with one partition and cleanup.policy=compact", t);
		else if (unsupported(code))
			ADD(c, "target.checkpoint_topic", PS_CHECK_WARNING, PS_CHECK_FAILED, fix,
			    "the brokers cannot create topics by request (%s): %s will be created by the "
			    "brokers' automatic creation, not compacted; create it with one partition and "
			    "cleanup.policy=compact", rd_kafka_err2name(code), t);
		else
			ADD(c, "target.checkpoint_topic", PS_CHECK_ERROR, PS_CHECK_FAILED,
			    "grant penstock's user CREATE, or create the topic with one partition and "
			    "cleanup.policy=compact", "the brokers would refuse to create %s: %s", t, why);
		return;
	}
	code = c->controller ? cleanup_policy(c, t, policy, sizeof(policy))
	                     : RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE;
	if (unsupported(code))
		ADD(c, "target.checkpoint_topic", PS_CHECK_WARNING, PS_CHECK_FAILED, fix,
		    "%s exists (%d partition%s) but the brokers cannot describe its configuration "
		    "(%s): make sure its cleanup.policy is compact", t, mt->partition_cnt,
		    mt->partition_cnt == 1 ? "" : "s", rd_kafka_err2name(code));
	else if (code)
		ADD(c, "target.checkpoint_topic", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "grant penstock's user DESCRIBE_CONFIGS on the topic",
		    "cannot read the configuration of %s: %s", t, rd_kafka_err2str(code));
	else if (!strstr(policy, "compact"))
		ADD(c, "target.checkpoint_topic", PS_CHECK_ERROR, PS_CHECK_FAILED, fix,
		    "%s has cleanup.policy=%s: old checkpoints would be deleted by retention, not "
		    "compacted, and a long idle job could lose its checkpoint", t,
		    policy[0] ? policy : "(unknown)");
	else if (mt->partition_cnt != 1)
		ADD(c, "target.checkpoint_topic", PS_CHECK_WARNING, PS_CHECK_FAILED, NULL,
		    "%s is compacted but has %d partitions: penstock uses partition 0 only", t,
		    mt->partition_cnt);
	else
		ADD(c, "target.checkpoint_topic", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
		    "%s exists, compacted, one partition", t);
}

int ps__kafka_precheck(const ps_sink_config *cfg, const ps_table_options *opt, bool loads,
                       const ps_check_tables *tables, ps_check_report *report, ps_error *err)
{
	pc_ctx c = {.report = report};
	kf_opts o;
	ps_error oerr;
	rd_kafka_conf_t *conf = NULL;
	char errstr[ERRSTR];
	rd_kafka_resp_err_t e;

	(void)opt;
	(void)loads;
	ps_error_clear(&oerr);
	if (ps__kafka_opts_parse(&o, cfg, &oerr) != PS_OK) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "fix target.url and the target's fields", "%s", oerr.message);
		goto skip_rest;
	}
	c.o = &o;
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", o.brokers, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, "fix target.url", "%s", errstr);
		goto skip_rest;
	}
	for (size_t i = 0; o.props[i] && o.props[i + 1]; i += 2)
		if (rd_kafka_conf_set(conf, o.props[i], o.props[i + 1], errstr, sizeof(errstr)) !=
		    RD_KAFKA_CONF_OK) {
			ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED,
			    "fix the target's security fields", "client setting %s refused: %s",
			    o.props[i], errstr);
			goto skip_rest;
		}
	c.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!c.rk) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED, NULL,
		    "cannot create a Kafka client: %s", errstr);
		goto skip_rest;
	}
	conf = NULL;
	e = rd_kafka_metadata(c.rk, 1, NULL, &c.md, o.timeout_ms);
	if (e) {
		ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_FAILED,
		    "check that the brokers in target.url are up and reachable from this host, and "
		    "the security settings",
		    "no answer from the brokers %s within %d ms: %s", o.brokers, o.timeout_ms,
		    rd_kafka_err2str(e));
		goto skip_rest;
	}
	c.controller = ps__kafka_has_controller(c.rk, c.md, o.timeout_ms);
	ADD(&c, "target.connect", PS_CHECK_ERROR, PS_CHECK_PASSED, NULL,
	    "brokers %s answer: %d broker%s, %d topic%s", o.brokers, c.md->broker_cnt,
	    c.md->broker_cnt == 1 ? "" : "s", c.md->topic_cnt, c.md->topic_cnt == 1 ? "" : "s");
	check_topics(&c, tables);
	check_checkpoint_topic(&c);
	goto done;
skip_rest:
	ADD(&c, "target.topics", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
	    "not checked: target.connect failed");
	ADD(&c, "target.checkpoint_topic", PS_CHECK_ERROR, PS_CHECK_SKIPPED, NULL,
	    "not checked: target.connect failed");
done:
	if (c.md)
		rd_kafka_metadata_destroy(c.md);
	if (c.rk)
		rd_kafka_destroy(c.rk);
	if (conf)
		rd_kafka_conf_destroy(conf);
	if (c.o)
		ps__kafka_opts_free(&o);
	if (c.rc != 0)
		return ps_error_set(err, c.rc, "out of memory");
	return PS_OK;
}
