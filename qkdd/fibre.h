/*
 * The fibre-length model of a qkdd link: a decoy-state BB84 source of
 * weak coherent pulses over lossy fibre to a gated detector, after Lo, Ma
 * and Chen, "Decoy State Quantum Key Distribution", PRL 94, 230504 (2005),
 * and the GLLP rate formula they use:
 *
 *   R = q { -Q_mu f_EC h(E_mu) + Q_1 [1 - h(e_1)] }	secret bits per pulse
 *
 * with q = 1/2 (BB84 sifting), the overall transmittance
 * eta = eta_Bob 10^(-alpha L / 10), the gain and QBER of the signals
 * Q_mu = Y0 + 1 - exp(-eta mu), E_mu Q_mu = e0 Y0 + e_det (1 - exp(-eta mu)),
 * and of the single photons Y_1 = Y0 + eta, Q_1 = Y_1 mu exp(-mu),
 * e_1 Y_1 = e0 Y0 + e_det eta, e0 = 1/2.  With infinite decoys (decoy 0)
 * Y_1 and e_1 are those exactly; with a vacuum and one weak decoy of mean
 * photon number nu they are the lower and upper bounds of Ma, Qi, Zhao
 * and Lo, PRA 72, 012326 (2005).  Pure computation.
 */
#ifndef QKDD_FIBRE_H
#define QKDD_FIBRE_H

struct qkd_fibre {
	double	fb_km;		/* fibre length L */
	double	fb_loss;	/* alpha, dB/km */
	double	fb_eta_bob;	/* Bob's transmittance and detector efficiency */
	double	fb_dark;	/* Y0, dark counts per pulse */
	double	fb_edet;	/* e_det, error of a detected photon */
	double	fb_mu;		/* signal mean photon number */
	double	fb_nu;		/* weak decoy; 0: infinite decoys */
	double	fb_pulses;	/* pulses per second */
};

/* What the model gives for the signals and the single photons. */
struct qkd_fibre_gain {
	double	fg_eta;		/* overall transmittance */
	double	fg_qmu;		/* Q_mu: detections per signal pulse */
	double	fg_emu;		/* E_mu: their QBER */
	double	fg_q1;		/* Q_1 (a lower bound with a finite decoy) */
	double	fg_e1;		/* e_1 (an upper bound with a finite decoy) */
};

void	qkd_fibre_gain(const struct qkd_fibre *, struct qkd_fibre_gain *);

/*
 * Secret bits per pulse from the GLLP formula at the model's own QBER:
 * the asymptotic rate, which may be negative (no key).
 */
double	qkd_fibre_rate_per_pulse(const struct qkd_fibre *, double fec);

/*
 * Secret bits per detected, sifted and kept signal bit given the upper
 * bound qber_u of the QBER measured on the signals' sample: E_mu becomes
 * qber_u in the error-correction term, and every error above the model's
 * E_mu is taken as a single-photon error, e_1 + (qber_u - E_mu) Q_mu / Q_1
 * (at most 1/2).  0 when that leaves no key or qber_u exceeds 11 %.
 */
double	qkd_fibre_fraction(const struct qkd_fibre *, double fec,
	    double qber_u);

#endif
