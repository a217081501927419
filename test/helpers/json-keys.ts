/**
 * The top-level keys of a JSON object's text, in order and with repeats — what
 * JSON.parse hides (it keeps the last of a repeated key). For tests that check
 * log lines (src/log.test.ts, the plugin logs of integration runs).
 */
export const topLevelKeys = (text: string): string[] => {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && text[j + 1] === ':') keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
};

/** Each key written more than once at the top level of a JSON object's text. */
export const repeatedKeys = (text: string): string[] => [...new Set(topLevelKeys(text).filter((k, i, all) => all.indexOf(k) !== i))];
