/*
 * schedd configuration: the common directives (id defaults to "sched")
 * plus
 *   handover_timeout DURATION	a handover not finished this long after its
 *				A1 fails (5s)
 *   ck2_lifetime DURATION	how long TSPA may use the CK2 of an M7 (30s)
 *   key_reserve N		keys held ahead for each TSP, 0 = none (16)
 *   kme_tls_min 1.2|1.3	the oldest TLS the key source speaks to the
 *				KME (1.3)
 */
#ifndef SCHEDD_CONFIG_H
#define SCHEDD_CONFIG_H

#include <stdint.h>

#include "conf.h"

#define SCHEDD_HANDOVER_TIMEOUT_MS	5000
#define SCHEDD_CK2_LIFETIME_MS		30000
#define SCHEDD_MIN_TIMEOUT_MS		100
#define SCHEDD_MAX_TIMEOUT_MS		600000		/* ten minutes */
#define SCHEDD_MAX_LIFETIME_MS		86400000	/* one day */
#define SCHEDD_KEY_RESERVE		16
#define SCHEDD_KEY_RESERVE_MAX		1024	/* KEYSRC_RESERVE_MAX */
#define SCHEDD_KEY_RESERVE_LIFETIME_MS	3600000		/* a held key's hour */

struct schedd_conf {
	struct cfg_common	sc_common;
	uint64_t		sc_handover_timeout_ms;
	uint64_t		sc_ck2_lifetime_ms;
	uint64_t		sc_key_reserve;
	int			sc_kme_tls_min;	/* TLS 1.x */
};

/*
 * Parse path into *sc (defaults first) and check it, with the topology it
 * names; errors go to stderr as "file:line: message".  0, or -1 with *sc
 * released (as every daemon's loader).
 */
int	schedd_conf_load(const char *path, struct schedd_conf *sc);
void	schedd_conf_free(struct schedd_conf *sc);

#endif
