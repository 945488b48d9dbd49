/* fillerd configuration: the common directives plus the F1 parameters. */
#ifndef FILLERD_CONFIG_H
#define FILLERD_CONFIG_H

#include "conf.h"

struct fillerd_conf {
	struct cfg_common	fc_common;
	unsigned		fc_m;	/* keys per chip */
	unsigned		fc_k;	/* code length in hex chars */
	unsigned		fc_n;	/* first code char replaced on collision */
	int			fc_kn_line; /* last line setting m, k or n */
};

/*
 * Parse path completely; errors go to stderr as file:line: message.
 * 0, or -1 with *fc released (as every daemon's loader).
 */
int	fillerd_conf_load(const char *path, struct fillerd_conf *);
void	fillerd_conf_free(struct fillerd_conf *);

#endif
