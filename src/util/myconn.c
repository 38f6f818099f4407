/*
 * myconn.c — what the MySQL / MariaDB source and sink share. For now the
 * URL syntax of mysql:// and mariadb://; the connection helpers join it with
 * the plugins.
 */
#include "penstock/url.h"

const ps_url_syntax ps_mysql_url_syntax[] = {
	{"mysql", "mysql", PS_URL_SERVER, 3306, true, false, NULL,
	 "mysql://user@host[:port]/dbname"},
	{"mariadb", "mysql", PS_URL_SERVER, 3306, true, false, NULL,
	 "mysql://user@host[:port]/dbname"},
	{NULL, NULL, 0, 0, false, false, NULL, NULL},
};
