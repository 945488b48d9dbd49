/*
 * The cloud bus between the instances of one region (cloudbus.h): one
 * libpq connection per instance, LISTEN on the region's channel, notes
 * sent with pg_notify in pipeline mode, sealed and opened under the
 * cloud's key stream.
 *
 * Why PostgreSQL LISTEN/NOTIFY and not TCP between instances: the
 * instances already share the database and know its address, and need
 * no address of each other (they come and go behind the balancer); the
 * database delivers a note to every listener at once, which is what a
 * note for "whichever instance holds the vehicle" needs.  The database is
 * not trusted with the notes: anyone who may NOTIFY on it can send text,
 * and only what opens under the stream is acted on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "crypto.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

#include "cloudbus.h"
#include "cloudnote.h"

#define CB_BACKOFF_MIN_MS	250
#define CB_BACKOFF_MAX_MS	8000
#define CB_CONNECT_WAIT_MS	10000	/* each step of connecting */
#define CB_INFLIGHT_MAX		4096	/* notes handed to libpq, unanswered */
#define CB_REFUSAL_MAX		48
#define CB_APPNAME		"qroam-cloudbus"	/* pg_stat_activity */

enum cb_state {
	CB_WAIT,		/* not connected; the backoff timer runs */
	CB_CONNECTING,		/* PQconnectPoll in progress */
	CB_SUBSCRIBING,		/* LISTEN sent */
	CB_LISTENING,		/* in pipeline mode: notes come and go */
};

static const char *const cb_state_names[] = {
	"waiting", "connecting", "subscribing", "listening",
};

struct cloudbus {
	struct event_base	*cb_base;
	char			*cb_conninfo;
	char			 cb_self[NAME_MAXLEN + 1];
	char			 cb_channel[64];
	struct keystream	*cb_ks;
	cloudbus_note_cb	 cb_cb;
	void			*cb_arg;
	enum cb_state		 cb_state;
	PGconn			*cb_conn;
	struct event		*cb_ev;		/* connecting: one wait */
	struct event		*cb_rev;	/* subscribed: reads */
	struct event		*cb_wev;	/* subscribed: flush */
	struct event		*cb_timer;	/* backoff */
	int			 cb_backoff_ms;
	int			 cb_listen_failed;
	size_t			 cb_inflight;	/* pipeline syncs unanswered */
	uint64_t		 cb_sent;
	uint64_t		 cb_opened;
	uint64_t		 cb_refused;
};

static void	cb_connect(struct cloudbus *);
static void	cb_read_cb(evutil_socket_t, short, void *);

static void
cb_set_state(struct cloudbus *b, enum cb_state st)
{
	if (b->cb_state != st)
		log_debug("cloud bus: %s -> %s", cb_state_names[b->cb_state],
		    cb_state_names[st]);
	b->cb_state = st;
}

/* Delete the connection's events (freed before the next are made). */
static void
cb_events_del(struct cloudbus *b)
{
	if (b->cb_ev != NULL)
		event_del(b->cb_ev);
	if (b->cb_rev != NULL)
		event_del(b->cb_rev);
	if (b->cb_wev != NULL)
		event_del(b->cb_wev);
}

static void
cb_events_free(struct cloudbus *b)
{
	cb_events_del(b);
	if (b->cb_ev != NULL)
		event_free(b->cb_ev);
	if (b->cb_rev != NULL)
		event_free(b->cb_rev);
	if (b->cb_wev != NULL)
		event_free(b->cb_wev);
	b->cb_ev = b->cb_rev = b->cb_wev = NULL;
}

/*
 * The connection failed or was lost (why): close it and try again after
 * the backoff, which doubles up to its maximum.
 */
static void
cb_drop(struct cloudbus *b, const char *why)
{
	struct timeval	 tv;
	char		 msg[256];

	snprintf(msg, sizeof(msg), "%s", why);
	msg[strcspn(msg, "\n")] = '\0';
	cb_events_del(b);
	if (b->cb_conn != NULL)
		PQfinish(b->cb_conn);
	b->cb_conn = NULL;
	b->cb_inflight = 0;
	log_warnx("cloud bus: %s; connecting again in %dms", msg,
	    b->cb_backoff_ms);
	cb_set_state(b, CB_WAIT);
	tv.tv_sec = b->cb_backoff_ms / 1000;
	tv.tv_usec = (b->cb_backoff_ms % 1000) * 1000;
	evtimer_add(b->cb_timer, &tv);
	if ((b->cb_backoff_ms *= 2) > CB_BACKOFF_MAX_MS)
		b->cb_backoff_ms = CB_BACKOFF_MAX_MS;
}

static void
cb_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	cb_connect(arg);
}

/* Send what libpq holds; wait for the socket if it cannot take it all. */
static void
cb_flush(struct cloudbus *b)
{
	int	 r;

	if ((r = PQflush(b->cb_conn)) == 1)
		event_add(b->cb_wev, NULL);
	else if (r == -1)
		cb_drop(b, PQerrorMessage(b->cb_conn));
}

static void
cb_write_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	cb_flush(arg);
}

/* Connected: LISTEN on the channel, reading and flushing on events. */
static void
cb_subscribe(struct cloudbus *b)
{
	char	 sql[96];
	int	 fd = PQsocket(b->cb_conn);

	if (b->cb_ev != NULL)	/* ours: not freed in its own callback */
		event_del(b->cb_ev);
	snprintf(sql, sizeof(sql), "LISTEN %s", b->cb_channel);
	b->cb_listen_failed = 0;
	if ((b->cb_rev = event_new(b->cb_base, fd, EV_READ | EV_PERSIST,
	    cb_read_cb, b)) == NULL || (b->cb_wev = event_new(b->cb_base, fd,
	    EV_WRITE, cb_write_cb, b)) == NULL ||
	    event_add(b->cb_rev, NULL) == -1) {
		cb_drop(b, "cannot watch the connection");
		return;
	}
	if (PQsendQuery(b->cb_conn, sql) == 0) {
		cb_drop(b, PQerrorMessage(b->cb_conn));
		return;
	}
	cb_set_state(b, CB_SUBSCRIBING);
	cb_flush(b);
}

static void	cb_connect_cb(evutil_socket_t, short, void *);

/*
 * Wait for the socket as PQconnectPoll asked (it may change socket): the
 * one event of connecting, made once and assigned again for each wait
 * (it is not pending then, and is not freed in its own callback).
 */
static void
cb_connect_wait(struct cloudbus *b, PostgresPollingStatusType st)
{
	struct timeval	 tv = { CB_CONNECT_WAIT_MS / 1000, 0 };
	short		 what;

	what = st == PGRES_POLLING_READING ? EV_READ : EV_WRITE;
	if (b->cb_ev == NULL)
		b->cb_ev = event_new(b->cb_base, PQsocket(b->cb_conn), what,
		    cb_connect_cb, b);
	else if (event_assign(b->cb_ev, b->cb_base, PQsocket(b->cb_conn),
	    what, cb_connect_cb, b) == -1) {
		cb_drop(b, "cannot watch the connection");
		return;
	}
	if (b->cb_ev == NULL || event_add(b->cb_ev, &tv) == -1)
		cb_drop(b, "cannot watch the connection");
}

static void
cb_connect_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct cloudbus			*b = arg;
	PostgresPollingStatusType	 st;

	(void)fd;
	if (ev & EV_TIMEOUT) {
		cb_drop(b, "connecting timed out");
		return;
	}
	switch ((st = PQconnectPoll(b->cb_conn))) {
	case PGRES_POLLING_OK:
		cb_subscribe(b);
		break;
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		cb_connect_wait(b, st);
		break;
	default:
		cb_drop(b, PQerrorMessage(b->cb_conn));
		break;
	}
}

/* The server's notices go to the log at debug level. */
static void
cb_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("cloud bus: PostgreSQL: %.*s", (int)strcspn(message, "\n"),
	    message);
}

/*
 * Start connecting, without blocking: PQconnectStartParams, then polls.
 * The store's connection string, as the application "qroam-cloudbus".
 */
static void
cb_connect(struct cloudbus *b)
{
	const char *const	 keys[] = { "dbname", "application_name", NULL };
	const char		*vals[] = { b->cb_conninfo, CB_APPNAME, NULL };

	cb_events_free(b);	/* in the timer's callback, not theirs */
	if ((b->cb_conn = PQconnectStartParams(keys, vals, 1)) == NULL) {
		cb_drop(b, "no memory for a connection");
		return;
	}
	if (PQstatus(b->cb_conn) == CONNECTION_BAD ||
	    PQsetnonblocking(b->cb_conn, 1) == -1) {
		cb_drop(b, PQerrorMessage(b->cb_conn));
		return;
	}
	PQsetNoticeProcessor(b->cb_conn, cb_notice, NULL);
	cb_set_state(b, CB_CONNECTING);
	cb_connect_wait(b, PGRES_POLLING_WRITING);
}

/* Count and log a refused note; it changes nothing else. */
static void
cb_refuse(struct cloudbus *b, const char *from, const char *why)
{
	char	 label[CB_REFUSAL_MAX];
	size_t	 i;

	snprintf(label, sizeof(label), "cloud_%s", why);
	for (i = 0; label[i] != '\0'; i++)
		if (label[i] == ' ')
			label[i] = '_';
	metrics_refusal(label);
	b->cb_refused++;
	log_warnx("cloud bus: note from %s refused: %s", from, why);
}

/* Open the sealed bytes of n and hand the CloudNote to the callback. */
static void
cb_open(struct cloudbus *b, const struct cloudnote *n)
{
	Qroam__CloudNote	*note;
	uint8_t			*pt;
	size_t			 ptlen = 0;
	uint64_t		 now = store_now_ms();
	const char		*why;

	if ((pt = malloc(n->cn_len)) == NULL) {
		log_warnx("cloud bus: no memory for a note from %s",
		    n->cn_from);
		return;
	}
	keystream_step(b->cb_ks, (int64_t)now);
	if (keystream_open(b->cb_ks, (int64_t)now, n->cn_from, n->cn_to,
	    n->cn_sealed, n->cn_len, pt, n->cn_len, &ptlen, &why) == -1) {
		cb_refuse(b, n->cn_from, why);
		free(pt);
		return;
	}
	note = qroam__cloud_note__unpack(NULL, ptlen, pt);
	crypto_wipe(pt, ptlen);
	free(pt);
	if (note == NULL)
		cb_refuse(b, n->cn_from, "bad note");
	else if (note->body_case == QROAM__CLOUD_NOTE__BODY__NOT_SET)
		cb_refuse(b, n->cn_from, "unknown note");
	else {
		b->cb_opened++;
		b->cb_cb(b->cb_arg, n->cn_from, note);
	}
	if (note != NULL)
		qroam__cloud_note__free_unpacked(note, NULL);
}

/* One NOTIFY on the channel: ours, for another instance, or to open. */
static void
cb_notify(struct cloudbus *b, const PGnotify *pn)
{
	struct cloudnote	 n;
	const char		*why;

	if (pn->be_pid == PQbackendPID(b->cb_conn) ||
	    strcmp(pn->relname, b->cb_channel) != 0)
		return;
	if (cloudnote_parse(pn->extra, &n, &why) == -1) {
		cb_refuse(b, "?", why);
		return;
	}
	if (strcmp(n.cn_from, b->cb_self) == 0)
		;	/* ours, sent on another connection of this name */
	else if (strcmp(n.cn_to, CLOUDNOTE_ALL) != 0 &&
	    strcmp(n.cn_to, b->cb_self) != 0)
		log_debug("cloud bus: note from %s for %s", n.cn_from,
		    n.cn_to);
	else
		cb_open(b, &n);
	cloudnote_clear(&n);
}

/* Subscribing: the LISTEN's results; once done, enter pipeline mode. */
static int
cb_subscribed(struct cloudbus *b)
{
	PGresult	*r;

	while (!PQisBusy(b->cb_conn)) {
		if ((r = PQgetResult(b->cb_conn)) != NULL) {
			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				log_warnx("cloud bus: LISTEN: %s",
				    PQresultErrorMessage(r));
				b->cb_listen_failed = 1;
			}
			PQclear(r);
			continue;
		}
		if (b->cb_listen_failed || PQenterPipelineMode(b->cb_conn) ==
		    0) {
			cb_drop(b, "cannot listen on the channel");
			return -1;
		}
		cb_set_state(b, CB_LISTENING);
		b->cb_backoff_ms = CB_BACKOFF_MIN_MS;
		log_info("cloud bus: listening on %s as %s", b->cb_channel,
		    b->cb_self);
		break;
	}
	return 0;
}

/* Listening: the answers of our pg_notify calls (errors are logged). */
static void
cb_answers(struct cloudbus *b)
{
	PGresult	*r;

	while (b->cb_inflight > 0 && !PQisBusy(b->cb_conn)) {
		if ((r = PQgetResult(b->cb_conn)) == NULL)
			continue;
		switch (PQresultStatus(r)) {
		case PGRES_PIPELINE_SYNC:
			b->cb_inflight--;
			break;
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
		case PGRES_PIPELINE_ABORTED:
			break;
		default:
			log_warnx("cloud bus: a note was not sent: %s",
			    PQresultErrorMessage(r));
			break;
		}
		PQclear(r);
	}
}

static void
cb_read_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct cloudbus	*b = arg;
	PGnotify	*pn;

	(void)fd;
	(void)ev;
	if (PQconsumeInput(b->cb_conn) == 0) {
		cb_drop(b, PQerrorMessage(b->cb_conn));
		return;
	}
	if (b->cb_state == CB_SUBSCRIBING && cb_subscribed(b) == -1)
		return;
	if (b->cb_state == CB_LISTENING)
		cb_answers(b);
	while ((pn = PQnotifies(b->cb_conn)) != NULL) {
		cb_notify(b, pn);
		PQfreemem(pn);
	}
	if (PQstatus(b->cb_conn) == CONNECTION_BAD)
		cb_drop(b, "the connection to PostgreSQL is lost");
}

/* "qroam_cloud_<tsp_id>" with "." and "-" as "_": an identifier. */
static void
cb_channel_name(const char *tsp_id, char *out, size_t len)
{
	size_t	 i;

	snprintf(out, len, "qroam_cloud_%s", tsp_id);
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] == '.' || out[i] == '-')
			out[i] = '_';
}

struct cloudbus *
cloudbus_new(struct event_base *base, const struct cloudbus_opts *o,
    cloudbus_note_cb cb, void *arg)
{
	struct cloudbus	*b;

	if (!id_valid_name(o->cbo_instance) || !id_valid_name(o->cbo_tsp_id))
		return NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->cb_base = base;
	b->cb_cb = cb;
	b->cb_arg = arg;
	b->cb_backoff_ms = CB_BACKOFF_MIN_MS;
	snprintf(b->cb_self, sizeof(b->cb_self), "%s", o->cbo_instance);
	cb_channel_name(o->cbo_tsp_id, b->cb_channel, sizeof(b->cb_channel));
	if ((b->cb_conninfo = strdup(o->cbo_conninfo)) == NULL ||
	    (b->cb_timer = evtimer_new(base, cb_timer_cb, b)) == NULL ||
	    (b->cb_ks = keystream_new(o->cbo_k0, o->cbo_t0_ms, o->cbo_dt_ms,
	    o->cbo_tsp_id)) == NULL) {
		cloudbus_free(b);
		return NULL;
	}
	if (keystream_step(b->cb_ks, (int64_t)store_now_ms()) == -1)
		log_warnx("cloud bus: the clock is before cloud_epoch: nothing "
		    "is sent or opened until then");
	cb_connect(b);
	return b;
}

void
cloudbus_free(struct cloudbus *b)
{
	if (b == NULL)
		return;
	cb_events_free(b);
	if (b->cb_timer != NULL)
		event_free(b->cb_timer);
	if (b->cb_conn != NULL)
		PQfinish(b->cb_conn);
	if (b->cb_conninfo != NULL) {
		crypto_wipe(b->cb_conninfo, strlen(b->cb_conninfo));
		free(b->cb_conninfo);
	}
	keystream_free(b->cb_ks);
	free(b);
}

/* Seal the packed note pt for to and format its text into text. */
static int
cb_seal(struct cloudbus *b, const char *to, const uint8_t *pt, size_t ptlen,
    char *text, size_t textsize)
{
	uint8_t		 sealed[CLOUDNOTE_SEALED_MAX];
	uint64_t	 now = store_now_ms();
	size_t		 len;
	int		 rc;

	keystream_step(b->cb_ks, (int64_t)now);
	rc = keystream_seal(b->cb_ks, (int64_t)now, b->cb_self, to, pt, ptlen,
	    sealed, sizeof(sealed), &len) == -1 ? -1 :
	    cloudnote_format(b->cb_self, to, sealed, len, text, textsize);
	crypto_wipe(sealed, sizeof(sealed));
	return rc;
}

int
cloudbus_send(struct cloudbus *b, const char *to,
    const Qroam__CloudNote *note)
{
	static char	 text[CLOUDNOTE_TEXT_MAX + 1];
	uint8_t		 pt[CLOUDNOTE_SEALED_MAX];
	const char	*v[2] = { b->cb_channel, text };
	size_t		 len;
	int		 rc;

	if (b->cb_state != CB_LISTENING || b->cb_inflight >= CB_INFLIGHT_MAX) {
		log_warnx("cloud bus: not %s, a note is not sent",
		    b->cb_state != CB_LISTENING ? "connected" : "keeping up");
		return -1;
	}
	if ((len = qroam__cloud_note__get_packed_size(note)) + KS_OVERHEAD >
	    sizeof(pt)) {
		log_warnx("cloud bus: a note of %zu bytes is too large", len);
		return -1;
	}
	qroam__cloud_note__pack(note, pt);
	rc = cb_seal(b, to, pt, len, text, sizeof(text));
	crypto_wipe(pt, len);
	if (rc == -1) {
		log_warnx("cloud bus: cannot seal a note for %s", to);
		return -1;
	}
	if (PQsendQueryParams(b->cb_conn, "SELECT pg_notify($1, $2)", 2, NULL,
	    v, NULL, NULL, 0) == 0 || PQpipelineSync(b->cb_conn) == 0) {
		cb_drop(b, PQerrorMessage(b->cb_conn));
		return -1;
	}
	b->cb_inflight++;
	b->cb_sent++;
	cb_flush(b);
	return 0;
}

int
cloudbus_listening(const struct cloudbus *b)
{
	return b != NULL && b->cb_state == CB_LISTENING;
}

json_t *
cloudbus_json(const struct cloudbus *b)
{
	uint8_t		 kn[KS_KEYLEN];
	int64_t		 n = -1;

	if (keystream_checkpoint(b->cb_ks, &n, kn) == -1)
		n = -1;
	crypto_wipe(kn, sizeof(kn));
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}",
	    "state", cb_state_names[b->cb_state], "channel", b->cb_channel,
	    "instance", b->cb_self, "step", (json_int_t)n,
	    "sent", (json_int_t)b->cb_sent, "opened", (json_int_t)b->cb_opened,
	    "refused", (json_int_t)b->cb_refused);
}
