/*
 * Group commit of F4 and F5, service first for telemetry (PROTOCOL F5).
 * The first telemetry message or M3 of a pass of the event loop opens a
 * store transaction and arms the commit: once the loop has run what is
 * active and polled again (so the answers already queued reach their
 * sockets first), or commit_delay later for telemetry alone; everything
 * until then joins the transaction.  A telemetry message is answered at
 * once, before its record is durable, whenever its answer's seq lies
 * under the session's durable seq ceiling (db_live.c); an M3's answer,
 * and the rare telemetry answer above the ceiling, waits with its
 * connection for the commit and leaves once that is durable.  The commit
 * writes the group to the WAL on the loop; the committer thread syncs it,
 * and then every session of the group learns its new stored_seq: carried
 * by the answers that leave in the same pass of the event loop, or sent
 * alone at the end of it.  A group that is rolled back is never covered,
 * so its vehicles send its records again, and its M3s are refused.  The
 * commit is a store request: its group's replies wait with it for the
 * answer, while the next group may already fill.
 * Queued replies are kept for reuse, so a message allocates nothing here.
 */
#include <sys/queue.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ids.h"
#include "log.h"
#include "store.h"

#include "tspd.h"

#define BATCH_MAX	4096	/* messages per transaction at most */
#define STORED_WAIT_MS	1	/* retry telling while replies wait */

/* The sealed replies to one stored telemetry message. */
struct batch_reply {
	struct conn		*br_conn;	/* NULL once it closed */
	uint64_t		 br_request_id;
	uint64_t		 br_seq;	/* the vehicle's seq */
	char			 br_vid[VIN_LEN + 1];
	Qroam__SessionMsg	 br_msg[2];	/* ServiceResponse, M5 */
	size_t			 br_nmsg;
	uint8_t			 br_ack[TSPD_ACK_MAX];	/* br_msg[0].ct */
	TAILQ_ENTRY(batch_reply) br_entry;
};

TAILQ_HEAD(batch_list, batch_reply);

/* A record of a group: message seq of the session under key key_index. */
struct batch_mark {
	char			 bm_vid[VIN_LEN + 1];
	uint32_t		 bm_key_index;
	uint64_t		 bm_seq;
};

/* A committed group waiting for the committer's sync of commit bg_gen. */
struct batch_group {
	uint64_t		 bg_gen;
	struct batch_mark	*bg_marks;
	size_t			 bg_nmarks;
	TAILQ_ENTRY(batch_group) bg_entry;
};

TAILQ_HEAD(batch_groups, batch_group);

/* A group whose commit was asked for, with what waits for the answer. */
struct batch_commit {
	struct tspdb_req	 bc_rq;
	struct tspd		*bc_env;
	struct batch_list	 bc_replies;
	size_t			 bc_count;
	struct batch_mark	*bc_marks;
	size_t			 bc_nmarks;
	TAILQ_ENTRY(batch_commit) bc_entry;
};

TAILQ_HEAD(batch_commits, batch_commit);

struct tspd_batch {
	struct event		*tb_commit;
	struct batch_list	 tb_replies;	/* waiting for the commit */
	size_t			 tb_count;	/* messages in the open group */
	struct batch_list	 tb_spare;	/* for reuse, BATCH_MAX at most */
	size_t			 tb_nspare;
	struct batch_mark	*tb_marks;	/* records of the open group */
	size_t			 tb_nmarks;
	struct batch_commits	 tb_committing;	/* not answered yet */
	struct batch_groups	 tb_groups;	/* committed, not yet durable */
	struct batch_mark	*tb_tell;	/* sessions to tell stored_seq */
	size_t			 tb_ntell;
	size_t			 tb_tellcap;
	struct event		*tb_tell_ev;
};

static void	batch_flush_cb(void *);
static void	batch_tell_cb(evutil_socket_t, short, void *);

/* Commit event: the read callbacks of this pass have run. */
static void
batch_commit_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	tspd_batch_flush(arg);
}

void
tspd_batch_init(struct tspd *env)
{
	struct tspd_batch	*tb;

	tb = xcalloc(1, sizeof(*tb));
	TAILQ_INIT(&tb->tb_replies);
	TAILQ_INIT(&tb->tb_spare);
	TAILQ_INIT(&tb->tb_groups);
	TAILQ_INIT(&tb->tb_committing);
	tb->tb_marks = xcalloc(BATCH_MAX, sizeof(*tb->tb_marks));
	if ((tb->tb_commit = event_new(env->t_base, -1, 0, batch_commit_cb,
	    env)) == NULL ||
	    (tb->tb_tell_ev = evtimer_new(env->t_base, batch_tell_cb,
	    env)) == NULL)
		fatalx("event_new");
	env->t_batch = tb;
	tspdb_batch_set_flush(env->t_db, batch_flush_cb, env);
}

/* Release one queued reply: its M5's ciphertext goes, the reply is kept. */
static void
batch_reply_free(struct tspd_batch *tb, struct batch_reply *br)
{
	if (br->br_nmsg > 1)
		free(br->br_msg[1].ct.data);
	if (tb->tb_nspare >= BATCH_MAX) {
		free(br);
		return;
	}
	TAILQ_INSERT_HEAD(&tb->tb_spare, br, br_entry);
	tb->tb_nspare++;
}

void
tspd_batch_free(struct tspd *env)
{
	struct tspd_batch	*tb = env->t_batch;
	struct batch_reply	*br;
	struct batch_group	*bg;

	if (tb == NULL)
		return;
	tspd_batch_flush(env);
	tspd_store_drain(env);
	tspdb_batch_set_flush(env->t_db, NULL, NULL);
	if (!TAILQ_EMPTY(&tb->tb_committing))
		fatalx("telemetry commits unanswered at shutdown");
	event_free(tb->tb_commit);
	event_free(tb->tb_tell_ev);
	while ((br = TAILQ_FIRST(&tb->tb_spare)) != NULL) {
		TAILQ_REMOVE(&tb->tb_spare, br, br_entry);
		free(br);
	}
	while ((bg = TAILQ_FIRST(&tb->tb_groups)) != NULL) {
		TAILQ_REMOVE(&tb->tb_groups, bg, bg_entry);
		free(bg->bg_marks);
		free(bg);
	}
	free(tb->tb_marks);
	free(tb->tb_tell);
	free(tb);
	env->t_batch = NULL;
}

/* The store asks for the batch to be committed before another step. */
static void
batch_flush_cb(void *arg)
{
	tspd_batch_flush(arg);
}

/* Send the replies of a committed batch to the connections still open. */
static void
batch_send(struct tspd_batch *tb, struct batch_list *list)
{
	struct batch_reply	*br;
	size_t			 i;

	while ((br = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, br, br_entry);
		for (i = 0; br->br_conn != NULL && i < br->br_nmsg; i++)
			conn_send(br->br_conn, QROAM__MSG_TYPE__MT_SESSION_MSG,
			    br->br_request_id, &br->br_msg[i].base);
		log_debug("telemetry stored vehicle=%s seq=%" PRIu64,
		    br->br_vid, br->br_seq);
		batch_reply_free(tb, br);
	}
}

/* Drop the replies of a batch that was rolled back. */
static void
batch_drop(struct tspd *env, struct batch_list *list)
{
	struct batch_reply	*br;

	while ((br = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, br, br_entry);
		if (br->br_nmsg > 1)
			tspd_handover_offer_cancel(env, br->br_vid);
		batch_reply_free(env->t_batch, br);
	}
}

/* Keep the marks of a group just committed until it is durable. */
static void
batch_group_keep(struct tspd *env, struct batch_commit *bc)
{
	struct tspd_batch	*tb = env->t_batch;
	struct batch_group	*bg;

	if (bc->bc_nmarks == 0)
		return;
	bg = xcalloc(1, sizeof(*bg));
	bg->bg_gen = tspdb_written(env->t_db);
	bg->bg_marks = bc->bc_marks;
	bg->bg_nmarks = bc->bc_nmarks;
	bc->bc_marks = NULL;
	TAILQ_INSERT_TAIL(&tb->tb_groups, bg, bg_entry);
}

/* The store answered a group's commit: send its replies or drop them. */
static void
batch_committed(struct tspdb_req *rq)
{
	struct batch_commit	*bc = rq->rq_arg;
	struct tspd		*env = bc->bc_env;
	struct tspd_batch	*tb = env->t_batch;

	TAILQ_REMOVE(&tb->tb_committing, bc, bc_entry);
	if (rq->rq_result == TSPDB_OK) {
		tspd_metric_telemetry(bc->bc_count);
		batch_group_keep(env, bc);
		batch_send(tb, &bc->bc_replies);
	} else {
		log_warnx("telemetry batch of %zu messages rolled back: the "
		    "store failed; none is covered by a stored_seq",
		    bc->bc_count);
		batch_drop(env, &bc->bc_replies);
	}
	free(bc->bc_marks);
	free(bc);
}

/* 1 if replies wait for a commit: an answer sent now would overtake them. */
static int
batch_waiting(const struct tspd_batch *tb)
{
	return !TAILQ_EMPTY(&tb->tb_replies) ||
	    !TAILQ_EMPTY(&tb->tb_committing);
}

void
tspd_batch_flush(struct tspd *env)
{
	struct tspd_batch	*tb = env->t_batch;
	struct batch_commit	*bc;

	if (tb == NULL || !tspdb_batch_open(env->t_db))
		return;
	event_del(tb->tb_commit);
	bc = xcalloc(1, sizeof(*bc));
	bc->bc_env = env;
	TAILQ_INIT(&bc->bc_replies);
	TAILQ_CONCAT(&bc->bc_replies, &tb->tb_replies, br_entry);
	bc->bc_count = tb->tb_count;
	tb->tb_count = 0;
	if (tb->tb_nmarks > 0) {
		bc->bc_marks = xreallocarray(NULL, tb->tb_nmarks,
		    sizeof(*bc->bc_marks));
		memcpy(bc->bc_marks, tb->tb_marks,
		    tb->tb_nmarks * sizeof(*bc->bc_marks));
		bc->bc_nmarks = tb->tb_nmarks;
		tb->tb_nmarks = 0;
	}
	TAILQ_INSERT_TAIL(&tb->tb_committing, bc, bc_entry);
	tspdb_req_init(&bc->bc_rq, batch_committed, bc);
	tspdb_batch_commit(env->t_db, &bc->bc_rq);
}

/*
 * Tell the sessions on the list their stored_seq, unless an answer did.
 * While replies wait for a commit, a message sent now would overtake
 * their seqs: the telling waits for them.
 */
static void
batch_tell(struct tspd *env)
{
	struct tspd_batch	*tb = env->t_batch;
	struct timeval		 tv = { 0, STORED_WAIT_MS * 1000 };
	size_t			 i;

	if (batch_waiting(tb)) {
		evtimer_add(tb->tb_tell_ev, &tv);
		return;
	}
	for (i = 0; i < tb->tb_ntell; i++)
		tspd_session_tell_stored(env, tb->tb_tell[i].bm_vid);
	tb->tb_ntell = 0;
}

static void
batch_tell_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	batch_tell(arg);
}

/* Session of mark bm has a new stored_seq: tell it at the end of the pass. */
static void
batch_tell_later(struct tspd *env, const struct batch_mark *bm)
{
	struct tspd_batch	*tb = env->t_batch;
	size_t			 cap;

	if (tb->tb_ntell == tb->tb_tellcap) {
		cap = tb->tb_tellcap ? 2 * tb->tb_tellcap : 64;
		tb->tb_tell = xreallocarray(tb->tb_tell, cap,
		    sizeof(*tb->tb_tell));
		tb->tb_tellcap = cap;
	}
	tb->tb_tell[tb->tb_ntell++] = *bm;
	if (!evtimer_pending(tb->tb_tell_ev, NULL))
		event_active(tb->tb_tell_ev, EV_TIMEOUT, 0);
}

void
tspd_batch_durable(struct tspd *env, uint64_t durable)
{
	struct tspd_batch	*tb = env->t_batch;
	struct batch_group	*bg;
	size_t			 i;

	if (tb == NULL)
		return;
	while ((bg = TAILQ_FIRST(&tb->tb_groups)) != NULL &&
	    bg->bg_gen <= durable) {
		TAILQ_REMOVE(&tb->tb_groups, bg, bg_entry);
		/* The last record of a session in the group is its highest. */
		for (i = bg->bg_nmarks; i-- > 0; )
			if (tspdb_session_stored(env->t_db,
			    bg->bg_marks[i].bm_vid, bg->bg_marks[i].bm_key_index,
			    bg->bg_marks[i].bm_seq))
				batch_tell_later(env, &bg->bg_marks[i]);
		free(bg->bg_marks);
		free(bg);
	}
}

void
tspd_batch_conn_closed(struct tspd *env, struct conn *c)
{
	struct batch_reply	*br;
	struct batch_commit	*bc;

	if (env->t_batch == NULL)
		return;
	TAILQ_FOREACH(br, &env->t_batch->tb_replies, br_entry)
		if (br->br_conn == c)
			br->br_conn = NULL;
	TAILQ_FOREACH(bc, &env->t_batch->tb_committing, bc_entry)
		TAILQ_FOREACH(br, &bc->bc_replies, br_entry)
			if (br->br_conn == c)
				br->br_conn = NULL;
}

/* Queue the replies to a message of the open batch; 0 or -1. */
static int
batch_queue(struct tspd_batch *tb, struct conn *c, uint64_t request_id,
    const struct tspdb_session *s, uint64_t seq, Qroam__SessionMsg *reply,
    Qroam__SessionMsg *m5)
{
	struct batch_reply	*br;

	if (reply->ct.len > sizeof(br->br_ack)) {
		log_warnx("telemetry vehicle=%s seq=%" PRIu64 ": the sealed "
		    "response is too long", s->s_vid, seq);
		return -1;
	}
	if ((br = TAILQ_FIRST(&tb->tb_spare)) != NULL) {
		TAILQ_REMOVE(&tb->tb_spare, br, br_entry);
		tb->tb_nspare--;
	} else if ((br = malloc(sizeof(*br))) == NULL) {
		log_warn("telemetry vehicle=%s seq=%" PRIu64, s->s_vid, seq);
		return -1;
	}
	br->br_conn = c;
	br->br_request_id = request_id;
	br->br_seq = seq;
	memcpy(br->br_vid, s->s_vid, sizeof(br->br_vid));
	br->br_nmsg = 0;
	br->br_msg[br->br_nmsg++] = *reply;
	memcpy(br->br_ack, reply->ct.data, reply->ct.len);
	br->br_msg[0].ct.data = br->br_ack;
	if (m5 != NULL) {
		br->br_msg[br->br_nmsg++] = *m5;
		m5->ct.data = NULL;
	}
	br->br_msg[0].vehicle_id = br->br_vid;
	br->br_msg[1].vehicle_id = br->br_vid;
	TAILQ_INSERT_TAIL(&tb->tb_replies, br, br_entry);
	return 0;
}

/*
 * Commit once the loop has run what is active and polled again: the
 * answers already queued reach their sockets first, and what arrived
 * meanwhile joins the group.
 */
static void
batch_commit_soon(struct tspd_batch *tb)
{
	struct timeval	 now = { 0, 0 };

	event_add(tb->tb_commit, &now);
}

void
tspd_batch_m3(struct tspd *env, const struct tspdb_session *s,
    int sequential, const Qroam__Telemetry *d1, struct tspdb_req *rq)
{
	struct tspd_batch	*tb = env->t_batch;

	tspdb_batch_session_open(env->t_db, s, sequential, d1, env->t_id,
	    store_now_ms(), rq);
	tb->tb_count++;
	if (tb->tb_count >= BATCH_MAX)
		tspd_batch_flush(env);
	else if (tspdb_batch_open(env->t_db))
		batch_commit_soon(tb);
}

/* Send a reply (and M5) that waits for no commit. */
static void
batch_send_now(struct conn *c, uint64_t request_id, Qroam__SessionMsg *reply,
    Qroam__SessionMsg *m5)
{
	conn_send_now(c, QROAM__MSG_TYPE__MT_SESSION_MSG, request_id,
	    &reply->base);
	if (m5 != NULL)
		conn_send_now(c, QROAM__MSG_TYPE__MT_SESSION_MSG, request_id,
		    &m5->base);
}

enum tspdb_result
tspd_batch_telemetry(struct tspd *env, struct conn *c, uint64_t request_id,
    const struct tspdb_session *s, uint64_t seq, uint64_t tx_seq,
    const Qroam__Telemetry *t, Qroam__SessionMsg *reply, Qroam__SessionMsg *m5)
{
	struct tspd_batch	*tb = env->t_batch;
	struct batch_mark	*bm;
	struct timeval		 tv;
	enum tspdb_result	 res;
	int			 first, now;

	first = !tspdb_batch_open(env->t_db);
	res = tspdb_batch_telemetry(env->t_db, s->s_vid, seq, tx_seq, t,
	    env->t_id, store_now_ms(), &now);
	if (res == TSPDB_OK) {
		bm = &tb->tb_marks[tb->tb_nmarks++];
		memcpy(bm->bm_vid, s->s_vid, sizeof(bm->bm_vid));
		bm->bm_key_index = s->s_key_index;
		bm->bm_seq = seq;
		tb->tb_count++;
		/* Never ahead of replies that wait for a commit. */
		if (now && !batch_waiting(tb))
			batch_send_now(c, request_id, reply, m5);
		else if (batch_queue(tb, c, request_id, s, seq, reply,
		    m5) == -1)
			res = TSPDB_ERROR;
	}
	if (res == TSPDB_ERROR || tb->tb_count >= BATCH_MAX)
		tspd_batch_flush(env);
	else if (res == TSPDB_OK && !now)
		batch_commit_soon(tb);	/* no commit_delay: a reply waits */
	else if (first && tspdb_batch_open(env->t_db)) {
		if (env->t_conf.tc_commit_delay_ms == 0)
			batch_commit_soon(tb);
		else {
			tv.tv_sec = env->t_conf.tc_commit_delay_ms / 1000;
			tv.tv_usec = env->t_conf.tc_commit_delay_ms % 1000 *
			    1000;
			event_add(tb->tb_commit, &tv);
		}
	}
	return res;
}

/* Run the loop until the store has answered every request; 2 s at most. */
void
tspd_store_drain(struct tspd *env)
{
	uint64_t	 deadline = store_now_ms() + 2000;

	while (tspdb_pending(env->t_db) > 0 && store_now_ms() < deadline)
		event_base_loop(env->t_base, EVLOOP_ONCE);
}
