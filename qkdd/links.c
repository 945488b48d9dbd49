/*
 * Simulated QKD links.  Every tick each link simulates the qubits that
 * reached Bob since the last tick (at least QKD_MIN_BLOCK and at most
 * QKD_MAX_BLOCK are simulated; the yield is scaled by the ratio of qubits
 * received to qubits simulated, so fast links cost bounded CPU) into the
 * block it is gathering.  A block spans as many ticks as its disclosed
 * sample needs to reach the link's sample size; then it is judged on the
 * upper bound Q_U of its QBER (bb84.h): above 11 % it aborts and yields
 * nothing, else its secret bits, 1 - f_EC h(Q_U) - h(Q_U) of its kept
 * bits, are privacy-amplified into the link's pending bytes and cut into
 * keys of key_size bits, stored in the pool up to its size.  A full pool
 * discards the link's output and is watched with smaller ticks
 * (QKD_MONITOR_BLOCK) so that an eavesdropper is still noticed.  When the
 * scale exceeds 1 the amplification stretches the simulated block to the
 * configured rate, which an emulator may do and a real link would not
 * need to.
 *
 * The link's state is judged apart from any one block, on the samples of
 * its last QKD_WINDOW blocks together: it turns "aborting" when their
 * bound exceeds 11 % and "up" again once it is QKD_HYSTERESIS below.
 * While aborting, enc_keys answers 503 and status counts no keys, even
 * those the pool holds from before.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bb84.h"
#include "crypto.h"
#include "links.h"
#include "log.h"
#include "metrics.h"

#define STATS_EVERY	10	/* ticks between link statistics rows */
#define RATE_SMOOTHING	0.2	/* weight of the newest tick in l_secret_bps */

struct qkd_links {
	struct event		*ls_tick;
	struct qkd_pool		*ls_pool;
	size_t			 ls_keybytes;
	struct qkd_link		*ls_links;
	size_t			 ls_nlinks;
	struct timespec		 ls_last;
	unsigned		 ls_ticks;
	int			 ls_txn;	/* a transaction is open */
	int			 ls_txn_failed;
	struct metric		*ls_aborts;
};

/*
 * The yield per qubit reaching Bob: sifting, the disclosed sample and the
 * secret fraction at the bound a block's sample gives on average.
 */
double
qkd_qubit_yield(double qber, unsigned sample, double fec)
{
	return 0.5 * (1.0 - QKD_SAMPLE_FRACTION) * bb84_secret_fraction(
	    bb84_expected_bound(qber, sample), fec);
}

/* Invert the yield. */
double
qkd_qubit_rate(double rate, double qber, unsigned sample, double fec)
{
	double	y = qkd_qubit_yield(qber, sample, fec);

	/* A link too noisy for key sends qubits at the noiseless yield's. */
	if (y <= 0.0)
		y = 0.5 * (1.0 - QKD_SAMPLE_FRACTION);
	return rate / y;
}

void
qkd_link_change_init(struct qkd_link_change *x)
{
	x->lx_eve = x->lx_qber = x->lx_rate = -1.0;
	x->lx_sample = x->lx_fec = -1.0;
}

/* Wipe the block being gathered and start another. */
static void
qkd_link_block_reset(struct qkd_link *l)
{
	bb84_block_free(&l->l_blk);
	l->l_blk_kept = 0.0;
	l->l_blk_dt = 0.0;
}

/*
 * The rates of a fibre link from its model, with the base QBER as the
 * detector error: the signals detected are the qubits sent to Bob, at the
 * model's QBER; the secret rate is their yield at the bound a sample
 * gives on average, the asymptotic one the GLLP formula's.
 */
static void
qkd_link_fibre(struct qkd_link *l)
{
	struct qkd_fibre_gain	g;
	double			u;

	l->l_fib.fb_edet = l->l_qber;
	qkd_fibre_gain(&l->l_fib, &g);
	l->l_qubit_rate = l->l_fib.fb_pulses * g.fg_qmu;
	l->l_chan_qber = g.fg_emu;
	u = bb84_expected_bound(g.fg_emu, l->l_sample_bits);
	l->l_rate = l->l_qubit_rate * 0.5 * (1.0 - QKD_SAMPLE_FRACTION) *
	    qkd_fibre_fraction(&l->l_fib, l->l_fec, u);
	l->l_rate_asym = l->l_fib.fb_pulses *
	    qkd_fibre_rate_per_pulse(&l->l_fib, l->l_fec);
	if (l->l_rate_asym < 0.0)
		l->l_rate_asym = 0.0;
}

/*
 * Apply a change, from the operator or the configuration, with one meaning
 * whichever path it takes: `rate` is the secret rate at the base QBER, so a
 * new base QBER, sample size or f_EC re-derives the qubit rate of a
 * fixed-rate link and the secret rate of a fibre link, whose qubit rate
 * the fibre fixes.  A rate given makes the link a fixed-rate one.
 */
void
qkd_link_set(struct qkd_link *l, const struct qkd_link_change *x)
{
	if (x->lx_eve >= 0.0)
		l->l_eve = x->lx_eve;
	if (x->lx_qber >= 0.0)
		l->l_qber = x->lx_qber;
	if (x->lx_sample >= 0.0)
		l->l_sample_bits = (unsigned)x->lx_sample;
	if (x->lx_fec >= 0.0)
		l->l_fec = x->lx_fec;
	if (x->lx_rate >= 0.0) {
		l->l_fibre = 0;
		l->l_rate = x->lx_rate;
	}
	if (x->lx_eve >= 0.0 || x->lx_qber >= 0.0 || x->lx_rate >= 0.0 ||
	    x->lx_sample >= 0.0)
		qkd_link_block_reset(l);
	l->l_chan_qber = l->l_qber;
	if (l->l_fibre)
		qkd_link_fibre(l);
	else {
		l->l_rate_asym = 0.0;
		l->l_qubit_rate = qkd_qubit_rate(l->l_rate, l->l_qber,
		    l->l_sample_bits, l->l_fec);
	}
}

const char *
qkd_link_state(const struct qkd_link *l)
{
	return l->l_aborting ? "aborting" : "up";
}

size_t
qkd_link_deliverable(struct qkd_links *ls, const struct qkd_link *l)
{
	if (l->l_aborting)
		return 0;
	return qkd_pool_available(ls->ls_pool, l->l_a, l->l_b);
}

/* Open the tick's transaction on first use; 0 or -1. */
static int
qkd_links_txn(struct qkd_links *ls)
{
	if (ls->ls_txn_failed)
		return -1;
	if (!ls->ls_txn) {
		if (qkd_pool_begin(ls->ls_pool) == -1) {
			ls->ls_txn_failed = 1;
			return -1;
		}
		ls->ls_txn = 1;
	}
	return 0;
}

/* The window's estimate and bound, with the block just decided in it. */
static void
qkd_link_window(struct qkd_link *l, const struct bb84_block *blk)
{
	size_t	errors = 0, sampled = 0, i;

	l->l_win_errors[l->l_win_next] = blk->bb_sample_errors;
	l->l_win_sampled[l->l_win_next] = blk->bb_sampled;
	l->l_win_next = (l->l_win_next + 1) % QKD_WINDOW;
	if (l->l_win_len < QKD_WINDOW)
		l->l_win_len++;
	for (i = 0; i < l->l_win_len; i++) {
		errors += l->l_win_errors[i];
		sampled += l->l_win_sampled[i];
	}
	l->l_has_estimate = sampled > 0;
	l->l_est_qber = sampled > 0 ? (double)errors / (double)sampled : 0.0;
	l->l_est_bound = bb84_qber_bound(errors, sampled, BB84_EPS);
}

/*
 * Count a decided block, move the window and the link state; log when the
 * link starts or stops aborting.
 */
static void
qkd_link_estimate(struct qkd_links *ls, struct qkd_link *l,
    const struct bb84_block *blk)
{
	l->l_blocks++;
	l->l_blk_qber = blk->bb_qber;
	l->l_blk_bound = blk->bb_bound;
	qkd_link_window(l, blk);
	if (blk->bb_aborted) {
		l->l_aborts++;
		l->l_abort_run++;
		metric_inc(ls->ls_aborts, l->l_label);
		log_debug("link %s-%s: block of %zu qubits aborted, QBER %.2f "
		    "%% (bound %.2f %%)", l->l_a, l->l_b, blk->bb_qubits,
		    100.0 * blk->bb_qber, 100.0 * blk->bb_bound);
	} else
		l->l_abort_run = 0;
	if (!l->l_aborting && l->l_est_bound > BB84_QBER_MAX) {
		l->l_aborting = 1;
		log_warnx("link %s-%s: QBER %.2f %% (bound %.2f %%) above the "
		    "%.0f %% threshold: BB84 aborted, no key", l->l_a, l->l_b,
		    100.0 * l->l_est_qber, 100.0 * l->l_est_bound,
		    100.0 * BB84_QBER_MAX);
	} else if (l->l_aborting &&
	    l->l_est_bound <= BB84_QBER_MAX - QKD_HYSTERESIS) {
		l->l_aborting = 0;
		log_info("link %s-%s: QBER %.2f %% (bound %.2f %%): link up, "
		    "key distillation resumed", l->l_a, l->l_b,
		    100.0 * l->l_est_qber, 100.0 * l->l_est_bound);
	}
}

/*
 * Amplify nbytes of secret from blk behind the link's pending bytes, store
 * the whole keys and keep the remainder pending.  0 or -1.
 */
static int
qkd_link_distil(struct qkd_links *ls, struct qkd_link *l,
    const struct bb84_block *blk, size_t nbytes)
{
	uint8_t	*buf;
	size_t	 total, nkeys, rest;
	int	 rc = -1;

	total = l->l_npending + nbytes;
	if ((buf = malloc(total)) == NULL)
		return -1;
	memcpy(buf, l->l_pending, l->l_npending);
	if (bb84_amplify(blk, buf + l->l_npending, nbytes) == -1)
		goto out;
	nkeys = total / ls->ls_keybytes;
	rest = total - nkeys * ls->ls_keybytes;
	if (nkeys > 0 && qkd_links_txn(ls) == -1)
		goto out;
	/* Keys of a failed insert may be in the transaction: drop them all. */
	if (nkeys > 0 && qkd_pool_add(ls->ls_pool, l->l_a, l->l_b, buf, nkeys,
	    ls->ls_keybytes) == -1) {
		ls->ls_txn_failed = 1;
		goto out;
	}
	crypto_wipe(l->l_pending, sizeof(l->l_pending));
	memcpy(l->l_pending, buf + nkeys * ls->ls_keybytes, rest);
	l->l_npending = rest;
	l->l_keys_made += nkeys;
	rc = 0;
 out:
	crypto_wipe(buf, total);
	free(buf);
	return rc;
}

/* The link's secret output for this tick: bits distilled into the pool. */
static void
qkd_link_output(struct qkd_links *ls, struct qkd_link *l,
    const struct bb84_block *blk, double bits)
{
	double	room;
	size_t	nbytes, stored;

	stored = qkd_pool_available(ls->ls_pool, l->l_a, l->l_b);
	room = l->l_pool > stored ?
	    (double)(l->l_pool - stored) * (double)ls->ls_keybytes -
	    (double)l->l_npending : 0.0;
	if (room <= 0.0) {
		l->l_bit_credit = 0.0;
		return;
	}
	l->l_bit_credit += bits;
	nbytes = (size_t)floor(l->l_bit_credit / 8.0);
	if ((double)nbytes >= room) {
		nbytes = (size_t)room;
		l->l_bit_credit = 0.0;
	} else
		l->l_bit_credit -= 8.0 * (double)nbytes;
	if (nbytes > 0 && qkd_link_distil(ls, l, blk, nbytes) == -1)
		log_warnx("link %s-%s: %zu bytes of key lost: store failure",
		    l->l_a, l->l_b, nbytes);
}

/* Judge the gathered block, distil what it yields and start another. */
static void
qkd_link_block_end(struct qkd_links *ls, struct qkd_link *l)
{
	struct bb84_block	*blk = &l->l_blk;
	double			 bits;

	bb84_decide(blk, l->l_fec);
	if (l->l_fibre && !blk->bb_aborted)
		blk->bb_fraction = qkd_fibre_fraction(&l->l_fib, l->l_fec,
		    blk->bb_bound);
	qkd_link_estimate(ls, l, blk);
	bits = blk->bb_aborted ? 0.0 : floor(blk->bb_fraction * l->l_blk_kept);
	l->l_secret_bps = (1.0 - RATE_SMOOTHING) * l->l_secret_bps +
	    RATE_SMOOTHING * (l->l_blk_dt > 0.0 ? bits / l->l_blk_dt : 0.0);
	if (bits > 0.0)
		qkd_link_output(ls, l, blk, bits);
	qkd_link_block_reset(l);
}

/* One tick of one link covering dt seconds. */
static void
qkd_link_tick(struct qkd_links *ls, struct qkd_link *l, double dt)
{
	struct bb84_params	bp;
	double			nraw, nsim;
	size_t			kept;

	if (l->l_qubit_rate <= 0.0 || dt <= 0.0) {
		l->l_has_estimate = 0;
		l->l_aborting = 0;
		l->l_win_len = 0;
		l->l_secret_bps *= 1.0 - RATE_SMOOTHING;
		qkd_link_block_reset(l);
		return;
	}
	nraw = l->l_qubit_rate * dt;
	nsim = nraw < QKD_MIN_BLOCK ? QKD_MIN_BLOCK :
	    nraw > QKD_MAX_BLOCK ? QKD_MAX_BLOCK : floor(nraw);
	/* A full pool takes nothing: a small block keeps the estimate fresh. */
	if (qkd_pool_available(ls->ls_pool, l->l_a, l->l_b) >= l->l_pool)
		nsim = QKD_MONITOR_BLOCK;
	bp.bp_qber = l->l_chan_qber;
	bp.bp_eve = l->l_eve;
	bp.bp_sample = QKD_SAMPLE_FRACTION;
	kept = l->l_blk.bb_kept;
	if (bb84_run(&bp, (size_t)nsim, &l->l_blk) == -1) {
		log_warnx("link %s-%s: simulation failed", l->l_a, l->l_b);
		qkd_link_block_reset(l);
		return;
	}
	l->l_blk_kept += (double)(l->l_blk.bb_kept - kept) * (nraw / nsim);
	l->l_blk_dt += dt;
	if (l->l_blk.bb_sampled >= l->l_sample_bits)
		qkd_link_block_end(ls, l);
}

/* Seconds since the previous tick, capped at one. */
static double
qkd_links_elapsed(struct qkd_links *ls)
{
	struct timespec	now;
	double		dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (double)(now.tv_sec - ls->ls_last.tv_sec) +
	    (double)(now.tv_nsec - ls->ls_last.tv_nsec) / 1e9;
	ls->ls_last = now;
	/* A stalled loop does not make up for lost time at once. */
	return dt > 1.0 ? 1.0 : dt;
}

/* Commit the tick's transaction, if it opened one. */
static void
qkd_links_settle(struct qkd_links *ls)
{
	if (!ls->ls_txn)
		return;
	if (ls->ls_txn_failed) {
		qkd_pool_rollback(ls->ls_pool);
		log_warnx("link tick: store failure, this tick's keys "
		    "dropped");
	} else if (qkd_pool_commit(ls->ls_pool) == -1)
		log_warnx("link tick: commit failed, this tick's keys "
		    "dropped");
	ls->ls_txn = ls->ls_txn_failed = 0;
}

/*
 * Timer: run every link over the time since the last tick.  The keys of
 * all links and the statistics rows go in one transaction per tick.
 */
static void
qkd_links_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct qkd_links	*ls = arg;
	struct qkd_link		*l;
	double			 dt;
	size_t			 i;
	int			 stats;

	(void)fd;
	(void)ev;
	dt = qkd_links_elapsed(ls);
	stats = ++ls->ls_ticks % STATS_EVERY == 0;
	ls->ls_txn = ls->ls_txn_failed = 0;
	for (i = 0; i < ls->ls_nlinks; i++) {
		l = &ls->ls_links[i];
		qkd_link_tick(ls, l, dt);
		if (stats && (qkd_links_txn(ls) == -1 ||
		    qkd_pool_link_stats(ls->ls_pool, l->l_a, l->l_b,
		    l->l_has_estimate ? l->l_est_qber : -1.0, l->l_eve,
		    l->l_secret_bps, l->l_keys_made, l->l_aborts) == -1))
			ls->ls_txn_failed = 1;
	}
	qkd_links_settle(ls);
}

void
qkd_link_run(struct qkd_links *ls, struct qkd_link *l, unsigned ticks,
    struct qkd_run *out)
{
	uint64_t	blocks = l->l_blocks, aborts = l->l_aborts;
	uint64_t	keys = l->l_keys_made;
	unsigned	i;

	for (i = 0; i < ticks && i < QKD_RUN_MAX; i++) {
		ls->ls_txn = ls->ls_txn_failed = 0;
		qkd_link_tick(ls, l, QKD_TICK_MS / 1000.0);
		qkd_links_settle(ls);
	}
	/* The run was the link's time: the timer does not make it up. */
	clock_gettime(CLOCK_MONOTONIC, &ls->ls_last);
	out->r_blocks = l->l_blocks - blocks;
	out->r_aborts = l->l_aborts - aborts;
	out->r_keys = l->l_keys_made - keys;
}

/* The qubit and secret rates of a link from its rate or fibre settings. */
static void
qkd_link_rate(struct qkd_link *l, const struct qkdd_link_conf *lc)
{
	struct qkd_link_change	x;

	qkd_link_change_init(&x);
	if (lc->lc_fibre) {
		l->l_fibre = 1;
		l->l_fib = lc->lc_fib;
	} else
		x.lx_rate = lc->lc_rate;
	qkd_link_set(l, &x);
}

/* Links from the configuration and the tick timer that drives them. */
struct qkd_links *
qkd_links_new(struct event_base *base, const struct qkdd_conf *qc,
    struct qkd_pool *pool)
{
	struct qkd_links		*ls;
	const struct qkdd_link_conf	*lc;
	struct qkd_link			*l;
	struct timeval			 tv = { 0, QKD_TICK_MS * 1000 };
	size_t				 i;

	if ((ls = calloc(1, sizeof(*ls))) == NULL ||
	    (ls->ls_links = calloc(qc->qc_nlinks ? qc->qc_nlinks : 1,
	    sizeof(*ls->ls_links))) == NULL) {
		free(ls);
		return NULL;
	}
	ls->ls_pool = pool;
	ls->ls_aborts = metric_counter("qroam_qkd_aborts_total",
	    "BB84 blocks aborted for a QBER above 11 %.", "link");
	ls->ls_keybytes = qc->qc_key_size / 8;
	ls->ls_nlinks = qc->qc_nlinks;
	for (i = 0; i < qc->qc_nlinks; i++) {
		lc = &qc->qc_links[i];
		l = &ls->ls_links[i];
		memcpy(l->l_a, lc->lc_a, sizeof(l->l_a));
		memcpy(l->l_b, lc->lc_b, sizeof(l->l_b));
		snprintf(l->l_label, sizeof(l->l_label), "%s/%s", l->l_a,
		    l->l_b);
		l->l_qber = lc->lc_qber;
		l->l_eve = lc->lc_eve;
		l->l_pool = lc->lc_pool;
		l->l_sample_bits = lc->lc_sample;
		l->l_fec = lc->lc_fec;
		qkd_link_rate(l, lc);
	}
	clock_gettime(CLOCK_MONOTONIC, &ls->ls_last);
	if ((ls->ls_tick = event_new(base, -1, EV_PERSIST, qkd_links_tick,
	    ls)) == NULL || event_add(ls->ls_tick, &tv) == -1)
		goto fail;
	return ls;
 fail:
	qkd_links_free(ls);
	return NULL;
}

/* Index of the link a < b in qc's links, qc_nlinks if it has none. */
static size_t
qkd_conf_link(const struct qkdd_conf *qc, const char *a, const char *b)
{
	size_t	i;

	for (i = 0; i < qc->qc_nlinks; i++)
		if (strcmp(qc->qc_links[i].lc_a, a) == 0 &&
		    strcmp(qc->qc_links[i].lc_b, b) == 0)
			break;
	return i;
}

/*
 * Apply what differs between was and now to l; 1 if anything did.  The
 * configured rate holds at the base QBER, so a new base QBER derives the
 * qubit rate again too.
 */
static int
qkd_link_reconfigure(struct qkd_link *l, const struct qkdd_link_conf *was,
    const struct qkdd_link_conf *now)
{
	struct qkd_link_change	x;
	int			changed = 0;

	qkd_link_change_init(&x);
	if (now->lc_qber != was->lc_qber)
		x.lx_qber = now->lc_qber;
	if (now->lc_sample != was->lc_sample)
		x.lx_sample = now->lc_sample;
	if (now->lc_fec != was->lc_fec)
		x.lx_fec = now->lc_fec;
	if (now->lc_eve != was->lc_eve)
		x.lx_eve = now->lc_eve;
	if (x.lx_qber >= 0.0 || x.lx_sample >= 0.0 || x.lx_fec >= 0.0 ||
	    x.lx_eve >= 0.0) {
		qkd_link_set(l, &x);
		changed = 1;
	}
	if (now->lc_pool != was->lc_pool) {
		l->l_pool = now->lc_pool;
		changed = 1;
	}
	if (now->lc_fibre != was->lc_fibre || now->lc_rate != was->lc_rate ||
	    memcmp(&now->lc_fib, &was->lc_fib, sizeof(now->lc_fib)) != 0) {
		qkd_link_rate(l, now);
		changed = 1;
	}
	return changed;
}

size_t
qkd_links_reconfigure(struct qkd_links *ls, struct qkdd_conf *was,
    const struct qkdd_conf *now)
{
	const struct qkdd_link_conf	*lc;
	struct qkd_link			*l;
	size_t				 i, j, k, n = 0;

	for (i = 0; i < now->qc_nlinks; i++) {
		lc = &now->qc_links[i];
		if (qkd_links_find(ls, lc->lc_a, lc->lc_b) == NULL)
			log_warnx("reload: new link %s/%s takes a restart",
			    lc->lc_a, lc->lc_b);
	}
	for (i = 0; i < ls->ls_nlinks; i++) {
		l = &ls->ls_links[i];
		if ((j = qkd_conf_link(now, l->l_a, l->l_b)) == now->qc_nlinks) {
			log_warnx("reload: link %s is no longer configured: it "
			    "runs until a restart", l->l_label);
			continue;
		}
		if ((k = qkd_conf_link(was, l->l_a, l->l_b)) == was->qc_nlinks ||
		    !qkd_link_reconfigure(l, &was->qc_links[k],
		    &now->qc_links[j]))
			continue;
		was->qc_links[k] = now->qc_links[j];
		log_info("reload: link %s: rate %.0f bits/s, base QBER %.4f, "
		    "eavesdropper %.2f, pool %u keys, sample %u bits, f_EC "
		    "%.3f", l->l_label, l->l_rate, l->l_qber, l->l_eve,
		    l->l_pool, l->l_sample_bits, l->l_fec);
		n++;
	}
	return n;
}

/* Stop the timer and wipe the links' pending key bytes. */
void
qkd_links_free(struct qkd_links *ls)
{
	size_t	i;

	if (ls == NULL)
		return;
	if (ls->ls_tick != NULL)
		event_free(ls->ls_tick);
	for (i = 0; i < ls->ls_nlinks; i++)
		bb84_block_free(&ls->ls_links[i].l_blk);
	crypto_wipe(ls->ls_links, ls->ls_nlinks * sizeof(*ls->ls_links));
	free(ls->ls_links);
	free(ls);
}

size_t
qkd_links_count(const struct qkd_links *ls)
{
	return ls->ls_nlinks;
}

struct qkd_link *
qkd_links_at(struct qkd_links *ls, size_t i)
{
	return i < ls->ls_nlinks ? &ls->ls_links[i] : NULL;
}

/* Look a pair up in store order (sae_a < sae_b). */
struct qkd_link *
qkd_links_find(struct qkd_links *ls, const char *x, const char *y)
{
	const char	*a = x, *b = y;
	size_t		 i;

	if (strcmp(a, b) > 0) {
		a = y;
		b = x;
	}
	for (i = 0; i < ls->ls_nlinks; i++)
		if (strcmp(ls->ls_links[i].l_a, a) == 0 &&
		    strcmp(ls->ls_links[i].l_b, b) == 0)
			return &ls->ls_links[i];
	return NULL;
}
