/*
 * test_fs.c - unit tests for src/core/fs.c: mkdir -p and the one atomic file
 * replacement every on-disk table uses (cluster members, management users,
 * replicated tables, ctl.key, hamqtt-passwd).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/fs.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/hq_test_fs.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	static char b[256];
	*n = fread(b, 1, sizeof(b), f);
	fclose(f);
	return b;
}

static void test_write_atomic_replaces(void **state)
{
	(void)state;
	char path[128], tmp[140];
	snprintf(path, sizeof(path), "%s/a/b/table", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/a/b", dir);
	assert_int_equal(fs_mkdir_p(sub), HQ_OK);
	assert_int_equal(fs_mkdir_p(sub), HQ_OK); /* exists: fine */
	assert_int_equal(fs_write_atomic(path, "first\n", 6, 0600), HQ_OK);
	assert_int_equal(fs_write_atomic(path, "second", 6, 0600), HQ_OK);
	size_t n = 0;
	char *got = slurp(path, &n);
	assert_non_null(got);
	assert_int_equal(n, 6);
	assert_memory_equal(got, "second", 6);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(access(tmp, F_OK), -1); /* no temporary left behind */
	/* a stale path.tmp with another mode (a crash) does not leak its mode */
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(tmp, 0666), 0);
	assert_int_equal(fs_write_atomic(path, "", 0, 0600), HQ_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 0);
}

static void test_write_atomic_fails_cleanly(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof(path), "%s/missing/table", dir);
	assert_int_equal(fs_write_atomic(path, "x", 1, 0600), HQ_EIO);
	char longp[5000];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(fs_write_atomic(longp, "x", 1, 0600), HQ_EINVAL);
	assert_int_equal(fs_mkdir_p(""), HQ_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_atomic_replaces),
		cmocka_unit_test(test_write_atomic_fails_cleanly),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
