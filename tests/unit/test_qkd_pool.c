/*
 * Unit tests of qkdd's key pool: the counts of unreserved keys it keeps in
 * memory equal a count(*) of the store after inserts (committed, rolled
 * back, failing half-way), reservations (granted and refused) and
 * deliveries, after the store is reopened and after the process holding
 * it is killed; a key is reserved once and delivered once; and the group
 * commit of several requests' reservations and deliveries.
 */
#include <sys/wait.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "rand.h"

#include "../../qkdd/pool.h"

#include "testutil.h"

#define KEYLEN	32
#define NPAIRS	3
#define MAXHELD	512	/* reserved keys a test remembers */

/* The pairs the tests use, in store order (a < b). */
static const char *const pairs[NPAIRS][2] = {
	{ "sched", "tsp-a" },
	{ "sched", "tsp-b" },
	{ "tsp-a", "tsp-b" },
};

static char	tmpdir[64];
static char	dbpath[192];
static int	dbseq;

static int
setup(void **state)
{
	(void)state;
	return tu_tmpdir_new(tmpdir, sizeof(tmpdir), "test_qkd_pool");
}

static int
teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(tmpdir);
}

/* A fresh store path for each test. */
static int
fresh_store(void **state)
{
	(void)state;
	snprintf(dbpath, sizeof(dbpath), "%s/pool%d.db", tmpdir, ++dbseq);
	return 0;
}

/* count(*) of a pair's unreserved keys, from a connection of its own. */
static size_t
store_count(const char *a, const char *b)
{
	sqlite3	*db;
	char	 sql[256];
	int64_t	 n;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM keys WHERE "
	    "sae_a = '%s' AND sae_b = '%s' AND master_done = 0", a, b);
	n = tu_query_int(db, sql);
	sqlite3_close(db);
	return (size_t)n;
}

/* Every pair's count in memory is the store's; a pair never seen has 0. */
static void
check_counts(struct qkd_pool *p)
{
	size_t	i;

	for (i = 0; i < NPAIRS; i++)
		assert_int_equal(qkd_pool_available(p, pairs[i][0],
		    pairs[i][1]), store_count(pairs[i][0], pairs[i][1]));
	assert_int_equal(qkd_pool_available(p, "nobody", "tsp-z"), 0);
}

/* n keys of len bytes for a pair, each byte the key's number plus seed. */
static void
make_keys(uint8_t *buf, size_t n, size_t len, unsigned seed)
{
	size_t	i;

	for (i = 0; i < n; i++)
		memset(buf + i * len, (int)((seed + i) & 0xff), len);
}

/* Add n keys to a pair and commit. */
static void
add_keys(struct qkd_pool *p, const char *a, const char *b, size_t n,
    size_t len)
{
	uint8_t	buf[64 * KEYLEN];

	assert_true(n * len <= sizeof(buf));
	make_keys(buf, n, len, (unsigned)n);
	assert_int_equal(qkd_pool_begin(p), 0);
	assert_int_equal(qkd_pool_add(p, a, b, buf, n, len), 0);
	assert_int_equal(qkd_pool_commit(p), 0);
}

static struct qkd_pool *
open_pool(void)
{
	struct qkd_pool	*p = qkd_pool_open(dbpath, NULL, NULL, NULL);

	assert_non_null(p);
	return p;
}

/* The fixed walk through every kind of change, checked after each. */
static void
test_counts_follow_changes(void **state)
{
	struct qkd_pool	*p;
	struct qkd_key	 got[8], back[8];
	uint8_t		 buf[8 * KEYLEN];
	const char	*ids[8];
	size_t		 bad, i, before[NPAIRS];

	(void)state;
	p = open_pool();
	check_counts(p);

	/* Inserts count once committed; a transaction sees its own. */
	make_keys(buf, 8, KEYLEN, 1);
	assert_int_equal(qkd_pool_begin(p), 0);
	assert_int_equal(qkd_pool_add(p, "sched", "tsp-a", buf, 8, KEYLEN), 0);
	assert_int_equal(qkd_pool_add(p, "sched", "tsp-a", buf, 2, KEYLEN), 0);
	assert_int_equal(qkd_pool_add(p, "sched", "tsp-b", buf, 5, KEYLEN), 0);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 10);
	assert_int_equal(store_count("sched", "tsp-a"), 0);
	assert_int_equal(qkd_pool_commit(p), 0);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 10);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-b"), 5);

	/* A rolled back insert leaves the counts as they were. */
	assert_int_equal(qkd_pool_begin(p), 0);
	assert_int_equal(qkd_pool_add(p, "sched", "tsp-a", buf, 7, KEYLEN), 0);
	assert_int_equal(qkd_pool_add(p, "tsp-a", "tsp-b", buf, 3, KEYLEN), 0);
	qkd_pool_rollback(p);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "tsp-a", "tsp-b"), 0);

	/* Reservations in either direction of the pair take from its count. */
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 3, KEYLEN, got),
	    0);
	check_counts(p);
	assert_int_equal(qkd_pool_reserve(p, "tsp-a", "sched", 2, 16, back), 0);
	assert_int_equal(back[0].qk_len, 16);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 5);

	/* More than stored, or no such pair: refused, nothing taken. */
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 6, KEYLEN,
	    got + 3), 1);
	assert_int_equal(qkd_pool_reserve(p, "sched", "nobody", 1, KEYLEN,
	    got + 3), 1);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 5);

	/* Keys shorter than asked do not qualify, whatever the count says. */
	add_keys(p, "tsp-a", "tsp-b", 4, 16);
	assert_int_equal(qkd_pool_reserve(p, "tsp-a", "tsp-b", 1, KEYLEN,
	    got + 3), 1);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "tsp-a", "tsp-b"), 4);
	assert_int_equal(qkd_pool_reserve(p, "tsp-b", "tsp-a", 4, 8, got + 3),
	    0);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "tsp-a", "tsp-b"), 0);

	/* Deliveries delete reserved keys only: the counts stay. */
	for (i = 0; i < 3; i++)
		ids[i] = got[i].qk_id;
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 3, got + 3,
	    &bad), QKD_TAKE_OK);
	assert_memory_equal(got[3].qk_key, got[0].qk_key, KEYLEN);
	check_counts(p);
	/* Delivered once: never again, not even beside a good key. */
	ids[0] = back[0].qk_id;
	ids[1] = got[1].qk_id;
	assert_int_equal(qkd_pool_take(p, "tsp-a", "sched", ids, 2, got + 3,
	    &bad), QKD_TAKE_NOTFOUND);
	assert_int_equal(bad, 1);
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 1, got + 3,
	    &bad), QKD_TAKE_DENIED);
	assert_int_equal(qkd_pool_take(p, "tsp-a", "sched", ids, 1, got + 3,
	    &bad), QKD_TAKE_OK);
	assert_memory_equal(got[3].qk_key, back[0].qk_key, 16);
	check_counts(p);

	/* Reopened, the store is counted again to the same numbers. */
	for (i = 0; i < NPAIRS; i++)
		before[i] = qkd_pool_available(p, pairs[i][0], pairs[i][1]);
	qkd_pool_close(p);
	p = open_pool();
	check_counts(p);
	for (i = 0; i < NPAIRS; i++)
		assert_int_equal(qkd_pool_available(p, pairs[i][0],
		    pairs[i][1]), before[i]);
	/* The other reserved key survived and is still delivered once. */
	ids[0] = back[1].qk_id;
	assert_int_equal(qkd_pool_take(p, "tsp-a", "sched", ids, 1, got + 3,
	    &bad), QKD_TAKE_OK);
	assert_int_equal(qkd_pool_take(p, "tsp-a", "sched", ids, 1, got + 3,
	    &bad), QKD_TAKE_NOTFOUND);
	check_counts(p);
	qkd_pool_close(p);
}

/* Rows of the delivered table, from a connection of its own. */
static int64_t
store_delivered(void)
{
	sqlite3	*db;
	int64_t	 n;

	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	n = tu_query_int(db, "SELECT count(*) FROM delivered");
	sqlite3_close(db);
	return n;
}

/*
 * A group: reservations and deliveries of several requests in one
 * transaction, invisible to other readers until it ends; a refused
 * delivery (an ID twice, an unknown one) undoes only itself; a link tick
 * in the middle joins the transaction and its commit stores the group's
 * changes so far; the group then ends with one more commit.  A group
 * whose transaction a tick rolled back reports the loss, and its changes
 * are gone; one of refusals only commits nothing.
 */
static void
test_group_commit(void **state)
{
	struct qkd_pool	*p;
	struct qkd_key	 r1[3], r2[2], r3[1], out[3];
	uint8_t		 buf[4 * KEYLEN];
	const char	*ids[3];
	uint64_t	 commits;
	size_t		 bad, i;

	(void)state;
	p = open_pool();
	add_keys(p, "sched", "tsp-a", 10, KEYLEN);
	commits = qkd_pool_commits(p);
	assert_false(qkd_pool_group_open(p));
	qkd_pool_group_begin(p);
	assert_true(qkd_pool_group_open(p));
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 3, KEYLEN, r1),
	    0);
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 2, KEYLEN, r2),
	    0);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 5);
	assert_int_equal(store_count("sched", "tsp-a"), 10);
	for (i = 0; i < 3; i++)
		ids[i] = r1[i].qk_id;
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 3, out, &bad),
	    QKD_TAKE_OK);
	assert_memory_equal(out[2].qk_key, r1[2].qk_key, KEYLEN);
	ids[0] = r2[0].qk_id;
	ids[1] = r2[0].qk_id;
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 2, out, &bad),
	    QKD_TAKE_NOTFOUND);
	assert_int_equal(bad, 1);
	ids[1] = "00000000-0000-4000-8000-000000000000";
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 2, out, &bad),
	    QKD_TAKE_NOTFOUND);
	assert_int_equal(qkd_pool_commits(p), commits);
	assert_int_equal(store_delivered(), 0);
	/* A tick joins and commits what the group did so far. */
	make_keys(buf, 4, KEYLEN, 77);
	assert_int_equal(qkd_pool_begin(p), 0);
	assert_int_equal(qkd_pool_add(p, "sched", "tsp-a", buf, 4, KEYLEN), 0);
	assert_int_equal(qkd_pool_commit(p), 0);
	assert_int_equal(qkd_pool_commits(p), commits + 1);
	assert_int_equal(store_count("sched", "tsp-a"), 9);
	assert_int_equal(store_delivered(), 3);
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 1, KEYLEN, r3),
	    0);
	assert_int_equal(store_count("sched", "tsp-a"), 9);
	assert_int_equal(qkd_pool_group_end(p), 0);
	assert_false(qkd_pool_group_open(p));
	assert_int_equal(qkd_pool_commits(p), commits + 2);
	check_counts(p);
	assert_int_equal(store_count("sched", "tsp-a"), 8);
	/* The key named twice is still there, delivered once now. */
	ids[0] = r2[0].qk_id;
	ids[1] = r2[1].qk_id;
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 2, out, &bad),
	    QKD_TAKE_OK);
	assert_int_equal(store_delivered(), 5);

	/* A tick rolls the group's transaction back: the group is lost. */
	commits = qkd_pool_commits(p);
	qkd_pool_group_begin(p);
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 2, KEYLEN, r2),
	    0);
	ids[0] = r3[0].qk_id;
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 1, out, &bad),
	    QKD_TAKE_OK);
	assert_int_equal(qkd_pool_begin(p), 0);
	qkd_pool_rollback(p);
	/* A failed group takes no more work. */
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 1, KEYLEN, out),
	    -1);
	assert_int_equal(qkd_pool_group_end(p), -1);
	assert_int_equal(qkd_pool_commits(p), commits);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 8);
	ids[0] = r2[0].qk_id;
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 1, out, &bad),
	    QKD_TAKE_NOTFOUND);
	ids[0] = r3[0].qk_id;
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 1, out, &bad),
	    QKD_TAKE_OK);

	/* Refusals only: nothing to commit. */
	commits = qkd_pool_commits(p);
	qkd_pool_group_begin(p);
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 9, KEYLEN, out),
	    1);
	assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 1, out, &bad),
	    QKD_TAKE_NOTFOUND);
	assert_int_equal(qkd_pool_group_end(p), 0);
	assert_int_equal(qkd_pool_commits(p), commits);
	check_counts(p);
	qkd_pool_close(p);
}

/* A random source that hands out the same bytes every time. */
static int
stuck_source(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	memset(buf, 0x5a, len);
	return 0;
}

/*
 * An insert failing half-way (a key ID drawn twice) counts the keys that
 * went in: none once rolled back, those inserted if the caller commits.
 */
static void
test_failed_insert(void **state)
{
	struct qkd_pool	*p;
	uint8_t		 buf[4 * KEYLEN];

	(void)state;
	p = open_pool();
	make_keys(buf, 4, KEYLEN, 9);
	qrand_set_source(stuck_source, NULL);
	tu_capture_begin();
	assert_int_equal(qkd_pool_begin(p), 0);
	assert_int_equal(qkd_pool_add(p, "sched", "tsp-a", buf, 4, KEYLEN), -1);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 1);
	qkd_pool_rollback(p);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 0);
	assert_int_equal(qkd_pool_begin(p), 0);
	assert_int_equal(qkd_pool_add(p, "sched", "tsp-a", buf, 4, KEYLEN), -1);
	assert_int_equal(qkd_pool_commit(p), 0);
	assert_non_null(strstr(tu_capture_end(), "UNIQUE constraint failed"));
	qrand_set_source(NULL, NULL);
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 1);
	qkd_pool_close(p);
}

/* xorshift64*, for a reproducible mix of operations. */
static uint32_t
mix_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 0x2545F4914F6CDD1DULL) >> 32);
}

/* A reserved key the mix may deliver later. */
struct held {
	char	h_id[QKD_KEYID_LEN + 1];
	int	h_pair;
	int	h_flip;		/* reserved by sae_b for sae_a */
};

/*
 * Many random inserts (committed or not), reservations of either
 * direction and deliveries (some of keys already delivered) over three
 * pairs, with the store reopened now and then: the counts equal the
 * store's after every step.
 */
static void
test_counts_random_mix(void **state)
{
	struct qkd_pool	*p;
	struct qkd_key	 out[6];
	struct held	 held[MAXHELD];
	uint8_t		 buf[8 * KEYLEN];
	const char	*ids[2], *m, *sl;
	uint64_t	 seed = 0x9e3779b97f4a7c15ULL;
	size_t		 nheld = 0, n, bad, i, step, stored;
	int		 pr, rc;

	(void)state;
	p = open_pool();
	for (step = 0; step < 400; step++) {
		pr = (int)(mix_next(&seed) % NPAIRS);
		switch (mix_next(&seed) % 6) {
		case 0:
		case 1:
			n = mix_next(&seed) % 8;
			make_keys(buf, n, KEYLEN, (unsigned)step);
			assert_int_equal(qkd_pool_begin(p), 0);
			assert_int_equal(qkd_pool_add(p, pairs[pr][0],
			    pairs[pr][1], buf, n, KEYLEN), 0);
			if (mix_next(&seed) % 4 == 0)
				qkd_pool_rollback(p);
			else
				assert_int_equal(qkd_pool_commit(p), 0);
			break;
		case 2:
		case 3:
			n = 1 + mix_next(&seed) % 5;
			i = mix_next(&seed) % 2;
			m = pairs[pr][i];
			sl = pairs[pr][1 - i];
			stored = store_count(pairs[pr][0], pairs[pr][1]);
			rc = qkd_pool_reserve(p, m, sl, n, KEYLEN, out);
			assert_int_equal(rc, n > stored ? 1 : 0);
			for (i = 0; rc == 0 && i < n && nheld < MAXHELD; i++) {
				memcpy(held[nheld].h_id, out[i].qk_id,
				    sizeof(held[nheld].h_id));
				held[nheld].h_pair = pr;
				held[nheld].h_flip = m != pairs[pr][0];
				nheld++;
			}
			break;
		case 4:
			if (nheld == 0)
				break;
			i = mix_next(&seed) % nheld;
			pr = held[i].h_pair;
			m = pairs[pr][held[i].h_flip];
			sl = pairs[pr][!held[i].h_flip];
			ids[0] = held[i].h_id;
			assert_int_equal(qkd_pool_take(p, m, sl, ids, 1, out,
			    &bad), QKD_TAKE_OK);
			assert_int_equal(qkd_pool_take(p, m, sl, ids, 1, out,
			    &bad), QKD_TAKE_NOTFOUND);
			held[i] = held[--nheld];
			break;
		default:
			if (mix_next(&seed) % 8 == 0) {
				qkd_pool_close(p);
				p = open_pool();
			}
			break;
		}
		check_counts(p);
	}
	qkd_pool_close(p);
	p = open_pool();
	check_counts(p);
	qkd_pool_close(p);
}

/*
 * A process killed with SIGKILL, holding the pool with a transaction
 * open: the next open counts what was committed, the uncommitted keys are
 * gone, and reserved and delivered keys stay so.
 */
static void
test_counts_after_kill(void **state)
{
	struct qkd_pool	*p;
	struct qkd_key	 out[5];
	uint8_t		 buf[16 * KEYLEN];
	const char	*ids[2];
	sqlite3		*db;
	sqlite3_stmt	*st;
	char		 held[3][QKD_KEYID_LEN + 1];
	size_t		 bad, i;
	pid_t		 pid;
	int		 status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		p = qkd_pool_open(dbpath, NULL, NULL, NULL);
		if (p == NULL)
			_exit(1);
		make_keys(buf, 16, KEYLEN, 3);
		if (qkd_pool_begin(p) == -1 ||
		    qkd_pool_add(p, "sched", "tsp-a", buf, 16, KEYLEN) == -1 ||
		    qkd_pool_add(p, "sched", "tsp-b", buf, 4, KEYLEN) == -1 ||
		    qkd_pool_commit(p) == -1 ||
		    qkd_pool_reserve(p, "sched", "tsp-a", 5, KEYLEN, out) != 0)
			_exit(1);
		ids[0] = out[0].qk_id;
		ids[1] = out[1].qk_id;
		if (qkd_pool_take(p, "sched", "tsp-a", ids, 2, out + 2, &bad) !=
		    QKD_TAKE_OK || qkd_pool_begin(p) == -1 ||
		    qkd_pool_add(p, "sched", "tsp-a", buf, 9, KEYLEN) == -1)
			_exit(1);
		raise(SIGKILL);
		_exit(1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	p = open_pool();
	check_counts(p);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-a"), 11);
	assert_int_equal(qkd_pool_available(p, "sched", "tsp-b"), 4);
	/* The three reserved keys not delivered are delivered once now. */
	assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM delivered"), 2);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT key_id FROM keys "
	    "WHERE master_done = 1 ORDER BY key_id", -1, &st, NULL), SQLITE_OK);
	for (i = 0; i < 3; i++) {
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		snprintf(held[i], sizeof(held[i]), "%s",
		    (const char *)sqlite3_column_text(st, 0));
	}
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	assert_int_equal(qkd_pool_reserve(p, "sched", "tsp-a", 12, KEYLEN,
	    out), 1);
	for (i = 0; i < 3; i++) {
		ids[0] = held[i];
		assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 1,
		    out, &bad), QKD_TAKE_OK);
		assert_int_equal(qkd_pool_take(p, "sched", "tsp-a", ids, 1,
		    out, &bad), QKD_TAKE_NOTFOUND);
	}
	check_counts(p);
	qkd_pool_close(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_counts_follow_changes, fresh_store),
		cmocka_unit_test_setup(test_group_commit, fresh_store),
		cmocka_unit_test_setup_teardown(test_failed_insert, fresh_store,
		    tu_rand_restore),
		cmocka_unit_test_setup(test_counts_random_mix, fresh_store),
		cmocka_unit_test_setup(test_counts_after_kill, fresh_store),
	};

	log_init("test_qkd_pool", 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
