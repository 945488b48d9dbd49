/*
 * Unit tests of the SQLite helpers: schema migrations and their version,
 * refusal of newer schemas, transactions and statement error paths.
 */
#include <sys/wait.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "store.h"

#include "testutil.h"

static char	tmpdir[64];
static char	dbpath[192];
static int	dbseq;

/*
 * Each migration also appends to a log table, so a test can see exactly
 * which migrations ran and how often.
 */
static const char *const migrations[] = {
	"CREATE TABLE miglog (v INTEGER);"
	"INSERT INTO miglog VALUES (1);"
	"CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
	"INSERT INTO miglog VALUES (2);"
	"ALTER TABLE kv ADD COLUMN note TEXT;",
	"INSERT INTO miglog VALUES (3);"
	"CREATE TABLE parent (id INTEGER PRIMARY KEY);"
	"CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER"
	" REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
};

static int
setup(void **state)
{
	(void)state;
	return tu_tmpdir_new(tmpdir, sizeof(tmpdir), "test_store");
}

static int
teardown(void **state)
{
	(void)state;
	return tu_tmpdir_free(tmpdir);
}

/* A fresh database path for each test. */
static int
fresh_db(void **state)
{
	(void)state;
	snprintf(dbpath, sizeof(dbpath), "%s/db%d.sqlite", tmpdir, ++dbseq);
	return 0;
}

/*
 * Open dbpath with the first n migrations: the schema is at version n and
 * ran migrations have logged ran rows in all.
 */
static sqlite3 *
open_at(size_t n, int64_t ran)
{
	sqlite3	*db;

	db = store_open(dbpath, migrations, n, 0);
	assert_non_null(db);
	assert_int_equal(tu_query_int(db, "PRAGMA user_version"), n);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM miglog"), ran);
	return db;
}

static void
test_migrations_run_once(void **state)
{
	sqlite3		*db;
	sqlite3_stmt	*st;

	(void)state;
	db = open_at(2, 2);
	assert_int_equal(tu_query_int(db, "SELECT sum(v) FROM miglog"), 3);
	/* Migration 2 really ran: the column exists. */
	assert_int_equal(store_exec(db,
	    "INSERT INTO kv (k, v, note) VALUES ('a', 1, 'n')"), 0);
	store_close(db);

	/* Reopening with the same list runs nothing. */
	db = open_at(2, 2);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM kv"), 1);
	/* Prepared statements left open are finalized by store_close. */
	st = store_prepare(db, "SELECT k FROM kv");
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	store_close(db);

	/* A longer list runs only the new migration. */
	db = open_at(3, 3);
	assert_int_equal(tu_query_int(db, "SELECT max(v) FROM miglog"), 3);
	store_close(db);
}

static void
test_pragmas(void **state)
{
	sqlite3	*db;
	char	 wal[256];

	(void)state;
	db = store_open(dbpath, migrations, 1, 1);
	assert_non_null(db);
	/* FULL */
	assert_int_equal(tu_query_int(db, "PRAGMA synchronous"), 2);
	assert_int_equal(tu_query_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(store_exec(db, "INSERT INTO kv VALUES ('x', 1)"), 0);
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	assert_int_equal(access(wal, F_OK), 0);
	store_close(db);

	db = store_open(dbpath, migrations, 1, 0);
	assert_non_null(db);
	/* NORMAL */
	assert_int_equal(tu_query_int(db, "PRAGMA synchronous"), 1);
	{
		sqlite3_stmt	*st;

		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1,
		    &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
	}
	store_close(db);
}

static void
test_newer_schema_refused(void **state)
{
	sqlite3	*db;

	(void)state;
	db = open_at(3, 3);
	store_close(db);
	/* An older program must not touch a newer schema. */
	assert_null(store_open(dbpath, migrations, 2, 0));
	assert_null(store_open(dbpath, migrations, 0, 0));
	/* ...and the refusal changed nothing. */
	db = open_at(3, 3);
	store_close(db);
}

static void
test_failed_migration_rolls_back(void **state)
{
	const char *const bad[] = {
		migrations[0],
		"INSERT INTO miglog VALUES (2);"
		"CREATE TABLE half (a);"
		"INSERT INTO no_such_table VALUES (1);",
	};
	sqlite3	*db;

	(void)state;
	assert_null(store_open(dbpath, bad, 2, 0));
	/* Migration 1 committed, migration 2 left no trace. */
	db = open_at(1, 1);
	assert_int_equal(tu_query_int(db,
	    "SELECT count(*) FROM sqlite_master WHERE name = 'half'"), 0);
	store_close(db);
	/* The fixed list then migrates normally. */
	db = open_at(2, 2);
	store_close(db);
}

static void
test_open_unwritable(void **state)
{
	char	p[256];

	(void)state;
	snprintf(p, sizeof(p), "%s/no/such/dir/x.db", tmpdir);
	assert_null(store_open(p, migrations, 1, 0));
}

static void
test_transactions(void **state)
{
	sqlite3	*db;

	(void)state;
	db = store_open(dbpath, migrations, 3, 0);
	assert_non_null(db);

	assert_int_equal(store_begin(db), 0);
	assert_int_equal(sqlite3_get_autocommit(db), 0);
	assert_int_equal(store_exec(db, "INSERT INTO kv (k, v) VALUES ('r', 1)"), 0);
	store_rollback(db);
	assert_int_equal(sqlite3_get_autocommit(db), 1);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM kv"), 0);

	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_exec(db, "INSERT INTO kv (k, v) VALUES ('c', 2)"), 0);
	assert_int_equal(store_commit(db), 0);
	assert_int_equal(tu_query_int(db, "SELECT v FROM kv WHERE k = 'c'"), 2);

	/* Rollback outside a transaction is harmless. */
	store_rollback(db);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM kv"), 1);

	/* A nested BEGIN fails and leaves the outer transaction intact. */
	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_exec(db, "INSERT INTO kv (k, v) VALUES ('n', 3)"), 0);
	assert_int_equal(store_begin(db), -1);
	assert_int_equal(sqlite3_get_autocommit(db), 0);
	store_rollback(db);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM kv"), 1);

	/* A COMMIT that fails (deferred foreign key) rolls back. */
	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_exec(db, "INSERT INTO kv (k, v) VALUES ('fk', 4)"), 0);
	assert_int_equal(store_exec(db,
	    "INSERT INTO child (id, pid) VALUES (1, 99)"), 0);
	assert_int_equal(store_commit(db), -1);
	assert_int_equal(sqlite3_get_autocommit(db), 1);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM kv WHERE k = 'fk'"), 0);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM child"), 0);
	store_close(db);
}

static void
test_transaction_visibility(void **state)
{
	sqlite3	*db, *other;

	(void)state;
	db = store_open(dbpath, migrations, 1, 0);
	assert_non_null(db);
	other = store_open(dbpath, migrations, 1, 0);
	assert_non_null(other);
	assert_int_equal(store_begin(db), 0);
	assert_int_equal(store_exec(db, "INSERT INTO kv VALUES ('w', 1)"), 0);
	/* Uncommitted rows are invisible to another connection (WAL). */
	assert_int_equal(tu_query_int(other, "SELECT count(*) FROM kv"), 0);
	assert_int_equal(store_commit(db), 0);
	assert_int_equal(tu_query_int(other, "SELECT count(*) FROM kv"), 1);
	store_close(other);
	store_close(db);
}

static void
test_step_done(void **state)
{
	sqlite3		*db;
	sqlite3_stmt	*ins, *upd;
	int		 changes;

	(void)state;
	db = store_open(dbpath, migrations, 1, 0);
	assert_non_null(db);
	ins = store_prepare(db, "INSERT INTO kv (k, v) VALUES (?, ?)");
	upd = store_prepare(db, "UPDATE kv SET v = v + 1 WHERE v >= ?");

	sqlite3_bind_text(ins, 1, "a", -1, SQLITE_STATIC);
	sqlite3_bind_int(ins, 2, 10);
	changes = -1;
	assert_int_equal(store_step_done(ins, &changes), 0);
	assert_int_equal(changes, 1);
	sqlite3_bind_text(ins, 1, "b", -1, SQLITE_STATIC);
	sqlite3_bind_int(ins, 2, 20);
	assert_int_equal(store_step_done(ins, NULL), 0);

	/* Duplicate key: -1, and the statement is reset for reuse. */
	sqlite3_bind_text(ins, 1, "a", -1, SQLITE_STATIC);
	sqlite3_bind_int(ins, 2, 30);
	assert_int_equal(store_step_done(ins, &changes), -1);
	assert_int_equal(sqlite3_stmt_busy(ins), 0);
	/* Bindings were cleared: v = NULL violates NOT NULL. */
	sqlite3_bind_text(ins, 1, "c", -1, SQLITE_STATIC);
	assert_int_equal(store_step_done(ins, NULL), -1);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM kv"), 2);
	sqlite3_bind_text(ins, 1, "c", -1, SQLITE_STATIC);
	sqlite3_bind_int(ins, 2, 5);
	assert_int_equal(store_step_done(ins, NULL), 0);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM kv"), 3);

	sqlite3_bind_int(upd, 1, 10);
	assert_int_equal(store_step_done(upd, &changes), 0);
	assert_int_equal(changes, 2);
	sqlite3_bind_int(upd, 1, 1000);
	assert_int_equal(store_step_done(upd, &changes), 0);
	assert_int_equal(changes, 0);
	assert_int_equal(tu_query_int(db,
	    "SELECT v FROM kv WHERE k = 'b'"), 21);

	/* A statement that returns rows is not "done". */
	{
		sqlite3_stmt	*sel = store_prepare(db, "SELECT k FROM kv");

		assert_int_equal(store_step_done(sel, NULL), -1);
		assert_int_equal(sqlite3_stmt_busy(sel), 0);
	}
	store_close(db);
}

/* store_row_int64: the integers of one row; no row or an error is -1. */
static void
test_row_int64(void **state)
{
	sqlite3		*db;
	sqlite3_stmt	*cnt, *two, *none;
	int64_t		 v[2];

	(void)state;
	db = store_open(dbpath, migrations, 1, 0);
	assert_non_null(db);
	cnt = store_prepare(db, "SELECT count(*) FROM kv");
	two = store_prepare(db, "SELECT count(*), coalesce(sum(v), 0) FROM kv"
	    " WHERE v >= ?");
	none = store_prepare(db, "SELECT v FROM kv WHERE k = 'none'");
	v[0] = -1;
	assert_int_equal(store_row_int64(cnt, v, 1), 0);
	assert_int_equal(v[0], 0);
	assert_int_equal(store_exec(db, "INSERT INTO kv (k, v) VALUES"
	    " ('a', 10), ('b', 20), ('c', 5000000000)"), 0);
	assert_int_equal(store_row_int64(cnt, v, 1), 0);
	assert_int_equal(v[0], 3);
	assert_int_equal(sqlite3_stmt_busy(cnt), 0);
	sqlite3_bind_int(two, 1, 20);
	assert_int_equal(store_row_int64(two, v, 2), 0);
	assert_int_equal(v[0], 2);
	assert_int_equal(v[1], 5000000020LL);
	/* The binding was cleared: v >= NULL matches nothing. */
	assert_int_equal(store_row_int64(two, v, 2), 0);
	assert_int_equal(v[0], 0);
	assert_int_equal(v[1], 0);
	assert_int_equal(store_row_int64(none, v, 1), -1);
	assert_int_equal(sqlite3_stmt_busy(none), 0);
	store_close(db);
}

static void
test_exec_errors(void **state)
{
	sqlite3	*db;

	(void)state;
	db = store_open(dbpath, migrations, 1, 0);
	assert_non_null(db);
	assert_int_equal(store_exec(db, "THIS IS NOT SQL"), -1);
	assert_int_equal(store_exec(db, "INSERT INTO missing VALUES (1)"), -1);
	/* Statements after a failing one in the same string do not run. */
	assert_int_equal(store_exec(db, "INSERT INTO kv VALUES ('a', 1);"
	    "INSERT INTO missing VALUES (1);"
	    "INSERT INTO kv VALUES ('b', 2)"), -1);
	assert_int_equal(tu_query_int(db, "SELECT count(*) FROM kv WHERE k = 'b'"), 0);
	store_close(db);
	store_close(NULL);
}

static void
test_prepare_bad_sql_is_fatal(void **state)
{
	pid_t	pid;
	int	status;
	sqlite3	*db;

	(void)state;
	db = store_open(dbpath, migrations, 1, 0);
	assert_non_null(db);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		store_prepare(db, "SELECT nothing FROM nowhere");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	store_close(db);
}

static void
test_now_ms(void **state)
{
	uint64_t	a, b;
	time_t		t;

	(void)state;
	t = time(NULL);
	a = store_now_ms();
	b = store_now_ms();
	assert_true(b >= a);
	assert_true(a / 1000 >= (uint64_t)t - 1 && a / 1000 <= (uint64_t)t + 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_migrations_run_once, fresh_db),
		cmocka_unit_test_setup(test_pragmas, fresh_db),
		cmocka_unit_test_setup(test_newer_schema_refused, fresh_db),
		cmocka_unit_test_setup(test_failed_migration_rolls_back, fresh_db),
		cmocka_unit_test_setup(test_open_unwritable, fresh_db),
		cmocka_unit_test_setup(test_transactions, fresh_db),
		cmocka_unit_test_setup(test_transaction_visibility, fresh_db),
		cmocka_unit_test_setup(test_step_done, fresh_db),
		cmocka_unit_test_setup(test_row_int64, fresh_db),
		cmocka_unit_test_setup(test_exec_errors, fresh_db),
		cmocka_unit_test_setup(test_prepare_bad_sql_is_fatal, fresh_db),
		cmocka_unit_test(test_now_ms),
	};

	log_init("test_store", 0);
	return cmocka_run_group_tests(tests, setup, teardown);
}
