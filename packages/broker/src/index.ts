export { createBroker, type Broker, type BrokerOptions } from "./broker.ts";
export { loadBrokerConfig, type BrokerConfig, BrokerConfigError } from "./config.ts";
export { brokerRoutes } from "./serve.ts";
export { runBrokerWorker } from "./worker/standalone.ts";
export { rotateBrokerKeys } from "./rotate-keys.ts";
export {
  createProvider,
  getProvider,
  listProviders,
  updateProvider,
  deleteProvider,
} from "./providers/store.ts";
export { PROVIDER_TEMPLATES } from "./providers/templates.ts";
export {
  createConnection,
  getConnection,
  listConnections,
  reauthConnection,
  deleteConnection,
} from "./connections/store.ts";
export { createApiKey, listApiKeys, getApiKey, deleteApiKey } from "./api-keys/store.ts";
export { listEvents } from "./events.ts";
export { signWebhook, verifyWebhook } from "./webhooks/signature.ts";
export { refreshNow } from "./refresh/on-demand.ts";
export type { BrokerContext } from "./context.ts";
