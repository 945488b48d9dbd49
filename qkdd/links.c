/*
 * Simulated QKD links.  Every tick each link runs one BB84 block of the
 * qubits that reached Bob since the last tick (at least QKD_MIN_BLOCK and
 * at most QKD_MAX_BLOCK are simulated; the yield is scaled by the ratio
 * of qubits received to qubits simulated, so slow links still get a
 * stable QBER estimate and fast links cost bounded CPU).  A block whose
 * estimate exceeds 11 % aborts: the link yields nothing and enc_keys for
 * its pair answers 503 until a block passes again.  The secret bits of a
 * passing block are privacy-amplified into the link's pending bytes and
 * cut into keys of key_size bits, stored in the pool up to its size; a
 * full pool discards the link's output and is watched with smaller blocks
 * (QKD_MONITOR_BLOCK) so that an eavesdropper is still noticed.  When the
 * scale exceeds 1 the amplification stretches the simulated block to the
 * configured rate, which an emulator may do and a real link would not
 * need to.
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

/* Fibre link model: pulses/s, mean photons per pulse, detector efficiency. */
#define FIBRE_PULSES	1e9
#define FIBRE_MU	0.1
#define FIBRE_DETECTOR	0.1

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

/* Detected qubits/s of a weak-pulse source over lossy fibre. */
double
qkd_fibre_qubit_rate(double km, double loss)
{
	return FIBRE_PULSES * FIBRE_MU * FIBRE_DETECTOR *
	    pow(10.0, -loss * km / 10.0);
}

/* Invert the yield: sifting, the disclosed sample and 1 - 2h(Q). */
double
qkd_qubit_rate(double rate, double qber)
{
	double	f = bb84_secret_fraction(qber);

	/* A link too noisy for key still sends qubits at the nominal rate. */
	if (f <= 0.0)
		f = 1.0;
	return rate / (0.5 * (1.0 - QKD_SAMPLE_FRACTION) * f);
}

/*
 * Apply a change, from the operator or the configuration, with one meaning
 * whichever path it takes: `rate` is the secret rate at the base QBER, so a
 * new base QBER re-derives the qubit rate of a fixed-rate link and the
 * secret rate of a fibre link, whose qubit rate the fibre fixes.  A rate
 * given makes the link a fixed-rate one.
 */
void
qkd_link_set(struct qkd_link *l, double eve, double qber, double rate)
{
	if (eve >= 0.0)
		l->l_eve = eve;
	if (qber >= 0.0)
		l->l_qber = qber;
	if (rate >= 0.0) {
		l->l_fibre = 0;
		l->l_rate = rate;
	}
	if (l->l_fibre)
		l->l_rate = l->l_qubit_rate * 0.5 *
		    (1.0 - QKD_SAMPLE_FRACTION) *
		    bb84_secret_fraction(l->l_qber);
	else if (rate >= 0.0 || qber >= 0.0)
		l->l_qubit_rate = qkd_qubit_rate(l->l_rate, l->l_qber);
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

/* Record a block's estimate; log when the link starts or stops aborting. */
static void
qkd_link_estimate(struct qkd_links *ls, struct qkd_link *l,
    const struct bb84_block *blk)
{
	l->l_has_estimate = blk->bb_sampled > 0;
	l->l_est_qber = blk->bb_qber;
	if (blk->bb_aborted) {
		l->l_aborts++;
		metric_inc(ls->ls_aborts, l->l_label);
		l->l_abort_run++;
		log_debug("link %s-%s: block of %zu qubits aborted, "
		    "QBER %.2f %%", l->l_a, l->l_b, blk->bb_qubits,
		    100.0 * blk->bb_qber);
		if (!l->l_aborting)
			log_warnx("link %s-%s: QBER %.2f %% above the %.0f %% "
			    "threshold: BB84 aborted, no key", l->l_a, l->l_b,
			    100.0 * blk->bb_qber, 100.0 * BB84_QBER_MAX);
		l->l_aborting = 1;
		return;
	}
	if (l->l_aborting)
		log_info("link %s-%s: QBER %.2f %%: key distillation resumed "
		    "after %llu aborted blocks", l->l_a, l->l_b,
		    100.0 * blk->bb_qber, (unsigned long long)l->l_abort_run);
	l->l_aborting = 0;
	l->l_abort_run = 0;
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

/* One tick of one link covering dt seconds. */
static void
qkd_link_tick(struct qkd_links *ls, struct qkd_link *l, double dt)
{
	struct bb84_params	bp;
	struct bb84_block	blk;
	double			nraw, nsim, bits;

	if (l->l_qubit_rate <= 0.0 || dt <= 0.0) {
		l->l_has_estimate = 0;
		l->l_aborting = 0;
		l->l_secret_bps *= 1.0 - RATE_SMOOTHING;
		return;
	}
	nraw = l->l_qubit_rate * dt;
	nsim = nraw < QKD_MIN_BLOCK ? QKD_MIN_BLOCK :
	    nraw > QKD_MAX_BLOCK ? QKD_MAX_BLOCK : floor(nraw);
	/* A full pool takes nothing: a small block keeps the estimate fresh. */
	if (qkd_pool_available(ls->ls_pool, l->l_a, l->l_b) >= l->l_pool)
		nsim = QKD_MONITOR_BLOCK;
	bp.bp_qber = l->l_qber;
	bp.bp_eve = l->l_eve;
	bp.bp_sample = QKD_SAMPLE_FRACTION;
	if (bb84_run(&bp, (size_t)nsim, &blk) == -1) {
		log_warnx("link %s-%s: simulation failed", l->l_a, l->l_b);
		return;
	}
	qkd_link_estimate(ls, l, &blk);
	bits = (double)bb84_secret_bits(&blk) * (nraw / nsim);
	l->l_secret_bps = (1.0 - RATE_SMOOTHING) * l->l_secret_bps +
	    RATE_SMOOTHING * bits / dt;
	if (!blk.bb_aborted)
		qkd_link_output(ls, l, &blk, bits);
	bb84_block_free(&blk);
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
	if (!ls->ls_txn)
		return;
	if (ls->ls_txn_failed) {
		qkd_pool_rollback(ls->ls_pool);
		log_warnx("link tick: store failure, this tick's keys "
		    "dropped");
	} else if (qkd_pool_commit(ls->ls_pool) == -1)
		log_warnx("link tick: commit failed, this tick's keys "
		    "dropped");
}

/* The qubit and secret rates of a link from its rate or fibre settings. */
static void
qkd_link_rate(struct qkd_link *l, const struct qkdd_link_conf *lc)
{
	if (lc->lc_fibre) {
		l->l_fibre = 1;
		l->l_qubit_rate = qkd_fibre_qubit_rate(lc->lc_fibre_km,
		    lc->lc_loss);
		qkd_link_set(l, -1.0, -1.0, -1.0);
	} else
		qkd_link_set(l, -1.0, -1.0, lc->lc_rate);
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
	int	changed = 0;

	if (now->lc_qber != was->lc_qber)
		l->l_qber = now->lc_qber;
	if (now->lc_eve != was->lc_eve) {
		l->l_eve = now->lc_eve;
		changed = 1;
	}
	if (now->lc_pool != was->lc_pool) {
		l->l_pool = now->lc_pool;
		changed = 1;
	}
	if (now->lc_qber != was->lc_qber || now->lc_fibre != was->lc_fibre ||
	    now->lc_rate != was->lc_rate ||
	    now->lc_fibre_km != was->lc_fibre_km ||
	    now->lc_loss != was->lc_loss) {
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
		    "eavesdropper %.2f, pool %u keys", l->l_label, l->l_rate,
		    l->l_qber, l->l_eve, l->l_pool);
		n++;
	}
	return n;
}

/* Stop the timer and wipe the links' pending key bytes. */
void
qkd_links_free(struct qkd_links *ls)
{
	if (ls == NULL)
		return;
	if (ls->ls_tick != NULL)
		event_free(ls->ls_tick);
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
