/*
 * version.h — penstock's version, for `penstock version` and the API.
 */
#ifndef PS_CORE_VERSION_H
#define PS_CORE_VERSION_H

#define PENSTOCK_VERSION "0.1.0"

#endif
