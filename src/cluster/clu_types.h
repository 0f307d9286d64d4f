/*
 * clu_types.h - the cluster's values the broker needs, and nothing else: no
 * wire layout, no functions. The broker includes cluster/cluster.h and this
 * header only (never clu_proto.h or clu_int.h).
 *
 * The hybrid logical clock (clu_hlc.h, a small pure module) comes along:
 * the broker stamps retained writes and connections with it.
 */
#ifndef HQ_CLUSTER_CLU_TYPES_H
#define HQ_CLUSTER_CLU_TYPES_H

#include "cluster/clu_hlc.h"

/* The answer of the other nodes about a client id connecting here
 * (SESSION_TAKEOVER_RESP status on the wire, clu_proto.h; the values are the
 * wire's and never change). */
enum clu_takeover_status {
	CLU_TAKEOVER_OK = 0,      /* taken over: a session may come along */
	CLU_TAKEOVER_NONE = 1,    /* nobody held it */
	CLU_TAKEOVER_REFUSED = 2, /* a newer connection elsewhere wins */
};

#endif
