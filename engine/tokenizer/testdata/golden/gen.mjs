// gen.mjs writes the golden files that tokenizer_test.go compares against,
// using the pure-JavaScript reference @huggingface/tokenizers (version pinned
// in package.json), and minilm.json, with truncation and padding, using
// the Rust library itself through its Node binding, tokenizers (pinned
// too; @huggingface/tokenizers does not truncate or pad). It also writes
// ../bert-wordpiece.json, the small WordPiece tokenizer the tests use. Run
// from this folder:
//
//	npm ci && node gen.mjs [path/to/shared]
//
// The shared folder defaults to AIASSIST_SHARED, else ../../../../../shared
// (beside the repository).
import { Tokenizer } from "@huggingface/tokenizers";
import rust from "tokenizers";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const shared = resolve(process.argv[2] ?? process.env.AIASSIST_SHARED ?? join(here, "../../../../../shared"));

// A BERT-style WordPiece vocabulary: specials, single characters, ## pieces
// and some whole words and suffixes.
function bertTokenizer() {
  const words = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    ..."!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~".split(""),
    ..."abcdefghijklmnopqrstuvwxyz0123456789".split("").map((c) => "##" + c),
    "the", "quick", "brown", "fox", "jump", "##s", "over", "lazy", "dog", "hello", "world",
    "how", "are", "you", "do", "##ing", "today", "token", "##ization", "##izer", "of", "un",
    "##believ", "##able", "run", "##ning", "play", "##er", "##ed", "cafe", "naive", "resume",
    "and", "is", "it", "what", "with", "text", "in", "##side", "here", "end", "line", "one", "two",
    "code", "def", "return", "if", "for", "func", "main", "print", "##ln", "number", "##s",
    "mixed", "english", "upper", "lower", "case", "word", "space", "##es", "tab", "new",
    "start", "##ed", "multiple", "between", "sure", "say", "right", "they", "we", "i", "s",
    "中", "文", "日", "本", "你", "好", "世", "界", "语", "é", "ü", "##é", "σ", "ς", "##σ", "##ς",
    "bert", "style", "tokens", "at", "as", "an", "a", "to", "ab", "##ab", "##abc", "abc",
    "##ghi", "##def", "##j", "super", "##cal", "##i", "##fra", "##gil", "##istic",
  ];
  const vocab = {};
  for (const w of words) if (!(w in vocab)) vocab[w] = Object.keys(vocab).length;
  const special = (content, id, extra = {}) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...extra,
  });
  const phrase = Object.keys(vocab).length;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      special("[PAD]", 0), special("[UNK]", 1), special("[CLS]", 2), special("[SEP]", 3),
      special("[MASK]", 4, { lstrip: true }),
      { id: phrase, content: "Hello World", single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
    ],
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [2], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [3], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  };
}

const bertPath = join(here, "../bert-wordpiece.json");
writeFileSync(bertPath, JSON.stringify(bertTokenizer(), null, 1) + "\n");

const gpt2Path = join(shared, "models/tiny-random-gpt2-fp32/tokenizer.json");
const phi3Path = join(shared, "models/tokenizers/phi3-tokenizer.json");
const load = (path) => JSON.parse(readFileSync(path, "utf8"));

// Variants of the shared files exercise other configurations without
// committing megabytes: tokenizer_test.go derives the same files (variant()).
const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = LLAMA3.replace("\\p{N}{1,3}", "\\p{N}");
function byteLevelSplit(t, regex) {
  t.normalizer = { type: "NFC" };
  t.pre_tokenizer = {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
  t.model.merges = t.model.merges.map((m) => m.split(" "));
  t.model.ignore_merges = true;
  return t;
}
const tokenizers = {
  gpt2: load(gpt2Path),
  phi3: load(phi3Path),
  bert: load(bertPath),
  // Llama-3's pre-tokenizer, array-form merges, ignore_merges and NFC.
  llama3: byteLevelSplit(load(gpt2Path), LLAMA3),
  // Qwen2's pre-tokenizer.
  qwen2: byteLevelSplit(load(gpt2Path), QWEN2),
  // Newer Llama-2 style: a Metaspace pre-tokenizer instead of normalizers.
  metaspace: Object.assign(load(phi3Path), {
    normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
  }),
};

const corpus = JSON.parse(readFileSync(join(here, "corpus.json"), "utf8"));
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const text = (c) => (c.hex !== undefined ? utf8.decode(Buffer.from(c.hex, "hex")) : c.text);

for (const [name, json] of Object.entries(tokenizers)) {
  const tok = new Tokenizer(json, {});
  const decode = (ids, skip) =>
    ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
  const cases = corpus.map((c) => {
    const s = text(c);
    const ids = tok.encode(s, { add_special_tokens: false }).ids;
    const idsSpecial = tok.encode(s, { add_special_tokens: true }).ids;
    return {
      ...c,
      ids,
      ids_special: idsSpecial,
      decoded: decode(idsSpecial, false),
      decoded_skip: decode(idsSpecial, true),
    };
  });
  writeFileSync(join(here, `${name}.json`), JSON.stringify(cases, null, 1) + "\n");
  console.log(`${name}: ${cases.length} cases`);
}

// minilm.json: the real all-MiniLM-L6-v2 tokenizer, whose file sets
// truncation (128, right) and padding (Fixed 128, right), on the corpus
// and on long texts that the truncation cuts. Each case has the ids and
// attention mask under the file's own settings, the ids with neither
// (ids_raw), under an override (truncation 20 from the left, padding to 24
// on the left: ids_override, mask_override) and padded to a multiple of 8
// (ids_multiple8).
{
  const path = join(shared, "models/tokenizers/minilm-l6-v2-tokenizer.json");
  const long = [
    "Retrieval over a team's documents splits long texts into windows. ".repeat(20),
    Array.from({ length: 300 }, (_, i) => `word${i}`).join(" "),
    "Ünïcödé façade naïve café résumé — 東京 北京 ".repeat(15),
  ];
  const cases = [...corpus.map((c) => ({ ...c })), ...long.map((text) => ({ text }))];
  const withFile = rust.Tokenizer.fromFile(path);
  const raw = rust.Tokenizer.fromFile(path);
  raw.disableTruncation();
  raw.disablePadding();
  const override = rust.Tokenizer.fromFile(path);
  override.setTruncation(20, { direction: "left" });
  override.setPadding({ maxLength: 24, direction: "left", padId: 0, padToken: "[PAD]" });
  const multiple = rust.Tokenizer.fromFile(path);
  multiple.disableTruncation();
  multiple.setPadding({ padToMultipleOf: 8, padId: 0, padToken: "[PAD]" });
  for (const c of cases) {
    const s = text(c);
    const f = await withFile.encode(s);
    const o = await override.encode(s);
    c.ids = f.getIds();
    c.attention_mask = f.getAttentionMask();
    c.ids_raw = (await raw.encode(s)).getIds();
    c.ids_override = o.getIds();
    c.mask_override = o.getAttentionMask();
    c.ids_multiple8 = (await multiple.encode(s)).getIds();
  }
  writeFileSync(join(here, "minilm.json"), JSON.stringify(cases) + "\n");
  console.log(`minilm: ${cases.length} cases`);
}
