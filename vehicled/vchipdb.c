/*
 * The fleet store (vchip.h): every vehicle of the process in one SQLite
 * file, written by one thread of its own in the way of a database's WAL
 * writer.  The loop queues steps; the writer takes everything queued,
 * applies it in one transaction (each step under a savepoint of its own,
 * so one failing step fails alone) and commits with synchronous=FULL:
 * one sync for every key destroyed, fill, registration and journal entry
 * of the group.  The answers go back through one eventfd, and the loop
 * updates its copy of each slot before it calls the step's owner, so a
 * key reaches the client only once its destruction is on the disk.
 * Journal-only groups wait a little (VCHIPDB_JOURNAL_MS) to gather more.
 *
 * The loop reads the file only while opening it; from vchipdb_start on,
 * the connection is the writer's until vchipdb_close joins it.  The
 * writer touches no libevent object and writes no log: a failed step
 * carries SQLite's message back for the loop to log.
 */
#include <sys/eventfd.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"
#include "store.h"
#include "vchip_priv.h"
#include "vchipdb_sql.h"

#define VCHIPDB_JOURNAL_MS	200	/* a journal-only group waits this long */
#define VCHIPDB_COUNT_FLUSH_S	60	/* gathered counters go out this often */
#define VCHIPDB_CHECKPOINT	256	/* groups between WAL checkpoints */

struct vchipdb {
	struct event_base	*fd_base;
	char			*fd_path;
	sqlite3			*fd_db;
	struct vchip_sql	 fd_sql;	/* the writer's statements */
	struct vchip		**fd_hash;
	size_t			 fd_hsize;
	size_t			 fd_n;
	size_t			 fd_registered;
	pthread_t		 fd_thread;
	int			 fd_started;
	pthread_mutex_t		 fd_lock;	/* fd_queue .. fd_stop */
	pthread_cond_t		 fd_cond;
	struct vchip_opq	 fd_queue;
	int			 fd_urgent;
	uint64_t		 fd_first_ms;	/* when the oldest queued came */
	int			 fd_stop;
	int			 fd_closed;	/* the loop's: written and closed */
	pthread_mutex_t		 fd_done_lock;	/* fd_done */
	struct vchip_opq	 fd_done;
	int			 fd_efd;
	struct event		*fd_done_ev;
	struct event		*fd_flush_ev;
	struct vchip		*fd_dirty;
	uint64_t		 fd_groups;	/* the writer's */
};

static uint64_t
vchipdb_mono_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
vchipdb_lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		fatalx("pthread_mutex_lock");
}

static void
vchipdb_unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		fatalx("pthread_mutex_unlock");
}

/* FNV-1a of a VIN, for the slot table. */
static size_t
vchipdb_hash(const char *vid, size_t size)
{
	uint32_t	h = 2166136261u;

	while (*vid != '\0')
		h = (h ^ (uint8_t)*vid++) * 16777619u;
	return h & (size - 1);
}

/* The slot of vid, or NULL. */
static struct vchip *
vchipdb_find(struct vchipdb *fd, const char *vid)
{
	struct vchip	*ch;

	for (ch = fd->fd_hash[vchipdb_hash(vid, fd->fd_hsize)]; ch != NULL;
	    ch = ch->ch_hnext)
		if (strcmp(ch->ch_vid, vid) == 0)
			return ch;
	return NULL;
}

/* Double the slot table. */
static void
vchipdb_grow(struct vchipdb *fd)
{
	struct vchip	**old = fd->fd_hash, *ch, *next;
	size_t		  i, n = fd->fd_hsize;

	fd->fd_hsize = n ? n * 2 : 1024;
	fd->fd_hash = xcalloc(fd->fd_hsize, sizeof(*fd->fd_hash));
	for (i = 0; i < n; i++)
		for (ch = old[i]; ch != NULL; ch = next) {
			next = ch->ch_hnext;
			ch->ch_hnext = fd->fd_hash[vchipdb_hash(ch->ch_vid,
			    fd->fd_hsize)];
			fd->fd_hash[vchipdb_hash(ch->ch_vid, fd->fd_hsize)] = ch;
		}
	free(old);
}

/* A new, empty slot for vid. */
static struct vchip *
vchipdb_add(struct vchipdb *fd, const char *vid)
{
	struct vchip	*ch;
	size_t		 h;

	if (fd->fd_n + 1 > fd->fd_hsize / 2)
		vchipdb_grow(fd);
	ch = xcalloc(1, sizeof(*ch));
	ch->ch_kind = VCHIP_FLEET;
	ch->ch_base = fd->fd_base;
	ch->ch_fdb = fd;
	ch->ch_maxd = -1;
	snprintf(ch->ch_vid, sizeof(ch->ch_vid), "%s", vid);
	h = vchipdb_hash(vid, fd->fd_hsize);
	ch->ch_hnext = fd->fd_hash[h];
	fd->fd_hash[h] = ch;
	fd->fd_n++;
	return ch;
}

struct vchip *
vchipdb_chip(struct vchipdb *fd, const char *vid)
{
	struct vchip	*ch;

	if ((ch = vchipdb_find(fd, vid)) == NULL)
		ch = vchipdb_add(fd, vid);
	return ch;
}

size_t
vchipdb_size(const struct vchipdb *fd)
{
	return fd->fd_n;
}

size_t
vchipdb_registered(const struct vchipdb *fd)
{
	return fd->fd_registered;
}

/* Queue op for the writer (on the loop). */
void
vchipdb_queue(struct vchipdb *fd, struct vchip_op *op)
{
	int	urgent = op->op_kind != VOP_EVENT && op->op_kind != VOP_COUNTS;

	/* After the close (a vehicle going away): nothing is written. */
	if (fd->fd_closed) {
		vchip_op_free(op);
		return;
	}
	vchipdb_lock(&fd->fd_lock);
	if (TAILQ_EMPTY(&fd->fd_queue))
		fd->fd_first_ms = vchipdb_mono_ms();
	TAILQ_INSERT_TAIL(&fd->fd_queue, op, op_entry);
	if (urgent && !fd->fd_urgent) {
		fd->fd_urgent = 1;
		pthread_cond_signal(&fd->fd_cond);
	}
	vchipdb_unlock(&fd->fd_lock);
}

/* Queue ch's gathered counters as one step. */
static void
vchipdb_flush_counts(struct vchip *ch)
{
	struct vchip_op	*op;

	op = vchip_op_new(ch, VOP_COUNTS);
	memcpy(op->op_counts, ch->ch_counts, sizeof(op->op_counts));
	memset(ch->ch_counts, 0, sizeof(ch->ch_counts));
	vchipdb_queue(ch->ch_fdb, op);
}

/* Every few seconds: the counters gathered since. */
static void
vchipdb_flush_cb(evutil_socket_t fd0, short ev, void *arg)
{
	struct vchipdb	*fd = arg;
	struct vchip	*ch;

	(void)fd0;
	(void)ev;
	while ((ch = fd->fd_dirty) != NULL) {
		fd->fd_dirty = ch->ch_next_dirty;
		ch->ch_next_dirty = NULL;
		ch->ch_dirty = 0;
		vchipdb_flush_counts(ch);
	}
}

void
vchipdb_count(struct vchip *ch, const char *name, int64_t delta)
{
	struct vchipdb	*fd = ch->ch_fdb;
	struct timeval	 tv = { VCHIPDB_COUNT_FLUSH_S, 0 };
	size_t		 i;

	for (i = 0; i < VCHIP_NCOUNT; i++)
		if (strcmp(vchip_count_names[i], name) == 0)
			break;
	if (i == VCHIP_NCOUNT)
		fatalx("fleet store: no counter %s", name);
	ch->ch_counts[i] += (int32_t)delta;
	if (ch->ch_dirty)
		return;
	ch->ch_dirty = 1;
	ch->ch_next_dirty = fd->fd_dirty;
	fd->fd_dirty = ch;
	if (!evtimer_pending(fd->fd_flush_ev, NULL))
		evtimer_add(fd->fd_flush_ev, &tv);
}

/* The loop's copy of the slot after op committed. */
static void
vchipdb_apply(struct vchipdb *fd, struct vchip_op *op)
{
	struct vchip	*ch = op->op_chip;

	switch (op->op_kind) {
	case VOP_TAKE:
		if (op->op_draw != CHIP_DRAW_OK)
			break;
		ch->ch_ndestroyed++;
		if ((int64_t)op->op_key.ck_index > ch->ch_maxd)
			ch->ch_maxd = op->op_key.ck_index;
		break;
	case VOP_RAISE:
		if (op->op_rc == 0 && op->op_value > ch->ch_mark)
			ch->ch_mark = op->op_value;
		break;
	case VOP_FILL:
		if (op->op_rc != 0)
			break;
		ch->ch_filled = 1;
		ch->ch_info = op->op_info;
		ch->ch_maxd = -1;
		ch->ch_ndestroyed = 0;
		break;
	case VOP_REG:
		if (op->op_rc != 0)
			break;
		fd->fd_registered += !ch->ch_registered;
		ch->ch_registered = 1;
		memcpy(ch->ch_reg_chip, op->op_chip_id, sizeof(ch->ch_reg_chip));
		free(ch->ch_pbv);
		ch->ch_pbv = op->op_pbv;
		ch->ch_pbvlen = op->op_pbvlen;
		op->op_pbv = NULL;
		ch->ch_reg_ms = op->op_ms;
		ch->ch_tsps = vchipdb_tsps(op->op_digest, op->op_buf,
		    op->op_len);
		break;
	case VOP_EVENT:
	case VOP_COUNTS:
		break;
	}
}

/* The writer's answers: update the slots, then tell their owners. */
static void
vchipdb_done_cb(evutil_socket_t efd, short ev, void *arg)
{
	struct vchipdb		*fd = arg;
	struct vchip_opq	 q = TAILQ_HEAD_INITIALIZER(q);
	struct vchip_op		*op;
	uint64_t		 n;

	(void)ev;
	while (read(efd, &n, sizeof(n)) == -1 && errno == EINTR)
		;
	vchipdb_lock(&fd->fd_done_lock);
	TAILQ_CONCAT(&q, &fd->fd_done, op_entry);
	vchipdb_unlock(&fd->fd_done_lock);
	while ((op = TAILQ_FIRST(&q)) != NULL) {
		TAILQ_REMOVE(&q, op, op_entry);
		if (op->op_rc != 0 || (op->op_kind == VOP_TAKE &&
		    op->op_draw == CHIP_DRAW_ERROR))
			log_warnx("fleet store: %s of %s failed: %s",
			    vchipdb_op_name(op->op_kind), op->op_chip->ch_vid,
			    op->op_err ? op->op_err : "rejected");
		vchipdb_apply(fd, op);
		vchip_op_answer(op);
		vchip_op_free(op);
	}
}

/* Take the next group off the queue, waiting as the rules say; 0 at stop. */
static int
vchipdb_take_group(struct vchipdb *fd, struct vchip_opq *group)
{
	struct timespec	ts;
	uint64_t	due;

	vchipdb_lock(&fd->fd_lock);
	for (;;) {
		if (!TAILQ_EMPTY(&fd->fd_queue) && (fd->fd_urgent ||
		    fd->fd_stop))
			break;
		if (TAILQ_EMPTY(&fd->fd_queue)) {
			if (fd->fd_stop) {
				vchipdb_unlock(&fd->fd_lock);
				return 0;
			}
			pthread_cond_wait(&fd->fd_cond, &fd->fd_lock);
			continue;
		}
		due = fd->fd_first_ms + VCHIPDB_JOURNAL_MS;
		if (vchipdb_mono_ms() >= due)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)VCHIPDB_JOURNAL_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&fd->fd_cond, &fd->fd_lock, &ts);
	}
	TAILQ_CONCAT(group, &fd->fd_queue, op_entry);
	fd->fd_urgent = 0;
	vchipdb_unlock(&fd->fd_lock);
	return 1;
}

/* The writer thread: groups until stopped, every one committed. */
static void *
vchipdb_writer(void *arg)
{
	struct vchipdb		*fd = arg;
	struct vchip_opq	 group = TAILQ_HEAD_INITIALIZER(group);
	uint64_t		 one = 1;

	while (vchipdb_take_group(fd, &group)) {
		vchip_sql_group(&fd->fd_sql, &group);
		if (++fd->fd_groups % VCHIPDB_CHECKPOINT == 0)
			vchip_sql_checkpoint(&fd->fd_sql, 0);
		vchipdb_lock(&fd->fd_done_lock);
		TAILQ_CONCAT(&fd->fd_done, &group, op_entry);
		vchipdb_unlock(&fd->fd_done_lock);
		while (write(fd->fd_efd, &one, sizeof(one)) == -1 &&
		    errno == EINTR)
			;
	}
	return NULL;
}

struct vchipdb *
vchipdb_open(struct event_base *base, const char *path)
{
	struct vchipdb	*fd;

	fd = xcalloc(1, sizeof(*fd));
	fd->fd_base = base;
	fd->fd_path = xstrdup(path);
	TAILQ_INIT(&fd->fd_queue);
	TAILQ_INIT(&fd->fd_done);
	vchipdb_grow(fd);
	if ((fd->fd_db = vchip_sql_open(path)) == NULL) {
		free(fd->fd_hash);
		free(fd->fd_path);
		free(fd);
		return NULL;
	}
	if (vchip_sql_load(fd->fd_db, fd) == -1) {
		log_warnx("%s: cannot load the fleet store", path);
		store_close(fd->fd_db);
		free(fd->fd_hash);
		free(fd->fd_path);
		free(fd);
		return NULL;
	}
	if (pthread_mutex_init(&fd->fd_lock, NULL) != 0 ||
	    pthread_mutex_init(&fd->fd_done_lock, NULL) != 0 ||
	    pthread_cond_init(&fd->fd_cond, NULL) != 0)
		fatalx("pthread init");
	if ((fd->fd_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		fatal("eventfd");
	if ((fd->fd_done_ev = event_new(base, fd->fd_efd, EV_READ | EV_PERSIST,
	    vchipdb_done_cb, fd)) == NULL || event_add(fd->fd_done_ev,
	    NULL) == -1 || (fd->fd_flush_ev = evtimer_new(base,
	    vchipdb_flush_cb, fd)) == NULL)
		fatalx("cannot create events");
	log_info("fleet store %s: %zu vehicles, %zu registered", path,
	    fd->fd_n, fd->fd_registered);
	return fd;
}

int
vchipdb_start(struct vchipdb *fd)
{
	if (vchip_sql_prepare(&fd->fd_sql, fd->fd_db) == -1)
		return -1;
	if (pthread_create(&fd->fd_thread, NULL, vchipdb_writer, fd) != 0) {
		log_warnx("fleet store: cannot start its writer");
		return -1;
	}
	fd->fd_started = 1;
	return 0;
}

const char *
vchipdb_op_name(enum vchip_opkind k)
{
	switch (k) {
	case VOP_TAKE:
		return "a key destruction";
	case VOP_RAISE:
		return "a counter mark";
	case VOP_FILL:
		return "a fill";
	case VOP_REG:
		return "a registration";
	case VOP_EVENT:
		return "a journal event";
	case VOP_COUNTS:
		return "the counters";
	}
	return "a step";
}

const struct topo *
vchipdb_tsps(const char *digest, const uint8_t *buf, size_t len)
{
	const struct topo	*t;
	struct topo		*nt;
	Qroam__M1		*m1;

	if ((t = vchip_interned(digest)) != NULL)
		return t;
	if (buf == NULL || (m1 = qroam__m1__unpack(NULL, len, buf)) == NULL)
		return NULL;
	nt = xcalloc(1, sizeof(*nt));
	if (vchip_m1_topo(m1, nt) == -1) {
		free(nt);
		t = NULL;
	} else
		t = vchip_intern(nt, digest);
	qroam__m1__free_unpacked(m1, NULL);
	return t;
}

int
vchipdb_raise_marks(struct vchipdb *fd, int64_t now_us, int64_t ahead_us)
{
	sqlite3_stmt	*st;
	struct vchip	*ch;
	size_t		 i;
	int		 rc = 0;

	if (fd->fd_started || store_begin(fd->fd_db) == -1)
		return -1;
	st = store_prepare(fd->fd_db, "INSERT INTO counters(vehicle_id, name,"
	    " value) VALUES(?, 'record_id_mark', ?) ON CONFLICT(vehicle_id,"
	    " name) DO UPDATE SET value = max(value, excluded.value)");
	for (i = 0; i < fd->fd_hsize && rc == 0; i++)
		for (ch = fd->fd_hash[i]; ch != NULL && rc == 0;
		    ch = ch->ch_hnext) {
			ch->ch_mark = (ch->ch_mark_floor > now_us ?
			    ch->ch_mark_floor : now_us) + ahead_us;
			sqlite3_bind_text(st, 1, ch->ch_vid, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, ch->ch_mark);
			rc = store_step_done(st, NULL);
		}
	sqlite3_finalize(st);
	if (rc == -1) {
		store_rollback(fd->fd_db);
		return -1;
	}
	return store_commit(fd->fd_db);
}

/* Called by vchip_sql_load for every slot it reads. */
struct vchip *
vchipdb_loaded(struct vchipdb *fd, const char *vid)
{
	return vchipdb_chip(fd, vid);
}

/* Count a registration loaded from the file. */
void
vchipdb_loaded_registration(struct vchipdb *fd)
{
	fd->fd_registered++;
}

void
vchipdb_close(struct vchipdb *fd)
{
	struct vchip_op	*op;

	if (fd == NULL || fd->fd_closed)
		return;
	vchipdb_flush_cb(-1, 0, fd);
	vchipdb_lock(&fd->fd_lock);
	fd->fd_stop = 1;
	pthread_cond_signal(&fd->fd_cond);
	vchipdb_unlock(&fd->fd_lock);
	if (fd->fd_started)
		pthread_join(fd->fd_thread, NULL);
	fd->fd_closed = 1;
	/* Answers not delivered: the slots' owners are going. */
	TAILQ_CONCAT(&fd->fd_done, &fd->fd_queue, op_entry);
	while ((op = TAILQ_FIRST(&fd->fd_done)) != NULL) {
		TAILQ_REMOVE(&fd->fd_done, op, op_entry);
		vchip_op_free(op);
	}
	vchip_sql_checkpoint(&fd->fd_sql, 1);
	vchip_sql_finalize(&fd->fd_sql);
	store_close(fd->fd_db);
	fd->fd_db = NULL;
	event_free(fd->fd_done_ev);
	event_free(fd->fd_flush_ev);
	close(fd->fd_efd);
	log_info("fleet store %s: %llu groups written", fd->fd_path,
	    (unsigned long long)fd->fd_groups);
}

void
vchipdb_free(struct vchipdb *fd)
{
	struct vchip	*ch, *next;
	size_t		 i;

	if (fd == NULL)
		return;
	vchipdb_close(fd);
	for (i = 0; i < fd->fd_hsize; i++)
		for (ch = fd->fd_hash[i]; ch != NULL; ch = next) {
			next = ch->ch_hnext;
			free(ch->ch_pbv);
			free(ch);
		}
	pthread_mutex_destroy(&fd->fd_lock);
	pthread_mutex_destroy(&fd->fd_done_lock);
	pthread_cond_destroy(&fd->fd_cond);
	free(fd->fd_hash);
	free(fd->fd_path);
	free(fd);
}
