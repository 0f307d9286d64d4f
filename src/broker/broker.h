/*
 * broker.h - the MQTT broker node as main() sees it: build it from a config,
 * run its workers, stop it, free it. Everything else is private (brk_int.h).
 */
#ifndef HQ_BROKER_H
#define HQ_BROKER_H

#include <stddef.h>
#include <stdint.h>

struct broker;
struct hq_config;

/* Build a broker and open its listeners (so a bind error fails the start).
 * cfg is borrowed and must outlive the broker. On error returns NULL and
 * writes a message into err. */
struct broker *broker_new(struct hq_config *cfg, char *err, size_t errlen);
/* Start the worker threads; returns HQ_OK or HQ_EIO. */
int broker_start(struct broker *b);
/* Ask every worker to close its connections and stop (thread safe). */
void broker_stop(struct broker *b);
/* Wait for the workers to finish, then release everything. */
void broker_free(struct broker *b);

#endif
