/*
 * fs.c - file-system helpers (see fs.h).
 */
#include "core/fs.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path)
{
	char tmp[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return HQ_EINVAL;
	}
	memcpy(tmp, path, n + 1);
	/* each parent in turn; one that exists already is fine */
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return HQ_EIO;
		*p = '/';
	}
	if (mkdir(tmp, 0755) == 0 || errno == EEXIST)
		return HQ_OK;
	return HQ_EIO;
}

/* fsync the directory holding path (where a rename is recorded); best
 * effort: a file system that cannot fsync a directory has nothing to flush */
static void fsync_dir_of(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (n >= sizeof(dir))
		return;
	if (slash && n == 0)
		n = 1; /* "/file": the root */
	memcpy(dir, slash ? path : ".", slash ? n : 1);
	dir[slash ? n : 1] = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return HQ_EINVAL;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return HQ_EIO;
	const char *p = data;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	/* fchmod: an old path.tmp left by a crash keeps its mode through O_CREAT */
	if (off < len || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
		int e = off < len && errno == 0 ? EIO : errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return HQ_EIO;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return HQ_EIO;
	}
	fsync_dir_of(path);
	return HQ_OK;
}
