// Talk to a plugin socket directly, the way dockerd does (POST, no
// Content-Type, Accept v1.2) -- or deliberately not, for garbage-input tests.
import { request } from 'node:http';

export interface PluginResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed body, or undefined if it is not JSON. */
  json: unknown;
}

export interface PluginRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

export function pluginRequest(
  socketPath: string,
  path: string,
  body?: string | Buffer,
  opts: PluginRequestOptions = {},
): Promise<PluginResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    const req = request(
      {
        socketPath,
        path,
        method: opts.method ?? 'POST',
        headers: {
          Accept: 'application/vnd.docker.plugins.v1.2+json',
          'Content-Length': String(payload.length),
          ...opts.headers,
        },
        timeout: opts.timeoutMs ?? 5000,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${opts.timeoutMs ?? 5000} ms: POST ${path} on ${socketPath}`)));
    req.on('error', reject);
    req.end(payload);
  });
}
