/*
 * qbench, the load generator of `make bench`: vehicles built from
 * vehicled's chip store and message code, driven over blocking loopback
 * sockets so that one thread keeps many requests in flight without an
 * event loop in the way.  qbench.c holds the command line, enrolment,
 * the raw TCP baseline and the statistics; bconn.c the connections;
 * bvehicle.c the protocol steps of one vehicle; bload.c the measurements;
 * bsess.c sessions in bulk; becho.c the bare echo server baseline;
 * bcost.c the price of single crypto steps.
 */
#ifndef QROAM_QBENCH_H
#define QROAM_QBENCH_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include <protobuf-c/protobuf-c.h>

#include "frame.h"
#include "msg.h"
#include "result.h"
#include "topo.h"

#include "chip.h"
#include "vmsg.h"

#include "bconn.h"

#define QB_RAN		0
#define QB_LOCAL	2
#define QB_WAIT_MS	10000		/* any single reply */
#define QB_MAXVEH	1024
#define QB_TIMEOUT	(-2)		/* no reply in time */

/* Options of one qbench run. */
struct qbench {
	const char	*q_dir;		/* chip stores DIR/v<i>.db */
	const char	*q_topofile;
	const char	*q_ca;
	const char	*q_cert;
	const char	*q_key;
	struct topo	 q_topo;
	const char	*q_vin;		/* enroll: VIN base */
	uint32_t	 q_first;	/* first vehicle index */
	uint32_t	 q_count;	/* vehicles, or operations */
	uint32_t	 q_parallel;
	uint32_t	 q_window;
	uint32_t	 q_fill_m;
	double		 q_seconds;
	const char	*q_tsp_a;
	const char	*q_tsp_b;
	double		 q_boundary_lon;	/* A west of it, B east */
	double		 q_lat;
	double		 q_speed;
	int		 q_samples;	/* print every sample */
	int		 q_pid;		/* sessions: the TSP's pid, for RSS */
};

/* One emulated vehicle with an open session, if any. */
struct bveh {
	char		 bv_vid[18];
	char		 bv_chip[65];
	sqlite3		*bv_db;
	EVP_PKEY	*bv_pbv;
	char		 bv_tsp[33];	/* the session's TSP, "" for none */
	uint8_t		 bv_k1[32];
	uint64_t	 bv_tx;
	uint64_t	 bv_rx;
	double		 bv_destroy_us;	/* the last key destruction */
	/* The next M3, prepared: its key destroyed, K1 wrapped under it. */
	int		 bv_prep;
	char		 bv_prep_tsp[33];
	uint32_t	 bv_prep_index;
	uint8_t		 bv_prep_k1[32];
	struct vmsg_wrap bv_prep_wrap;
};

/* bvehicle.c */
/* Open a chip store with its registration; 0 or -1 (printed). */
int	bveh_load(struct bveh *, const char *store);
void	bveh_close(struct bveh *);
/* F3: M4 and a verified AuthResult; 0, a StatusCode, or -1. */
int	bveh_auth(struct bveh *, struct bconn *, const char *tsp);
/* An M4 for tsp, its nonce kept by the caller, queued on bc. */
int	bveh_queue_m4(struct bveh *, struct bconn *, const char *tsp,
	    uint64_t reqid, uint8_t nonce[MSG_AUTH_NONCELEN]);
/* 1 if f is a valid AuthResult OK for nonce, else 0. */
int	bveh_auth_ok(struct bveh *, const struct frame *f, const char *tsp,
	    const uint8_t nonce[MSG_AUTH_NONCELEN]);
/*
 * Prepare the M3 for tsp ahead of time (vehicled does so on
 * HandoverReady): destroy the next chip key durably and wrap a fresh K1
 * under it.  0 or -1.
 */
int	bveh_m3_prepare(struct bveh *, const char *tsp);
/*
 * F4: send M3 (the prepared one for tsp, else one prepared now) and wait
 * for the session's first ServiceResponse; 0, a StatusCode, or -1.
 */
int	bveh_m3(struct bveh *, struct bconn *, const char *tsp);
/* bveh_m3 in two halves, so that many vehicles' M3s are in flight. */
int	bveh_m3_send(struct bveh *, struct bconn *, const char *tsp);
int	bveh_m3_recv(struct bveh *, struct bconn *, const char *tsp);
/* Queue a telemetry SessionMsg placed at lat,lon. */
int	bveh_queue_telemetry(struct bveh *, struct bconn *, double lat,
	    double lon, double heading, double speed);
/* Send one SessionInner (M6, Bye) on the session. */
int	bveh_send_inner(struct bveh *, struct bconn *,
	    const Qroam__SessionInner *);
/*
 * The next SessionInner of the session within timeout_ms: NULL with
 * *status set to a StatusCode (a Status frame), QB_TIMEOUT or -1.
 */
Qroam__SessionInner *bveh_recv_inner(struct bveh *, struct bconn *,
	    int timeout_ms, int *status);

/* qbench.c */
double	qb_now_us(void);
/* Chip store path of vehicle i. */
void	qb_store_path(const struct qbench *, uint32_t i, char *buf, size_t len);
/* Endpoint of a TSP's vehicle listener; NULL if unknown (printed). */
const struct endpoint *qb_vehicle_ep(const struct qbench *, const char *tsp);
/* Median and 99th percentile of n samples (sorted in place). */
void	qb_percentiles(double *v, size_t n, double *p50, double *p99);
/* Print "SAMPLES name v1 v2 ..." when -S was given. */
void	qb_print_samples(const struct qbench *, const char *name,
	    const double *v, size_t n);
/* Start a loopback echo server; its port, or 0. */
uint16_t qb_echo_start(void);
/* Round trips of len bytes to the echo server, n samples in us. */
int	qb_rtt(uint16_t port, size_t len, double *out, size_t n);

/* bload.c: the measurements. */
int	qb_cmd_gap(struct qbench *);
int	qb_cmd_handover(struct qbench *);
int	qb_cmd_auth(struct qbench *);
int	qb_cmd_telemetry(struct qbench *);
/* becho.c: the bare libevent echo server and its client. */
int	qb_cmd_echo(struct qbench *);
/* bsess.c: M3 establishments and the sessions a TSP holds. */
int	qb_cmd_sessions(struct qbench *);
/* bcost.c: the CPU price of a TSP's crypto steps. */
int	qb_cmd_cost(struct qbench *);

#endif
