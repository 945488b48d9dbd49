/*
 * tspd: the regional cloud (TSP).  State shared by its parts and their
 * entry points; each protocol step is implemented in the file named after
 * it (provision.c: F1/F2, auth.c: F3, session.c: F4/F5, vehicle.c: the
 * vehicle listener, handover*.c and region.c: F6, cloud.c: the cloud bus
 * between the region's instances).
 */
#ifndef TSPD_H
#define TSPD_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "admin.h"
#include "conn.h"
#include "frame.h"
#include "topo.h"

#include "config.h"
#include "db.h"
#include "handover.h"

struct tspd {
	struct event_base	*t_base;
	struct tspd_config	 t_conf;
	struct topo		 t_topo;
	const struct topo_tsp	*t_self;	/* this TSP in t_topo */
	const char		*t_id;		/* tsp_id */
	struct tspdb		*t_db;
	SSL_CTX			*t_tls;
	SSL_CTX			*t_tls_client;	/* schedd, TSPs */
	SSL_CTX			*t_tls_kme;	/* the KME: kme_tls_min */
	struct keysrc		*t_keysrc;	/* NULL: handover disabled */
	struct listener		*t_vehicle;
	struct listener		*t_provision;
	struct tspd_offers	*t_offers;	/* handover_offer.c */
	struct tspd_ho		*t_ho;		/* handover.c */
	struct tspd_hin		*t_hin;		/* handover_in.c */
	struct tspd_chans	*t_chans;	/* handover_chan.c */
	struct tspd_vtab	*t_vtab;	/* vehicle.c */
	struct tspd_prvcache	*t_prv;		/* prvcache.c */
	struct tspd_auth	*t_auth;	/* auth.c */
	struct tspd_batch	*t_batch;	/* batch.c */
	struct cloudbus		*t_bus;		/* cloud.c; NULL: none */
	struct tspd_authidle	*t_idle;	/* authidle.c */
	/* Answers wait for the commits they depend on (conn.h). */
	struct conn_barrier	*t_barrier;
};

/* Connection callbacks of the listeners; arg is the struct tspd. */
extern const struct conn_cb tspd_vehicle_cb;
extern const struct conn_cb tspd_provision_cb;

/* F3: an M4 on a vehicle connection. */
void	tspd_auth_m4(struct tspd *, struct conn *, const struct frame *);
/* F4: an M3 on a vehicle connection. */
void	tspd_session_m3(struct tspd *, struct conn *, const struct frame *);
/* F5: a SessionMsg on a vehicle connection. */
void	tspd_session_msg(struct tspd *, struct conn *, const struct frame *);
/*
 * End vid's session (and with power_off its authentication), answering
 * the message request_id on c only if the store fails; why is logged.
 */
void	tspd_session_close(struct tspd *, struct conn *, uint64_t request_id,
	    const char *vid, int power_off, const char *why);
/* Check the values of a Telemetry; NULL if fine, else the reason. */
const char *tspd_telemetry_check(const Qroam__Telemetry *);
/* Check the fields of an M2 (provision.c); NULL if fine, else the reason. */
const char *tspd_provision_m2_check(const Qroam__M2 *);

/* The connection a vehicle last spoke on (vehicle.c); NULL if none. */
void	tspd_vehicle_bind(struct tspd *, const char *vid, struct conn *);
struct conn *tspd_vehicle_conn(struct tspd *, const char *vid);
void	tspd_vehicle_init(struct tspd *);
void	tspd_vehicle_free(struct tspd *);

/*
 * The cloud bus between the region's instances (cloud.c, cloudbus.h):
 * started when the configuration has cloud_key.
 */
void	tspd_cloud_start(struct tspd *);
void	tspd_cloud_free(struct tspd *);
/* The bus for /status (null without one). */
json_t	*tspd_cloud_json(const struct tspd *);
/*
 * Send sm to vehicle vid on its open connection here or, without one and
 * with the cloud bus, to the instance that holds it (a VehicleSend to
 * every instance).  what starts the log lines.  0 sent or handed to the
 * bus, -1 (logged) not.
 */
int	tspd_vehicle_send_session(struct tspd *, const char *vid,
	    const Qroam__SessionMsg *sm, const char *what);

/*
 * Decoded Prv of the vehicles, at most max of them (0: none kept), by
 * registration epoch (prvcache.c).  Loop thread only.
 */
void	tspd_prv_init(struct tspd *, size_t max);
void	tspd_prv_free(struct tspd *);
/* vid's cached Prv of epoch (a new reference), or NULL. */
EVP_PKEY *tspd_prv_lookup(struct tspd *, const char *vid, uint64_t epoch);
/* Keep key (the cache takes its own reference) as vid's Prv of epoch. */
void	tspd_prv_put(struct tspd *, const char *vid, uint64_t epoch,
	    EVP_PKEY *key);
/* Drop vid's cached Prv (its registration changed). */
void	tspd_prv_forget(struct tspd *, const char *vid);
size_t	tspd_prv_count(const struct tspd *);

/*
 * F3 runs its private-key work (Prv decode, RSA-OAEP, AuthInner checks,
 * the PSS signature) on a pool of `workers` threads; the loop keeps the
 * store and the connection (auth.c).  tspd_auth_free finishes the M4s in
 * flight: those already worked are answered, the others dropped.
 */
void	tspd_auth_init(struct tspd *);
/*
 * F8 auth_idle (authidle.c): the time before which an authentication's
 * last use expires it at now_ms (0: never), and the periodic sweep.
 */
uint64_t tspd_auth_since(const struct tspd *, uint64_t now_ms);
void	tspd_authidle_init(struct tspd *);
void	tspd_authidle_free(struct tspd *);
void	tspd_auth_free(struct tspd *);
/* Connection c is closing: the answers of its M4s in flight are dropped. */
void	tspd_auth_conn_closed(struct tspd *, struct conn *);

/*
 * Group commit of F5 telemetry (batch.c): the messages of one pass of the
 * event loop (or of commit_delay) share one transaction; their replies
 * leave at once, and stored_seq follows when the group is durable.
 */
void	tspd_batch_init(struct tspd *);
/* Commit what is pending, then free the batch. */
void	tspd_batch_free(struct tspd *);
/* Largest sealed ServiceResponse to telemetry (ct bytes). */
#define TSPD_ACK_MAX	128
/*
 * Store telemetry seq of s in the open batch (tx_seq: the TSP's last seq
 * used) and send its sealed replies (m5 may be NULL), at once or, when
 * tx_seq needs a new ceiling, after the commit; the batch then copies
 * reply's ct (at most TSPD_ACK_MAX bytes) and takes over m5's ct buffer.
 * A tspdb_result.
 */
enum tspdb_result tspd_batch_telemetry(struct tspd *, struct conn *,
	    uint64_t request_id, const struct tspdb_session *s, uint64_t seq,
	    uint64_t tx_seq, const Qroam__Telemetry *t,
	    Qroam__SessionMsg *reply, Qroam__SessionMsg *m5);
/*
 * Store the session s of an M3 (with its D1) in the open batch; rq is
 * answered after the batch's commit (tspdb_batch_session_open).
 */
void	tspd_batch_m3(struct tspd *, const struct tspdb_session *s,
	    int sequential, const Qroam__Telemetry *d1, struct tspdb_req *rq);
/* Commit the open batch now and send its replies. */
void	tspd_batch_flush(struct tspd *);
/* The first n commits are durable: the groups among them are stored. */
void	tspd_batch_durable(struct tspd *, uint64_t n);
/*
 * Send vid's vehicle a ServiceResponse carrying its new stored_seq, unless
 * an answer carried it already or the vehicle is not connected.
 */
void	tspd_session_tell_stored(struct tspd *, const char *vid);
/* Connection c is closing: its queued replies are dropped. */
void	tspd_batch_conn_closed(struct tspd *, struct conn *);

/*
 * Operations (ops.c): the admin endpoint's /status callback, the gauges
 * collected at scrape time, and the counters of events.
 */
enum tspd_ho_role {
	TSPD_HO_SOURCE,
	TSPD_HO_TARGET,
};

void	tspd_ops_init(struct tspd *);
void	tspd_ops_free(struct tspd *);
json_t	*tspd_status(void *arg, const char *what, json_t *obj);
void	 tspd_prepare(void *arg, const char *what, struct admin_wait *);
/*
 * A handover ended with result (ok, failed, declined); on the source side
 * with started_ms != 0 its duration goes into the latency histogram.
 */
void	tspd_metric_handover(enum tspd_ho_role, const char *result,
	    uint64_t started_ms);
/* n telemetry records from vehicles were committed. */
void	tspd_metric_telemetry(size_t n);
/*
 * horing.c: an outgoing handover ended (reason NULL: done); the last ones
 * as the JSON array of /status/handovers_ended, oldest first.
 */
void	tspd_horing_add(const char *hid, const char *vid, const char *to,
	    const char *reason, uint64_t started_ms);
json_t	*tspd_horing_json(void);
/* handover.c: the outgoing handovers under way (at most max), from memory. */
json_t	*tspd_handover_out_json(struct tspd *, size_t max);

/* Run the loop until the store answered every request; 2 s at most. */
void	tspd_store_drain(struct tspd *);

#endif
