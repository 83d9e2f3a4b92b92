import { brokerRoutes } from "@evergreen/broker";
import type { IssuerExtension } from "@evergreen/server";

/**
 * Route groups the CLI adds to the issuer's own. `serve` passes them to startServer and the
 * in-process admin backend to buildIssuer, so a group listed here (the broker's admin routes,
 * say) is served by `evergreen serve` and reachable by admin commands without a server alike.
 * `brokerWorker` is for serve: a single admin command starts no background work.
 */
export function routeGroups(options: { brokerWorker: boolean }): IssuerExtension[] {
  return [brokerRoutes({ worker: options.brokerWorker })];
}
