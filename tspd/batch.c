/*
 * Group commit of F5 telemetry.  The first telemetry message of a pass of
 * the event loop opens a store transaction and makes the commit event
 * active, so it runs after the read callbacks already queued in this pass;
 * every telemetry message until then joins the transaction, and its sealed
 * replies wait here with their connection.  Only after the commit do the
 * replies leave ("acknowledged means stored"); if it fails, the batch is
 * rolled back and nothing is sent.  Session state (rx_seq, tx_seq) advances
 * in the store's sessions in memory from one message of the batch to the
 * next; the commit writes it with the telemetry and a rollback restores
 * the committed state.  Queued replies are kept for reuse, so a message
 * allocates nothing here.
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

struct tspd_batch {
	struct event		*tb_commit;
	struct batch_list	 tb_replies;
	size_t			 tb_count;
	struct batch_list	 tb_spare;	/* for reuse, BATCH_MAX at most */
	size_t			 tb_nspare;
};

static void	batch_flush_cb(void *);

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
	if ((tb->tb_commit = event_new(env->t_base, -1, 0, batch_commit_cb,
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

	if (tb == NULL)
		return;
	tspd_batch_flush(env);
	tspdb_batch_set_flush(env->t_db, NULL, NULL);
	event_free(tb->tb_commit);
	while ((br = TAILQ_FIRST(&tb->tb_spare)) != NULL) {
		TAILQ_REMOVE(&tb->tb_spare, br, br_entry);
		free(br);
	}
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

void
tspd_batch_flush(struct tspd *env)
{
	struct tspd_batch	*tb = env->t_batch;
	struct batch_list	 list;
	size_t			 n;

	if (tb == NULL || !tspdb_batch_open(env->t_db))
		return;
	TAILQ_INIT(&list);
	TAILQ_CONCAT(&list, &tb->tb_replies, br_entry);
	n = tb->tb_count;
	tb->tb_count = 0;
	if (tspdb_batch_commit(env->t_db) == TSPDB_OK) {
		tspd_metric_telemetry(n);
		batch_send(tb, &list);
	} else {
		log_warnx("telemetry batch of %zu messages rolled back: the "
		    "store failed; none is acknowledged", n);
		batch_drop(env, &list);
	}
}

void
tspd_batch_conn_closed(struct tspd *env, struct conn *c)
{
	struct batch_reply	*br;

	if (env->t_batch == NULL)
		return;
	TAILQ_FOREACH(br, &env->t_batch->tb_replies, br_entry)
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
	tb->tb_count++;
	return 0;
}

enum tspdb_result
tspd_batch_telemetry(struct tspd *env, struct conn *c, uint64_t request_id,
    const struct tspdb_session *s, uint64_t seq, uint64_t tx_seq,
    const Qroam__Telemetry *t, Qroam__SessionMsg *reply, Qroam__SessionMsg *m5)
{
	struct tspd_batch	*tb = env->t_batch;
	enum tspdb_result	 res;
	int			 first;

	first = !tspdb_batch_open(env->t_db);
	res = tspdb_batch_telemetry(env->t_db, s->s_vid, seq, tx_seq, t,
	    env->t_id, store_now_ms());
	if (res == TSPDB_OK &&
	    batch_queue(tb, c, request_id, s, seq, reply, m5) == -1)
		res = TSPDB_ERROR;
	if (res == TSPDB_ERROR || tb->tb_count >= BATCH_MAX)
		tspd_batch_flush(env);
	else if (first && tspdb_batch_open(env->t_db))
		event_active(tb->tb_commit, EV_TIMEOUT, 0);
	return res;
}
