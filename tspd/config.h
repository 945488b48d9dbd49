/*
 * tspd configuration: the common directives plus
 *   auth_skew DURATION	  accepted clock difference of an M4 (30s)
 *   auth_fail drop|reply  answer a refused M4 with a status, or not (drop)
 *   idle_timeout DURATION close vehicle and provisioning connections after
 *			  this long without input; 0 = never (300s)
 *   look_ahead DURATION   how far ahead a vehicle's position is projected
 *			  along its heading to decide on a handover (10s)
 *   handover_timeout DURATION  limit of one handover from M6 to M8Ack,
 *			  and of TSPB's part up to the CK2 binding (5s)
 *   ck2_lifetime DURATION how long TSPB keeps CK2 waiting for M8 (30s)
 *   workers N		  threads for the private-key work of F3; 0 = on
 *			  the event loop (one per online processor)
 *   prv_cache N	  decoded vehicle private keys kept in memory (65536)
 *   commit_delay DURATION  how long telemetry may wait to join a group
 *			  commit; 0 = the end of the event loop's pass (0)
 *   cloud_key FILE	  K0 of the cloud bus between the region's instances
 *			  (32 bytes, or 64 hex digits); PostgreSQL only
 *   cloud_epoch SECONDS   t0 of the key stream, unix seconds (required
 *			  with cloud_key)
 *   cloud_step DURATION   the key stream's step dT, above the largest delay
 *			  between instances (1s)
 *   kme_tls_min 1.2|1.3	  the oldest TLS the key source speaks to the KME
 *			  (1.3)
 *   auth_idle DURATION	  a vehicle's authentication expires after this
 *			  long without use (F8 without a Bye); 0 = never (10m)
 */
#ifndef TSPD_CONFIG_H
#define TSPD_CONFIG_H

#include <stdint.h>

#include "conf.h"
#include "ids.h"
#include "topo.h"

#define TSPD_AUTH_SKEW_MS	30000
#define TSPD_IDLE_TIMEOUT_MS	300000
#define TSPD_MAX_SKEW_MS	3600000		/* one hour */
#define TSPD_MAX_IDLE_MS	86400000	/* one day */
#define TSPD_LOOK_AHEAD_MS	10000
#define TSPD_HO_TIMEOUT_MS	5000
#define TSPD_CK2_LIFETIME_MS	30000
#define TSPD_MAX_LOOK_AHEAD_MS	3600000		/* one hour */
#define TSPD_MAX_HO_MS		600000		/* ten minutes */
#define TSPD_WORKERS_AUTO	-1		/* one per online processor */
#define TSPD_MAX_WORKERS	256
/* About 5 KiB each for RSA-2048: some 340 MiB when full. */
#define TSPD_PRV_CACHE		65536
#define TSPD_MAX_PRV_CACHE	16777216
#define TSPD_MAX_COMMIT_DELAY_MS 10000
#define TSPD_CLOUD_STEP_MS	1000
#define TSPD_MIN_CLOUD_STEP_MS	100
#define TSPD_MAX_CLOUD_STEP_MS	3600000		/* one hour */
#define TSPD_MAX_CLOUD_EPOCH	4102444800ULL	/* 2100-01-01 */
#define TSPD_CLOUD_KEYLEN	32
#define TSPD_AUTH_IDLE_MS	600000		/* ten minutes */
#define TSPD_MAX_AUTH_IDLE_MS	604800000	/* one week */

struct tspd_config {
	struct cfg_common	 tc_common;
	uint64_t		 tc_auth_skew_ms;
	int			 tc_auth_fail_reply;
	uint64_t		 tc_idle_timeout_ms;
	uint64_t		 tc_look_ahead_ms;
	uint64_t		 tc_handover_timeout_ms;
	uint64_t		 tc_ck2_lifetime_ms;
	int			 tc_workers;	/* or TSPD_WORKERS_AUTO */
	size_t			 tc_prv_cache;
	uint64_t		 tc_commit_delay_ms;
	uint64_t		 tc_auth_idle_ms;	/* 0: never */
	int			 tc_kme_tls_min;	/* TLS 1.x */
	int			 tc_reuse_port;	/* several instances, one port */
	char			 tc_instance[NAME_MAXLEN + 1];	/* in the region */
	/* Where to listen instead of the topology's addresses (port 0: no). */
	struct endpoint		 tc_listen_vehicle;
	struct endpoint		 tc_listen_provision;
	/* The cloud bus (cloudbus.h); tc_cloud_key NULL: none. */
	char			*tc_cloud_key;	/* the file of K0 */
	uint8_t			 tc_cloud_k0[TSPD_CLOUD_KEYLEN];	/* wiped */
	uint64_t		 tc_cloud_epoch_ms;
	uint64_t		 tc_cloud_step_ms;
	int			 tc_cloud_epoch_set;
};

/*
 * Parse path into *conf (defaults first).  Errors are printed as
 * "file:line: message"; returns 0, or -1 with conf released.
 */
int	tspd_config_load(const char *path, struct tspd_config *conf);
/* Release conf, wiping K0. */
void	tspd_config_free(struct tspd_config *conf);
/*
 * Log the settings of next that only a restart applies (workers,
 * prv_cache) where they differ from cur; returns their number.
 */
int	tspd_config_restart_only(const struct tspd_config *cur,
	    const struct tspd_config *next);

#endif
