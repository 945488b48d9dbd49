/*
 * Unit tests of the committer (commit.h): commits written on the loop
 * become durable off it, counted in order; the WAL is checkpointed by the
 * committer; stopping syncs what is left and the store stays whole.
 */
#include <sys/stat.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "commit.h"
#include "log.h"
#include "store.h"

#include "testutil.h"

#define WAIT_MS		5000

static const char *const schema[] = {
	"CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);",
};

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct event_base	*base;
	sqlite3			*db;
	struct committer	*cm;
	uint64_t		 durable;	/* last count reported */
	int			 calls;
};

static void
on_durable(uint64_t n, void *arg)
{
	struct fixture	*fx = arg;

	/* The count only grows, and each call brings news. */
	assert_true(n > fx->durable);
	fx->durable = n;
	fx->calls++;
}

static int
setup(void **state)
{
	struct fixture	*fx;

	fx = calloc(1, sizeof(*fx));
	assert_int_equal(tu_tmpdir_new(fx->dir, sizeof(fx->dir),
	    "test_commit"), 0);
	snprintf(fx->path, sizeof(fx->path), "%s/s.sqlite", fx->dir);
	assert_non_null(fx->base = event_base_new());
	fx->db = store_open(fx->path, schema, 1, STORE_COMMITTER);
	assert_non_null(fx->db);
	fx->cm = committer_start(fx->base, fx->db, fx->path, on_durable, fx);
	assert_non_null(fx->cm);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	committer_stop(fx->cm);
	store_close(fx->db);
	event_base_free(fx->base);
	tu_tmpdir_free(fx->dir);
	free(fx);
	return 0;
}

static int
all_durable(void *arg)
{
	struct fixture	*fx = arg;

	return committer_durable(fx->cm) == committer_written(fx->cm);
}

/* n commits of one row each, with a blob of len bytes. */
static void
commit_rows(struct fixture *fx, int n, size_t len)
{
	sqlite3_stmt	*st;
	void		*blob;
	int		 i;

	blob = calloc(1, len ? len : 1);
	st = store_prepare(fx->db, "INSERT INTO t(v) VALUES(?1)");
	for (i = 0; i < n; i++) {
		sqlite3_bind_blob(st, 1, blob, (int)len, SQLITE_STATIC);
		assert_int_equal(store_step_done(st, NULL), 0);
	}
	sqlite3_finalize(st);
	free(blob);
}

static void
test_commits_become_durable(void **state)
{
	struct fixture	*fx = *state;

	/* The loop's connection never syncs: the committer does. */
	assert_int_equal(tu_query_int(fx->db, "PRAGMA synchronous"), 0);
	assert_int_equal(committer_written(fx->cm), 0);
	assert_int_equal(committer_durable(fx->cm), 0);

	commit_rows(fx, 100, 16);
	assert_int_equal(committer_written(fx->cm), 100);
	/* Nothing is reported before the loop runs. */
	assert_int_equal(fx->calls, 0);
	tu_wait(fx->base, all_durable, fx, WAIT_MS);
	assert_int_equal(fx->durable, 100);
	/* A group commit: far fewer syncs than commits are likely, never more. */
	assert_true(fx->calls >= 1 && fx->calls <= 100);

	/* A transaction of many statements is one commit. */
	assert_int_equal(store_begin(fx->db), 0);
	commit_rows(fx, 10, 16);
	assert_int_equal(store_commit(fx->db), 0);
	assert_int_equal(committer_written(fx->cm), 101);
	tu_wait(fx->base, all_durable, fx, WAIT_MS);
	assert_int_equal(fx->durable, 101);
	/* A rolled-back transaction is none. */
	assert_int_equal(store_begin(fx->db), 0);
	commit_rows(fx, 3, 16);
	store_rollback(fx->db);
	assert_int_equal(committer_written(fx->cm), 101);
	assert_int_equal(tu_query_int(fx->db, "SELECT count(*) FROM t"), 110);
}

static void
test_wal_checkpointed(void **state)
{
	struct fixture	*fx = *state;
	struct stat	 sb;
	off_t		 before;

	assert_int_equal(stat(fx->path, &sb), 0);
	before = sb.st_size;
	/* Some 2,000 pages of WAL: past the checkpoint mark. */
	commit_rows(fx, 400, 20000);
	tu_wait(fx->base, all_durable, fx, WAIT_MS);
	/* The checkpoint runs after the sync; give it its moment. */
	tu_run_for(fx->base, 200);
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_true(sb.st_size > before + 1000 * 4096);
}

static void
test_stop_syncs_and_reopens(void **state)
{
	struct fixture	*fx = *state;
	char		 wal[160];

	commit_rows(fx, 50, 100);
	/* Stopped at once: the thread syncs what is written before it ends. */
	committer_stop(fx->cm);
	fx->cm = NULL;
	store_close(fx->db);
	/* The last close checkpointed and removed the WAL. */
	snprintf(wal, sizeof(wal), "%s-wal", fx->path);
	assert_int_equal(access(wal, F_OK), -1);
	fx->db = store_open(fx->path, schema, 1, STORE_COMMITTER);
	assert_non_null(fx->db);
	assert_int_equal(tu_query_int(fx->db, "SELECT count(*) FROM t"), 50);
	fx->cm = committer_start(fx->base, fx->db, fx->path, on_durable, fx);
	assert_non_null(fx->cm);
	fx->durable = 0;
	commit_rows(fx, 1, 1);
	assert_int_equal(committer_written(fx->cm), 1);
	tu_wait(fx->base, all_durable, fx, WAIT_MS);
}

static void
test_start_without_wal(void **state)
{
	struct fixture	*fx = *state;
	char		 path[160];
	sqlite3		*db;

	/* A store that is not in WAL mode has no WAL to sync: refused. */
	snprintf(path, sizeof(path), "%s/plain.sqlite", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(store_exec(db, "CREATE TABLE x (a)"), 0);
	tu_capture_begin();
	assert_null(committer_start(fx->base, db, path, on_durable, fx));
	assert_non_null(strstr(tu_capture_end(), "plain.sqlite-wal"));
	sqlite3_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commits_become_durable,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_checkpointed,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_syncs_and_reopens,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_without_wal,
		    setup, teardown),
	};

	log_init("test_commit", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
