/*
 * The committer of a store: group commit with the disk sync off the event
 * loop, as a database's WAL writer does it.
 *
 * The loop runs its transactions on a store opened with STORE_COMMITTER
 * (WAL, synchronous=OFF): a COMMIT writes the transaction's frames to the
 * WAL file and returns without syncing.  SQLite's WAL hook counts each
 * commit ("written") and wakes the committer thread, which syncs the WAL
 * file once for every commit made since its last sync (however many that
 * is) and tells the loop, through an eventfd, how many commits are now
 * durable.  The loop holds back whatever depends on a commit until then
 * (conn_barrier in conn.h).  The committer also checkpoints the WAL into
 * the database, on a connection of its own with synchronous=FULL, so the
 * loop never syncs anything either way.
 *
 * A crash of the process loses nothing committed (the WAL's pages are in
 * the kernel); a crash of the machine loses at most the commits not yet
 * durable, which nobody was told about.  SQLite's WAL checksums make the
 * recovered store a prefix of the commits, never a mixture.
 */
#ifndef QROAM_COMMIT_H
#define QROAM_COMMIT_H

#include <sqlite3.h>
#include <stdint.h>
#include <event2/event.h>

struct committer;

/*
 * Start committing db, opened from path with STORE_COMMITTER, on the loop
 * of base; durable(n, arg) runs on the loop each time the count of
 * durable commits rises to n.  NULL on failure, logged.
 */
struct committer *committer_start(struct event_base *base, sqlite3 *db,
	    const char *path, void (*durable)(uint64_t n, void *arg), void *arg);
/* Commits made so far / made durable so far (loop thread). */
uint64_t	committer_written(const struct committer *);
uint64_t	committer_durable(const struct committer *);
/*
 * Sync what is written, checkpoint, stop the thread and free; durable is
 * not called again.
 */
void		committer_stop(struct committer *);

#endif
