/*
 * The vehicle's side of the handover between clouds (PROTOCOL F6, F7):
 * answering M5 from the route, the pre-connection to the next TSP once it
 * holds the vehicle's context (HandoverReady, make-before-break), and the
 * bookkeeping of each crossing with its measured gap (crossing detected ->
 * first ServiceResponse from the new TSP).
 */
#ifndef VEHICLED_HANDOVER_H
#define VEHICLED_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "chip.h"
#include "frame.h"
#include "qroam.pb-c.h"
#include "topo.h"
#include "vmsg.h"

struct conn;
struct vclient;

struct vho {
	char		 ho_next[33];	/* the TSP our last M6 named */
	uint64_t	 ho_m6_seq;	/* that M6's seq: its ack is no telemetry */
	int		 ho_declined;	/* M6 declined: no service in this region */
	char		 ho_last[33];	/* the last region entered since power-on */

	char		 ho_ready[33];	/* holds our context (HandoverReady) */
	struct endpoint	 ho_ep;		/* its vehicle listener */
	struct conn	*ho_conn;	/* the pre-connection to it */
	int		 ho_connected;

	/* The M3 for ho_m3_tsp, prepared on HandoverReady: key destroyed. */
	int		 ho_m3;
	char		 ho_m3_tsp[33];
	uint32_t	 ho_m3_index;
	char		 ho_m3_code[CHIP_CODEMAX + 1];
	uint8_t		 ho_m3_k1[32];
	struct vmsg_wrap ho_m3_wrap;

	int		 ho_crossing;	/* a crossing waits for its first reply */
	char		 ho_from[33];
	char		 ho_to[33];
	uint64_t	 ho_cross_us;	/* monotonic time of the detection */
	int		 ho_reauth;	/* the new TSP asked for F3 */

	double		*ho_gaps;	/* every crossing's gap, ms */
	size_t		 ho_ngaps;
	size_t		 ho_capgaps;
};

/* M5 from the current TSP: choose from the route and answer M6. */
void	vho_m5(struct vclient *, const Qroam__M5 *);
/* HandoverReady: remember the TSP and pre-connect to it. */
void	vho_ready(struct vclient *, const Qroam__HandoverReady *);

/* Events of the pre-connection (the client's connection callbacks). */
void	vho_pre_connected(struct vclient *);
void	vho_pre_frame(struct vclient *, const struct frame *);
void	vho_pre_closed(struct vclient *, const char *reason);

/*
 * The route crossed from the region of `from` into that of tt, detected
 * at detect_us (vho_now_us()), after the session with `from` was left:
 * start measuring the gap and hand over the pre-connection when it goes
 * to tt.
 */
void	vho_cross(struct vclient *, const char *from, const struct topo_tsp *tt,
	    uint64_t detect_us);
/* The new TSP answered AUTH_REQUIRED: this crossing needs F3. */
void	vho_reauth(struct vclient *);
/*
 * The M3 prepared for the current TSP, if any, with d1 as its data: 1 and
 * m3 built (K1 and the key index set in the client; release with
 * msg_m3_clear()), 0 if none was prepared, -1 if it cannot be built (the
 * key it held is lost).  A prepared M3 is used once.
 */
int	vho_m3_take(struct vclient *, Qroam__M3 *m3, const Qroam__Telemetry *d1);
/* A session opened (its reply came at at_us): complete the crossing. */
void	vho_served(struct vclient *, uint64_t at_us);
/* Power off: drop the pre-connection and the prepared handover. */
void	vho_reset(struct vclient *, const char *reason);
/* Release the gap list. */
void	vho_free(struct vho *);

/* 1 while a TSP holds our context: the session must not be renewed. */
int	vho_prepared(const struct vclient *);
/* 1 if an acknowledged seq was a handover message, not telemetry. */
int	vho_control_seq(const struct vclient *, uint64_t seq);

/* Monotonic clock in microseconds, for gaps with a tenth of a ms. */
uint64_t vho_now_us(void);

#endif
