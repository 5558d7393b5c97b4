// Builds the SDK's test modules: tests/echo.ts -> build/echo.wasm, tests/probe.ts -> build/probe.wasm,
// with the flags plugins get from plugin.asconfig.json (the abort path differs: here the SDK is
// not under node_modules). Skips a module whose output is newer than every source.
import asc from "assemblyscript/asc";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
process.chdir(root);
const flags = [
  "--runtime", "minimal",
  "--optimizeLevel", "3", "--shrinkLevel", "0",
  "--use", "abort=assembly/host/weirAbort",
];
const newest = ["assembly", "tests"]
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith(".ts")).map((f) => `${d}/${f}`))
  .concat(["build.mjs"])
  .reduce((t, f) => Math.max(t, statSync(f).mtimeMs), 0);
const force = process.argv.includes("--force");
mkdirSync("build", { recursive: true });
for (const name of ["echo", "probe"]) {
  const out = `build/${name}.wasm`;
  let built = 0;
  try { built = statSync(out).mtimeMs; } catch {}
  if (!force && built > newest) continue;
  const { error, stderr } = await asc.main([`tests/${name}.ts`, "-o", out, ...flags]);
  if (error) {
    console.error(stderr.toString());
    console.error(`build of ${out} failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`built ${out}`);
}
