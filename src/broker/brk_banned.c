/*
 * brk_banned.c - the node's banned list (client id, user name or address,
 * each with an expiry) checked at CONNECT, and flapping detection, which adds
 * to it: a client id that connects more than flapping_detect.max_count times
 * within flapping_detect.window_time is banned for flapping_detect.ban_time.
 * The REST routes /api/v5/banned (http_banned.c) read and change the list
 * through broker.h.
 *
 * Cluster-wide: the replicated table "banned" (repl/repl.h) is the list's
 * truth, persisted in the data dir and merged across nodes (last writer
 * wins); the hash here is its cache for the CONNECT check (one mutex, no
 * allocation, nothing when empty). Every change, local (REST, a flapping
 * ban) or a peer's (repl_watch, on the cluster thread), first changes the
 * table, then refreshes the cache entry from the table under the mutex, so
 * the cache ends equal to the table whatever the interleaving. A ban's
 * expiry is the entry's expires_ms: every node drops it at the same time.
 * A flapping ban is written (file, fsync) by the worker that detects it,
 * after the mutex is released: rare by construction (one per ban_time).
 *
 * Ownership and threads: struct brk_banned belongs to the broker (made by
 * ovl_new's caller, broker_new; freed by broker_free). One mutex guards the
 * list and the flapping table; workers take it at CONNECT only when the list
 * is not empty (n_bans, an atomic) or flapping detection is on, the HTTP
 * thread for its routes, worker 0's tick once a second to drop what expired.
 */
#include "broker/brk_int.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "repl/repl.h"

#include <stdio.h>
#include <string.h>

#define BAN_WHO_MAX 255
#define FLAP_SWEEP_MS 1000

struct ban {
	UT_hash_handle hh;            /* by key: the as byte, then who */
	struct broker_ban info;
	size_t key_len;
	char key[];
};

struct flap {
	UT_hash_handle hh;            /* by client id */
	int64_t window_start;         /* monotonic ms */
	uint32_t count;
	char id[];
};

struct brk_banned {
	pthread_mutex_t lock;
	struct repl_table *table;     /* "banned": the truth (NULL until attached) */
	struct ban *bans;
	_Atomic uint32_t n_bans;      /* read without the lock: 0 = nothing to check */
	struct flap *flaps;
	int64_t next_sweep;           /* worker 0 only */
};

static const char *const as_names[BRK_BAN_N] = { "clientid", "username", "peerhost" };

int broker_ban_as_parse(const char *s, size_t n)
{
	for (int i = 0; i < BRK_BAN_N; i++)
		if (strlen(as_names[i]) == n && memcmp(as_names[i], s, n) == 0)
			return i;
	return -1;
}

const char *broker_ban_as_name(int as)
{
	return as >= 0 && as < BRK_BAN_N ? as_names[as] : "?";
}

void banned_new(struct broker *b)
{
	struct brk_banned *t = hq_calloc(1, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	b->banned = t;
}

static void ban_del(struct brk_banned *t, struct ban *e)
{
	HASH_DEL(t->bans, e);
	hq_free(e);
	atomic_fetch_sub(&t->n_bans, 1);
}

void banned_free(struct broker *b)
{
	struct brk_banned *t = b->banned;
	if (!t)
		return;
	struct ban *e, *etmp;
	HASH_ITER(hh, t->bans, e, etmp)
		ban_del(t, e);
	struct flap *f, *ftmp;
	HASH_ITER(hh, t->flaps, f, ftmp) {
		HASH_DEL(t->flaps, f);
		hq_free(f);
	}
	pthread_mutex_destroy(&t->lock);
	HQ_FREE(b->banned);
}

/* key = as byte + who; into buf (>= BAN_WHO_MAX + 2); its length */
static size_t ban_key(char *buf, int as, const char *who, size_t n)
{
	buf[0] = (char)('0' + as);
	memcpy(buf + 1, who, n);
	return n + 1;
}

/* Under the lock: the live entry for (as, who), dropping it if expired. */
static struct ban *find_live(struct brk_banned *t, int as, const char *who, size_t n, int64_t wall)
{
	if (n > BAN_WHO_MAX)
		return NULL;
	char key[BAN_WHO_MAX + 2];
	size_t kl = ban_key(key, as, who, n);
	struct ban *e;
	HASH_FIND(hh, t->bans, key, kl, e);
	if (e && e->info.until_s && e->info.until_s * 1000 <= wall) {
		ban_del(t, e);
		e = NULL;
	}
	return e;
}

static void add_locked(struct brk_banned *t, const struct broker_ban *ban, int as)
{
	size_t n = strlen(ban->who);
	struct ban *old = find_live(t, as, ban->who, n, clock_wall_ms());
	if (old)
		ban_del(t, old);
	struct ban *e = hq_calloc(1, sizeof(*e) + n + 2);
	e->info = *ban;
	e->key_len = ban_key(e->key, as, ban->who, n);
	HASH_ADD(hh, t->bans, key[0], e->key_len, e);
	atomic_fetch_add(&t->n_bans, 1);
}

/* ---- the replicated table: value "at_s until_s\nby\nreason" ---- */

static size_t ban_encode(const struct broker_ban *ban, char *out, size_t n)
{
	int k = snprintf(out, n, "%lld %lld\n%s\n%s", (long long)ban->at_s,
			 (long long)ban->until_s, ban->by, ban->reason);
	return k < 0 ? 0 : (size_t)k < n ? (size_t)k : n - 1;
}

static bool ban_decode(const char *key, size_t klen, const char *v, struct broker_ban *ban)
{
	memset(ban, 0, sizeof(*ban));
	int as = klen >= 2 ? key[0] - '0' : -1;
	long long at, until;
	int used = 0;
	if (as < 0 || as >= BRK_BAN_N || klen - 1 > BAN_WHO_MAX ||
	    sscanf(v, "%lld %lld\n%n", &at, &until, &used) != 2 || !used)
		return false;
	snprintf(ban->as, sizeof(ban->as), "%s", as_names[as]);
	snprintf(ban->who, sizeof(ban->who), "%.*s", (int)(klen - 1), key + 1);
	const char *by = v + used, *nl = strchr(by, '\n');
	snprintf(ban->by, sizeof(ban->by), "%.*s", (int)(nl ? nl - by : (long)strlen(by)), by);
	snprintf(ban->reason, sizeof(ban->reason), "%s", nl ? nl + 1 : "");
	ban->at_s = at;
	ban->until_s = until;
	return true;
}

/* Under the lock: make the cache entry for key what the table holds. */
static void refresh_locked(struct brk_banned *t, const char *key, size_t klen)
{
	if (klen < 2 || klen - 1 > BAN_WHO_MAX)
		return;
	struct ban *old;
	HASH_FIND(hh, t->bans, key, klen, old);
	if (old)
		ban_del(t, old);
	uint8_t *v;
	size_t vlen;
	if (!t->table || repl_get(t->table, key, klen, &v, &vlen) != HQ_OK)
		return;
	struct broker_ban ban;
	if (ban_decode(key, klen, (const char *)v, &ban))
		add_locked(t, &ban, key[0] - '0');
	hq_free(v);
}

static void on_remote(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct brk_banned *t = arg;
	(void)val;
	(void)vlen;
	pthread_mutex_lock(&t->lock);
	refresh_locked(t, key, klen);
	pthread_mutex_unlock(&t->lock);
}

static bool load_one(void *arg, const char *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct broker_ban ban;
	(void)vlen;
	/* broker_new, before any other thread: the repl lock is held, not ours */
	if (ban_decode(key, klen, (const char *)val, &ban))
		add_locked(arg, &ban, key[0] - '0');
	return true;
}

int banned_repl_attach(struct broker *b)
{
	struct brk_banned *t = b->banned;
	t->table = repl_table(b->repl, "banned");
	if (!t->table)
		return HQ_EINVAL;
	repl_each(t->table, load_one, t);
	repl_watch(t->table, on_remote, t);
	return HQ_OK;
}

/* A ban made here: into the table (persisted, replicated), then the cache. */
static int ban_store(struct brk_banned *t, const struct broker_ban *ban, int as)
{
	char key[BAN_WHO_MAX + 2], val[700];
	size_t kl = ban_key(key, as, ban->who, strlen(ban->who));
	int rc = HQ_OK;
	if (t->table) {
		rc = repl_put(t->table, key, kl, val, ban_encode(ban, val, sizeof(val)),
			      ban->until_s > 0 ? (uint64_t)ban->until_s * 1000 : 0);
		if (rc == HQ_EIO)
			rc = HQ_OK;      /* held in memory and replicated; logged */
	}
	pthread_mutex_lock(&t->lock);
	if (t->table)
		refresh_locked(t, key, kl);
	else
		add_locked(t, ban, as);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int broker_ban_add(struct broker *b, const struct broker_ban *ban)
{
	int as = broker_ban_as_parse(ban->as, strlen(ban->as));
	size_t n = strnlen(ban->who, sizeof(ban->who));
	if (as < 0 || n == 0 || n > BAN_WHO_MAX)
		return HQ_EINVAL;
	struct brk_banned *t = b->banned;
	int rc = ban_store(t, ban, as);
	if (rc != HQ_OK)
		return rc;
	log_notice("banned %s=%s until %lld (by %s: %s)", ban->as, ban->who,
		   (long long)ban->until_s, ban->by, ban->reason);
	return HQ_OK;
}

int broker_ban_del(struct broker *b, const char *as_name, const char *who)
{
	int as = broker_ban_as_parse(as_name, strlen(as_name));
	if (as < 0)
		return HQ_EINVAL;
	struct brk_banned *t = b->banned;
	size_t n = strlen(who);
	if (n == 0 || n > BAN_WHO_MAX)
		return HQ_ENOTFOUND;
	char key[BAN_WHO_MAX + 2];
	size_t kl = ban_key(key, as, who, n);
	int rc = t->table ? repl_del(t->table, key, kl) : HQ_ENOTFOUND;
	pthread_mutex_lock(&t->lock);
	struct ban *e = find_live(t, as, who, n, clock_wall_ms());
	if (t->table)
		refresh_locked(t, key, kl);
	else if (e)
		ban_del(t, e);
	pthread_mutex_unlock(&t->lock);
	if (!t->table)
		rc = e ? HQ_OK : HQ_ENOTFOUND;
	if (rc == HQ_EIO)
		rc = HQ_OK;          /* lifted in memory and across the cluster; logged */
	if (rc != HQ_OK)
		return rc;
	log_notice("ban lifted %s=%s", as_name, who);
	return HQ_OK;
}

int broker_ban_list(struct broker *b, struct broker_ban **out, size_t *n)
{
	struct brk_banned *t = b->banned;
	int64_t wall = clock_wall_ms();
	pthread_mutex_lock(&t->lock);
	size_t cap = HASH_COUNT(t->bans), k = 0;
	struct broker_ban *v = hq_calloc(cap ? cap : 1, sizeof(*v));
	struct ban *e, *tmp;
	HASH_ITER(hh, t->bans, e, tmp) {
		if (e->info.until_s && e->info.until_s * 1000 <= wall)
			ban_del(t, e);
		else
			v[k++] = e->info;
	}
	pthread_mutex_unlock(&t->lock);
	*out = v;
	*n = k;
	return HQ_OK;
}

/* Under the lock: a CONNECT of id; true when it makes the id a flapper. */
static bool flap_count(struct brk_banned *t, const struct hq_config *cfg, const char *id,
		       int64_t now)
{
	size_t n = strlen(id);
	struct flap *f;
	HASH_FIND(hh, t->flaps, id, n, f);
	if (!f) {
		f = hq_calloc(1, sizeof(*f) + n + 1);
		memcpy(f->id, id, n);
		HASH_ADD(hh, t->flaps, id[0], n, f);
	}
	if (!f->count || now - f->window_start >= (int64_t)cfg->flap_window_time * 1000) {
		f->window_start = now;
		f->count = 0;
	}
	if (++f->count <= cfg->flap_max_count)
		return false;
	HASH_DEL(t->flaps, f);
	hq_free(f);
	return true;
}

int banned_connect(struct conn *c, const char *user, size_t user_len)
{
	struct broker *b = c->w->b;
	const struct hq_config *cfg = b->cfg;
	struct brk_banned *t = b->banned;
	bool flapping = cfg->flap_enable && c->client_id && *c->client_id;
	if (!flapping && !atomic_load_explicit(&t->n_bans, memory_order_relaxed))
		return BAN_OK;
	int64_t wall = clock_wall_ms();
	int rc = BAN_OK;
	struct broker_ban flap = { 0 };
	pthread_mutex_lock(&t->lock);
	if (atomic_load_explicit(&t->n_bans, memory_order_relaxed)) {
		const char *id = c->client_id ? c->client_id : "";
		if (find_live(t, BRK_BAN_CLIENTID, id, strlen(id), wall) ||
		    (user && find_live(t, BRK_BAN_USERNAME, user, user_len, wall)))
			rc = BAN_BANNED;
		size_t il = strrchr(c->addr, ':') ? (size_t)(strrchr(c->addr, ':') - c->addr)
						   : strlen(c->addr);
		/* "[::1]" is kept as "::1" in the list, as EMQX writes it */
		const char *ip = c->addr;
		if (il >= 2 && ip[0] == '[') {
			ip++;
			il -= 2;
		}
		if (!rc && find_live(t, BRK_BAN_PEERHOST, ip, il, wall))
			rc = BAN_BANNED;
	}
	if (!rc && flapping && flap_count(t, cfg, c->client_id, ev_now_ms(c->w->loop))) {
		struct broker_ban ban = { .at_s = wall / 1000,
					  .until_s = wall / 1000 + cfg->flap_ban_time };
		snprintf(ban.as, sizeof(ban.as), "clientid");
		snprintf(ban.who, sizeof(ban.who), "%s", c->client_id);
		snprintf(ban.by, sizeof(ban.by), "flapping detector");
		snprintf(ban.reason, sizeof(ban.reason), "more than %u connects in %u s",
			 cfg->flap_max_count, cfg->flap_window_time);
		if (strlen(c->client_id) <= BAN_WHO_MAX) {
			add_locked(t, &ban, BRK_BAN_CLIENTID);
			flap = ban;
		}
		rc = BAN_FLAPPING;
	}
	pthread_mutex_unlock(&t->lock);
	/* cluster-wide and persisted, outside the lock (file write) */
	if (flap.who[0])
		ban_store(t, &flap, BRK_BAN_CLIENTID);
	return rc;
}

/* Worker 0's tick: forget flapping windows that ended (bounds the table). */
void banned_tick(struct broker *b, int64_t now)
{
	struct brk_banned *t = b->banned;
	const struct hq_config *cfg = b->cfg;
	if (!cfg->flap_enable || now < t->next_sweep)
		return;
	t->next_sweep = now + FLAP_SWEEP_MS;
	pthread_mutex_lock(&t->lock);
	struct flap *f, *tmp;
	HASH_ITER(hh, t->flaps, f, tmp) {
		if (now - f->window_start >= (int64_t)cfg->flap_window_time * 1000) {
			HASH_DEL(t->flaps, f);
			hq_free(f);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

bool banned_username(struct broker *b, const char *user)
{
	struct brk_banned *t = b->banned;
	if (!atomic_load_explicit(&t->n_bans, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&t->lock);
	bool hit = find_live(t, BRK_BAN_USERNAME, user, strlen(user), clock_wall_ms()) != NULL;
	pthread_mutex_unlock(&t->lock);
	return hit;
}
