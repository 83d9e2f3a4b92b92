export { dashboardRoutes, type DashboardOptions } from "./routes.ts";
export { DASHBOARD_CLIENT_ID, dashboardRedirectUri, registerDashboardClient } from "./client-registration.ts";
