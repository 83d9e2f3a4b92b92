import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import type { TokenStorage } from "../storage/token-storage.ts";
import { type FileLockOptions, fileLock } from "./file-lock.ts";

export interface FileStorageOptions {
  /** The token file. Created with mode 0600; its directory with 0700 if missing. */
  path: string;
  /**
   * The encryption key: 32 raw bytes, or a passphrase (stretched with PBKDF2-SHA256). Default: a
   * random key kept beside the file in `<path>.key` (mode 0600) — that keeps tokens out of
   * backups and sync folders that take only the token file, not away from the same OS user.
   */
  key?: Uint8Array | string;
  lock?: FileLockOptions;
}

const bytesToBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const base64ToBytes = (text: string) => new Uint8Array(Buffer.from(text, "base64"));

async function writeAtomically(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const handle = await open(temporary, "wx", 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  await chmod(path, 0o600);
}

async function importKey(key: Uint8Array | string | undefined, path: string): Promise<CryptoKey> {
  const subtle = globalThis.crypto.subtle;
  if (typeof key === "string") {
    const material = await subtle.importKey("raw", new TextEncoder().encode(key), "PBKDF2", false, [
      "deriveKey",
    ]);
    return subtle.deriveKey(
      {
        name: "PBKDF2",
        hash: "SHA-256",
        salt: new TextEncoder().encode("evergreen file storage v1"),
        iterations: 210_000,
      },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
  }
  let raw = key;
  if (!raw) {
    const keyPath = `${path}.key`;
    raw = await readFile(keyPath)
      .then((buffer) => new Uint8Array(buffer))
      .catch(async () => {
        const fresh = new Uint8Array(randomBytes(32));
        await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
        try {
          const handle = await open(keyPath, "wx", 0o600);
          await handle.writeFile(fresh);
          await handle.close();
          return fresh;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
          return new Uint8Array(await readFile(keyPath)); // another process created it first
        }
      });
  }
  if (raw.byteLength !== 32) throw new TypeError("file storage key must be 32 bytes");
  return subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/**
 * Tokens in one AES-256-GCM encrypted file (mode 0600), for Node CLIs and services. Writes are
 * atomic (temporary file + rename), and every read-modify-write of the file runs under the file
 * lock `<path>.write.lock`, so processes writing different keys never undo each other. Processes
 * sharing the file coordinate refreshes through the file lock `<path>.lock`, which sessions pick
 * up from `storage.lock`.
 */
export function fileStorage(options: FileStorageOptions): TokenStorage {
  const { path } = options;
  let cryptoKey: Promise<CryptoKey> | undefined;
  const getKey = () => {
    cryptoKey ??= importKey(options.key, path);
    return cryptoKey;
  };
  // Every read-modify-write of the file, in any process, holds `<path>.write.lock` (a lock of
  // its own: a refresh holds `<path>.lock` across the request and writes while holding it).
  const writes = fileLock(`${path}.write.lock`, options.lock);

  async function readAll(): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw error;
    }
    const envelope = JSON.parse(text) as { v: 1; iv: string; data: string };
    const plain = await globalThis.crypto.subtle.decrypt(
      { name: "AES-GCM", iv: base64ToBytes(envelope.iv) },
      await getKey(),
      base64ToBytes(envelope.data),
    );
    return JSON.parse(new TextDecoder().decode(plain)) as Record<string, string>;
  }

  async function writeAll(values: Record<string, string>): Promise<void> {
    if (Object.keys(values).length === 0) {
      await unlink(path).catch(() => undefined);
      return;
    }
    const iv = new Uint8Array(randomBytes(12));
    const data = await globalThis.crypto.subtle.encrypt(
      { name: "AES-GCM", iv },
      await getKey(),
      new TextEncoder().encode(JSON.stringify(values)),
    );
    await writeAtomically(
      path,
      JSON.stringify({ v: 1, iv: bytesToBase64(iv), data: bytesToBase64(new Uint8Array(data)) }),
    );
  }

  const update = (change: (values: Record<string, string>) => void) =>
    writes.run(path, async () => {
      const values = await readAll(); // re-read inside the lock: another process may have written
      change(values);
      await writeAll(values);
    });

  return {
    get: async (key) => (await readAll())[key] ?? null,
    set: (key, value) =>
      update((values) => {
        values[key] = value;
      }),
    remove: (key) =>
      update((values) => {
        delete values[key];
      }),
    lock: fileLock(`${path}.lock`, options.lock),
  };
}
