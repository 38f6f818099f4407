/*
 * kafka_mock.c — keeps a librdkafka mock cluster alive on loopback ports for
 * the integration tests, and lets them inject faults into it.
 *
 *   kafka_mock [--brokers N] [--topic NAME:PARTITIONS]...
 *
 * Prints the cluster's bootstrap servers ("127.0.0.1:port,...") on the first
 * line of standard output, then reads commands from standard input, one a
 * line, answering each with "ok" or "error: <why>" on a line of its own:
 *
 *   topic NAME PARTITIONS              create a topic
 *   errors API COUNT ERROR [ERROR...]  the next COUNT requests of API (Produce,
 *                                      EndTxn, InitProducerId, ...) fail with
 *                                      the errors, in turn (COUNT may exceed
 *                                      the names given: the last repeats)
 *   clear API                          drop the errors still queued for API
 *   down ID|all                        a broker (or every broker) goes down:
 *                                      its connections close, new ones fail
 *   up ID|all                          back up
 *   rtt ID|all MS                      round-trip delay
 *   quit                               (or end of input) stops the cluster
 *
 * Error names are librdkafka's without the RD_KAFKA_RESP_ERR_ prefix
 * (NOT_ENOUGH_REPLICAS, PRODUCER_FENCED, UNKNOWN_SERVER_ERROR, ...).
 *
 * What librdkafka 2.0.2's mock cluster cannot do is written in
 * docs/kafka.md ("Testing"): aborted records stay visible to read_committed
 * readers, a second producer of a transactional id does not fence the first,
 * there is no CreateTopics or DescribeConfigs (topics are created
 * automatically, with 4 partitions unless made here first), and a partition
 * keeps at most 5 MiB or 100,000 message sets: the oldest are dropped
 * beyond that, as retention would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static const struct {
	const char *name;
	int16_t key;
} APIS[] = {
	{"Produce", 0}, {"Fetch", 1}, {"ListOffsets", 2}, {"Metadata", 3}, {"OffsetCommit", 8},
	{"OffsetFetch", 9}, {"FindCoordinator", 10}, {"InitProducerId", 22},
	{"AddPartitionsToTxn", 24}, {"AddOffsetsToTxn", 25}, {"EndTxn", 26}, {"TxnOffsetCommit", 28},
};

static int api_key(const char *name)
{
	for (size_t i = 0; i < sizeof(APIS) / sizeof(APIS[0]); i++)
		if (strcasecmp(APIS[i].name, name) == 0)
			return APIS[i].key;
	return -1;
}

static int err_code(const char *name, rd_kafka_resp_err_t *out)
{
	const struct rd_kafka_err_desc *descs;
	size_t n;

	rd_kafka_get_err_descs(&descs, &n);
	for (size_t i = 0; i < n; i++)
		if (descs[i].name && strcasecmp(descs[i].name, name) == 0) {
			*out = descs[i].code;
			return 0;
		}
	return -1;
}

static int brokers = 1;

static int each_broker(rd_kafka_mock_cluster_t *mc, const char *which, int cmd, int rtt)
{
	int lo = 1, hi = brokers;
	rd_kafka_resp_err_t e = 0;

	if (strcmp(which, "all") != 0) {
		lo = hi = atoi(which);
		if (lo < 1 || lo > brokers)
			return -1;
	}
	for (int id = lo; id <= hi && !e; id++)
		e = cmd == 0 ? rd_kafka_mock_broker_set_down(mc, id)
		  : cmd == 1 ? rd_kafka_mock_broker_set_up(mc, id)
		             : rd_kafka_mock_broker_set_rtt(mc, id, rtt);
	return e ? -1 : 0;
}

static void command(rd_kafka_mock_cluster_t *mc, char *line)
{
	char *argv[64];
	int argc = 0;

	for (char *tok = strtok(line, " \t\r\n"); tok && argc < 64; tok = strtok(NULL, " \t\r\n"))
		argv[argc++] = tok;
	if (argc == 0)
		return;
	if (strcmp(argv[0], "topic") == 0 && argc == 3) {
		if (rd_kafka_mock_topic_create(mc, argv[1], atoi(argv[2]), 1)) {
			printf("error: cannot create topic %s\n", argv[1]);
			return;
		}
	} else if (strcmp(argv[0], "errors") == 0 && argc >= 4) {
		int api = api_key(argv[1]), cnt = atoi(argv[2]);
		rd_kafka_resp_err_t errs[1024];

		if (api < 0 || cnt < 1 || cnt > 1024) {
			printf("error: bad API or count\n");
			return;
		}
		for (int i = 0; i < cnt; i++) {
			const char *name = argv[3 + (i < argc - 3 ? i : argc - 4)];
			if (err_code(name, &errs[i]) != 0) {
				printf("error: unknown error %s\n", name);
				return;
			}
		}
		rd_kafka_mock_push_request_errors_array(mc, (int16_t)api, (size_t)cnt, errs);
	} else if (strcmp(argv[0], "clear") == 0 && argc == 2 && api_key(argv[1]) >= 0) {
		rd_kafka_mock_clear_request_errors(mc, (int16_t)api_key(argv[1]));
	} else if ((strcmp(argv[0], "down") == 0 || strcmp(argv[0], "up") == 0) && argc == 2) {
		if (each_broker(mc, argv[1], argv[0][0] == 'd' ? 0 : 1, 0) != 0) {
			printf("error: no broker %s\n", argv[1]);
			return;
		}
	} else if (strcmp(argv[0], "rtt") == 0 && argc == 3) {
		if (each_broker(mc, argv[1], 2, atoi(argv[2])) != 0) {
			printf("error: no broker %s\n", argv[1]);
			return;
		}
	} else {
		printf("error: unknown command %s\n", argv[0]);
		return;
	}
	printf("ok\n");
}

int main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_mock_cluster_t *mc;
	char errstr[512], line[8192];
	rd_kafka_t *rk;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc)
			brokers = atoi(argv[++i]);
	}
	if (brokers < 1)
		brokers = 1;
	rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "kafka_mock: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (!mc) {
		fprintf(stderr, "kafka_mock: cannot start the mock cluster\n");
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
			char *spec = argv[++i], *colon = strchr(spec, ':');
			int parts = colon ? atoi(colon + 1) : 1;
			if (colon)
				*colon = '\0';
			if (rd_kafka_mock_topic_create(mc, spec, parts, 1)) {
				fprintf(stderr, "kafka_mock: cannot create topic %s\n", spec);
				return 1;
			}
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "quit", 4) == 0)
			break;
		command(mc, line);
	}
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
