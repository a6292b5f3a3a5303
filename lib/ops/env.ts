/**
 * Environment variables, where there are any: in Node, `process.env[name]`; in a browser (no
 * `process` global), always undefined. The one place the browser-safe library reads them, so
 * that the package root bundles for a browser (test/package-root.test.ts checks this).
 */
export function envVar(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}

/** Whether this runs in Node (as opposed to a browser): lib/backend.ts then takes WebGPU from Dawn. */
export function isNode(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return proc?.versions?.node != null;
}
