/*
 * F6 steps 1 and 2 as TSPA: the M5 offer of a handover when a vehicle's
 * look-ahead leaves this region (at most one per vehicle and session) and
 * the vehicle's M6 answer, which ends the session or starts the handover
 * to the TSP it chose among the candidates.
 */
#include <sys/queue.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "log.h"
#include "msg.h"

#include "region.h"
#include "tspd.h"

/* The M5 a vehicle was sent in one of its sessions. */
struct offer {
	char			 of_vid[VIN_LEN + 1];
	uint64_t		 of_opened_ms;	/* the session offered in */
	uint32_t		 of_key_index;
	int			 of_answered;
	const struct topo_tsp	*of_cand[TOPO_MAXTSP];
	size_t			 of_ncand;
	TAILQ_ENTRY(offer)	 of_entry;
};

struct tspd_offers {
	TAILQ_HEAD(, offer)	 to_list;
};

void
tspd_handover_offer_init(struct tspd *env)
{
	env->t_offers = xcalloc(1, sizeof(*env->t_offers));
	TAILQ_INIT(&env->t_offers->to_list);
}

void
tspd_handover_offer_free(struct tspd *env)
{
	struct offer	*of;

	if (env->t_offers == NULL)
		return;
	while ((of = TAILQ_FIRST(&env->t_offers->to_list)) != NULL) {
		TAILQ_REMOVE(&env->t_offers->to_list, of, of_entry);
		free(of);
	}
	free(env->t_offers);
	env->t_offers = NULL;
}

static struct offer *
offer_find(struct tspd *env, const char *vid)
{
	struct offer	*of;

	TAILQ_FOREACH(of, &env->t_offers->to_list, of_entry)
		if (strcmp(of->of_vid, vid) == 0)
			return of;
	return NULL;
}

static void
offer_drop(struct tspd *env, struct offer *of)
{
	TAILQ_REMOVE(&env->t_offers->to_list, of, of_entry);
	free(of);
}

/*
 * Seal M5 with the candidates of c as cloud->vehicle message tx_seq of
 * session s into out; 0 or -1.
 */
static int
offer_seal(struct tspd *env, const struct tspdb_session *s,
    const struct tspd_candidates *c, uint64_t tx_seq, Qroam__SessionMsg *out)
{
	Qroam__SessionInner	 inner = QROAM__SESSION_INNER__INIT;
	Qroam__M5		 m5 = QROAM__M5__INIT;
	Qroam__Point		 proj = QROAM__POINT__INIT, *pts, **ptsp;
	Qroam__TspInfo		 info[TOPO_MAXTSP], *infop[TOPO_MAXTSP];
	size_t			 i, j, npts = 0, k = 0;
	int			 rc;

	for (i = 0; i < c->c_n; i++)
		npts += c->c_tsp[i]->tt_nregion;
	pts = calloc(npts + 1, sizeof(*pts));
	ptsp = calloc(npts + 1, sizeof(*ptsp));
	if (pts == NULL || ptsp == NULL) {
		free(pts);
		free(ptsp);
		return -1;
	}
	for (i = 0; i < c->c_n; i++) {
		qroam__tsp_info__init(&info[i]);
		info[i].tsp_id = (char *)c->c_tsp[i]->tt_id;
		info[i].host = (char *)c->c_tsp[i]->tt_vehicle.ep_host;
		info[i].port = c->c_tsp[i]->tt_vehicle.ep_port;
		info[i].region = &ptsp[k];
		info[i].n_region = c->c_tsp[i]->tt_nregion;
		for (j = 0; j < c->c_tsp[i]->tt_nregion; j++, k++) {
			qroam__point__init(&pts[k]);
			pts[k].lat = c->c_tsp[i]->tt_region[j].gp_lat;
			pts[k].lon = c->c_tsp[i]->tt_region[j].gp_lon;
			ptsp[k] = &pts[k];
		}
		infop[i] = &info[i];
	}
	proj.lat = c->c_has_exit ? c->c_exit.gp_lat : c->c_projected.gp_lat;
	proj.lon = c->c_has_exit ? c->c_exit.gp_lon : c->c_projected.gp_lon;
	m5.candidates = infop;
	m5.n_candidates = c->c_n;
	m5.projected = &proj;
	inner.body_case = QROAM__SESSION_INNER__BODY_M5;
	inner.m5 = &m5;
	qroam__session_msg__init(out);
	rc = msg_session_seal(s->s_k1, s->s_vid, env->t_id, MSG_DIR_C2V, tx_seq,
	    &inner, out);
	out->vehicle_id = (char *)s->s_vid;
	out->seq = tx_seq;
	free(pts);
	free(ptsp);
	return rc;
}

/* Names of the candidates of c, comma separated, for the log. */
static void
offer_names(const struct tspd_candidates *c, char *buf, size_t len)
{
	size_t	 i, off = 0;
	int	 w;

	buf[0] = '\0';
	for (i = 0; i < c->c_n && off < len; i++) {
		w = snprintf(buf + off, len - off, "%s%s", i ? "," : "",
		    c->c_tsp[i]->tt_id);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

/* 1 if session s has had its M5 already or handovers are off, else 0. */
static int
offer_made(struct tspd *env, const struct tspdb_session *s)
{
	struct offer	*of;

	if (env->t_keysrc == NULL || env->t_offers == NULL)
		return 1;
	return (of = offer_find(env, s->s_vid)) != NULL &&
	    of->of_opened_ms == s->s_opened_ms &&
	    of->of_key_index == s->s_key_index;
}

/*
 * 1 if the vehicle of session s may be offered a handover now: none of
 * its handovers is under way and it holds an authentication here (after
 * a completed handover it does not).  An offer of an older session goes.
 */
static int
offer_allowed(struct tspd *env, const struct tspdb_session *s)
{
	struct offer	*of;

	if (tspd_handover_running(env, s->s_vid))
		return 0;
	if ((of = offer_find(env, s->s_vid)) != NULL)
		offer_drop(env, of);
	return s->s_authed;
}

int
tspd_handover_offer(struct tspd *env, const struct tspdb_session *s,
    const Qroam__Telemetry *t, uint64_t tx_seq, Qroam__SessionMsg *out)
{
	struct tspd_candidates	 c;
	struct geo_point	 pos;
	struct offer		*of;
	char			 names[512];

	if (offer_made(env, s))
		return 0;
	pos.gp_lat = t->lat;
	pos.gp_lon = t->lon;
	/*
	 * A position outside this region is no trigger: the vehicle is not
	 * here, so the record is one sent again after a crossing (F5: the
	 * records no stored_seq covered), or the vehicle left unseen.
	 */
	if (!tspd_region_touches(env->t_self, pos))
		return 0;
	if (!tspd_region_candidates(&env->t_topo, env->t_self, pos, t->heading,
	    t->speed * (double)env->t_conf.tc_look_ahead_ms / 1000.0, &c) ||
	    !offer_allowed(env, s))
		return 0;
	if (c.c_n == 0) {
		log_debug("vehicle=%s leaves the region towards no other TSP "
		    "(%.6f,%.6f)", s->s_vid, c.c_projected.gp_lat,
		    c.c_projected.gp_lon);
		return 0;
	}
	if ((of = calloc(1, sizeof(*of))) == NULL) {
		log_warn("handover offer vehicle=%s", s->s_vid);
		return 0;
	}
	if (offer_seal(env, s, &c, tx_seq, out) == -1) {
		log_warnx("handover offer vehicle=%s: sealing M5 failed",
		    s->s_vid);
		free(of);
		return 0;
	}
	memcpy(of->of_vid, s->s_vid, sizeof(of->of_vid));
	of->of_opened_ms = s->s_opened_ms;
	of->of_key_index = s->s_key_index;
	memcpy(of->of_cand, c.c_tsp, sizeof(of->of_cand));
	of->of_ncand = c.c_n;
	TAILQ_INSERT_TAIL(&env->t_offers->to_list, of, of_entry);
	offer_names(&c, names, sizeof(names));
	log_info("handover offer vehicle=%s seq=%" PRIu64 " candidates=%s "
	    "projected=%.6f,%.6f", s->s_vid, tx_seq, names,
	    c.c_projected.gp_lat, c.c_projected.gp_lon);
	return 1;
}

void
tspd_handover_offer_cancel(struct tspd *env, const char *vid)
{
	struct offer	*of;

	if (env->t_offers != NULL && (of = offer_find(env, vid)) != NULL &&
	    !of->of_answered)
		offer_drop(env, of);
}

void
tspd_handover_session_end(struct tspd *env, const char *vid)
{
	struct offer	*of;

	if (env->t_offers != NULL && (of = offer_find(env, vid)) != NULL)
		offer_drop(env, of);
}

/* The offered candidate named id, or NULL. */
static const struct topo_tsp *
offer_candidate(const struct offer *of, const char *id)
{
	size_t	 i;

	for (i = 0; id != NULL && i < of->of_ncand; i++)
		if (strcmp(of->of_cand[i]->tt_id, id) == 0)
			return of->of_cand[i];
	return NULL;
}

/* Refuse an M6 that answers no offer or names no candidate. */
static void
m6_refuse(struct conn *c, uint64_t request_id,
    const struct tspdb_session *s, const Qroam__M6 *m6, const char *why)
{
	log_warnx("m6 refused vehicle=%s next=%s reason=%s", s->s_vid,
	    m6->next_tsp_id != NULL && id_valid_name(m6->next_tsp_id) ?
	    m6->next_tsp_id : "(none)", why);
	conn_send_status(c, request_id, QROAM__STATUS_CODE__BAD_REQUEST, why);
}

void
tspd_handover_m6(struct tspd *env, struct conn *c, uint64_t request_id,
    const struct tspdb_session *s, const Qroam__M6 *m6)
{
	const struct topo_tsp	*target;
	struct offer		*of = NULL;

	if (env->t_offers != NULL)
		of = offer_find(env, s->s_vid);
	if (of == NULL || of->of_answered ||
	    of->of_opened_ms != s->s_opened_ms ||
	    of->of_key_index != s->s_key_index) {
		m6_refuse(c, request_id, s, m6, "no handover offered");
		return;
	}
	of->of_answered = 1;
	if (!m6->continue_service) {
		offer_drop(env, of);
		tspd_session_close(env, c, request_id, s->s_vid, 0,
		    "service declined (m6)");
		tspd_metric_handover(TSPD_HO_SOURCE, "declined", 0);
		return;
	}
	if ((target = offer_candidate(of, m6->next_tsp_id)) == NULL) {
		m6_refuse(c, request_id, s, m6, "next_tsp_id is not one of the "
		    "candidates");
		return;
	}
	tspd_handover_start(env, s->s_vid, target);
}
