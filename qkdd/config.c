/* qkdd configuration file. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ids.h"

#define DEFAULT_RATE	100000.0	/* secret bits/s */
#define DEFAULT_QBER	0.01
#define DEFAULT_POOL	1000
/* Fibre defaults: GYS's detector (Lo, Ma, Chen 2005), a 1 GHz source. */
#define DEFAULT_LOSS	0.21		/* dB/km, standard single-mode fibre */
#define DEFAULT_ETA_BOB	0.045
#define DEFAULT_DARK	1.7e-6
#define DEFAULT_MU	0.48
#define DEFAULT_PULSES	1e9

/* One option of a link directive (NAME VALUE) into lc; 0 or -1. */
static int
qkdd_link_option(const struct conf_line *cl, const char *name,
    const char *val, struct qkdd_link_conf *lc)
{
	uint64_t	v;

	if (strcmp(name, "rate") == 0) {
		if (conf_double(val, 0.0, 1e10, &lc->lc_rate) == -1)
			goto bad;
	} else if (strcmp(name, "fibre") == 0) {
		if (conf_double(val, 0.0, 1000.0, &lc->lc_fib.fb_km) == -1)
			goto bad;
		lc->lc_fibre = 1;
	} else if (strcmp(name, "loss") == 0) {
		if (conf_double(val, 0.0, 10.0, &lc->lc_fib.fb_loss) == -1)
			goto bad;
	} else if (strcmp(name, "detector") == 0) {
		if (conf_double(val, 1e-6, 1.0, &lc->lc_fib.fb_eta_bob) == -1)
			goto bad;
	} else if (strcmp(name, "dark") == 0) {
		if (conf_double(val, 0.0, 0.01, &lc->lc_fib.fb_dark) == -1)
			goto bad;
	} else if (strcmp(name, "mu") == 0) {
		if (conf_double(val, 0.01, 2.0, &lc->lc_fib.fb_mu) == -1)
			goto bad;
	} else if (strcmp(name, "decoy") == 0) {
		if (conf_double(val, 0.0, 1.0, &lc->lc_fib.fb_nu) == -1)
			goto bad;
	} else if (strcmp(name, "pulses") == 0) {
		if (conf_double(val, 1.0, 1e11, &lc->lc_fib.fb_pulses) == -1)
			goto bad;
	} else if (strcmp(name, "qber") == 0) {
		if (conf_double(val, 0.0, 0.5, &lc->lc_qber) == -1)
			goto bad;
	} else if (strcmp(name, "eavesdropper") == 0) {
		if (conf_double(val, 0.0, 1.0, &lc->lc_eve) == -1)
			goto bad;
	} else if (strcmp(name, "pool") == 0) {
		if (conf_uint(val, 0, 1000000, &v) == -1)
			goto bad;
		lc->lc_pool = (unsigned)v;
	} else if (strcmp(name, "sample") == 0) {
		if (conf_uint(val, QKDD_MIN_SAMPLE, QKDD_MAX_SAMPLE, &v) == -1)
			goto bad;
		lc->lc_sample = (unsigned)v;
	} else if (strcmp(name, "fec") == 0) {
		if (conf_double(val, 1.0, QKDD_MAX_FEC, &lc->lc_fec) == -1)
			goto bad;
	} else {
		conf_error(cl, "unknown link option \"%s\"", name);
		return -1;
	}
	return 0;
 bad:
	conf_error(cl, "bad link %s \"%s\" (rate 0..1e10 bits/s, fibre 0..1000 "
	    "km, loss 0..10 dB/km, detector 1e-6..1, dark 0..0.01, mu "
	    "0.01..2, decoy 0..1, pulses 1..1e11 Hz, qber 0..0.5, "
	    "eavesdropper 0..1, pool 0..1000000, sample %d..%d bits, fec "
	    "1..%g)", name, val, QKDD_MIN_SAMPLE, QKDD_MAX_SAMPLE,
	    QKDD_MAX_FEC);
	return -1;
}

/* 1 for the options of the fibre model. */
static int
qkdd_fibre_option(const char *name)
{
	static const char *const	names[] = { "loss", "detector", "dark",
	    "mu", "decoy", "pulses" };
	size_t				i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/* link SAE_A SAE_B [NAME VALUE ...]: one QKD link and its key pool. */
static int
qkdd_link_line(struct qkdd_conf *qc, const struct conf_line *cl)
{
	struct qkdd_link_conf	 lc;
	const char		*a, *b;
	size_t			 i;
	int			 have_rate = 0, have_model = 0;

	if (cl->cl_argc < 3 || cl->cl_argc % 2 == 0) {
		conf_error(cl, "usage: link SAE_A SAE_B [option value ...]");
		return -1;
	}
	a = cl->cl_argv[1];
	b = cl->cl_argv[2];
	if (!id_valid_name(a) || !id_valid_name(b) || strcmp(a, b) == 0) {
		conf_error(cl, "link needs two different SAE ids "
		    "([a-z0-9._-]{1,32})");
		return -1;
	}
	memset(&lc, 0, sizeof(lc));
	if (strcmp(a, b) > 0) {
		const char *t = a;

		a = b;
		b = t;
	}
	snprintf(lc.lc_a, sizeof(lc.lc_a), "%s", a);
	snprintf(lc.lc_b, sizeof(lc.lc_b), "%s", b);
	lc.lc_rate = DEFAULT_RATE;
	lc.lc_qber = DEFAULT_QBER;
	lc.lc_fib.fb_loss = DEFAULT_LOSS;
	lc.lc_fib.fb_eta_bob = DEFAULT_ETA_BOB;
	lc.lc_fib.fb_dark = DEFAULT_DARK;
	lc.lc_fib.fb_mu = DEFAULT_MU;
	lc.lc_fib.fb_pulses = DEFAULT_PULSES;
	lc.lc_pool = DEFAULT_POOL;
	lc.lc_sample = QKDD_DEFAULT_SAMPLE;
	lc.lc_fec = QKDD_DEFAULT_FEC;
	for (i = 3; i + 1 < (size_t)cl->cl_argc; i += 2) {
		if (strcmp(cl->cl_argv[i], "rate") == 0)
			have_rate = 1;
		if (qkdd_fibre_option(cl->cl_argv[i]))
			have_model = 1;
		if (qkdd_link_option(cl, cl->cl_argv[i], cl->cl_argv[i + 1],
		    &lc) == -1)
			return -1;
	}
	if (have_rate && lc.lc_fibre) {
		conf_error(cl, "link takes either rate or fibre, not both");
		return -1;
	}
	if (have_model && !lc.lc_fibre) {
		conf_error(cl, "loss, detector, dark, mu, decoy and pulses need "
		    "fibre");
		return -1;
	}
	if (lc.lc_fib.fb_nu >= lc.lc_fib.fb_mu) {
		conf_error(cl, "the decoy's mean photon number must be below "
		    "mu");
		return -1;
	}
	for (i = 0; i < qc->qc_nlinks; i++) {
		if (strcmp(qc->qc_links[i].lc_a, lc.lc_a) == 0 &&
		    strcmp(qc->qc_links[i].lc_b, lc.lc_b) == 0) {
			conf_error(cl, "duplicate link %s %s", a, b);
			return -1;
		}
	}
	if (qc->qc_nlinks == QKDD_MAXLINKS) {
		conf_error(cl, "too many links (at most %d)", QKDD_MAXLINKS);
		return -1;
	}
	qc->qc_links[qc->qc_nlinks++] = lc;
	return 0;
}

/* One directive: common ones, then key_size, max_key_per_request, link. */
static int
qkdd_conf_line(void *arg, const struct conf_line *cl)
{
	struct qkdd_conf	*qc = arg;
	const char		*d = cl->cl_argv[0];
	uint64_t		 v;
	int			 rc;

	if ((rc = cfg_common_line(&qc->qc_common, cl)) != 0)
		return rc == 1 ? 0 : -1;
	if (strcmp(d, "link") == 0)
		return qkdd_link_line(qc, cl);
	if (strcmp(d, "key_size") != 0 &&
	    strcmp(d, "max_key_per_request") != 0) {
		conf_error(cl, "unknown directive \"%s\"", d);
		return -1;
	}
	if (cl->cl_argc != 2) {
		conf_error(cl, "%s takes one argument", d);
		return -1;
	}
	if (strcmp(d, "key_size") == 0) {
		if (conf_uint(cl->cl_argv[1], QKDD_MIN_KEYSIZE,
		    QKDD_MAX_KEYSIZE, &v) == -1 || v % 8 != 0) {
			conf_error(cl, "key_size must be a multiple of 8 in "
			    "%d..%d", QKDD_MIN_KEYSIZE, QKDD_MAX_KEYSIZE);
			return -1;
		}
		qc->qc_key_size = (unsigned)v;
	} else {
		if (conf_uint(cl->cl_argv[1], 1, 1024, &v) == -1) {
			conf_error(cl, "max_key_per_request must be 1..1024");
			return -1;
		}
		qc->qc_max_per_request = (unsigned)v;
	}
	return 0;
}

/* Defaults, the whole file, then the common checks. */
int
qkdd_conf_load(const char *path, struct qkdd_conf *qc)
{
	memset(qc, 0, sizeof(*qc));
	cfg_common_init(&qc->qc_common);
	qc->qc_key_size = 256;
	qc->qc_max_per_request = 128;
	if (conf_parse_file(path, qkdd_conf_line, qc) != 0 ||
	    cfg_common_check(&qc->qc_common, path, 1) == -1) {
		qkdd_conf_free(qc);	/* a failed load leaves nothing */
		return -1;
	}
	return 0;
}

void
qkdd_conf_free(struct qkdd_conf *qc)
{
	cfg_common_free(&qc->qc_common);
	memset(qc, 0, sizeof(*qc));
}
