/* version.h - the one place the release version is written. */
#ifndef HQ_CORE_VERSION_H
#define HQ_CORE_VERSION_H

#define HAMQTT_VERSION "0.1.0"

#endif
