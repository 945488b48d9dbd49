/*
 * The vehicle's life cycle around the protocol client: power on and off
 * (F8, also at a configured moment of the trip), driving the route and
 * following region changes (F7), and chip exhaustion with refill and
 * re-registration (F9).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "crypto.h"
#include "log.h"
#include "provision.h"

static void	vclient_tick_cb(evutil_socket_t, short, void *);
static void	vclient_cycle_cb(evutil_socket_t, short, void *);

uint64_t
vclient_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const struct topo *
vclient_tsps(const struct vclient *c)
{
	return c->vc_regtopo.t_ntsps > 0 ? &c->vc_regtopo : c->vc_topo;
}

/* The route, or a standing vehicle in the middle of the first region. */
static struct route *
vclient_route(const struct vconf *conf, const struct topo *t)
{
	struct geo_point	p = { 0, 0 };

	if (conf->vc_nroute > 0)
		return route_new(conf->vc_route, conf->vc_nroute,
		    conf->vc_speed, conf->vc_time_factor);
	if (t->t_ntsps > 0)
		route_region_centre(&t->t_tsps[0], &p);
	log_info("no route configured: standing at %.5f,%.5f", p.gp_lat,
	    p.gp_lon);
	return route_new(&p, 1, 0, conf->vc_time_factor);
}

/* Set a timeval to ms of real time. */
static void
vclient_tv(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* Arm the power cycle of power_cycle_at (simulated trip time). */
static void
vclient_arm_cycle(struct vclient *c)
{
	const struct vconf	*conf = c->vc_conf;
	struct timeval		 tv;

	if (conf->vc_power_cycle_ms == 0)
		return;
	if ((c->vc_cycle = evtimer_new(c->vc_base, vclient_cycle_cb,
	    c)) == NULL)
		fatalx("cannot create timers");
	vclient_tv(&tv, (uint64_t)((double)conf->vc_power_cycle_ms /
	    conf->vc_time_factor));
	evtimer_add(c->vc_cycle, &tv);
}

struct vclient *
vclient_new(struct event_base *base, const struct vconf *conf, sqlite3 *db,
    const struct topo *topo, uint64_t offset_ms)
{
	struct vclient	*c;
	struct timeval	 tv;

	c = xcalloc(1, sizeof(*c));
	c->vc_offset_ms = offset_ms;
	snprintf(c->vc_logname, sizeof(c->vc_logname), "vehicled[%s]",
	    conf->vc_vid);
	c->vc_base = base;
	c->vc_conf = conf;
	c->vc_db = db;
	c->vc_topo = topo;
	c->vc_state = VC_OFF;
	c->vc_backoff = 1;
	if ((c->vc_route = vclient_route(conf, topo)) == NULL)
		fatalx("cannot set up the route");
	c->vc_start_ms = vclient_now_ms();
	c->vc_timer = evtimer_new(base, client_timer_cb, c);
	c->vc_tick = event_new(base, -1, EV_PERSIST, vclient_tick_cb, c);
	if (c->vc_timer == NULL || c->vc_tick == NULL)
		fatalx("cannot create timers");
	vclient_tv(&tv, conf->vc_telemetry_ms);
	event_add(c->vc_tick, &tv);
	vclient_arm_cycle(c);
	return c;
}

void
vclient_retune(struct vclient *c)
{
	struct timeval	 tv;

	vclient_tv(&tv, c->vc_conf->vc_telemetry_ms);
	event_add(c->vc_tick, &tv);
}

void
vclient_free(struct vclient *c)
{
	if (c == NULL)
		return;
	if (c->vc_state != VC_OFF)
		vclient_power_off(c, "shutdown");
	event_free(c->vc_timer);
	event_free(c->vc_tick);
	if (c->vc_cycle != NULL)
		event_free(c->vc_cycle);
	vho_free(&c->vc_ho);
	route_free(c->vc_route);
	chip_reg_tsps_free(&c->vc_regtopo);
	chip_reg_clear(&c->vc_reg);
	EVP_PKEY_free(c->vc_pbv);
	crypto_wipe(c->vc_k1, sizeof(c->vc_k1));
	free(c);
}

int
vclient_load_registration(struct vclient *c)
{
	struct chip_info	ci;
	int			r;

	EVP_PKEY_free(c->vc_pbv);
	c->vc_pbv = NULL;
	chip_reg_clear(&c->vc_reg);
	chip_reg_tsps_free(&c->vc_regtopo);
	c->vc_chip_id[0] = '\0';
	if (chip_get(c->vc_db, &ci) == 1)
		memcpy(c->vc_chip_id, ci.ci_chip_id, sizeof(c->vc_chip_id));
	if ((r = chip_reg_load(c->vc_db, &c->vc_reg)) != 1)
		return -1;
	if (strcmp(c->vc_reg.cr_chip_id, c->vc_chip_id) != 0) {
		log_warnx("the registration names chip %s, the chip holds %s",
		    c->vc_reg.cr_chip_id, c->vc_chip_id[0] ? c->vc_chip_id :
		    "nothing");
		return -1;
	}
	c->vc_pbv = crypto_pub_from_der(c->vc_reg.cr_pbv, c->vc_reg.cr_pbvlen);
	if (c->vc_pbv == NULL) {
		log_warnx("the stored Pbv does not decode");
		return -1;
	}
	if (chip_reg_tsps(c->vc_db, &c->vc_regtopo) == -1)
		return -1;
	return 0;
}

const struct vstats *
vclient_stats(const struct vclient *c)
{
	return &c->vc_stats;
}

void
vclient_log_enter(const struct vclient *c)
{
	log_setname(c->vc_logname);
}

/* Simulated seconds along the route after real_ms of the trip. */
static double
vclient_sim_s(const struct vclient *c, double real_ms)
{
	return route_sim_seconds(c->vc_route, real_ms) +
	    (double)c->vc_offset_ms / 1000.0;
}

void
vclient_position(const struct vclient *c, struct route_pos *rp)
{
	route_at(c->vc_route, vclient_sim_s(c,
	    (double)(vclient_now_ms() - c->vc_start_ms)), rp);
}

double
vclient_trip_end_m(const struct vclient *c)
{
	const struct vconf	*conf = c->vc_conf;

	if (conf->vc_trip_ms == 0)
		return -1;
	return route_distance(c->vc_route, (double)(conf->vc_trip_ms +
	    c->vc_offset_ms) / 1000.0);
}

/* Start service in the current region: F3 first unless authenticated. */
static void
vclient_serve(struct vclient *c)
{
	if (c->vc_pbv == NULL || c->vc_exhausted || c->vc_tsp[0] == '\0') {
		client_set_state(c, VC_IDLE);
		return;
	}
	if (c->vc_authed)
		client_start_session(c);
	else
		client_start_auth(c);
}

/* Follow the position into another region (F7) or out of every region. */
static void
vclient_track_region(struct vclient *c, const struct route_pos *rp)
{
	const struct topo_tsp	*tt;
	const struct vho	*ho = &c->vc_ho;
	char			 old[sizeof(c->vc_tsp)];
	uint64_t		 detect_us;

	/* Where regions overlap, the TSP holding our context goes first. */
	tt = route_tsp_at(vclient_tsps(c), rp->rp_point, c->vc_tsp,
	    ho->ho_ready[0] != '\0' ? ho->ho_ready : ho->ho_next);
	if (tt != NULL && strcmp(tt->tt_id, c->vc_tsp) == 0)
		return;
	if (tt == NULL && c->vc_tsp[0] == '\0' && c->vc_entered_ms != 0)
		return;
	detect_us = vho_now_us();
	memcpy(old, c->vc_tsp, sizeof(old));
	client_leave(c, tt == NULL ? "no service region" : "region change",
	    0);
	c->vc_entered_ms = vclient_now_ms();
	c->vc_first = 1;
	if (tt == NULL) {
		log_info("at %.5f,%.5f: outside every service region%s%s",
		    rp->rp_point.gp_lat, rp->rp_point.gp_lon,
		    old[0] ? "; left " : "", old);
		c->vc_tsp[0] = '\0';
		if (c->vc_state != VC_REFILL)
			client_set_state(c, VC_IDLE);
		return;
	}
	memcpy(c->vc_tsp, tt->tt_id, sizeof(c->vc_tsp));
	c->vc_ep = tt->tt_vehicle;
	log_info("at %.5f,%.5f: in the region of %s%s%s", rp->rp_point.gp_lat,
	    rp->rp_point.gp_lon, c->vc_tsp, old[0] ? ", coming from " : "", old);
	vho_cross(c, old, tt, detect_us);
	/* The baseline of the handover: authenticate again on every entry. */
	if (c->vc_conf->vc_reauth_on_entry && c->vc_ho.ho_crossing) {
		c->vc_authed = 0;
		vho_reauth(c);
	}
	if (c->vc_state != VC_REFILL)
		vclient_serve(c);
}

/* Every telemetry interval: move, follow regions, run the session. */
static void
vclient_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct vclient		*c = arg;
	struct route_pos	 rp;

	(void)fd;
	(void)ev;
	if (c->vc_state == VC_OFF || c->vc_pbv == NULL)
		return;
	vclient_log_enter(c);
	vclient_position(c, &rp);
	vclient_track_region(c, &rp);
	client_tick(c, &rp);
}

void
vclient_power_on(struct vclient *c)
{
	struct route_pos	rp;

	if (c->vc_state != VC_OFF)
		return;
	/* The chip and registration as they are now (enrolment, refill). */
	vclient_load_registration(c);
	vclient_position(c, &rp);
	log_info("power on at %.5f,%.5f (chip %s)", rp.rp_point.gp_lat,
	    rp.rp_point.gp_lon, c->vc_chip_id[0] ? c->vc_chip_id : "empty");
	chip_event(c->vc_db, "power_on", NULL, "%.6f,%.6f", rp.rp_point.gp_lat,
	    rp.rp_point.gp_lon);
	client_set_state(c, VC_IDLE);
	c->vc_authed = 0;
	c->vc_exhausted = 0;
	c->vc_tsp[0] = '\0';
	c->vc_entered_ms = 0;
	if (c->vc_pbv == NULL) {
		log_warnx("the vehicle is not registered with its chip: no"
		    " service");
		return;
	}
	vclient_track_region(c, &rp);
}

void
vclient_power_off(struct vclient *c, const char *reason)
{
	if (c->vc_state == VC_OFF)
		return;
	client_leave(c, reason, 1);
	vho_reset(c, reason);
	client_set_state(c, VC_OFF);
	c->vc_authed = 0;
	c->vc_tsp[0] = '\0';
	log_info("power off (%s)", reason);
	chip_event(c->vc_db, "power_off", NULL, "%s", reason);
}

/* power_cycle_at: the configured moment of the trip has come. */
static void
vclient_cycle_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct vclient	*c = arg;

	(void)fd;
	(void)ev;
	vclient_log_enter(c);
	if (c->vc_state == VC_OFF)
		return;
	log_info("power_cycle_at %llu ms of trip time reached",
	    (unsigned long long)c->vc_conf->vc_power_cycle_ms);
	vclient_power_cycle(c);
}

void
vclient_power_cycle(struct vclient *c)
{
	log_info("power cycle");
	vclient_power_off(c, "power cycle");
	vclient_power_on(c);
}

void
vclient_exhausted(struct vclient *c)
{
	const struct vconf	*conf = c->vc_conf;

	log_warnx("KEY_EXHAUSTED: chip %s has no unused key left",
	    c->vc_chip_id);
	chip_event(c->vc_db, "key_exhausted", c->vc_tsp, "chip_id=%s",
	    c->vc_chip_id);
	chip_count(c->vc_db, "key_exhausted", 1);
	c->vc_stats.vs_key_exhausted++;
	client_leave(c, "key exhausted", 0);
	if (conf->vc_refill && conf->vc_operator_cert != NULL) {
		c->vc_backoff = 1;
		vclient_refill(c);
		return;
	}
	log_warnx("no refill configured: sessions stopped");
	c->vc_exhausted = 1;
	client_set_state(c, VC_IDLE);
}

void
vclient_refill(struct vclient *c)
{
	const struct vconf	*conf = c->vc_conf;
	struct vprov		 op;
	int			 rc;

	client_set_state(c, VC_REFILL);
	memset(&op, 0, sizeof(op));
	op.vp_topo = c->vc_topo;
	op.vp_ca = conf->vc_common.cc_ca;
	op.vp_cert = conf->vc_operator_cert;
	op.vp_key = conf->vc_operator_key;
	op.vp_max_frame = conf->vc_common.cc_max_frame;
	op.vp_timeout_ms = (int)conf->vc_provision_ms;
	rc = vprov_refill(&op, c->vc_db, conf->vc_vid, conf->vc_fill_m,
	    conf->vc_draw);
	if (rc == 0 && vclient_load_registration(c) == -1)
		rc = VPROV_ERROR;
	if (rc != 0) {
		client_error(c, "refill failed: %s; retrying in %llu ms",
		    vprov_result_name(rc), (unsigned long long)
		    (conf->vc_retransmit_ms * (uint64_t)c->vc_backoff));
		client_arm(c, conf->vc_retransmit_ms * (uint64_t)c->vc_backoff);
		if (c->vc_backoff < 8)
			c->vc_backoff *= 2;
		return;
	}
	log_info("refill: chip %s filled and registered; authenticating again",
	    c->vc_chip_id);
	chip_event(c->vc_db, "refill", c->vc_tsp, "chip_id=%s", c->vc_chip_id);
	c->vc_authed = 0;
	client_set_state(c, VC_IDLE);
	vclient_serve(c);
}
