/*
 * The vehicle's protocol client, the bottom layer of vehicled: the
 * connection to the TSP of the current region driven by one state machine
 * (PROTOCOL F3, F4, F5, the Bye of F7 and F8), and the pre-connection to
 * the next TSP that a handover opens ahead of the boundary (F6).
 *
 * The layers above reach the client by calling it; it reaches them only
 * through two small callback sets: the handover's (handover.c: the F6
 * messages of the session, its prepared M3, the outcome of a crossing)
 * and its owner's (vehicle.c: F9 when the chip runs out of keys).
 */
#ifndef VEHICLED_CLIENT_H
#define VEHICLED_CLIENT_H

#include <sqlite3.h>
#include <stdint.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "chip.h"
#include "config.h"
#include "msg.h"
#include "qroam.pb-c.h"
#include "route.h"
#include "topo.h"

struct conn;

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

/* The handover as the client sees it; arg is the handover's. */
struct vclient_ho_cb {
	/* M5 and HandoverReady, received in the open session. */
	void	(*hc_m5)(void *arg, const Qroam__M5 *);
	void	(*hc_ready)(void *arg, const Qroam__HandoverReady *);
	/*
	 * The M3 prepared for the current TSP, with d1 as its data: 1 and m3
	 * built (K1 and the key index set in the client; release with
	 * msg_m3_clear()), 0 if none was prepared, -1 if it cannot be built
	 * (the key it held is lost).
	 */
	int	(*hc_m3_take)(void *arg, Qroam__M3 *m3, const Qroam__Telemetry *d1);
	/* A session opened; its first reply came at at_us (client_now_us()). */
	void	(*hc_served)(void *arg, uint64_t at_us);
	/* The TSP answered AUTH_REQUIRED: F3 runs before the next M3. */
	void	(*hc_auth_required)(void *arg);
};

/* The client's owner, for F9; arg is the owner's. */
struct vclient_owner_cb {
	/* No unused chip key is left for the next M3. */
	void	(*oc_exhausted)(void *arg);
	/* In VC_REFILL: the retry of a failed refill is due. */
	void	(*oc_refill)(void *arg);
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

	/* The pre-connection to the TSP that holds our context (F6). */
	struct conn		*vc_pre;
	int			 vc_pre_connected;
	char			 vc_pre_tsp[33];
	struct endpoint		 vc_pre_ep;

	uint8_t			 vc_k1[32];
	uint32_t		 vc_key_index;
	uint64_t		 vc_tx_seq;
	uint64_t		 vc_rx_seq;
	uint64_t		 vc_acked;
	uint64_t		 vc_nsent;	/* telemetry in this session */
	uint64_t		 vc_ctl_seq;	/* our M6: its ack is no telemetry */

	struct event		*vc_timer;	/* retransmit, retry, reconnect */
	const struct vclient_ho_cb *vc_ho;
	void			*vc_ho_arg;
	const struct vclient_owner_cb *vc_owner;
	void			*vc_owner_arg;
	struct vstats		 vc_stats;
};

/*
 * Set up a powered-off client for conf's VIN and store db, on route (freed
 * by client_clear()) with offset_ms of simulated time ahead of the trip
 * clock, which starts now.
 */
void	client_init(struct vclient *, struct event_base *, const struct vconf *,
	    sqlite3 *, const struct topo *, struct route *, uint64_t offset_ms,
	    const struct vclient_owner_cb *, void *arg);
/* Plug the handover in; done once, before the first power-on. */
void	client_set_handover(struct vclient *, const struct vclient_ho_cb *,
	    void *arg);
/* Release what client_init() and the registration hold; K1 is wiped. */
void	client_clear(struct vclient *);

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
/* The same for M6, whose acknowledgement is not counted as telemetry. */
int	client_send_control(struct vclient *, const Qroam__SessionInner *);
/*
 * Send one telemetry sample, or reconnect, or, when may_rekey is set and
 * session_rekey messages went out, open a new session (the tick's work).
 */
void	client_tick(struct vclient *, const struct route_pos *, int may_rekey);
/* Arm the step timer. */
void	client_arm(struct vclient *, uint64_t ms);
/* Log a failure and count it. */
void	client_error(struct vclient *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * Pre-connect to tsp, which holds our context, at ep (the previous
 * pre-connection must be dropped first); 0, or -1 if no connection could
 * be started.
 */
int	client_pre_open(struct vclient *, const char *tsp,
	    const struct endpoint *ep);
/* Close the pre-connection, if any. */
void	client_pre_drop(struct vclient *, const char *reason);
/*
 * Make the pre-connection the session's connection, with its endpoint:
 * 1, or 0 if there is none or the session has a connection.
 */
int	client_pre_adopt(struct vclient *);

/* Connections still flushing their last messages before they close. */
int	client_draining(void);

/* Current position on the route. */
void	client_position(const struct vclient *, struct route_pos *);
/* The TSPs the vehicle knows: M1's list, else the topology. */
const struct topo *client_tsps(const struct vclient *);
const struct vstats *client_stats(const struct vclient *);
/* Name the log lines after this vehicle (fleet mode runs many). */
void	client_log_enter(const struct vclient *);
/* Monotonic clocks: ms for protocol steps, µs for gaps with a tenth of a ms. */
uint64_t client_now_ms(void);
uint64_t client_now_us(void);

#endif
