/*
 * What the targets link from a daemon's main file, which no library holds.
 * Only teardown paths reach it, and no target takes them.
 */
#include <stdlib.h>

#include "../../tspd/tspd.h"

void
tspd_store_drain(struct tspd *env)
{
	(void)env;
	abort();
}
