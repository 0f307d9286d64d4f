/*
 * brk_rpc.c - the broker's part of the cluster-wide REST API (broker.h
 * broker_cluster_call_many and friends): the seam between the HTTP server's
 * executor and the cluster thread (src/cluster/clu_rpc.c), which know
 * nothing of each other. The executor is registered here; the cluster
 * thread calls it under api_lock, so clearing it waits for a call running.
 */
#include "broker/brk_int.h"
#include "broker/brk_clu.h"
#include "cluster/cluster.h"
#include "core/err.h"
#include "core/mem.h"

#include <stdlib.h>

int broker_cluster_call_many(struct broker *b, struct broker_rpc *reqs, size_t n, int timeout_ms)
{
	if (b->clu)
		return clu_rpc_call_many(b->clu, reqs, n, timeout_ms);
	for (size_t i = 0; i < n; i++) { /* a standalone node has no one to ask */
		reqs[i].status = BROKER_RPC_UNREACHABLE;
		reqs[i].resp = NULL;
		reqs[i].resp_len = 0;
	}
	return HQ_OK;
}

void broker_set_api_handler(struct broker *b, broker_api_fn *fn, void *arg)
{
	pthread_mutex_lock(&b->api_lock);
	b->api_fn = fn;
	b->api_arg = arg;
	pthread_mutex_unlock(&b->api_lock);
}

bool brk_clu_api_call(struct broker *b, struct broker_rpc_job *job)
{
	pthread_mutex_lock(&b->api_lock);
	bool ok = b->api_fn != NULL;
	if (ok)
		b->api_fn(b->api_arg, job);
	pthread_mutex_unlock(&b->api_lock);
	return ok;
}

void broker_rpc_job_free(struct broker_rpc_job *job)
{
	if (!job)
		return;
	hq_free(job->method);
	hq_free(job->path);
	hq_free(job->query);
	hq_free(job->body);
	free(job->resp);
	hq_free(job);
}

void broker_rpc_answer(struct broker *b, struct broker_rpc_job *job, int status, char *body,
		       size_t len)
{
	free(job->resp);
	job->status = status;
	job->resp = body;
	job->resp_len = body ? len : 0;
	if (b->clu)
		clu_rpc_answer(b->clu, job); /* the cluster thread sends it, then frees it */
	else
		broker_rpc_job_free(job);
}
