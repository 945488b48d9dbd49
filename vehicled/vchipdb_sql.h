/*
 * The fleet store's SQL (vchipdb_sql.c): its schema, the load of every
 * slot at open, and the writer's statements that apply a group of steps
 * in one transaction.  The writer's functions run on its thread and touch
 * nothing but the connection and the steps.
 */
#ifndef VEHICLED_VCHIPDB_SQL_H
#define VEHICLED_VCHIPDB_SQL_H

#include <sqlite3.h>

#include "vchip_priv.h"

struct vchip_sql {
	sqlite3		*s_db;
	sqlite3_stmt	*s_begin, *s_commit, *s_rollback;
	sqlite3_stmt	*s_save, *s_release, *s_undo;
	sqlite3_stmt	*s_next_seq, *s_count_unused, *s_nth_unused;
	sqlite3_stmt	*s_destroy, *s_raise, *s_count;
	sqlite3_stmt	*s_del_keys, *s_ins_key, *s_put_fill;
	sqlite3_stmt	*s_put_m1, *s_put_reg, *s_event;
};

/* Open (creating, migrating) the fleet store; NULL on failure (logged). */
sqlite3	*vchip_sql_open(const char *path);
/* Read every slot into fd (on the loop, before the writer starts); 0 or -1. */
int	vchip_sql_load(sqlite3 *, struct vchipdb *fd);
int	vchip_sql_prepare(struct vchip_sql *, sqlite3 *);
void	vchip_sql_finalize(struct vchip_sql *);
/* The writer: apply group in one transaction, each step's result in it. */
void	vchip_sql_group(struct vchip_sql *, struct vchip_opq *group);
/* Checkpoint the WAL (truncating it if truncate). */
void	vchip_sql_checkpoint(struct vchip_sql *, int truncate);

/* vchipdb.c, for the load. */
struct vchip *vchipdb_loaded(struct vchipdb *, const char *vid);
void	vchipdb_loaded_registration(struct vchipdb *);
/* A step's name for logs. */
const char *vchipdb_op_name(enum vchip_opkind);
/* The interned TSP list of digest, from its packed M1 if new; or NULL. */
const struct topo *vchipdb_tsps(const char *digest, const uint8_t *buf,
	    size_t len);

#endif
