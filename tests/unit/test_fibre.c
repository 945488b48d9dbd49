/*
 * Unit tests of qkdd's fibre model (fibre.c): the gains and error rates of
 * decoy-state BB84 and the GLLP rate with the GYS parameters of Lo, Ma and
 * Chen (2005), the maximum distance, the finite-size fraction below the
 * asymptotic one, and the vacuum + weak decoy bounds below infinite decoys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <cmocka.h>

#include "../../qkdd/bb84.h"
#include "../../qkdd/fibre.h"

#define FEC_GYS	1.22

static struct qkd_fibre
gys(double km)
{
	struct qkd_fibre	f = { km, 0.21, 0.045, 1.7e-6, 0.033, 0.48, 0.0,
	    1e9 };

	return f;
}

static void
test_gains(void **state)
{
	struct qkd_fibre	f = gys(0.0);
	struct qkd_fibre_gain	g;

	(void)state;
	qkd_fibre_gain(&f, &g);
	assert_float_equal(g.fg_eta, 0.045, 1e-12);
	assert_float_equal(g.fg_qmu, 1.7e-6 + 1.0 - exp(-0.045 * 0.48), 1e-12);
	/* Dark counts are negligible at 0 km: E_mu and e_1 are e_det. */
	assert_float_equal(g.fg_emu, 0.033, 1e-3);
	assert_float_equal(g.fg_e1, 0.033, 1e-3);
	assert_float_equal(g.fg_q1, (1.7e-6 + 0.045) * 0.48 * exp(-0.48),
	    1e-12);
	/* At 150 km the dark counts raise the QBER towards 8 %. */
	f = gys(150.0);
	qkd_fibre_gain(&f, &g);
	assert_true(g.fg_emu > 0.07 && g.fg_emu < 0.09);
}

static void
test_rate_and_distance(void **state)
{
	struct qkd_fibre	f;

	(void)state;
	f = gys(25.0);
	assert_float_equal(qkd_fibre_rate_per_pulse(&f, FEC_GYS), 7.544e-4,
	    1e-6);
	f = gys(100.0);
	assert_float_equal(qkd_fibre_rate_per_pulse(&f, FEC_GYS), 1.718e-5,
	    1e-7);
	/* Lo, Ma and Chen's maximum distance: about 142 km. */
	f = gys(141.5);
	assert_true(qkd_fibre_rate_per_pulse(&f, FEC_GYS) > 0.0);
	f = gys(142.5);
	assert_true(qkd_fibre_rate_per_pulse(&f, FEC_GYS) < 0.0);
}

static void
test_finite_fraction(void **state)
{
	struct qkd_fibre	f = gys(50.0);
	struct qkd_fibre_gain	g;
	double			asym, fin;

	(void)state;
	qkd_fibre_gain(&f, &g);
	/* At the model's own QBER the fraction is the asymptotic rate's. */
	asym = 2.0 * qkd_fibre_rate_per_pulse(&f, FEC_GYS) / g.fg_qmu;
	assert_float_equal(qkd_fibre_fraction(&f, FEC_GYS, g.fg_emu), asym,
	    1e-9);
	fin = qkd_fibre_fraction(&f, FEC_GYS,
	    bb84_expected_bound(g.fg_emu, 25000));
	assert_true(fin > 0.0 && fin < asym);
	/* Errors above the model's count against the single photons. */
	assert_true(qkd_fibre_fraction(&f, FEC_GYS, g.fg_emu + 0.02) <
	    fin);
	assert_true(qkd_fibre_fraction(&f, FEC_GYS, 0.111) == 0.0);
	f = gys(150.0);
	qkd_fibre_gain(&f, &g);
	assert_true(qkd_fibre_fraction(&f, FEC_GYS, g.fg_emu) == 0.0);
}

static void
test_weak_decoy(void **state)
{
	struct qkd_fibre	inf = gys(50.0), weak = gys(50.0);
	struct qkd_fibre_gain	gi, gw;
	double			ri, rw;

	(void)state;
	weak.fb_nu = 0.05;
	qkd_fibre_gain(&inf, &gi);
	qkd_fibre_gain(&weak, &gw);
	/* The bounds of a vacuum and a weak decoy are conservative... */
	assert_true(gw.fg_q1 <= gi.fg_q1 && gw.fg_e1 >= gi.fg_e1);
	ri = qkd_fibre_rate_per_pulse(&inf, FEC_GYS);
	rw = qkd_fibre_rate_per_pulse(&weak, FEC_GYS);
	/* ... and close to infinite decoys for a weak decoy. */
	assert_true(rw < ri && rw > 0.9 * ri);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gains),
		cmocka_unit_test(test_rate_and_distance),
		cmocka_unit_test(test_finite_fraction),
		cmocka_unit_test(test_weak_decoy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
