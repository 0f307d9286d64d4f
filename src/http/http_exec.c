/*
 * http_exec.c - the executor of the requests other members ask this node to
 * answer for itself (RPC_REQ, src/cluster/clu_rpc.c). The cluster thread
 * must never run a handler (a handler may wait for the workers, which may
 * wait for the cluster thread), so it only queues the job here
 * (http_exec_submit, registered with broker_set_api_handler); two threads
 * of ours run it as a local request (req->local: the link is authenticated
 * by the cookie, and TLS when on) under an administrator principal, and hand
 * the answer back with broker_rpc_answer.
 *
 * Bounds: EXEC_QUEUE_MAX jobs waiting (more: 503 at once); each handler is
 * bounded like any HTTP handler. At shutdown every queued job is answered 503.
 */
#include "http/http_int.h"
#include "http/http_query.h"
#include "broker/broker.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXEC_THREADS 2
#define EXEC_QUEUE_MAX 64

struct http_exec {
	struct http_ctx *ctx;             /* borrowed from the server */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct broker_rpc_job *q[EXEC_QUEUE_MAX]; /* FIFO ring, owned */
	size_t head, len;
	bool stop;
	pthread_t th[EXEC_THREADS];
	int n_th;
};

static void answer_error(struct http_ctx *ctx, struct broker_rpc_job *j, int status,
			 const char *code, const char *msg)
{
	struct http_resp r;
	memset(&r, 0, sizeof(r));
	http_resp_error(&r, status, code, msg);
	broker_rpc_answer(atomic_load(&ctx->b), j, r.status, r.body, r.body_len);
}

static void run(struct http_ctx *ctx, struct broker_rpc_job *j)
{
	struct http_query q = { 0 };
	struct http_resp r;
	memset(&r, 0, sizeof(r));
	if (http_query_parse(&q, j->query, strlen(j->query)) != HQ_OK) {
		http_resp_error(&r, 400, "BAD_REQUEST", "bad query string");
	} else {
		char peer[300];
		snprintf(peer, sizeof(peer), "%s", j->node);
		struct http_req req = {
			.method = j->method, .path = j->path, .body = j->body,
			.body_len = j->body_len, .peer = peer, .query = &q,
			.local = true,
		};
		http_api_dispatch(ctx, &req, &r);
	}
	http_query_free(&q);
	free(r.unreachable);
	broker_rpc_answer(atomic_load(&ctx->b), j, r.status, r.body, r.body_len);
}

static void *exec_main(void *arg)
{
	struct http_exec *e = arg;
	pthread_setname_np(pthread_self(), "hamqtt-apiexec");
	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->len && !e->stop)
			pthread_cond_wait(&e->cv, &e->mu);
		if (!e->len)
			break; /* stopping, nothing left */
		struct broker_rpc_job *j = e->q[e->head];
		e->head = (e->head + 1) % EXEC_QUEUE_MAX;
		e->len--;
		bool stop = e->stop;
		pthread_mutex_unlock(&e->mu);
		if (stop)
			answer_error(e->ctx, j, 503, "NOT_RUNNING", "the node is stopping");
		else
			run(e->ctx, j);
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

struct http_exec *http_exec_new(struct http_ctx *ctx)
{
	struct http_exec *e = hq_calloc(1, sizeof(*e));
	e->ctx = ctx;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	for (int i = 0; i < EXEC_THREADS; i++) {
		if (pthread_create(&e->th[i], NULL, exec_main, e) != 0) {
			log_error("http: cannot start a cluster API executor thread");
			break;
		}
		e->n_th++;
	}
	if (!e->n_th) {
		http_exec_free(e);
		return NULL;
	}
	return e;
}

void http_exec_submit(void *arg, struct broker_rpc_job *job)
{
	struct http_exec *e = arg;
	pthread_mutex_lock(&e->mu);
	bool full = e->len == EXEC_QUEUE_MAX || e->stop;
	if (!full) {
		e->q[(e->head + e->len) % EXEC_QUEUE_MAX] = job;
		e->len++;
		pthread_cond_signal(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
	if (full) /* the answer only queues on the cluster thread: no deadlock */
		answer_error(e->ctx, job, 503, "BUSY", "too many cluster API requests waiting");
}

void http_exec_free(struct http_exec *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->mu);
	for (int i = 0; i < e->n_th; i++)
		pthread_join(e->th[i], NULL);
	/* no thread ran (start failed): whatever got queued is answered here */
	while (e->len) {
		answer_error(e->ctx, e->q[e->head], 503, "NOT_RUNNING", "the node is stopping");
		e->head = (e->head + 1) % EXEC_QUEUE_MAX;
		e->len--;
	}
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	hq_free(e);
}
