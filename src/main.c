/*
 * main.c - hamqttd: wiring only. Load the configuration (file, HAMQTT_*
 * environment, --set), open the log, then walk the node through its phases,
 * which the health check (GET /api/v5/status, http.h) reports:
 *   starting  the HTTP server first (503 "starting"), then build and start
 *             the broker (loading state may take a while);
 *   running   200 once the broker accepts MQTT; until SIGINT or SIGTERM;
 *   stopping  503 "stopping" first, then the drain (MQTT listeners closed,
 *             connected clients still served, node.shutdown_grace), then the
 *             broker winds down (clients disconnected, sessions ended), and
 *             only then the HTTP server stops.
 * A load balancer thus never sees 200 from a node that is not serving, and
 * sees 503 before the node stops accepting. Every allocation is released at
 * exit, so leak checkers see a clean exit.
 */
#include "archive/archive.h"
#include "bridge/bridge.h"
#include "broker/broker.h"
#include "core/conf.h"
#include "core/err.h"
#include "core/log.h"
#include "http/http.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

/* Test hook: hold the starting phase this long (ms, at most 10 s) after the
 * HTTP server is up, standing in for a slow start (a large session store to
 * load) so the integration tests can observe the 503 "starting". Unset in
 * production: no effect. */
static void test_start_delay(void)
{
	const char *v = getenv("HQ_TEST_START_DELAY_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;
	if (ms <= 0)
		return;
	if (ms > 10000)
		ms = 10000;
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Wait for SIGINT or SIGTERM. SIGHUP opens log.file again (log rotation),
 * reloads the TLS listeners' certificate files and re-reads the password and
 * ACL files (auth.password_file, auth.acl_file); the configuration itself is
 * not read again. */
static int wait_stop_signal(const sigset_t *set, struct broker *b)
{
	for (;;) {
		int sig = 0;
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* first, so the lines below land in the new file after a
			 * logrotate rename */
			if (log_reopen() != HQ_OK)
				log_error("received SIGHUP: cannot open log.file again: %s (still "
					  "writing to the old file)", strerror(errno));
			log_notice("received SIGHUP: reloading TLS certificates");
			broker_reload_tls(b);
			log_notice("received SIGHUP: reloading the password and ACL files");
			broker_reload(b);
			continue;
		}
		return sig;
	}
}

/* The drain: wait node.shutdown_grace seconds, or less if a second SIGINT or
 * SIGTERM comes (an operator who insists). */
static void shutdown_grace(const sigset_t *set, int seconds)
{
	if (seconds <= 0)
		return;
	log_notice("draining for %d s (node.shutdown_grace): no new connections, "
		   "health check 503; a second signal stops at once", seconds);
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += seconds;
	for (;;) {
		struct timespec now, left;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_nsec += 1000000000L;
			left.tv_sec--;
		}
		if (left.tv_sec < 0)
			return;
		int sig = sigtimedwait(set, NULL, &left);
		if (sig == SIGINT || sig == SIGTERM) {
			log_notice("second signal: stopping now");
			return;
		}
		if (sig < 0 && errno == EAGAIN)
			return; /* the grace is over */
		/* EINTR or SIGHUP: wait for the rest */
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: hamqttd [-c FILE] [--set key=value ...]\n"
		"  -c FILE          configuration file (default: built-in defaults)\n"
		"  --set key=value  override one key (after the file and HAMQTT_* variables)\n"
		"  -h, --help       this text\n");
}

int main(int argc, char **argv)
{
	struct hq_config cfg;
	char err[CONF_ERR_MAX];
	const char *path = NULL;
	int rc = 1;

	conf_defaults(&cfg);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
			i++; /* applied after the file and the environment */
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			conf_free(&cfg);
			return 0;
		} else {
			fprintf(stderr, "hamqttd: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			conf_free(&cfg);
			return 2;
		}
	}
	if (path && conf_load_file(&cfg, path, err, sizeof(err)) != HQ_OK)
		goto config_error;
	if (conf_load_env(&cfg, environ, err, sizeof(err)) != HQ_OK)
		goto config_error;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--set") && i + 1 < argc &&
		    conf_set(&cfg, "--set", argv[++i], err, sizeof(err)) != HQ_OK)
			goto config_error;
		else if (!strcmp(argv[i], "-c"))
			i++;
	if (conf_validate(&cfg, err, sizeof(err)) != HQ_OK)
		goto config_error;
	/* issue 12: archive.<name>.* checked with the rest (NULL: none) */
	struct archive_set *arc = NULL;
	if (archive_conf(&cfg, &arc, err, sizeof(err)) != HQ_OK)
		goto config_error;
	{ /* issue 12 bridges: refused here with file:line, started after the broker */
		struct brg_conf *bc;
		int nbc;
		if (bridge_conf_parse(&cfg, &bc, &nbc, err, sizeof(err)) != HQ_OK)
			goto config_error;
		bridge_conf_free(bc, nbc);
	}

	if (log_open(cfg.log_level, cfg.log_format, cfg.log_file) != HQ_OK) {
		fprintf(stderr, "hamqttd: log.file: cannot open '%s': %s\n", cfg.log_file, strerror(errno));
		goto out;
	}
	log_set_node(cfg.node_name);

	/* signals are taken synchronously by this thread; workers never see them */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* starting: the health check answers 503 before anything else runs */
	if (http_server_check(&cfg, err, sizeof(err)) != HQ_OK) {
		log_error("cannot start: %s", err);
		goto out_log;
	}
	struct http_server *http = http_server_start(&cfg, err, sizeof(err));
	if (!http) {
		log_error("cannot start: %s", err);
		goto out_log;
	}
	test_start_delay();
	struct broker *b = broker_new(&cfg, err, sizeof(err));
	if (!b) {
		log_error("cannot start: %s", err);
		http_server_stop(http);
		goto out_log;
	}
	http_server_attach(http, b);
	bool started = true;
	if (arc) {
		broker_set_archive(b, arc);
		if (archive_start(arc, cfg.node_data_dir, broker_archive_ack, b, err, sizeof(err)) != HQ_OK) {
			log_error("cannot start: %s", err);
			started = false;
		}
	}
	if (started && broker_start(b) != HQ_OK) {
		log_error("cannot start worker threads");
		started = false;
	}
	if (!started) {
		http_server_set_stopping(http);
		broker_stop(b);
		broker_shutdown(b);
		archive_stop(arc);
		http_server_stop(http);
		broker_free(b);
		goto out_log;
	}
	struct bridges *bridges = NULL;
	int sig = SIGTERM;
	bool bridges_failed = bridges_start(b, &cfg, &bridges, err, sizeof(err)) != HQ_OK;
	if (bridges_failed) {
		log_error("cannot start: %s", err); /* e.g. a bridge's TLS file */
	} else {
		/* running (200) until a signal */
		sig = wait_stop_signal(&set, b);
		log_notice("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	}
	/* stopping: 503 first, so health checks see it before anything closes */
	http_server_set_stopping(http);
	bridges_stop(bridges); /* their local sides close like any client's */
	broker_drain(b);
	shutdown_grace(&set, cfg.node_shutdown_grace);
	broker_stop(b);
	broker_shutdown(b);
	/* the workers handed over their last copies: the rest goes to the spill */
	archive_stop(arc);
	/* last: the health check answered 503 through the whole wind-down */
	http_server_stop(http);
	broker_free(b);
	log_notice("stopped");
	rc = bridges_failed ? 1 : 0;
out_log:
	log_close();
out:
	archive_free(arc);
	conf_free(&cfg);
	return rc;

config_error:
	fprintf(stderr, "hamqttd: %s\n", err);
	conf_free(&cfg);
	return 1;
}
