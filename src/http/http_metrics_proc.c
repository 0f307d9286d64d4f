/*
 * http_metrics_proc.c - the process_* families every Prometheus client
 * library exports, under their standard names, so dashboards and alerts
 * written for any exporter work: CPU seconds, resident and virtual memory,
 * open and maximum file descriptors, start time. Read from /proc and
 * getrusage/getrlimit on the HTTP thread: process-wide, owned by no thread.
 * A figure that cannot be read is left out (no made-up zero).
 */
#include "http/http_metrics.h"
#include "core/buf.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	http_metrics_put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Open descriptors: the entries of /proc/self/fd, less the one reading it. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0;
}

/* Field 22 of /proc/self/stat (clock ticks after boot) + btime of /proc/stat. */
static double start_time(void)
{
	char line[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	if (!f)
		return -1;
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = 0;
	const char *p = strrchr(line, ')'); /* the command may hold spaces */
	if (!p)
		return -1;
	unsigned long long ticks = 0;
	/* after ")": state (field 3) ... starttime (field 22) */
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			  "%*d %*d %llu", &ticks) != 1)
		return -1;
	f = fopen("/proc/stat", "r");
	if (!f)
		return -1;
	unsigned long long btime = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	long hz = sysconf(_SC_CLK_TCK);
	if (!btime || hz <= 0)
		return -1;
	return (double)btime + (double)ticks / (double)hz;
}

void http_metrics_process(struct buf *b, const char *node)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0) {
		double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
			     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
		family(b, "process_cpu_seconds_total", "counter",
		       "Total user and system CPU time spent in seconds.");
		http_metrics_put(b, "process_cpu_seconds_total{node=\"%s\"} %.6f\n", node, cpu);
	}
	unsigned long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		int k = fscanf(f, "%llu %llu", &size, &resident);
		fclose(f);
		long page = sysconf(_SC_PAGESIZE);
		if (k == 2 && page > 0) {
			family(b, "process_resident_memory_bytes", "gauge",
			       "Resident memory size in bytes.");
			http_metrics_put(b, "process_resident_memory_bytes{node=\"%s\"} %llu\n", node,
					 resident * (unsigned long long)page);
			family(b, "process_virtual_memory_bytes", "gauge",
			       "Virtual memory size in bytes.");
			http_metrics_put(b, "process_virtual_memory_bytes{node=\"%s\"} %llu\n", node,
					 size * (unsigned long long)page);
		}
	}
	int fds = open_fds();
	if (fds >= 0) {
		family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
		http_metrics_put(b, "process_open_fds{node=\"%s\"} %d\n", node, fds);
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		http_metrics_put(b, "process_max_fds{node=\"%s\"} %llu\n", node,
				 (unsigned long long)rl.rlim_cur);
	}
	double st = start_time();
	if (st > 0) {
		family(b, "process_start_time_seconds", "gauge",
		       "Start time of the process since unix epoch in seconds.");
		http_metrics_put(b, "process_start_time_seconds{node=\"%s\"} %.2f\n", node, st);
	}
}
