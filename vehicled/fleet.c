/*
 * The vehicles of one process.  Without `fleet` there is one vehicle with
 * the configured VIN and store.  With `fleet N` vehicle i gets a VIN
 * derived from vehicle_id, the store STORE.i (or, with fleet_store, a
 * slot of the one fleet store, vchip.h) and a head start of fleet_offset
 * + i * fleet_spacing along the route; all share the event loop, the
 * topology, the route and the settings.  Each enrolls on its own timer
 * (fleet_rate of them a second) over the process's provisioning channels
 * (enroll.h), which never block the loop: a slow or dead filler or
 * registrar only delays the vehicles waiting for it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "fleet.h"
#include "ids.h"
#include "log.h"
#include "provision.h"
#include "records.h"
#include "store.h"
#include "vehicle.h"

#define VFLEET_ENROLL_MIN_MS	1000
#define VFLEET_ENROLL_MAX_MS	30000

struct vfleet;

struct vfleet_vehicle {
	struct vfleet		*fv_fleet;
	struct vconf		 fv_conf;	/* own VIN and store, rest shared */
	char			*fv_store;
	struct vchip		*fv_chip;
	struct vehicle		*fv_vehicle;
	struct event		*fv_enroll;
	int			 fv_enroll_ms;
};

struct vfleet {
	struct event_base	*f_base;
	const struct vconf	*f_conf;
	const struct topo	*f_topo;
	struct venroll_svc	*f_enroll;
	struct vchipdb		*f_store;	/* fleet_store, or NULL */
	struct route		*f_route;
	struct vfleet_vehicle	*f_v;
	size_t			 f_n;
	size_t			 f_enrolled;	/* enrolments that ended */
	size_t			 f_enrolled_ok;	/* of them, enrolled */
	int			 f_stopping;
};

static void	vfleet_enroll(evutil_socket_t, short, void *);

int
vfleet_vin(const char *base, uint32_t i, uint32_t n, char out[18])
{
	char		digits[16];
	size_t		d, len;
	uint32_t	top;

	if (i >= n || strlen(base) != 17)
		return -1;
	for (d = 1, top = n - 1; top >= 10; top /= 10)
		d++;
	len = (size_t)snprintf(digits, sizeof(digits), "%0*u", (int)d,
	    (unsigned)i);
	if (len != d || d > 17)
		return -1;
	memcpy(out, base, 17 - d);
	memcpy(out + 17 - d, digits, d);
	out[17] = '\0';
	return id_valid_vin(out) ? 0 : -1;
}

/* Set up vehicle i's settings and chip. */
static void
vfleet_chip(struct vfleet *f, size_t i)
{
	struct vfleet_vehicle	*v = &f->f_v[i];
	const struct vconf	*conf = f->f_conf;
	size_t			 len;

	v->fv_fleet = f;
	v->fv_conf = *conf;
	v->fv_enroll_ms = VFLEET_ENROLL_MIN_MS;
	if (conf->vc_fleet > 0) {
		if (vfleet_vin(conf->vc_vid, (uint32_t)i, conf->vc_fleet,
		    v->fv_conf.vc_vid) == -1)
			fatalx("fleet: no valid VIN for vehicle %zu of %s", i,
			    conf->vc_vid);
	}
	if (f->f_store != NULL) {
		v->fv_chip = vchipdb_chip(f->f_store, v->fv_conf.vc_vid);
		return;
	}
	if (conf->vc_fleet > 0) {
		len = strlen(conf->vc_common.cc_store) + 16;
		v->fv_store = xmalloc(len);
		snprintf(v->fv_store, len, "%s.%zu", conf->vc_common.cc_store, i);
		v->fv_conf.vc_common.cc_store = v->fv_store;
	}
	if ((v->fv_chip = vchip_open_file(f->f_base,
	    v->fv_conf.vc_common.cc_store)) == NULL)
		fatalx("cannot open the store %s", v->fv_conf.vc_common.cc_store);
}

/* Set up vehicle i's client, on its chip. */
static void
vfleet_vehicle(struct vfleet *f, size_t i)
{
	struct vfleet_vehicle	*v = &f->f_v[i];
	const struct vconf	*conf = f->f_conf;

	v->fv_vehicle = vehicle_new(f->f_base, &v->fv_conf, v->fv_chip,
	    f->f_topo, f->f_route, conf->vc_fleet_offset_ms +
	    (uint64_t)i * conf->vc_fleet_spacing_ms, f->f_enroll);
	if ((v->fv_enroll = evtimer_new(f->f_base, vfleet_enroll,
	    v)) == NULL)
		fatalx("cannot create timers");
}

struct vfleet *
vfleet_new(struct event_base *base, const struct vconf *conf,
    const struct topo *topo)
{
	struct vfleet	*f;
	size_t		 i;

	f = xcalloc(1, sizeof(*f));
	f->f_base = base;
	f->f_conf = conf;
	f->f_topo = topo;
	f->f_enroll = venroll_svc_new(base, conf, topo);
	f->f_route = vehicle_route(conf, topo);
	if (conf->vc_fleet_store && (f->f_store = vchipdb_open(base,
	    conf->vc_common.cc_store)) == NULL)
		fatalx("cannot open the fleet store %s", conf->vc_common.cc_store);
	f->f_n = conf->vc_fleet > 0 ? conf->vc_fleet : 1;
	f->f_v = xcalloc(f->f_n, sizeof(*f->f_v));
	for (i = 0; i < f->f_n; i++)
		vfleet_chip(f, i);
	/* Every record id from now on lies below the marks stored. */
	if (f->f_store != NULL && (vchipdb_raise_marks(f->f_store,
	    (int64_t)store_now_ms() * 1000, (int64_t)VREC_MARK_AHEAD_US) == -1 ||
	    vchipdb_start(f->f_store) == -1))
		fatalx("cannot start the fleet store %s",
		    conf->vc_common.cc_store);
	for (i = 0; i < f->f_n; i++)
		vfleet_vehicle(f, i);
	if (conf->vc_fleet > 0)
		log_info("fleet of %zu vehicles, VINs %s to %s, %llu ms of"
		    " route apart", f->f_n, f->f_v[0].fv_conf.vc_vid,
		    f->f_v[f->f_n - 1].fv_conf.vc_vid,
		    (unsigned long long)conf->vc_fleet_spacing_ms);
	return f;
}

/* Retry an enrolment later, backing off. */
static void
vfleet_enroll_later(struct vfleet_vehicle *v)
{
	struct timeval	tv;

	tv.tv_sec = v->fv_enroll_ms / 1000;
	tv.tv_usec = (v->fv_enroll_ms % 1000) * 1000;
	evtimer_add(v->fv_enroll, &tv);
	v->fv_enroll_ms *= 2;
	if (v->fv_enroll_ms > VFLEET_ENROLL_MAX_MS)
		v->fv_enroll_ms = VFLEET_ENROLL_MAX_MS;
}

/*
 * The enrolment ended: power on.  A filler or registrar that is down or
 * slow is retried with backoff; a refusal leaves the vehicle powered on
 * without service.
 */
static void
vfleet_enroll_done(void *arg, int rc)
{
	struct vfleet_vehicle	*v = arg;

	if (v->fv_fleet->f_stopping)
		return;
	client_log_enter(&v->fv_vehicle->v_client);
	if (rc != QROAM__STATUS_CODE__OK && vprov_transient(rc)) {
		log_warnx("enrollment: %s; retrying in %d ms",
		    vprov_result_name(rc), v->fv_enroll_ms);
		vfleet_enroll_later(v);
		return;
	}
	if (rc != QROAM__STATUS_CODE__OK) {
		log_warnx("enrollment failed: the vehicle runs without service");
		vchip_count(v->fv_chip, "errors", 1);
		v->fv_vehicle->v_client.vc_stats.vs_errors++;
	}
	v->fv_fleet->f_enrolled_ok += rc == QROAM__STATUS_CODE__OK;
	if (++v->fv_fleet->f_enrolled == v->fv_fleet->f_n)
		log_info("enrolment of the %zu vehicles ended", v->fv_fleet->f_n);
	if (!v->fv_conf.vc_enroll_only)
		vehicle_power_on(v->fv_vehicle);
}

/* Fill and register when the store lacks either (enroll.h). */
static void
vfleet_enroll(evutil_socket_t fd, short ev, void *arg)
{
	struct vfleet_vehicle	*v = arg;

	(void)fd;
	(void)ev;
	if (v->fv_fleet->f_stopping)
		return;
	venroll_start(&v->fv_vehicle->v_enroll, VENROLL_START, vfleet_enroll_done,
	    v);
}

void
vfleet_start(struct vfleet *f)
{
	struct timeval	tv;
	uint32_t	rate = f->f_conf->vc_fleet_rate;
	uint64_t	us;
	size_t		i;

	for (i = 0; i < f->f_n; i++) {
		if (rate == 0) {
			event_active(f->f_v[i].fv_enroll, EV_TIMEOUT, 0);
			continue;
		}
		us = (uint64_t)i * 1000000 / rate;
		tv.tv_sec = (time_t)(us / 1000000);
		tv.tv_usec = (suseconds_t)(us % 1000000);
		evtimer_add(f->f_v[i].fv_enroll, &tv);
	}
}

void
vfleet_power_off(struct vfleet *f, const char *reason)
{
	size_t	i;

	f->f_stopping = 1;
	for (i = 0; i < f->f_n; i++) {
		evtimer_del(f->f_v[i].fv_enroll);
		venroll_cancel(&f->f_v[i].fv_vehicle->v_enroll);
		client_log_enter(&f->f_v[i].fv_vehicle->v_client);
		vehicle_power_off(f->f_v[i].fv_vehicle, reason);
	}
	venroll_svc_close(f->f_enroll);
}

void
vfleet_power_cycle(struct vfleet *f)
{
	struct vehicle	*v;
	size_t		 i;

	if (f->f_stopping)
		return;
	for (i = 0; i < f->f_n; i++) {
		v = f->f_v[i].fv_vehicle;
		client_log_enter(&v->v_client);
		if (v->v_client.vc_state != VC_OFF)
			vehicle_power_cycle(v);
	}
}

/* Order doubles ascending, for qsort. */
static int
vfleet_cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
vfleet_gap_stats(double *gaps, size_t n, double *p50, double *max)
{
	if (n == 0)
		return -1;
	qsort(gaps, n, sizeof(*gaps), vfleet_cmp);
	*p50 = n % 2 ? gaps[n / 2] : (gaps[n / 2 - 1] + gaps[n / 2]) / 2;
	*max = gaps[n - 1];
	return 0;
}

/* The records counters of a STATS or FLEET line, after its opening. */
static void
vfleet_print_records(const struct vstats *vs, size_t unstored)
{
	printf(",\"telemetry_resent\":%llu,\"telemetry_stored\":%llu,"
	    "\"telemetry_dropped\":%llu,\"unstored\":%zu,"
	    "\"prepared_entries\":%llu,\"turned_back\":%llu}\n",
	    (unsigned long long)vs->vs_resent,
	    (unsigned long long)vs->vs_stored,
	    (unsigned long long)vs->vs_dropped, unstored,
	    (unsigned long long)vs->vs_prepared,
	    (unsigned long long)vs->vs_turned_back);
}

/* The STATS line of one vehicle on stdout. */
static void
vfleet_print_vehicle(const char *vid, const struct vstats *vs,
    size_t unstored)
{
	printf("STATS {\"vehicle_id\":\"%s\",\"auth_ok\":%llu,\"sessions\":%llu,"
	    "\"telemetry_sent\":%llu,\"telemetry_acked\":%llu,\"errors\":%llu,"
	    "\"key_exhausted\":%llu,\"crossings\":%llu,\"handovers\":%llu,"
	    "\"reauth_after_handover\":%llu", vid,
	    (unsigned long long)vs->vs_auth_ok,
	    (unsigned long long)vs->vs_sessions,
	    (unsigned long long)vs->vs_telemetry_sent,
	    (unsigned long long)vs->vs_telemetry_acked,
	    (unsigned long long)vs->vs_errors,
	    (unsigned long long)vs->vs_key_exhausted,
	    (unsigned long long)vs->vs_crossings,
	    (unsigned long long)vs->vs_handovers,
	    (unsigned long long)vs->vs_reauth);
	vfleet_print_records(vs, unstored);
}

/* Add b's counters to a. */
static void
vfleet_sum(struct vstats *a, const struct vstats *b)
{
	a->vs_auth_ok += b->vs_auth_ok;
	a->vs_sessions += b->vs_sessions;
	a->vs_telemetry_sent += b->vs_telemetry_sent;
	a->vs_telemetry_acked += b->vs_telemetry_acked;
	a->vs_errors += b->vs_errors;
	a->vs_key_exhausted += b->vs_key_exhausted;
	a->vs_crossings += b->vs_crossings;
	a->vs_handovers += b->vs_handovers;
	a->vs_reauth += b->vs_reauth;
	a->vs_resent += b->vs_resent;
	a->vs_stored += b->vs_stored;
	a->vs_dropped += b->vs_dropped;
	a->vs_prepared += b->vs_prepared;
	a->vs_turned_back += b->vs_turned_back;
}

/* The FLEET line: totals, and the gaps over every crossing. */
static void
vfleet_print_total(const struct vfleet *f, const struct vstats *t,
    size_t unstored, double *gaps, size_t ngaps)
{
	char	p50s[32] = "null", maxs[32] = "null";
	double	p50, max;

	if (vfleet_gap_stats(gaps, ngaps, &p50, &max) == 0) {
		snprintf(p50s, sizeof(p50s), "%.1f", p50);
		snprintf(maxs, sizeof(maxs), "%.1f", max);
	}
	printf("FLEET {\"vehicles\":%zu,\"crossings\":%llu,\"handovers\":%llu,"
	    "\"handover_failures\":%llu,\"reauth_after_handover\":%llu,"
	    "\"gap_ms_p50\":%s,\"gap_ms_max\":%s,\"telemetry_sent\":%llu,"
	    "\"telemetry_acked\":%llu,\"auth_ok\":%llu,\"sessions\":%llu,"
	    "\"errors\":%llu,\"key_exhausted\":%llu", f->f_n,
	    (unsigned long long)t->vs_crossings,
	    (unsigned long long)t->vs_handovers,
	    (unsigned long long)t->vs_reauth,
	    (unsigned long long)t->vs_reauth, p50s, maxs,
	    (unsigned long long)t->vs_telemetry_sent,
	    (unsigned long long)t->vs_telemetry_acked,
	    (unsigned long long)t->vs_auth_ok,
	    (unsigned long long)t->vs_sessions,
	    (unsigned long long)t->vs_errors,
	    (unsigned long long)t->vs_key_exhausted);
	vfleet_print_records(t, unstored);
}

void
vfleet_print_stats(const struct vfleet *f)
{
	const struct vehicle	*v;
	struct vstats		 total;
	double			*gaps;
	size_t			 i, n = 0, held, unstored = 0;

	memset(&total, 0, sizeof(total));
	for (i = 0; i < f->f_n; i++)
		n += f->f_v[i].fv_vehicle->v_ho.ho_ngaps;
	gaps = xcalloc(n + 1, sizeof(*gaps));
	for (n = 0, i = 0; i < f->f_n; i++) {
		v = f->f_v[i].fv_vehicle;
		held = vrecq_len(&v->v_client.vc_recs);
		unstored += held;
		vfleet_print_vehicle(f->f_v[i].fv_conf.vc_vid,
		    client_stats(&v->v_client), held);
		vfleet_sum(&total, client_stats(&v->v_client));
		if (v->v_ho.ho_ngaps > 0)
			memcpy(gaps + n, v->v_ho.ho_gaps, v->v_ho.ho_ngaps *
			    sizeof(*gaps));
		n += v->v_ho.ho_ngaps;
	}
	vfleet_print_total(f, &total, unstored, gaps, n);
	free(gaps);
	fflush(stdout);
}

void
vfleet_free(struct vfleet *f)
{
	struct vfleet_vehicle	*v;
	size_t			 i;

	if (f == NULL)
		return;
	/* The fleet store's answers do not come after their owners went. */
	vchipdb_close(f->f_store);
	for (i = 0; i < f->f_n; i++) {
		v = &f->f_v[i];
		client_log_enter(&v->fv_vehicle->v_client);
		vehicle_free(v->fv_vehicle);
		event_free(v->fv_enroll);
		vchip_close(v->fv_chip);
		free(v->fv_store);
	}
	vchipdb_free(f->f_store);
	route_free(f->f_route);
	venroll_svc_free(f->f_enroll);
	free(f->f_v);
	free(f);
}

size_t
vfleet_size(const struct vfleet *f)
{
	return f->f_n;
}

size_t
vfleet_enrolled(const struct vfleet *f)
{
	return f->f_enrolled_ok;
}

struct vclient *
vfleet_client(const struct vfleet *f, size_t i)
{
	return &f->f_v[i].fv_vehicle->v_client;
}

const struct vconf *
vfleet_conf(const struct vfleet *f)
{
	return f->f_conf;
}

void
vfleet_reload(struct vfleet *f, const struct vconf *next)
{
	size_t	 i;

	for (i = 0; i < f->f_n; i++) {
		vconf_take_runtime(&f->f_v[i].fv_conf, next);
		vehicle_retune(f->f_v[i].fv_vehicle);
	}
	venroll_svc_retune(f->f_enroll, next);
}
