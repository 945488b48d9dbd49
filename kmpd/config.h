/*
 * kmpd configuration: the common directives (id defaults to "kmp") plus
 *   key_source etsi014 [PEER] | random
 *				where the session keys come from: the KME of
 *				the topology's qkd line, kmpd the master SAE
 *				and PEER (default "kmp-peer") the slave SAE of
 *				the link, or this host's random source
 *				(etsi014 kmp-peer)
 *   max_skew DURATION		an application whose time is further than this
 *				from the KMP's clock is stale (30s)
 *   key_timeout DURATION	how long an application waits for the key
 *				source (5s)
 */
#ifndef KMPD_CONFIG_H
#define KMPD_CONFIG_H

#include <stdint.h>

#include "conf.h"
#include "ids.h"

#define KMPD_MAX_SKEW_MS	30000
#define KMPD_KEY_TIMEOUT_MS	5000
#define KMPD_MIN_MS		100
#define KMPD_MAX_MS		600000		/* ten minutes */
#define KMPD_PEER_DEFAULT	"kmp-peer"

struct kmpd_conf {
	struct cfg_common	kc_common;
	char			kc_key_source[16];	/* etsi014 | random */
	char			kc_key_peer[NAME_MAXLEN + 1];
	uint64_t		kc_max_skew_ms;
	uint64_t		kc_key_timeout_ms;
};

/*
 * Parse path into *kc (defaults first) and check it; errors go to stderr
 * as "file:line: message".  0 or -1.
 */
int	kmpd_conf_load(const char *path, struct kmpd_conf *kc);
void	kmpd_conf_free(struct kmpd_conf *kc);

#endif
