/*
 * BB84 link simulation (PROTOCOL section 7): Alice sends random bits in
 * random bases, an intercept-resend eavesdropper measures a fraction of
 * the qubits in random bases and resends what she saw, the channel flips
 * bits at a base error rate, Bob measures in random bases.  Then sifting,
 * a QBER estimate on a disclosed random sample of the sifted bits, the
 * abort above 11 %, the secret fraction 1 - 2h(Q) and privacy
 * amplification with SHA-256.  Pure computation: every random choice comes
 * from qrand_bytes() and nothing here does I/O.
 */
#ifndef QKDD_BB84_H
#define QKDD_BB84_H

#include <stddef.h>
#include <stdint.h>

#define BB84_QBER_MAX	0.11	/* abort threshold on the bound */
#define BB84_EPS	1e-10	/* failure probability of the bound */

struct bb84_params {
	double		 bp_qber;	/* channel bit error rate, 0..0.5 */
	double		 bp_eve;	/* intercepted fraction, 0..1 */
	double		 bp_sample;	/* disclosed fraction, 0..1 */
};

/* A block, accumulated by bb84_run, judged by bb84_decide. */
struct bb84_block {
	size_t		 bb_qubits;	/* qubits Alice sent */
	size_t		 bb_sifted;	/* measured in Alice's basis */
	size_t		 bb_sampled;	/* sifted bits disclosed */
	size_t		 bb_sample_errors; /* errors among them */
	size_t		 bb_kept;	/* sifted bits not disclosed */
	size_t		 bb_kept_errors; /* errors among those */
	double		 bb_qber;	/* estimate: sample errors / sampled */
	double		 bb_bound;	/* Q_U, the bound on the QBER */
	double		 bb_fraction;	/* secret fraction; 0 when aborted */
	int		 bb_aborted;	/* no sample, or Q_U above 11 % */
	uint8_t		*bb_bits;	/* reconciled kept bits, MSB first */
	size_t		 bb_bitslen;	/* bytes in bb_bits */
	size_t		 bb_bitcap;	/* bytes allocated */
};

/* Binary entropy h(p) in bits; 0 at p = 0 and p = 1. */
double	bb84_entropy(double p);

/*
 * The upper confidence bound Q_U of a QBER from errors among n sampled
 * bits: the largest q >= errors/n with n D(errors/n || q) <= ln(1/eps),
 * D the binary Kullback-Leibler divergence.  By Chernoff's bound a true
 * QBER above Q_U gives a sample this good with probability at most eps.
 * 1 when n is 0.
 */
double	bb84_qber_bound(size_t errors, size_t n, double eps);

/* The bound a sample of n bits at a true QBER q gives on average. */
double	bb84_expected_bound(double q, size_t n);

/* 1 - f_ec h(q) - h(q) for 0 <= q <= 0.11, else 0; never negative. */
double	bb84_secret_fraction(double qber, double fec);

/*
 * Simulate nqubits more qubits into blk, which starts zeroed (memset) and
 * is freed with bb84_block_free; 0 or -1.
 */
int	bb84_run(const struct bb84_params *, size_t nqubits,
	    struct bb84_block *blk);

/* Estimate, bound, abort decision and secret fraction of blk. */
void	bb84_decide(struct bb84_block *blk, double fec);

/* Secret bits the block yields: floor(fraction * kept). */
size_t	bb84_secret_bits(const struct bb84_block *);

/*
 * Privacy amplification: outlen bytes from SHA-256 over the reconciled
 * block, one 32-byte output per counter value.  0, or -1 if the block was
 * aborted or hashing failed.
 */
int	bb84_amplify(const struct bb84_block *, uint8_t *out, size_t outlen);

/* Wipe and free the block's bits. */
void	bb84_block_free(struct bb84_block *);

#endif
