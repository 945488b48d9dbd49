/*
 * The vehicle's side of the handover between clouds (PROTOCOL F6, F7):
 * answering M5 from the route, the second connection to the next TSP once
 * it holds the vehicle's context (HandoverReady, make-before-break) with
 * its M3 prepared and, with prepared entry, sent at once (entry.c), ending
 * that session when the vehicle turns away, and the bookkeeping of each
 * crossing with its service gap (crossing detected -> the new TSP's first
 * ServiceResponse to a message sent at or after it).
 *
 * The handover sits on the protocol client: it calls the client's steps
 * and plugs its callbacks into the client with vho_init().
 */
#ifndef VEHICLED_HANDOVER_H
#define VEHICLED_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "chip.h"
#include "client.h"
#include "route.h"
#include "topo.h"
#include "vmsg.h"

struct vclient;

struct vho {
	struct vclient	*ho_client;

	char		 ho_next[33];	/* the TSP our last M6 named */
	int		 ho_declined;	/* M6 declined: no service in this region */
	char		 ho_last[33];	/* the last region entered since power-on */
	char		 ho_ready[33];	/* holds our context (HandoverReady) */
	double		 ho_near_m;	/* closest to its region since, m */

	/* A key is being taken for the M3 of ho_m3_want. */
	int		 ho_m3_pending;
	char		 ho_m3_want[33];
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
	int		 ho_prepared;	/* served on the session opened ahead */

	double		*ho_gaps;	/* every crossing's gap, ms */
	size_t		 ho_ngaps;
	size_t		 ho_capgaps;
};

/* The handover of client c, plugged into it; nothing prepared yet. */
void	vho_init(struct vho *, struct vclient *c);
/* Release the gap list. */
void	vho_free(struct vho *);

/*
 * The route crossed from the region of `from` into that of tt, detected
 * at detect_us (client_now_us()), after the session with `from` was left:
 * start measuring the gap and hand the second connection over when it
 * goes to tt (its session too, with prepared entry).  Returns what the
 * client took over (entry_adopt()).
 */
enum entry_adopt vho_cross(struct vho *, const char *from,
	    const struct topo_tsp *tt, uint64_t detect_us);
/*
 * Every tick in a region: with prepared entry, end the session opened
 * ahead (Bye) once the vehicle turns away from that region.
 */
void	vho_follow(struct vho *, const struct route_pos *);
/* This crossing needs F3 (AUTH_REQUIRED, or reauth_on_entry). */
void	vho_reauth(struct vho *);
/* Power off: end the second connection and the prepared handover. */
void	vho_reset(struct vho *, const char *reason);

/* 1 while a TSP holds our context: the session must not be renewed. */
int	vho_prepared(const struct vho *);

#endif
