/*
 * Key pairs for registrations (keygen.h).  Every generation is a job on
 * the worker pool; a job is for one waiting registration, or spare (for
 * the pool of ready pairs).  When a job finishes, its pair goes to the
 * oldest registration waiting for that size, whichever job was its own:
 * the jobs of both trade owners, so every waiter still has exactly one job
 * under way.  Without a waiter, the pair is kept ready if it has the
 * current size and the pool is short, else wiped.
 *
 * Spare jobs of the current size are counted (kg_spare) so that the pool
 * is topped up to ready + spare = pool after every change.  A spare job
 * that fails does not start another: the next registration tries again,
 * which keeps a failing generator from spinning.
 */
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "keygen.h"
#include "log.h"
#include "metrics.h"
#include "workq.h"

/*
 * One generation.  The worker reads kj_bits and writes kj_kp; the fields
 * marked (loop) are the loop thread's alone.
 */
struct keygen_job {
	struct workq_task	 kj_task;
	TAILQ_ENTRY(keygen_job)	 kj_entry;	/* (loop) jobs under way */
	struct keygen		*kj_kg;		/* (loop) */
	struct keygen_wait	*kj_wait;	/* (loop) NULL: a spare job */
	int			 kj_bits;
	int			 kj_primes;
	struct keypair		*kj_kp;		/* NULL if it failed */
};

TAILQ_HEAD(keypair_list, keypair);
TAILQ_HEAD(keygen_wait_list, keygen_wait);
TAILQ_HEAD(keygen_job_list, keygen_job);

struct keygen {
	struct workq		*kg_wq;
	int			 kg_bits;
	int			 kg_primes;
	size_t			 kg_pool;	/* pairs to keep ready */
	int			 kg_stopping;
	struct keypair_list	 kg_ready;
	size_t			 kg_nready;
	struct keygen_wait_list	 kg_waiting;	/* oldest first */
	size_t			 kg_nwaiting;
	struct keygen_job_list	 kg_jobs;
	size_t			 kg_njobs;
	size_t			 kg_spare;	/* spare jobs of kg_bits */
	struct metric		*kg_m_ready;
	struct metric		*kg_m_waiting;
	struct metric		*kg_m_generating;
	struct metric		*kg_m_keys;
};

static void	keygen_work(void *);
static void	keygen_done(void *, int);

void
keypair_free(struct keypair *kp)
{
	if (kp == NULL)
		return;
	if (kp->kp_priv != NULL)
		crypto_wipe(kp->kp_priv, kp->kp_privlen);
	free(kp->kp_priv);
	free(kp->kp_pub);
	free(kp);
}

/* A fresh key pair of bits and primes as DER, or NULL (any thread). */
static struct keypair *
keypair_generate(int bits, int primes)
{
	struct keypair	*kp;
	EVP_PKEY	*pk;
	int		 rc = -1;

	if ((kp = calloc(1, sizeof(*kp))) == NULL)
		return NULL;
	kp->kp_bits = bits;
	if ((pk = crypto_rsa_generate_primes(bits, primes)) != NULL) {
		if (crypto_pub_to_der(pk, &kp->kp_pub, &kp->kp_publen) == 0 &&
		    crypto_priv_to_der(pk, &kp->kp_priv, &kp->kp_privlen) == 0)
			rc = 0;
		EVP_PKEY_free(pk);
	}
	if (rc == -1) {
		keypair_free(kp);
		return NULL;
	}
	return kp;
}

/* The admin endpoint's gauges, set when scraped. */
static void
keygen_collect(void *arg)
{
	struct keygen	*kg = arg;

	metric_set(kg->kg_m_ready, NULL, (double)kg->kg_nready);
	metric_set(kg->kg_m_waiting, NULL, (double)kg->kg_nwaiting);
	metric_set(kg->kg_m_generating, NULL, (double)kg->kg_njobs);
}

/* Whether j counts in kg_spare. */
static int
keygen_job_spare(const struct keygen *kg, const struct keygen_job *j)
{
	return j->kj_wait == NULL && j->kj_bits == kg->kg_bits;
}

/* Give j to w (NULL: make it spare), keeping kg_spare right. */
static void
keygen_job_own(struct keygen *kg, struct keygen_job *j, struct keygen_wait *w)
{
	if (keygen_job_spare(kg, j))
		kg->kg_spare--;
	j->kj_wait = w;
	if (w != NULL)
		w->kw_job = j;
	if (keygen_job_spare(kg, j))
		kg->kg_spare++;
}

/* Start generating a pair of bits for w (NULL: spare); 0 or -1. */
static int
keygen_start(struct keygen *kg, int bits, struct keygen_wait *w)
{
	struct keygen_job	*j;

	if (kg->kg_stopping || (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->kj_task.wt_work = keygen_work;
	j->kj_task.wt_done = keygen_done;
	j->kj_task.wt_arg = j;
	j->kj_kg = kg;
	j->kj_bits = bits;
	j->kj_primes = kg->kg_primes;
	j->kj_wait = w;
	if (w != NULL)
		w->kw_job = j;
	else if (keygen_job_spare(kg, j))
		kg->kg_spare++;
	TAILQ_INSERT_TAIL(&kg->kg_jobs, j, kj_entry);
	kg->kg_njobs++;
	if (workq_post(kg->kg_wq, &j->kj_task) == -1) {
		if (keygen_job_spare(kg, j))
			kg->kg_spare--;
		TAILQ_REMOVE(&kg->kg_jobs, j, kj_entry);
		kg->kg_njobs--;
		if (w != NULL)
			w->kw_job = NULL;
		free(j);
		return -1;
	}
	return 0;
}

/* Start spare jobs until ready and spare pairs make the pool. */
static void
keygen_top_up(struct keygen *kg)
{
	while (kg->kg_nready + kg->kg_spare < kg->kg_pool)
		if (keygen_start(kg, kg->kg_bits, NULL) == -1)
			break;
}

/* The oldest registration waiting for a pair of bits, or NULL. */
static struct keygen_wait *
keygen_oldest(struct keygen *kg, int bits)
{
	struct keygen_wait	*w;

	TAILQ_FOREACH(w, &kg->kg_waiting, kw_entry)
		if (w->kw_bits == bits)
			return w;
	return NULL;
}

/* w waits no more; its job (if it has one) becomes spare. */
static void
keygen_unwait(struct keygen *kg, struct keygen_wait *w)
{
	TAILQ_REMOVE(&kg->kg_waiting, w, kw_entry);
	kg->kg_nwaiting--;
	if (w->kw_job != NULL)
		keygen_job_own(kg, w->kw_job, NULL);
	w->kw_job = NULL;
}

/* On a worker. */
static void
keygen_work(void *arg)
{
	struct keygen_job	*j = arg;

	j->kj_kp = keypair_generate(j->kj_bits, j->kj_primes);
}

/* Keep kp ready if it fits the pool, else wipe it. */
static void
keygen_keep(struct keygen *kg, struct keypair *kp)
{
	if (!kg->kg_stopping && kp->kp_bits == kg->kg_bits &&
	    kg->kg_nready < kg->kg_pool) {
		TAILQ_INSERT_TAIL(&kg->kg_ready, kp, kp_entry);
		kg->kg_nready++;
	} else
		keypair_free(kp);
}

/*
 * On the loop: a generation finished (ran 0: the pool stopped first).
 * Its pair goes to the oldest registration waiting for its size, kept or
 * wiped; a failure fails the job's own registration.
 */
static void
keygen_done(void *arg, int ran)
{
	struct keygen_job	*j = arg;
	struct keygen		*kg = j->kj_kg;
	struct keygen_wait	*w, *owner = j->kj_wait;
	struct keypair		*kp = ran ? j->kj_kp : NULL;

	if (keygen_job_spare(kg, j))
		kg->kg_spare--;
	TAILQ_REMOVE(&kg->kg_jobs, j, kj_entry);
	kg->kg_njobs--;
	if (owner != NULL)
		owner->kw_job = NULL;
	free(j);
	if (kp == NULL) {
		if (owner != NULL && !kg->kg_stopping) {
			log_warnx("generating an RSA-%d key pair failed",
			    owner->kw_bits);
			keygen_unwait(kg, owner);
			owner->kw_ready(owner->kw_arg, NULL);
		} else if (ran && !kg->kg_stopping)
			log_warnx("generating a spare key pair failed");
		return;
	}
	if (kg->kg_stopping || (w = keygen_oldest(kg, kp->kp_bits)) == NULL) {
		keygen_keep(kg, kp);
		return;
	}
	/* w's own job, if another's, goes on for this job's owner. */
	if (w != owner && w->kw_job != NULL)
		keygen_job_own(kg, w->kw_job, owner);
	w->kw_job = NULL;
	keygen_unwait(kg, w);
	metric_inc(kg->kg_m_keys, "generated");
	keygen_top_up(kg);
	w->kw_ready(w->kw_arg, kp);
}

struct keygen *
keygen_new(struct event_base *base, unsigned nthreads, int bits, size_t pool)
{
	struct keygen	*kg;

	if ((kg = calloc(1, sizeof(*kg))) == NULL)
		return NULL;
	TAILQ_INIT(&kg->kg_ready);
	TAILQ_INIT(&kg->kg_waiting);
	TAILQ_INIT(&kg->kg_jobs);
	if ((kg->kg_wq = workq_new(base, nthreads, WORKQ_MAX_QUEUE)) == NULL) {
		free(kg);
		return NULL;
	}
	kg->kg_m_ready = metric_gauge("qroam_key_pool",
	    "Vehicle key pairs generated ahead and ready.", NULL);
	kg->kg_m_waiting = metric_gauge("qroam_registrations_waiting",
	    "Registrations waiting for their key pair.", NULL);
	kg->kg_m_generating = metric_gauge("qroam_key_generations",
	    "Key pairs being generated or queued for a worker.", NULL);
	kg->kg_m_keys = metric_counter("qroam_registration_keys_total",
	    "Key pairs of registrations: ready at once (source pool) or "
	    "waited for (source generated).", "source");
	metrics_collector_add(keygen_collect, kg);
	kg->kg_primes = 2;
	keygen_configure(kg, bits, pool);
	return kg;
}

void
keygen_set_primes(struct keygen *kg, int primes)
{
	kg->kg_primes = primes == 3 ? 3 : 2;
}

void
keygen_configure(struct keygen *kg, int bits, size_t pool)
{
	struct keypair		*kp;
	struct keygen_job	*j;

	if (bits != kg->kg_bits) {
		kg->kg_bits = bits;
		kg->kg_spare = 0;
		TAILQ_FOREACH(j, &kg->kg_jobs, kj_entry)
			if (keygen_job_spare(kg, j))
				kg->kg_spare++;
	}
	kg->kg_pool = pool;
	/* The oldest first: the others are fresher, the pool holds them. */
	while ((kp = TAILQ_FIRST(&kg->kg_ready)) != NULL &&
	    (kp->kp_bits != bits || kg->kg_nready > pool)) {
		TAILQ_REMOVE(&kg->kg_ready, kp, kp_entry);
		kg->kg_nready--;
		keypair_free(kp);
	}
	keygen_top_up(kg);
}

int
keygen_get(struct keygen *kg, struct keygen_wait *w, struct keypair **kpp)
{
	struct keypair	*kp;

	*kpp = NULL;
	if ((kp = TAILQ_FIRST(&kg->kg_ready)) != NULL) {
		TAILQ_REMOVE(&kg->kg_ready, kp, kp_entry);
		kg->kg_nready--;
		metric_inc(kg->kg_m_keys, "pool");
		keygen_top_up(kg);
		*kpp = kp;
		return 1;
	}
	w->kw_bits = kg->kg_bits;
	w->kw_job = NULL;
	TAILQ_INSERT_TAIL(&kg->kg_waiting, w, kw_entry);
	kg->kg_nwaiting++;
	if (keygen_start(kg, w->kw_bits, w) == -1) {
		keygen_unwait(kg, w);
		return -1;
	}
	keygen_top_up(kg);
	return 0;
}

void
keygen_cancel(struct keygen *kg, struct keygen_wait *w)
{
	keygen_unwait(kg, w);
}

void
keygen_free(struct keygen *kg)
{
	struct keypair	*kp;

	if (kg == NULL)
		return;
	if (!TAILQ_EMPTY(&kg->kg_waiting))
		fatalx("registrations waiting for key pairs at shutdown");
	kg->kg_stopping = 1;
	workq_free(kg->kg_wq);
	if (!TAILQ_EMPTY(&kg->kg_jobs))
		fatalx("key generations left after the worker pool stopped");
	while ((kp = TAILQ_FIRST(&kg->kg_ready)) != NULL) {
		TAILQ_REMOVE(&kg->kg_ready, kp, kp_entry);
		keypair_free(kp);
	}
	metrics_collector_remove(keygen_collect, kg);
	free(kg);
}

unsigned
keygen_nthreads(const struct keygen *kg)
{
	return workq_nthreads(kg->kg_wq);
}

size_t
keygen_ready(const struct keygen *kg)
{
	return kg->kg_nready;
}

size_t
keygen_waiting(const struct keygen *kg)
{
	return kg->kg_nwaiting;
}
