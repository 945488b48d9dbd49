/*
 * registrard configuration: the common directives plus
 *   rsa_bits 2048|3072	  size of the vehicles' RSA keys (2048)
 *   rsa_primes 2|3	  their prime factors (2; 3: multi-prime, quicker)
 *   workers N		  threads generating the key pairs; 0 = on the
 *			  event loop (one per online processor)
 *   key_pool N		  key pairs generated ahead and kept ready (4)
 *   store_key FILE	  the store key sealing Prv at rest (atrest.h);
 *			  default the systemd credential store_key, if any
 *   store_key_old FILE	  the previous store key, during a rotation
 */
#ifndef REGISTRARD_CONFIG_H
#define REGISTRARD_CONFIG_H

#include <stddef.h>

#include "conf.h"

#define REGISTRARD_WORKERS_AUTO	-1	/* one per online processor */
#define REGISTRARD_MAX_WORKERS	256
#define REGISTRARD_KEY_POOL	4
#define REGISTRARD_MAX_KEY_POOL	4096

struct registrard_conf {
	struct cfg_common	rc_common;
	int			rc_rsa_bits;	/* 2048 or 3072 */
	int			rc_rsa_primes;	/* 2 or 3 */
	int			rc_workers;	/* or REGISTRARD_WORKERS_AUTO */
	size_t			rc_key_pool;
	char			*rc_store_key;	/* NULL: the credential */
	char			*rc_store_key_old;	/* rotation */
};

/*
 * Parse path into *rc (defaults first).  Errors are printed as
 * "file:line: message"; 0, or -1 with *rc released (as every daemon's
 * loader).
 */
int	registrard_conf_load(const char *path, struct registrard_conf *);
void	registrard_conf_free(struct registrard_conf *);

#endif
