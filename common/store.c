/*
 * SQLite helpers: every store runs in WAL mode with a schema version kept
 * in PRAGMA user_version and forward-only migrations.
 */
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "store.h"

int
store_exec(sqlite3 *db, const char *sql)
{
	char	*err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
		log_warnx("sqlite: %s", err ? err : sqlite3_errmsg(db));
		sqlite3_free(err);
		return -1;
	}
	return 0;
}

/* The stored schema version. */
static int
store_version(sqlite3 *db)
{
	sqlite3_stmt	*st;
	int		 v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* Apply migration i and record version i+1, atomically. */
static int
store_migrate(sqlite3 *db, const char *sql, size_t i)
{
	char	pragma[64];

	if (store_begin(db) == -1)
		return -1;
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", i + 1);
	if (store_exec(db, sql) == -1 || store_exec(db, pragma) == -1) {
		store_rollback(db);
		return -1;
	}
	return store_commit(db);
}

sqlite3 *
store_open(const char *path, const char *const *migrations, size_t nmigrations,
    int sync)
{
	static const char *const sync_pragma[] = {
		[STORE_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
		[STORE_SYNC_FULL] = "PRAGMA synchronous = FULL",
		/* Until the committer takes over: see below. */
		[STORE_COMMITTER] = "PRAGMA synchronous = FULL",
	};
	sqlite3	*db;
	int	 v;
	size_t	 i;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_warnx("%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_busy_timeout(db, 5000);
	if (store_exec(db, "PRAGMA journal_mode = WAL") == -1 ||
	    store_exec(db, sync_pragma[sync]) == -1 ||
	    store_exec(db, "PRAGMA foreign_keys = ON") == -1)
		goto fail;
	if (migrations == NULL)
		goto done;
	if ((v = store_version(db)) < 0)
		goto fail;
	if ((size_t)v > nmigrations) {
		log_warnx("%s: schema version %d is newer than this program (%zu)",
		    path, v, nmigrations);
		goto fail;
	}
	for (i = v; i < nmigrations; i++) {
		if (store_migrate(db, migrations[i], i) == -1) {
			log_warnx("%s: migration to version %zu failed", path, i + 1);
			goto fail;
		}
	}
 done:
	/*
	 * A committer syncs the WAL off the loop and checkpoints it on a
	 * connection of its own; this one only writes.
	 */
	if (sync == STORE_COMMITTER &&
	    (store_exec(db, "PRAGMA synchronous = OFF") == -1 ||
	    store_exec(db, "PRAGMA wal_autocheckpoint = 0") == -1))
		goto fail;
	return db;
 fail:
	sqlite3_close(db);
	return NULL;
}

void
store_close(sqlite3 *db)
{
	sqlite3_stmt	*st;

	if (db == NULL)
		return;
	while ((st = sqlite3_next_stmt(db, NULL)) != NULL)
		sqlite3_finalize(st);
	sqlite3_close(db);
}

sqlite3_stmt *
store_prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;

	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	    NULL) != SQLITE_OK)
		fatalx("sqlite prepare: %s: %s", sqlite3_errmsg(db), sql);
	return st;
}

int
store_begin(sqlite3 *db)
{
	return store_exec(db, "BEGIN IMMEDIATE");
}

int
store_commit(sqlite3 *db)
{
	if (store_exec(db, "COMMIT") == -1) {
		store_rollback(db);
		return -1;
	}
	return 0;
}

void
store_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

void
store_reset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int
store_step_done(sqlite3_stmt *st, int *changes)
{
	int	rc;

	rc = sqlite3_step(st);
	if (changes != NULL)
		*changes = sqlite3_changes(sqlite3_db_handle(st));
	if (rc != SQLITE_DONE) {
		log_warnx("sqlite: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
		store_reset(st);
		return -1;
	}
	store_reset(st);
	return 0;
}

int
store_row_int64(sqlite3_stmt *st, int64_t *v, int n)
{
	int	i, rc;

	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			log_warnx("sqlite: no row from \"%s\"",
			    sqlite3_sql(st));
		else
			log_warnx("sqlite: %s",
			    sqlite3_errmsg(sqlite3_db_handle(st)));
		store_reset(st);
		return -1;
	}
	for (i = 0; i < n; i++)
		v[i] = sqlite3_column_int64(st, i);
	store_reset(st);
	return 0;
}

uint64_t
store_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
