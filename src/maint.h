/* The maintenance commands: `m2pg gc` (partitions ahead, retention, and repair of the recent
 * past), `m2pg repair` (make every database hold every row) and `m2pg migrate` (the schema). They run outside the web process, with
 * blocking, deadline-bound connections. */
#ifndef M2PG_MAINT_H
#define M2PG_MAINT_H

int maint_gc(int argc, char **argv);
int maint_repair(int argc, char **argv);
/* Migrates every database now and reports what it did; 1 when one could not be migrated. */
int maint_migrate(int argc, char **argv);

#endif
