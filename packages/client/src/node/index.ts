// Node-only adapters (they import node:fs); browsers import "@evergreen/client" alone.
export { fileStorage, type FileStorageOptions } from "./file-storage.ts";
export { fileLock, type FileLockOptions } from "./file-lock.ts";
export { loginWithLoopback, type LoopbackLoginOptions } from "./loopback-login.ts";
// Kept here too: it was exported from this entry point first.
export { AuthorizationError } from "../errors.ts";
export { isProcessAlive } from "./process-alive.ts";
