/* placeholder replaced by the serialisation work */
#ifndef HQ_BROKER_SESS_SERIAL_H
#define HQ_BROKER_SESS_SERIAL_H
#include "broker/brk_int.h"
void sess_serialize(const struct session *s, struct buf *out);
int sess_deserialize(struct worker *w, const uint8_t *p, size_t n, int64_t now_ms, struct session **out);
#endif
