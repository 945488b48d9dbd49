/*
 * tspd configuration: the common directives plus
 *   auth_skew DURATION	  accepted clock difference of an M4 (30s)
 *   auth_fail drop|reply  answer a refused M4 with a status, or not (drop)
 *   idle_timeout DURATION close vehicle and provisioning connections after
 *			  this long without input; 0 = never (300s)
 */
#ifndef TSPD_CONFIG_H
#define TSPD_CONFIG_H

#include <stdint.h>

#include "conf.h"

#define TSPD_AUTH_SKEW_MS	30000
#define TSPD_IDLE_TIMEOUT_MS	300000
#define TSPD_MAX_SKEW_MS	3600000		/* one hour */
#define TSPD_MAX_IDLE_MS	86400000	/* one day */

struct tspd_config {
	struct cfg_common	 tc_common;
	uint64_t		 tc_auth_skew_ms;
	int			 tc_auth_fail_reply;
	uint64_t		 tc_idle_timeout_ms;
};

/*
 * Parse path into *conf (defaults first).  Errors are printed as
 * "file:line: message"; returns 0, or -1 with conf released.
 */
int	tspd_config_load(const char *path, struct tspd_config *conf);
void	tspd_config_free(struct tspd_config *conf);

#endif
