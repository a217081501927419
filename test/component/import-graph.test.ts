/**
 * The layering of src/ stays a DAG: no module imports itself back through
 * others (scripts/import-graph.mjs finds the cycles; type-only imports count).
 */
import t from 'tap';
// @ts-expect-error -- a plain ES module script without declarations
import { cycles, importGraph } from '../../scripts/import-graph.mjs';

t.test('src/ has no import cycle', async (t) => {
  const graph = importGraph() as Map<string, string[]>;
  t.ok(graph.size > 50, `the graph was read (${graph.size} modules)`);
  t.same(cycles(graph), [], 'no cycles');
});
