/*
 * vehicled: the emulated vehicle with its security chip, or a fleet of
 * them.  main() reads the configuration, enrolls the chips (fill and
 * registration) if needed, powers the vehicles on and runs the event loop
 * until SIGTERM or the end of the trip; SIGUSR1 is a power cycle.
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "daemon.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "ops.h"
#include "topo.h"

#define VEHICLED_DRAIN_POLL_MS	20
#define VEHICLED_DRAIN_MAX_MS	6000	/* longer than the flush timeout */

struct vehicled {
	struct event_base	*vd_base;
	const char		*vd_path;
	int			 vd_cmd_verbose;	/* -d/-v given */
	struct vconf		*vd_conf;	/* the running configuration */
	const struct topo	*vd_topo;	/* the running topology */
	struct vfleet		*vd_fleet;
	struct event		*vd_trip;
	struct event		*vd_drain;
	char			 vd_name[48];
	int			 vd_stopping;
	int			 vd_waited_ms;
};

/* Leave the loop once the Byes left and the connections closed. */
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
	vfleet_power_off(vd->vd_fleet, reason);
	log_setname(vd->vd_name);
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

/*
 * SIGHUP: parse the whole configuration and its topology again; if both
 * are sound, log what only a restart changes and give every vehicle the
 * settings that can change while it drives (telemetry_interval,
 * retransmit, session_rekey, refill, decline_at_end, reauth_on_entry,
 * connect and provision timeouts, verbose).  With errors nothing changes.
 */
static void
vehicled_reload(void *arg)
{
	struct vehicled	*vd = arg;
	struct vconf	 next;
	struct topo	 topo;
	int		 n;

	log_setname(vd->vd_name);
	if (vconf_load(vd->vd_path, &next) == -1) {
		log_warnx("reload: configuration has errors, keeping the old one");
		return;
	}
	if (topo_load(next.vc_common.cc_topology, &topo) == -1) {
		vconf_free(&next);
		log_warnx("reload: configuration has errors, keeping the old one");
		return;
	}
	n = daemon_reload_restart_only(&vd->vd_conf->vc_common,
	    &next.vc_common);
	n += topo_reload_restart_only(vd->vd_topo, &topo);
	topo_free(&topo);
	n += vops_restart_only(vd->vd_conf, &next);
	vconf_take_runtime(vd->vd_conf, &next);
	vd->vd_conf->vc_common.cc_verbose = next.vc_common.cc_verbose;
	vfleet_reload(vd->vd_fleet, &next);
	if (!vd->vd_cmd_verbose)
		log_setverbose(next.vc_common.cc_verbose);
	log_info("reloaded: verbose %d, telemetry_interval %llums, retransmit "
	    "%llums, session_rekey %llu%s", log_getverbose(),
	    (unsigned long long)next.vc_telemetry_ms,
	    (unsigned long long)next.vc_retransmit_ms,
	    (unsigned long long)next.vc_session_rekey,
	    n > 0 ? " (settings that need a restart are kept)" : "");
	vconf_free(&next);
}

/* SIGUSR1: power cycle (F8). */
static void
vehicled_usr1(void *arg)
{
	struct vehicled	*vd = arg;

	if (!vd->vd_stopping)
		vfleet_power_cycle(vd->vd_fleet);
}

/* The simulated trip time is over: power off and exit. */
static void
vehicled_trip_end(evutil_socket_t fd, short ev, void *arg)
{
	struct vehicled	*vd = arg;

	(void)fd;
	(void)ev;
	log_setname(vd->vd_name);
	log_info("trip time reached");
	vehicled_shutdown(vd, "trip ended");
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

int
main(int argc, char *argv[])
{
	struct daemon_opts	 opts;
	struct vconf		 conf;
	struct topo		 topo;
	struct vehicled		 vd;
	struct daemon_signals	*sigs;
	struct admin		*admin;

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
	memset(&vd, 0, sizeof(vd));
	vd.vd_path = opts.do_config;
	vd.vd_cmd_verbose = opts.do_verbose;
	vd.vd_conf = &conf;
	vd.vd_topo = &topo;
	snprintf(vd.vd_name, sizeof(vd.vd_name), conf.vc_fleet > 0 ?
	    "vehicled[fleet %s]" : "vehicled[%s]", conf.vc_vid);
	log_setname(vd.vd_name);
	if ((vd.vd_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	vd.vd_fleet = vfleet_new(vd.vd_base, &conf, &topo);
	sigs = daemon_signals_new(vd.vd_base, vehicled_stop, vehicled_reload,
	    vehicled_usr1, &vd);
	vehicled_trip(&vd, &conf);
	log_setname(vd.vd_name);
	log_info("started: draw %s, retransmit %llu ms, telemetry every %llu"
	    " ms", conf.vc_draw == CHIP_SEQUENTIAL ? "sequential" : "arbitrary",
	    (unsigned long long)conf.vc_retransmit_ms,
	    (unsigned long long)conf.vc_telemetry_ms);
	vops_init(vd.vd_fleet);
	admin = daemon_admin(vd.vd_base, &conf.vc_common, "vehicled",
	    vops_status, vd.vd_fleet);
	vfleet_start(vd.vd_fleet);
	log_setname(vd.vd_name);
	notify_ready("vehicle %s powered on", conf.vc_vid);
	event_base_dispatch(vd.vd_base);

	admin_free(admin);
	vops_free(vd.vd_fleet);
	vfleet_print_stats(vd.vd_fleet);
	vfleet_free(vd.vd_fleet);
	if (vd.vd_trip != NULL)
		event_free(vd.vd_trip);
	if (vd.vd_drain != NULL)
		event_free(vd.vd_drain);
	daemon_signals_free(sigs);
	event_base_free(vd.vd_base);
	topo_free(&topo);
	vconf_free(&conf);
	metrics_reset();
	log_setname(vd.vd_name);
	log_info("exiting");
	return 0;
}
