/*
 * The vehicles of one vehicled process: one, or with `fleet N` N of them
 * on one event loop, each with its own VIN, chip store, enrolment and
 * head start on the route.  Used by the test harness and the benchmarks.
 */
#ifndef VEHICLED_FLEET_H
#define VEHICLED_FLEET_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "config.h"
#include "topo.h"

struct vfleet;

/*
 * Open the stores and create the (powered-off) vehicles of conf; ends the
 * process when a store cannot be opened.
 */
struct vfleet *vfleet_new(struct event_base *, const struct vconf *,
	    const struct topo *);
/* Enroll each vehicle (fill, register, with retries) and power it on. */
void	vfleet_start(struct vfleet *);
/* Power every vehicle off (Bye) for good. */
void	vfleet_power_off(struct vfleet *, const char *reason);
/* Power cycle every vehicle (F8). */
void	vfleet_power_cycle(struct vfleet *);
/*
 * Print one STATS line per vehicle and, in fleet mode, the FLEET line
 * with the totals and the gap percentiles over every crossing.
 */
void	vfleet_print_stats(const struct vfleet *);
void	vfleet_free(struct vfleet *);

/* The number of vehicles, vehicle i's client, the shared configuration. */
size_t	vfleet_size(const struct vfleet *);
/* Vehicles whose enrolment at start ended enrolled. */
size_t	vfleet_enrolled(const struct vfleet *);
struct vclient *vfleet_client(const struct vfleet *, size_t i);
const struct vconf *vfleet_conf(const struct vfleet *);
/*
 * A reload: give every vehicle the settings of next that can change while
 * it runs (vconf_take_runtime) and re-arm its telemetry tick.
 */
void	vfleet_reload(struct vfleet *, const struct vconf *next);

/*
 * The VIN of vehicle i of a fleet of n: base with its last d characters
 * replaced by i in d zero-padded digits, d the digits of n - 1 (at least
 * one).  0 and out filled, or -1 if the result is not a valid VIN.
 */
int	vfleet_vin(const char *base, uint32_t i, uint32_t n, char out[18]);
/* The median and maximum of n gaps (sorted in place); 0, or -1 if n = 0. */
int	vfleet_gap_stats(double *gaps, size_t n, double *p50, double *max);

#endif
