/* vehicled configuration: the common directives plus the vehicle's own. */
#ifndef VEHICLED_CONFIG_H
#define VEHICLED_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "chip.h"
#include "conf.h"
#include "geo.h"

#define VCONF_MAXROUTE	1024
#define VCONF_MAXUNSTORED	1000000

/* When the M3 for the next TSP goes out (F6 step 8, F7). */
enum vconf_entry {
	VCONF_ENTRY_PREPARED,	/* at HandoverReady: a second session ahead */
	VCONF_ENTRY_ON_CROSSING, /* on the crossing: the patent's order */
};

struct vconf {
	struct cfg_common	 vc_common;
	char			 vc_vid[18];
	char			*vc_operator_cert;
	char			*vc_operator_key;
	enum chip_mode		 vc_draw;
	uint32_t		 vc_fill_m;		/* 0: fillerd's default */
	uint64_t		 vc_retransmit_ms;	/* Δt1 */
	uint64_t		 vc_telemetry_ms;
	uint64_t		 vc_session_rekey;	/* 0: never */
	int			 vc_refill;
	struct geo_point	*vc_route;
	size_t			 vc_nroute;
	double			 vc_speed;		/* m/s */
	double			 vc_time_factor;
	uint64_t		 vc_trip_ms;		/* simulated; 0: no end */
	uint64_t		 vc_connect_ms;		/* TCP connect timeout */
	uint64_t		 vc_provision_ms;	/* fill/register wait */
	uint64_t		 vc_power_cycle_ms;	/* simulated; 0: none */
	int			 vc_decline_at_end;	/* M6 false in the last region */
	int			 vc_reauth_on_entry;	/* F3 + F4 at every crossing */
	enum vconf_entry	 vc_entry;
	uint32_t		 vc_unstored_max;	/* records kept until stored */
	uint32_t		 vc_resend_burst;	/* resends per tick, besides one */
	/*
	 * Fleet mode (vc_fleet > 0): vehicle i of vc_fleet has the VIN
	 * vc_vid with its last digits replaced by i, the store cc_store
	 * ".i", and starts i * vc_fleet_spacing_ms of simulated time
	 * further along the route.
	 */
	uint32_t		 vc_fleet;
	uint64_t		 vc_fleet_spacing_ms;
	/*
	 * fleet_store: the store file holds every vehicle of the fleet
	 * (vchip.h) instead of STORE.i each; fleet_offset: the head start of
	 * vehicle 0; fleet_rate: vehicles enrolled and powered on per second
	 * at start (0: all at once).
	 */
	int			 vc_fleet_store;
	int			 vc_enroll_only;	/* enroll, never power on */
	uint64_t		 vc_fleet_offset_ms;
	uint32_t		 vc_fleet_rate;
};

/* A fleet in store files of their own, or in the fleet store. */
#define VCONF_MAXFLEET		1000
#define VCONF_MAXFLEET_STORE	200000

/*
 * Parse path into a fresh configuration.  Errors are printed as
 * "file:line: message"; returns 0, or -1 with *vc left empty.
 */
int	vconf_load(const char *path, struct vconf *vc);
void	vconf_free(struct vconf *vc);
/*
 * Copy into dst the settings a running vehicle can take from a reloaded
 * configuration src: telemetry_interval, retransmit, session_rekey,
 * refill, decline_at_end, reauth_on_entry, entry, resend_burst,
 * connect_timeout and provision_timeout.
 */
void	vconf_take_runtime(struct vconf *dst, const struct vconf *src);

#endif
