/*
 * The vehicle's life cycle around the protocol client: power on and off
 * (F8, also at a configured moment of the trip), driving the route and
 * following region changes (F7), and chip exhaustion with refill and
 * re-registration (F9).  The vehicle owns its client and the handover
 * plugged into it, and is the client's owner for F9.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "log.h"
#include "provision.h"
#include "vehicle.h"

static void	vehicle_tick_cb(evutil_socket_t, short, void *);
static void	vehicle_cycle_cb(evutil_socket_t, short, void *);
static void	vehicle_exhausted(void *);
static void	vehicle_refill(void *);

static const struct vclient_owner_cb vehicle_client_cb = {
	vehicle_exhausted, vehicle_refill
};

struct route *
vehicle_route(const struct vconf *conf, const struct topo *t)
{
	struct geo_point	 p = { 0, 0 };
	struct route		*r;

	if (conf->vc_nroute > 0)
		r = route_new(conf->vc_route, conf->vc_nroute, conf->vc_speed,
		    conf->vc_time_factor);
	else {
		if (t->t_ntsps > 0)
			route_region_centre(&t->t_tsps[0], &p);
		log_info("no route configured: standing at %.5f,%.5f",
		    p.gp_lat, p.gp_lon);
		r = route_new(&p, 1, 0, conf->vc_time_factor);
	}
	if (r == NULL)
		fatalx("cannot set up the route");
	return r;
}

/* Set a timeval to ms of real time. */
static void
vehicle_tv(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* Arm the power cycle of power_cycle_at (simulated trip time). */
static void
vehicle_arm_cycle(struct vehicle *v)
{
	const struct vconf	*conf = v->v_client.vc_conf;
	struct timeval		 tv;

	if (conf->vc_power_cycle_ms == 0)
		return;
	if ((v->v_cycle = evtimer_new(v->v_client.vc_base, vehicle_cycle_cb,
	    v)) == NULL)
		fatalx("cannot create timers");
	vehicle_tv(&tv, (uint64_t)((double)conf->vc_power_cycle_ms /
	    conf->vc_time_factor));
	evtimer_add(v->v_cycle, &tv);
}

struct vehicle *
vehicle_new(struct event_base *base, const struct vconf *conf,
    struct vchip *chip, const struct topo *topo, struct route *route,
    uint64_t offset_ms, struct venroll_svc *es)
{
	struct vehicle	*v;
	struct timeval	 tv;

	v = xcalloc(1, sizeof(*v));
	client_init(&v->v_client, base, conf, chip, topo, route_ref(route),
	    offset_ms, &vehicle_client_cb, v);
	vho_init(&v->v_ho, &v->v_client);
	venroll_init(&v->v_enroll, es, chip, conf->vc_vid, conf->vc_draw,
	    v->v_client.vc_logname);
	if ((v->v_tick = event_new(base, -1, EV_PERSIST, vehicle_tick_cb,
	    v)) == NULL)
		fatalx("cannot create timers");
	vehicle_tv(&tv, conf->vc_telemetry_ms);
	event_add(v->v_tick, &tv);
	vehicle_arm_cycle(v);
	return v;
}

void
vehicle_retune(struct vehicle *v)
{
	struct timeval	 tv;

	vehicle_tv(&tv, v->v_client.vc_conf->vc_telemetry_ms);
	event_add(v->v_tick, &tv);
}

void
vehicle_free(struct vehicle *v)
{
	if (v == NULL)
		return;
	if (v->v_client.vc_state != VC_OFF)
		vehicle_power_off(v, "shutdown");
	event_free(v->v_tick);
	if (v->v_cycle != NULL)
		event_free(v->v_cycle);
	vho_free(&v->v_ho);
	venroll_clear(&v->v_enroll);
	client_clear(&v->v_client);
	free(v);
}

/* (Re)load the registration and M1's TSP list from the chip; 0 or -1. */
static int
vehicle_load_registration(struct vclient *c)
{
	struct chip_info	ci;

	EVP_PKEY_free(c->vc_pbv);
	c->vc_pbv = NULL;
	chip_reg_clear(&c->vc_reg);
	c->vc_regtopo = NULL;
	c->vc_chip_id[0] = '\0';
	if (vchip_get(c->vc_chip, &ci) == 1)
		memcpy(c->vc_chip_id, ci.ci_chip_id, sizeof(c->vc_chip_id));
	if (vchip_reg(c->vc_chip, &c->vc_reg) != 1)
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
	c->vc_regtopo = vchip_tsps(c->vc_chip);
	return 0;
}

/* Start service in the current region: F3 first unless authenticated. */
static void
vehicle_serve(struct vclient *c)
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
vehicle_track_region(struct vehicle *v, const struct route_pos *rp)
{
	struct vclient		*c = &v->v_client;
	struct vho		*ho = &v->v_ho;
	const struct topo_tsp	*tt;
	char			 old[sizeof(c->vc_tsp)];
	uint64_t		 detect_us;
	enum entry_adopt	 ea;

	/* Where regions overlap, the TSP holding our context goes first. */
	tt = route_tsp_at(client_tsps(c), rp->rp_point, c->vc_tsp,
	    ho->ho_ready[0] != '\0' ? ho->ho_ready : ho->ho_next);
	if (tt != NULL && strcmp(tt->tt_id, c->vc_tsp) == 0)
		return;
	if (tt == NULL && c->vc_tsp[0] == '\0' && c->vc_entered_ms != 0)
		return;
	detect_us = client_now_us();
	memcpy(old, c->vc_tsp, sizeof(old));
	client_leave(c, tt == NULL ? "no service region" : "region change",
	    0);
	c->vc_entered_ms = client_now_ms();
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
	ea = vho_cross(ho, old, tt, detect_us);
	/* The baseline of the handover: authenticate again on every entry. */
	if (c->vc_conf->vc_reauth_on_entry && ho->ho_crossing) {
		c->vc_authed = 0;
		vho_reauth(ho);
		ea = ENTRY_CONN;
	}
	if (c->vc_state == VC_REFILL)
		return;
	switch (ea) {
	case ENTRY_OPEN:
	case ENTRY_OPENING:
		/* Prepared entry: the session opened ahead goes on. */
		break;
	case ENTRY_AUTH:
		vho_reauth(ho);
		client_start_auth(c);
		break;
	case ENTRY_NONE:
	case ENTRY_CONN:
		vehicle_serve(c);
		break;
	}
}

/* Every telemetry interval: move, follow regions, run the session. */
static void
vehicle_tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct vehicle		*v = arg;
	struct vclient		*c = &v->v_client;
	struct route_pos	 rp;

	(void)fd;
	(void)ev;
	if (c->vc_state == VC_OFF || c->vc_pbv == NULL)
		return;
	client_log_enter(c);
	client_position(c, &rp);
	vehicle_track_region(v, &rp);
	vho_follow(&v->v_ho, &rp);
	/* Once a TSP holds our context the old one takes no new M3. */
	client_tick(c, &rp, !vho_prepared(&v->v_ho));
}

void
vehicle_power_on(struct vehicle *v)
{
	struct vclient		*c = &v->v_client;
	struct route_pos	 rp;

	if (c->vc_state != VC_OFF)
		return;
	/* Ticks follow the power-on, so a fleet's spread out with it. */
	vehicle_retune(v);
	/* The chip and registration as they are now (enrolment, refill). */
	vehicle_load_registration(c);
	client_position(c, &rp);
	log_info("power on at %.5f,%.5f (chip %s)", rp.rp_point.gp_lat,
	    rp.rp_point.gp_lon, c->vc_chip_id[0] ? c->vc_chip_id : "empty");
	vchip_event(c->vc_chip, "power_on", NULL, "%.6f,%.6f", rp.rp_point.gp_lat,
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
	vehicle_track_region(v, &rp);
}

void
vehicle_power_off(struct vehicle *v, const char *reason)
{
	struct vclient	*c = &v->v_client;

	if (c->vc_state == VC_OFF)
		return;
	client_leave(c, reason, 1);
	venroll_cancel(&v->v_enroll);
	vho_reset(&v->v_ho, reason);
	client_set_state(c, VC_OFF);
	c->vc_authed = 0;
	c->vc_tsp[0] = '\0';
	log_info("power off (%s)", reason);
	vchip_event(c->vc_chip, "power_off", NULL, "%s", reason);
}

/* power_cycle_at: the configured moment of the trip has come. */
static void
vehicle_cycle_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct vehicle	*v = arg;

	(void)fd;
	(void)ev;
	client_log_enter(&v->v_client);
	if (v->v_client.vc_state == VC_OFF)
		return;
	log_info("power_cycle_at %llu ms of trip time reached",
	    (unsigned long long)v->v_client.vc_conf->vc_power_cycle_ms);
	vehicle_power_cycle(v);
}

void
vehicle_power_cycle(struct vehicle *v)
{
	log_info("power cycle");
	vehicle_power_off(v, "power cycle");
	vehicle_power_on(v);
}

/* The client found no unused chip key: report, then refill or stop (F9). */
static void
vehicle_exhausted(void *arg)
{
	struct vehicle		*v = arg;
	struct vclient		*c = &v->v_client;
	const struct vconf	*conf = c->vc_conf;

	log_warnx("KEY_EXHAUSTED: chip %s has no unused key left",
	    c->vc_chip_id);
	vchip_event(c->vc_chip, "key_exhausted", c->vc_tsp, "chip_id=%s",
	    c->vc_chip_id);
	vchip_count(c->vc_chip, "key_exhausted", 1);
	c->vc_stats.vs_key_exhausted++;
	client_leave(c, "key exhausted", 0);
	if (conf->vc_refill && conf->vc_operator_cert != NULL) {
		c->vc_backoff = 1;
		vehicle_refill(v);
		return;
	}
	log_warnx("no refill configured: sessions stopped");
	c->vc_exhausted = 1;
	client_set_state(c, VC_IDLE);
}

/* The refill ended: authenticate again, or retry a failure later. */
static void
vehicle_refilled(void *arg, int rc)
{
	struct vehicle		*v = arg;
	struct vclient		*c = &v->v_client;
	const struct vconf	*conf = c->vc_conf;

	client_log_enter(c);
	if (c->vc_state != VC_REFILL)
		return;
	if (rc == 0 && vehicle_load_registration(c) == -1)
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
	vchip_event(c->vc_chip, "refill", c->vc_tsp, "chip_id=%s", c->vc_chip_id);
	c->vc_authed = 0;
	client_set_state(c, VC_IDLE);
	vehicle_serve(c);
}

/*
 * F9 refill with the operator credential, on the loop (enroll.h); the
 * vehicle stays in VC_REFILL until it ends, and a failure is retried.
 */
static void
vehicle_refill(void *arg)
{
	struct vehicle	*v = arg;
	struct vclient	*c = &v->v_client;

	client_set_state(c, VC_REFILL);
	if (venroll_busy(&v->v_enroll))
		return;
	venroll_start(&v->v_enroll, VENROLL_REFILL, vehicle_refilled, v);
}
