/*
 * The committer of commit.h.  Loop and thread share four numbers under one
 * mutex: commits written (counted by the WAL hook on the loop), commits
 * synced (by the thread), the WAL's size in pages at the last commit, and
 * the stop flag.  The thread waits on a condition variable until written
 * passes synced, syncs the WAL file once, publishes the new count and
 * writes the eventfd the loop listens on; a burst of commits during one
 * sync is covered by the next, which is what makes it a group commit.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commit.h"
#include "log.h"
#include "store.h"

#define COMMIT_CKPT_PAGES	1000	/* checkpoint after this much WAL */

struct committer {
	pthread_mutex_t	  cm_lock;	/* cm_written .. cm_errno */
	pthread_cond_t	  cm_cond;
	uint64_t	  cm_written;
	uint64_t	  cm_synced;
	int		  cm_pages;
	int		  cm_stop;
	int		  cm_errno;	/* the sync failed: fatal on the loop */

	sqlite3		 *cm_db;	/* the loop's connection */
	sqlite3		 *cm_ckpt;	/* the thread's, for checkpoints */
	int		  cm_walfd;
	int		  cm_efd;
	struct event	 *cm_ev;
	pthread_t	  cm_thread;
	uint64_t	  cm_loop_written;	/* loop thread only */
	uint64_t	  cm_loop_durable;
	void		(*cm_durable)(uint64_t, void *);
	void		 *cm_arg;
};

/* SQLite calls this on the loop after each commit has reached the WAL. */
static int
commit_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct committer	*cm = arg;

	(void)db;
	(void)name;
	cm->cm_loop_written++;
	pthread_mutex_lock(&cm->cm_lock);
	cm->cm_written = cm->cm_loop_written;
	cm->cm_pages = pages;
	pthread_cond_signal(&cm->cm_cond);
	pthread_mutex_unlock(&cm->cm_lock);
	return SQLITE_OK;
}

/* Copy the WAL into the database once enough of it has grown. */
static void
commit_checkpoint(struct committer *cm, int pages, int *mark)
{
	if (pages < *mark)		/* the WAL started over */
		*mark = 0;
	if (pages - *mark < COMMIT_CKPT_PAGES)
		return;
	if (sqlite3_wal_checkpoint_v2(cm->cm_ckpt, NULL,
	    SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) == SQLITE_OK)
		*mark = pages;
}

static void *
commit_thread(void *arg)
{
	struct committer	*cm = arg;
	uint64_t		 target, one = 1;
	int			 pages, mark = 0, err;

	pthread_mutex_lock(&cm->cm_lock);
	for (;;) {
		while (!cm->cm_stop && cm->cm_written == cm->cm_synced)
			pthread_cond_wait(&cm->cm_cond, &cm->cm_lock);
		if (cm->cm_written == cm->cm_synced)
			break;		/* stopping, and nothing left */
		target = cm->cm_written;
		pages = cm->cm_pages;
		pthread_mutex_unlock(&cm->cm_lock);

		err = fdatasync(cm->cm_walfd) == -1 ? errno : 0;

		pthread_mutex_lock(&cm->cm_lock);
		if (err != 0) {
			cm->cm_errno = err;
		} else
			cm->cm_synced = target;
		pthread_mutex_unlock(&cm->cm_lock);
		if (write(cm->cm_efd, &one, sizeof(one)) == -1 && errno != EAGAIN)
			abort();
		if (err != 0)
			return NULL;	/* the loop ends the process */
		commit_checkpoint(cm, pages, &mark);
		pthread_mutex_lock(&cm->cm_lock);
	}
	pthread_mutex_unlock(&cm->cm_lock);
	sqlite3_wal_checkpoint_v2(cm->cm_ckpt, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    NULL, NULL);
	return NULL;
}

/* The eventfd: more commits are durable (or the sync failed). */
static void
commit_event_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct committer	*cm = arg;
	uint64_t		 n, synced;
	int			 err;

	(void)ev;
	if (read(fd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		fatal("committer eventfd");
	pthread_mutex_lock(&cm->cm_lock);
	synced = cm->cm_synced;
	err = cm->cm_errno;
	pthread_mutex_unlock(&cm->cm_lock);
	/*
	 * After a failed sync the kernel may have dropped the dirty pages:
	 * what was written can no longer be made durable, so nothing more
	 * may be acknowledged.  Restart recovers from the WAL on disk.
	 */
	if (err != 0) {
		errno = err;
		fatal("store: syncing the WAL failed");
	}
	if (synced > cm->cm_loop_durable) {
		cm->cm_loop_durable = synced;
		cm->cm_durable(synced, cm->cm_arg);
	}
}

struct committer *
committer_start(struct event_base *base, sqlite3 *db, const char *path,
    void (*durable)(uint64_t, void *), void *arg)
{
	struct committer	*cm;
	sigset_t		 all, old;
	char			 wal[4096];
	int			 rc;

	if (sqlite3_threadsafe() == 0) {
		log_warnx("%s: this SQLite is built without threads", path);
		return NULL;
	}
	cm = xcalloc(1, sizeof(*cm));
	cm->cm_db = db;
	cm->cm_durable = durable;
	cm->cm_arg = arg;
	cm->cm_walfd = cm->cm_efd = -1;
	pthread_mutex_init(&cm->cm_lock, NULL);
	pthread_cond_init(&cm->cm_cond, NULL);
	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) >= sizeof(wal)) {
		log_warnx("%s: path too long", path);
		goto fail;
	}
	if ((cm->cm_walfd = open(wal, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warn("%s", wal);
		goto fail;
	}
	if ((cm->cm_ckpt = store_open(path, NULL, 0, STORE_SYNC_FULL)) == NULL)
		goto fail;
	if ((cm->cm_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		log_warn("eventfd");
		goto fail;
	}
	if ((cm->cm_ev = event_new(base, cm->cm_efd, EV_READ | EV_PERSIST,
	    commit_event_cb, cm)) == NULL || event_add(cm->cm_ev, NULL) == -1) {
		log_warnx("committer: event_new");
		goto fail;
	}
	/* Signals stay with the loop thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&cm->cm_thread, NULL, commit_thread, cm);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_warnx("committer: pthread_create: %s", strerror(rc));
		goto fail;
	}
	sqlite3_wal_hook(db, commit_wal_hook, cm);
	return cm;
 fail:
	if (cm->cm_ev != NULL)
		event_free(cm->cm_ev);
	if (cm->cm_efd != -1)
		close(cm->cm_efd);
	store_close(cm->cm_ckpt);
	if (cm->cm_walfd != -1)
		close(cm->cm_walfd);
	pthread_cond_destroy(&cm->cm_cond);
	pthread_mutex_destroy(&cm->cm_lock);
	free(cm);
	return NULL;
}

uint64_t
committer_written(const struct committer *cm)
{
	return cm->cm_loop_written;
}

uint64_t
committer_durable(const struct committer *cm)
{
	return cm->cm_loop_durable;
}

void
committer_stop(struct committer *cm)
{
	if (cm == NULL)
		return;
	pthread_mutex_lock(&cm->cm_lock);
	cm->cm_stop = 1;
	pthread_cond_signal(&cm->cm_cond);
	pthread_mutex_unlock(&cm->cm_lock);
	pthread_join(cm->cm_thread, NULL);
	sqlite3_wal_hook(cm->cm_db, NULL, NULL);
	/* The last close checkpoints and removes the WAL: it must sync. */
	store_exec(cm->cm_db, "PRAGMA synchronous = FULL");
	event_free(cm->cm_ev);
	close(cm->cm_efd);
	store_close(cm->cm_ckpt);
	close(cm->cm_walfd);
	pthread_cond_destroy(&cm->cm_cond);
	pthread_mutex_destroy(&cm->cm_lock);
	free(cm);
}
