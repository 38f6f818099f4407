/*
 * kafka_errors.c — what a Kafka error means for a job: its engine code
 * (librdkafka's name for it, "Kafka error" in messages and the API) and the
 * class the core retries by (penstock/error.h).
 *
 * The kind (kafka_log.h) says what the client can still do; the code says
 * what happened. A code that names a condition no retry cures
 * (authorization, a refused configuration, a record too large) is
 * permanent whatever the kind; otherwise the kind decides:
 *
 *   retriable   connection / timeout       the run is retried
 *   abortable   conflict                   aborted, retried from the checkpoint
 *   fatal       conflict                   the next run builds a new producer
 *   fenced      invalid (permanent)        another producer has the
 *                                          transactional id: another penstock
 *                                          running the same job, or two jobs
 *                                          sharing target.transactional_id
 *   permanent   internal (permanent)
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "sink/kafka/kafka_log.h"

static int class_of_code(int e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
	case RD_KAFKA_RESP_ERR__AUTHENTICATION:
	case RD_KAFKA_RESP_ERR__SSL:
		return PS_ERRCLASS_PERMISSION;
	case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
	case RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
	case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
		return PS_ERRCLASS_INVALID;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
		return PS_ERRCLASS_SCHEMA;
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
		return PS_ERRCLASS_TIMEOUT;
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
	case RD_KAFKA_RESP_ERR__RESOLVE:
	case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
	case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
	case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
	case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
	case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
	case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
		return PS_ERRCLASS_CONNECTION;
	default:
		return -1;
	}
}

int ps__kafka_errclass(int rd_err, kf_errkind kind)
{
	int cls = class_of_code(rd_err);

	if (kind == KF_FENCED)
		return PS_ERRCLASS_INVALID;
	if (cls == PS_ERRCLASS_PERMISSION || cls == PS_ERRCLASS_INVALID || cls == PS_ERRCLASS_SCHEMA)
		return cls;
	switch (kind) {
	case KF_RETRIABLE:
		return cls >= 0 ? cls : PS_ERRCLASS_CONNECTION;
	case KF_ABORTABLE:
	case KF_FATAL:
		return PS_ERRCLASS_CONFLICT;
	default:
		return cls >= 0 ? cls : PS_ERRCLASS_INTERNAL;
	}
}

kf_errkind ps__kafka_error(ps_error *err, kf_errkind kind, int rd_err, const char *what,
                           const char *detail)
{
	int cls = ps__kafka_errclass(rd_err, kind);
	int code = cls == PS_ERRCLASS_TIMEOUT ? PS_ETIMEOUT
	         : cls == PS_ERRCLASS_CONNECTION ? PS_ECONNECT : PS_ESERVER;

	ps_error_set(err, code, "Kafka: %s failed: %s", what, detail && *detail ? detail
	             : rd_kafka_err2str((rd_kafka_resp_err_t)rd_err));
	ps_error_set_engine(err, "Kafka error", rd_kafka_err2name((rd_kafka_resp_err_t)rd_err), cls);
	return kind;
}
