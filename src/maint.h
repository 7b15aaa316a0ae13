/* The maintenance commands: `m2pg gc` (retention, and repair of the recent past) and
 * `m2pg repair` (make every database hold every row). They run outside the web process, with
 * blocking, deadline-bound connections. */
#ifndef M2PG_MAINT_H
#define M2PG_MAINT_H

int maint_gc(int argc, char **argv);
int maint_repair(int argc, char **argv);

#endif
