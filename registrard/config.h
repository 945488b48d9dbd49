/* registrard configuration: the common directives plus the key size. */
#ifndef REGISTRARD_CONFIG_H
#define REGISTRARD_CONFIG_H

#include "conf.h"

struct registrard_conf {
	struct cfg_common	rc_common;
	int			rc_rsa_bits;	/* 2048 or 3072 */
};

int	registrard_conf_load(const char *path, struct registrard_conf *);
void	registrard_conf_free(struct registrard_conf *);

#endif
