/*
 * Provisioning channels (provchan.h).  A channel is in one of three
 * states: no connection, connecting (requests queue), or open (requests
 * go out up to the window, each reply is matched to its request by id).
 * One timer watches the oldest request in flight; one deferred event
 * answers requests that failed inside a submit and closes a connection
 * left without requests.  A connection that closes, for whatever reason,
 * answers every request of the channel with VPROV_NO_REPLY.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "log.h"
#include "provchan.h"
#include "provision.h"
#include "tls.h"

/* A connection left without requests closes after this long. */
#define PROVCHAN_IDLE_MS	2000

TAILQ_HEAD(vprov_req_list, vprov_req);

enum {
	VR_NONE,	/* the owner's */
	VR_QUEUED,	/* waiting for the connection or the window */
	VR_FLIGHT,	/* sent, waiting for its reply */
};

struct vprov_chan {
	struct event_base	*pc_base;
	SSL_CTX			*pc_tls;
	const char		*pc_role;
	struct endpoint		 pc_ep;
	size_t			 pc_max_frame;
	int			 pc_timeout_ms;
	size_t			 pc_window;
	struct conn		*pc_conn;	/* NULL: none */
	int			 pc_connected;
	struct vprov_req_list	 pc_queue;
	struct vprov_req_list	 pc_flight;	/* oldest first */
	size_t			 pc_nqueue;
	size_t			 pc_nflight;
	uint64_t		 pc_next_id;
	struct event		*pc_timer;
	struct event		*pc_defer;
	int			 pc_fail_queued; /* no connection could start */
};

/* The argument of connections the channels let go, and how many close. */
static char	provchan_gone;
static int	provchan_ndraining;

static void	provchan_on_connected(struct conn *, void *);
static void	provchan_on_frame(struct conn *, const struct frame *, void *);
static void	provchan_on_close(struct conn *, const char *, void *);

static const struct conn_cb provchan_cb = {
	provchan_on_connected, provchan_on_frame, provchan_on_close
};

static uint64_t
provchan_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Arm the timer for the oldest request in flight, if any. */
static void
provchan_arm(struct vprov_chan *pc)
{
	struct vprov_req	*r = TAILQ_FIRST(&pc->pc_flight);
	struct timeval		 tv;
	uint64_t		 now = provchan_now_ms(), ms;

	if (r == NULL) {
		evtimer_del(pc->pc_timer);
		return;
	}
	ms = r->vr_deadline_ms > now ? r->vr_deadline_ms - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	evtimer_add(pc->pc_timer, &tv);
}

/* Take r off whichever list holds it; it is the owner's again. */
static void
provchan_unlink(struct vprov_chan *pc, struct vprov_req *r)
{
	if (r->vr_where == VR_QUEUED) {
		TAILQ_REMOVE(&pc->pc_queue, r, vr_entry);
		pc->pc_nqueue--;
	} else if (r->vr_where == VR_FLIGHT) {
		TAILQ_REMOVE(&pc->pc_flight, r, vr_entry);
		pc->pc_nflight--;
	}
	r->vr_where = VR_NONE;
	free(r->vr_payload);
	r->vr_payload = NULL;
}

/* Answer every request of list (moved aside first) with rc. */
static void
provchan_fail_list(struct vprov_chan *pc, struct vprov_req_list *list, int rc)
{
	struct vprov_req_list	 out = TAILQ_HEAD_INITIALIZER(out);
	struct vprov_req	*r;

	while ((r = TAILQ_FIRST(list)) != NULL) {
		provchan_unlink(pc, r);
		TAILQ_INSERT_TAIL(&out, r, vr_entry);
	}
	while ((r = TAILQ_FIRST(&out)) != NULL) {
		TAILQ_REMOVE(&out, r, vr_entry);
		r->vr_done(r, rc, NULL);
	}
}

/* Let the connection go (its callbacks do nothing any more). */
static void
provchan_drop(struct vprov_chan *pc, const char *reason)
{
	if (pc->pc_conn == NULL)
		return;
	conn_set_arg(pc->pc_conn, &provchan_gone);
	provchan_ndraining++;
	conn_close(pc->pc_conn, reason);
	pc->pc_conn = NULL;
	pc->pc_connected = 0;
	evtimer_del(pc->pc_timer);
}

/* The deferred work: failures of a submit, a connection left idle. */
static void
provchan_defer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct vprov_chan	*pc = arg;

	(void)fd;
	(void)ev;
	if (pc->pc_fail_queued && pc->pc_conn == NULL) {
		pc->pc_fail_queued = 0;
		provchan_fail_list(pc, &pc->pc_queue, VPROV_NO_REPLY);
		return;
	}
	pc->pc_fail_queued = 0;
	if (pc->pc_nqueue == 0 && pc->pc_nflight == 0)
		provchan_drop(pc, "no request left");
}

/* A connection without requests: close it unless one comes soon. */
static void
provchan_idle(struct vprov_chan *pc)
{
	struct timeval	tv = { PROVCHAN_IDLE_MS / 1000,
			    (PROVCHAN_IDLE_MS % 1000) * 1000 };

	if (pc->pc_nqueue == 0 && pc->pc_nflight == 0 && pc->pc_conn != NULL)
		evtimer_add(pc->pc_defer, &tv);
}

/* Start the connection; its failure answers the queue later. */
static void
provchan_connect(struct vprov_chan *pc)
{
	struct conn_opts	opts;

	memset(&opts, 0, sizeof(opts));
	opts.co_tls = pc->pc_tls;
	opts.co_max_frame = pc->pc_max_frame;
	opts.co_connect_ms = pc->pc_timeout_ms;
	opts.co_peer_role = pc->pc_role;
	pc->pc_connected = 0;
	pc->pc_conn = conn_connect(pc->pc_base, pc->pc_ep.ep_host,
	    pc->pc_ep.ep_port, &opts, &provchan_cb, pc);
	if (pc->pc_conn == NULL) {
		log_warnx("provision: cannot connect to the %s at %s:%u",
		    pc->pc_role, pc->pc_ep.ep_host, pc->pc_ep.ep_port);
		pc->pc_fail_queued = 1;
		event_active(pc->pc_defer, EV_TIMEOUT, 0);
	}
}

/* Send queued requests while the window has room. */
static void
provchan_pump(struct vprov_chan *pc)
{
	struct vprov_req	*r;
	uint8_t			*buf;
	size_t			 len;
	int			 was_empty = pc->pc_nflight == 0;

	buf = NULL;
	while (pc->pc_connected && pc->pc_nflight < pc->pc_window &&
	    (r = TAILQ_FIRST(&pc->pc_queue)) != NULL) {
		r->vr_id = ++pc->pc_next_id;
		if (frame_encode_payload(r->vr_type, r->vr_id, r->vr_payload,
		    r->vr_len, pc->pc_max_frame, &buf, &len) == -1 ||
		    conn_send_encoded(pc->pc_conn, r->vr_type, buf, len) == -1) {
			free(buf);
			conn_close(pc->pc_conn, "cannot send a request");
			return;
		}
		free(buf);
		buf = NULL;
		TAILQ_REMOVE(&pc->pc_queue, r, vr_entry);
		pc->pc_nqueue--;
		r->vr_where = VR_FLIGHT;
		r->vr_deadline_ms = provchan_now_ms() +
		    (uint64_t)pc->pc_timeout_ms;
		TAILQ_INSERT_TAIL(&pc->pc_flight, r, vr_entry);
		pc->pc_nflight++;
	}
	if (was_empty && pc->pc_nflight > 0)
		provchan_arm(pc);
}

/* The oldest request in flight had no reply in time: the server is stuck. */
static void
provchan_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct vprov_chan	*pc = arg;
	struct vprov_req	*r = TAILQ_FIRST(&pc->pc_flight);
	char			 why[96];

	(void)fd;
	(void)ev;
	if (r == NULL || pc->pc_conn == NULL)
		return;
	if (r->vr_deadline_ms > provchan_now_ms()) {
		provchan_arm(pc);
		return;
	}
	snprintf(why, sizeof(why), "no reply within %d ms", pc->pc_timeout_ms);
	conn_close(pc->pc_conn, why);
}

static void
provchan_on_connected(struct conn *c, void *arg)
{
	struct vprov_chan	*pc = arg;

	(void)c;
	if (arg == &provchan_gone)
		return;
	pc->pc_connected = 1;
	log_debug("provision: connected to the %s at %s:%u", pc->pc_role,
	    pc->pc_ep.ep_host, pc->pc_ep.ep_port);
	provchan_pump(pc);
}

static void
provchan_on_frame(struct conn *c, const struct frame *f, void *arg)
{
	struct vprov_chan	*pc = arg;
	struct vprov_req	*r;

	(void)c;
	if (arg == &provchan_gone)
		return;
	TAILQ_FOREACH(r, &pc->pc_flight, vr_entry)
		if (r->vr_id == f->f_request_id)
			break;
	if (r == NULL) {
		log_debug("provision: %s from the %s for no request in flight"
		    " (%llu); dropped", frame_type_name(f->f_type),
		    pc->pc_role, (unsigned long long)f->f_request_id);
		return;
	}
	provchan_unlink(pc, r);
	provchan_arm(pc);
	r->vr_done(r, 0, f);
	if (pc->pc_conn == NULL)
		return;
	provchan_pump(pc);
	provchan_idle(pc);
}

static void
provchan_on_close(struct conn *c, const char *reason, void *arg)
{
	struct vprov_chan	*pc = arg;
	size_t			 n;

	(void)c;
	if (arg == &provchan_gone) {
		provchan_ndraining--;
		return;
	}
	n = pc->pc_nqueue + pc->pc_nflight;
	pc->pc_conn = NULL;
	pc->pc_connected = 0;
	evtimer_del(pc->pc_timer);
	if (n == 0)
		return;
	log_warnx("provision: %s %s:%u: %s; %zu request%s without reply",
	    pc->pc_role, pc->pc_ep.ep_host, pc->pc_ep.ep_port, reason, n,
	    n == 1 ? "" : "s");
	provchan_fail_list(pc, &pc->pc_flight, VPROV_NO_REPLY);
	provchan_fail_list(pc, &pc->pc_queue, VPROV_NO_REPLY);
}

struct vprov_chan *
vprov_chan_new(struct event_base *base, const struct vprov *vp,
    enum vprov_role role, size_t max_frame, size_t window)
{
	struct vprov_chan	*pc;
	const struct endpoint	*ep;

	ep = role == VPROV_FILLER ? &vp->vp_topo->t_filler :
	    &vp->vp_topo->t_registrar;
	if (ep->ep_port == 0) {
		log_warnx("provision: no %s endpoint in the topology",
		    role == VPROV_FILLER ? "filler" : "registrar");
		return NULL;
	}
	if (vp->vp_ca == NULL || vp->vp_cert == NULL || vp->vp_key == NULL) {
		log_warnx("provision: no credential to reach the %s",
		    role == VPROV_FILLER ? "filler" : "registrar");
		return NULL;
	}
	if ((pc = calloc(1, sizeof(*pc))) == NULL) {
		log_warn("provision");
		return NULL;
	}
	if ((pc->pc_tls = tls_client_ctx(vp->vp_ca, vp->vp_cert,
	    vp->vp_key)) == NULL) {
		log_warnx("provision: cannot load the TLS credential %s",
		    vp->vp_cert);
		free(pc);
		return NULL;
	}
	pc->pc_base = base;
	pc->pc_role = role == VPROV_FILLER ? "filler" : "registrar";
	pc->pc_ep = *ep;
	pc->pc_max_frame = max_frame ? max_frame : vp->vp_max_frame;
	pc->pc_timeout_ms = vp->vp_timeout_ms > 0 ? vp->vp_timeout_ms : 10000;
	pc->pc_window = window ? window : 1;
	TAILQ_INIT(&pc->pc_queue);
	TAILQ_INIT(&pc->pc_flight);
	if ((pc->pc_timer = evtimer_new(base, provchan_timer_cb, pc)) == NULL ||
	    (pc->pc_defer = event_new(base, -1, 0, provchan_defer_cb,
	    pc)) == NULL)
		fatalx("cannot create timers");
	return pc;
}

void
vprov_chan_close(struct vprov_chan *pc)
{
	struct vprov_req	*r;

	provchan_drop(pc, "shutdown");
	while ((r = TAILQ_FIRST(&pc->pc_queue)) != NULL)
		provchan_unlink(pc, r);
	while ((r = TAILQ_FIRST(&pc->pc_flight)) != NULL)
		provchan_unlink(pc, r);
	event_del(pc->pc_defer);
}

int
vprov_chan_draining(void)
{
	return provchan_ndraining;
}

void
vprov_chan_free(struct vprov_chan *pc)
{
	if (pc == NULL)
		return;
	vprov_chan_close(pc);
	event_free(pc->pc_timer);
	event_free(pc->pc_defer);
	SSL_CTX_free(pc->pc_tls);
	free(pc);
}

int
vprov_chan_submit(struct vprov_chan *pc, struct vprov_req *r, uint32_t type,
    const ProtobufCMessage *msg)
{
	size_t	len = protobuf_c_message_get_packed_size(msg);

	if ((r->vr_payload = malloc(len ? len : 1)) == NULL) {
		log_warn("provision: %s", frame_type_name(type));
		return -1;
	}
	protobuf_c_message_pack(msg, r->vr_payload);
	r->vr_len = len;
	r->vr_type = type;
	r->vr_id = 0;
	r->vr_where = VR_QUEUED;
	TAILQ_INSERT_TAIL(&pc->pc_queue, r, vr_entry);
	pc->pc_nqueue++;
	if (pc->pc_conn == NULL)
		provchan_connect(pc);
	else
		provchan_pump(pc);
	return 0;
}

void
vprov_chan_cancel(struct vprov_chan *pc, struct vprov_req *r)
{
	if (r->vr_where == VR_NONE)
		return;
	provchan_unlink(pc, r);
	provchan_arm(pc);
}

size_t
vprov_chan_pending(const struct vprov_chan *pc)
{
	return pc->pc_nqueue + pc->pc_nflight;
}

void
vprov_chan_set_timeout(struct vprov_chan *pc, int timeout_ms)
{
	if (timeout_ms > 0)
		pc->pc_timeout_ms = timeout_ms;
}
