/*
 * test_accept_guard.c - unit tests of net/accept_guard.c and net/fd_reserve.c
 * at a real descriptor limit: this process lowers its own RLIMIT_NOFILE and
 * fills every slot, then pending loopback connections must be refused.
 *
 * The state the multi-worker broker reached by chance (test_28 with 4
 * workers: a sibling took the slot a worker had freed, and its reserve
 * reopen failed) is built here on purpose: a guard created while no
 * descriptor is free has no reserve of its own. It must still refuse its
 * listener's backlog (with the pool's reserve), regain a reserve on the next
 * tick once a descriptor is free, and refusing must never leave a slot free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/accept_guard.h"
#include "net/fd_reserve.h"

#define LIMIT 128    /* our RLIMIT_NOFILE while a test runs */
#define CLIENTS 3

static struct rlimit saved;
static int lfd = -1;
static int clients[CLIENTS];
static int fill[LIMIT];
static int n_fill;

static int setup(void **state)
{
	(void)state;
	if (getrlimit(RLIMIT_NOFILE, &saved) != 0 || saved.rlim_max < LIMIT)
		return -1;
	struct rlimit rl = { .rlim_cur = LIMIT, .rlim_max = saved.rlim_max };
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -1;
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16) != 0)
		return -1;
	/* the clients' descriptors before the table is full: connecting needs none */
	for (int i = 0; i < CLIENTS; i++)
		if ((clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
			return -1;
	n_fill = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	while (n_fill > 0)
		close(fill[--n_fill]);
	for (int i = 0; i < CLIENTS; i++)
		close(clients[i]);
	close(lfd);
	setrlimit(RLIMIT_NOFILE, &saved);
	return 0;
}

/* Take every free descriptor slot (what the broker's clients do). */
static void fill_table(void)
{
	int fd;
	while (n_fill < LIMIT && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		fill[n_fill++] = fd;
	assert_int_equal(errno, EMFILE);
}

static bool slot_free(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Connect every client; return once they are all in lfd's backlog. */
static void knock(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	for (int i = 0; i < CLIENTS; i++) {
		int r = connect(clients[i], (struct sockaddr *)&a, sizeof(a));
		assert_true(r == 0 || errno == EINPROGRESS);
		struct pollfd p = { .fd = clients[i], .events = POLLOUT };
		assert_int_equal(poll(&p, 1, 5000), 1); /* handshake done (loopback) */
		assert_int_equal(send(clients[i], "C", 1, MSG_NOSIGNAL), 1);
	}
}

/* How many clients learned their fate (EOF or reset) within wait_ms. */
static int answered(int wait_ms)
{
	int n = 0;
	for (int i = 0; i < CLIENTS; i++) {
		struct pollfd p = { .fd = clients[i], .events = POLLIN };
		if (poll(&p, 1, wait_ms) == 1) {
			char c;
			ssize_t r = recv(clients[i], &c, 1, 0);
			if (r == 0 || (r < 0 && errno == ECONNRESET))
				n++;
		}
	}
	return n;
}

static uint64_t refused(const struct accept_guard *g)
{
	struct accept_counts c = { 0 };
	accept_guard_counts_add(g, &c);
	return c.refused;
}

/* A guard with no reserve of its own (made while the table was full) still
 * refuses its backlog: before the pool, each guard could only use its own,
 * and such a guard never refused again (test_28's hung clients). */
static void test_guard_without_own_reserve_refuses(void **state)
{
	(void)state;
	struct accept_guard a, b;
	accept_guard_init(&a, "a"); /* holds the one reserve */
	fill_table();
	accept_guard_init(&b, "b"); /* could not open one */
	knock();
	assert_int_equal(accept_guard_failed(&b, lfd, EMFILE, 1000), ACCEPT_PAUSE);
	assert_int_equal(answered(2000), CLIENTS);
	assert_int_equal(refused(&b), CLIENTS);
	/* and refusing never left a descriptor slot free for someone else */
	assert_false(slot_free());
	accept_guard_free(&b);
	accept_guard_free(&a);
}

/* No reserve at all: the clients wait (nothing else can be done without a
 * descriptor), but the next tick after one is freed regains the reserve,
 * paused or not, and the next attempt refuses them. */
static void test_lost_reserve_regained_on_tick(void **state)
{
	(void)state;
	struct accept_guard g;
	fill_table();
	accept_guard_init(&g, "g");
	knock();
	assert_int_equal(accept_guard_failed(&g, lfd, EMFILE, 1000), ACCEPT_PAUSE);
	assert_int_equal(refused(&g), 0);
	close(fill[--n_fill]); /* say a client left */
	assert_false(accept_guard_tick(&g, 1010)); /* the pause is not over */
	assert_false(slot_free()); /* the tick took the freed slot as the reserve */
	assert_int_equal(accept_guard_failed(&g, lfd, EMFILE, 1300), ACCEPT_PAUSE);
	assert_int_equal(answered(2000), CLIENTS);
	assert_int_equal(refused(&g), CLIENTS);
	accept_guard_free(&g);
}

/* With two reserves, each refused connection's slot becomes a reserve again
 * (dup3), so the pool is whole afterwards and no slot was left free. */
static void test_refusing_keeps_the_pool_whole(void **state)
{
	(void)state;
	struct accept_guard a, b;
	accept_guard_init(&a, "a");
	accept_guard_init(&b, "b");
	assert_int_equal(fd_reserve_held(), 2);
	fill_table();
	knock();
	assert_int_equal(accept_guard_failed(&a, lfd, EMFILE, 1000), ACCEPT_PAUSE);
	assert_int_equal(answered(2000), CLIENTS);
	assert_int_equal(refused(&a), CLIENTS);
	assert_int_equal(fd_reserve_held(), 2);
	assert_false(slot_free());
	accept_guard_free(&b);
	accept_guard_free(&a);
	assert_int_equal(fd_reserve_held(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_guard_without_own_reserve_refuses, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lost_reserve_regained_on_tick, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusing_keeps_the_pool_whole, setup, teardown),
	};
	return cmocka_run_group_tests_name("accept_guard", tests, NULL, NULL);
}
