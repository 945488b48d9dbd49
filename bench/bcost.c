/*
 * qbench cost: the CPU price of the cryptographic steps a TSP takes per
 * request, timed one call at a time in this process with the same
 * library code tspd links: decoding a registration's Prv from DER, opening
 * an M4 (RSA-OAEP), signing an AuthResult (RSA-PSS), and opening plus
 * sealing one session message (AES-256-GCM).  Run on the core tspd was
 * pinned to, it splits a measured request rate into its parts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "msg.h"
#include "rand.h"

#include "qbench.h"

#define QB_COST_N	200
#define QB_COST_VID	"LBENCH2B10K999999"
#define QB_COST_TSP	"tsp-a"

/* The material one M4 brings: Prv as tspd stores it and an M4 blob. */
struct qb_cost {
	EVP_PKEY	*c_key;
	uint8_t		*c_der;
	size_t		 c_derlen;
	uint8_t		*c_ct;
	size_t		 c_ctlen;
	uint8_t		 c_nonce[MSG_AUTH_NONCELEN];
	uint8_t		 c_k1[32];
};

/* One call of step i; 0 or -1. */
typedef int (*qb_cost_fn)(struct qb_cost *);

static int
qb_cost_parse(struct qb_cost *c)
{
	EVP_PKEY	*k;

	if ((k = crypto_priv_from_der(c->c_der, c->c_derlen)) == NULL)
		return -1;
	EVP_PKEY_free(k);
	return 0;
}

static int
qb_cost_m4(struct qb_cost *c)
{
	Qroam__AuthInner	*in;

	if ((in = msg_m4_open(c->c_key, c->c_ct, c->c_ctlen, NULL)) == NULL)
		return -1;
	qroam__auth_inner__free_unpacked(in, NULL);
	return 0;
}

static int
qb_cost_sign(struct qb_cost *c)
{
	char	 text[MSG_AAD_MAX];
	uint8_t	*sig;
	size_t	 siglen;

	if (msg_auth_text(text, sizeof(text), QB_COST_VID, QB_COST_TSP,
	    c->c_nonce) == -1 || crypto_pss_sign(c->c_key, text, strlen(text),
	    &sig, &siglen) == -1)
		return -1;
	free(sig);
	return 0;
}

/* Open a vehicle's telemetry message and seal the acknowledgement. */
static int
qb_cost_session(struct qb_cost *c)
{
	Qroam__SessionInner	 in = QROAM__SESSION_INNER__INIT, *got;
	Qroam__Telemetry	 t = QROAM__TELEMETRY__INIT;
	Qroam__ServiceResponse	 sr = QROAM__SERVICE_RESPONSE__INIT;
	Qroam__SessionMsg	 sm, reply;
	int			 rc = -1;

	t.unix_ms = 1;
	in.body_case = QROAM__SESSION_INNER__BODY_TELEMETRY;
	in.telemetry = &t;
	qroam__session_msg__init(&sm);
	if (msg_session_seal(c->c_k1, QB_COST_VID, QB_COST_TSP, MSG_DIR_V2C, 7,
	    &in, &sm) == -1)
		return -1;
	sm.vehicle_id = (char *)QB_COST_VID;
	sm.seq = 7;
	qroam__session_msg__init(&reply);
	if ((got = msg_session_open(c->c_k1, QB_COST_TSP, MSG_DIR_V2C,
	    &sm)) != NULL) {
		qroam__session_inner__free_unpacked(got, NULL);
		sr.ack_seq = 7;
		in.body_case = QROAM__SESSION_INNER__BODY_RESPONSE;
		in.response = &sr;
		rc = msg_session_seal(c->c_k1, QB_COST_VID, QB_COST_TSP,
		    MSG_DIR_C2V, 7, &in, &reply);
		free(reply.ct.data);
	}
	free(sm.ct.data);
	return rc;
}

/* Median time in us of n calls of fn. */
static double
qb_cost_time(struct qb_cost *c, qb_cost_fn fn, size_t n)
{
	double	*v, t0, p50, p99;
	size_t	 i;

	v = xcalloc(n, sizeof(*v));
	for (i = 0; i < n; i++) {
		t0 = qb_now_us();
		if (fn(c) == -1)
			fatalx("a timed crypto step failed");
		v[i] = qb_now_us() - t0;
	}
	qb_percentiles(v, n, &p50, &p99);
	free(v);
	return p50;
}

int
qb_cmd_cost(struct qbench *q)
{
	struct qb_cost	c;
	size_t		n = q->q_count ? q->q_count : QB_COST_N;
	char		chip[65];
	double		parse, m4, sign, session;

	memset(&c, 0, sizeof(c));
	memset(chip, 'a', 64);
	chip[64] = '\0';
	qrand_bytes(c.c_k1, sizeof(c.c_k1));
	qrand_bytes(c.c_nonce, sizeof(c.c_nonce));
	if ((c.c_key = crypto_rsa_generate(2048)) == NULL ||
	    crypto_priv_to_der(c.c_key, &c.c_der, &c.c_derlen) == -1 ||
	    msg_m4_seal(c.c_key, chip, QB_COST_TSP, c.c_nonce, 1, &c.c_ct,
	    &c.c_ctlen) == -1)
		return result_print(QB_LOCAL, "ERROR", "reason=crypto");
	parse = qb_cost_time(&c, qb_cost_parse, n);
	m4 = qb_cost_time(&c, qb_cost_m4, n);
	sign = qb_cost_time(&c, qb_cost_sign, n);
	session = qb_cost_time(&c, qb_cost_session, n * 10);
	crypto_wipe(c.c_der, c.c_derlen);
	free(c.c_der);
	free(c.c_ct);
	EVP_PKEY_free(c.c_key);
	crypto_wipe(c.c_k1, sizeof(c.c_k1));
	return result_print(QB_RAN, "OK", "samples=%zu prv_parse_us=%.1f"
	    " m4_open_us=%.1f pss_sign_us=%.1f session_msg_us=%.1f", n, parse,
	    m4, sign, session);
}
