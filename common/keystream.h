/*
 * Seed 003's synchronised key stream (PROTOCOL sections 11.4 and 12): the
 * instances of one cloud share K0, an epoch start t0 and a step dt; at step
 * N = floor((now - t0) / dt) each holds Kn = SHA-256^N(K0) and Kp, the key
 * of step N - 1.  A message between two instances is
 *
 *	Tc (8 bytes, big-endian, = the sender's N) || nonce (12) ||
 *	AES-256-GCM(pt) || tag (16)
 *
 * under Kn with AAD "qroam/1|CLOUD|<tsp_id>|<from>|<to>|<Tc decimal>"; the
 * receiver opens it under its Kn if Tc == N, under Kp if Tc == N - 1, and
 * refuses anything else, so dt must exceed the largest network delay.
 *
 * Keys.  K0 is held only until the first keystream_step, then wiped; from
 * then on the stream holds Kn and Kp only, and each step overwrites the
 * keys it leaves behind, so a stream's memory never yields an old step's
 * key.  Nothing here logs a key.
 *
 * Cost.  The first step of a stream made by keystream_new hashes N times
 * from K0 (OpenSSL EVP SHA-256 on one reused context: measured 0.1 us a
 * hash with SHA-NI, so t0 three years back with dt = 1 s, N = 1e8, takes
 * about 10 s; EVP_Digest's one-shot call would take four times as long),
 * so a daemon takes that step at start-up, before its event loop, and
 * keeps a checkpoint (keystream_checkpoint) from which keystream_resume
 * hashes only the steps since.  A running stream hashes only the steps
 * elapsed since its last step (one per dt).
 *
 * Checkpoints.  A checkpoint (n, kn) cannot be checked against K0 without
 * hashing n times; keystream_resume checks only what is cheap (n >= 0, and
 * kn == K0 when n == 0).  A wrong kn makes a stream whose messages do not
 * open anywhere (and that opens nothing), never one that leaks.  A
 * checkpoint whose n is ahead of the clock's step at the first
 * keystream_step is not used: the clock is what the instances agree on, so
 * the stream is recomputed from K0 at the clock's step (logged, without
 * keys), rather than sealing at a step that its peers refuse as a future
 * step.  A stream resumed at exactly its checkpoint's step has no Kp until
 * it advances: a message of the step before is refused as "stale step".
 *
 * Replay.  Per step (N and N - 1) the stream remembers the nonces of the
 * messages it opened, in a set of at most KS_REPLAY_MAX (or the bound set
 * by keystream_set_replay_max); a message (Tc, nonce) opened before is
 * refused as "replayed".  A set is erased with its step.  When the set of
 * a step is full, further messages of that step are refused ("replay
 * window full") rather than a nonce forgotten: the sender's next step
 * opens again.  Only messages that opened are remembered, so forged
 * traffic cannot fill a set.
 *
 * Names: tsp_id, from and to are names of PROTOCOL section 3
 * ([a-z0-9._-]{1,32}); to may also be KS_TO_ALL ("*"), a message to every
 * instance of the cloud, which no name can be.  One stream serves one
 * thread at a time.
 */
#ifndef QROAM_KEYSTREAM_H
#define QROAM_KEYSTREAM_H

#include <stddef.h>
#include <stdint.h>

#define KS_KEYLEN	32
#define KS_OVERHEAD	(8 + 12 + 16)	/* Tc (big-endian u64), nonce, GCM tag */
#define KS_REPLAY_MAX	4096		/* default nonces remembered per step */
#define KS_TO_ALL	"*"		/* the to of a message to every instance */

struct keystream;

/*
 * K0, epoch start t0 and step dt in milliseconds; tsp_id goes into the AAD.
 * NULL on bad args (dt <= 0, tsp_id empty/too long/not a name).  Hashes
 * nothing: the first keystream_step does.
 */
struct keystream *keystream_new(const uint8_t k0[KS_KEYLEN], int64_t t0_ms,
	    int64_t dt_ms, const char *tsp_id);
/*
 * Resume from a checkpoint (n, kn) taken by keystream_checkpoint, so as not
 * to hash from K0.  Checks what it can without hashing (see above) and
 * copies nothing secret anywhere but the stream; NULL on bad args (those of
 * keystream_new, n < 0, kn NULL, n == 0 with kn != K0).  K0 serves only if
 * the checkpoint is ahead of the clock at the first step.
 */
struct keystream *keystream_resume(const uint8_t k0[KS_KEYLEN], int64_t t0_ms,
	    int64_t dt_ms, const char *tsp_id, int64_t n,
	    const uint8_t kn[KS_KEYLEN]);
/* Wipes every key (OPENSSL_cleanse) and frees; NULL is fine. */
void	keystream_free(struct keystream *);
/*
 * Advance to the step of now_ms: N = floor((now - t0)/dt);
 * Kn = SHA-256^N(K0), Kp = key of N-1; keys of older steps erased as it
 * advances.  Returns N, or -1 when now < t0 (which changes nothing).  The
 * stream never goes backwards (a clock stepping back keeps the current N).
 */
int64_t	keystream_step(struct keystream *, int64_t now_ms);
/*
 * Seal pt for the message from -> to at the current step:
 * out = Tc || nonce || AES-256-GCM(ct||tag) with AAD
 * "qroam/1|CLOUD|<tsp_id>|<from>|<to>|<Tc decimal>"; the nonce comes from
 * qrand_bytes (rand.h); pt and out do not overlap.  0 on success, -1 on
 * error (outsize < ptlen + KS_OVERHEAD, now < t0, a bad name).
 */
int	keystream_seal(struct keystream *, int64_t now_ms, const char *from,
	    const char *to, const uint8_t *pt, size_t ptlen, uint8_t *out,
	    size_t outsize, size_t *outlen);
/*
 * Open: Tc == N -> Kn, Tc == N-1 -> Kp, anything else refused; a message
 * (Tc, nonce) already opened is refused as a replay.  from is the sender,
 * to this instance.  0 on success (*why = NULL); -1 with *why set to a
 * static reason string: "short", "stale step", "future step",
 * "does not open", "replayed", "replay window full", "before epoch"
 * (now < t0), "bad name", "buffer too small" (ptsize < inlen -
 * KS_OVERHEAD), "bad arguments".  On failure pt holds nothing of the
 * plaintext and *ptlen is unchanged.
 */
int	keystream_open(struct keystream *, int64_t now_ms, const char *from,
	    const char *to, const uint8_t *in, size_t inlen, uint8_t *pt,
	    size_t ptsize, size_t *ptlen, const char **why);
/* Current (N, Kn) for a checkpoint file; -1 before the first step. */
int	keystream_checkpoint(const struct keystream *, int64_t *n,
	    uint8_t kn[KS_KEYLEN]);

/*
 * Bound the nonces remembered per step (max >= 1), before the stream has
 * opened anything (set-up, tests): -1 once a nonce is remembered, on bad
 * args or with no memory, else 0.
 */
int	keystream_set_replay_max(struct keystream *, size_t max);

#endif
