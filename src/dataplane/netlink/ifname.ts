/**
 * What the kernel accepts as a device name (IFNAMSIZ 16 with the NUL).
 */
export const IFNAME_MAX = 15;

/**
 * True for names the kernel accepts for a device (`dev_valid_name`): 1 to 15
 * bytes, not "." or "..", no "/", ":" or whitespace.
 */
export const isValidIfname = (name: string): boolean =>
  name.length > 0 &&
  Buffer.byteLength(name, 'utf8') <= IFNAME_MAX &&
  name !== '.' &&
  name !== '..' &&
  !/[/:\s]/.test(name);
