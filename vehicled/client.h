/*
 * The vehicle's protocol client, the bottom layer of vehicled: the
 * connection to the TSP of the current region driven by one state machine
 * (PROTOCOL F3, F4, F5, the Bye of F7 and F8), the unstored telemetry it
 * sends again on the next session (F5, records.h), and the second
 * connection to the next TSP that a handover opens ahead of the boundary
 * (F6 step 8: with prepared entry a second session, entry.c).
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
#include "records.h"
#include "route.h"
#include "topo.h"
#include "vchip.h"

struct conn;
struct frame;

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
	uint64_t	vs_resent;	/* records sent again (same record id) */
	uint64_t	vs_stored;	/* records a stored_seq (or M3 reply) covered */
	uint64_t	vs_dropped;	/* unstored records dropped: queue full */
	uint64_t	vs_prepared;	/* prepared entries: M3 answered ahead */
	uint64_t	vs_turned_back;	/* prepared sessions ended unused */
};

/* The second connection, to the TSP that holds our context (F6). */
enum vpre_state {
	VP_NONE,	/* none */
	VP_CONN,	/* a connection, no session: the M3 goes on the crossing */
	VP_OPENING,	/* prepared entry: M3 sent, waiting for its reply */
	VP_OPEN,	/* prepared entry: the session is open */
};

struct vpre {
	enum vpre_state	 vp_state;
	struct conn	*vp_conn;	/* NULL: lost (an open session stays) */
	int		 vp_connected;
	char		 vp_tsp[33];
	struct endpoint	 vp_ep;
	int		 vp_prepare;	/* prepared entry: M3 once connected */
	int		 vp_auth_required; /* the TSP answered AUTH_REQUIRED */
	uint8_t		 vp_k1[32];
	uint32_t	 vp_key_index;
	uint64_t	 vp_reqid;	/* of the M3 */
	uint64_t	 vp_tx_seq;
	uint64_t	 vp_rx_seq;
	uint64_t	 vp_sent_ms;	/* when the M3 left */
	int		 vp_has_d1;	/* the M3's data, until answered */
	Qroam__Telemetry vp_d1;
};

/* The handover as the client sees it; arg is the handover's. */
struct vclient_ho_cb {
	/* M5 and HandoverReady, received in the open session. */
	void	(*hc_m5)(void *arg, const Qroam__M5 *);
	void	(*hc_ready)(void *arg, const Qroam__HandoverReady *);
	/* 1 if an M3 is prepared for tsp (hc_m3_take will give it). */
	int	(*hc_m3_ready)(void *arg, const char *tsp);
	/*
	 * The M3 prepared for tsp, with d1 as its data: 1 and m3 built with
	 * its K1 and key index returned (release with msg_m3_clear()), 0 if
	 * none was prepared, -1 if it cannot be built (the key it held is
	 * lost).
	 */
	int	(*hc_m3_take)(void *arg, const char *tsp, Qroam__M3 *m3,
		    const Qroam__Telemetry *d1, uint8_t k1[32],
		    uint32_t *key_index);
	/*
	 * After client_await_service(): the first ServiceResponse to a message
	 * sent since came at at_us (client_now_us()), answering an M3 (by_m3)
	 * or telemetry on a session that existed.
	 */
	void	(*hc_served)(void *arg, uint64_t at_us, int by_m3);
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
	struct vchip		*vc_chip;	/* the chip and journal */
	const struct topo	*vc_topo;	/* the deployment's topology */
	const struct topo	*vc_regtopo;	/* the TSP list of M1 (shared) */
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
	int			 vc_keywait;	/* a chip key is being taken */
	int			 vc_backoff;	/* retransmit after backoff × Δt1 */
	uint64_t		 vc_reqid;
	uint64_t		 vc_sent_ms;	/* when the request left */
	uint8_t			 vc_nonce[MSG_AUTH_NONCELEN];

	struct vpre		 vc_pre;	/* to the next TSP (F6) */

	uint8_t			 vc_k1[32];
	uint32_t		 vc_key_index;
	uint64_t		 vc_tx_seq;
	uint64_t		 vc_rx_seq;
	uint64_t		 vc_acked;
	uint64_t		 vc_nsent;	/* telemetry in this session */
	uint64_t		 vc_ctl_seq;	/* our M6: its ack is no telemetry */

	/* Telemetry kept until stored (F5); the data of the M3 in flight. */
	struct vrecq		 vc_recs;
	struct vrecid		 vc_recid;
	int			 vc_mark_raising; /* a raise of the mark waits */
	uint64_t		 vc_mark_want;
	int			 vc_has_d1;
	Qroam__Telemetry	 vc_d1;
	uint64_t		 vc_drop_logged; /* drops at the last log line */

	/* The service gap of a crossing: its first answer is awaited. */
	int			 vc_gap_wait;
	int			 vc_gap_m3;	/* the M3 in flight was sent since */
	uint64_t		 vc_gap_seq;	/* the first seq sent since, or 0 */
	uint64_t		 vc_rx_us;	/* when the frame being handled came */

	struct event		*vc_timer;	/* retransmit, retry, reconnect */
	const struct vclient_ho_cb *vc_ho;
	void			*vc_ho_arg;
	const struct vclient_owner_cb *vc_owner;
	void			*vc_owner_arg;
	struct vstats		 vc_stats;
};

/*
 * Set up a powered-off client for conf's VIN and chip, on route (freed by
 * client_clear()) with offset_ms of simulated time ahead of the trip
 * clock, which starts now.
 */
void	client_init(struct vclient *, struct event_base *, const struct vconf *,
	    struct vchip *, const struct topo *, struct route *,
	    uint64_t offset_ms, const struct vclient_owner_cb *, void *arg);
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
 * Start measuring a crossing's service gap: the first ServiceResponse to
 * an M3 or telemetry sent from now on completes it (hc_served).
 */
void	client_await_service(struct vclient *);
/* The awaited answer of client_await_service() came: report it. */
void	client_served(struct vclient *, int by_m3);
/*
 * F5 (telemetry.c): the tick's telemetry on the open, connected session:
 * one new record, then the oldest records not sent in this session, at
 * most 1 + resend_burst.
 */
void	telemetry_tick(struct vclient *, const struct route_pos *);
/* A ServiceResponse in the open session: its ack and stored_seq. */
void	telemetry_response(struct vclient *, const Qroam__ServiceResponse *);
/*
 * Give t the next record id, raising the durable mark first if due (with
 * the fleet store, ahead of time: the mark is raised while ids still lie
 * below the one stored).
 */
void	telemetry_record_id(struct vclient *, Qroam__Telemetry *t);
/*
 * Hold record t until a stored_seq covers it (again: it was sent before,
 * as the data of an M3 left unanswered); the oldest goes when the queue is
 * full.  0, or -1 if it cannot be held.
 */
int	telemetry_keep(struct vclient *, const Qroam__Telemetry *t, int again);
/* The M3 in flight will not be answered: keep its data to send again. */
void	telemetry_d1_unanswered(struct vclient *);

/*
 * The second connection (entry.c), to tsp at ep, which holds our context:
 * any earlier one is dropped first.  With prepare (prepared entry, F6
 * step 8) the M3 prepared for tsp goes out as soon as it is connected,
 * opening a second session; otherwise it waits for the crossing.  0, or
 * -1 if no connection could be started.
 */
int	entry_open(struct vclient *, const char *tsp, const struct endpoint *ep,
	    int prepare);
/*
 * End the second connection: Bye on its session if one is open (with
 * power_off as in client_leave), then close it.
 */
void	entry_drop(struct vclient *, const char *reason, int power_off);

enum entry_adopt {
	ENTRY_NONE,	/* no second connection: connect as usual */
	ENTRY_CONN,	/* its connection only: start F4 (or F3) on it */
	ENTRY_AUTH,	/* it answered AUTH_REQUIRED: F3 on its connection */
	ENTRY_OPENING,	/* its M3 is in flight: the client waits for it */
	ENTRY_OPEN,	/* its session is open: the client is in session */
};
/*
 * The crossing into the second connection's region: make it (and its
 * session, if any) the client's; the client has no connection then.
 */
enum entry_adopt entry_adopt(struct vclient *);
/* The M3 for the second connection's TSP is prepared: send it if due. */
void	entry_m3_ready(struct vclient *);
/* Events of the second connection, dispatched by the client. */
void	entry_on_connected(struct vclient *);
void	entry_on_frame(struct vclient *, const struct frame *);
void	entry_on_close(struct vclient *, const char *reason);

/* Start a connection to ep with the client's callbacks; NULL on failure. */
struct conn *client_open_conn(struct vclient *, const struct endpoint *ep);
/* Close a connection of the client; its callbacks are not called again. */
void	client_close_conn(struct conn *, const char *reason);

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
