import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** The first-start key, when this start created it. */
  apiKey: string | undefined;
  lines: string[];
  exited: Promise<number | null>;
}

/**
 * Runs the service as `npm start` does, in its own process, and waits until it listens (or, for
 * ROLE=worker, which does not listen, until its worker starts).
 */
export async function spawnServer(env: Record<string, string>, timeoutMs = 30_000): Promise<ServerProcess> {
  const readyMessage = env.ROLE === 'worker' ? 'worker started' : 'listening';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let apiKey: string | undefined;
  const port = await new Promise<number | undefined>((resolve, reject) => {
    // A server that never listened is killed, not left running past the test that gave up on it.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not listen:\n${lines.join('\n')}`));
    }, timeoutMs);
    exited.then(() => reject(new Error(`server exited:\n${lines.join('\n')}`)));
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        const entry = (() => {
          try {
            return JSON.parse(line);
          } catch {
            return {};
          }
        })();
        if (entry.apiKey) apiKey = entry.apiKey;
        if (entry.msg === readyMessage) {
          clearTimeout(timer);
          resolve(entry.port);
        }
      });
    }
  });
  return { child, url: port ? `http://127.0.0.1:${port}` : '', apiKey, lines, exited };
}

/** Runs `npm run cli -- …` as a process; resolves with its exit code and output. */
export async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const [code] = await once(child, 'exit');
  return { code: code as number | null, stdout, stderr };
}
