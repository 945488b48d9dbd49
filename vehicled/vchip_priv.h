/*
 * Inside the chip stores of vchip.h: the chip itself, the answers due on
 * the loop, and the fleet store's part (vchipdb.c) that vchip.c calls.
 */
#ifndef VEHICLED_VCHIP_PRIV_H
#define VEHICLED_VCHIP_PRIV_H

#include <sys/queue.h>
#include <stdint.h>

#include "vchip.h"

enum vchip_kind {
	VCHIP_FILE,	/* a store file of its own (chip.h) */
	VCHIP_FLEET,	/* a slot of the fleet store */
};

enum vchip_opkind {
	VOP_TAKE,	/* draw and destroy a key */
	VOP_RAISE,	/* raise a counter (durable) */
	VOP_FILL,	/* a fill as the chip's content */
	VOP_REG,	/* a registration from M1 */
	VOP_EVENT,	/* one journal event */
	VOP_COUNTS,	/* gathered counter deltas */
};

/* The journal's counters that are gathered in memory (fleet store). */
#define VCHIP_NCOUNT	14
extern const char *const vchip_count_names[VCHIP_NCOUNT];

/*
 * One step of a chip.  In the fleet store it belongs to the writer thread
 * from the moment it is queued until it is handed back to the loop, which
 * answers it; a file chip answers its own on the next loop turn.
 */
struct vchip_op {
	TAILQ_ENTRY(vchip_op)	 op_entry;
	enum vchip_opkind	 op_kind;
	struct vchip		*op_chip;
	vchip_key_cb		 op_key_cb;
	vchip_done_cb		 op_done_cb;
	void			*op_arg;
	/* in */
	enum chip_mode		 op_mode;
	char			 op_name[32];	/* counter, or event kind */
	int64_t			 op_value;
	char			 op_tsp[33];
	char			*op_detail;
	uint64_t		 op_ms;
	uint8_t			*op_buf;	/* packed FillRecord, or M1's TSPs */
	size_t			 op_len;
	char			 op_digest[65];	/* of op_buf (VOP_REG) */
	char			 op_chip_id[65];
	uint8_t			*op_pbv;
	size_t			 op_pbvlen;
	int32_t			 op_counts[VCHIP_NCOUNT];
	/* out */
	int			 op_rc;
	char			*op_err;	/* why it failed, or NULL */
	enum chip_draw		 op_draw;
	struct chip_key		 op_key;
	struct chip_info	 op_info;
};

TAILQ_HEAD(vchip_opq, vchip_op);

struct vchip {
	enum vchip_kind		 ch_kind;
	struct event_base	*ch_base;
	const struct topo	*ch_tsps;	/* interned M1 list, or NULL */
	int			 ch_tsps_known;	/* ch_tsps is up to date */
	/* File chips. */
	sqlite3			*ch_db;
	struct vchip_opq	 ch_answers;
	struct event		*ch_ev;
	/* Fleet chips: the slot in memory. */
	struct vchipdb		*ch_fdb;
	char			 ch_vid[18];
	int			 ch_filled;
	struct chip_info	 ch_info;
	int64_t			 ch_maxd;	/* highest destroyed index, -1 */
	int64_t			 ch_ndestroyed;
	int			 ch_registered;
	char			 ch_reg_chip[65];
	uint8_t			*ch_pbv;
	size_t			 ch_pbvlen;
	uint64_t		 ch_reg_ms;
	int64_t			 ch_mark;	/* record_id_mark */
	int64_t			 ch_mark_floor;	/* the mark found at open */
	int32_t			 ch_counts[VCHIP_NCOUNT];
	int			 ch_dirty;	/* on the fleet's dirty list */
	struct vchip		*ch_next_dirty;
	struct vchip		*ch_hnext;	/* the fleet's slot table */
};

/* A new step of kind for ch (ends the process when out of memory). */
struct vchip_op *vchip_op_new(struct vchip *, enum vchip_opkind);
/* Release an answered step, wiping its key and buffers. */
void	vchip_op_free(struct vchip_op *);
/* Answer a step through its callback (on the loop). */
void	vchip_op_answer(struct vchip_op *);

/*
 * The interned TSP list equal to t (t is consumed: kept or freed); NULL
 * if out of memory.  digest may be NULL (compared by content then).
 */
const struct topo *vchip_intern(struct topo *t, const char *digest);
/* The interned list of digest, or NULL. */
const struct topo *vchip_interned(const char *digest);
/* M1's TSP list as a topology (vehicle endpoints and regions); 0 or -1. */
int	vchip_m1_topo(const Qroam__M1 *, struct topo *);

/* vchipdb.c: the fleet store's steps, queued for its writer. */
void	vchipdb_queue(struct vchipdb *, struct vchip_op *);
/* Count delta in ch's gathered counters (or as a step of its own). */
void	vchipdb_count(struct vchip *, const char *name, int64_t delta);

#endif
