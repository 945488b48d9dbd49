/*
 * The QKD links of qkdd: one simulated BB84 link per configured SAE pair,
 * run on a timer, whose distilled secret bits are cut into keys and added
 * to the pair's pool up to its size.  Operators change the eavesdropper
 * fraction, base QBER and rate while it runs.
 */
#ifndef QKDD_LINKS_H
#define QKDD_LINKS_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

#include "bb84.h"
#include "config.h"
#include "fibre.h"
#include "pool.h"

#define QKD_TICK_MS		100
#define QKD_SAMPLE_FRACTION	0.1	/* sifted bits disclosed per block */
#define QKD_MIN_BLOCK		16384	/* qubits simulated per tick at least */
#define QKD_MAX_BLOCK		131072	/* and at most; beyond, output scales */
#define QKD_MONITOR_BLOCK	16384	/* per tick while the pool is full */
#define QKD_WINDOW		4	/* blocks in the link state's estimate */
#define QKD_HYSTERESIS		0.01	/* below the threshold to be up again */
#define QKD_RUN_MAX		10000	/* ticks one qkd_link_run may take */

#define QKD_LINK_LABEL	67	/* "sae_a/sae_b" and its NUL */

struct qkd_link {
	char		 l_a[33];		/* the pair, l_a < l_b */
	char		 l_b[33];
	char		 l_label[QKD_LINK_LABEL]; /* "l_a/l_b": status, metrics */
	double		 l_rate;		/* target secret bits/s */
	double		 l_qber;		/* base QBER */
	double		 l_eve;			/* intercepted fraction */
	unsigned	 l_pool;		/* pool size in keys */
	unsigned	 l_sample_bits;		/* sample of a block */
	double		 l_fec;			/* error correction f_EC */
	double		 l_qubit_rate;		/* qubits/s reaching Bob */
	int		 l_fibre;		/* rates from a fibre model */
	struct qkd_fibre l_fib;			/* its fb_edet is l_qber */
	double		 l_chan_qber;		/* QBER of the qubits sent */
	double		 l_rate_asym;		/* a fibre's GLLP rate, bits/s */
	double		 l_qubit_carry;		/* fractional qubits */
	double		 l_bit_credit;		/* fractional secret bits */
	uint8_t		 l_pending[QKD_KEYMAX];	/* secret bytes not yet a key */
	size_t		 l_npending;
	struct bb84_block l_blk;		/* the block being gathered */
	double		 l_blk_kept;		/* its kept bits, scaled */
	double		 l_blk_dt;		/* seconds it spans */
	size_t		 l_win_errors[QKD_WINDOW]; /* the last blocks' samples */
	size_t		 l_win_sampled[QKD_WINDOW];
	size_t		 l_win_len;
	size_t		 l_win_next;
	int		 l_has_estimate;
	double		 l_est_qber;		/* over the window */
	double		 l_est_bound;		/* Q_U over the window */
	double		 l_blk_qber;		/* of the last block */
	double		 l_blk_bound;
	int		 l_aborting;		/* state: 1 aborting, 0 up */
	double		 l_secret_bps;		/* smoothed distilled rate */
	uint64_t	 l_keys_made;
	uint64_t	 l_blocks;		/* blocks decided */
	uint64_t	 l_aborts;		/* of those, aborted */
	uint64_t	 l_abort_run;		/* consecutive aborted blocks */
};

/* What qkd_link_run did. */
struct qkd_run {
	uint64_t	 r_blocks;
	uint64_t	 r_aborts;
	uint64_t	 r_keys;
};

struct qkd_links;

/* Links from conf over pool, ticking on base; NULL on failure, logged. */
struct qkd_links *qkd_links_new(struct event_base *, const struct qkdd_conf *,
	    struct qkd_pool *);
void	qkd_links_free(struct qkd_links *);

size_t	qkd_links_count(const struct qkd_links *);
struct qkd_link *qkd_links_at(struct qkd_links *, size_t i);
/* The link between two SAEs in either order, or NULL. */
struct qkd_link *qkd_links_find(struct qkd_links *, const char *x,
	    const char *y);

/*
 * SIGHUP: the settings of running links that the new configuration now
 * changes with respect to the running one was (rate or fibre, qber,
 * eavesdropper, pool size), each logged; a setting the file leaves as it
 * was keeps what an operator set at run time.  Links added or removed
 * are logged as taking a restart.  was's links are updated to now's.
 * Returns the number of links changed.
 */
size_t	qkd_links_reconfigure(struct qkd_links *, struct qkdd_conf *was,
	    const struct qkdd_conf *now);

/* A link's settings; a negative member leaves that setting alone. */
struct qkd_link_change {
	double		 lx_eve;
	double		 lx_qber;
	double		 lx_rate;
	double		 lx_sample;	/* bits */
	double		 lx_fec;
};

/* A change that changes nothing, to fill in. */
void	qkd_link_change_init(struct qkd_link_change *);

/*
 * Change a link's settings.  A change of the channel (eavesdropper, base
 * QBER, rate) or of the sample size ends the block being gathered,
 * discarded, so that every block runs on one channel and is judged by
 * one rule.
 */
void	qkd_link_set(struct qkd_link *, const struct qkd_link_change *);

/*
 * Run ticks ticks of QKD_TICK_MS each on one link at once (the operator's
 * and the tests' way to drive many blocks without waiting), committing
 * each tick's keys as the timer does; what happened into *out.  The wall
 * time the run took is not made up by the timer's next tick, on any link.
 */
void	qkd_link_run(struct qkd_links *, struct qkd_link *, unsigned ticks,
	    struct qkd_run *out);

/* "up" or "aborting". */
const char *qkd_link_state(const struct qkd_link *);

/* Keys of the link that enc_keys may hand out now: none while aborting. */
size_t	qkd_link_deliverable(struct qkd_links *, const struct qkd_link *);

/*
 * Qubits/s that yield rate secret bits/s at the given QBER, with the
 * bound a sample of sample bits gives on average and f_EC fec.
 */
double	qkd_qubit_rate(double rate, double qber, unsigned sample, double fec);

/* Secret bits per qubit reaching Bob at a QBER (same terms). */
double	qkd_qubit_yield(double qber, unsigned sample, double fec);

#endif
