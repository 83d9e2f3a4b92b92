import { brokerRoutes } from "@evergreen/broker";
import { dashboardRoutes } from "@evergreen/dashboard";
import type { IssuerExtension } from "@evergreen/server";

/**
 * Route groups the CLI adds to the issuer's own. `serve` passes them to startServer and the
 * in-process admin backend to buildIssuer, so a group listed here (the broker's admin routes,
 * say) is served by `evergreen serve` and reachable by admin commands without a server alike.
 * `brokerWorker` is for serve: a single admin command starts no background work. `dashboard`
 * (serve only) adds the web dashboard at /dashboard and registers it as a client of the issuer.
 */
export function routeGroups(options: { brokerWorker: boolean; dashboard?: boolean }): IssuerExtension[] {
  const groups = [brokerRoutes({ worker: options.brokerWorker })];
  if (options.dashboard) groups.push(dashboardRoutes({ registerClient: true }));
  return groups;
}
