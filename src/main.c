/*
 * main.c - hamqttd: wiring only. Load the configuration (file, HAMQTT_*
 * environment, --set), open the log, build and start the broker, then the
 * management HTTP server, run until SIGINT or SIGTERM, then shut down cleanly
 * (every allocation released, so leak checkers see a clean exit).
 */
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

extern char **environ;

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

	struct broker *b = broker_new(&cfg, err, sizeof(err));
	if (!b) {
		log_error("cannot start: %s", err);
		goto out_log;
	}
	if (http_server_check(&cfg, err, sizeof(err)) != HQ_OK) {
		log_error("cannot start: %s", err);
		broker_free(b);
		goto out_log;
	}
	if (broker_start(b) != HQ_OK) {
		log_error("cannot start worker threads");
		broker_stop(b);
		broker_free(b);
		goto out_log;
	}
	struct http_server *http = http_server_start(&cfg, b, err, sizeof(err));
	if (!http) {
		log_error("cannot start: %s", err);
		broker_stop(b);
		broker_free(b);
		goto out_log;
	}
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			continue; /* reload is not supported yet; keep running */
		log_notice("received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	}
	/* health checks answer 503 while the workers wind down */
	broker_stop(b);
	http_server_stop(http);
	broker_free(b);
	log_notice("stopped");
	rc = 0;
out_log:
	log_close();
out:
	conf_free(&cfg);
	return rc;

config_error:
	fprintf(stderr, "hamqttd: %s\n", err);
	conf_free(&cfg);
	return 1;
}
