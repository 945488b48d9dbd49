/*
 * The vehicle's protocol steps over one connection to the current TSP.
 *
 * F3: M4 with a fresh nonce and time; no valid AuthResult within Δt1 means
 * a new M4, backing off to 8 × Δt1.  F4: draw a chip key, destroy it
 * durably, then send M3; any failure costs that key and the next M3 uses
 * the next one.  F5 (telemetry.c): periodic telemetry under K1, with the
 * handover messages (M5, HandoverReady) passed to the handover's
 * callbacks.  Every reply is decoded and checked before it changes any
 * state.  The second connection of a handover (entry.c) has the same
 * connection callbacks, which hand its events over to entry.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "conn.h"
#include "crypto.h"
#include "log.h"
#include "rand.h"
#include "store.h"
#include "vmetrics.h"
#include "vmsg.h"

#define CLIENT_MAXBACKOFF	8
#define CLIENT_RECONNECT_MS	250
#define CLIENT_RECONNECT_SHIFT	5

static void	client_on_connected(struct conn *, void *);
static void	client_on_frame(struct conn *, const struct frame *, void *);
static void	client_on_close(struct conn *, const char *, void *);
static void	client_timer_cb(evutil_socket_t, short, void *);

static const struct conn_cb client_cb = {
	client_on_connected, client_on_frame, client_on_close
};

/* The argument of connections being closed, and how many there are. */
static char	client_gone;
static int	client_ndraining;

uint64_t
client_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
client_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void
client_init(struct vclient *c, struct event_base *base,
    const struct vconf *conf, struct vchip *chip, const struct topo *topo,
    struct route *route, uint64_t offset_ms,
    const struct vclient_owner_cb *owner, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->vc_offset_ms = offset_ms;
	snprintf(c->vc_logname, sizeof(c->vc_logname), "vehicled[%s]",
	    conf->vc_vid);
	c->vc_base = base;
	c->vc_conf = conf;
	c->vc_chip = chip;
	c->vc_topo = topo;
	c->vc_state = VC_OFF;
	c->vc_backoff = 1;
	c->vc_route = route;
	c->vc_start_ms = client_now_ms();
	if ((c->vc_timer = evtimer_new(base, client_timer_cb, c)) == NULL)
		fatalx("cannot create timers");
	c->vc_owner = owner;
	c->vc_owner_arg = arg;
	vrecq_init(&c->vc_recs, conf->vc_unstored_max);
	/* Ids go on above the last run's; the stored mark may be higher. */
	vrecid_init(&c->vc_recid, (uint64_t)vchip_record_floor(chip));
	vrecid_raised(&c->vc_recid, (uint64_t)vchip_counter(chip,
	    "record_id_mark"));
}

void
client_set_handover(struct vclient *c, const struct vclient_ho_cb *ho,
    void *arg)
{
	c->vc_ho = ho;
	c->vc_ho_arg = arg;
}

void
client_clear(struct vclient *c)
{
	event_free(c->vc_timer);
	route_free(c->vc_route);
	chip_reg_clear(&c->vc_reg);
	EVP_PKEY_free(c->vc_pbv);
	crypto_wipe(c->vc_k1, sizeof(c->vc_k1));
	crypto_wipe(c->vc_pre.vp_k1, sizeof(c->vc_pre.vp_k1));
	vrecq_free(&c->vc_recs);
}

const struct topo *
client_tsps(const struct vclient *c)
{
	return c->vc_regtopo != NULL && c->vc_regtopo->t_ntsps > 0 ?
	    c->vc_regtopo : c->vc_topo;
}

const struct vstats *
client_stats(const struct vclient *c)
{
	return &c->vc_stats;
}

void
client_log_enter(const struct vclient *c)
{
	log_setname(c->vc_logname);
}

void
client_position(const struct vclient *c, struct route_pos *rp)
{
	double	real_ms = (double)(client_now_ms() - c->vc_start_ms);

	route_at(c->vc_route, route_sim_seconds(c->vc_route, real_ms) +
	    (double)c->vc_offset_ms / 1000.0, rp);
}

const char *
client_state_name(enum vc_state s)
{
	switch (s) {
	case VC_OFF:
		return "off";
	case VC_IDLE:
		return "idle";
	case VC_AUTH:
		return "auth";
	case VC_OPEN:
		return "open";
	case VC_SESSION:
		return "session";
	case VC_REFILL:
		return "refill";
	}
	return "?";
}

void
client_set_state(struct vclient *c, enum vc_state s)
{
	if (c->vc_state != s)
		log_debug("state %s -> %s", client_state_name(c->vc_state),
		    client_state_name(s));
	c->vc_state = s;
}

void
client_error(struct vclient *c, const char *fmt, ...)
{
	char	buf[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_warnx("%s", buf);
	c->vc_stats.vs_errors++;
	vchip_count(c->vc_chip, "errors", 1);
}

void
client_arm(struct vclient *c, uint64_t ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->vc_timer, &tv);
}

void
client_await_service(struct vclient *c)
{
	c->vc_gap_wait = 1;
	c->vc_gap_m3 = 0;
	c->vc_gap_seq = 0;
}

void
client_served(struct vclient *c, int by_m3)
{
	if (!c->vc_gap_wait)
		return;
	c->vc_gap_wait = 0;
	/* From the frame's arrival: our own bookkeeping is not the gap. */
	c->vc_ho->hc_served(c->vc_ho_arg, c->vc_rx_us, by_m3);
}

/* The retransmission delay of the current attempt. */
static uint64_t
client_retry_ms(const struct vclient *c)
{
	return c->vc_conf->vc_retransmit_ms * (uint64_t)c->vc_backoff;
}

struct conn *
client_open_conn(struct vclient *c, const struct endpoint *ep)
{
	struct conn_opts	opts;

	memset(&opts, 0, sizeof(opts));
	opts.co_max_frame = c->vc_conf->vc_common.cc_max_frame;
	opts.co_connect_ms = (int)c->vc_conf->vc_connect_ms;
	return conn_connect(c->vc_base, ep->ep_host, ep->ep_port, &opts,
	    &client_cb, c);
}

void
client_close_conn(struct conn *conn, const char *reason)
{
	conn_set_arg(conn, &client_gone);
	client_ndraining++;
	conn_close(conn, reason);
}

/* Start connecting to the current TSP unless a connection exists. */
static int
client_connect(struct vclient *c)
{
	if (c->vc_conn != NULL)
		return 0;
	if (c->vc_tsp[0] == '\0')
		return -1;
	c->vc_connected = 0;
	c->vc_conn = client_open_conn(c, &c->vc_ep);
	if (c->vc_conn == NULL) {
		c->vc_connfails++;
		log_warnx("cannot connect to %s at %s:%u", c->vc_tsp,
		    c->vc_ep.ep_host, c->vc_ep.ep_port);
		return -1;
	}
	log_debug("connecting to %s at %s:%u", c->vc_tsp, c->vc_ep.ep_host,
	    c->vc_ep.ep_port);
	return 0;
}

/* Retry after a failed or lost connection, backing off. */
static void
client_retry_connect(struct vclient *c)
{
	int	shift = c->vc_connfails;

	if (shift > CLIENT_RECONNECT_SHIFT)
		shift = CLIENT_RECONNECT_SHIFT;
	client_arm(c, (uint64_t)CLIENT_RECONNECT_MS << shift);
}

/* Drop the connection without waiting for its callbacks. */
static void
client_drop(struct vclient *c, const char *reason)
{
	if (c->vc_conn == NULL)
		return;
	client_close_conn(c->vc_conn, reason);
	c->vc_conn = NULL;
	c->vc_connected = 0;
}

/* Ensure a connection for the step; 1 if it is ready to send now. */
static int
client_ready(struct vclient *c)
{
	if (c->vc_conn != NULL && c->vc_connected)
		return 1;
	if (client_connect(c) == -1)
		client_retry_connect(c);
	else
		client_arm(c, client_retry_ms(c));
	return 0;
}

int
client_send_inner(struct vclient *c, const Qroam__SessionInner *in)
{
	Qroam__SessionMsg	sm;
	int			rc;

	if (vmsg_session_out(&sm, c->vc_k1, c->vc_reg.cr_vid, c->vc_tsp,
	    c->vc_tx_seq + 1, in) == -1)
		return -1;
	c->vc_tx_seq++;
	rc = conn_send(c->vc_conn, QROAM__MSG_TYPE__MT_SESSION_MSG,
	    ++c->vc_reqid, &sm.base);
	free(sm.ct.data);
	return rc;
}

int
client_send_control(struct vclient *c, const Qroam__SessionInner *in)
{
	if (client_send_inner(c, in) == -1)
		return -1;
	c->vc_ctl_seq = c->vc_tx_seq;
	return 0;
}

/* F3: send a new M4 (fresh nonce and time). */
static void
client_auth_attempt(struct vclient *c)
{
	Qroam__M4	m4;
	int		rc;

	if (!client_ready(c))
		return;
	if (vmsg_m4(&m4, c->vc_pbv, c->vc_reg.cr_vid, c->vc_reg.cr_chip_id,
	    c->vc_tsp, store_now_ms(), c->vc_nonce) == -1) {
		client_error(c, "auth: cannot build M4 for %s", c->vc_tsp);
		client_arm(c, client_retry_ms(c));
		return;
	}
	rc = conn_send(c->vc_conn, QROAM__MSG_TYPE__MT_M4, ++c->vc_reqid,
	    &m4.base);
	vmsg_m4_clear(&m4);
	if (rc == -1) {
		client_error(c, "auth: cannot send M4 to %s", c->vc_tsp);
		client_arm(c, client_retry_ms(c));
		return;
	}
	c->vc_inflight = 1;
	c->vc_sent_ms = client_now_ms();
	log_info("auth: M4 sent to %s (next retransmit in %llu ms)", c->vc_tsp,
	    (unsigned long long)client_retry_ms(c));
	vchip_event(c->vc_chip, "auth_sent", c->vc_tsp, "request %llu",
	    (unsigned long long)c->vc_reqid);
	client_arm(c, client_retry_ms(c));
}

void
client_start_auth(struct vclient *c)
{
	evtimer_del(c->vc_timer);
	client_set_state(c, VC_AUTH);
	c->vc_authed = 0;
	c->vc_backoff = 1;
	c->vc_inflight = 0;
	client_auth_attempt(c);
}

/*
 * F4: send M3 for the current TSP, with the chip key ck (destroyed
 * durably already) or, when ck is NULL, the M3 a handover prepared.
 */
static void
client_send_m3(struct vclient *c, struct chip_key *ck)
{
	Qroam__M3		 m3;
	Qroam__Telemetry	 d1;
	struct route_pos	 rp;
	int			 rc;

	/* An earlier M3's data was not answered: it is sent again later. */
	telemetry_d1_unanswered(c);
	client_position(c, &rp);
	vmsg_telemetry(&d1, &rp, store_now_ms());
	telemetry_record_id(c, &d1);
	if (ck == NULL) {
		rc = c->vc_ho->hc_m3_take(c->vc_ho_arg, c->vc_tsp, &m3, &d1,
		    c->vc_k1, &c->vc_key_index);
		rc = rc == 1 ? 0 : -1;
	} else {
		qrand_bytes(c->vc_k1, sizeof(c->vc_k1));
		rc = vmsg_m3(&m3, c->vc_reg.cr_vid, c->vc_tsp, ck,
		    c->vc_conf->vc_draw, c->vc_k1, &d1);
		c->vc_key_index = ck->ck_index;
	}
	/* m3.code points into ck: the caller wipes the key once M3 is packed. */
	if (rc == 0)
		rc = conn_send(c->vc_conn, QROAM__MSG_TYPE__MT_M3, ++c->vc_reqid,
		    &m3.base);
	msg_m3_clear(&m3);
	c->vc_tx_seq = c->vc_rx_seq = c->vc_acked = c->vc_nsent = 0;
	c->vc_ctl_seq = 0;
	c->vc_inflight = 1;
	c->vc_sent_ms = client_now_ms();
	client_arm(c, client_retry_ms(c));
	if (rc == -1) {
		client_error(c, "session: cannot send M3 to %s", c->vc_tsp);
		return;
	}
	c->vc_d1 = d1;
	c->vc_has_d1 = 1;
	if (c->vc_gap_wait)
		c->vc_gap_m3 = 1;
	log_info("session: M3 sent to %s with chip key %u (unused keys left:"
	    " %lld)", c->vc_tsp, c->vc_key_index,
	    (long long)vchip_unused(c->vc_chip, c->vc_conf->vc_draw));
}

/*
 * The chip key of the next M3, destroyed durably: send the M3 if it is
 * still due, else the key is burned (the next M3 takes the next one).
 */
static void
client_key_taken(void *arg, enum chip_draw r, struct chip_key *ck)
{
	struct vclient	*c = arg;

	c->vc_keywait = 0;
	client_log_enter(c);
	switch (r) {
	case CHIP_DRAW_OK:
		break;
	case CHIP_DRAW_NONE:
	case CHIP_DRAW_DESTROYED:
		if (c->vc_state == VC_OPEN)
			c->vc_owner->oc_exhausted(c->vc_owner_arg);
		return;
	case CHIP_DRAW_ERROR:
		client_error(c, "session: cannot take a chip key; M3 not sent");
		if (c->vc_state == VC_OPEN)
			client_arm(c, client_retry_ms(c));
		return;
	}
	if (c->vc_state != VC_OPEN || c->vc_conn == NULL || !c->vc_connected) {
		log_info("session: chip key %u taken for an M3 no longer due;"
		    " it is burned", ck->ck_index);
		chip_key_wipe(ck);
		if (c->vc_state == VC_OPEN)
			client_arm(c, 1);
		return;
	}
	client_send_m3(c, ck);
	chip_key_wipe(ck);
}

/* F4: draw K1 and a chip key (destroyed before sending), send M3. */
static void
client_open_attempt(struct vclient *c)
{
	if (!client_ready(c))
		return;
	if (c->vc_keywait) {
		client_arm(c, client_retry_ms(c));
		return;
	}
	/* A handover may have prepared this M3 (its key is gone already). */
	if (c->vc_ho->hc_m3_ready(c->vc_ho_arg, c->vc_tsp)) {
		client_send_m3(c, NULL);
		return;
	}
	c->vc_keywait = 1;
	client_arm(c, client_retry_ms(c));
	vchip_take_key(c->vc_chip, c->vc_conf->vc_draw, client_key_taken, c);
}

void
client_start_session(struct vclient *c)
{
	evtimer_del(c->vc_timer);
	crypto_wipe(c->vc_k1, sizeof(c->vc_k1));
	client_set_state(c, VC_OPEN);
	c->vc_backoff = 1;
	c->vc_inflight = 0;
	client_open_attempt(c);
}

/* The step timer: retransmit (with backoff), retry or reconnect. */
static void
client_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct vclient	*c = arg;
	uint64_t	 waited = client_now_ms() - c->vc_sent_ms;

	(void)fd;
	(void)ev;
	client_log_enter(c);
	if (c->vc_inflight && (c->vc_state == VC_AUTH ||
	    c->vc_state == VC_OPEN)) {
		if (c->vc_backoff < CLIENT_MAXBACKOFF)
			c->vc_backoff *= 2;
		if (c->vc_state == VC_AUTH) {
			log_info("auth: no valid AuthResult from %s after %llu"
			    " ms; retransmitting a new M4", c->vc_tsp,
			    (unsigned long long)waited);
			vchip_event(c->vc_chip, "auth_retransmit", c->vc_tsp,
			    "backoff x%d", c->vc_backoff);
		} else
			log_info("session: no reply to M3 from %s after %llu"
			    " ms; new M3 with the next key", c->vc_tsp,
			    (unsigned long long)waited);
	}
	c->vc_inflight = 0;
	switch (c->vc_state) {
	case VC_AUTH:
		client_auth_attempt(c);
		break;
	case VC_OPEN:
		client_open_attempt(c);
		break;
	case VC_SESSION:
		if (c->vc_conn == NULL && client_connect(c) == -1)
			client_retry_connect(c);
		break;
	case VC_REFILL:
		c->vc_owner->oc_refill(c->vc_owner_arg);
		break;
	case VC_OFF:
	case VC_IDLE:
		break;
	}
}

/* A reply to M4. */
static void
client_auth_reply(struct vclient *c, const struct frame *f)
{
	int	code;

	if (f->f_type == QROAM__MSG_TYPE__MT_STATUS && f->f_request_id != 0 &&
	    f->f_request_id != c->vc_reqid) {
		log_debug("auth: Status for an earlier request ignored");
		return;
	}
	switch (vmsg_auth_check(f, c->vc_pbv, c->vc_reg.cr_vid, c->vc_tsp,
	    c->vc_nonce, &code)) {
	case VMSG_AUTH_OK:
		break;
	case VMSG_AUTH_REFUSED:
		client_error(c, "auth: %s refused M4: %s (%d); retransmitting"
		    " after %llu ms", c->vc_tsp, msg_status_name(code), code,
		    (unsigned long long)client_retry_ms(c));
		return;
	case VMSG_AUTH_BAD_SIG:
		client_error(c, "auth: AuthResult from %s has a bad signature;"
		    " ignored", c->vc_tsp);
		return;
	case VMSG_AUTH_OTHER:
		log_debug("auth: AuthResult for an earlier M4 ignored");
		return;
	case VMSG_AUTH_MALFORMED:
		client_error(c, "auth: malformed %s from %s; ignored",
		    frame_type_name(f->f_type), c->vc_tsp);
		return;
	}
	evtimer_del(c->vc_timer);
	c->vc_inflight = 0;
	c->vc_authed = 1;
	c->vc_stats.vs_auth_ok++;
	vchip_count(c->vc_chip, "auth_ok", 1);
	vchip_event(c->vc_chip, "auth_ok", c->vc_tsp, "after %llu ms",
	    (unsigned long long)(client_now_ms() - c->vc_sent_ms));
	log_info("auth: %s authenticated us (signature verified, %llu ms)",
	    c->vc_tsp, (unsigned long long)(client_now_ms() - c->vc_sent_ms));
	client_start_session(c);
}

/* A Status reply to M3 or in a session. */
static void
client_status(struct vclient *c, const struct frame *f)
{
	int	code;

	if (vmsg_status(f, &code) == -1) {
		client_error(c, "malformed Status from %s; ignored", c->vc_tsp);
		return;
	}
	if (c->vc_state == VC_OPEN && f->f_request_id != 0 &&
	    f->f_request_id != c->vc_reqid) {
		log_debug("session: Status for an earlier request ignored");
		return;
	}
	if (code == QROAM__STATUS_CODE__AUTH_REQUIRED) {
		log_info("%s requires authentication: running F3", c->vc_tsp);
		vchip_event(c->vc_chip, "session_refused", c->vc_tsp,
		    "AUTH_REQUIRED");
		c->vc_ho->hc_auth_required(c->vc_ho_arg);
		client_start_auth(c);
		return;
	}
	if (c->vc_state == VC_OPEN) {
		vchip_event(c->vc_chip, "session_refused", c->vc_tsp, "%s",
		    msg_status_name(code));
		client_error(c, "session: %s refused M3 with key %u: %s; next"
		    " M3 in %llu ms", c->vc_tsp, c->vc_key_index,
		    msg_status_name(code), (unsigned long long)client_retry_ms(c));
		c->vc_inflight = 0;
		client_arm(c, client_retry_ms(c));
		if (c->vc_backoff < CLIENT_MAXBACKOFF)
			c->vc_backoff *= 2;
		return;
	}
	client_error(c, "session: %s replied %s", c->vc_tsp,
	    msg_status_name(code));
}

/* The session is open: the M3 was answered under K1. */
static void
client_session_open(struct vclient *c, const Qroam__ServiceResponse *sr)
{
	uint64_t	now = client_now_ms();
	char		gap[64] = "";

	evtimer_del(c->vc_timer);
	c->vc_inflight = 0;
	c->vc_backoff = 1;
	client_set_state(c, VC_SESSION);
	c->vc_stats.vs_sessions++;
	vchip_count(c->vc_chip, "sessions", 1);
	/* D1 is committed with the session: the answer covers it. */
	if (c->vc_has_d1) {
		c->vc_has_d1 = 0;
		c->vc_stats.vs_stored++;
		vmetrics_telemetry_stored(1);
		vchip_count(c->vc_chip, "telemetry_stored", 1);
	}
	/* What no stored_seq covered goes out again in this session. */
	vrecq_session(&c->vc_recs);
	if (c->vc_first)
		snprintf(gap, sizeof(gap), ", %llu ms after entering the region",
		    (unsigned long long)(now - c->vc_entered_ms));
	c->vc_first = 0;
	vchip_event(c->vc_chip, "session_open", c->vc_tsp, "key %u%s",
	    c->vc_key_index, gap);
	log_info("session: open with %s (key %u, region %s, reply after %llu"
	    " ms%s)", c->vc_tsp, c->vc_key_index, sr->region ? sr->region : "-",
	    (unsigned long long)(now - c->vc_sent_ms), gap);
	if (vrecq_len(&c->vc_recs) > 0)
		log_info("session: %zu telemetry records not yet stored go to %s"
		    " again", vrecq_len(&c->vc_recs), c->vc_tsp);
	if (c->vc_gap_m3)
		client_served(c, 1);
}

/* A ServiceResponse: the M3 reply, or one in the open session. */
static void
client_response(struct vclient *c, const Qroam__ServiceResponse *sr)
{
	if (c->vc_state == VC_OPEN && sr->ack_seq == 0)
		client_session_open(c, sr);
	else if (c->vc_state == VC_SESSION)
		telemetry_response(c, sr);
	else
		log_debug("session: ack %llu from %s ignored in state %s",
		    (unsigned long long)sr->ack_seq, c->vc_tsp,
		    client_state_name(c->vc_state));
}

/* A SessionMsg from the TSP: the M3 reply, an ack, a Bye or a handover. */
static void
client_session_msg(struct vclient *c, const struct frame *f)
{
	Qroam__SessionInner	*in;
	const char		*why = "?";

	in = vmsg_session_in(f, c->vc_k1, c->vc_reg.cr_vid, c->vc_tsp,
	    &c->vc_rx_seq, &why);
	if (in == NULL) {
		client_error(c, "session: %s from %s; ignored", why, c->vc_tsp);
		return;
	}
	switch (in->body_case) {
	case QROAM__SESSION_INNER__BODY_RESPONSE:
		client_response(c, in->response);
		break;
	case QROAM__SESSION_INNER__BODY_M5:
	case QROAM__SESSION_INNER__BODY_READY:
		if (c->vc_state != VC_SESSION)
			log_info("session: %s from %s before the session"
			    " opened; ignored", in->body_case ==
			    QROAM__SESSION_INNER__BODY_M5 ? "M5" :
			    "HandoverReady", c->vc_tsp);
		else if (in->body_case == QROAM__SESSION_INNER__BODY_M5)
			c->vc_ho->hc_m5(c->vc_ho_arg, in->m5);
		else
			c->vc_ho->hc_ready(c->vc_ho_arg, in->ready);
		break;
	case QROAM__SESSION_INNER__BODY_BYE:
		log_info("session: %s ended the session (%s); new session in"
		    " %llu ms", c->vc_tsp, in->bye->reason ? in->bye->reason :
		    "no reason", (unsigned long long)c->vc_conf->vc_retransmit_ms);
		client_set_state(c, VC_OPEN);
		c->vc_inflight = 0;
		c->vc_backoff = 1;
		client_arm(c, client_retry_ms(c));
		break;
	default:
		client_error(c, "session: unexpected message from %s; ignored",
		    c->vc_tsp);
		break;
	}
	qroam__session_inner__free_unpacked(in, NULL);
}

/* Dispatch one frame from the TSP by state and type. */
static void
client_on_frame(struct conn *conn, const struct frame *f, void *arg)
{
	struct vclient	*c = arg;

	if (arg == &client_gone)
		return;
	c->vc_rx_us = client_now_us();
	client_log_enter(c);
	if (conn == c->vc_pre.vp_conn) {
		entry_on_frame(c, f);
		return;
	}
	if (conn != c->vc_conn)
		return;
	if (c->vc_state == VC_AUTH &&
	    f->f_type == QROAM__MSG_TYPE__MT_SESSION_MSG) {
		log_debug("SessionMsg from %s ignored while authenticating",
		    c->vc_tsp);
		return;
	}
	if (c->vc_state == VC_AUTH) {
		client_auth_reply(c, f);
		return;
	}
	if (c->vc_state != VC_OPEN && c->vc_state != VC_SESSION) {
		log_debug("%s from %s ignored in state %s",
		    frame_type_name(f->f_type), c->vc_tsp,
		    client_state_name(c->vc_state));
		return;
	}
	switch (f->f_type) {
	case QROAM__MSG_TYPE__MT_STATUS:
		client_status(c, f);
		break;
	case QROAM__MSG_TYPE__MT_SESSION_MSG:
		client_session_msg(c, f);
		break;
	default:
		client_error(c, "unexpected %s (type %u) from %s; ignored",
		    frame_type_name(f->f_type), f->f_type, c->vc_tsp);
		break;
	}
}

/* The connection is up: send what the current step waits to send. */
static void
client_on_connected(struct conn *conn, void *arg)
{
	struct vclient	*c = arg;

	if (arg == &client_gone)
		return;
	client_log_enter(c);
	if (conn == c->vc_pre.vp_conn) {
		entry_on_connected(c);
		return;
	}
	if (conn != c->vc_conn)
		return;
	c->vc_connected = 1;
	c->vc_connfails = 0;
	log_debug("connected to %s at %s", c->vc_tsp, conn_peer_addr(conn));
	evtimer_del(c->vc_timer);
	if (c->vc_state == VC_AUTH)
		client_auth_attempt(c);
	else if (c->vc_state == VC_OPEN)
		client_open_attempt(c);
	else if (c->vc_state == VC_SESSION && vrecq_len(&c->vc_recs) > 0) {
		/*
		 * The same session, but what was not covered may have died
		 * with the TSP or the connection: it goes again, new seqs.
		 */
		vrecq_session(&c->vc_recs);
		log_info("session: reconnected to %s; %zu telemetry records not"
		    " yet stored go again", c->vc_tsp, vrecq_len(&c->vc_recs));
	}
}

/* The connection is gone: reconnect later if a step still needs it. */
static void
client_on_close(struct conn *conn, const char *reason, void *arg)
{
	struct vclient	*c = arg;
	int		 was = 0;

	if (arg == &client_gone) {
		client_ndraining--;
		return;
	}
	client_log_enter(c);
	if (conn == c->vc_pre.vp_conn) {
		entry_on_close(c, reason);
		return;
	}
	if (conn != c->vc_conn)
		return;
	was = c->vc_connected;
	c->vc_conn = NULL;
	c->vc_connected = 0;
	if (was)
		log_info("connection to %s lost: %s", c->vc_tsp, reason);
	else {
		c->vc_connfails++;
		log_info("cannot reach %s at %s:%u: %s", c->vc_tsp,
		    c->vc_ep.ep_host, c->vc_ep.ep_port, reason);
	}
	if (c->vc_state == VC_AUTH || c->vc_state == VC_OPEN ||
	    c->vc_state == VC_SESSION)
		client_retry_connect(c);
}

void
client_leave(struct vclient *c, const char *reason, int power_off)
{
	Qroam__SessionInner	in = QROAM__SESSION_INNER__INIT;
	Qroam__Bye		bye = QROAM__BYE__INIT;

	evtimer_del(c->vc_timer);
	c->vc_inflight = 0;
	if (c->vc_state == VC_SESSION && c->vc_connected) {
		bye.reason = (char *)reason;
		bye.has_power_off = power_off != 0;
		bye.power_off = power_off != 0;
		in.body_case = QROAM__SESSION_INNER__BODY_BYE;
		in.bye = &bye;
		if (client_send_inner(c, &in) == 0)
			log_info("session: Bye sent to %s (%s)", c->vc_tsp,
			    reason);
	}
	telemetry_d1_unanswered(c);
	crypto_wipe(c->vc_k1, sizeof(c->vc_k1));
	client_drop(c, reason);
}

void
client_drop_session(struct vclient *c, const char *reason)
{
	evtimer_del(c->vc_timer);
	c->vc_inflight = 0;
	telemetry_d1_unanswered(c);
	crypto_wipe(c->vc_k1, sizeof(c->vc_k1));
	client_drop(c, reason);
	client_set_state(c, VC_IDLE);
}

void
client_tick(struct vclient *c, const struct route_pos *rp, int may_rekey)
{
	uint64_t	rekey = c->vc_conf->vc_session_rekey;

	if (c->vc_state != VC_SESSION)
		return;
	if (c->vc_conn == NULL) {
		if (!evtimer_pending(c->vc_timer, NULL) &&
		    client_connect(c) == -1)
			client_retry_connect(c);
		return;
	}
	if (!c->vc_connected)
		return;
	if (rekey != 0 && c->vc_nsent >= rekey && may_rekey) {
		log_info("session: %llu telemetry messages sent to %s; new"
		    " session with the next key", (unsigned long long)c->vc_nsent,
		    c->vc_tsp);
		client_start_session(c);
		return;
	}
	telemetry_tick(c, rp);
}

int
client_draining(void)
{
	return client_ndraining;
}
