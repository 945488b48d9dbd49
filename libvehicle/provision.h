/*
 * Provisioning over the mutual-TLS factory channel: fill the chip from
 * fillerd (F1) and register the vehicle with registrard (F2).  Both are
 * blocking request/reply exchanges on a private event base, used by
 * vehicled at start-up and after a refill, by qroamctl, qbench and the
 * test tool.
 */
#ifndef LIBVEHICLE_PROVISION_H
#define LIBVEHICLE_PROVISION_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "chip.h"
#include "topo.h"

/* Outcomes besides the StatusCode a server replied with. */
#define VPROV_NO_REPLY	(-1)	/* no connection, or no reply in time */
#define VPROV_ERROR	(-2)	/* local failure or malformed reply (logged) */

struct vprov {
	const struct topo	*vp_topo;	/* filler and registrar endpoints */
	const char		*vp_ca;
	const char		*vp_cert;	/* factory or operator credential */
	const char		*vp_key;
	size_t			 vp_max_frame;
	int			 vp_timeout_ms;
};

/*
 * F1: ask fillerd for a fill of m keys (0: its default) and write it to
 * the chip.  Returns QROAM__STATUS_CODE__OK once the chip is written, the
 * status fillerd refused with, or VPROV_*.
 */
int	vprov_fill(const struct vprov *, sqlite3 *db, uint32_t m,
	    struct chip_info *out);
/*
 * F2: register vid with the chip's chip_id (rebind: replace the chip of a
 * registered vehicle, operator credential only).  OK once M1 is stored.
 */
int	vprov_register(const struct vprov *, sqlite3 *db, const char *vid,
	    int rebind);
/*
 * Start-up enrollment: fill an empty chip (m keys), register once, and
 * rebind with the operator credential (oper, may be NULL) when the chip
 * changed since the registration.  OK when the vehicle is registered with
 * its chip, else the first failure (logged; DUPLICATE_REGISTRATION is one).
 */
int	vprov_enroll(const struct vprov *factory, const struct vprov *oper,
	    sqlite3 *db, const char *vid, uint32_t m);
/* 1 if a provisioning result may go away by itself (retry later). */
int	vprov_transient(int);
/*
 * F9 refill with the operator credential: a new fill when the chip has no
 * unused key left for mode, then the rebind of the registration.  OK, or
 * the first failure.
 */
int	vprov_refill(const struct vprov *oper, sqlite3 *db, const char *vid,
	    uint32_t m, enum chip_mode mode);
/* "OK", a status name, "NO_REPLY" or "ERROR". */
const char *vprov_result_name(int);

#endif
