/* lockfile.c - one node per data directory (see lockfile.h). */
#include "core/lockfile.h"
#include "core/err.h"
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The pid the holder wrote, or 0 if none yet (it writes right after locking). */
static long holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	long pid = strtol(buf, NULL, 10);
	return pid > 0 ? pid : 0;
}

int lockfile_acquire(const char *dir, char *err, size_t errlen)
{
	char path[4096];
	if (fs_mkdir_p(dir) != HQ_OK) {
		int e = errno;
		snprintf(err, errlen, "node.data_dir: cannot create %s: %s", dir, strerror(e));
		errno = e;
		return HQ_EIO;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, LOCKFILE_NAME) >= sizeof(path)) {
		snprintf(err, errlen, "node.data_dir: path too long: %s", dir);
		errno = ENAMETOOLONG;
		return HQ_EIO;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "node.data_dir: cannot open %s: %s", path, strerror(e));
		errno = e;
		return HQ_EIO;
	}
	int r;
	do
		r = flock(fd, LOCK_EX | LOCK_NB);
	while (r != 0 && errno == EINTR);
	if (r != 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			long pid = holder_pid(fd);
			if (pid)
				snprintf(err, errlen, "node.data_dir: %s is already in use by another "
					 "node (pid %ld holds %s)", dir, pid, path);
			else
				snprintf(err, errlen, "node.data_dir: %s is already in use by another "
					 "node (it holds %s)", dir, path);
			close(fd);
			return HQ_EEXIST;
		}
		snprintf(err, errlen, "node.data_dir: cannot lock %s: %s", path, strerror(e));
		close(fd);
		errno = e;
		return HQ_EIO;
	}
	/* ours now: replace whatever pid a previous holder left. Only for the
	 * message of a second node (which says "it holds" without a pid): the
	 * lock is what keeps it out, so a full disk does not give it up. */
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) == n)
		err[0] = 0;
	else
		snprintf(err, errlen, "node.data_dir: cannot write the pid to %s: %s", path,
			 strerror(errno));
	return fd;
}

void lockfile_release(int fd)
{
	if (fd < 0)
		return;
	flock(fd, LOCK_UN);
	close(fd);
}
