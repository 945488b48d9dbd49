/*
 * vehicled: the emulated vehicle with its security chip, or a fleet of
 * them.  Its part of the daemon's life (daemon.h): start-up enrolls the
 * chips (fill and registration) if needed and powers the vehicles on; the
 * event loop runs until SIGTERM or the end of the trip; SIGUSR1 is a power
 * cycle.
 */
#include <stdio.h>

#include "client.h"
#include "config.h"
#include "daemon.h"
#include "fleet.h"
#include "log.h"
#include "ops.h"
#include "provchan.h"
#include "topo.h"

#define VEHICLED_DRAIN_POLL_MS	20
#define VEHICLED_DRAIN_MAX_MS	6000	/* longer than the flush timeout */

struct vehicled {
	struct event_base	*vd_base;
	struct vconf		 vd_conf;	/* the running configuration */
	struct topo		 vd_topo;	/* the running topology */
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
	if ((client_draining() == 0 && vprov_chan_draining() == 0) ||
	    vd->vd_waited_ms >= VEHICLED_DRAIN_MAX_MS)
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
 * SIGHUP: give every vehicle the settings that can change while it drives
 * (telemetry_interval, retransmit, session_rekey, refill, decline_at_end,
 * reauth_on_entry, connect and provision timeouts) and log what only a
 * restart changes.
 */
static void
vehicled_reload(void *arg, const void *conf, const struct topo *topo,
    int n)
{
	struct vehicled		*vd = arg;
	const struct vconf	*next = conf;

	n += topo_reload_restart_only(&vd->vd_topo, topo);
	n += vops_restart_only(&vd->vd_conf, next);
	vconf_take_runtime(&vd->vd_conf, next);
	vfleet_reload(vd->vd_fleet, next);
	log_info("reloaded: verbose %d, telemetry_interval %llums, retransmit "
	    "%llums, session_rekey %llu%s", log_getverbose(),
	    (unsigned long long)next->vc_telemetry_ms,
	    (unsigned long long)next->vc_retransmit_ms,
	    (unsigned long long)next->vc_session_rekey,
	    n > 0 ? " (settings that need a restart are kept)" : "");
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

static int
vehicled_conf_read(const char *path, void *conf)
{
	return vconf_load(path, conf);
}

static void
vehicled_conf_release(void *conf)
{
	vconf_free(conf);
}

/* "vehicled[VIN]", or "vehicled[fleet VIN]" for a fleet. */
static void
vehicled_logname(const void *conf, char *buf, size_t len)
{
	const struct vconf	*vc = conf;

	snprintf(buf, len, vc->vc_fleet > 0 ? "vehicled[fleet %s]" :
	    "vehicled[%s]", vc->vc_vid);
}

/* Enroll the chips if needed and arm the end of the trip. */
static void *
vehicled_start(void *arg, struct event_base *base)
{
	struct vehicled	*vd = arg;
	struct vconf	*conf = &vd->vd_conf;

	vd->vd_base = base;
	vehicled_logname(conf, vd->vd_name, sizeof(vd->vd_name));
	vd->vd_fleet = vfleet_new(vd->vd_base, conf, &vd->vd_topo);
	vehicled_trip(vd, conf);
	log_setname(vd->vd_name);
	log_info("started: draw %s, retransmit %llu ms, telemetry every %llu"
	    " ms", conf->vc_draw == CHIP_SEQUENTIAL ? "sequential" :
	    "arbitrary",
	    (unsigned long long)conf->vc_retransmit_ms,
	    (unsigned long long)conf->vc_telemetry_ms);
	vops_init(vd->vd_fleet);
	return vd->vd_fleet;
}

/* Power the vehicles on. */
static void
vehicled_ready(void *arg, char *status, size_t len)
{
	struct vehicled	*vd = arg;

	vfleet_start(vd->vd_fleet);
	snprintf(status, len, "vehicle %s powered on", vd->vd_conf.vc_vid);
}

static void
vehicled_free(void *arg)
{
	struct vehicled	*vd = arg;

	vops_free(vd->vd_fleet);
	vfleet_print_stats(vd->vd_fleet);
	vfleet_free(vd->vd_fleet);
	if (vd->vd_trip != NULL)
		event_free(vd->vd_trip);
	if (vd->vd_drain != NULL)
		event_free(vd->vd_drain);
	log_setname(vd->vd_name);
	log_info("exiting");
}

static const struct daemon_ops vehicled_ops = {
	.do_name = "vehicled",
	.do_conf_size = sizeof(struct vconf),
	.do_conf_load = vehicled_conf_read,
	.do_conf_free = vehicled_conf_release,
	.do_logname = vehicled_logname,
	.do_start = vehicled_start,
	.do_status = vops_status,
	.do_ready = vehicled_ready,
	.do_reload = vehicled_reload,
	.do_stop = vehicled_stop,
	.do_usr1 = vehicled_usr1,
	.do_free = vehicled_free,
};

int
main(int argc, char *argv[])
{
	static struct vehicled	vd;

	return daemon_main(argc, argv, &vehicled_ops, &vd, &vd.vd_conf,
	    &vd.vd_topo);
}
