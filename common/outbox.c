/*
 * Durable outbox to every TSP (and to one more party, such as kmpd).  One delivery loop per destination: connect
 * over mutual TLS (the server must be that TSP), send the oldest message,
 * wait for Status OK, delete it, send the next.  Any failure closes the
 * connection and retries after an exponential backoff.
 */
#include <stdlib.h>
#include <string.h>

#include "atrest.h"
#include "conn.h"
#include "crypto.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "outbox.h"
#include "store.h"

#define OB_BACKOFF_MIN_MS	200
#define OB_BACKOFF_MAX_MS	5000
#define OB_REPLY_MS		10000

const char outbox_schema[] =
	"CREATE TABLE outbox ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" dest TEXT NOT NULL,"
	" type INTEGER NOT NULL,"
	" payload BLOB NOT NULL,"
	" created_ms INTEGER NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX outbox_dest ON outbox(dest, id);";

enum ob_state {
	OB_IDLE,	/* nothing in flight, no connection */
	OB_WAIT,	/* backoff timer running */
	OB_BUSY,	/* connection open or opening */
};

struct ob_dest {
	struct outbox		*od_ob;
	const char		*od_id;		/* a TSP ID, or the platform's name */
	const struct endpoint	*od_ep;		/* its provisioning address */
	const char		*od_cn;		/* its certificate's CN, or NULL */
	const char		*od_role;	/* and role */
	int			 od_all;	/* a TSP: outbox_enqueue_all's */
	enum ob_state		 od_state;
	struct conn		*od_conn;
	struct event		*od_timer;
	int			 od_backoff_ms;
	int64_t			 od_inflight;	/* outbox id awaiting its ack, 0 none */
};

struct outbox {
	const struct atrest	*ob_atrest;	/* NULL: payloads in plain */
	struct event_base	*ob_base;
	sqlite3			*ob_db;
	struct conn_opts	 ob_opts;
	struct ob_dest		*ob_dests;
	size_t			 ob_ndests, ob_room;
	sqlite3_stmt		*ob_insert;
	sqlite3_stmt		*ob_head;
	sqlite3_stmt		*ob_delete;
	sqlite3_stmt		*ob_attempt;
	sqlite3_stmt		*ob_count;
	sqlite3_stmt		*ob_bydest;
	struct metric		*ob_gauge;
	struct metric		*ob_age;	/* of the oldest message */
};

static void	ob_start(struct ob_dest *);

static void
ob_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct ob_dest	*od = arg;

	(void)fd;
	(void)ev;
	od->od_state = OB_IDLE;
	ob_start(od);
}

/* Schedule the next try after a growing delay. */
static void
ob_retry(struct ob_dest *od)
{
	struct timeval	tv;

	od->od_state = OB_WAIT;
	tv.tv_sec = od->od_backoff_ms / 1000;
	tv.tv_usec = (od->od_backoff_ms % 1000) * 1000;
	evtimer_add(od->od_timer, &tv);
	od->od_backoff_ms *= 2;
	if (od->od_backoff_ms > OB_BACKOFF_MAX_MS)
		od->od_backoff_ms = OB_BACKOFF_MAX_MS;
}

/*
 * Send the oldest message for od on its open connection.  Returns 1 if one
 * was sent, 0 if the queue is empty, -1 on failure.
 */
/* The row's identity a sealed payload is bound to. */
static void
ob_aad(char *aad, size_t len, const char *dest, uint32_t type, int64_t ms)
{
	snprintf(aad, len, "outbox|%s|%u|%lld", dest, type, (long long)ms);
}

/*
 * Frame the head row of st: its payload opened if sealed; 0 or -1.
 */
static int
ob_frame(struct ob_dest *od, sqlite3_stmt *st, uint8_t **buf, size_t *n)
{
	const uint8_t	*pl;
	uint8_t		*open = NULL;
	size_t		 len, olen = 0;
	uint32_t	 type = (uint32_t)sqlite3_column_int(st, 1);
	char		 aad[128];
	int		 rc;

	if ((pl = sqlite3_column_blob(st, 2)) == NULL)
		pl = (const uint8_t *)"";	/* empty, yet present */
	len = (size_t)sqlite3_column_bytes(st, 2);
	if (od->od_ob->ob_atrest != NULL && atrest_is_sealed(pl, len)) {
		ob_aad(aad, sizeof(aad), od->od_id, type,
		    sqlite3_column_int64(st, 3));
		if (atrest_open(od->od_ob->ob_atrest, aad, pl, len, &open,
		    &olen) == -1) {
			log_warnx("outbox: message %lld for %s does not open "
			    "under the store key", (long long)od->od_inflight,
			    od->od_id);
			return -1;
		}
		pl = open;
		len = olen;
	}
	rc = frame_encode_payload(type, (uint64_t)od->od_inflight, pl, len,
	    SIZE_MAX, buf, n);
	if (open != NULL) {
		crypto_wipe(open, olen);
		free(open);
	}
	return rc;
}

static int
ob_send_head(struct ob_dest *od)
{
	struct outbox		*ob = od->od_ob;
	sqlite3_stmt		*st = ob->ob_head;
	uint8_t			*buf;
	size_t			 n;
	int			 rc, ret = 0;

	sqlite3_bind_text(st, 1, od->od_id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		od->od_inflight = sqlite3_column_int64(st, 0);
		ret = -1;
		if (ob_frame(od, st, &buf, &n) == 0) {
			if (conn_send_raw(od->od_conn, buf, n) == 0)
				ret = 1;
			crypto_wipe(buf, n);
			free(buf);
		}
	} else if (rc != SQLITE_DONE) {
		log_warnx("outbox: %s", sqlite3_errmsg(ob->ob_db));
		ret = -1;
	}
	store_reset(st);
	return ret;
}

/* Send the next message, or close the connection when the queue is empty. */
static void
ob_next(struct ob_dest *od)
{
	switch (ob_send_head(od)) {
	case 1:
		return;
	case 0:
		od->od_inflight = 0;
		conn_close(od->od_conn, "outbox drained");
		return;
	default:
		conn_close(od->od_conn, "cannot send outbox message");
	}
}

static void
ob_on_connected(struct conn *c, void *arg)
{
	struct ob_dest	*od = arg;

	(void)c;
	log_debug("outbox: connected to %s", od->od_id);
	ob_next(od);
}

/* A TSP answered: OK removes the message for good. */
static void
ob_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct ob_dest	*od = arg;
	struct outbox	*ob = od->od_ob;
	Qroam__Status	*st;

	if (f->f_type != QROAM__MSG_TYPE__MT_STATUS || od->od_inflight == 0 ||
	    f->f_request_id != (uint64_t)od->od_inflight ||
	    (st = (Qroam__Status *)frame_unpack(f, &qroam__status__descriptor)) == NULL) {
		conn_close(c, "unexpected reply");
		return;
	}
	if (st->code != QROAM__STATUS_CODE__OK) {
		log_warnx("outbox: %s refused message %lld: %s %s",
		    od->od_id, (long long)od->od_inflight,
		    msg_status_name(st->code), st->detail ? st->detail : "");
		sqlite3_bind_int64(ob->ob_attempt, 1, od->od_inflight);
		store_step_done(ob->ob_attempt, NULL);
		qroam__status__free_unpacked(st, NULL);
		conn_close(c, "message refused");
		return;
	}
	qroam__status__free_unpacked(st, NULL);
	sqlite3_bind_int64(ob->ob_delete, 1, od->od_inflight);
	if (store_step_done(ob->ob_delete, NULL) == -1) {
		conn_close(c, "cannot delete delivered message");
		return;
	}
	log_info("outbox: delivered message %lld to %s", (long long)od->od_inflight,
	    od->od_id);
	od->od_inflight = 0;
	od->od_backoff_ms = OB_BACKOFF_MIN_MS;
	ob_next(od);
}

static void
ob_on_close(struct conn *c, const char *reason, void *arg)
{
	struct ob_dest	*od = arg;

	(void)c;
	od->od_conn = NULL;
	if (od->od_inflight == 0 && strcmp(reason, "outbox drained") == 0) {
		od->od_state = OB_IDLE;
		/* Something may have been queued while we were closing. */
		ob_start(od);
		return;
	}
	log_warnx("outbox: delivery to %s interrupted: %s (retry in %d ms)",
	    od->od_id, reason, od->od_backoff_ms);
	od->od_inflight = 0;
	ob_retry(od);
}

static const struct conn_cb ob_cb = {
	.on_connected = ob_on_connected,
	.on_frame = ob_on_frame,
	.on_close = ob_on_close,
};

/* 1 if anything is queued for od. */
static int
ob_pending(struct ob_dest *od)
{
	sqlite3_stmt	*st = od->od_ob->ob_head;
	int		 rc;

	sqlite3_bind_text(st, 1, od->od_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	store_reset(st);
	return rc == SQLITE_ROW;
}

/* Open a delivery connection to od if it is idle and has work. */
static void
ob_start(struct ob_dest *od)
{
	struct outbox	*ob = od->od_ob;
	struct conn_opts o = ob->ob_opts;

	if (od->od_state != OB_IDLE || !ob_pending(od))
		return;
	o.co_peer_cn = od->od_cn;
	o.co_peer_role = od->od_role;
	od->od_state = OB_BUSY;
	od->od_conn = conn_connect(ob->ob_base, od->od_ep->ep_host,
	    od->od_ep->ep_port, &o, &ob_cb, od);
	if (od->od_conn == NULL)
		ob_retry(od);
}

/*
 * Scrape time: the depth and the age of the oldest message of every
 * destination from the store (0 and 0 when nothing waits).
 */
static void
outbox_collect(void *arg)
{
	struct outbox	*ob = arg;
	const char	*dest;
	uint64_t	 now = store_now_ms(), created;
	size_t		 i;

	for (i = 0; i < ob->ob_ndests; i++) {
		metric_set(ob->ob_gauge, ob->ob_dests[i].od_id, 0);
		metric_set(ob->ob_age, ob->ob_dests[i].od_id, 0);
	}
	while (sqlite3_step(ob->ob_bydest) == SQLITE_ROW) {
		dest = (const char *)sqlite3_column_text(ob->ob_bydest, 0);
		created = (uint64_t)sqlite3_column_int64(ob->ob_bydest, 3);
		metric_set(ob->ob_gauge, dest,
		    (double)sqlite3_column_int64(ob->ob_bydest, 1));
		metric_set(ob->ob_age, dest, now > created ?
		    (double)(now - created) / 1000.0 : 0.0);
	}
	store_reset(ob->ob_bydest);
}

/* The next destination: delivery state, timer and metrics. */
static void
ob_dest_init(struct outbox *ob, const char *id, const struct endpoint *ep,
    const char *cn, const char *role, int all)
{
	struct ob_dest	*od = &ob->ob_dests[ob->ob_ndests++];

	od->od_ob = ob;
	od->od_id = id;
	od->od_ep = ep;
	od->od_cn = cn;
	od->od_role = role;
	od->od_all = all;
	od->od_backoff_ms = OB_BACKOFF_MIN_MS;
	if ((od->od_timer = evtimer_new(ob->ob_base, ob_timer_cb, od)) == NULL)
		fatalx("evtimer_new");
	metric_set(ob->ob_gauge, id, 0);
	metric_set(ob->ob_age, id, 0);
}

struct outbox *
outbox_new(struct event_base *base, sqlite3 *db, const struct topo *topo,
    SSL_CTX *tls, size_t max_frame, struct conn_barrier *barrier)
{
	struct outbox	*ob;
	size_t		 i;

	ob = xcalloc(1, sizeof(*ob));
	ob->ob_base = base;
	ob->ob_db = db;
	ob->ob_opts.co_tls = tls;
	ob->ob_opts.co_max_frame = max_frame;
	ob->ob_opts.co_idle_ms = OB_REPLY_MS;
	ob->ob_opts.co_connect_ms = OB_REPLY_MS;
	ob->ob_opts.co_barrier = barrier;
	ob->ob_insert = store_prepare(db, "INSERT INTO outbox"
	    " (dest, type, payload, created_ms) VALUES (?, ?, ?, ?)");
	ob->ob_head = store_prepare(db, "SELECT id, type, payload, created_ms"
	    " FROM outbox WHERE dest = ? ORDER BY id LIMIT 1");
	ob->ob_delete = store_prepare(db, "DELETE FROM outbox WHERE id = ?");
	ob->ob_attempt = store_prepare(db,
	    "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?");
	ob->ob_count = store_prepare(db, "SELECT count(*) FROM outbox");
	ob->ob_bydest = store_prepare(db, "SELECT dest, count(*),"
	    " max(attempts), min(created_ms) FROM outbox GROUP BY dest");
	ob->ob_gauge = metric_gauge("qroam_outbox_depth",
	    "Messages stored and not yet acknowledged, by TSP.", "dest");
	ob->ob_age = metric_gauge("qroam_outbox_oldest_seconds",
	    "Age of the oldest message not yet acknowledged, by TSP "
	    "(0 when none waits).", "dest");
	/* Every TSP, and room for one more (outbox_add_dest). */
	ob->ob_dests = xcalloc(topo->t_ntsps + 1, sizeof(*ob->ob_dests));
	for (i = 0; i < topo->t_ntsps; i++)
		ob_dest_init(ob, topo->t_tsps[i].tt_id,
		    &topo->t_tsps[i].tt_provision, topo->t_tsps[i].tt_id, "tsp",
		    1);
	ob->ob_room = topo->t_ntsps + 1;
	metrics_collector_add(outbox_collect, ob);
	return ob;
}

int
outbox_add_dest(struct outbox *ob, const char *id, const struct endpoint *ep,
    const char *role)
{
	size_t	i;

	for (i = 0; i < ob->ob_ndests; i++)
		if (strcmp(ob->ob_dests[i].od_id, id) == 0)
			return -1;
	if (ob->ob_ndests == ob->ob_room)
		return -1;
	ob_dest_init(ob, id, ep, NULL, role, 0);
	return 0;
}

int
outbox_enqueue(struct outbox *ob, const char *dest, uint32_t type,
    const uint8_t *payload, size_t len)
{
	uint64_t	 now = store_now_ms();
	uint8_t		*sealed = NULL;
	size_t		 slen = 0;
	char		 aad[128];
	int		 rc;

	if (ob->ob_atrest != NULL) {
		ob_aad(aad, sizeof(aad), dest, type, (int64_t)now);
		if (atrest_seal(ob->ob_atrest, aad, payload, len, &sealed,
		    &slen) == -1)
			return -1;
		payload = sealed;
		len = slen;
	}
	sqlite3_bind_text(ob->ob_insert, 1, dest, -1, SQLITE_STATIC);
	sqlite3_bind_int(ob->ob_insert, 2, (int)type);
	sqlite3_bind_blob(ob->ob_insert, 3, payload, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(ob->ob_insert, 4, (sqlite3_int64)now);
	rc = store_step_done(ob->ob_insert, NULL);
	free(sealed);
	return rc;
}

void
outbox_free(struct outbox *ob)
{
	size_t	i;

	if (ob == NULL)
		return;
	metrics_collector_remove(outbox_collect, ob);
	for (i = 0; i < ob->ob_ndests; i++) {
		event_free(ob->ob_dests[i].od_timer);
		if (ob->ob_dests[i].od_conn != NULL)
			conn_free_sync(ob->ob_dests[i].od_conn);
	}
	free(ob->ob_dests);
	free(ob);
}

void
outbox_set_atrest(struct outbox *ob, const struct atrest *ar)
{
	ob->ob_atrest = ar;
}

int
outbox_enqueue_all(struct outbox *ob, uint32_t type, const uint8_t *payload,
    size_t len)
{
	size_t	i;

	for (i = 0; i < ob->ob_ndests; i++)
		if (ob->ob_dests[i].od_all && outbox_enqueue(ob,
		    ob->ob_dests[i].od_id, type, payload, len) == -1)
			return -1;
	return 0;
}

void
outbox_kick(struct outbox *ob)
{
	size_t	i;

	for (i = 0; i < ob->ob_ndests; i++)
		ob_start(&ob->ob_dests[i]);
}

uint64_t
outbox_depth(struct outbox *ob)
{
	uint64_t	n = 0;

	if (sqlite3_step(ob->ob_count) == SQLITE_ROW)
		n = (uint64_t)sqlite3_column_int64(ob->ob_count, 0);
	store_reset(ob->ob_count);
	return n;
}

json_t *
outbox_json(struct outbox *ob)
{
	json_t		*a, *o;
	const char	*dest;
	size_t		 i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < ob->ob_ndests; i++) {
		o = json_pack("{s:s, s:I, s:I, s:n}", "dest",
		    ob->ob_dests[i].od_id, "pending", (json_int_t)0,
		    "attempts", (json_int_t)0, "oldest_ms");
		if (o == NULL || json_array_append_new(a, o) == -1)
			goto fail;
	}
	while (sqlite3_step(ob->ob_bydest) == SQLITE_ROW) {
		dest = (const char *)sqlite3_column_text(ob->ob_bydest, 0);
		for (i = 0; i < ob->ob_ndests; i++)
			if (dest != NULL &&
			    strcmp(ob->ob_dests[i].od_id, dest) == 0)
				break;
		if (i == ob->ob_ndests)
			continue;
		o = json_array_get(a, i);
		json_object_set_new(o, "pending", json_integer(
		    sqlite3_column_int64(ob->ob_bydest, 1)));
		json_object_set_new(o, "attempts", json_integer(
		    sqlite3_column_int64(ob->ob_bydest, 2)));
		json_object_set_new(o, "oldest_ms", json_integer(
		    sqlite3_column_int64(ob->ob_bydest, 3)));
	}
	store_reset(ob->ob_bydest);
	return a;
 fail:
	json_decref(a);
	return NULL;
}
