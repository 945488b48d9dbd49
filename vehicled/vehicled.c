/*
 * vehicled: the emulated vehicle with its security chip.  main() reads the
 * configuration, enrolls the chip (fill and registration) if needed,
 * powers the vehicle on and runs the event loop until SIGTERM or the end
 * of the trip; SIGUSR1 is a power cycle.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "provision.h"

#define VEHICLED_DRAIN_POLL_MS	20
#define VEHICLED_DRAIN_MAX_MS	6000	/* longer than the flush timeout */

struct vehicled {
	struct event_base	*vd_base;
	struct vclient		*vd_client;
	struct event		*vd_trip;
	struct event		*vd_drain;
	struct event		*vd_enroll;
	int			 vd_enroll_ms;
	const struct vconf	*vd_conf;
	const struct topo	*vd_topo;
	sqlite3			*vd_db;
	int			 vd_stopping;
	int			 vd_waited_ms;
};

/* Leave the loop once the Bye left and the connection closed. */
static void
vehicled_drain(evutil_socket_t fd, short ev, void *arg)
{
	struct vehicled	*vd = arg;

	(void)fd;
	(void)ev;
	vd->vd_waited_ms += VEHICLED_DRAIN_POLL_MS;
	if (client_draining() == 0 || vd->vd_waited_ms >= VEHICLED_DRAIN_MAX_MS)
		event_base_loopbreak(vd->vd_base);
}

/* Power off, then stop once the last connection is closed. */
static void
vehicled_shutdown(struct vehicled *vd, const char *reason)
{
	struct timeval	tv = { 0, VEHICLED_DRAIN_POLL_MS * 1000 };

	if (vd->vd_stopping)
		return;
	vd->vd_stopping = 1;
	vclient_power_off(vd->vd_client, reason);
	vd->vd_drain = event_new(vd->vd_base, -1, EV_PERSIST, vehicled_drain,
	    vd);
	if (vd->vd_drain == NULL || event_add(vd->vd_drain, &tv) == -1)
		event_base_loopbreak(vd->vd_base);
}

/* SIGTERM, SIGINT: power off (Bye) and exit 0. */
static void
vehicled_stop(void *arg)
{
	vehicled_shutdown(arg, "stopped");
}

/* SIGHUP: nothing to reload. */
static void
vehicled_reload(void *arg)
{
	(void)arg;
	log_info("SIGHUP: vehicled has no reloadable settings; ignored");
}

/* SIGUSR1: power cycle (F8). */
static void
vehicled_usr1(void *arg)
{
	struct vehicled	*vd = arg;

	if (!vd->vd_stopping)
		vclient_power_cycle(vd->vd_client);
}

/* The simulated trip time is over: power off and exit. */
static void
vehicled_trip_end(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	log_info("trip time reached");
	vehicled_shutdown(arg, "trip ended");
}

/* Arm the end of the trip: trip_time simulated = trip_time / factor real. */
static void
vehicled_trip(struct vehicled *vd, const struct vconf *conf)
{
	struct timeval	tv;
	double		ms;

	if (conf->vc_trip_ms == 0)
		return;
	ms = (double)conf->vc_trip_ms / conf->vc_time_factor;
	if (ms < 1)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms - tv.tv_sec * 1000.0) * 1000);
	if ((vd->vd_trip = evtimer_new(vd->vd_base, vehicled_trip_end,
	    vd)) == NULL || evtimer_add(vd->vd_trip, &tv) == -1)
		fatalx("cannot arm the trip timer");
}

#define VEHICLED_ENROLL_MIN_MS	1000
#define VEHICLED_ENROLL_MAX_MS	30000

/*
 * Fill and register when the store lacks either, then power on.  A filler
 * or registrar that is down or slow is retried with backoff; a refusal
 * leaves the vehicle powered on without service.
 */
static void
vehicled_enroll(evutil_socket_t fd, short ev, void *arg)
{
	struct vehicled		*vd = arg;
	const struct vconf	*conf = vd->vd_conf;
	struct vprov		 factory, oper;
	struct timeval		 tv;
	int			 rc;

	(void)fd;
	(void)ev;
	memset(&factory, 0, sizeof(factory));
	factory.vp_topo = vd->vd_topo;
	factory.vp_ca = conf->vc_common.cc_ca;
	factory.vp_cert = conf->vc_common.cc_cert;
	factory.vp_key = conf->vc_common.cc_key;
	factory.vp_max_frame = conf->vc_common.cc_max_frame;
	factory.vp_timeout_ms = (int)conf->vc_provision_ms;
	oper = factory;
	oper.vp_cert = conf->vc_operator_cert;
	oper.vp_key = conf->vc_operator_key;
	rc = vprov_enroll(&factory, conf->vc_operator_cert ? &oper : NULL,
	    vd->vd_db, conf->vc_vid, conf->vc_fill_m);
	if (rc != QROAM__STATUS_CODE__OK && vprov_transient(rc) &&
	    !vd->vd_stopping) {
		log_warnx("enrollment: %s; retrying in %d ms",
		    vprov_result_name(rc), vd->vd_enroll_ms);
		tv.tv_sec = vd->vd_enroll_ms / 1000;
		tv.tv_usec = (vd->vd_enroll_ms % 1000) * 1000;
		evtimer_add(vd->vd_enroll, &tv);
		vd->vd_enroll_ms *= 2;
		if (vd->vd_enroll_ms > VEHICLED_ENROLL_MAX_MS)
			vd->vd_enroll_ms = VEHICLED_ENROLL_MAX_MS;
		return;
	}
	if (rc != QROAM__STATUS_CODE__OK) {
		log_warnx("enrollment failed: the vehicle runs without service");
		chip_count(vd->vd_db, "errors", 1);
		vd->vd_client->vc_stats.vs_errors++;
	}
	if (!vd->vd_stopping)
		vclient_power_on(vd->vd_client);
}

/* The STATS line on stdout; the same numbers are in the counters table. */
static void
vehicled_print_stats(const char *vid, const struct vstats *vs)
{
	printf("STATS {\"vehicle_id\":\"%s\",\"auth_ok\":%llu,\"sessions\":%llu,"
	    "\"telemetry_sent\":%llu,\"telemetry_acked\":%llu,\"errors\":%llu,"
	    "\"key_exhausted\":%llu}\n", vid,
	    (unsigned long long)vs->vs_auth_ok,
	    (unsigned long long)vs->vs_sessions,
	    (unsigned long long)vs->vs_telemetry_sent,
	    (unsigned long long)vs->vs_telemetry_acked,
	    (unsigned long long)vs->vs_errors,
	    (unsigned long long)vs->vs_key_exhausted);
	fflush(stdout);
}

int
main(int argc, char *argv[])
{
	struct daemon_opts	 opts;
	struct vconf		 conf;
	struct topo		 topo;
	struct vehicled		 vd;
	struct daemon_signals	*sigs;
	struct vstats		 stats;
	sqlite3			*db;
	char			 name[64];

	daemon_getopt(argc, argv, "/etc/qroam/vehicled.conf", &opts);
	log_init("vehicled", opts.do_verbose);
	if (vconf_load(opts.do_config, &conf) == -1)
		return 1;
	if (topo_load(conf.vc_common.cc_topology, &topo) == -1) {
		vconf_free(&conf);
		return 1;
	}
	if (opts.do_check) {
		printf("%s: configuration OK\n", opts.do_config);
		topo_free(&topo);
		vconf_free(&conf);
		return 0;
	}
	if (opts.do_verbose == 0)
		log_setverbose(conf.vc_common.cc_verbose);
	snprintf(name, sizeof(name), "vehicled[%s]", conf.vc_vid);
	log_setname(name);
	if ((db = chip_open(conf.vc_common.cc_store)) == NULL)
		fatalx("cannot open the store %s", conf.vc_common.cc_store);
	memset(&vd, 0, sizeof(vd));
	vd.vd_conf = &conf;
	vd.vd_topo = &topo;
	vd.vd_db = db;
	vd.vd_enroll_ms = VEHICLED_ENROLL_MIN_MS;
	if ((vd.vd_base = event_base_new()) == NULL ||
	    (vd.vd_enroll = evtimer_new(vd.vd_base, vehicled_enroll, &vd)) == NULL)
		fatalx("event_base_new");
	vd.vd_client = vclient_new(vd.vd_base, &conf, db, &topo);
	sigs = daemon_signals_new(vd.vd_base, vehicled_stop, vehicled_reload,
	    vehicled_usr1, &vd);
	vehicled_trip(&vd, &conf);
	log_info("started: draw %s, retransmit %llu ms, telemetry every %llu"
	    " ms", conf.vc_draw == CHIP_SEQUENTIAL ? "sequential" : "arbitrary",
	    (unsigned long long)conf.vc_retransmit_ms,
	    (unsigned long long)conf.vc_telemetry_ms);
	event_active(vd.vd_enroll, EV_TIMEOUT, 0);
	event_base_dispatch(vd.vd_base);

	stats = *vclient_stats(vd.vd_client);
	vclient_free(vd.vd_client);
	if (vd.vd_trip != NULL)
		event_free(vd.vd_trip);
	if (vd.vd_drain != NULL)
		event_free(vd.vd_drain);
	event_free(vd.vd_enroll);
	daemon_signals_free(sigs);
	event_base_free(vd.vd_base);
	chip_close(db);
	topo_free(&topo);
	vehicled_print_stats(conf.vc_vid, &stats);
	vconf_free(&conf);
	log_info("exiting");
	return 0;
}
