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

#include "config.h"
#include "pool.h"

#define QKD_TICK_MS		100
#define QKD_SAMPLE_FRACTION	0.1	/* sifted bits disclosed per block */
#define QKD_MIN_BLOCK		16384	/* qubits simulated per tick at least */
#define QKD_MAX_BLOCK		131072	/* and at most; beyond, output scales */
#define QKD_MONITOR_BLOCK	8192	/* per tick while the pool is full */

#define QKD_LINK_LABEL	67	/* "sae_a/sae_b" and its NUL */

struct qkd_link {
	char		 l_a[33];		/* the pair, l_a < l_b */
	char		 l_b[33];
	char		 l_label[QKD_LINK_LABEL]; /* "l_a/l_b": status, metrics */
	double		 l_rate;		/* target secret bits/s */
	double		 l_qber;		/* base QBER */
	double		 l_eve;			/* intercepted fraction */
	unsigned	 l_pool;		/* pool size in keys */
	double		 l_qubit_rate;		/* qubits/s reaching Bob */
	int		 l_fibre;		/* qubit rate from a fibre */
	double		 l_qubit_carry;		/* fractional qubits */
	double		 l_bit_credit;		/* fractional secret bits */
	uint8_t		 l_pending[QKD_KEYMAX];	/* secret bytes not yet a key */
	size_t		 l_npending;
	int		 l_has_estimate;
	double		 l_est_qber;		/* last block's estimate */
	int		 l_aborting;		/* last block aborted */
	double		 l_secret_bps;		/* smoothed distilled rate */
	uint64_t	 l_keys_made;
	uint64_t	 l_aborts;
	uint64_t	 l_abort_run;		/* consecutive aborted blocks */
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

/* Change a link's settings; a negative value leaves that setting alone. */
void	qkd_link_set(struct qkd_link *, double eve, double qber, double rate);

/* Qubits/s reaching Bob over km of fibre at loss dB/km. */
double	qkd_fibre_qubit_rate(double km, double loss);

/* Qubits/s that yield rate secret bits/s at the given QBER. */
double	qkd_qubit_rate(double rate, double qber);

#endif
