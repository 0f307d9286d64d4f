/*
 * test_lockfile.c - unit tests of core/lockfile.c (one node per data
 * directory) and core/rand.c (kernel random bytes): a second lock on a held
 * directory is refused naming the holder's pid, a released lock is taken
 * again, a nested directory is created; random draws differ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/lockfile.h"
#include "core/rand.h"

static char dir[64];

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_lockfile_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_second_lock_refused(void **state)
{
	char err[512], want[64];
	/* a nested path that does not exist yet is created */
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	int fd = lockfile_acquire(sub, err, sizeof(err));
	assert_true(fd >= 0);
	assert_string_equal(err, "");
	/* flock locks belong to the open file: a second open in this very
	 * process conflicts as another process's would */
	assert_int_equal(lockfile_acquire(sub, err, sizeof(err)), HQ_EEXIST);
	snprintf(want, sizeof(want), "(pid %ld holds ", (long)getpid());
	assert_non_null(strstr(err, want));
	assert_non_null(strstr(err, "is already in use by another node"));
	lockfile_release(fd);
	/* released: the file stays and is taken again */
	fd = lockfile_acquire(sub, err, sizeof(err));
	assert_true(fd >= 0);
	lockfile_release(fd);
}

static void test_unusable_dir(void **state)
{
	char err[512], file[128];
	snprintf(file, sizeof(file), "%s/plainfile", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	/* a file where the directory should be: an error, not "in use" */
	assert_int_equal(lockfile_acquire(file, err, sizeof(err)), HQ_EIO);
	assert_non_null(strstr(err, "node.data_dir"));
}

static void test_rand_bytes_differ(void **state)
{
	uint8_t a[16], b[16], zero[16] = { 0 };
	assert_int_equal(rand_bytes(a, sizeof(a)), HQ_OK);
	assert_int_equal(rand_bytes(b, sizeof(b)), HQ_OK);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, zero, sizeof(a));
	/* longer than one getrandom guarantee (256 bytes): looped */
	uint8_t big[4096];
	memset(big, 0, sizeof(big));
	assert_int_equal(rand_bytes(big, sizeof(big)), HQ_OK);
	assert_memory_not_equal(big + 4096 - 16, zero, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_second_lock_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_dir, setup, teardown),
		cmocka_unit_test(test_rand_bytes_differ),
	};
	return cmocka_run_group_tests_name("lockfile", tests, NULL, NULL);
}
