/*
 * qkdd configuration: the common directives (id, store, ca, cert, key,
 * topology for the `qkd` listen address) plus
 *
 *   key_size BITS			(256)
 *   max_key_per_request N		(128)
 *   link SAE_A SAE_B [rate BPS | fibre KM [loss DB_PER_KM]
 *	[detector ETA] [dark Y0] [mu MU] [decoy NU] [pulses HZ]] [qber Q]
 *	[pool KEYS] [eavesdropper FRACTION] [sample BITS] [fec F]
 */
#ifndef QKDD_CONFIG_H
#define QKDD_CONFIG_H

#include "conf.h"
#include "fibre.h"

#define QKDD_MAXLINKS		256
#define QKDD_MAX_KEYSIZE	4096	/* bits */
#define QKDD_MIN_KEYSIZE	64	/* bits */
#define QKDD_DEFAULT_SAMPLE	25000	/* parameter-estimation sample, bits */
#define QKDD_MIN_SAMPLE		1000
#define QKDD_MAX_SAMPLE		10000000
#define QKDD_DEFAULT_FEC	1.16	/* error-correction inefficiency */
#define QKDD_MAX_FEC		2.0

struct qkdd_link_conf {
	char		lc_a[33];	/* the pair, lc_a < lc_b */
	char		lc_b[33];
	double		lc_rate;	/* secret bits/s at the base QBER */
	int		lc_fibre;	/* rate from a fibre model instead */
	struct qkd_fibre lc_fib;	/* its parameters but fb_edet */
	double		lc_qber;	/* base QBER (a fibre's e_det) */
	double		lc_eve;		/* intercepted fraction of qubits */
	unsigned	lc_pool;	/* keys the pool holds at most */
	unsigned	lc_sample;	/* sampled bits a block needs */
	double		lc_fec;		/* error-correction inefficiency */
};

struct qkdd_conf {
	struct cfg_common	 qc_common;
	unsigned		 qc_key_size;		/* bits */
	unsigned		 qc_max_per_request;
	struct qkdd_link_conf	 qc_links[QKDD_MAXLINKS];
	size_t			 qc_nlinks;
};

/*
 * Parse path completely; errors go to stderr as file:line: message.
 * 0, or -1 with *qc released (as every daemon's loader).
 */
int	qkdd_conf_load(const char *path, struct qkdd_conf *);
void	qkdd_conf_free(struct qkdd_conf *);

#endif
