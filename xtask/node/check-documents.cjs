// Checks the published protocol documents with the ecosystem's own parsers: the AsyncAPI
// document with @asyncapi/parser (the parser of AsyncAPI's own tools) and the OpenAPI document
// with @readme/openapi-parser (which validates OpenAPI 3.1 against its JSON Schema and checks
// what the schema cannot, such as duplicate operation ids and undeclared path parameters).
//
// Usage: node check-documents.cjs TOOLS_DIR ASYNCAPI_YAML OPENAPI_YAML
// TOOLS_DIR is where `cargo xtask test` ran `npm ci` (target/tools/node). Every error and
// warning is printed; the exit code is 1 if there was any, 2 if the parsers could not run.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

const [toolsDir, asyncapiPath, openapiPath] = process.argv.slice(2);
if (!toolsDir || !asyncapiPath || !openapiPath) {
  console.error('usage: node check-documents.cjs TOOLS_DIR ASYNCAPI_YAML OPENAPI_YAML');
  process.exit(2);
}
const tools = createRequire(path.join(path.resolve(toolsDir), 'package.json'));

// Spectral's severities, as @asyncapi/parser reports them.
const SEVERITY = ['error', 'warning', 'information', 'hint'];

async function checkAsyncApi(file) {
  const { Parser } = tools('@asyncapi/parser');
  const { document, diagnostics } = await new Parser().parse(fs.readFileSync(file, 'utf8'), { source: file });
  const problems = diagnostics
    .filter((diagnostic) => diagnostic.severity <= 1)
    .map((d) => `${SEVERITY[d.severity]} ${d.code}: ${d.message} (at ${d.path.join('.') || 'the root'})`);
  if (!document && problems.length === 0) {
    problems.push('error: the parser produced no document');
  }
  return problems;
}

async function checkOpenApi(file) {
  const { validate, compileErrors } = tools('@readme/openapi-parser');
  const result = await validate(file);
  const problems = [];
  if (!result.valid || result.warnings.length > 0) {
    problems.push(compileErrors(result));
  }
  return problems;
}

async function main() {
  let failed = false;
  for (const [name, file, check] of [
    ['AsyncAPI (@asyncapi/parser)', asyncapiPath, checkAsyncApi],
    ['OpenAPI (@readme/openapi-parser)', openapiPath, checkOpenApi],
  ]) {
    const problems = await check(file);
    if (problems.length === 0) {
      console.log(`${file}: valid ${name}`);
    } else {
      failed = true;
      console.log(`${file}: ${problems.length} problem(s) found by ${name}:`);
      for (const problem of problems) {
        console.log(`  ${problem}`);
      }
    }
  }
  process.exit(failed ? 1 : 0);
}

main().catch((error) => {
  console.error(`the parsers could not run: ${error && error.stack ? error.stack : error}`);
  process.exit(2);
});
