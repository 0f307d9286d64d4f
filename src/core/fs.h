/*
 * fs.h - small file-system helpers shared by the node's on-disk state (the
 * data directory lock, the cluster member list, later the local store).
 */
#ifndef HQ_CORE_FS_H
#define HQ_CORE_FS_H

/*
 * mkdir -p: create path and its missing parents (mode 0755). HQ_OK if it
 * exists afterwards; HQ_EINVAL for an empty or over-long path (errno
 * ENAMETOOLONG); HQ_EIO otherwise (errno from mkdir).
 */
int fs_mkdir_p(const char *path);

/*
 * Replace path with len bytes of data so that a crash leaves the old file or
 * the new one, never half of one: written to "path.tmp" (mode, e.g. 0600),
 * fsync'ed, renamed over path, then the directory fsync'ed so the rename
 * itself survives a power cut. One writer per path at a time (the caller's
 * lock): two writers would share path.tmp. HQ_OK, HQ_EINVAL (path too long)
 * or HQ_EIO with errno set; the temporary file is removed on failure.
 */
#include <stddef.h>
#include <sys/types.h>
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
