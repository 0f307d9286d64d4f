/*
 * lockfile.h - one node per data directory: an exclusive flock(2) on
 * <dir>/hamqttd.lock, held for the life of the process, with the holder's pid
 * written in the file for the message a second node prints.
 *
 * flock, not "the file exists": the kernel drops the lock when the process
 * dies however it dies (SIGKILL included), so a stale file never blocks a
 * restart.
 */
#ifndef HQ_CORE_LOCKFILE_H
#define HQ_CORE_LOCKFILE_H

#include <stddef.h>

#define LOCKFILE_NAME "hamqttd.lock"

/*
 * Create dir if needed (mkdir -p) and lock <dir>/hamqttd.lock. Returns the
 * descriptor that holds the lock (>= 0; release with lockfile_release; err
 * is empty, or says the pid could not be written), or:
 *   HQ_EEXIST  another process holds it: err names the file and its pid;
 *   HQ_EIO     the directory or file cannot be made or locked (errno set,
 *              err says which).
 */
int lockfile_acquire(const char *dir, char *err, size_t errlen);

/* Unlock and close (fd < 0: nothing). The file stays: the next start reuses it. */
void lockfile_release(int fd);

#endif
