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

#endif
