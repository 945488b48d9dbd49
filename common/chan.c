/*
 * Long-lived channels (chan.h).  One state enum, changed only by
 * chan_set_state; one connection at a time; requests in a hash by
 * request_id and on one of two lists: waiting for the connection
 * (encoded, not sent) or sent on the current connection.  Losing the
 * connection fails the sent ones, a failed connect the waiting ones; the
 * channel itself never fails, it backs off and connects again.
 */
#include <sys/queue.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "log.h"
#include "metrics.h"

#define CHAN_NBUCKETS	256		/* request hash; a power of two */

enum chan_state {
	CHAN_CONNECTING,	/* TCP connect and TLS handshake under way */
	CHAN_OPEN,		/* requests flow; a quiet peer is probed */
	CHAN_BACKOFF,		/* lost or not reached: waiting to reconnect */
};

static const char *const chan_state_names[] = {
	"connecting", "open", "backoff",
};

struct chan_req {
	struct chan		*cr_chan;
	uint64_t		 cr_id;
	uint32_t		 cr_type;
	uint8_t			*cr_buf;	/* the encoded frame until sent */
	size_t			 cr_len;
	int			 cr_sent;
	chan_reply_cb		 cr_cb;
	void			*cr_arg;
	struct event		*cr_timer;
	int			 cr_timeout_ms;
	TAILQ_ENTRY(chan_req)	 cr_entry;	/* ch_waiting or ch_sent */
	TAILQ_ENTRY(chan_req)	 cr_hash;
};

TAILQ_HEAD(chan_reqs, chan_req);

struct chan {
	struct event_base	*ch_base;
	char			 ch_name[64];
	char			 ch_host[256];
	char			 ch_cn[65];
	char			 ch_role[33];
	uint16_t		 ch_port;
	struct conn_opts	 ch_copts;
	enum chan_state		 ch_state;	/* set by chan_set_state only */
	struct conn		*ch_conn;
	struct event		*ch_ping;	/* persistent while open */
	struct event		*ch_retry;	/* the backoff wait */
	int			 ch_ping_ms;
	int			 ch_backoff_ms;
	int			 ch_failures;	/* connects failed in a row */
	uint64_t		 ch_nconnects;
	uint64_t		 ch_next_id;
	size_t			 ch_npending;
	struct chan_reqs	 ch_waiting;
	struct chan_reqs	 ch_sent;
	struct chan_reqs	 ch_hash[CHAN_NBUCKETS];
};

static void	chan_connect(struct chan *);

/* The channels' metrics, by peer name, registered on first use. */
static struct metric *
chan_metric(int which)
{
	static struct metric	*m[3];

	if (m[0] == NULL) {
		m[0] = metric_counter("qroam_channel_connects_total",
		    "Connects completed by long-lived channels, by peer.",
		    "peer");
		m[1] = metric_counter("qroam_channel_losses_total",
		    "Open long-lived channels lost, by peer.", "peer");
		m[2] = metric_counter("qroam_channel_requests_failed_total",
		    "Channel requests ended without a reply, by peer.",
		    "peer");
	}
	return m[which];
}

static void
chan_ms_to_tv(int ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/*
 * The one place the state of ch changes, logged: opening at info level,
 * the first failure after an open or a loss as a warning, further failed
 * connects of a peer that stays away at debug level only.
 */
static void
chan_set_state(struct chan *ch, enum chan_state to, const char *why)
{
	enum chan_state	 from = ch->ch_state;

	ch->ch_state = to;
	if (to == CHAN_OPEN)
		log_info("channel %s (%s:%u): open%s", ch->ch_name, ch->ch_host,
		    ch->ch_port, ch->ch_nconnects > 0 ? " again" : "");
	else if (to == CHAN_BACKOFF && from == CHAN_OPEN)
		log_warnx("channel %s: lost: %s; reconnecting", ch->ch_name,
		    why);
	else if (to == CHAN_BACKOFF && ch->ch_failures == 1)
		log_warnx("channel %s (%s:%u): cannot connect: %s; retrying",
		    ch->ch_name, ch->ch_host, ch->ch_port, why);
	else
		log_debug("channel %s: %s -> %s%s%s", ch->ch_name,
		    chan_state_names[from], chan_state_names[to],
		    why != NULL ? ": " : "", why != NULL ? why : "");
}

static struct chan_reqs *
chan_bucket(struct chan *ch, uint64_t id)
{
	return &ch->ch_hash[id & (CHAN_NBUCKETS - 1)];
}

static struct chan_req *
chan_find(struct chan *ch, uint64_t id)
{
	struct chan_req	*r;

	TAILQ_FOREACH(r, chan_bucket(ch, id), cr_hash)
		if (r->cr_id == id)
			return r;
	return NULL;
}

/* Take r out of the channel and free it; its callback is the caller's. */
static void
chan_req_remove(struct chan_req *r)
{
	struct chan	*ch = r->cr_chan;

	TAILQ_REMOVE(r->cr_sent ? &ch->ch_sent : &ch->ch_waiting, r, cr_entry);
	TAILQ_REMOVE(chan_bucket(ch, r->cr_id), r, cr_hash);
	ch->ch_npending--;
	if (r->cr_timer != NULL)
		event_free(r->cr_timer);
	free(r->cr_buf);
	free(r);
}

/* End r without a reply: remove it, then tell its owner why. */
static void
chan_req_fail(struct chan_req *r, const char *why)
{
	chan_reply_cb	 cb = r->cr_cb;
	void		*arg = r->cr_arg;

	metric_inc(chan_metric(2), r->cr_chan->ch_name);
	chan_req_remove(r);
	cb(arg, NULL, why);
}

/*
 * Fail every request of list with "what peer: why".  One at a time from
 * the head, so callbacks may cancel other requests or make new ones.
 */
static void
chan_fail_list(struct chan *ch, struct chan_reqs *list, const char *what,
    const char *why)
{
	struct chan_req	*r;
	char		 reason[256];

	snprintf(reason, sizeof(reason), "%s %s: %s", what, ch->ch_name, why);
	while ((r = TAILQ_FIRST(list)) != NULL)
		chan_req_fail(r, reason);
}

static void
chan_req_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct chan_req	*r = arg;
	char		 why[128];

	(void)fd;
	(void)ev;
	snprintf(why, sizeof(why), "no answer from %s within %dms",
	    r->cr_chan->ch_name, r->cr_timeout_ms);
	chan_req_fail(r, why);
}

/* Put r on the wire and on the sent list; -1 if the connection refused. */
static int
chan_req_send(struct chan *ch, struct chan_req *r)
{
	if (conn_send_encoded(ch->ch_conn, r->cr_type, r->cr_buf,
	    r->cr_len) == -1)
		return -1;
	TAILQ_REMOVE(&ch->ch_waiting, r, cr_entry);
	TAILQ_INSERT_TAIL(&ch->ch_sent, r, cr_entry);
	r->cr_sent = 1;
	free(r->cr_buf);
	r->cr_buf = NULL;
	return 0;
}

/* Probe the peer; its pong (or any input) keeps the idle timeout away. */
static void
chan_ping_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct chan	*ch = arg;

	(void)fd;
	(void)ev;
	if (ch->ch_state == CHAN_OPEN &&
	    conn_send(ch->ch_conn, QROAM__MSG_TYPE__MT_PING, 0, NULL) == -1)
		conn_close(ch->ch_conn, "cannot send a ping");
}

/* Connected and identified: reset the backoff, send what waited. */
static void
chan_on_connected(struct conn *c, void *arg)
{
	struct chan	*ch = arg;
	struct chan_req	*r;
	struct timeval	 tv;

	if (ch == NULL)
		return;
	chan_set_state(ch, CHAN_OPEN, NULL);
	ch->ch_nconnects++;
	ch->ch_failures = 0;
	ch->ch_backoff_ms = CHAN_BACKOFF_MIN_MS;
	metric_inc(chan_metric(0), ch->ch_name);
	chan_ms_to_tv(ch->ch_ping_ms, &tv);
	evtimer_add(ch->ch_ping, &tv);
	while ((r = TAILQ_FIRST(&ch->ch_waiting)) != NULL)
		if (chan_req_send(ch, r) == -1) {
			conn_close(c, "cannot send a request");
			return;
		}
}

/* A frame: the reply of the request it names, or dropped. */
static void
chan_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct chan	*ch = arg;
	struct chan_req	*r;
	chan_reply_cb	 cb;
	void		*cbarg;

	(void)c;
	if (ch == NULL)
		return;
	if ((r = chan_find(ch, f->f_request_id)) == NULL || !r->cr_sent) {
		log_debug("channel %s: %s for no request (%" PRIu64 "), dropped",
		    ch->ch_name, frame_type_name(f->f_type), f->f_request_id);
		return;
	}
	cb = r->cr_cb;
	cbarg = r->cr_arg;
	chan_req_remove(r);
	cb(cbarg, f, NULL);
}

/* The connection ended: fail what it carried, back off, connect again. */
static void
chan_on_close(struct conn *c, const char *reason, void *arg)
{
	struct chan	*ch = arg;
	enum chan_state	 was;
	struct timeval	 tv;

	(void)c;
	if (ch == NULL)
		return;
	was = ch->ch_state;
	ch->ch_conn = NULL;
	evtimer_del(ch->ch_ping);
	if (was == CHAN_OPEN)
		metric_inc(chan_metric(1), ch->ch_name);
	else
		ch->ch_failures++;
	chan_set_state(ch, CHAN_BACKOFF, reason);
	chan_ms_to_tv(ch->ch_backoff_ms, &tv);
	evtimer_add(ch->ch_retry, &tv);
	if (ch->ch_backoff_ms < CHAN_BACKOFF_MAX_MS)
		ch->ch_backoff_ms *= 2;
	if (ch->ch_backoff_ms > CHAN_BACKOFF_MAX_MS)
		ch->ch_backoff_ms = CHAN_BACKOFF_MAX_MS;
	chan_fail_list(ch, &ch->ch_sent, "channel lost to", reason);
	chan_fail_list(ch, &ch->ch_waiting, "cannot connect to", reason);
}

static const struct conn_cb chan_conn_cb = {
	.on_connected = chan_on_connected,
	.on_frame = chan_on_frame,
	.on_close = chan_on_close,
};

static void
chan_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	chan_connect(arg);
}

/* Start a connect; a failure to start is reported like a failed connect. */
static void
chan_connect(struct chan *ch)
{
	chan_set_state(ch, CHAN_CONNECTING, NULL);
	ch->ch_conn = conn_connect(ch->ch_base, ch->ch_host, ch->ch_port,
	    &ch->ch_copts, &chan_conn_cb, ch);
	if (ch->ch_conn == NULL)
		chan_on_close(NULL, "cannot start a connection", ch);
}

struct chan *
chan_new(struct event_base *base, const struct chan_opts *o)
{
	struct chan	*ch;
	size_t		 i;

	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		return NULL;
	ch->ch_base = base;
	snprintf(ch->ch_name, sizeof(ch->ch_name), "%s", o->cho_name);
	snprintf(ch->ch_host, sizeof(ch->ch_host), "%s", o->cho_host);
	ch->ch_port = o->cho_port;
	ch->ch_copts = o->cho_conn;
	if (o->cho_conn.co_peer_cn != NULL) {
		snprintf(ch->ch_cn, sizeof(ch->ch_cn), "%s",
		    o->cho_conn.co_peer_cn);
		ch->ch_copts.co_peer_cn = ch->ch_cn;
	}
	if (o->cho_conn.co_peer_role != NULL) {
		snprintf(ch->ch_role, sizeof(ch->ch_role), "%s",
		    o->cho_conn.co_peer_role);
		ch->ch_copts.co_peer_role = ch->ch_role;
	}
	ch->ch_ping_ms = o->cho_ping_ms > 0 ? o->cho_ping_ms : CHAN_PING_MS;
	ch->ch_copts.co_idle_ms = ch->ch_ping_ms * CHAN_DEAD_PINGS;
	ch->ch_backoff_ms = CHAN_BACKOFF_MIN_MS;
	ch->ch_next_id = 1;
	TAILQ_INIT(&ch->ch_waiting);
	TAILQ_INIT(&ch->ch_sent);
	for (i = 0; i < CHAN_NBUCKETS; i++)
		TAILQ_INIT(&ch->ch_hash[i]);
	ch->ch_ping = event_new(base, -1, EV_PERSIST, chan_ping_cb, ch);
	ch->ch_retry = evtimer_new(base, chan_retry_cb, ch);
	if (ch->ch_ping == NULL || ch->ch_retry == NULL) {
		chan_free(ch);
		return NULL;
	}
	chan_connect(ch);
	return ch;
}

void
chan_free(struct chan *ch)
{
	struct chan_req	*r;

	if (ch == NULL)
		return;
	if (ch->ch_conn != NULL) {
		conn_set_arg(ch->ch_conn, NULL);
		conn_free_sync(ch->ch_conn);
	}
	while ((r = TAILQ_FIRST(&ch->ch_sent)) != NULL)
		chan_req_remove(r);
	while ((r = TAILQ_FIRST(&ch->ch_waiting)) != NULL)
		chan_req_remove(r);
	if (ch->ch_ping != NULL)
		event_free(ch->ch_ping);
	if (ch->ch_retry != NULL)
		event_free(ch->ch_retry);
	free(ch);
}

int
chan_request(struct chan *ch, uint32_t type, const ProtobufCMessage *msg,
    int timeout_ms, chan_reply_cb cb, void *arg, uint64_t *id)
{
	struct chan_req	*r;
	struct timeval	 tv;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -1;
	r->cr_chan = ch;
	r->cr_id = ch->ch_next_id++;
	r->cr_type = type;
	r->cr_cb = cb;
	r->cr_arg = arg;
	r->cr_timeout_ms = timeout_ms;
	if (frame_encode(type, r->cr_id, msg, ch->ch_copts.co_max_frame ?
	    ch->ch_copts.co_max_frame : FRAME_MAX_DEFAULT, &r->cr_buf,
	    &r->cr_len) == -1) {
		free(r);
		return -1;
	}
	if (timeout_ms > 0) {
		if ((r->cr_timer = evtimer_new(ch->ch_base, chan_req_timeout,
		    r)) == NULL) {
			free(r->cr_buf);
			free(r);
			return -1;
		}
		chan_ms_to_tv(timeout_ms, &tv);
		evtimer_add(r->cr_timer, &tv);
	}
	TAILQ_INSERT_TAIL(&ch->ch_waiting, r, cr_entry);
	TAILQ_INSERT_TAIL(chan_bucket(ch, r->cr_id), r, cr_hash);
	ch->ch_npending++;
	*id = r->cr_id;
	/* A refused send means the connection is going: its close fails r. */
	if (ch->ch_state == CHAN_OPEN && chan_req_send(ch, r) == -1)
		conn_close(ch->ch_conn, "cannot send a request");
	return 0;
}

void
chan_cancel(struct chan *ch, uint64_t id)
{
	struct chan_req	*r;

	if (ch != NULL && id != 0 && (r = chan_find(ch, id)) != NULL)
		chan_req_remove(r);
}

const char *
chan_name(const struct chan *ch)
{
	return ch->ch_name;
}

int
chan_is_open(const struct chan *ch)
{
	return ch->ch_state == CHAN_OPEN;
}

size_t
chan_npending(const struct chan *ch)
{
	return ch->ch_npending;
}

uint64_t
chan_nconnects(const struct chan *ch)
{
	return ch->ch_nconnects;
}

int
chan_is_to(const struct chan *ch, const char *host, uint16_t port)
{
	return ch->ch_port == port && strcmp(ch->ch_host, host) == 0;
}
