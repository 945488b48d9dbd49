/*
 * Handover from the vehicle's side.  M5 is answered from the route: the
 * next TSP is the first candidate whose region the rest of the route
 * enters; service is declined when the trip ends inside the current
 * region (or, with decline_at_end, when no other region lies ahead).
 * HandoverReady prepares the M3 for the next TSP (the chip key destroyed,
 * K1 wrapped) and opens a second connection to it ahead of the boundary
 * (entry.c).  With prepared entry the M3 goes out on it at once and the
 * vehicle holds two sessions until it crosses, or ends the second with
 * Bye when it turns away from that region; with entry on_crossing the M3
 * goes out on the crossing.  Every crossing is logged and journalled with
 * its service gap: from the crossing to the new TSP's first
 * ServiceResponse to a message sent at or after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "crypto.h"
#include "handover.h"
#include "ids.h"
#include "log.h"
#include "rand.h"
#include "vmetrics.h"

#define VHO_MAXREGION	4096
/*
 * Prepared entry: a vehicle this much farther from the next region than
 * it came since HandoverReady has turned away from it.
 */
#define VHO_TURNBACK_M	200.0

/* Release candidate regions built by vho_candidates(). */
static void
vho_candidates_free(struct topo_tsp *tt, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(tt[i].tt_region);
}

/* Copy a region into tt; 0 or -1. */
static int
vho_region_copy(struct topo_tsp *tt, const struct geo_point *pts, size_t n)
{
	if (n == 0 || n > VHO_MAXREGION ||
	    (tt->tt_region = calloc(n, sizeof(*pts))) == NULL)
		return -1;
	memcpy(tt->tt_region, pts, n * sizeof(*pts));
	tt->tt_nregion = n;
	return 0;
}

/*
 * The candidates of M5 as regions: the region M5 carries, else the one
 * the vehicle knows for that TSP.  Invalid entries and the current TSP
 * are left out.  Returns how many were written to out.
 */
static size_t
vho_candidates(const struct vclient *c, const Qroam__M5 *m5,
    struct topo_tsp *out, size_t max)
{
	const Qroam__TspInfo	*ti;
	const struct topo_tsp	*known;
	struct geo_point	*pts;
	size_t			 i, j, n = 0;

	for (i = 0; i < m5->n_candidates && n < max; i++) {
		ti = m5->candidates[i];
		if (!id_valid_name(ti->tsp_id) || strcmp(ti->tsp_id,
		    c->vc_tsp) == 0)
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		snprintf(out[n].tt_id, sizeof(out[n].tt_id), "%s", ti->tsp_id);
		if (ti->n_region >= 3 && ti->n_region <= VHO_MAXREGION &&
		    (pts = calloc(ti->n_region, sizeof(*pts))) != NULL) {
			for (j = 0; j < ti->n_region; j++) {
				pts[j].gp_lat = ti->region[j]->lat;
				pts[j].gp_lon = ti->region[j]->lon;
			}
			out[n].tt_region = pts;
			out[n].tt_nregion = ti->n_region;
		} else if ((known = topo_tsp(client_tsps(c),
		    ti->tsp_id)) != NULL && vho_region_copy(&out[n],
		    known->tt_region, known->tt_nregion) == -1)
			continue;
		n++;
	}
	return n;
}

/* 1 if the region of another TSP the vehicle knows lies ahead. */
static int
vho_region_ahead(const struct vclient *c, double from_m, double to_m)
{
	const struct topo	*t = client_tsps(c);
	struct topo_tsp		*others;
	size_t			 i, n = 0;
	int			 r;

	if ((others = calloc(t->t_ntsps + 1, sizeof(*others))) == NULL)
		return 1;
	for (i = 0; i < t->t_ntsps; i++)
		if (strcmp(t->t_tsps[i].tt_id, c->vc_tsp) != 0)
			others[n++] = t->t_tsps[i];
	r = route_first_region(c->vc_route, from_m, to_m, others, n, NULL);
	free(others);
	return r >= 0;
}

/* Route distance (m) where the trip ends; -1 when it has no end. */
static double
vho_trip_end_m(const struct vclient *c)
{
	const struct vconf	*conf = c->vc_conf;

	if (conf->vc_trip_ms == 0)
		return -1;
	return route_distance(c->vc_route, (double)(conf->vc_trip_ms +
	    c->vc_offset_ms) / 1000.0);
}

/*
 * Decide the answer to M5 from the rest of the route.  Returns 1 (continue,
 * next written) or 0 (decline), with the reason in why.
 */
static int
vho_decide(struct vclient *c, const struct topo_tsp *cands, size_t n,
    char next[33], char *why, size_t whylen)
{
	const struct topo_tsp	*cur;
	struct route_pos	 rp;
	double			 from, to, at = 0;
	int			 i;

	client_position(c, &rp);
	from = rp.rp_odometer_m;
	to = vho_trip_end_m(c);
	cur = topo_tsp(client_tsps(c), c->vc_tsp);
	if (cur != NULL && !route_leaves(c->vc_route, from, to, cur)) {
		snprintf(why, whylen, "the trip ends in the region of %s",
		    c->vc_tsp);
		return 0;
	}
	if ((i = route_first_region(c->vc_route, from, to, cands, n,
	    &at)) >= 0) {
		snprintf(next, 33, "%s", cands[i].tt_id);
		snprintf(why, whylen, "the route enters its region in %.0f m",
		    at - from);
		return 1;
	}
	if (c->vc_conf->vc_decline_at_end && !vho_region_ahead(c, from, to)) {
		snprintf(why, whylen, "%s is the last region of the route",
		    c->vc_tsp);
		return 0;
	}
	if (n == 0) {
		snprintf(why, whylen, "M5 names no usable candidate");
		return 0;
	}
	snprintf(next, 33, "%s", cands[0].tt_id);
	snprintf(why, whylen, "no candidate region lies on the route; taking"
	    " the first candidate");
	return 1;
}

/* The candidates' ids, comma-separated, for logs and the journal. */
static void
vho_names(const Qroam__M5 *m5, char *buf, size_t len)
{
	size_t	i, off = 0;
	int	w;

	buf[0] = '\0';
	for (i = 0; i < m5->n_candidates && off < len; i++) {
		w = snprintf(buf + off, len - off, "%s%s", i ? "," : "",
		    id_valid_name(m5->candidates[i]->tsp_id) ?
		    m5->candidates[i]->tsp_id : "?");
		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (m5->n_candidates == 0)
		snprintf(buf, len, "-");
}

/* Send M6 on the session; 0 or -1. */
static int
vho_send_m6(struct vclient *c, int cont, const char *next)
{
	Qroam__SessionInner	in = QROAM__SESSION_INNER__INIT;
	Qroam__M6		m6 = QROAM__M6__INIT;

	m6.continue_service = cont;
	if (cont)
		m6.next_tsp_id = (char *)next;
	in.body_case = QROAM__SESSION_INNER__BODY_M6;
	in.m6 = &m6;
	return client_send_control(c, &in);
}

/* M5 from the current TSP: choose from the route and answer M6. */
static void
vho_m5(void *arg, const Qroam__M5 *m5)
{
	struct vho	*ho = arg;
	struct vclient	*c = ho->ho_client;
	struct topo_tsp	 cands[TOPO_MAXTSP];
	char		 names[512], next[33] = "", why[160];
	size_t		 n;
	int		 cont;

	vho_names(m5, names, sizeof(names));
	n = vho_candidates(c, m5, cands, TOPO_MAXTSP);
	cont = vho_decide(c, cands, n, next, why, sizeof(why));
	vho_candidates_free(cands, n);
	log_info("handover: M5 from %s, candidates %s (boundary near %.5f,"
	    "%.5f)", c->vc_tsp, names, m5->projected->lat,
	    m5->projected->lon);
	vchip_event(c->vc_chip, "m5", c->vc_tsp, "candidates=%s", names);
	if (vho_send_m6(c, cont, next) == -1) {
		client_error(c, "handover: cannot send M6 to %s", c->vc_tsp);
		return;
	}
	vchip_event(c->vc_chip, "m6", c->vc_tsp, "continue=%d next=%s", cont,
	    cont ? next : "-");
	if (cont) {
		log_info("handover: M6 to %s: continue with %s (%s)",
		    c->vc_tsp, next, why);
		memcpy(ho->ho_next, next, sizeof(ho->ho_next));
		return;
	}
	log_info("handover: M6 to %s: service declined (%s); no more"
	    " service in this region", c->vc_tsp, why);
	ho->ho_next[0] = '\0';
	ho->ho_declined = 1;
	client_drop_session(c, "service declined");
}

/* Forget the prepared M3; its key stays destroyed (burned). */
static void
vho_m3_discard(struct vho *ho, const char *reason)
{
	if (!ho->ho_m3)
		return;
	log_info("handover: M3 prepared for %s not sent (%s); chip key %u"
	    " is burned", ho->ho_m3_tsp, reason, ho->ho_m3_index);
	ho->ho_m3 = 0;
	crypto_wipe(ho->ho_m3_k1, sizeof(ho->ho_m3_k1));
	crypto_wipe(&ho->ho_m3_wrap, sizeof(ho->ho_m3_wrap));
}

/*
 * The chip key for the M3 prepared for ho_m3_want, destroyed durably:
 * wrap a fresh K1 under it and send the M3 at once if the second
 * connection waits for it.  A key that comes when that TSP no longer
 * holds our context is burned.
 */
static void
vho_m3_key(void *arg, enum chip_draw r, struct chip_key *ck)
{
	struct vho	*ho = arg;
	struct vclient	*c = ho->ho_client;
	const char	*tsp = ho->ho_m3_want;
	int		 rc;

	ho->ho_m3_pending = 0;
	client_log_enter(c);
	if (r != CHIP_DRAW_OK) {
		if (r == CHIP_DRAW_ERROR)
			client_error(c, "handover: cannot take a chip key; no M3"
			    " prepared for %s", tsp);
		else
			log_info("handover: no chip key to prepare the M3 for"
			    " %s", tsp);
		return;
	}
	if (ho->ho_m3 || strcmp(ho->ho_ready, tsp) != 0) {
		log_info("handover: chip key %u taken for an M3 for %s no"
		    " longer due; it is burned", ck->ck_index, tsp);
		chip_key_wipe(ck);
		return;
	}
	qrand_bytes(ho->ho_m3_k1, sizeof(ho->ho_m3_k1));
	rc = vmsg_m3_wrap(&ho->ho_m3_wrap, c->vc_reg.cr_vid, tsp, ck->ck_key,
	    ho->ho_m3_k1);
	ho->ho_m3_index = ck->ck_index;
	memcpy(ho->ho_m3_code, ck->ck_code, sizeof(ho->ho_m3_code));
	chip_key_wipe(ck);
	if (rc == -1) {
		crypto_wipe(ho->ho_m3_k1, sizeof(ho->ho_m3_k1));
		client_error(c, "handover: cannot wrap K1 for %s; chip key %u is"
		    " burned", tsp, ho->ho_m3_index);
		return;
	}
	ho->ho_m3 = 1;
	snprintf(ho->ho_m3_tsp, sizeof(ho->ho_m3_tsp), "%s", tsp);
	log_info("handover: M3 for %s prepared with chip key %u", tsp,
	    ho->ho_m3_index);
	entry_m3_ready(c);
}

/*
 * Prepare the M3 for the TSP holding our context: take the next chip key
 * (destroyed durably before it comes) and wrap a fresh K1 under it, so
 * that the crossing costs no chip write.  Nothing is prepared when the
 * chip has no key left or fails; the crossing then draws as usual.
 */
static void
vho_m3_prepare(struct vho *ho, const char *tsp)
{
	struct vclient	*c = ho->ho_client;

	snprintf(ho->ho_m3_want, sizeof(ho->ho_m3_want), "%s", tsp);
	if (ho->ho_m3_pending)
		return;
	ho->ho_m3_pending = 1;
	vchip_take_key(c->vc_chip, c->vc_conf->vc_draw, vho_m3_key, ho);
}

/* 1 if the M3 for tsp is prepared. */
static int
vho_m3_ready(void *arg, const char *tsp)
{
	struct vho	*ho = arg;

	return ho->ho_m3 && strcmp(ho->ho_m3_tsp, tsp) == 0;
}

/* The client's F4, or prepared entry, asks for the M3 prepared for tsp. */
static int
vho_m3_take(void *arg, const char *tsp, Qroam__M3 *m3,
    const Qroam__Telemetry *d1, uint8_t k1[32], uint32_t *key_index)
{
	struct vho	*ho = arg;
	struct vclient	*c = ho->ho_client;
	int		 rc;

	qroam__m3__init(m3);
	if (!ho->ho_m3 || strcmp(ho->ho_m3_tsp, tsp) != 0)
		return 0;
	ho->ho_m3 = 0;
	memcpy(k1, ho->ho_m3_k1, 32);
	*key_index = ho->ho_m3_index;
	rc = vmsg_m3_wrapped(m3, c->vc_reg.cr_vid, tsp, ho->ho_m3_index,
	    ho->ho_m3_code, c->vc_conf->vc_draw, k1, &ho->ho_m3_wrap, d1);
	crypto_wipe(ho->ho_m3_k1, sizeof(ho->ho_m3_k1));
	crypto_wipe(&ho->ho_m3_wrap, sizeof(ho->ho_m3_wrap));
	return rc == 0 ? 1 : -1;
}

/* Check a HandoverReady before acting on it; NULL or the reason it fails. */
static const char *
vho_ready_check(const struct vclient *c, const Qroam__HandoverReady *hr)
{
	if (!id_valid_name(hr->tsp_id))
		return "bad tsp_id";
	if (strcmp(hr->tsp_id, c->vc_tsp) == 0)
		return "names the current TSP";
	if (hr->host[0] == '\0' || strlen(hr->host) >=
	    sizeof(((struct endpoint *)0)->ep_host))
		return "bad host";
	if (hr->port == 0 || hr->port > 65535)
		return "bad port";
	return NULL;
}

/* Prepared entry, unless the configuration keeps the patent's order. */
static int
vho_entry_prepared(const struct vclient *c)
{
	return c->vc_conf->vc_entry == VCONF_ENTRY_PREPARED &&
	    !c->vc_conf->vc_reauth_on_entry;
}

/* How far p is from tsp's region (m); 0 when unknown. */
static double
vho_distance(const struct vclient *c, const char *tsp, struct geo_point p)
{
	const struct topo_tsp	*tt = topo_tsp(client_tsps(c), tsp);
	double			 d;

	if (tt == NULL || (d = route_region_distance(tt, p)) < 0)
		return 0;
	return d;
}

/*
 * HandoverReady: remember the TSP, prepare its M3 and open the second
 * connection to it, which sends the M3 at once with prepared entry.
 */
static void
vho_ready(void *arg, const Qroam__HandoverReady *hr)
{
	struct vho		*ho = arg;
	struct vclient		*c = ho->ho_client;
	struct endpoint		 ep;
	struct route_pos	 rp;
	const char		*bad;
	int			 prepared = vho_entry_prepared(c);

	if ((bad = vho_ready_check(c, hr)) != NULL) {
		client_error(c, "handover: HandoverReady from %s refused: %s",
		    c->vc_tsp, bad);
		return;
	}
	if (ho->ho_next[0] != '\0' && strcmp(ho->ho_next, hr->tsp_id) != 0)
		log_warnx("handover: HandoverReady names %s, our M6 named %s",
		    hr->tsp_id, ho->ho_next);
	entry_drop(c, "replaced by a newer HandoverReady", 0);
	if (strcmp(ho->ho_m3_tsp, hr->tsp_id) != 0)
		vho_m3_discard(ho, "another TSP holds our context now");
	snprintf(ho->ho_ready, sizeof(ho->ho_ready), "%s", hr->tsp_id);
	memset(&ep, 0, sizeof(ep));
	snprintf(ep.ep_host, sizeof(ep.ep_host), "%s", hr->host);
	ep.ep_port = (uint16_t)hr->port;
	vchip_event(c->vc_chip, "handover_ready", hr->tsp_id, "from=%s",
	    c->vc_tsp);
	log_info("handover: %s holds our context (HandoverReady from %s);"
	    " connecting to %s:%u (%s)", ho->ho_ready, c->vc_tsp, ep.ep_host,
	    ep.ep_port, prepared ? "prepared entry: M3 at once" :
	    "entry on_crossing: M3 on the crossing");
	if (!ho->ho_m3)
		vho_m3_prepare(ho, ho->ho_ready);
	client_position(c, &rp);
	ho->ho_near_m = vho_distance(c, ho->ho_ready, rp.rp_point);
	if (entry_open(c, ho->ho_ready, &ep, prepared) == -1)
		log_warnx("handover: cannot connect to %s at %s:%u; the"
		    " crossing connects then", ho->ho_ready, ep.ep_host,
		    ep.ep_port);
}

void
vho_follow(struct vho *ho, const struct route_pos *rp)
{
	struct vclient	*c = ho->ho_client;
	double		 d;

	if (c->vc_pre.vp_state == VP_NONE || !c->vc_pre.vp_prepare ||
	    ho->ho_ready[0] == '\0')
		return;
	d = vho_distance(c, ho->ho_ready, rp->rp_point);
	if (d < ho->ho_near_m) {
		ho->ho_near_m = d;
		return;
	}
	if (d - ho->ho_near_m < VHO_TURNBACK_M)
		return;
	log_info("handover: turned away from the region of %s (%.0f m from it,"
	    " %.0f m at the closest); ending the prepared session there,"
	    " still served by %s", ho->ho_ready, d, ho->ho_near_m, c->vc_tsp);
	vchip_event(c->vc_chip, "turned_back", ho->ho_ready,
	    "closest_m=%.0f now_m=%.0f", ho->ho_near_m, d);
	c->vc_stats.vs_turned_back++;
	vchip_count(c->vc_chip, "turned_back", 1);
	entry_drop(c, "turned back", 0);
	vho_m3_discard(ho, "turned back");
	ho->ho_ready[0] = ho->ho_next[0] = '\0';
}

enum entry_adopt
vho_cross(struct vho *ho, const char *from, const struct topo_tsp *tt,
    uint64_t detect_us)
{
	struct vclient		*c = ho->ho_client;
	int			 ready = strcmp(ho->ho_ready, tt->tt_id) == 0;
	enum entry_adopt	 ea = ENTRY_NONE;

	if (ready)
		ea = entry_adopt(c);
	else
		entry_drop(c, "the route entered another region", 0);
	if (strcmp(ho->ho_m3_tsp, tt->tt_id) != 0)
		vho_m3_discard(ho, "the route entered another region");
	if (ho->ho_ready[0] != '\0' && !ready)
		log_warnx("handover: %s holds our context but the route"
		    " entered the region of %s", ho->ho_ready, tt->tt_id);
	ho->ho_ready[0] = ho->ho_next[0] = '\0';
	ho->ho_crossing = 0;
	/* Through a stretch without service: from the last region. */
	if (from[0] == '\0')
		from = ho->ho_last;
	if (from[0] == '\0' || strcmp(from, tt->tt_id) == 0 ||
	    !c->vc_authed || ho->ho_declined) {
		ho->ho_declined = 0;
		snprintf(ho->ho_last, sizeof(ho->ho_last), "%s", tt->tt_id);
		return ea;
	}
	ho->ho_crossing = 1;
	ho->ho_reauth = 0;
	ho->ho_cross_us = detect_us;
	client_await_service(c);
	snprintf(ho->ho_from, sizeof(ho->ho_from), "%s", from);
	snprintf(ho->ho_to, sizeof(ho->ho_to), "%s", tt->tt_id);
	snprintf(ho->ho_last, sizeof(ho->ho_last), "%s", tt->tt_id);
	c->vc_stats.vs_crossings++;
	log_info("crossing %s -> %s: %s", from, tt->tt_id, !ready ?
	    "no handover prepared" : ea == ENTRY_OPEN ?
	    "prepared entry, telemetry on the session opened ahead" :
	    ea == ENTRY_OPENING ? "prepared entry, its M3 still unanswered" :
	    "handover prepared, M3 only");
	return ea;
}

void
vho_reauth(struct vho *ho)
{
	if (!ho->ho_crossing || ho->ho_reauth)
		return;
	ho->ho_reauth = 1;
	log_info("crossing %s -> %s: %s", ho->ho_from, ho->ho_to,
	    ho->ho_client->vc_authed ? "no context for us there: F3 + F4" :
	    "authenticating again (reauth_on_entry): F3 + F4");
}

/* The new TSP answered AUTH_REQUIRED. */
static void
vho_auth_required(void *arg)
{
	vho_reauth(arg);
}

/* Keep a gap for the percentiles of the STATS lines. */
static void
vho_keep_gap(struct vho *ho, double ms)
{
	double	*ng;
	size_t	 cap;

	if (ho->ho_ngaps == ho->ho_capgaps) {
		cap = ho->ho_capgaps ? ho->ho_capgaps * 2 : 16;
		if ((ng = reallocarray(ho->ho_gaps, cap, sizeof(*ng))) == NULL)
			return;
		ho->ho_gaps = ng;
		ho->ho_capgaps = cap;
	}
	ho->ho_gaps[ho->ho_ngaps++] = ms;
}

/*
 * The first ServiceResponse since the crossing came at at_us, answering
 * an M3 or, with prepared entry, telemetry: complete the crossing.
 */
static void
vho_served(void *arg, uint64_t at_us, int by_m3)
{
	struct vho	*ho = arg;
	struct vclient	*c = ho->ho_client;
	double		 gap;

	if (!ho->ho_crossing || strcmp(ho->ho_to, c->vc_tsp) != 0)
		return;
	ho->ho_crossing = 0;
	ho->ho_prepared = !by_m3;
	gap = (double)(at_us - ho->ho_cross_us) / 1000.0;
	vho_keep_gap(ho, gap);
	vmetrics_gap(gap);
	if (ho->ho_reauth) {
		c->vc_stats.vs_reauth++;
		vchip_count(c->vc_chip, "reauth_after_handover", 1);
	} else {
		c->vc_stats.vs_handovers++;
		vchip_count(c->vc_chip, "handovers", 1);
	}
	vchip_event(c->vc_chip, "crossing", ho->ho_to,
	    "from=%s to=%s gap_ms=%.1f reauth=%d entry=%s", ho->ho_from,
	    ho->ho_to, gap, ho->ho_reauth, ho->ho_prepared ? "prepared" :
	    "on_crossing");
	log_info("crossing %s -> %s: served after %.1f ms (%s)%s", ho->ho_from,
	    ho->ho_to, gap, ho->ho_reauth ? "re-authenticated" :
	    "handover, no F3", ho->ho_prepared ? " on the session opened"
	    " ahead" : "");
}

void
vho_reset(struct vho *ho, const char *reason)
{
	entry_drop(ho->ho_client, reason, 1);
	vho_m3_discard(ho, reason);
	if (ho->ho_crossing)
		log_info("crossing %s -> %s: not served before %s",
		    ho->ho_from, ho->ho_to, reason);
	ho->ho_crossing = 0;
	ho->ho_declined = 0;
	ho->ho_next[0] = ho->ho_ready[0] = ho->ho_last[0] = '\0';
}

void
vho_free(struct vho *ho)
{
	free(ho->ho_gaps);
	ho->ho_gaps = NULL;
	ho->ho_ngaps = ho->ho_capgaps = 0;
}

int
vho_prepared(const struct vho *ho)
{
	return ho->ho_ready[0] != '\0';
}

static const struct vclient_ho_cb vho_client_cb = {
	vho_m5, vho_ready, vho_m3_ready, vho_m3_take, vho_served,
	vho_auth_required
};

void
vho_init(struct vho *ho, struct vclient *c)
{
	memset(ho, 0, sizeof(*ho));
	ho->ho_client = c;
	client_set_handover(c, &vho_client_cb, ho);
}
