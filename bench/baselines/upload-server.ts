// The upload baseline: a bare node:http server that pipes the request body to a file through a sha256 hash.
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { listenAndAnnounce } from './announce.js';

const directory = process.env.UPLOAD_DIR;
if (!directory) throw new Error('UPLOAD_DIR is required');

const server = http.createServer((req, res) => {
  const file = path.join(directory, randomUUID());
  const hash = createHash('sha256');
  let size = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  pipeline(req, measure, fs.createWriteStream(file)).then(
    () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: file, size, sha256: hash.digest('hex') }));
    },
    (error: Error) => {
      fs.rmSync(file, { force: true });
      res.writeHead(500).end(error.message);
    },
  );
});
server.requestTimeout = 0;
listenAndAnnounce(server);
