/*
 * The vehicle's protocol client: one connection to the TSP of the current
 * region, driven by one state machine (PROTOCOL F3, F4, F5, F7, F8, F9),
 * plus a pre-connection to the next TSP during a handover (F6).
 * client.c holds the connection and the protocol steps, trip.c the power
 * states, the route, region changes and chip exhaustion, handover.c the
 * vehicle's side of the handover.
 */
#ifndef VEHICLED_CLIENT_H
#define VEHICLED_CLIENT_H

#include <sqlite3.h>
#include <stdint.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "chip.h"
#include "config.h"
#include "handover.h"
#include "msg.h"
#include "route.h"
#include "topo.h"

enum vc_state {
	VC_OFF,		/* powered off */
	VC_IDLE,	/* on, no service: no region, no key, no registration */
	VC_AUTH,	/* F3: M4 sent, waiting for a valid AuthResult */
	VC_OPEN,	/* F4: M3 sent, waiting for the session's first reply */
	VC_SESSION,	/* F5: session open, telemetry flowing */
	VC_REFILL,	/* F9: a refill failed and will be retried */
};

struct vstats {
	uint64_t	vs_auth_ok;
	uint64_t	vs_sessions;
	uint64_t	vs_telemetry_sent;
	uint64_t	vs_telemetry_acked;
	uint64_t	vs_errors;
	uint64_t	vs_key_exhausted;
	uint64_t	vs_crossings;	/* region changes while authenticated */
	uint64_t	vs_handovers;	/* crossings served without F3 */
	uint64_t	vs_reauth;	/* crossings that needed F3 */
};

struct vclient {
	struct event_base	*vc_base;
	const struct vconf	*vc_conf;
	sqlite3			*vc_db;
	const struct topo	*vc_topo;	/* the deployment's topology */
	struct topo		 vc_regtopo;	/* the TSP list of M1 */
	struct route		*vc_route;
	uint64_t		 vc_start_ms;	/* monotonic start of the trip */
	uint64_t		 vc_offset_ms;	/* simulated head start on the route */
	char			 vc_logname[48];

	struct chip_reg		 vc_reg;
	EVP_PKEY		*vc_pbv;	/* NULL: not registered */
	char			 vc_chip_id[65];
	int			 vc_exhausted;	/* no key and no refill: stay idle */

	enum vc_state		 vc_state;
	char			 vc_tsp[33];	/* current TSP, "" outside regions */
	struct endpoint		 vc_ep;
	int			 vc_authed;	/* F3 passed since power-on */
	uint64_t		 vc_entered_ms;	/* when the current region began */
	int			 vc_first;	/* no session yet since entering */

	struct conn		*vc_conn;
	int			 vc_connected;
	int			 vc_connfails;
	int			 vc_inflight;	/* a request awaits its reply */
	int			 vc_backoff;	/* retransmit after backoff × Δt1 */
	uint64_t		 vc_reqid;
	uint64_t		 vc_sent_ms;	/* when the request left */
	uint8_t			 vc_nonce[MSG_AUTH_NONCELEN];

	uint8_t			 vc_k1[32];
	uint32_t		 vc_key_index;
	uint64_t		 vc_tx_seq;
	uint64_t		 vc_rx_seq;
	uint64_t		 vc_acked;
	uint64_t		 vc_nsent;	/* telemetry in this session */

	struct event		*vc_timer;	/* retransmit, retry, reconnect */
	struct event		*vc_tick;	/* position and telemetry */
	struct event		*vc_cycle;	/* power_cycle_at */
	struct vho		 vc_ho;		/* handover state */
	struct vstats		 vc_stats;
};

/* trip.c: the vehicle's life cycle. */
/*
 * A powered-off vehicle with conf's VIN and store db, offset_ms of
 * simulated time along its route ahead of the trip clock.
 */
struct vclient *vclient_new(struct event_base *, const struct vconf *,
	    sqlite3 *, const struct topo *, uint64_t offset_ms);
void	vclient_free(struct vclient *);
void	vclient_power_on(struct vclient *);
void	vclient_power_off(struct vclient *, const char *reason);
void	vclient_power_cycle(struct vclient *);
/* The telemetry interval of the configuration changed: re-arm the tick. */
void	vclient_retune(struct vclient *);
/* (Re)load the registration and M1's TSP list from the store. */
int	vclient_load_registration(struct vclient *);
const struct vstats *vclient_stats(const struct vclient *);
/* Current position on the route. */
void	vclient_position(const struct vclient *, struct route_pos *);
/* Route distance (m) where the trip ends; -1 when it has no end. */
double	vclient_trip_end_m(const struct vclient *);
/* The TSPs the vehicle knows: M1's list, else the topology. */
const struct topo *vclient_tsps(const struct vclient *);
/* Name the log lines after this vehicle (fleet mode runs many). */
void	vclient_log_enter(const struct vclient *);
/* No unused chip key is left: report, then refill or stop (F9). */
void	vclient_exhausted(struct vclient *);
/* Retry a refill that failed earlier. */
void	vclient_refill(struct vclient *);
uint64_t vclient_now_ms(void);

/* client.c: connection and protocol steps. */
void	client_set_state(struct vclient *, enum vc_state);
const char *client_state_name(enum vc_state);
void	client_start_auth(struct vclient *);
void	client_start_session(struct vclient *);
/*
 * Say Bye if a session is open (with power_off set when the vehicle powers
 * off, F8), then drop the connection.
 */
void	client_leave(struct vclient *, const char *reason, int power_off);
/* End the session without a Bye (the TSP ended it) and go idle. */
void	client_drop_session(struct vclient *, const char *reason);
/* Seal one SessionInner as the next SessionMsg of the session; 0 or -1. */
int	client_send_inner(struct vclient *, const Qroam__SessionInner *);
/* Start a connection to ep with the client's callbacks; NULL on failure. */
struct conn *client_open_conn(struct vclient *, const struct endpoint *ep);
/* Close a connection of the client; its callbacks are not called again. */
void	client_close_conn(struct conn *, const char *reason);
/* Send one telemetry sample, or rekey, or reconnect (the tick's work). */
void	client_tick(struct vclient *, const struct route_pos *);
void	client_timer_cb(evutil_socket_t, short, void *);
/* Arm the step timer. */
void	client_arm(struct vclient *, uint64_t ms);
/* Connections still flushing their last messages before they close. */
int	client_draining(void);
/* Log a failure and count it. */
void	client_error(struct vclient *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
