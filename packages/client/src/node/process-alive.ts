/**
 * True while process `pid` exists on this machine: signal 0 checks without signalling, and
 * EPERM means it exists under another user. Lock files use it to tell a holder from a leftover.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
