/* Identifier syntax of PROTOCOL section 3. */
#ifndef QROAM_IDS_H
#define QROAM_IDS_H

#include <stddef.h>

#define VIN_LEN		17
#define NAME_MAXLEN	32
#define CHIP_ID_LEN	64	/* lowercase hex SHA-256 */

/* vehicle_id: 17 chars of [A-HJ-NPR-Z0-9]. */
int	id_valid_vin(const char *);
/* tsp_id, sched_id, SAE ids: [a-z0-9._-]{1,32}. */
int	id_valid_name(const char *);
/* exactly len lowercase hex characters. */
int	id_valid_hex(const char *, size_t len);

#endif
