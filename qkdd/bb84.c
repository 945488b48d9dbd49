/*
 * BB84 on a simulated link.  Each qubit is simulated on its own: Alice's
 * bit and basis, Eve's interception (basis, outcome, resent state), the
 * channel error and Bob's measurement.  Sifting keeps the qubits Bob
 * measured in Alice's basis; a random sample of those is disclosed to
 * estimate the QBER and discarded.
 *
 * Error correction is modelled, not run: after reconciliation Bob holds
 * Alice's bits, so the reconciled block is Alice's kept bits.  The bits a
 * real protocol leaks while correcting (f_EC h(Q) per bit, f_EC >= 1 the
 * inefficiency of the code against the Shannon limit) and what the
 * eavesdropper may have learnt (h(Q) per bit, the phase error rate being
 * the bit error rate in BB84) are taken off with the bound Q_U in place
 * of Q: the secret fraction is 1 - f_EC h(Q_U) - h(Q_U).  Every sifted
 * bit of the emulator errs independently with the channel's probability,
 * so the sample's errors are binomial and Chernoff's bound holds for the
 * kept bits' rate too.  Privacy amplification then compresses the block
 * with SHA-256 to the secret length.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bb84.h"
#include "crypto.h"
#include "rand.h"

/* Random bytes per qubit: a flags byte and three 32-bit uniforms. */
#define DRAW_LEN	13
#define DRAW_CHUNK	2048	/* qubits drawn per qrand_bytes call */

#define F_ALICE_BIT	0x01
#define F_ALICE_BASIS	0x02
#define F_BOB_BASIS	0x04
#define F_EVE_BASIS	0x08
#define F_EVE_GUESS	0x10	/* Eve's outcome in the wrong basis */
#define F_BOB_GUESS	0x20	/* Bob's outcome in the wrong basis */

#define PA_LABEL	"qroam/1|QKD-PA"

/* Binary entropy in bits. */
double
bb84_entropy(double p)
{
	if (p <= 0.0 || p >= 1.0)
		return 0.0;
	return -p * log2(p) - (1.0 - p) * log2(1.0 - p);
}

/* Binary Kullback-Leibler divergence D(p || q) in nats, 0 < q < 1. */
static double
bb84_divergence(double p, double q)
{
	double	d = 0.0;

	if (p > 0.0)
		d += p * log(p / q);
	if (p < 1.0)
		d += (1.0 - p) * log((1.0 - p) / (1.0 - q));
	return d;
}

/* Bisection for the largest q with n D(p || q) <= ln(1/eps). */
double
bb84_qber_bound(size_t errors, size_t n, double eps)
{
	double	p, lo, hi, mid, lim = log(1.0 / eps);
	int	i;

	if (n == 0 || errors >= n)
		return 1.0;
	p = (double)errors / (double)n;
	lo = p;
	hi = 1.0;
	for (i = 0; i < 60; i++) {
		mid = (lo + hi) / 2.0;
		if ((double)n * bb84_divergence(p, mid) <= lim)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

double
bb84_expected_bound(double q, size_t n)
{
	return bb84_qber_bound((size_t)llround(q * (double)n), n, BB84_EPS);
}

/* Secret bits per reconciled bit at a QBER bound; none above 11 %. */
double
bb84_secret_fraction(double qber, double fec)
{
	double	f;

	if (qber < 0.0 || qber > BB84_QBER_MAX)
		return 0.0;
	f = 1.0 - (fec + 1.0) * bb84_entropy(qber);
	return f > 0.0 ? f : 0.0;
}

/* A probability as a threshold for a uniform 32-bit draw. */
static uint64_t
bb84_threshold(double p)
{
	if (p <= 0.0)
		return 0;
	if (p >= 1.0)
		return (uint64_t)1 << 32;
	return (uint64_t)(p * 4294967296.0);
}

/* A big-endian 32-bit uniform from four random bytes. */
static uint32_t
bb84_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

struct bb84_thresholds {
	uint64_t	t_eve;
	uint64_t	t_noise;
	uint64_t	t_sample;
};

/*
 * One qubit from Alice to Bob given its random draw; sifted qubits are
 * counted into blk, disclosed (sample) or appended to the kept bits.
 */
static void
bb84_qubit(const uint8_t *d, const struct bb84_thresholds *t,
    struct bb84_block *blk)
{
	unsigned	alice, abasis, bbasis, bit, basis, bob;

	alice = (d[0] & F_ALICE_BIT) != 0;
	abasis = (d[0] & F_ALICE_BASIS) != 0;
	bbasis = (d[0] & F_BOB_BASIS) != 0;
	bit = alice;
	basis = abasis;
	if (bb84_u32(d + 1) < t->t_eve) {
		/* Intercept-resend: measure in a random basis, resend. */
		unsigned ebasis = (d[0] & F_EVE_BASIS) != 0;

		if (ebasis != basis)
			bit = (d[0] & F_EVE_GUESS) != 0;
		basis = ebasis;
	}
	bob = bbasis == basis ? bit : (d[0] & F_BOB_GUESS) != 0;
	if (bb84_u32(d + 5) < t->t_noise)
		bob ^= 1;
	if (abasis != bbasis)
		return;
	blk->bb_sifted++;
	if (bb84_u32(d + 9) < t->t_sample) {
		blk->bb_sampled++;
		if (bob != alice)
			blk->bb_sample_errors++;
		return;
	}
	if (alice)
		blk->bb_bits[blk->bb_kept / 8] |= 0x80 >> (blk->bb_kept % 8);
	if (bob != alice)
		blk->bb_kept_errors++;
	blk->bb_kept++;
}

/*
 * The estimate, the bound, the abort decision and the secret fraction of
 * blk: it aborts without a sample or with Q_U above the threshold.
 */
void
bb84_decide(struct bb84_block *blk, double fec)
{
	if (blk->bb_sampled == 0) {
		blk->bb_qber = 0.0;
		blk->bb_bound = 1.0;
		blk->bb_aborted = 1;
	} else {
		blk->bb_qber = (double)blk->bb_sample_errors /
		    (double)blk->bb_sampled;
		blk->bb_bound = bb84_qber_bound(blk->bb_sample_errors,
		    blk->bb_sampled, BB84_EPS);
		blk->bb_aborted = blk->bb_bound > BB84_QBER_MAX;
	}
	blk->bb_fraction = blk->bb_aborted ? 0.0 :
	    bb84_secret_fraction(blk->bb_bound, fec);
}

/*
 * Room in blk's bits for nqubits more kept bits; key material, so the old
 * buffer is wiped rather than realloc'd.  0 or -1.
 */
static int
bb84_grow(struct bb84_block *blk, size_t nqubits)
{
	uint8_t	*nb;
	size_t	 need = (blk->bb_kept + nqubits + 7) / 8 + 1, cap;

	if (blk->bb_bits != NULL && need <= blk->bb_bitcap)
		return 0;
	cap = blk->bb_bitcap * 2 > need ? blk->bb_bitcap * 2 : need;
	if ((nb = calloc(cap, 1)) == NULL)
		return -1;
	if (blk->bb_bits != NULL) {
		memcpy(nb, blk->bb_bits, blk->bb_bitcap);
		crypto_wipe(blk->bb_bits, blk->bb_bitcap);
		free(blk->bb_bits);
	}
	blk->bb_bits = nb;
	blk->bb_bitcap = cap;
	return 0;
}

/* Simulate more of a block: draw randomness in chunks, trace every qubit. */
int
bb84_run(const struct bb84_params *bp, size_t nqubits, struct bb84_block *blk)
{
	struct bb84_thresholds	 t;
	uint8_t			*draw;
	size_t			 done, n, i;

	if (bp->bp_qber < 0.0 || bp->bp_qber > 0.5 || bp->bp_eve < 0.0 ||
	    bp->bp_eve > 1.0 || bp->bp_sample < 0.0 || bp->bp_sample > 1.0)
		return -1;
	if (bb84_grow(blk, nqubits) == -1)
		return -1;
	if ((draw = malloc(DRAW_CHUNK * DRAW_LEN)) == NULL)
		return -1;
	t.t_eve = bb84_threshold(bp->bp_eve);
	t.t_noise = bb84_threshold(bp->bp_qber);
	t.t_sample = bb84_threshold(bp->bp_sample);
	for (done = 0; done < nqubits; done += n) {
		n = nqubits - done < DRAW_CHUNK ? nqubits - done : DRAW_CHUNK;
		qrand_bytes(draw, n * DRAW_LEN);
		for (i = 0; i < n; i++)
			bb84_qubit(draw + i * DRAW_LEN, &t, blk);
	}
	crypto_wipe(draw, DRAW_CHUNK * DRAW_LEN);
	free(draw);
	blk->bb_qubits += nqubits;
	blk->bb_bitslen = (blk->bb_kept + 7) / 8;
	return 0;
}

/* Bits left after privacy amplification of an accepted block. */
size_t
bb84_secret_bits(const struct bb84_block *blk)
{
	if (blk->bb_aborted)
		return 0;
	return (size_t)floor(blk->bb_fraction * (double)blk->bb_kept);
}

/* SHA-256(label || counter || kept bit count || block) into out. */
static int
bb84_hash(const struct bb84_block *blk, uint32_t ctr,
    uint8_t out[CRYPTO_HASHLEN])
{
	EVP_MD_CTX	*md;
	uint8_t		 hdr[12];
	uint64_t	 kept = blk->bb_kept;
	int		 i, ok;

	for (i = 0; i < 4; i++)
		hdr[i] = (uint8_t)(ctr >> (24 - 8 * i));
	for (i = 0; i < 8; i++)
		hdr[4 + i] = (uint8_t)(kept >> (56 - 8 * i));
	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, PA_LABEL, sizeof(PA_LABEL) - 1) == 1 &&
	    EVP_DigestUpdate(md, hdr, sizeof(hdr)) == 1 &&
	    EVP_DigestUpdate(md, blk->bb_bits, blk->bb_bitslen) == 1 &&
	    EVP_DigestFinal_ex(md, out, NULL) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* Compress (or, when scaled, stretch) the block into outlen bytes. */
int
bb84_amplify(const struct bb84_block *blk, uint8_t *out, size_t outlen)
{
	uint8_t		h[CRYPTO_HASHLEN];
	size_t		off, n;
	uint32_t	ctr;

	if (blk->bb_aborted || blk->bb_bits == NULL)
		return -1;
	for (off = 0, ctr = 0; off < outlen; off += n, ctr++) {
		if (bb84_hash(blk, ctr, h) == -1) {
			crypto_wipe(out, outlen);
			return -1;
		}
		n = outlen - off < sizeof(h) ? outlen - off : sizeof(h);
		memcpy(out + off, h, n);
	}
	crypto_wipe(h, sizeof(h));
	return 0;
}

/* Wipe the reconciled bits, which are key material. */
void
bb84_block_free(struct bb84_block *blk)
{
	if (blk->bb_bits != NULL) {
		crypto_wipe(blk->bb_bits, blk->bb_bitcap);
		free(blk->bb_bits);
	}
	memset(blk, 0, sizeof(*blk));
}
