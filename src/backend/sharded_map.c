/*
 * sharded_map.c -- the tables the sharded backend adds to each member, and
 * the shard map check at open.
 *
 * Every member records the map it belongs to: the map's random id, its own
 * position and the number of members (stock_shard_map, one row). A SKU's
 * shard is a function of the member positions (shard_of), so a store opened
 * over the same databases in another order, without one, or with one of
 * another map would route SKUs to members that do not hold them: it is
 * refused, and the message names the member and what is wrong.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backend/sharded.h"
#include "lib/message.h"

/* Serialises the installation of these tables between processes. */
#define SHARD_SCHEMA_LOCK_KEY 7379012

static const char shard_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS stock_shard_map (\n"
    "    map_id text NOT NULL,\n"
    "    position integer NOT NULL,\n"
    "    shard_count integer NOT NULL);\n"
    "-- A move to a longer member list in progress (stock_reshard, sharded_move.c):\n"
    "-- while any member has a row, stores refuse to open over these members.\n"
    "CREATE TABLE IF NOT EXISTS stock_shard_move (\n"
    "    from_map text NOT NULL,\n"
    "    to_map text NOT NULL,\n"
    "    from_count integer NOT NULL,\n"
    "    to_count integer NOT NULL);\n"
    "-- Two-phase commit: the coordinator's decision for each prepared\n"
    "-- transaction (its gid). Whoever inserts first decides: the coordinator\n"
    "-- inserts commit, a recovery inserts abort.\n"
    "CREATE TABLE IF NOT EXISTS stock_decisions (\n"
    "    gid text PRIMARY KEY,\n"
    "    commit boolean NOT NULL,\n"
    "    time_us bigint NOT NULL);\n"
    "-- A cart over several shards, on its coordinator: each shard knows only its\n"
    "-- own lines, so a retry is checked against the whole cart's digest.\n"
    "CREATE TABLE IF NOT EXISTS stock_carts (\n"
    "    order_id text PRIMARY KEY,\n"
    "    digest text NOT NULL);\n"
    "-- The id directory, kept on each id's home shard: the shard that holds the\n"
    "-- line, order, refund or adjustment of that id (kind L, O, R, A).\n"
    "CREATE TABLE IF NOT EXISTS stock_ids (\n"
    "    kind text NOT NULL,\n"
    "    id text NOT NULL,\n"
    "    shard integer NOT NULL,\n"
    "    PRIMARY KEY (kind, id));\n"
    "-- Claims each id for a shard; returns the ids another shard holds (n is\n"
    "-- 1-based in the arrays). The caller never passes one id twice. An entry\n"
    "-- another store inserted at the same time is seen too: the insert waits for\n"
    "-- it, and the (value-preserving) update returns its latest version, which a\n"
    "-- read of the table in this statement's snapshot would miss.\n"
    "CREATE OR REPLACE FUNCTION stock_ids_claim(p_kinds text[], p_ids text[], p_shards integer[])\n"
    "RETURNS TABLE(n integer, shard integer) LANGUAGE sql AS $$\n"
    "    WITH want AS (SELECT x.k, x.i, x.s, x.n::integer AS n\n"
    "                    FROM unnest(p_kinds, p_ids, p_shards) WITH ORDINALITY AS x(k, i, s, n)),\n"
    "         put AS (INSERT INTO stock_ids AS d SELECT k, i, s FROM want\n"
    "                 ON CONFLICT (kind, id) DO UPDATE SET shard = d.shard\n"
    "                 WHERE d.shard <> excluded.shard RETURNING d.kind, d.id, d.shard)\n"
    "    SELECT w.n, p.shard FROM want w JOIN put p ON p.kind = w.k AND p.id = w.i\n"
    "     WHERE p.shard <> w.s\n"
    "$$;\n"
    "-- Whether this shard holds the id (a stale claim points to a shard that\n"
    "-- never committed it: the claim may then be taken over).\n"
    "CREATE OR REPLACE FUNCTION stock_id_used(p_kind text, p_id text) RETURNS boolean\n"
    "LANGUAGE sql STABLE AS $$\n"
    "    SELECT CASE p_kind\n"
    "        WHEN 'L' THEN EXISTS (SELECT 1 FROM inventory_flow WHERE line_id = p_id)\n"
    "        WHEN 'O' THEN EXISTS (SELECT 1 FROM inventory_orders WHERE order_id = p_id)\n"
    "        WHEN 'R' THEN EXISTS (SELECT 1 FROM inventory_refunds WHERE refund_id = p_id)\n"
    "        ELSE EXISTS (SELECT 1 FROM inventory_adjustments WHERE adjust_id = p_id) END\n"
    "$$;\n"
    "-- Fences: the ids another shard took over from this one. An op that claimed\n"
    "-- one for this shard may still be on its way here; the fence makes it fail\n"
    "-- instead of using the id a second time (docs/sharded.md, \"One id, one winner\").\n"
    "CREATE TABLE IF NOT EXISTS stock_fences (\n"
    "    kind text NOT NULL,\n"
    "    id text NOT NULL,\n"
    "    time_us bigint NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint,\n"
    "    PRIMARY KEY (kind, id));\n"
    "CREATE OR REPLACE FUNCTION stock_fence_table(p_kind text) RETURNS text\n"
    "LANGUAGE sql IMMUTABLE AS $$\n"
    "    SELECT CASE p_kind WHEN 'L' THEN 'inventory_flow' WHEN 'O' THEN 'inventory_orders'\n"
    "        WHEN 'R' THEN 'inventory_refunds' ELSE 'inventory_adjustments' END\n"
    "$$;\n"
    "-- Whether this shard holds the id; if not, fences it. The SHARE lock waits\n"
    "-- for every transaction writing the id's table here and holds off new ones\n"
    "-- until the fence commits: an op that used the id is then seen, and one\n"
    "-- that had not yet sees the fence.\n"
    "CREATE OR REPLACE FUNCTION stock_id_fence(p_kind text, p_id text) RETURNS boolean\n"
    "LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "    EXECUTE format('LOCK TABLE %I IN SHARE MODE', stock_fence_table(p_kind));\n"
    "    IF stock_id_used(p_kind, p_id) THEN\n"
    "        RETURN true;\n"
    "    END IF;\n"
    "    INSERT INTO stock_fences (kind, id) VALUES (p_kind, p_id) ON CONFLICT DO NOTHING;\n"
    "    RETURN false;\n"
    "END $$;\n"
    "-- Refuses a statement that writes a fenced id: one trigger per id table,\n"
    "-- each with its own function (static SQL: its plan is kept). SQLSTATE\n"
    "-- SF001: not one to retry as it is; the detail, the kind and the fenced\n"
    "-- ids separated by spaces (ids hold none), names the ops the postgres\n"
    "-- backend drops before it reruns the rest of the batch. A part of a cart\n"
    "-- over several shards other than its coordinator (stock.cart_part set\n"
    "-- in its transaction) writes its order id past a fence: the fence holds\n"
    "-- off an order whose entry named this shard, and the cart's entry names\n"
    "-- its coordinator, where the fences of the order id count.\n"
    "DO $do$\n"
    "DECLARE t record;\n"
    "BEGIN\n"
    "    FOR t IN SELECT * FROM (VALUES ('inventory_flow', 'L', 'line_id'),\n"
    "            ('inventory_orders', 'O', 'order_id'), ('inventory_refunds', 'R', 'refund_id'),\n"
    "            ('inventory_adjustments', 'A', 'adjust_id')) AS v(tab, kind, col) LOOP\n"
    "        EXECUTE format($f$CREATE OR REPLACE FUNCTION %I() RETURNS trigger\n"
    "            LANGUAGE plpgsql AS $b$\n"
    "            DECLARE fenced text;\n"
    "            BEGIN\n"
    "                SELECT string_agg(DISTINCT a.%I, ' ') INTO fenced FROM added a\n"
    "                  JOIN stock_fences f ON f.kind = %L AND f.id = a.%I;\n"
    "                IF fenced IS NOT NULL AND NOT (%L = 'O' AND\n"
    "                        coalesce(current_setting('stock.cart_part', true), '') = 'on') THEN\n"
    "                    RAISE EXCEPTION USING ERRCODE = 'SF001', MESSAGE = 'sharded: id '\n"
    "                        || fenced || ' was taken over by another shard (fenced here): '\n"
    "                        || 'not applied', DETAIL = %L || ' ' || fenced;\n"
    "                END IF;\n"
    "                RETURN NULL;\n"
    "            END $b$$f$, 'stock_fence_' || lower(t.kind), t.col, t.kind, t.col, t.kind, t.kind);\n"
    "        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'stock_fence_' || lower(t.kind)\n"
    "                       AND tgrelid = t.tab::regclass) THEN\n"
    "            EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE '\n"
    "                           'AS added FOR EACH STATEMENT EXECUTE FUNCTION %I()',\n"
    "                           'stock_fence_' || lower(t.kind), t.tab,\n"
    "                           'stock_fence_' || lower(t.kind));\n"
    "        END IF;\n"
    "    END LOOP;\n"
    "END $do$;\n";

/* Runs sql (one statement or several: the last one's result counts) on
 * member's control session, waiting its stock_timeout_ms at most. */
static bool exec_ok(const shard *member, const char *sql, ExecStatusType want, char *message,
                    size_t size)
{
    PGresult *result = pg_exec_script_until(member->control, sql,
                                            pg_deadline(member->options.timeout_ms));
    bool ok = PQresultStatus(result) == want;
    if (!ok) {
        const char *text = pg_error_message(member->control, result);
        message_set(message, size, "sharded: %s: %.*s", member->name,
                    (int)strcspn(text, "\n"), text);
    }
    PQclear(result);
    return ok;
}

/* Runs sql with its parameters on member's control session, waiting its
 * stock_timeout_ms at most; the result (NULL when none came in time). */
static PGresult *exec_params(const shard *member, const char *sql, int count,
                             const char *const *values)
{
    return pg_exec_until(member->control, sql, count, values,
                         pg_deadline(member->options.timeout_ms));
}

/* The tables and functions are a few small statements: every one waits
 * stock_timeout_ms at most, the lock's wait for another opener too. */
bool shard_schema_install(shard *member, char *message, size_t size)
{
    char lock[96];
    snprintf(lock, sizeof lock, "BEGIN; SELECT pg_advisory_xact_lock(%d)", SHARD_SCHEMA_LOCK_KEY);
    bool ok = exec_ok(member, lock, PGRES_TUPLES_OK, message, size) &&
              exec_ok(member, shard_schema_sql, PGRES_COMMAND_OK, message, size) &&
              exec_ok(member, shard_move_schema_sql, PGRES_COMMAND_OK, message, size);
    ok = exec_ok(member, ok ? "COMMIT" : "ROLLBACK", PGRES_COMMAND_OK, ok ? message : NULL,
                 size) && ok;
    return ok;
}

/* Reads the move in progress that member records, if any, into entry. */
static bool read_move(shard *member, shard_entry *entry, char *message, size_t size)
{
    PGresult *result = exec_params(member, "SELECT from_map, to_map, from_count, to_count "
                                           "FROM stock_shard_move LIMIT 1", 0, NULL);
    bool ok = PQresultStatus(result) == PGRES_TUPLES_OK;
    if (!ok)
        message_set(message, size, "sharded: %s: cannot read its move record: %s",
                    member->name, pg_error_message(member->control, result));
    if (ok && PQntuples(result) == 1) {
        entry->moving = true;
        snprintf(entry->move_from, sizeof entry->move_from, "%s", PQgetvalue(result, 0, 0));
        snprintf(entry->move_to, sizeof entry->move_to, "%s", PQgetvalue(result, 0, 1));
        entry->move_from_count = atoi(PQgetvalue(result, 0, 2));
        entry->move_to_count = atoi(PQgetvalue(result, 0, 3));
    }
    PQclear(result);
    return ok;
}

bool shard_entry_read(shard *member, shard_entry *entry, char *message, size_t size)
{
    memset(entry, 0, sizeof *entry);
    PGresult *result = exec_params(member, "SELECT map_id, position, shard_count, "
                                           "(SELECT count(*) FROM stock_shard_map) "
                                           "FROM stock_shard_map LIMIT 1", 0, NULL);
    bool ok = PQresultStatus(result) == PGRES_TUPLES_OK;
    if (!ok)
        message_set(message, size, "sharded: %s: cannot read its shard map: %s", member->name,
                    pg_error_message(member->control, result));
    if (ok && PQntuples(result) == 1) {
        ok = atoi(PQgetvalue(result, 0, 3)) == 1;
        if (!ok)
            message_set(message, size, "sharded: %s: its stock_shard_map has several rows",
                        member->name);
        entry->present = true;
        snprintf(entry->map_id, sizeof entry->map_id, "%s", PQgetvalue(result, 0, 0));
        entry->position = atoi(PQgetvalue(result, 0, 1));
        entry->count = atoi(PQgetvalue(result, 0, 2));
    }
    PQclear(result);
    return ok && read_move(member, entry, message, size);
}

static bool write_entry(shard *member, const char *map_id, uint32_t position, uint32_t count,
                        char *message, size_t size)
{
    char pos[16], total[16];
    snprintf(pos, sizeof pos, "%u", position);
    snprintf(total, sizeof total, "%u", count);
    const char *values[3] = {map_id, pos, total};
    PGresult *result = exec_params(member, "INSERT INTO stock_shard_map SELECT $1, $2::integer, "
                                   "$3::integer WHERE NOT EXISTS (SELECT 1 FROM stock_shard_map)",
                                   3, values);
    bool done = PQresultStatus(result) == PGRES_COMMAND_OK;
    bool ok = done && atoi(PQcmdTuples(result)) == 1;
    if (!ok)
        message_set(message, size, "sharded: %s: cannot record the shard map%s%s", member->name,
                    done ? " (another store just did)" : ": ",
                    done ? "" : pg_error_message(member->control, result));
    PQclear(result);
    return ok;
}

bool shard_entry_fits(const sharded_store *store, const shard_entry *entries, uint32_t i,
                      uint32_t count, char *message, size_t size)
{
    const shard_entry *first = &entries[0], *entry = &entries[i];
    const char *name = store->shards[i].name;
    if (!entry->present) {
        message_set(message, size, "sharded: member %u (%s) records no shard map, but member 0 "
                    "is shard %d of map %s: it is not a shard of this map", i, name,
                    first->position, first->map_id);
    } else if (strcmp(entry->map_id, first->map_id) != 0) {
        message_set(message, size, "sharded: member %u (%s) belongs to another map (%s) than "
                    "member 0 (%s)", i, name, entry->map_id, first->map_id);
    } else if (entry->count != (int)count) {
        message_set(message, size, "sharded: map %s has %d shards but the URI names %u: "
                    "one is missing or added; name every member, in order", entry->map_id,
                    entry->count, count);
    } else if (entry->position != (int)i) {
        message_set(message, size, "sharded: member %u (%s) is shard %d of map %s: members "
                    "in another order than the map's", i, name, entry->position, entry->map_id);
    } else {
        return true;
    }
    return false;
}

static stock_code create_map(sharded_store *store, char *message, size_t size)
{
    uint64_t random = 0;
    if (getrandom(&random, sizeof random, 0) != sizeof random) {
        message_set(message, size, "sharded: no random bytes for a new map id");
        return STOCK_IO;
    }
    snprintf(store->map_id, sizeof store->map_id, "%016" PRIx64, random);
    /* Member 0 last: until it has its row, an opener waiting on its lock
     * sees no map and would refuse the half-made one rather than add to it. */
    for (uint32_t k = store->count; k-- > 0;)
        if (!write_entry(&store->shards[k], store->map_id, k, store->count, message, size))
            return pg_lost_or(store->shards[k].control, STOCK_IO);
    return STOCK_OK;
}

/* Inside member 0's locked transaction: read every entry, create the map if
 * none has one, else check each against member 0's. */
static stock_code check_entries(sharded_store *store, char *message, size_t size)
{
    shard_entry entries[SHARD_MAX];
    bool any = false;
    for (uint32_t i = 0; i < store->count; i++) {
        if (!shard_entry_read(&store->shards[i], &entries[i], message, size))
            return pg_lost_or(store->shards[i].control, STOCK_IO);
        any = any || entries[i].present;
    }
    for (uint32_t i = 0; i < store->count; i++) {
        const shard_entry *entry = &entries[i];
        if (entry->moving) {
            message_set(message, size, "sharded: member %u (%s) is being moved from map %s "
                        "(%d shards) to map %s (%d shards): finish the move with stockctl "
                        "reshard before opening (docs/sharded.md, \"Adding a shard\")", i,
                        store->shards[i].name, entry->move_from, entry->move_from_count,
                        entry->move_to, entry->move_to_count);
            return STOCK_UNAVAILABLE;
        }
    }
    if (!any)
        return create_map(store, message, size);
    if (!entries[0].present) {
        uint32_t i = 1;
        while (!entries[i].present)
            i++;
        message_set(message, size, "sharded: member 0 (%s) records no shard map, but member %u "
                    "(%s) is shard %d of map %s: it is not a shard of this map",
                    store->shards[0].name, i, store->shards[i].name, entries[i].position,
                    entries[i].map_id);
        return STOCK_INVALID;
    }
    for (uint32_t i = 0; i < store->count; i++)
        if (!shard_entry_fits(store, entries, i, store->count, message, size))
            return STOCK_INVALID;
    snprintf(store->map_id, sizeof store->map_id, "%s", entries[0].map_id);
    return STOCK_OK;
}

stock_code shard_map_check(sharded_store *store, char *message, size_t size)
{
    for (uint32_t i = 0; i < store->count; i++)
        if (!shard_schema_install(&store->shards[i], message, size))
            return pg_lost_or(store->shards[i].control, STOCK_IO);
    shard *first = &store->shards[0];
    char lock[96];
    snprintf(lock, sizeof lock, "BEGIN; SELECT pg_advisory_xact_lock(%d)", SHARD_MAP_LOCK_KEY);
    if (!exec_ok(first, lock, PGRES_TUPLES_OK, message, size))
        return pg_lost_or(first->control, STOCK_IO);
    stock_code code = check_entries(store, message, size);
    bool ok = code == STOCK_OK;
    if (!exec_ok(first, ok ? "COMMIT" : "ROLLBACK", PGRES_COMMAND_OK, ok ? message : NULL,
                 size) && ok)
        code = pg_lost_or(first->control, STOCK_IO);
    return code;
}
