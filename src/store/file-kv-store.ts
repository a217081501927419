/**
 * The embedded single-node store: MemoryKvStore persisted to one JSON file.
 * Every commit rewrites the file atomically (write a temp file, fsync, rename,
 * fsync the directory), so a crash leaves either the old or the new state.
 * Writes are serialized; a commit resolves only once it is durable.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { MemoryKvStore, type MemoryNode } from './memory-kv-store.js';

interface FileFormat {
  format: 'tsoverlay-kv/1';
  nodes: Record<string, MemoryNode>;
}

export class FileKvStore extends MemoryKvStore {
  private chain: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    initial?: Iterable<[string, MemoryNode]>,
  ) {
    super(initial);
  }

  static async open(file: string): Promise<FileKvStore> {
    await mkdir(dirname(file), { recursive: true });
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text === undefined) return new FileKvStore(file);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new Error(`state file ${file} is not valid JSON; move it away to start empty`, { cause: e });
    }
    const f = parsed as Partial<FileFormat> | null;
    if (!f || f.format !== 'tsoverlay-kv/1' || typeof f.nodes !== 'object' || f.nodes === null) {
      throw new Error(`state file ${file} has an unknown format; move it away to start empty`);
    }
    const entries: Array<[string, MemoryNode]> = [];
    for (const [path, node] of Object.entries(f.nodes)) {
      if (!path.startsWith('/') || typeof node?.data !== 'string' || typeof node.version !== 'number') {
        throw new Error(`state file ${file}: bad entry ${JSON.stringify(path)}`);
      }
      // a file written before creation stamps: its nodes count as the oldest (0)
      const created = typeof node.created === 'number' ? node.created : 0;
      entries.push([path, { data: node.data, version: node.version, created }]);
    }
    return new FileKvStore(file, entries);
  }

  protected override persist(): Promise<void> {
    const text = JSON.stringify({ format: 'tsoverlay-kv/1', nodes: Object.fromEntries(this.snapshot()) } satisfies FileFormat);
    const run = this.chain.then(() => this.writeAtomically(text));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async writeAtomically(text: string): Promise<void> {
    const dir = dirname(this.file);
    const tmp = join(dir, `.${basename(this.file)}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}
