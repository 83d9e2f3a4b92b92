/**
 * A plain Map adapter for oidc-provider: its built-in memory adapter is an LRU capped at 1,000
 * entries, which a refresh benchmark with rotation fills in a second (every rotation keeps the
 * consumed token for reuse detection). Same contract as the built-in one, no cap, no expiry
 * sweeps (the provider checks `exp` itself).
 */
type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string };

const store = new Map<string, Payload>();
const byGrant = new Map<string, Set<string>>();
const byUid = new Map<string, string>();
const byUserCode = new Map<string, string>();

export class MapAdapter {
  private readonly model: string;
  constructor(model: string) {
    this.model = model;
  }

  private key(id: string): string {
    return `${this.model}:${id}`;
  }

  async upsert(id: string, payload: Payload): Promise<void> {
    const key = this.key(id);
    store.set(key, payload);
    if (payload.grantId) {
      const members = byGrant.get(payload.grantId) ?? new Set<string>();
      members.add(key);
      byGrant.set(payload.grantId, members);
    }
    if (this.model === "Session" && payload.uid) byUid.set(payload.uid, id);
    if (payload.userCode) byUserCode.set(payload.userCode, id);
  }

  async find(id: string): Promise<Payload | undefined> {
    return store.get(this.key(id));
  }

  async findByUid(uid: string): Promise<Payload | undefined> {
    const id = byUid.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode: string): Promise<Payload | undefined> {
    const id = byUserCode.get(userCode);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id: string): Promise<void> {
    const payload = store.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    for (const key of byGrant.get(grantId) ?? []) store.delete(key);
    byGrant.delete(grantId);
  }
}
