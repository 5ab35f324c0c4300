import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { WebhookIds } from '../../src/webhooks/webhook-ids.js';
import { openTestDatabase } from '../helpers/test-database.js';

let db: Database;
let other: Database;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const first = await openTestDatabase('webhook-ids');
  const second = await openTestDatabase('webhook-ids-other');
  ({ db } = first);
  ({ db: other } = second);
  closers.push(first.close, second.close);
});
afterAll(async () => {
  for (const close of closers) await close();
});

describe('WebhookIds', () => {
  it('gives each event id one opaque id, the same from every instance on the database', async () => {
    // Made at once, as two processes starting together would: one key is made, both use it.
    const [a, b] = [new WebhookIds(db.prisma), new WebhookIds(db.prisma)];
    const ids = [1n, 2n, 3n, 1042n, 1043n, 2n ** 63n - 1n];
    const fromA = await Promise.all(ids.map((id) => a.of(id)));
    const fromB = await Promise.all(ids.map((id) => b.of(id)));
    expect(fromB).toEqual(fromA);
    expect(await new WebhookIds(db.prisma).of(1042n)).toBe(fromA[3]);
    for (const id of fromA) expect(id).toMatch(/^evt_[\w-]{22}$/);
    expect(new Set(fromA).size).toBe(ids.length);
    expect(await db.prisma.instanceKey.count()).toBe(1);
  });

  it('tells nothing of the count: neighbouring events share nothing, and another installation names them otherwise', async () => {
    const ids = new WebhookIds(db.prisma);
    const [first, next] = [await ids.of(1042n), await ids.of(1043n)];
    const sharedPrefix = [...first].findIndex((char, index) => char !== next[index]);
    // "evt_" and, by chance, a character or two.
    expect(sharedPrefix).toBeLessThan(7);
    expect(first).not.toContain('1042');
    expect(await new WebhookIds(other.prisma).of(1042n)).not.toBe(first);
  });
});
