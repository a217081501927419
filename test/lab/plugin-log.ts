// A lab host's plugin log (<dir>/<host>/plugin.log), read back as the lines
// each plugin start wrote: pino JSON lines with their raw text, so a test can
// check what JSON.parse would hide (a repeated key).
import { readFile } from 'node:fs/promises';

export interface PluginLogLine {
  /** Which start of the plugin wrote it (1 = the first; the lab writes a header per start). */
  start: number;
  text: string;
  json: Record<string, unknown>;
}

/** The JSON lines of a plugin log, each with the start that wrote it; other lines are skipped. */
export const readPluginLog = async (path: string): Promise<PluginLogLine[]> => {
  const text = await readFile(path, 'utf8').catch(() => '');
  let start = 0;
  const out: PluginLogLine[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('---- plugin start #')) start = Number(/#(\d+)/.exec(line)?.[1] ?? start + 1);
    if (!line.startsWith('{')) continue;
    try {
      const json = JSON.parse(line) as unknown;
      if (json && typeof json === 'object' && !Array.isArray(json)) out.push({ start, text: line, json: json as Record<string, unknown> });
    } catch {
      // a line cut by a kill, or another writer's output: not the plugin's JSON
    }
  }
  return out;
};
