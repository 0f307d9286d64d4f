/*
 * fs.c - file-system helpers (see fs.h).
 */
#include "core/fs.h"
#include "core/err.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

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
