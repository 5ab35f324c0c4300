import { createCipheriv, randomBytes, type Cipher } from 'node:crypto';
import type { PrismaClient } from '../db/database.js';

const KEY_NAME = 'webhook-id';

/**
 * The `webhook-id` of a status event: its id, enciphered with a key of this installation. The
 * ids count every tenant's changes; sent as they are, each receiver would learn how many status
 * changes the whole service made between two of its requests. Enciphered, an id is as stable (one
 * event, one id, on every attempt, in every process) and as unique (a block cipher maps distinct
 * ids to distinct blocks), and tells nothing. AES on one 16-byte block: the event id in its last
 * eight bytes, the block in base64url, 22 characters.
 */
export class WebhookIds {
  private cipher: Promise<Cipher> | undefined;

  constructor(private readonly prisma: PrismaClient) {}

  async of(eventId: bigint): Promise<string> {
    const block = Buffer.alloc(16);
    block.writeBigUInt64BE(eventId, 8);
    // ECB enciphers each block on its own: one cipher serves every id.
    return `evt_${(await this.keyed()).update(block).toString('base64url')}`;
  }

  /** The first process to ask makes the key; the others, and every later start, read it. */
  private keyed(): Promise<Cipher> {
    if (!this.cipher) {
      this.cipher = this.readKey();
      // A failed read is not kept: the next id reads again.
      this.cipher.catch(() => (this.cipher = undefined));
    }
    return this.cipher;
  }

  private async readKey(): Promise<Cipher> {
    await this.prisma.instanceKey.createMany({ data: [{ name: KEY_NAME, key: randomBytes(16) }], skipDuplicates: true });
    const { key } = await this.prisma.instanceKey.findUniqueOrThrow({ where: { name: KEY_NAME } });
    const cipher = createCipheriv('aes-128-ecb', key, null);
    cipher.setAutoPadding(false);
    return cipher;
  }
}
