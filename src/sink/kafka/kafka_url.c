/*
 * kafka_url.c — the URL syntax of kafka:// (penstock/url.h): a broker list,
 * no user, no path; options in the query (topic_prefix=...).
 */
#include "penstock/url.h"

const ps_url_syntax ps_kafka_url_syntax[] = {
	{"kafka", "kafka", PS_URL_HOSTS, 0, false, false, NULL,
	 "kafka://host:port[,host:port...]/?topic_prefix=..."},
	{NULL, NULL, 0, 0, false, false, NULL, NULL},
};
