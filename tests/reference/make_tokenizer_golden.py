#!/usr/bin/env python3
"""Tokenizer fixtures and goldens for tests/core/test_tokenizers.cpp.

No model hub is needed: each family's tokenizer is trained here by the real
libraries on a generated corpus, with the family's own pipeline, and saved by
transformers, so the files are genuine in every field the engine reads:

  gpt2      byte-level BPE, ByteLevel pre-tokenizer (GPT-2's split)
  llama3    byte-level BPE, Split(Llama-3 regex) + ByteLevel, ignore_merges,
            TemplateProcessing adding <|begin_of_text|>
  smollm    byte-level BPE, Digits(individual) + ByteLevel, ChatML specials first
  qwen2     byte-level BPE, NFC + Split(Qwen2 regex) + ByteLevel, specials
            after the vocabulary, one non-special added token
  llama2    SentencePiece BPE (identity normalizer, dummy prefix, split digits,
            byte fallback) as tokenizer.model, and transformers' conversion of
            it as tokenizer.json (transformers 4's legacy form, as Llama-2 and
            TinyLlama folders have it); plus its GGUF-style vocabulary (gguf_vocab.json)
  llama2-metaspace  the same vocabulary as transformers 5 saves it (Metaspace
            pre-tokenizer with prepend_scheme "first")
  unigram   SentencePiece unigram (identity normalizer) as tokenizer.model only

tests/data/tokenizers/texts.jsonl holds the test texts (one JSON string a
line: English, code, whitespace runs, digits, CJK, emoji, accents, mixed
scripts, contractions, special-token strings, invalid-looking control
characters). Each family folder holds the tokenizer files and golden.json (stored as
golden.json.zlib, see write_golden):

  {"meta": {library versions, reference, options},
   "plain":   [ids of text i: add_special_tokens=False, special strings as text],
   "special": {"i": ids with add_special_tokens=True and special strings parsed,
               only where that is not prefix + plain + suffix},
   "prefix": [...], "suffix": [...]}

"plain" uses the tokenizers library's encode_special_tokens=True (what
transformers' split_special_tokens does); "special" is transformers'
tokenizer(text)["input_ids"]. For the SentencePiece families the script also
checks the sentencepiece library against transformers and records any
disagreement in meta.

With --smollm2 GGUF the script writes, outside the repository
(--smollm2-out), the real SmolLM2-135M-Instruct vocabulary as gguf_vocab.json
and as a tokenizer.json with SmolLM2's own pipeline, and into the repository
the golden ids of that pipeline (smollm2-135m/golden.json.zlib, 58 KB; the
2 MB vocabulary is not committed). The C++ test compares them when
LWB_SMOLLM2_VOCAB names that folder. transformers' GGUF loader
(from_pretrained(dir, gguf_file=...)) is measured against the pipeline too and
recorded in meta: it drops SmolLM2's Digits pre-tokenizer.

Rerun (outside the repository's build; the engine's tests never need Python):
    python3 -m venv /tmp/tokenv
    /tmp/tokenv/bin/pip install tokenizers transformers sentencepiece gguf protobuf
    /tmp/tokenv/bin/python tests/reference/make_tokenizer_golden.py
    # the unigram family needs the SentencePiece generation the engine links (0.1.x):
    python3 -m venv /tmp/tokenv01
    /tmp/tokenv01/bin/pip install 'sentencepiece<0.2' tokenizers transformers protobuf
    /tmp/tokenv01/bin/python tests/reference/make_tokenizer_golden.py --only unigram
Training is deterministic for the library versions recorded in meta; other
versions may learn other merges, which only changes the fixtures.
"""
import argparse
import io
import json
import os
import random
import struct
import sys
import unicodedata
import zlib

import sentencepiece as spm
import tokenizers
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, LlamaTokenizer, PreTrainedTokenizerFast

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

N_TEXTS = 2000
N_TRAIN = 30000
VOCAB = 1500

# ---------------------------------------------------------------- texts

ENGLISH = """the of and to in is was for that on with as by at from his her it an be this are have not had
which or but were they one all their there been has when who will more no if out so said what up its
about into than them can only other new some could time these two may then do first any my now such like
our over man me even most made after also did many before must through back years where much your way
well down should because each just those people how too little state good very make world still own see
men work long get here between both life being under never day same another know while last might us
great old year off come since against go came right used take three language model training adapter rank
matrix weight gradient loss token sentence research paper result data set test learning network layer
fine tuning low quick brown fox jumps lazy dog hello world science history music river mountain city""".split()
NAMES = ["Alice", "Bob", "Zoë", "François", "Müller", "O'Brien", "McDonald", "José", "Nguyễn", "Søren", "İstanbul",
         "Paris", "Tokyo", "São Paulo", "Kraków", "Reykjavík", "Hugging Face", "PyTorch", "GitHub", "LLaMA"]
CONTRACTIONS = ["I'm", "you're", "he's", "she'll", "we've", "they'd", "it's", "don't", "can't", "won't",
                "isn't", "I'M", "YOU'RE", "HE'S", "WE'VE", "THEY'LL", "IT'S", "DON'T", "It'S", "We'Ve",
                "rock'n'roll", "'s", "'t", "''", "'''", "O'Neil's", "you’re", "it’s", "y'all'd've", "'ll'm"]
CODE = [
    "def f(x):\n    return x * 2  # double",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
    "if __name__ == \"__main__\":\n    main()",
    "const x = await fetch(`/api/${id}`);",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "{\"key\": [1, 2.5, -3e10, null, true], \"nested\": {\"a\": \"b\"}}",
    "#include <vector>\nstd::vector<int> v{1, 2, 3};",
    "<div class=\"main\"><p>Hello &amp; welcome</p></div>",
    "git commit -m 'fix: handle \\n in paths' && git push origin HEAD",
    "x = [i**2 for i in range(10) if i % 3 == 0]",
    "fn main() { println!(\"{:?}\", vec![1, 2]); }",
    "$ ls -la | grep '.py' > out.txt 2>&1",
    "\\begin{equation} E = mc^2 \\end{equation}",
    "a += b; c -= d; e *= f; g /= h; i %= j; k <<= 1; l >>= 2; m != n; o == p; q <= r;",
    "    @property\n    def name(self) -> str:\n        return self._name",
    "lambda x: x if x else None  # TODO(user): ...",
    "#!/usr/bin/env bash\nset -euo pipefail\necho \"$HOME\"",
    "matrix[0][1] = -0.0001234; // 1e-9 < eps",
    "https://example.com/path?q=tokenizer&lang=en#section-2",
    "user.name+tag@example.co.uk",
]
SCRIPTS = [
    "你好，世界！今天天气很好。", "机器学习是人工智能的一个分支。", "日本語のテキストとカタカナ、ひらがな。",
    "東京は日本の首都です。", "안녕하세요, 세계! 한국어 문장입니다.", "Привет, мир! Как дела?",
    "Съешь же ещё этих мягких французских булок.", "Γειά σου Κόσμε! Ελληνικά γράμματα.",
    "مرحبا بالعالم! هذه جملة عربية.", "שלום עולם! זה משפט בעברית.", "नमस्ते दुनिया! यह हिंदी है।",
    "สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่าง", "Xin chào thế giới! Tiếng Việt có dấu.", "Grüße aus München: Straße, Maß, Öl.",
    "Ça va? Élève, garçon, cœur, naïve, façade, déjà vu.", "¿Qué tal? Año, niño, señor, ¡olé!",
    "İstanbul'da ığdır, şeker, çiçek, ölü.", "Zażółć gęślą jaźń.", "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Ἐν ἀρχῇ ἦν ὁ λόγος.", "Հայերեն տեքստ", "ქართული ტექსტი", "ᚠᛇᚻ᛫ᛒᛦᚦ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝐛𝐨𝐥𝐝",
]
EMOJI = ["😀", "🤗", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "🇯🇵", "❤️", "1️⃣", "🏳️‍🌈", "🧑🏿‍💻", "✨", "🚀", "🐍", "☕", "👋🏻",
         "😂😂😂", "🙏", "©", "®", "™", "✓", "✗", "→", "⇒", "∑", "∫", "≈", "≠", "∞", "√", "€", "£", "¥", "₹", "₿"]
NUMBERS = ["0", "7", "42", "123", "1234", "12345678", "3.14159", "-273.15", "1,000,000", "2024-01-05",
           "12:30:45", "+1 (555) 010-9999", "0x1F", "1e-9", "99.9%", "٠١٢٣٤٥٦٧٨٩", "１２３", "²³", "½", "Ⅻ",
           "৩৪", "໒໓", "10⁻⁶", "№5", "1st", "2nd", "3rd", "4th", "v2.3.1", "127.0.0.1"]
SPACES = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\n\n\n", " \n", "\n ", "\u00a0",
          "\u3000", "\u2009", "\u202f", "\u0085", "\u2028", "\u200b", "\ufeff", "      ", " \t ", "\u000b", "\u000c"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>",
            "<|start_header_id|>", "<|end_header_id|>", "<s>", "</s>", "<unk>", "<tool_call>", "<|im_start",
            "im_end|>", "<|endoftext", "< s>", "<|EOT_ID|>"]
CONTROL = ["\x01", "\x07", "\x1b[0m", "\x7f", "\u00ad", "\u200d", "\u2060", "\ue000", "\U0010fffd", "\u0301"]


def sentence(rng):
    words = [rng.choice(ENGLISH) for _ in range(rng.randint(3, 14))]
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = rng.choice(NAMES)
    if rng.random() < 0.3:
        words[rng.randrange(len(words))] = rng.choice(CONTRACTIONS)
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", "!", "?", ",", ";", ":", "...", " —", ""])


def fragment(rng):
    kind = rng.random()
    if kind < 0.30:
        return sentence(rng)
    if kind < 0.42:
        return rng.choice(CODE)
    if kind < 0.56:
        return rng.choice(SCRIPTS)
    if kind < 0.64:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4)))
    if kind < 0.74:
        return rng.choice(NUMBERS)
    if kind < 0.80:
        return rng.choice(CONTRACTIONS)
    if kind < 0.88:
        return rng.choice(SPACES)
    if kind < 0.94:
        return rng.choice(SPECIALS)
    return rng.choice(CONTROL)


def mutate(rng, text):
    r = rng.random()
    if r < 0.05:
        return unicodedata.normalize("NFD", text)  # decomposed accents
    if r < 0.08:
        return text.upper()
    if r < 0.10:
        return text * rng.randint(2, 5)
    if r < 0.12:
        c = rng.choice("a!-=. _*#0")
        return text + c * rng.randint(5, 40)
    return text


def make_text(rng):
    parts = [fragment(rng) for _ in range(rng.randint(1, 4))]
    glue = [rng.choice([" ", " ", " ", "", "\n", "  ", "\t"]) for _ in parts]
    text = "".join(p + g for p, g in zip(parts, glue)).rstrip(" ") if rng.random() < 0.8 else "".join(
        p + g for p, g in zip(parts, glue))
    return mutate(rng, text)


def make_texts():
    rng = random.Random(13)
    texts = ["", " ", "  ", "\n", "Hello world", " Hello world", "Hello  world", "hello\n\nworld ",
             "I'm sure you'll see it's done", "1234567890", "3.14159265358979", "中文", "🤗🤗", "e\u0301",
             "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "<s>[INST] hi [/INST]",
             "a" * 300, " " * 100 + "x", "\t\t\tindented\n\t\tless", "ﬁ ﬀ ﬃ Ⅸ ㍿ ①", "x\r\ny\rz"]
    while len(texts) < N_TEXTS:
        texts.append(make_text(rng))
    # A few long texts, as in real documents.
    for _ in range(3):
        texts[rng.randrange(21, N_TEXTS)] = " ".join(make_text(rng) for _ in range(30))
    return texts


def training_corpus():
    rng = random.Random(7)
    corpus = [make_text(rng) for _ in range(N_TRAIN)]
    corpus += [" ".join(sentence(rng) for _ in range(8)) for _ in range(N_TRAIN // 3)]
    return corpus


# ---------------------------------------------------------------- byte-level families

def train_byte_level(corpus, normalizer, pre_tokenizer, specials, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def byte_level_families(corpus):
    fams = {}
    # GPT-2: <|endoftext|> is bos, eos and unk.
    tok = train_byte_level(corpus, None, pre_tokenizers.ByteLevel(add_prefix_space=False), ["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fams["gpt2"] = (tok, dict(bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"))

    split = lambda pattern: pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])

    # Llama-3: the specials come after the vocabulary, bos is added by the template.
    tok = train_byte_level(corpus, None, split(LLAMA3_PATTERN), [], ignore_merges=True)
    llama3_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                       "<|eot_id|>"]
    tok.add_special_tokens(llama3_specials)
    bot = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bot)])])
    fams["llama3"] = (tok, dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"))

    # SmolLM: <|endoftext|>, <|im_start|>, <|im_end|> are ids 0, 1, 2.
    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok = train_byte_level(corpus, None, pre, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fams["smollm"] = (tok, dict(bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<|endoftext|>",
                                pad_token="<|im_end|>"))

    # Qwen2: NFC first; specials after the vocabulary; one added token that is not special.
    tok = train_byte_level(corpus, normalizers.NFC(), split(QWEN2_PATTERN), [])
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.add_tokens([tokenizers.AddedToken("<tool_call>", special=False, normalized=False)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    fams["qwen2"] = (tok, dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"))
    return fams


def save_hf_folder(tok, special, folder):
    os.makedirs(folder, exist_ok=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special)
    fast.save_pretrained(folder)
    for extra in ("chat_template.jinja",):
        path = os.path.join(folder, extra)
        if os.path.exists(path):
            os.remove(path)


# ---------------------------------------------------------------- SentencePiece families

def train_spm(corpus, model_type, **options):
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=out, model_type=model_type,
                                   vocab_size=VOCAB, minloglevel=2, num_threads=2, **options)
    return out.getvalue()


def llama2_family(corpus, folder, metaspace_folder):
    """Llama-2's trainer options (identity normalizer, dummy prefix, digits
    split, whitespace-only pieces, byte fallback; unk/bos/eos 0/1/2), saved as
    tokenizer.model and as the tokenizer.json Llama-2 and TinyLlama folders
    carry (transformers 4's legacy LlamaConverter: Prepend + Replace
    normalizer, Strip decoder, "<s> $A" template). metaspace_folder gets
    transformers 5's LlamaTokenizer of the same vocabulary instead (Metaspace
    pre-tokenizer, prefix only at the start)."""
    model = train_spm(corpus, "bpe", normalization_rule_name="identity", add_dummy_prefix=True,
                      remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True,
                      byte_fallback=True, character_coverage=0.9995, max_sentencepiece_length=16,
                      unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    for f in (folder, metaspace_folder):
        os.makedirs(f, exist_ok=True)
        with open(os.path.join(f, "tokenizer.model"), "wb") as out:
            out.write(model)
    from tokenizers.models import BPE
    from transformers.convert_slow_tokenizer import SentencePieceExtractor
    parts = SentencePieceExtractor(os.path.join(folder, "tokenizer.model")).extract(BPE)
    vocab, merges = parts["vocab"], parts["merges"]

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    save_hf_folder(tok, dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>"), folder)

    hf5 = LlamaTokenizer(vocab=vocab, merges=merges)
    hf5.save_pretrained(metaspace_folder)

    sp = spm.SentencePieceProcessor(model_proto=model)
    types = []
    for i in range(sp.get_piece_size()):
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 5 if sp.is_unused(i)
                     else 6 if sp.is_byte(i) else 1)
    gguf = dict(model="llama", tokens=[sp.id_to_piece(i) for i in range(sp.get_piece_size())], token_types=types,
                scores=[sp.get_score(i) for i in range(sp.get_piece_size())], bos=sp.bos_id(), eos=sp.eos_id(),
                unk=sp.unk_id(), add_bos=True, add_space_prefix=True)
    with open(os.path.join(folder, "gguf_vocab.json"), "w", encoding="utf-8") as f:
        json.dump(gguf, f, ensure_ascii=False, separators=(",", ":"))
    return sp


def unigram_family(corpus, folder):
    # The identity normalizer keeps the file small (nmt_nfkc's table is 240 KB).
    model = train_spm(corpus, "unigram", character_coverage=0.9995, normalization_rule_name="identity")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.model"), "wb") as f:
        f.write(model)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "add_eos_token": True}, f, indent=2)
    return spm.SentencePieceProcessor(model_proto=model)


# ---------------------------------------------------------------- goldens

def goldens(hf, texts):
    backend = hf.backend_tokenizer
    backend.encode_special_tokens = True
    plain = [backend.encode(t, add_special_tokens=False).ids for t in texts]
    backend.encode_special_tokens = False
    empty = hf("", add_special_tokens=True)["input_ids"]
    # Which of the empty encoding is prefix and which suffix: encode "x" to see.
    x = hf("x", add_special_tokens=False)["input_ids"]
    wx = hf("x", add_special_tokens=True)["input_ids"]
    k = next(i for i in range(len(wx)) if wx[i:i + len(x)] == x)
    prefix, suffix = wx[:k], wx[k + len(x):]
    assert prefix + suffix == empty or not empty and not prefix and not suffix, (prefix, suffix, empty)
    special = {}
    for i, t in enumerate(texts):
        ids = hf(t, add_special_tokens=True)["input_ids"]
        if ids != prefix + plain[i] + suffix:
            special[str(i)] = ids
    return plain, special, prefix, suffix


def write_golden(folder, meta, plain, special, prefix, suffix):
    """golden.json, zlib-compressed behind a 4-byte big-endian length (Qt's
    qCompress format, which the test reads with qUncompress): the ids compress
    ~5x. Read it with json.loads(zlib.decompress(data[4:]))."""
    text = ('{"meta": ' + json.dumps(meta, ensure_ascii=False) + ',\n'
            '"prefix": ' + json.dumps(prefix) + ', "suffix": ' + json.dumps(suffix) + ',\n'
            '"plain": [\n' + ",\n".join(json.dumps(p, separators=(",", ":")) for p in plain) + '],\n'
            '"special": {\n' + ",\n".join(f'"{k}":' + json.dumps(v, separators=(",", ":"))
                                           for k, v in special.items()) + '}}\n').encode()
    with open(os.path.join(folder, "golden.json.zlib"), "wb") as f:
        f.write(struct.pack(">I", len(text)) + zlib.compress(text, 9))


def versions():
    return {"python": sys.version.split()[0], "tokenizers": tokenizers.__version__,
            "transformers": transformers.__version__, "sentencepiece": spm.__version__}


def smollm2(gguf_path, texts, out, golden_dir):
    """The real SmolLM2 vocabulary from its GGUF, and transformers' ids for it."""
    from gguf import GGUFReader
    reader = GGUFReader(gguf_path)

    def field(name):
        f = reader.fields.get(name)
        if f is None:
            return None
        if len(f.data) == 1 and f.types[0] != 9:  # a scalar
            v = f.parts[f.data[0]]
            return bytes(v).decode() if f.types[0] == 8 else v.tolist()[0]
        vals = [f.parts[i] for i in f.data]
        return [bytes(v).decode() if f.types[-1] == 8 else v.tolist()[0] for v in vals]

    g = dict(model=field("tokenizer.ggml.model"), pre=field("tokenizer.ggml.pre"),
             tokens=field("tokenizer.ggml.tokens"), token_types=field("tokenizer.ggml.token_type"),
             merges=field("tokenizer.ggml.merges"), bos=field("tokenizer.ggml.bos_token_id"),
             eos=field("tokenizer.ggml.eos_token_id"), unk=field("tokenizer.ggml.unknown_token_id"),
             pad=field("tokenizer.ggml.padding_token_id"), add_bos=field("tokenizer.ggml.add_bos_token"))
    g = {k: v for k, v in g.items() if v is not None}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gguf_vocab.json"), "w", encoding="utf-8") as f:
        json.dump(g, f, ensure_ascii=False)
    # The reference is SmolLM2's own pipeline (its tokenizer.json: Digits
    # with individual digits, then ByteLevel; what llama.cpp's "smollm" split
    # reproduces) rebuilt by the tokenizers library over the GGUF's vocabulary.
    # transformers' GGUF loader is measured against it too: it drops the
    # Digits step, so " ①" or " Ⅻ" stay one piece there.
    vocab = {t: i for i, t in enumerate(g["tokens"])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in g["merges"]]))
    tok.add_special_tokens([t for t, ty in zip(g["tokens"], g["token_types"]) if ty == 3])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=g["tokens"][g["bos"]],
                                 eos_token=g["tokens"][g["eos"]], unk_token=g["tokens"][g["unk"]])
    hf.save_pretrained(out)  # a tokenizer.json folder for bench_tokenizer
    plain, special, prefix, suffix = goldens(hf, texts)
    loader = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path))
    differ = [i for i, t in enumerate(texts) if loader(t, add_special_tokens=False)["input_ids"] != plain[i]]
    os.makedirs(golden_dir, exist_ok=True)
    write_golden(golden_dir, {"family": "smollm2-135m", "reference": "tokenizers, SmolLM2's pipeline over the GGUF vocabulary",
                       "transformers_gguf_loader_differs_on": differ, **versions()}, plain, special, prefix, suffix)
    print(f"smollm2: {len(g['tokens'])} tokens, {len(g['merges'])} merges -> {out}; transformers' GGUF loader "
          f"differs on {len(differ)} texts")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "tokenizers"))
    ap.add_argument("--smollm2", help="SmolLM2-135M-Instruct GGUF: write (only) its vocabulary and goldens")
    ap.add_argument("--smollm2-out", default="/tmp/lwb-smollm2-vocab")
    ap.add_argument("--only", choices=["unigram"], help="make only this family")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    texts = make_texts()
    with open(os.path.join(out, "texts.jsonl"), "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    if args.smollm2:
        smollm2(args.smollm2, texts, args.smollm2_out, os.path.join(out, "smollm2-135m"))
        return

    corpus = training_corpus()
    if args.only != "unigram":
        for name, (tok, special) in byte_level_families(corpus).items():
            folder = os.path.join(out, name)
            save_hf_folder(tok, special, folder)
            hf = AutoTokenizer.from_pretrained(folder)
            plain, spec, prefix, suffix = goldens(hf, texts)
            write_golden(folder, {"family": name, "reference": "transformers AutoTokenizer", **versions()},
                         plain, spec, prefix, suffix)
            print(f"{name}: {len(hf)} tokens, {sum(map(len, plain))} ids, {len(spec)} special cases")

        folder, metaspace = os.path.join(out, "llama2"), os.path.join(out, "llama2-metaspace")
        sp = llama2_family(corpus, folder, metaspace)
        for f in (folder, metaspace):
            hf = AutoTokenizer.from_pretrained(f)
            plain, spec, prefix, suffix = goldens(hf, texts)
            disagree = [i for i, t in enumerate(texts) if sp.encode(t) != plain[i]]
            write_golden(f, {"family": os.path.basename(f), "reference": "transformers AutoTokenizer (tokenizer.json)",
                             "sentencepiece_disagrees_on": disagree, **versions()}, plain, spec, prefix, suffix)
            print(f"{os.path.basename(f)}: {len(hf)} tokens, {len(spec)} special cases, sentencepiece and "
                  f"transformers disagree on {len(disagree)} texts")

    # SentencePiece 0.2 breaks ties between equal-scoring unigram segmentations
    # differently from 0.1 ("555" as 5|55 against 55|5, on 101 of the texts),
    # and the engine runs Debian 12's libsentencepiece 0.1.97: this family's
    # golden comes from a 0.1.x venv (--only unigram there).
    if spm.__version__.startswith("0.1."):
        folder = os.path.join(out, "unigram")
        sp = unigram_family(corpus, folder)
        plain = [sp.encode(t) for t in texts]
        write_golden(folder, {"family": "unigram", "reference": "sentencepiece", **versions()},
                     plain, {}, [], [sp.eos_id()])
        print(f"unigram: {sp.get_piece_size()} tokens")
    else:
        print(f"unigram: skipped, sentencepiece {spm.__version__} is not 0.1.x (rerun with --only unigram in a venv "
              "with 'sentencepiece<0.2')")


if __name__ == "__main__":
    main()
