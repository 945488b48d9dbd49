/*
 * Framed connections over libevent bufferevents, plain TCP or TLS.
 *
 * Each connection has one state, one event callback into the owner and one
 * teardown path.  conn_close() only marks the connection; the owner's
 * on_close and the free run later from the event loop, so an object is
 * never freed inside its own callback.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "tls.h"

#define CONN_OUT_HIGH	(4u << 20)	/* stop reading while output is this big */
#define CONN_DRAIN_MS	5000		/* longest wait to flush before close */

enum conn_state {
	CONN_CONNECTING,	/* TCP connect or TLS handshake under way */
	CONN_OPEN,
	CONN_DRAINING,		/* closing once the output queue is empty */
	CONN_DEAD,		/* closed; waiting for the deferred free */
};

struct syncframe {
	struct frame		 sf_frame;
	STAILQ_ENTRY(syncframe)	 sf_entry;
};

struct conn {
	struct event_base	*c_base;
	struct bufferevent	*c_bev;
	struct listener		*c_listener;
	struct conn_cb		 c_cb;
	void			*c_arg;
	enum conn_state		 c_state;
	int			 c_tls;
	int			 c_idle_ms;
	size_t			 c_max_frame;
	const char		*c_want_cn;
	const char		*c_want_role;
	char			 c_addr[INET6_ADDRSTRLEN + 8];
	/* TLS only, once known; plain connections stay small. */
	struct conn_peer	*c_peer;
	/* Set once closing. */
	char			*c_reason;
	int			 c_sync;
	int			 c_sync_ready;
	STAILQ_HEAD(, syncframe) c_syncq;
	TAILQ_ENTRY(conn)	 c_entry;
	/* Output waiting for the store's commits (conn_barrier). */
	struct conn_barrier	*c_barrier;
	struct evbuffer		*c_held;	/* NULL until first needed */
	struct conn_hold	*c_holds;	/* segments of c_held, in order */
	size_t			 c_hold0;	/* first live segment */
	size_t			 c_nholds;	/* end of the live segments */
	size_t			 c_holdcap;
	TAILQ_ENTRY(conn)	 c_bentry;	/* in c_barrier while holding */
	int			 c_inbarrier;
	/* Holders of the memory (conn_ref); freed by the last, once reaped. */
	int			 c_refs;
	int			 c_reaped;
};

/* The verified TLS peer. */
struct conn_peer {
	char			 p_cn[65];
	char			 p_role[33];
};

/* Bytes of held output that may leave once commit h_gen is durable. */
struct conn_hold {
	size_t			 h_len;
	uint64_t		 h_gen;
};

struct conn_barrier {
	uint64_t		(*b_written)(void *);
	void			*b_arg;
	uint64_t		 b_durable;
	TAILQ_HEAD(, conn)	 b_held;
};

struct listener {
	struct event_base	*l_base;
	struct evconnlistener	*l_lev;
	struct event		*l_resume;
	struct conn_opts	 l_opts;
	struct conn_cb		 l_cb;
	void			*l_arg;
	size_t			 l_nconns;
	TAILQ_HEAD(, conn)	 l_conns;
};

static void	conn_read_cb(struct bufferevent *, void *);
static void	conn_write_cb(struct bufferevent *, void *);
static void	conn_event_cb(struct bufferevent *, short, void *);
static void	conn_finish(struct conn *);
static int	conn_holding(const struct conn *);
static void	conn_unhold(struct conn *);
static int	conn_send_msg(struct conn *, uint32_t, uint64_t,
		    const ProtobufCMessage *, int);
static void	conn_violation(struct conn *, const char *, const char *);

/* The I/O layer's metrics (metrics.h), registered on first use. */
static struct metric *
conn_metric(int which)
{
	static struct metric	*m[4];

	if (m[0] == NULL) {
		m[0] = metric_counter("qroam_connections_accepted_total",
		    "Connections accepted on the listeners.", NULL);
		m[1] = metric_gauge("qroam_connections_open",
		    "Connections open now, both directions.", NULL);
		m[2] = metric_counter("qroam_messages_received_total",
		    "Frames received and decoded, by message type.", "type");
		m[3] = metric_counter("qroam_messages_sent_total",
		    "Frames queued for sending, by message type.", "type");
	}
	return m[which];
}

static void
ms_to_tv(int ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* Limit the TCP connect and TLS handshake to ms. */
static void
conn_set_connect_timeout(struct conn *c, int ms)
{
	struct timeval	tv;

	ms_to_tv(ms, &tv);
	bufferevent_set_timeouts(c->c_bev, &tv, &tv);
}

/* A peer that resets the connection must not kill the process on write. */
static void
conn_ignore_sigpipe(void)
{
	static int	done;

	if (!done) {
		signal(SIGPIPE, SIG_IGN);
		done = 1;
	}
}

/* A new conn around bev (which it owns from now on). */
static struct conn *
conn_new(struct event_base *base, struct bufferevent *bev,
    const struct conn_opts *o, const struct conn_cb *cb, void *arg)
{
	struct conn	*c;

	conn_ignore_sigpipe();
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	c->c_base = base;
	c->c_bev = bev;
	metric_add(conn_metric(1), NULL, 1);
	if (cb != NULL)
		c->c_cb = *cb;
	c->c_arg = arg;
	c->c_state = CONN_CONNECTING;
	c->c_tls = o->co_tls != NULL;
	c->c_idle_ms = o->co_idle_ms;
	c->c_max_frame = o->co_max_frame ? o->co_max_frame : FRAME_MAX_DEFAULT;
	c->c_want_cn = o->co_peer_cn;
	c->c_want_role = o->co_peer_role;
	c->c_barrier = o->co_barrier;
	STAILQ_INIT(&c->c_syncq);
	bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(bev, EV_READ, 0,
	    2 * frame_size_max(c->c_max_frame));
	conn_set_connect_timeout(c, o->co_connect_ms ? o->co_connect_ms : 10000);
	return c;
}

/* Learn the verified TLS peer once; 0 or -1 if there is none. */
static int
conn_identify(struct conn *c)
{
	struct conn_peer	*p;
	SSL			*ssl;

	if (!c->c_tls || c->c_peer != NULL)
		return 0;
	if (c->c_bev == NULL)
		return -1;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	ssl = bufferevent_openssl_get_ssl(c->c_bev);
	if (tls_peer_identity(ssl, p->p_cn, sizeof(p->p_cn), p->p_role,
	    sizeof(p->p_role)) == -1) {
		free(p);
		return -1;
	}
	c->c_peer = p;
	return 0;
}

/* The peer's CN and role; "" on plain connections and before the handshake. */
static const char *
conn_cn(const struct conn *c)
{
	return c->c_peer != NULL ? c->c_peer->p_cn : "";
}

static const char *
conn_role(const struct conn *c)
{
	return c->c_peer != NULL ? c->c_peer->p_role : "";
}

/* Keep the first reason given for closing c. */
static void
conn_set_reason(struct conn *c, const char *reason)
{
	if (c->c_reason == NULL)
		c->c_reason = strdup(reason);
}

/* The handshake finished: check who answered, then tell the owner. */
static void
conn_connected(struct conn *c)
{
	struct timeval	tv;
	int		one;

	if (c->c_state != CONN_CONNECTING)
		return;
	if (conn_identify(c) == -1) {
		conn_violation(c, "tls_handshake",
		    "peer presented no valid certificate");
		return;
	}
	if (c->c_want_cn != NULL && strcmp(c->c_want_cn, conn_cn(c)) != 0) {
		conn_close(c, "unexpected peer certificate CN");
		return;
	}
	if (c->c_want_role != NULL && strcmp(c->c_want_role, conn_role(c)) !=
	    0) {
		conn_close(c, "unexpected peer certificate role");
		return;
	}
	c->c_state = CONN_OPEN;
	/* Small request/reply messages: never wait for Nagle. */
	one = 1;
	setsockopt(bufferevent_getfd(c->c_bev), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one));
	if (c->c_idle_ms > 0) {
		ms_to_tv(c->c_idle_ms, &tv);
		bufferevent_set_timeouts(c->c_bev, &tv, NULL);
	} else
		bufferevent_set_timeouts(c->c_bev, NULL, NULL);
	if (c->c_sync) {
		c->c_sync_ready = 1;
		event_base_loopbreak(c->c_base);
	} else if (c->c_cb.on_connected != NULL)
		c->c_cb.on_connected(c, c->c_arg);
}

/* Hand a decoded frame to the owner, or queue it for conn_recv_sync. */
static void
conn_deliver(struct conn *c, struct frame *f)
{
	struct syncframe	*sf;

	metric_inc(conn_metric(2), frame_type_name(f->f_type));
	/*
	 * Liveness probes of long-lived channels belong to the I/O layer:
	 * every peer answers a ping, and a pong has done its work (it was
	 * input) once it arrived.
	 */
	if (f->f_type == QROAM__MSG_TYPE__MT_PING ||
	    f->f_type == QROAM__MSG_TYPE__MT_PONG) {
		if (f->f_type == QROAM__MSG_TYPE__MT_PING)
			(void)conn_send_msg(c, QROAM__MSG_TYPE__MT_PONG,
			    f->f_request_id, NULL, 0);
		frame_release(f);
		return;
	}
	if (c->c_sync) {
		if ((sf = calloc(1, sizeof(*sf))) == NULL) {
			frame_release(f);
			conn_close(c, "out of memory");
			return;
		}
		sf->sf_frame = *f;
		STAILQ_INSERT_TAIL(&c->c_syncq, sf, sf_entry);
		event_base_loopbreak(c->c_base);
		return;
	}
	if (c->c_cb.on_frame != NULL)
		c->c_cb.on_frame(c, f, c->c_arg);
	frame_release(f);
}

/*
 * A peer broke the framing or the handshake: log it (every daemon alike),
 * count it as a refusal of kind what and drop it.
 */
static void
conn_violation(struct conn *c, const char *what, const char *reason)
{
	metrics_refusal(what);
	log_warnx("%s%s%s: %s: closing the connection", c->c_addr,
	    conn_cn(c)[0] ? " " : "", conn_cn(c), reason);
	conn_close(c, reason);
}

/*
 * Take the next whole frame out of in: the frame module says from the
 * header how long it is, and only then is it made contiguous and decoded.
 * 1 and f filled, 0 until more bytes arrive, -1 once c is closing.
 */
static int
conn_next_frame(struct conn *c, struct evbuffer *in, struct frame *f)
{
	enum frame_result	 r;
	size_t			 size, consumed;
	ev_ssize_t		 n;
	uint8_t			*p, hdr[FRAME_HDRLEN];

	n = evbuffer_copyout(in, hdr, sizeof(hdr));
	r = frame_size(hdr, n > 0 ? (size_t)n : 0, c->c_max_frame, &size);
	if (r == FRAME_OK) {
		if (evbuffer_get_length(in) < size)
			return 0;
		if ((p = evbuffer_pullup(in, (ev_ssize_t)size)) == NULL) {
			conn_close(c, "out of memory");
			return -1;
		}
		r = frame_decode(p, size, c->c_max_frame, f, &consumed);
	}
	switch (r) {
	case FRAME_OK:
		evbuffer_drain(in, consumed);
		return 1;
	case FRAME_NEED_MORE:
		return 0;
	case FRAME_TOO_BIG:
		conn_violation(c, "framing", "frame too big");
		return -1;
	default:
		conn_violation(c, "framing", "malformed frame");
		return -1;
	}
}

/* Decode every whole frame in the input buffer. */
static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct frame		 f;

	if (c->c_state == CONN_CONNECTING)
		conn_connected(c);
	while (c->c_state == CONN_OPEN && conn_next_frame(c, in, &f) == 1) {
		conn_deliver(c, &f);
		if (c->c_state == CONN_OPEN &&
		    evbuffer_get_length(bufferevent_get_output(bev)) > CONN_OUT_HIGH) {
			bufferevent_disable(bev, EV_READ);
			return;
		}
	}
}

/* Output drained: resume reading, or finish a pending close. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn	*c = arg;

	if (c->c_state == CONN_DRAINING) {
		if (!conn_holding(c))
			conn_finish(c);
		return;
	}
	if (c->c_state == CONN_OPEN && !(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		conn_read_cb(bev, c);
	}
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn	*c = arg;
	unsigned long	 e;
	char		 reason[160];

	if (what & BEV_EVENT_CONNECTED) {
		conn_connected(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(reason, sizeof(reason), "%s",
		    c->c_state == CONN_CONNECTING ? "connect/handshake timeout" :
		    c->c_state == CONN_DRAINING ? "flush timeout" : "idle timeout");
	else if (what & BEV_EVENT_EOF)
		snprintf(reason, sizeof(reason), "connection closed by peer");
	else if ((e = bufferevent_get_openssl_error(bev)) != 0 &&
	    ERR_GET_LIB(e) != 0) {
		snprintf(reason, sizeof(reason), "tls: ");
		ERR_error_string_n(e, reason + 5, sizeof(reason) - 5);
	} else
		snprintf(reason, sizeof(reason), "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (c->c_state == CONN_DRAINING)
		conn_finish(c);
	else if (c->c_state == CONN_CONNECTING && c->c_tls &&
	    c->c_listener != NULL)
		conn_violation(c, "tls_handshake", reason);
	else
		conn_close(c, reason);
}

static void
conn_destroy(struct conn *c)
{
	free(c->c_peer);
	free(c->c_reason);
	free(c);
}

/* Deferred part of a close: owner's on_close, then free. */
static void
conn_reap(evutil_socket_t fd, short ev, void *arg)
{
	struct conn		*c = arg;
	struct syncframe	*sf;

	(void)fd;
	(void)ev;
	if (c->c_cb.on_close != NULL)
		c->c_cb.on_close(c, c->c_reason != NULL ? c->c_reason :
		    "closed", c->c_arg);
	if (c->c_listener != NULL) {
		TAILQ_REMOVE(&c->c_listener->l_conns, c, c_entry);
		c->c_listener->l_nconns--;
		if (c->c_listener->l_resume == NULL)
			evconnlistener_enable(c->c_listener->l_lev);
	}
	conn_unhold(c);
	while ((sf = STAILQ_FIRST(&c->c_syncq)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->c_syncq, sf_entry);
		frame_release(&sf->sf_frame);
		free(sf);
	}
	if (c->c_bev != NULL)
		bufferevent_free(c->c_bev);
	c->c_bev = NULL;
	metric_add(conn_metric(1), NULL, -1);
	c->c_reaped = 1;
	if (c->c_refs == 0)
		conn_destroy(c);
}

void
conn_ref(struct conn *c)
{
	c->c_refs++;
}

void
conn_unref(struct conn *c)
{
	if (--c->c_refs == 0 && c->c_reaped)
		conn_destroy(c);
}

/* Stop all I/O now and schedule the reap (sync conns wait for conn_free_sync). */
static void
conn_finish(struct conn *c)
{
	struct timeval	zero = { 0, 0 };

	if (c->c_state == CONN_DEAD)
		return;
	c->c_state = CONN_DEAD;
	bufferevent_disable(c->c_bev, EV_READ | EV_WRITE);
	bufferevent_setcb(c->c_bev, NULL, NULL, NULL, NULL);
	if (c->c_sync) {
		event_base_loopbreak(c->c_base);
		return;
	}
	if (event_base_once(c->c_base, -1, EV_TIMEOUT, conn_reap, c, &zero) == -1)
		fatalx("event_base_once");
}

void
conn_close(struct conn *c, const char *reason)
{
	struct timeval	tv;

	if (c->c_state == CONN_DRAINING || c->c_state == CONN_DEAD)
		return;
	conn_set_reason(c, reason);
	if (c->c_state == CONN_OPEN && (conn_holding(c) ||
	    evbuffer_get_length(bufferevent_get_output(c->c_bev)) > 0)) {
		c->c_state = CONN_DRAINING;
		bufferevent_disable(c->c_bev, EV_READ);
		bufferevent_setwatermark(c->c_bev, EV_WRITE, 0, 0);
		ms_to_tv(CONN_DRAIN_MS, &tv);
		bufferevent_set_timeouts(c->c_bev, NULL, &tv);
		return;
	}
	conn_finish(c);
}

/*
 * Hold len bytes of output until commit gen is durable; gen 0 means only
 * "after what is held already".
 */
static int
conn_hold(struct conn *c, const void *buf, size_t len, uint64_t gen)
{
	struct conn_hold	*h;
	size_t			 cap;

	if (c->c_held == NULL && (c->c_held = evbuffer_new()) == NULL)
		return -1;
	if (c->c_hold0 == c->c_nholds)
		c->c_hold0 = c->c_nholds = 0;
	h = c->c_nholds > c->c_hold0 ? &c->c_holds[c->c_nholds - 1] : NULL;
	if (h == NULL || (gen != 0 && gen != h->h_gen)) {
		if (c->c_nholds == c->c_holdcap) {
			if (c->c_hold0 > 0) {
				memmove(c->c_holds, c->c_holds + c->c_hold0,
				    (c->c_nholds - c->c_hold0) * sizeof(*h));
				c->c_nholds -= c->c_hold0;
				c->c_hold0 = 0;
			} else {
				cap = c->c_holdcap ? 2 * c->c_holdcap : 4;
				if ((h = reallocarray(c->c_holds, cap,
				    sizeof(*h))) == NULL)
					return -1;
				c->c_holds = h;
				c->c_holdcap = cap;
			}
		}
		h = &c->c_holds[c->c_nholds++];
		h->h_len = 0;
		h->h_gen = gen;
	}
	if (evbuffer_add(c->c_held, buf, len) == -1) {
		if (h->h_len == 0)	/* the segment just made stays empty */
			c->c_nholds--;
		return -1;
	}
	h->h_len += len;
	if (!c->c_inbarrier) {
		TAILQ_INSERT_TAIL(&c->c_barrier->b_held, c, c_bentry);
		c->c_inbarrier = 1;
	}
	return 0;
}

/* 1 while output waits for a commit. */
static int
conn_holding(const struct conn *c)
{
	return c->c_hold0 < c->c_nholds;
}

/* Drop held output (the connection is going) and leave the barrier. */
static void
conn_unhold(struct conn *c)
{
	if (c->c_inbarrier) {
		TAILQ_REMOVE(&c->c_barrier->b_held, c, c_bentry);
		c->c_inbarrier = 0;
	}
	c->c_hold0 = c->c_nholds = 0;
	if (c->c_held != NULL)
		evbuffer_free(c->c_held);
	c->c_held = NULL;
	free(c->c_holds);
	c->c_holds = NULL;
	c->c_holdcap = 0;
}

/*
 * Queue output.  With durable set it leaves only once every commit made
 * so far is durable; output never overtakes output held before it.
 */
static int
conn_out(struct conn *c, const void *buf, size_t len, int durable)
{
	struct conn_barrier	*b = c->c_barrier;
	uint64_t		 gen = 0;

	if (c->c_state != CONN_OPEN && c->c_state != CONN_CONNECTING)
		return -1;
	if (b != NULL && durable && (gen = b->b_written(b->b_arg)) <=
	    b->b_durable)
		gen = 0;
	if (gen == 0 && !conn_holding(c))
		return bufferevent_write(c->c_bev, buf, len);
	return conn_hold(c, buf, len, gen);
}

static int
conn_send_msg(struct conn *c, uint32_t type, uint64_t request_id,
    const ProtobufCMessage *msg, int durable)
{
	uint8_t	*buf;
	size_t	 len;
	int	 rc;

	if (c->c_state != CONN_OPEN && c->c_state != CONN_CONNECTING)
		return -1;
	if (frame_encode(type, request_id, msg, c->c_max_frame, &buf, &len) == -1)
		return -1;
	rc = conn_out(c, buf, len, durable);
	free(buf);
	if (rc == 0)
		metric_inc(conn_metric(3), frame_type_name(type));
	return rc == 0 ? 0 : -1;
}

int
conn_send(struct conn *c, uint32_t type, uint64_t request_id,
    const ProtobufCMessage *msg)
{
	return conn_send_msg(c, type, request_id, msg, 1);
}

int
conn_send_now(struct conn *c, uint32_t type, uint64_t request_id,
    const ProtobufCMessage *msg)
{
	return conn_send_msg(c, type, request_id, msg, 0);
}

static int
conn_send_encoded_as(struct conn *c, uint32_t type, const uint8_t *buf,
    size_t len, int durable)
{
	if (conn_out(c, buf, len, durable) == -1)
		return -1;
	metric_inc(conn_metric(3), frame_type_name(type));
	return 0;
}

int
conn_send_encoded(struct conn *c, uint32_t type, const uint8_t *buf,
    size_t len)
{
	return conn_send_encoded_as(c, type, buf, len, 1);
}

int
conn_send_encoded_now(struct conn *c, uint32_t type, const uint8_t *buf,
    size_t len)
{
	return conn_send_encoded_as(c, type, buf, len, 0);
}

struct conn_barrier *
conn_barrier_new(uint64_t (*written)(void *), void *arg)
{
	struct conn_barrier	*b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		fatal("calloc");
	b->b_written = written;
	b->b_arg = arg;
	b->b_durable = written(arg);
	TAILQ_INIT(&b->b_held);
	return b;
}

void
conn_barrier_free(struct conn_barrier *b)
{
	struct conn	*c;

	if (b == NULL)
		return;
	while ((c = TAILQ_FIRST(&b->b_held)) != NULL)
		conn_unhold(c);
	free(b);
}

void
conn_barrier_release(struct conn_barrier *b, uint64_t durable)
{
	struct conn		*c, *next;
	struct conn_hold	*h;
	struct evbuffer		*out;

	if (durable > b->b_durable)
		b->b_durable = durable;
	for (c = TAILQ_FIRST(&b->b_held); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_bentry);
		out = bufferevent_get_output(c->c_bev);
		while (conn_holding(c)) {
			h = &c->c_holds[c->c_hold0];
			if (h->h_gen > b->b_durable)
				break;
			if (evbuffer_remove_buffer(c->c_held, out, h->h_len) !=
			    (int)h->h_len)
				log_warnx("%s: held output lost", c->c_addr);
			c->c_hold0++;
		}
		if (!conn_holding(c)) {
			c->c_hold0 = c->c_nholds = 0;
			TAILQ_REMOVE(&b->b_held, c, c_bentry);
			c->c_inbarrier = 0;
		}
	}
}

int
conn_send_status(struct conn *c, uint64_t request_id, int code,
    const char *detail)
{
	Qroam__Status	st = QROAM__STATUS__INIT;

	st.code = code;
	st.detail = (char *)(detail != NULL ? detail : "");
	if (code != QROAM__STATUS_CODE__OK)
		metrics_refusal(msg_status_name(code));
	return conn_send(c, QROAM__MSG_TYPE__MT_STATUS, request_id,
	    &st.base);
}

int
conn_send_raw(struct conn *c, const void *buf, size_t len)
{
	return conn_out(c, buf, len, 1) == 0 ? 0 : -1;
}

void
conn_set_arg(struct conn *c, void *arg)
{
	c->c_arg = arg;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return c->c_addr;
}

const char *
conn_peer_cn(const struct conn *c)
{
	conn_identify((struct conn *)c);
	return conn_cn(c);
}

const char *
conn_peer_role(const struct conn *c)
{
	conn_identify((struct conn *)c);
	return conn_role(c);
}

int
conn_is_open(const struct conn *c)
{
	return c->c_state == CONN_OPEN;
}

/* Format a socket address as "addr:port". */
static void
conn_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char	host[INET6_ADDRSTRLEN];

	buf[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	}
}

/* A bufferevent for fd, TLS-wrapped if o asks for it.  NULL on failure. */
static struct bufferevent *
conn_bev(struct event_base *base, evutil_socket_t fd,
    const struct conn_opts *o, int accepting, const char *sni)
{
	SSL	*ssl;

	if (o->co_tls == NULL)
		return bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if ((ssl = SSL_new(o->co_tls)) == NULL)
		return NULL;
	if (sni != NULL)
		SSL_set_tlsext_host_name(ssl, sni);
	return bufferevent_openssl_socket_new(base, fd, ssl, accepting ?
	    BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
}

/* Resolve host:port for TCP (passive: to listen on); NULL is logged. */
static struct evutil_addrinfo *
conn_resolve(const char *host, uint16_t port, int passive)
{
	struct evutil_addrinfo	 hints, *res = NULL;
	char			 portstr[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = passive ? EVUTIL_AI_PASSIVE : 0;
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (evutil_getaddrinfo(host, portstr, &hints, &res) != 0 || res == NULL) {
		log_warnx("cannot resolve %s", host);
		return NULL;
	}
	return res;
}

/* Start an outgoing connection; sync conns are freed by their caller. */
static struct conn *
conn_start(struct event_base *base, const char *host, uint16_t port,
    const struct conn_opts *o, const struct conn_cb *cb, void *arg, int sync)
{
	struct evutil_addrinfo	*res;
	struct bufferevent	*bev;
	struct conn		*c;

	if ((res = conn_resolve(host, port, 0)) == NULL)
		return NULL;
	if ((bev = conn_bev(base, -1, o, 0, host)) == NULL) {
		evutil_freeaddrinfo(res);
		return NULL;
	}
	if ((c = conn_new(base, bev, o, cb, arg)) == NULL) {
		evutil_freeaddrinfo(res);
		return NULL;
	}
	c->c_sync = sync;
	conn_format_addr(res->ai_addr, c->c_addr, sizeof(c->c_addr));
	if (bufferevent_socket_connect(bev, res->ai_addr, (int)res->ai_addrlen) == -1) {
		evutil_freeaddrinfo(res);
		/* Report the failure through the normal close path. */
		conn_close(c, "connect failed");
		return c;
	}
	evutil_freeaddrinfo(res);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return c;
}

struct conn *
conn_connect(struct event_base *base, const char *host, uint16_t port,
    const struct conn_opts *o, const struct conn_cb *cb, void *arg)
{
	return conn_start(base, host, port, o, cb, arg, 0);
}

/* A connection arrived on a listener. */
static void
listener_accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct listener		*l = arg;
	struct bufferevent	*bev;
	struct conn		*c;
	int			 one = 1;

	(void)lev;
	(void)salen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((bev = conn_bev(l->l_base, fd, &l->l_opts, 1, NULL)) == NULL) {
		evutil_closesocket(fd);
		log_warnx("accept: out of memory");
		return;
	}
	if ((c = conn_new(l->l_base, bev, &l->l_opts, &l->l_cb, l->l_arg)) == NULL) {
		log_warnx("accept: out of memory");
		return;
	}
	conn_format_addr(sa, c->c_addr, sizeof(c->c_addr));
	metric_inc(conn_metric(0), NULL);
	c->c_listener = l;
	TAILQ_INSERT_TAIL(&l->l_conns, c, c_entry);
	l->l_nconns++;
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* Plain connections are open at once; TLS ones after the handshake. */
	if (!c->c_tls)
		conn_connected(c);
}

static void
listener_resume_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct listener	*l = arg;

	(void)fd;
	(void)ev;
	event_free(l->l_resume);
	l->l_resume = NULL;
	evconnlistener_enable(l->l_lev);
}

/* Out of descriptors is a normal case: pause accepting for a second. */
static void
listener_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener	*l = arg;
	struct timeval	 tv = { 1, 0 };
	int		 err = EVUTIL_SOCKET_ERROR();

	log_warnx("accept: %s", evutil_socket_error_to_string(err));
	if (l->l_resume != NULL)
		return;
	evconnlistener_disable(lev);
	if ((l->l_resume = evtimer_new(l->l_base, listener_resume_cb, l)) == NULL)
		fatalx("evtimer_new");
	evtimer_add(l->l_resume, &tv);
}

struct listener *
listener_new(struct event_base *base, const char *host, uint16_t port,
    const struct conn_opts *o, const struct conn_cb *cb, void *arg)
{
	struct evutil_addrinfo	*res;
	struct listener		*l;

	if ((res = conn_resolve(host, port, 1)) == NULL)
		return NULL;
	l = xcalloc(1, sizeof(*l));
	l->l_base = base;
	l->l_opts = *o;
	l->l_cb = *cb;
	l->l_arg = arg;
	TAILQ_INIT(&l->l_conns);
	l->l_lev = evconnlistener_new_bind(base, listener_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC |
	    (o->co_reuse_port ? LEV_OPT_REUSEABLE_PORT : 0), 128, res->ai_addr,
	    (int)res->ai_addrlen);
	evutil_freeaddrinfo(res);
	if (l->l_lev == NULL) {
		log_warn("listen on %s:%u", host, port);
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->l_lev, listener_error_cb);
	return l;
}

void
listener_free(struct listener *l)
{
	struct conn	*c;

	if (l == NULL)
		return;
	evconnlistener_free(l->l_lev);
	if (l->l_resume != NULL)
		event_free(l->l_resume);
	while ((c = TAILQ_FIRST(&l->l_conns)) != NULL) {
		TAILQ_REMOVE(&l->l_conns, c, c_entry);
		c->c_listener = NULL;
		if (c->c_state != CONN_DEAD) {
			conn_set_reason(c, "shutdown");
			c->c_state = CONN_DEAD;
			conn_reap(-1, 0, c);
		}
		/* Dead ones are reaped by their pending event. */
	}
	free(l);
}

size_t
listener_nconns(const struct listener *l)
{
	return l->l_nconns;
}

/* Timer of the sync helpers. */
static void
conn_sync_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	*(int *)arg = 1;
}

/* Run the loop until done() holds, the conn died, or timeout_ms passed. */
static int
conn_sync_wait(struct conn *c, int (*done)(struct conn *), int timeout_ms)
{
	struct event	*t;
	struct timeval	 tv;
	int		 expired = 0;

	if ((t = evtimer_new(c->c_base, conn_sync_timeout, &expired)) == NULL)
		return -1;
	ms_to_tv(timeout_ms, &tv);
	evtimer_add(t, &tv);
	while (!done(c) && c->c_state != CONN_DEAD && !expired)
		event_base_loop(c->c_base, EVLOOP_ONCE);
	event_free(t);
	return done(c) ? 0 : -1;
}

static int
conn_sync_is_ready(struct conn *c)
{
	return c->c_sync_ready;
}

static int
conn_sync_has_frame(struct conn *c)
{
	return !STAILQ_EMPTY(&c->c_syncq);
}

struct conn *
conn_open_sync(struct event_base *base, const char *host, uint16_t port,
    const struct conn_opts *o, int timeout_ms, char *err, size_t errlen)
{
	struct conn	*c;

	if ((c = conn_start(base, host, port, o, NULL, NULL, 1)) == NULL) {
		snprintf(err, errlen, "cannot connect to %s:%u", host, port);
		return NULL;
	}
	if (c->c_state == CONN_DEAD || conn_sync_wait(c, conn_sync_is_ready,
	    timeout_ms) == -1) {
		snprintf(err, errlen, "%s:%u: %s", host, port,
		    c->c_reason != NULL ? c->c_reason : "timeout");
		conn_free_sync(c);
		return NULL;
	}
	return c;
}

int
conn_recv_sync(struct conn *c, struct frame *f, int timeout_ms)
{
	struct syncframe	*sf;

	if (c->c_state == CONN_OPEN && STAILQ_EMPTY(&c->c_syncq)) {
		bufferevent_enable(c->c_bev, EV_READ);
		conn_read_cb(c->c_bev, c);
	}
	if (conn_sync_wait(c, conn_sync_has_frame, timeout_ms) == -1)
		return -1;
	sf = STAILQ_FIRST(&c->c_syncq);
	STAILQ_REMOVE_HEAD(&c->c_syncq, sf_entry);
	*f = sf->sf_frame;
	free(sf);
	return 0;
}

void
conn_free_sync(struct conn *c)
{
	if (c == NULL)
		return;
	c->c_cb.on_close = NULL;
	/* An async conn already closed is freed by its pending reap. */
	if (!c->c_sync && c->c_state == CONN_DEAD)
		return;
	if (c->c_state != CONN_DEAD) {
		c->c_state = CONN_DEAD;
		bufferevent_disable(c->c_bev, EV_READ | EV_WRITE);
	}
	c->c_cb.on_close = NULL;
	conn_reap(-1, 0, c);
}
