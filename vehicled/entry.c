/*
 * The second connection of a handover (PROTOCOL F6 step 8, F7), to the
 * TSP that holds the vehicle's context after HandoverReady.
 *
 * With prepared entry (the default) the M3 prepared for that TSP goes out
 * on it as soon as it is connected, while the vehicle is still served in
 * the old region: the new TSP commits the session and answers, and the
 * vehicle holds two sessions (make-before-break) until it crosses.  On the
 * crossing the client takes this connection with its session over and its
 * first message in the new region is telemetry on a session that already
 * exists.  With `entry on_crossing` (the patent's order) the connection
 * only waits, and the M3 goes out on the crossing.
 *
 * The connection shares the client's callbacks (client.c hands its events
 * here); its session has its own K1 and sequence numbers until adopted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "conn.h"
#include "crypto.h"
#include "log.h"
#include "store.h"
#include "vmetrics.h"
#include "vmsg.h"

/* Forget the second session; an unanswered M3's data is sent again later. */
static void
entry_forget_session(struct vclient *c)
{
	struct vpre	*p = &c->vc_pre;

	if (p->vp_has_d1) {
		p->vp_has_d1 = 0;
		telemetry_keep(c, &p->vp_d1, 1);
	}
	crypto_wipe(p->vp_k1, sizeof(p->vp_k1));
	p->vp_tx_seq = p->vp_rx_seq = 0;
	p->vp_state = p->vp_conn != NULL ? VP_CONN : VP_NONE;
}

/* Forget everything of the second connection (closed already). */
static void
entry_reset(struct vclient *c)
{
	entry_forget_session(c);
	memset(&c->vc_pre, 0, sizeof(c->vc_pre));
}

int
entry_open(struct vclient *c, const char *tsp, const struct endpoint *ep,
    int prepare)
{
	struct vpre	*p = &c->vc_pre;

	entry_drop(c, "replaced by a newer HandoverReady", 0);
	snprintf(p->vp_tsp, sizeof(p->vp_tsp), "%s", tsp);
	p->vp_ep = *ep;
	p->vp_prepare = prepare;
	if ((p->vp_conn = client_open_conn(c, ep)) == NULL) {
		entry_reset(c);
		return -1;
	}
	p->vp_state = VP_CONN;
	return 0;
}

/* Seal inner as the next SessionMsg of the second session; 0 or -1. */
static int
entry_send_inner(struct vclient *c, const Qroam__SessionInner *in)
{
	struct vpre		*p = &c->vc_pre;
	Qroam__SessionMsg	 sm;
	int			 rc;

	if (vmsg_session_out(&sm, p->vp_k1, c->vc_reg.cr_vid, p->vp_tsp,
	    p->vp_tx_seq + 1, in) == -1)
		return -1;
	p->vp_tx_seq++;
	rc = conn_send(p->vp_conn, QROAM__MSG_TYPE__MT_SESSION_MSG,
	    ++c->vc_reqid, &sm.base);
	free(sm.ct.data);
	return rc;
}

void
entry_drop(struct vclient *c, const char *reason, int power_off)
{
	struct vpre		*p = &c->vc_pre;
	Qroam__SessionInner	 in = QROAM__SESSION_INNER__INIT;
	Qroam__Bye		 bye = QROAM__BYE__INIT;

	if (p->vp_state == VP_NONE)
		return;
	if (p->vp_state == VP_OPEN && p->vp_conn != NULL && p->vp_connected) {
		bye.reason = (char *)reason;
		bye.has_power_off = power_off != 0;
		bye.power_off = power_off != 0;
		in.body_case = QROAM__SESSION_INNER__BODY_BYE;
		in.bye = &bye;
		if (entry_send_inner(c, &in) == 0)
			log_info("entry: Bye sent to %s on the prepared session"
			    " (%s)", p->vp_tsp, reason);
	}
	if (p->vp_conn != NULL) {
		log_debug("entry: connection to %s closed (%s)", p->vp_tsp,
		    reason);
		client_close_conn(p->vp_conn, reason);
		p->vp_conn = NULL;
	}
	entry_reset(c);
}

/* Prepared entry: send the M3 prepared for the TSP, ahead of the boundary. */
static void
entry_send_m3(struct vclient *c)
{
	struct vpre		*p = &c->vc_pre;
	Qroam__M3		 m3;
	Qroam__Telemetry	 d1;
	struct route_pos	 rp;
	int			 rc;

	client_position(c, &rp);
	vmsg_telemetry(&d1, &rp, store_now_ms());
	telemetry_record_id(c, &d1);
	rc = c->vc_ho->hc_m3_take(c->vc_ho_arg, p->vp_tsp, &m3, &d1, p->vp_k1,
	    &p->vp_key_index);
	if (rc == 0) {
		log_info("entry: no M3 prepared for %s; it goes on the crossing",
		    p->vp_tsp);
		return;
	}
	p->vp_reqid = ++c->vc_reqid;
	if (rc == 1)
		rc = conn_send(p->vp_conn, QROAM__MSG_TYPE__MT_M3, p->vp_reqid,
		    &m3.base);
	msg_m3_clear(&m3);
	if (rc == -1) {
		crypto_wipe(p->vp_k1, sizeof(p->vp_k1));
		client_error(c, "entry: cannot send the prepared M3 to %s; a new"
		    " one goes on the crossing", p->vp_tsp);
		return;
	}
	p->vp_d1 = d1;
	p->vp_has_d1 = 1;
	p->vp_tx_seq = p->vp_rx_seq = 0;
	p->vp_sent_ms = client_now_ms();
	p->vp_state = VP_OPENING;
	log_info("entry: M3 sent to %s ahead of the crossing with chip key %u",
	    p->vp_tsp, p->vp_key_index);
}

/* 1 if the prepared M3 is due on the second connection now. */
static int
entry_m3_due(const struct vclient *c)
{
	const struct vpre	*p = &c->vc_pre;

	return p->vp_prepare && p->vp_state == VP_CONN && p->vp_connected &&
	    !p->vp_auth_required;
}

void
entry_on_connected(struct vclient *c)
{
	struct vpre	*p = &c->vc_pre;

	p->vp_connected = 1;
	log_debug("entry: connected to %s", p->vp_tsp);
	if (!entry_m3_due(c))
		return;
	if (c->vc_ho->hc_m3_ready(c->vc_ho_arg, p->vp_tsp))
		entry_send_m3(c);
	else
		log_debug("entry: connected to %s before the prepared M3's key"
		    " is destroyed; the M3 follows it", p->vp_tsp);
}

void
entry_m3_ready(struct vclient *c)
{
	if (entry_m3_due(c))
		entry_send_m3(c);
}

/* The prepared M3 was answered: a second session is open. */
static void
entry_opened(struct vclient *c, const Qroam__ServiceResponse *sr)
{
	struct vpre	*p = &c->vc_pre;
	uint64_t	 ms = client_now_ms() - p->vp_sent_ms;

	p->vp_state = VP_OPEN;
	if (p->vp_has_d1) {
		p->vp_has_d1 = 0;
		c->vc_stats.vs_stored++;
		vmetrics_telemetry_stored(1);
		vchip_count(c->vc_chip, "telemetry_stored", 1);
	}
	c->vc_stats.vs_sessions++;
	c->vc_stats.vs_prepared++;
	vchip_count(c->vc_chip, "sessions", 1);
	vchip_count(c->vc_chip, "prepared_entries", 1);
	vchip_event(c->vc_chip, "session_open", p->vp_tsp,
	    "key %u, prepared entry", p->vp_key_index);
	log_info("entry: session with %s open ahead of the crossing (key %u,"
	    " region %s, reply after %llu ms); still served by %s",
	    p->vp_tsp, p->vp_key_index, sr->region ? sr->region : "-",
	    (unsigned long long)ms, c->vc_tsp[0] ? c->vc_tsp : "no TSP");
}

/* A Status on the second connection: the prepared M3 was refused. */
static void
entry_status(struct vclient *c, const struct frame *f)
{
	struct vpre	*p = &c->vc_pre;
	int		 code;

	if (vmsg_status(f, &code) == -1) {
		client_error(c, "entry: malformed Status from %s; ignored",
		    p->vp_tsp);
		return;
	}
	if (p->vp_state != VP_OPENING || (f->f_request_id != 0 &&
	    f->f_request_id != p->vp_reqid)) {
		log_info("entry: %s replied %s outside the prepared M3; ignored",
		    p->vp_tsp, msg_status_name(code));
		return;
	}
	vchip_event(c->vc_chip, "session_refused", p->vp_tsp, "%s, prepared entry",
	    msg_status_name(code));
	entry_forget_session(c);
	if (code == QROAM__STATUS_CODE__AUTH_REQUIRED) {
		p->vp_auth_required = 1;
		log_info("entry: %s answered the prepared M3 with AUTH_REQUIRED"
		    " (it holds no context for us): F3 there on the crossing",
		    p->vp_tsp);
		return;
	}
	client_error(c, "entry: %s refused the prepared M3 with key %u: %s; a"
	    " new M3 goes on the crossing", p->vp_tsp, p->vp_key_index,
	    msg_status_name(code));
}

/* A SessionMsg of the second session, before the crossing. */
static void
entry_session_msg(struct vclient *c, const struct frame *f)
{
	struct vpre		*p = &c->vc_pre;
	Qroam__SessionInner	*in;
	const char		*why = "?";

	if (p->vp_state != VP_OPENING && p->vp_state != VP_OPEN) {
		log_debug("entry: SessionMsg from %s without a session; ignored",
		    p->vp_tsp);
		return;
	}
	if ((in = vmsg_session_in(f, p->vp_k1, c->vc_reg.cr_vid, p->vp_tsp,
	    &p->vp_rx_seq, &why)) == NULL) {
		client_error(c, "entry: %s from %s; ignored", why, p->vp_tsp);
		return;
	}
	switch (in->body_case) {
	case QROAM__SESSION_INNER__BODY_RESPONSE:
		if (p->vp_state == VP_OPENING && in->response->ack_seq == 0)
			entry_opened(c, in->response);
		else
			log_debug("entry: ServiceResponse (ack %llu) from %s"
			    " before the crossing; nothing to acknowledge",
			    (unsigned long long)in->response->ack_seq,
			    p->vp_tsp);
		break;
	case QROAM__SESSION_INNER__BODY_BYE:
		log_info("entry: %s ended the prepared session (%s); the M3"
		    " goes on the crossing", p->vp_tsp, in->bye->reason ?
		    in->bye->reason : "no reason");
		entry_forget_session(c);
		break;
	default:
		log_info("entry: unexpected message (body %d) from %s before the"
		    " crossing; ignored", (int)in->body_case, p->vp_tsp);
		break;
	}
	qroam__session_inner__free_unpacked(in, NULL);
}

void
entry_on_frame(struct vclient *c, const struct frame *f)
{
	switch (f->f_type) {
	case QROAM__MSG_TYPE__MT_STATUS:
		entry_status(c, f);
		break;
	case QROAM__MSG_TYPE__MT_SESSION_MSG:
		entry_session_msg(c, f);
		break;
	default:
		client_error(c, "entry: unexpected %s from %s before the"
		    " crossing; ignored", frame_type_name(f->f_type),
		    c->vc_pre.vp_tsp);
		break;
	}
}

void
entry_on_close(struct vclient *c, const char *reason)
{
	struct vpre	*p = &c->vc_pre;

	log_info("entry: connection to %s %s: %s; %s", p->vp_tsp,
	    p->vp_connected ? "lost" : "failed", reason,
	    p->vp_state == VP_OPEN ? "the crossing reconnects to its session" :
	    "the crossing connects then");
	p->vp_conn = NULL;
	p->vp_connected = 0;
	if (p->vp_state != VP_OPEN)
		entry_reset(c);
}

/* Take the second session's keys and sequence numbers into the client. */
static void
entry_take_session(struct vclient *c)
{
	struct vpre	*p = &c->vc_pre;

	memcpy(c->vc_k1, p->vp_k1, sizeof(c->vc_k1));
	c->vc_key_index = p->vp_key_index;
	c->vc_tx_seq = p->vp_tx_seq;
	c->vc_rx_seq = p->vp_rx_seq;
	c->vc_acked = c->vc_nsent = c->vc_ctl_seq = 0;
	c->vc_backoff = 1;
	/* Request ids are per connection: go on from the M3's. */
	c->vc_reqid = p->vp_reqid;
	c->vc_sent_ms = p->vp_sent_ms;
	if (p->vp_has_d1) {
		c->vc_d1 = p->vp_d1;
		c->vc_has_d1 = 1;
		p->vp_has_d1 = 0;
	}
}

enum entry_adopt
entry_adopt(struct vclient *c)
{
	struct vpre		*p = &c->vc_pre;
	enum entry_adopt	 r = ENTRY_CONN;
	uint64_t		 waited, retry = c->vc_conf->vc_retransmit_ms;

	if (p->vp_state == VP_NONE || c->vc_conn != NULL)
		return ENTRY_NONE;
	c->vc_conn = p->vp_conn;
	c->vc_connected = p->vp_connected;
	c->vc_ep = p->vp_ep;
	switch (p->vp_state) {
	case VP_NONE:
	case VP_CONN:
		r = p->vp_auth_required ? ENTRY_AUTH : ENTRY_CONN;
		break;
	case VP_OPENING:
		entry_take_session(c);
		client_set_state(c, VC_OPEN);
		c->vc_inflight = 1;
		waited = client_now_ms() - c->vc_sent_ms;
		client_arm(c, waited < retry ? retry - waited : 1);
		r = ENTRY_OPENING;
		break;
	case VP_OPEN:
		entry_take_session(c);
		c->vc_inflight = 0;
		c->vc_first = 0;
		client_set_state(c, VC_SESSION);
		vrecq_session(&c->vc_recs);
		r = ENTRY_OPEN;
		break;
	}
	crypto_wipe(p->vp_k1, sizeof(p->vp_k1));
	memset(p, 0, sizeof(*p));
	return r;
}
