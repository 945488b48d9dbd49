/*
 * Decoy-state BB84 over fibre (fibre.h): gains, error rates and the GLLP
 * secret fraction, asymptotic and with the finite-size bound.
 */
#include <math.h>

#include "bb84.h"
#include "fibre.h"

#define E0	0.5	/* error rate of a dark count */

/*
 * Y_1 and e_1 from a vacuum and a weak decoy nu < mu (Ma et al., eqs. for
 * Y_1^L and e_1^U), with the decoy's gain and QBER from the same model.
 */
static void
qkd_fibre_decoy(const struct qkd_fibre *f, double eta, double *y1,
    double *e1)
{
	double	mu = f->fb_mu, nu = f->fb_nu, y0 = f->fb_dark;
	double	qnu, enu, qmu;

	qnu = y0 + 1.0 - exp(-eta * nu);
	enu = (E0 * y0 + f->fb_edet * (1.0 - exp(-eta * nu))) / qnu;
	qmu = y0 + 1.0 - exp(-eta * mu);
	*y1 = mu / (mu * nu - nu * nu) * (qnu * exp(nu) - qmu * exp(mu) *
	    nu * nu / (mu * mu) - (mu * mu - nu * nu) / (mu * mu) * y0);
	if (*y1 <= 0.0) {
		*y1 = 0.0;
		*e1 = 0.5;
		return;
	}
	*e1 = (enu * qnu * exp(nu) - E0 * y0) / (*y1 * nu);
	if (*e1 > 0.5)
		*e1 = 0.5;
	if (*e1 < 0.0)
		*e1 = 0.0;
}

void
qkd_fibre_gain(const struct qkd_fibre *f, struct qkd_fibre_gain *g)
{
	double	eta, y1, e1, det;

	eta = f->fb_eta_bob * pow(10.0, -f->fb_loss * f->fb_km / 10.0);
	det = 1.0 - exp(-eta * f->fb_mu);
	g->fg_eta = eta;
	g->fg_qmu = f->fb_dark + det;
	g->fg_emu = g->fg_qmu > 0.0 ?
	    (E0 * f->fb_dark + f->fb_edet * det) / g->fg_qmu : 0.0;
	if (f->fb_nu > 0.0 && f->fb_nu < f->fb_mu)
		qkd_fibre_decoy(f, eta, &y1, &e1);
	else {
		y1 = f->fb_dark + eta;
		e1 = y1 > 0.0 ? (E0 * f->fb_dark + f->fb_edet * eta) / y1 : 0.5;
	}
	g->fg_q1 = y1 * f->fb_mu * exp(-f->fb_mu);
	g->fg_e1 = e1;
}

double
qkd_fibre_rate_per_pulse(const struct qkd_fibre *f, double fec)
{
	struct qkd_fibre_gain	g;

	qkd_fibre_gain(f, &g);
	return 0.5 * (-g.fg_qmu * fec * bb84_entropy(g.fg_emu) +
	    g.fg_q1 * (1.0 - bb84_entropy(g.fg_e1)));
}

double
qkd_fibre_fraction(const struct qkd_fibre *f, double fec, double qber_u)
{
	struct qkd_fibre_gain	g;
	double			e1, r;

	if (qber_u > BB84_QBER_MAX)
		return 0.0;
	qkd_fibre_gain(f, &g);
	if (g.fg_qmu <= 0.0 || g.fg_q1 <= 0.0)
		return 0.0;
	e1 = g.fg_e1;
	if (qber_u > g.fg_emu)
		e1 += (qber_u - g.fg_emu) * g.fg_qmu / g.fg_q1;
	if (e1 > 0.5)
		e1 = 0.5;
	r = (g.fg_q1 * (1.0 - bb84_entropy(e1)) -
	    g.fg_qmu * fec * bb84_entropy(qber_u)) / g.fg_qmu;
	return r > 0.0 ? r : 0.0;
}
