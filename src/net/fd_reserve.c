/* fd_reserve.c - the process's pool of reserve descriptors (see fd_reserve.h). */
#include "net/fd_reserve.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

/* Everything below is guarded by lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int fds[FD_RESERVE_MAX];
static int held;      /* fds[0..held) are open /dev/null descriptors */
static int target;    /* how many the owners want held */

static int devnull(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Locked: open reserves up to the target, as long as descriptors are free. */
static void fill_locked(void)
{
	while (held < target) {
		int fd = devnull();
		if (fd < 0)
			return; /* still out of descriptors: the next refill retries */
		fds[held++] = fd;
	}
}

void fd_reserve_want(int n)
{
	pthread_mutex_lock(&lock);
	target += n;
	if (target > FD_RESERVE_MAX)
		target = FD_RESERVE_MAX;
	fill_locked();
	pthread_mutex_unlock(&lock);
}

void fd_reserve_unwant(int n)
{
	pthread_mutex_lock(&lock);
	target -= n;
	if (target < 0)
		target = 0;
	while (held > target)
		close(fds[--held]);
	pthread_mutex_unlock(&lock);
}

void fd_reserve_refill(void)
{
	if (pthread_mutex_trylock(&lock) != 0)
		return; /* someone is refusing or refilling right now */
	fill_locked();
	pthread_mutex_unlock(&lock);
}

int fd_reserve_held(void)
{
	pthread_mutex_lock(&lock);
	int n = held;
	pthread_mutex_unlock(&lock);
	return n;
}

/* A connection is pending on lfd (no descriptor needed to ask). */
static bool pending(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

enum one { ONE_REFUSED, ONE_RETRY, ONE_FAILED, ONE_LOST };

/*
 * Locked, held >= 1: refuse one connection with the slot of fds[held-1]
 * (*refused counts it).
 * ONE_RETRY: that connection vanished (try the next); ONE_FAILED: accept
 * failed for a reason that will not pass at once (say EMFILE: another thread
 * took the slot, and our reopen still found one free); ONE_LOST: the slot
 * was taken in between and the reserve is gone until a refill.
 */
static enum one refuse_one(int lfd, uint64_t *refused)
{
	int r = fds[--held];
	close(r);
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		/* the slot is (probably) still free: take it back at once */
		if ((r = devnull()) < 0)
			return ONE_LOST;
		fds[held++] = r;
		return err == EINTR || err == ECONNABORTED || err == EAGAIN ? ONE_RETRY
									     : ONE_FAILED;
	}
	(*refused)++;
	/* Closing fd would free the slot again for anyone to take; replacing
	 * it with a copy of another reserve closes the connection (a reset: the
	 * client's CONNECT is unread) and keeps the slot, in one step. */
	if (held > 0 && dup3(fds[0], fd, O_CLOEXEC) == fd) {
		fds[held++] = fd;
		return ONE_REFUSED;
	}
	close(fd);
	if ((r = devnull()) < 0)
		return ONE_LOST; /* refused, but the reserve went with the slot */
	fds[held++] = r;
	return ONE_REFUSED;
}

enum fd_refuse fd_reserve_refuse(int lfd, int max, uint64_t *refused)
{
	if (pthread_mutex_trylock(&lock) != 0)
		return FD_REFUSE_BUSY; /* never wait in an event loop */
	enum fd_refuse res = FD_REFUSE_PARTIAL;
	for (int i = 0; i < max; i++) {
		if (!pending(lfd)) {
			res = FD_REFUSE_DRAINED;
			break;
		}
		if (held == 0) {
			res = FD_REFUSE_NO_RESERVE;
			break;
		}
		enum one o = refuse_one(lfd, refused);
		if (o == ONE_LOST || o == ONE_FAILED)
			break; /* the caller's pause retries */
	}
	pthread_mutex_unlock(&lock);
	return res;
}
