/*
 * conf_int.h - the configuration key table shared by conf_keys.c (the
 * schema: every key's name, type, range, field, default and doc) and conf.c
 * (the parsers that walk it). For src/core/conf*.c only; everyone else uses
 * conf.h.
 */
#ifndef HQ_CORE_CONF_INT_H
#define HQ_CORE_CONF_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum key_type { KT_STR, KT_INT, KT_BOOL, KT_ENUM, KT_SIZE, KT_DUR };

#define KEY_LISTENER 1u      /* listeners.<type>.<name>.<leaf>; field is in struct conf_listener */
#define KEY_DEFAULT_ONLY 2u  /* default applies to listener "default"; others start with "" */

#define LISTENER_PREFIX "listeners."
#define LISTENER_NAME_MAX 64

struct conf_key {
	const char *name;
	enum key_type type;
	unsigned flags;
	size_t off;                  /* into struct hq_config, or struct conf_listener */
	size_t width;                /* sizeof the field: 1 (bool), 4, 8 or sizeof(char *) */
	int64_t min, max;            /* KT_INT, KT_SIZE (bytes), KT_DUR (seconds) */
	const char *const *names;    /* KT_ENUM: NULL-terminated; index = stored value */
	bool (*check)(const char *v);/* KT_STR: extra syntax check, may be NULL */
	const char *expect;          /* KT_STR with check: what "expected ..." names */
	const char *def;             /* default, as it would be written in the file */
	const char *doc;
	int ltype;                   /* KEY_LISTENER: enum conf_listener_type the row belongs to */
};

#define CONF_U32 INT64_C(4294967295)

/* Character classes and checks shared with the parsers (conf_keys.c). */
bool conf_is_name_char(char c);          /* [A-Za-z0-9_.-] */
bool conf_check_nodename(const char *v); /* name@host */
bool conf_check_tls_versions(const char *v); /* "1.2", "1.3" or "1.2,1.3" (spaces allowed) */

/* The table (conf_keys.c): conf_n_keys rows, immutable. */
extern const struct conf_key conf_keys[];
extern const size_t conf_n_keys;

#endif
