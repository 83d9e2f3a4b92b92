// Node-only adapters (they import node:fs); browsers import "@evergreen/client" alone.
export { fileStorage, type FileStorageOptions } from "./file-storage.ts";
export { fileLock, type FileLockOptions } from "./file-lock.ts";
export { loginWithLoopback, AuthorizationError, type LoopbackLoginOptions } from "./loopback-login.ts";
export { isProcessAlive } from "./process-alive.ts";
