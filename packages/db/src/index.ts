export { openPostgres } from "./adapters/pg.ts";
export { openPglite } from "./adapters/pglite.ts";
export { type Clock, ManualClock, systemClock } from "./clock.ts";
export {
  type Database,
  type Queryable,
  type QueryResult,
  type Statement,
  isUniqueViolation,
  statement,
} from "./database.ts";
export { type BoundQuery, type Plan, plan } from "./plan.ts";
export { migrate, migrations, type Migration } from "./migrate.ts";
export { openDatabase, type DatabaseOptions } from "./open.ts";
export { unavailableReason } from "./unavailable.ts";
export { DEFAULT_POOL_TIMEOUTS, type PoolTimeouts } from "./adapters/pg.ts";
