/*
 * opts.c - hamqtt-bench's command line: --help text and option parsing into
 * struct opts (no side effects beyond stdout/stderr).
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fputs(
"usage: hamqtt-bench pub|sub|pubsub|conn|hs [options]\n"
"\n"
"MQTT load generator: every client in one process, one thread, one epoll loop.\n"
"  pub     publishers only (-c publishers)\n"
"  sub     subscribers only (-c subscribers); messages from another hamqtt-bench\n"
"          on this host are checked; with --pubs N --count M exact counts too\n"
"  pubsub  both ends in this process: end-to-end latency, lost/dup/reorder\n"
"          (-c pairs, or --pubs N --subs M for fan-in / fan-out shapes)\n"
"  conn    open -c connections, hold them for -d seconds: connect rate, and\n"
"          broker RSS per connection with --broker-pid\n"
"  hs      -c slots, each connecting over and over: connect, TLS handshake\n"
"          (--cafile; always a full one, no session resumption), CONNECT,\n"
"          CONNACK, DISCONNECT, the broker closes; cycles/s over -d seconds\n"
"          (10) or --count cycles in all; latency = connect() to CONNACK\n"
"\n"
"Connection:\n"
"  -h, --host HOST          broker address (127.0.0.1)\n"
"  -p, --port PORT          broker port (1883)\n"
"  -c, --clients N          publishers (pub), subscribers (sub), pairs (pubsub),\n"
"                           connections (conn) (1; conn: 100)\n"
"      --pubs N, --subs N   pubsub: publishers and subscribers (default -c each)\n"
"  -V, --mqtt-version V     3 (3.1), 4 (3.1.1) or 5 (4)\n"
"  -k, --keepalive S        keepalive seconds, PINGREQ after S/2 idle (60; 0 = off)\n"
"      --clean, --no-clean  clean session / clean start (on)\n"
"      --session-expiry S   v5 session expiry interval property\n"
"      --conn-rate N        connections started per second (0 = unlimited)\n"
"      --bind-spread        bind source addresses 127.0.0.1..127.0.0.254 round\n"
"                           robin: beyond 64k connections to one port, and a\n"
"                           faster connect beyond ~10k (kernel port search)\n"
"      --id-prefix P        client ids P<p|s|c><index> (default hqb<pid>...)\n"
"      --id-base N          pub: publisher ids (payload and %i) start at N, so\n"
"                           several pub processes can feed one sub\n"
"      --timeout S          handshake timeout, and give up (exit 3) after S\n"
"                           seconds without progress (10)\n"
"  -u, --username U         CONNECT user name\n"
"  -P, --password P         CONNECT password\n"
"\n"
"TLS (every connection over TLS when --cafile is given):\n"
"      --cafile F           PEM CA file the server certificate is checked against\n"
"                           (and its name: -h as an IP address or host name)\n"
"      --cert F, --key F    client certificate and key (PEM), for mutual TLS\n"
"      --tls-version V      1.2 or 1.3 only (default: either)\n"
"      --ciphers LIST       TLS 1.3 suites (TLS_AES_128_GCM_SHA256:...) or a TLS\n"
"                           1.2 cipher list (default: OpenSSL's)\n"
"\n"
"Messages:\n"
"  -q, --qos Q              publish and subscribe QoS 0, 1 or 2 (0)\n"
"      --sub-qos Q          subscription QoS (default -q)\n"
"  -s, --size B             payload bytes, >= 16: the payload starts with the send\n"
"                           time, publisher id and sequence number (64)\n"
"  -r, --rate R             msg/s per publisher (0 = as fast as the window allows)\n"
"  -w, --window W           max QoS > 0 messages in flight per publisher (64);\n"
"                           pubsub at QoS 0 and max rate: max messages per\n"
"                           publisher sent but not yet received here; pub at\n"
"                           QoS 0 and max rate: as fast as the socket takes\n"
"  -t, --topic PAT          publish topic, %i = publisher index (bench/%i),\n"
"                           %n = sequence number: one topic per message (the\n"
"                           subscriptions here are matched against %n = 0)\n"
"      --retain             publish with the RETAIN flag (e.g. -t ret/%n --count N\n"
"                           -q 1: N retained topics, stored when pub exits)\n"
"  -T, --sub-topic PAT      subscription, %i = subscriber index (bench/%i when\n"
"                           publishers and subscribers are as many, else bench/#)\n"
"      --shared GROUP       subscribe through $share/GROUP/...: each message is\n"
"                           expected once per group (order across members is not\n"
"                           guaranteed, so reorders are expected there)\n"
"\n"
"Run:\n"
"  -d, --duration S         measured seconds (10); conn: seconds to hold\n"
"      --warmup S           seconds of load before measuring (0)\n"
"      --count N            messages per publisher, instead of a duration; the run\n"
"                           ends when all of them arrived (or --drain idle)\n"
"      --drain S            after publishing: wait for missing messages until S\n"
"                           seconds pass without any (1)\n"
"      --expect N           sub: run until N distinct messages arrived (e.g. the\n"
"                           retained ones, in any order: counted exactly), or\n"
"                           --timeout without any (exit 3); the measured period\n"
"                           is from the first SUBSCRIBE to the N-th message\n"
"      --cpu N              pin this process to CPU N\n"
"      --broker-pid PID     report the broker's CPU % and RSS (from /proc)\n"
"      --progress, --no-progress  progress line each second on stderr (default:\n"
"                           on runs longer than 3 s)\n"
"      --help\n"
"\n"
"Output: progress on stderr; a summary, then one line `RESULT key=value ...`\n"
"on stdout. Rates are over the measured period; latency is receive time - send\n"
"time (both CLOCK_MONOTONIC on this host); lost = expected sequence numbers never\n"
"received, dup = received twice by one subscriber, reorder = lower than one\n"
"already received from the same publisher by the same subscriber.\n"
"Exit: 0 ok, 1 usage, 2 connections failed, refused or dropped, 3 stalled.\n",
	      f);
}

/* ---- options ---- */

enum {
	OPT_PUBS = 256, OPT_SUBS, OPT_SUB_QOS, OPT_WARMUP, OPT_DRAIN, OPT_COUNT, OPT_CONN_RATE,
	OPT_CLEAN, OPT_NO_CLEAN, OPT_SESSION_EXPIRY, OPT_CPU, OPT_BIND_SPREAD, OPT_BROKER_PID,
	OPT_SHARED, OPT_ID_PREFIX, OPT_ID_BASE, OPT_TIMEOUT, OPT_PROGRESS, OPT_NO_PROGRESS, OPT_HELP,
	OPT_RETAIN, OPT_EXPECT, OPT_CAFILE, OPT_CERT, OPT_KEY, OPT_TLS_VERSION, OPT_CIPHERS,
};

static const struct option long_opts[] = {
	{ "host", required_argument, NULL, 'h' },
	{ "port", required_argument, NULL, 'p' },
	{ "clients", required_argument, NULL, 'c' },
	{ "pubs", required_argument, NULL, OPT_PUBS },
	{ "subs", required_argument, NULL, OPT_SUBS },
	{ "qos", required_argument, NULL, 'q' },
	{ "sub-qos", required_argument, NULL, OPT_SUB_QOS },
	{ "mqtt-version", required_argument, NULL, 'V' },
	{ "size", required_argument, NULL, 's' },
	{ "rate", required_argument, NULL, 'r' },
	{ "window", required_argument, NULL, 'w' },
	{ "topic", required_argument, NULL, 't' },
	{ "sub-topic", required_argument, NULL, 'T' },
	{ "duration", required_argument, NULL, 'd' },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "drain", required_argument, NULL, OPT_DRAIN },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "conn-rate", required_argument, NULL, OPT_CONN_RATE },
	{ "keepalive", required_argument, NULL, 'k' },
	{ "clean", no_argument, NULL, OPT_CLEAN },
	{ "no-clean", no_argument, NULL, OPT_NO_CLEAN },
	{ "session-expiry", required_argument, NULL, OPT_SESSION_EXPIRY },
	{ "cpu", required_argument, NULL, OPT_CPU },
	{ "bind-spread", no_argument, NULL, OPT_BIND_SPREAD },
	{ "broker-pid", required_argument, NULL, OPT_BROKER_PID },
	{ "shared", required_argument, NULL, OPT_SHARED },
	{ "id-prefix", required_argument, NULL, OPT_ID_PREFIX },
	{ "id-base", required_argument, NULL, OPT_ID_BASE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "retain", no_argument, NULL, OPT_RETAIN },
	{ "expect", required_argument, NULL, OPT_EXPECT },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "tls-version", required_argument, NULL, OPT_TLS_VERSION },
	{ "ciphers", required_argument, NULL, OPT_CIPHERS },
	{ "username", required_argument, NULL, 'u' },
	{ "password", required_argument, NULL, 'P' },
	{ NULL, 0, NULL, 0 },
};

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "hamqtt-bench: invalid %s '%s' (see --help)\n", what, arg);
	return -1;
}

static int num(const char *arg, const char *what, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || v < lo || v > hi)
		return bad(what, arg);
	*out = v;
	return 0;
}

#define NUM(dst, what, lo, hi)                                  \
	do {                                                    \
		double v_;                                      \
		if (num(optarg, what, lo, hi, &v_) < 0)         \
			return -1;                              \
		dst = (__typeof__(dst))v_;                      \
	} while (0)

int bench_parse_opts(struct opts *o, int argc, char **argv)
{
	static const char *modes[] = { "pub", "sub", "pubsub", "conn", "hs" };
	bool clients_set = false;
	int ch;

	*o = (struct opts){
		.host = "127.0.0.1", .port = 1883, .clients = 1, .version = 4, .size = 64,
		.window = 64, .topic = "bench/%i", .duration = 10, .drain = 1, .keepalive = 60,
		.clean = true, .session_expiry = -1, .cpu = -1, .timeout = 10, .progress = -1,
		.sub_qos = -1,
	};
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? -1 : 1;
	}
	o->mode = -1;
	for (int i = 0; i < 5; i++)
		if (!strcmp(argv[1], modes[i]))
			o->mode = i;
	if (o->mode < 0)
		return bad("sub-command", argv[1]);
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "h:p:c:q:V:s:r:w:t:T:d:k:u:P:", long_opts, NULL)) != -1) {
		switch (ch) {
		case 'h': o->host = optarg; break;
		case 'p': NUM(o->port, "port", 1, 65535); break;
		case 'c': NUM(o->clients, "client count", 1, 10000000); clients_set = true; break;
		case OPT_PUBS: NUM(o->pubs, "publisher count", 1, 10000000); break;
		case OPT_SUBS: NUM(o->subs, "subscriber count", 1, 10000000); break;
		case 'q': NUM(o->qos, "QoS", 0, 2); break;
		case OPT_SUB_QOS: NUM(o->sub_qos, "subscription QoS", 0, 2); break;
		case 'V': NUM(o->version, "MQTT version", 3, 5); break;
		case 's': NUM(o->size, "payload size", BENCH_HDR, 256 * 1024 * 1024 - 1024); break;
		case 'r': NUM(o->rate, "rate", 0, 1e9); break;
		case 'w': NUM(o->window, "window", 1, 65535); break;
		case 't': o->topic = optarg; break;
		case 'T': o->sub_topic = optarg; break;
		case 'd': NUM(o->duration, "duration", 0, 1e7); o->duration_set = true; break;
		case OPT_WARMUP: NUM(o->warmup, "warm-up", 0, 1e7); break;
		case OPT_DRAIN: NUM(o->drain, "drain", 0, 1e7); break;
		case OPT_COUNT: NUM(o->count, "count", 1, 4e9); break;
		case OPT_CONN_RATE: NUM(o->conn_rate, "connection rate", 0, 1e9); break;
		case 'k': NUM(o->keepalive, "keepalive", 0, 65535); break;
		case OPT_CLEAN: o->clean = true; break;
		case OPT_NO_CLEAN: o->clean = false; break;
		case OPT_SESSION_EXPIRY: NUM(o->session_expiry, "session expiry", 0, 4294967295.0); break;
		case OPT_CPU: NUM(o->cpu, "cpu", 0, CPU_SETSIZE - 1); break;
		case OPT_BIND_SPREAD: o->bind_spread = true; break;
		case OPT_BROKER_PID: NUM(o->broker_pid, "pid", 1, 1e9); break;
		case OPT_SHARED: o->shared = optarg; break;
		case OPT_ID_PREFIX: o->id_prefix = optarg; break;
		case OPT_ID_BASE: NUM(o->id_base, "id base", 0, 4e9); break;
		case OPT_TIMEOUT: NUM(o->timeout, "timeout", 0.1, 1e6); break;
		case OPT_PROGRESS: o->progress = 1; break;
		case OPT_NO_PROGRESS: o->progress = 0; break;
		case OPT_HELP: usage(stdout); return 1;
		case OPT_RETAIN: o->retain = true; break;
		case OPT_EXPECT: NUM(o->expect, "expected message count", 1, 4e9); break;
		case OPT_CAFILE: o->cafile = optarg; break;
		case OPT_CERT: o->certfile = optarg; break;
		case OPT_KEY: o->keyfile = optarg; break;
		case OPT_TLS_VERSION:
			if (strcmp(optarg, "1.2") && strcmp(optarg, "1.3"))
				return bad("TLS version (1.2 or 1.3)", optarg);
			o->tls_version = optarg;
			break;
		case OPT_CIPHERS: o->ciphers = optarg; break;
		case 'u': o->username = optarg; break;
		case 'P': o->password = optarg; break;
		default: return -1;
		}
	}
	if (optind < argc)
		return bad("argument", argv[optind]);
	if (o->mode == MODE_CONN && !clients_set)
		o->clients = 100;
	if (o->mode == MODE_HS && !clients_set)
		o->clients = 64;
	if (!o->cafile && (o->certfile || o->keyfile || o->tls_version || o->ciphers))
		return bad("TLS option without --cafile", o->certfile ? "--cert" : o->keyfile ?
			   "--key" : o->tls_version ? "--tls-version" : "--ciphers");
	if (!!o->certfile != !!o->keyfile)
		return bad("option: --cert and --key go together", o->certfile ? "--cert" : "--key");
	if ((o->username && strlen(o->username) > 65535) ||
	    (o->password && strlen(o->password) > 65535))
		return bad("user name or password (over 65535 bytes)", "-u/-P");
	if (o->sub_qos < 0)
		o->sub_qos = o->qos;
	if (o->version == 3 && o->id_prefix && strlen(o->id_prefix) > 12)
		fprintf(stderr, "hamqtt-bench: warning: MQTT 3.1 limits client ids to 23 bytes\n");
	if (o->id_base && o->mode != MODE_PUB)
		return bad("option for this sub-command (pub only)", "--id-base");
	if (o->mode == MODE_HS && (o->expect || o->retain || o->shared))
		return bad("option for hs", "--expect/--retain/--shared");
	if ((o->pubs || o->subs) && o->mode != MODE_PUBSUB && o->mode != MODE_SUB)
		return bad("option for this sub-command", "--pubs/--subs");
	if (o->mode == MODE_SUB && o->subs)
		return bad("option for sub (use -c)", "--subs");
	if (o->shared && (o->mode == MODE_PUB || o->mode == MODE_CONN))
		return bad("option for this sub-command", "--shared");
	if (o->expect && o->mode != MODE_SUB)
		return bad("option for this sub-command (sub only)", "--expect");
	if (o->expect && o->shared)
		return bad("option with --shared", "--expect");
	if (o->retain && (o->mode == MODE_SUB || o->mode == MODE_CONN))
		return bad("option for this sub-command", "--retain");
	o->topic_seq = strstr(o->topic, "%n") != NULL;
	if (o->topic_seq && strstr(o->topic, "%%"))
		return bad("topic with both %n and %% (unsupported)", o->topic);
	return 0;
}
