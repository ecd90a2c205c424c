// Validate a .glb/.gltf with the Khronos glTF validator; print the JSON report on stdout.
// Usage: node tests/actors/reconstruct3d/validate_gltf.mjs FILE
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import validator from "gltf-validator";

const file = process.argv[2];
if (!file) {
  console.error("usage: validate_gltf.mjs FILE");
  process.exit(2);
}
const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), {
  uri: basename(file),
  maxIssues: 100,
  externalResourceFunction: () => Promise.reject(new Error("external resources are not allowed")),
});
console.log(JSON.stringify(report));
