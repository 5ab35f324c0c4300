import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import fs from 'node:fs';
const dir = fs.mkdtempSync('/tmp/probe-');
const service = await startService(loadConfig({ DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8' }), createLogger('silent'));
const { prisma, status } = service.services;
const tenantId = (await prisma.tenant.create({ data: { name: 'p' } })).id;
async function mk(url: string | null) {
  const r = await prisma.$transaction(async (tx) => {
    const file = await tx.file.create({ data: { tenantId, filename: 'f', mimeType: 'text/plain', size: 1n, sha256: 'x', webhookUrl: url, webhookEvents: url ? ['file.processing','file.completed'] : [] } });
    return status.recordQueued(tx, file, {});
  });
  return r.event.fileId;
}
for (const url of [null, 'http://127.0.0.1:9/x']) {
  const id = await mk(url);
  const t = performance.now();
  for (let i = 1; i <= 500; i++) await status.record({ fileId: id, status: 'PROCESSING', stage: 'CONVERTING', progress: i / 10 });
  console.log(url ? 'with webhook' : 'no webhook', ((performance.now() - t) / 500).toFixed(2), 'ms per record');
}
let t = performance.now();
for (let i = 0; i < 500; i++) await prisma.fileStatus.findFirst();
console.log('findFirst', ((performance.now() - t) / 500).toFixed(3), 'ms');
t = performance.now();
for (let i = 0; i < 500; i++) await prisma.$queryRaw`SELECT 1`;
console.log('select 1', ((performance.now() - t) / 500).toFixed(3), 'ms');
t = performance.now();
for (let i = 0; i < 200; i++) await prisma.$transaction(async (tx) => { await tx.$queryRaw`SELECT 1`; });
console.log('empty interactive tx', ((performance.now() - t) / 200).toFixed(3), 'ms');
await service.stop();
fs.rmSync(dir, { recursive: true, force: true });
