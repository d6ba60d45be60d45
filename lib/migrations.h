/* The built-in schema migrations (private to libengage; pg.c applies them). */
#ifndef ENGAGE_MIGRATIONS_H
#define ENGAGE_MIGRATIONS_H
#include <stddef.h>

/** One numbered migration. sql may hold several statements; it is fixed text. */
typedef struct {
    int version;
    const char *name;
    const char *sql;
} eg_migration_t;

/** Every migration, in ascending version order (static storage). *count gets their number. */
const eg_migration_t *eg_migrations(size_t *count);

#endif
