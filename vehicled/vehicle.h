/*
 * The vehicle: its protocol client with the handover on top, and its life
 * cycle around them: power on and off (F8, also at a configured moment of
 * the trip), driving the route and following region changes (F7), and
 * chip exhaustion with refill and re-registration (F9).
 */
#ifndef VEHICLED_VEHICLE_H
#define VEHICLED_VEHICLE_H

#include <stdint.h>
#include <event2/event.h>

#include "client.h"
#include "config.h"
#include "enroll.h"
#include "handover.h"
#include "topo.h"

struct vehicle {
	struct vclient	 v_client;
	struct vho	 v_ho;
	struct venroll	 v_enroll;	/* start-up enrolment and F9 */
	struct event	*v_tick;	/* position and telemetry */
	struct event	*v_cycle;	/* power_cycle_at */
};

/*
 * The route of conf (a vehicle without one stands in the middle of the
 * first region of t); release with route_free.  Ends the process on a
 * bad route.
 */
struct route *vehicle_route(const struct vconf *conf, const struct topo *t);
/*
 * A powered-off vehicle with conf's VIN and chip, driving route (it takes
 * a reference) offset_ms of simulated time ahead of the trip clock,
 * enrolling through es.
 */
struct vehicle *vehicle_new(struct event_base *, const struct vconf *,
	    struct vchip *, const struct topo *, struct route *route,
	    uint64_t offset_ms, struct venroll_svc *es);
void	vehicle_free(struct vehicle *);
void	vehicle_power_on(struct vehicle *);
void	vehicle_power_off(struct vehicle *, const char *reason);
void	vehicle_power_cycle(struct vehicle *);
/* The telemetry interval of the configuration changed: re-arm the tick. */
void	vehicle_retune(struct vehicle *);

#endif
