/*
 * Secrets at rest: AES-256-GCM under a store key, the row's identity in
 * the AAD, so a sealed value copied to another row does not open.  The
 * store key is 32 bytes (raw, or 64 hex digits and a newline) in a key
 * file named by the configuration or in the systemd credential
 * "store_key" ($CREDENTIALS_DIRECTORY/store_key, LoadCredential=).  For a
 * rotation the previous key may be given too: values sealed under it
 * still open, and the daemon seals them again under the current one.
 *
 * A sealed value: "QS" 0x01, the key's id (the first 4 bytes of its
 * SHA-256), a random 12-byte nonce, the ciphertext and the 16-byte tag.
 */
#ifndef QROAM_ATREST_H
#define QROAM_ATREST_H

#include <stddef.h>
#include <stdint.h>

#define ATREST_OVERHEAD	(3 + 4 + 12 + 16)
#define ATREST_CREDENTIAL "store_key"

struct atrest;

/*
 * The store key from path, or with path NULL from the credential (none
 * there: *out NULL, nothing sealed); old_path, if not NULL, the previous
 * key.  0, or -1 with the reason on stderr.
 */
int	atrest_load(const char *path, const char *old_path, struct atrest **out);
void	atrest_free(struct atrest *);
/* Seal len bytes of pt for the row aad into *out (malloc'd); 0 or -1. */
int	atrest_seal(const struct atrest *, const char *aad, const void *pt,
	    size_t len, uint8_t **out, size_t *outlen);
/*
 * Open what atrest_seal made for aad into *out (malloc'd; wipe and free
 * it): 0 under the current key, 1 under the previous one (seal it again),
 * -1 if it does not open (wrong key, row or a changed byte).
 */
int	atrest_open(const struct atrest *, const char *aad, const uint8_t *in,
	    size_t len, uint8_t **out, size_t *outlen);
/* 1 if in has the form of a sealed value. */
int	atrest_is_sealed(const uint8_t *in, size_t len);

#endif
