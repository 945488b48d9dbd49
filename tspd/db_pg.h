/*
 * The PostgreSQL backend of the TSP store (db_pg.c) and its schema
 * (db_pg_schema.c).
 */
#ifndef TSPD_DB_PG_H
#define TSPD_DB_PG_H

#include <stddef.h>

extern const char *const tspdb_pg_migrations[];
extern const size_t tspdb_pg_nmigrations;

#endif
