/*
 * The vehicles' RSA key pairs (F2), generated on a pool of worker threads
 * (workq.h) so that the event loop never waits for a prime search, with a
 * few pairs of the current size generated ahead and kept ready.
 *
 * A registration asks with keygen_get: it gets a ready pair at once, or
 * waits and gets one later through its struct keygen_wait, the first to
 * come of the size it asked for (waiters are served in arrival order,
 * whichever generation finishes first).  Each waiter has a generation of
 * its own under way, so nothing waits on the pool being refilled.  Private
 * halves are wiped whenever a pair is freed: used, replaced by a new key
 * size, or at shutdown.
 */
#ifndef REGISTRARD_KEYGEN_H
#define REGISTRARD_KEYGEN_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>

/* One key pair as DER: SubjectPublicKeyInfo and PKCS#8. */
struct keypair {
	int			 kp_bits;
	uint8_t			*kp_pub;
	size_t			 kp_publen;
	uint8_t			*kp_priv;
	size_t			 kp_privlen;
	TAILQ_ENTRY(keypair)	 kp_entry;	/* keygen's, while kept ready */
};

struct keygen_job;

/* A registration waiting for its key pair; embedded in the caller's. */
struct keygen_wait {
	/*
	 * On the loop, never inside keygen_get: the key pair, the
	 * receiver's to keypair_free, or NULL if generating it failed.
	 */
	void			 (*kw_ready)(void *arg, struct keypair *);
	void			  *kw_arg;
	/* keygen's own from keygen_get until kw_ready or keygen_cancel. */
	int			   kw_bits;
	struct keygen_job	  *kw_job;
	TAILQ_ENTRY(keygen_wait)   kw_entry;
};

struct keygen;

/*
 * Generation on nthreads workers (0: on the loop thread as each is
 * needed) of base, keeping pool pairs of bits ready; NULL on failure.
 */
struct keygen	*keygen_new(struct event_base *, unsigned nthreads, int bits,
		    size_t pool);
/*
 * Stop: the pairs being generated are discarded, every pair kept is
 * wiped.  No registration may still wait (keygen_cancel them first).
 */
void		 keygen_free(struct keygen *);
/*
 * The key size and the number of pairs to keep ready from now on; pairs
 * of another size are wiped.  Registrations already waiting get the size
 * they asked for.
 */
void		 keygen_configure(struct keygen *, int bits, size_t pool);

/*
 * A key pair of the current size for w's owner: 1 and *kp set if one was
 * ready, 0 if w waits (kw_ready comes later), -1 if no generation could
 * be started (out of memory).
 */
int		 keygen_get(struct keygen *, struct keygen_wait *w,
		    struct keypair **kp);
/* w no longer waits; the pair generated for it is kept or wiped. */
void		 keygen_cancel(struct keygen *, struct keygen_wait *w);

/*
 * Prime factors of the pairs generated from now on: 2, or 3 (multi-prime
 * RSA, quicker to generate; the public key and its use are the same).
 * Pairs kept ready are used whatever their number of primes.
 */
void		 keygen_set_primes(struct keygen *, int primes);

/* Wipe the private half and free kp (NULL is fine). */
void		 keypair_free(struct keypair *kp);

unsigned	 keygen_nthreads(const struct keygen *);
size_t		 keygen_ready(const struct keygen *);
size_t		 keygen_waiting(const struct keygen *);

#endif
