/*
 * test_repl.c - the replicated tables (src/repl/repl.h): last writer wins by
 * (HLC, node), a delete's tombstone beats an older write in either arrival
 * order, expired entries vanish alike everywhere, local writes order after
 * everything merged, and a table survives a reopen (its file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/mem.h"
#include "repl/repl.h"

#define ME "a@h"
#define PEER "b@h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_repl.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}

static struct repl *open_ok(void)
{
	char err[256];
	struct repl *r = repl_open(dir, ME, err, sizeof(err));
	assert_non_null(r);
	return r;
}

static struct repl_entry ent(const char *key, const char *val, uint64_t wall, const char *origin)
{
	return (struct repl_entry){
		.table = "t", .key = key, .klen = strlen(key), .val = (const uint8_t *)val,
		.vlen = val ? strlen(val) : 0, .ts = { wall, 0 }, .origin = origin,
		.olen = strlen(origin), .del = val == NULL,
	};
}

/* the live value of key, or NULL (caller frees) */
static char *get(struct repl *r, const char *key)
{
	uint8_t *v;
	size_t n;
	if (repl_get(repl_table(r, "t"), key, strlen(key), &v, &n) != HQ_OK)
		return NULL;
	return (char *)v;
}

static void expect(struct repl *r, const char *key, const char *want)
{
	char *v = get(r, key);
	if (!want)
		assert_null(v);
	else
		assert_string_equal(v, want);
	hq_free(v);
}

static void test_lww(void **state)
{
	(void)state;
	struct repl *r = open_ok();
	uint64_t now = (uint64_t)clock_wall_ms();
	struct repl_entry e = ent("k", "one", now - 1000, PEER);
	assert_int_equal(repl_merge(r, &e), 1);
	expect(r, "k", "one");
	/* the same write again, and an older one: ignored */
	assert_int_equal(repl_merge(r, &e), 0);
	e = ent("k", "old", now - 2000, PEER);
	assert_int_equal(repl_merge(r, &e), 0);
	expect(r, "k", "one");
	/* same time: the greater node name wins, whatever the arrival order */
	e = ent("k", "by-z", now - 1000, "z@h");
	assert_int_equal(repl_merge(r, &e), 1);
	e = ent("k", "by-a", now - 1000, "a@h");
	assert_int_equal(repl_merge(r, &e), 0);
	expect(r, "k", "by-z");
	/* a local write orders after everything merged */
	assert_int_equal(repl_put(repl_table(r, "t"), "k", 1, "local", 5, 0), HQ_OK);
	expect(r, "k", "local");
	e = ent("k", "late", now - 500, PEER);
	assert_int_equal(repl_merge(r, &e), 0);
	expect(r, "k", "local");
	/* a weak default: only where nothing is, and losing to any real write */
	assert_int_equal(repl_put_weak(repl_table(r, "t"), "k", 1, "weak", 4), HQ_EEXIST);
	assert_int_equal(repl_put_weak(repl_table(r, "t"), "w", 1, "weak", 4), HQ_OK);
	expect(r, "w", "weak");
	e = ent("w", "real", 2, "a@a");     /* even a very old real write */
	assert_int_equal(repl_merge(r, &e), 1);
	expect(r, "w", "real");
	repl_free(r);
}

static void test_tombstone(void **state)
{
	(void)state;
	struct repl *r = open_ok();
	uint64_t now = (uint64_t)clock_wall_ms();
	/* delete first, older add second: the delete wins */
	struct repl_entry d = ent("x", NULL, now - 100, PEER), a = ent("x", "v", now - 200, PEER);
	assert_int_equal(repl_merge(r, &d), 1);
	assert_int_equal(repl_merge(r, &a), 0);
	expect(r, "x", NULL);
	assert_int_equal(repl_count(repl_table(r, "t")), 0);
	assert_int_equal(repl_count_hint(repl_table(r, "t")), 0); /* a tombstone is not set */
	/* add first, newer delete second: deleted; a newer add brings it back */
	a = ent("y", "v", now - 200, PEER);
	d = ent("y", NULL, now - 100, PEER);
	assert_int_equal(repl_merge(r, &a), 1);
	expect(r, "y", "v");
	assert_int_equal(repl_count_hint(repl_table(r, "t")), 1);
	assert_int_equal(repl_merge(r, &d), 1);
	expect(r, "y", NULL);
	assert_int_equal(repl_count_hint(repl_table(r, "t")), 0);
	a = ent("y", "again", now - 50, PEER);
	assert_int_equal(repl_merge(r, &a), 1);
	expect(r, "y", "again");
	assert_int_equal(repl_count_hint(repl_table(r, "t")), 1);
	/* local delete: ENOTFOUND when nothing is live */
	assert_int_equal(repl_del(repl_table(r, "t"), "y", 1), HQ_OK);
	assert_int_equal(repl_count_hint(repl_table(r, "t")), 0);
	assert_int_equal(repl_del(repl_table(r, "t"), "y", 1), HQ_ENOTFOUND);
	/* tombstones survive a sweep within their TTL, and go after it */
	repl_sweep(r, (uint64_t)clock_wall_ms());
	a = ent("x", "v", now - 150, PEER);
	assert_int_equal(repl_merge(r, &a), 0);
	repl_sweep(r, now + REPL_TOMB_TTL_MS + 1000);
	assert_int_equal(repl_merge(r, &a), 1);
	repl_free(r);
}

static void test_expiry(void **state)
{
	(void)state;
	struct repl *r = open_ok();
	uint64_t now = (uint64_t)clock_wall_ms();
	struct repl_table *t = repl_table(r, "t");
	assert_int_equal(repl_put(t, "gone", 4, "v", 1, now - 1), HQ_OK);
	expect(r, "gone", NULL);
	assert_int_equal(repl_put(t, "stays", 5, "v", 1, now + 60000), HQ_OK);
	expect(r, "stays", "v");
	struct repl_entry e = ent("old", "v", now, PEER);
	e.expires_ms = now - 1;     /* expired on arrival: every node drops it */
	assert_int_equal(repl_merge(r, &e), 0);
	assert_int_equal(repl_count(t), 1);
	/* bad input */
	assert_int_equal(repl_put(t, "", 0, "v", 1, 0), HQ_EINVAL);
	e = ent("k", "v", now, PEER);
	e.table = "Bad";
	assert_int_equal(repl_merge(r, &e), HQ_EINVAL);
	repl_free(r);
}

static int notified;
static void on_notify(void *arg, const char *table, const char *key, size_t klen)
{
	(void)arg;
	assert_string_equal(table, "t");
	assert_int_equal(klen, 1);
	notified++;
}
static int watched;
static void on_watch(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)arg;
	watched++;
}
static int dumped;
static void on_dump(void *arg, const struct repl_entry *e)
{
	(void)arg;
	dumped++;
}

static void test_persist_and_hooks(void **state)
{
	(void)state;
	struct repl *r = open_ok();
	struct repl_table *t = repl_table(r, "t");
	repl_set_notify(r, on_notify, NULL);
	repl_watch(t, on_watch, NULL);
	notified = watched = 0;
	assert_int_equal(repl_put(t, "p", 1, "persisted", 9, 0), HQ_OK);
	assert_int_equal(repl_put(t, "d", 1, "x", 1, 0), HQ_OK);
	assert_int_equal(repl_del(t, "d", 1), HQ_OK);
	assert_int_equal(notified, 3);      /* every local write, none merged */
	uint64_t now = (uint64_t)clock_wall_ms();
	struct repl_entry e = ent("m", "merged", now - 10, PEER);
	assert_int_equal(repl_merge(r, &e), 1);
	assert_int_equal(watched, 1);       /* every merged write, none local */
	assert_int_equal(notified, 3);
	repl_flush(r);
	repl_free(r);

	r = open_ok();
	expect(r, "p", "persisted");
	expect(r, "m", "merged");
	expect(r, "d", NULL);
	/* the tombstone came back too: an older add of d still loses */
	e = ent("d", "older", now - 100000, PEER);
	assert_int_equal(repl_merge(r, &e), 0);
	dumped = 0;
	repl_dump(r, on_dump, NULL);
	assert_int_equal(dumped, 3);        /* p, m and d's tombstone */
	repl_free(r);

	/* a corrupt file fails the open, naming it */
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/repl_t.tbl", dir);
	FILE *f = fopen(path, "ab");
	assert_non_null(f);
	fputs("junk", f);
	fclose(f);
	assert_null(repl_open(dir, ME, err, sizeof(err)));
	assert_non_null(strstr(err, "repl_t.tbl"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lww, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tombstone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persist_and_hooks, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
