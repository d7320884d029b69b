#!/usr/bin/env python3
"""Cross-check data for the Swift tokenizer against the Python `tiktoken` package.

  crosscheck.py cases OUT_FILE [--seed N]   write test cases + tiktoken's expected ids
  crosscheck.py probes OUT_DIR [--seed N]  write piece-boundary probes (custom vocabularies)
  crosscheck.py chat                       print cookbook num_tokens_from_messages counts
  crosscheck.py patterns                   print each encoding's pat_str (as tiktoken-check patterns)
  crosscheck.py corpus OUT_FILE [--mb 5]   write an English prose benchmark corpus
  crosscheck.py mixed-corpus OUT_FILE [--mb 5]  multilingual text + code (extra benchmark)
  crosscheck.py unicode SWIFT_TABLE        compare `tiktoken-check unicode` output with
                                           the Unicode 16.0 database (PyPI unicodedata2==16.0.0)

tiktoken must find its vocabulary files offline: run with
TIKTOKEN_CACHE_DIR=<dir made by fetch-vocab.sh>/tiktoken-cache.

Case file format (one case per line, read by `tiktoken-check compare`):
  encoding \t mode \t hex(UTF-8 text) \t space-separated token ids
mode "o" = encode_ordinary(text), "a" = encode(text, allowed_special="all").
"""
import random
import sys
import unicodedata

ENCODINGS = ["cl100k_base", "o200k_base"]

# --------------------------------------------------------------------------------------
# Building blocks

MULTILINGUAL = [
    # Vietnamese (precomposed and with combining marks)
    "Tiếng Việt là ngôn ngữ chính thức của Việt Nam. Xin chào, bạn có khỏe không?",
    "Những người đã đến Hà Nội đều muốn quay lại; phở bò và bún chả rất ngon!",
    unicodedata.normalize("NFD", "Tiếng Việt có sáu thanh điệu: ngang, huyền, sắc, hỏi, ngã, nặng."),
    "ĐẠI HỌC QUỐC GIA HÀ NỘI — Trường Đại học Khoa học Tự nhiên",
    # CJK
    "中华人民共和国是世界上人口最多的国家之一。北京是首都，上海是最大的城市。",
    "日本語の文章です。ひらがな、カタカナ、漢字が混ざっています。東京タワーは333メートル。",
    "ｶﾀｶﾅ（半角）と全角ＡＢＣ１２３、句読点。「引用」『二重』",
    "한국어 문장입니다. 서울특별시는 대한민국의 수도입니다! 안녕하세요?",
    "𠀀𠀁𠀂 𪚥 𩸽 CJK Extension B characters: 𠮷野家",
    # Arabic, Hebrew, Persian (RTL, with harakat and tatweel)
    "اللغة العربية هي لغة رسمية في أكثر من عشرين دولة. مَرْحَبًا بِكُمْ! ١٢٣٤٥٦٧٨٩٠",
    "עברית היא שפה שמית. שָׁלוֹם עֲלֵיכֶם, מה שלומך? 2024",
    "زبان فارسی ـــ ۱۲۳۴۵۶۷۸۹۰ کتاب‌ها (با نیم‌فاصله)",
    # Indic and Southeast Asian (lots of combining marks)
    "हिन्दी भारत की राजभाषा है। नमस्ते, आप कैसे हैं? १२३४५",
    "বাংলা ভাষা বিশ্বের সপ্তম বৃহত্তম ভাষা। তামিল: தமிழ் மொழி",
    "ภาษาไทยเป็นภาษาราชการของประเทศไทย สวัสดีครับ ๑๒๓",
    "ພາສາລາວ ແລະ ភាសាខ្មែរ និង မြန်မာဘာသာ",
    # European
    "Größenwahn ist keine Straße; Fußgänger müssen weiß-blau ÄÖÜ äöü ẞ tragen.",
    "L'élève a dû aller à l'hôpital où l'on parle français, n'est-ce pas ?",
    "İstanbul'da ılık bir gün; IĞDIR ŞİŞLİ çğıöşü",
    "Русский язык — один из восточнославянских языков. Ёлка! ЁЖИК, ёжик.",
    "Ελληνικά: Η γλώσσα ΟΔΥΣΣΕΥΣ και ς σ Σ, ΐΰ.",
    "Ǆǅǆ ǈ ǋ titlecase digraphs; ﬁ ﬂ ligatures; Å Ω K unit signs",
    "Ꭰ Cherokee ᏣᎳᎩ, Ge'ez ሰላም, Armenian Բարեւ, Georgian გამარჯობა",
    # Math, symbols
    "∀x∈ℝ: x² ≥ 0 ⇒ √(x²) = |x|; ∑ᵢ₌₁ⁿ i = n(n+1)/2 ≈ ½n² ⅓ ⅔ ¼",
    "Roman numerals Ⅰ Ⅱ Ⅲ Ⅳ ⅰⅱⅲ, circled ① ② ⑳, superscripts ¹²³, fullwidth ０１２３",
    "©®™ §¶ †‡ •… ‰ ′″ ‹› «» „“ ”‚‘’ ¡¿ ¢£¥€₹₽₿",
]

EMOJI = [
    "I ❤️ emoji 😀😃😄😁 and 👍🏻👍🏼👍🏽👍🏾👍🏿 skin tones",
    "Family: 👨‍👩‍👧‍👦 couple 👩‍❤️‍💋‍👨 technologist 🧑🏽‍💻 rainbow flag 🏳️‍🌈",
    "Flags 🇺🇸🇬🇧🇯🇵🇻🇳🇸🇦 keycaps 1️⃣ #️⃣ *️⃣ and 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "emoji+text:🔥hot🔥 ✨sparkle✨ ☕️coffee 🇫🇷français 🐈‍⬛",
    "🤷‍♀️🤦🏽‍♂️🧜🏿‍♀️ zero width joiner\u200dsequence and ZWNJ\u200cnon-joiner",
    "😀" * 30,
    "👨‍👩‍👧‍👦" * 7,
]

CODE = [
    'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nprint(fib(100))\n',
    "import Foundation\n\nstruct Point: Hashable, Sendable {\n    var x: Double\n    var y: Double\n}\n\nlet p = Point(x: 1.5, y: -2e10)\nprint(\"\\(p)\") // prints Point(x: 1.5, y: -2e+10)\n",
    "function debounce(fn, ms = 300) {\r\n  let t;\r\n  return (...args) => {\r\n    clearTimeout(t);\r\n    t = setTimeout(() => fn.apply(this, args), ms);\r\n  };\r\n}\r\n",
    "#include <stdio.h>\n\nint main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; ++i) {\n\t\tprintf(\"%d: %s\\n\", i, argv[i]);\n\t}\n\treturn 0;\n}\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n    let s = &v[1..=3];\n}\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tch := make(chan int, 3)\n\tgo func() { ch <- 42 }()\n\tfmt.Println(<-ch)\n}\n",
    "SELECT u.id, COUNT(*) AS n\nFROM users u\nJOIN orders o ON o.user_id = u.id\nWHERE o.created_at >= '2024-01-01'\nGROUP BY u.id\nHAVING n > 10;\n",
    "<!DOCTYPE html>\n<html lang=\"en\">\n  <head><meta charset=\"utf-8\"><title>Test &amp; more</title></head>\n  <body><p class='x'>Hello,&nbsp;world!</p></body>\n</html>\n",
    '{\n  "name": "tokenizer",\n  "version": "1.0.0",\n  "tags": ["a", "b"],\n  "nested": {"k": null, "pi": 3.14159, "big": 12345678901234567890}\n}\n',
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.txt; do\n  wc -l \"$f\" | awk '{print $1}' >> /tmp/out.log 2>&1\ndone\n",
    "    \n\n\t\t// TODO(someone): fix this!!!\n/* block\n * comment */\n    x += 1;   \n",
    "a=b+c*d/e-f%g^h|i&j~k<l>m==n!=o<=p>=q&&r||s<<t>>u",
    "https://example.com/path/to/page?query=1&foo=bar#frag and C:\\Windows\\System32\\drivers\\etc\\hosts",
    "//////////////// ---------------- ================ ################ ****************",
    "\\begin{equation} E = mc^2 \\end{equation} % LaTeX $\\alpha_{i}^{2}$",
]

WHITESPACE = [
    " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", "\r\n\r\n", " \n", "\n ", " \n ",
    "\t\n\t", "  \n\n  ", "\u00a0", "\u2000\u2001\u2002", "\u3000", "\u2028", "\u2029",
    "\u0085", "\u1680", "\u202f", "\u205f", "\u000b", "\u000c", "\u001c\u001d\u001e\u001f",
    "\ufeff", "\u200b", "\u180e", "\u200d",
]

CONTRACTIONS = [
    "I'm sure you're right, but we've said they'll go and he'd know it's true.",
    "DON'T SHOUT! I'M NOT DEAF; YOU'RE LOUD, WE'VE HEARD, THEY'LL STOP, HE'D AGREE.",
    "Don'T mIx CaSeS: it'S, WE'Ve, they'lL, I'D, she'M, You'Re",
    "'s 't 'm 'd 'll 've 're 'S 'T 'M 'D 'LL 'VE 'RE 'Ll 'lL 'vE 'Re",
    "rock'n'roll y'all o'clock ma'am ''s '''t 's's 'x 'll've",
    "the dog's, the dogs' bone, James' car, it'ſ long-s, ſ ſ 'ſ'S",
    "’s curly ’re apostrophes don’t match ‘quoted’",
    "'123 '1st ' s ' ll 'l 'v 'r",
]

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "123456", "1234567", "3.14159265358979",
    "1,234,567.89", "1.234.567,89", "2024-06-30T12:34:56Z", "+1 (555) 123-4567",
    "0xDEADBEEF 0b1010 0o777 1e-10 6.022e23", "version 1.2.3-rc.4+build.5",
    "٠١٢٣٤٥٦٧٨٩ ۰۱۲۳ ०१२३ ০১২৩ ๐๑๒๓ ０１２３４５ 𝟎𝟏𝟐𝟑 ⁰¹²³⁴ ₀₁₂ ½¾ ⅕",
    "Ⅻ ⅻ 〇〡〢 𒐀 ፩፪፫",
]

SPECIAL_TEXT = [
    "<|endoftext|>", "<|endofprompt|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "Hello<|endoftext|>World", " <|endoftext|> ", "<|endoftext|><|endoftext|>",
    "prefix text <|fim_prefix|>def f():<|fim_suffix|>    return 1<|fim_middle|>",
    "<|endoftext", "endoftext|>", "<|endofprompt|>\n\n  ", "  \n<|endoftext|>x",
    "<||>", "<|im_start|>user<|im_end|>", "<|startoftext|>", "<<|endoftext|>>",
    "end   <|endoftext|>   start", "emoji 😀<|endofprompt|>😀", "a\r\n<|endoftext|>\r\nb",
]

ENGLISH = (
    "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of "
    "times; the lamps were being lit, and the river ran brown and slow beneath the old stone "
    "bridge. \"Where are you going?\" she asked. He didn't answer — he simply walked on, counting "
    "the 1,024 paces between the mill and the church, as he'd done every evening since 1987."
)

FRAGMENTS = (
    MULTILINGUAL + EMOJI + CODE + WHITESPACE + CONTRACTIONS + NUMBERS + SPECIAL_TEXT
    + ENGLISH.split(" ")
    + list("aA1 \t\n\r'\"/\\.,;:!?-_()[]{}<>|@#$%^&*+=~`")
    + ["\u0301", "\u0300\u0323", "e\u0301", "\u0915\u094d\u0937", "\u093f", "Ⅳ", "ʰ", "ǅ", "ꞈ",
       "\u05b4", "\u0670", "\u1ab0", "\u20dd", "\u0488", "ſ", "K", "İ", "ı", "ß", "ẞ"]
)

# Scalars worth mixing into random strings: one per interesting category, plus ranges.
INTERESTING_RANGES = [
    (0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF),
    (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x1AB0, 0x1AFF),
    (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x2070, 0x218F), (0x2190, 0x23FF), (0x2460, 0x24FF),
    (0x2E80, 0x2FDF), (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xA640, 0xA7FF), (0xAC00, 0xAD00),
    (0xFB00, 0xFB4F), (0xFE00, 0xFE6F), (0xFF00, 0xFFEF), (0x10000, 0x1007F), (0x10400, 0x1044F),
    (0x1D400, 0x1D7FF), (0x1F300, 0x1FAFF), (0x20000, 0x2A6DF), (0xE0000, 0xE007F),
    (0xF0000, 0xF00FF), (0x10FF00, 0x10FFFF),
]


def random_scalar(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.5:
        lo, hi = rng.choice(INTERESTING_RANGES)
        c = rng.randint(lo, hi)
    elif r < 0.7:
        c = rng.randint(0, 0x7F)
    else:
        c = rng.randint(0, 0x10FFFF)
    if 0xD800 <= c <= 0xDFFF:  # surrogates cannot occur in Swift strings
        c = 0xFFFD
    return chr(c)


def random_unicode(rng: random.Random, n: int) -> str:
    return "".join(random_scalar(rng) for _ in range(n))


def fuzz_mix(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.55:
            f = rng.choice(FRAGMENTS)
            if len(f) > 40 and rng.random() < 0.5:
                a = rng.randrange(len(f))
                f = f[a:a + rng.randint(1, 40)]
            parts.append(f)
        elif r < 0.8:
            parts.append(random_unicode(rng, rng.randint(1, 8)))
        elif r < 0.9:
            parts.append(rng.choice(WHITESPACE) * rng.randint(1, 5))
        else:
            parts.append(str(rng.randint(0, 10 ** rng.randint(1, 25))))
    return "".join(parts)


def long_pieces(rng: random.Random):
    """Pieces longer than the Swift merge's linear/heap threshold (128 bytes)."""
    out = []
    for n in (127, 128, 129, 200, 500, 1500):
        out.append("a" * n)
        out.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)))
        out.append("".join(rng.choice("aeiouAEIOUnrst") for _ in range(n)))
        out.append("=" * n)
        out.append("".join(rng.choice("!@#$%^&*()_+-=[]{};:,.<>/?|~`") for _ in range(n)))
        out.append(" " * n + "x")
        out.append("\n" * n)
        out.append("".join(rng.choice("中文字符汉语言") for _ in range(n // 3)))
        out.append("ab" * (n // 2))
        out.append("😀" * (n // 4))
        out.append("".join(rng.choice("абвгдеёжзийклмнопрстуфхцчшщъыьэюя") for _ in range(n // 2)))
        out.append("ế" * (n // 3) + "Ế" * 5)
        out.append("".join(rng.choice("\u0300\u0301\u0302\u0303\u0323") for _ in range(n // 2)))
    return out


def generate_cases(seed: int):
    rng = random.Random(seed)
    cases = []
    cases += MULTILINGUAL + EMOJI + CODE + WHITESPACE + CONTRACTIONS + NUMBERS + SPECIAL_TEXT
    cases.append(ENGLISH)
    cases.append("")
    # U+0295 is Ll in Unicode 16 (tiktoken's regex tables) but Lo in Unicode 17.
    cases += ["\u0295Ab", "x\u0295Ab", " \u0295\u0295ABc", "\u0295", "A\u0295b"]
    # Whitespace combinations in context (exercise \s++$, \s*[\r\n], \s+(?!\S)).
    ws_atoms = [" ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u0085", "\u000b"]
    for _ in range(300):
        run = "".join(rng.choice(ws_atoms) for _ in range(rng.randint(1, 8)))
        left = rng.choice(["", "a", "Hello", "1", "!", "é", "中", "😀", "'s", "\u0301"])
        right = rng.choice(["", "a", "World", "2", "?", "É", "文", "👍", "'T", "\u0301", "/"])
        cases.append(left + run + right)
    # Numbers and long digit runs.
    for _ in range(150):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 60)))
        cases.append(rng.choice(["", " ", "x", "$", "-", "a1"]) + digits + rng.choice(["", " ", ".", "px", "万", "\n"]))
    for _ in range(50):
        cases.append("".join(rng.choice("0123456789٠١٢٣٤٥٦٧٨٩０１２３½²Ⅻ") for _ in range(rng.randint(1, 30))))
    # Contractions in mixed case.
    for _ in range(200):
        word = "".join(rng.choice("aAbBdDeEiIlLmMnNoOrRsStTvVyY") for _ in range(rng.randint(0, 6)))
        suffix = "'" + "".join(rng.choice("sStTmMdDlLvVrReEſxX") for _ in range(rng.randint(0, 3)))
        tail = rng.choice(["", " ", "x", "'", ".", "ed", "\n", "É"])
        cases.append(rng.choice(["", " ", "\t", "(", "Ⅳ", "ǅ"]) + word + suffix + tail)
    # Combining marks in all positions.
    marks = ["\u0301", "\u0300", "\u0308", "\u0323", "\u0327", "\u20dd", "\u0488", "\u093f", "\u0903", "\u05b4"]
    bases = ["a", "A", "ǅ", "ʰ", "中", "1", " ", "\n", "!", "'", "", "Ⅳ", "ß"]
    for _ in range(300):
        s = ""
        for _ in range(rng.randint(1, 6)):
            s += rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(0, 3)))
        cases.append(s)
    # Special-token text in context.
    for _ in range(150):
        s = rng.choice(SPECIAL_TEXT)
        cases.append(fuzz_mix(rng)[:30] + s + fuzz_mix(rng)[:30])
    # Random Unicode, including astral planes.
    for _ in range(500):
        cases.append(random_unicode(rng, rng.randint(1, 40)))
    # Fragment fuzzing.
    for _ in range(1200):
        cases.append(fuzz_mix(rng))
    # Long pieces (heap-based merge in Swift) and a long mixed document.
    cases += long_pieces(rng)
    cases.append("\n\n".join(MULTILINGUAL + CODE + EMOJI + CONTRACTIONS) * 3)
    # Every scalar of every plane in context: chunks of 128 scalars, separated by a
    # rotating context so that class differences (L/N/M/White_Space, Lu/Ll...) show.
    contexts = ["{}", "a{}", " {}", "{}a", "A{}b", "1{}", "'{}", "\n{}", "{} ", "{}'s"]
    chunk = []
    k = 0
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        chunk.append(contexts[(c // 7) % len(contexts)].format(chr(c)))
        if len(chunk) == 128:
            cases.append("".join(chunk))
            chunk = []
            k += 1
    if chunk:
        cases.append("".join(chunk))
    return cases


def write_cases(path: str, seed: int):
    import tiktoken

    cases = generate_cases(seed)
    encs = {name: tiktoken.get_encoding(name) for name in ENCODINGS}
    n = 0
    with open(path, "w", encoding="ascii") as f:
        for name, enc in encs.items():
            for text in cases:
                hex_text = text.encode("utf-8").hex()
                for mode in ("o", "a"):
                    if mode == "o":
                        ids = enc.encode_ordinary(text)
                    else:
                        ids = enc.encode(text, allowed_special="all")
                    f.write(f"{name}\t{mode}\t{hex_text}\t{' '.join(map(str, ids))}\n")
                    n += 1
    print(f"wrote {n} cases ({len(cases)} distinct strings x {len(encs)} encodings x 2 modes) to {path}")


# --------------------------------------------------------------------------------------
# Piece-boundary probes
#
# With the real vocabularies, a different split often gives the same token ids (BPE rarely
# merges across a boundary anyway). Probes make every split visible: short strings over an
# alphabet that has one scalar of each class the patterns distinguish, with a custom
# vocabulary that contains every byte and every substring of every probe. Then each piece
# becomes exactly one token, so the ids spell out the pieces.

PROBE_ALPHABET = [
    "a", "A", "\u01c5", "\u02b0", "\u4e2d", "\u0295",       # Ll Lu Lt Lm Lo, U+0295 (Ll in 16.0)
    "\u0301", "\u0903", "\u20dd",                          # Mn Mc Me
    "1", "\u2163", "\u00bd",                                # Nd Nl No
    " ", "\t", "\n", "\r", "\u00a0", "\u2028", "\u0085", "\u000b",  # White_Space
    "'", "/", "!", "\U0001F600", "\u200d", "\ufeff",         # punctuation, symbols, Cf
    "s", "S", "\u017f", "t", "l", "L", "v", "e", "r", "R", "m", "D",  # contraction letters
]
PROBE_CORE = ["a", "A", "\u01c5", "\u02b0", "\u0295", "\u0301", "1", " ", "\n", "\r", "\u00a0",
              "'", "/", "!", "\U0001F600", "s", "\u017f", "l", "e", "R"]
PROBE_SPECIALS = ["<|endoftext|>", "<|endofprompt|>"]


def probe_strings(seed: int):
    import itertools

    rng = random.Random(seed)
    out = set()
    for n in (1, 2):
        for t in itertools.product(PROBE_ALPHABET, repeat=n):
            out.add("".join(t))
    for t in itertools.product(PROBE_CORE, repeat=3):
        out.add("".join(t))
    contractions = ["'s", "'S", "'\u017f", "'t", "'T", "'m", "'M", "'d", "'D", "'ll", "'LL", "'lL",
                    "'ve", "'VE", "'re", "'Re", "'l", "'v", "'r", "'x", "''s"]
    for left in ["", "a", "A", "AB", "ab", "\u02b0", "\u0301", " ", " a", "1", "!", "\n"]:
        for c in contractions:
            for right in ["", "a", "A", " ", "'", "1"]:
                out.add(left + c + right)
    for _ in range(6000):
        out.add("".join(rng.choice(PROBE_ALPHABET) for _ in range(rng.randint(4, 8))))
    for _ in range(1500):
        parts = [rng.choice(PROBE_ALPHABET) for _ in range(rng.randint(1, 6))]
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(PROBE_SPECIALS))
        out.add("".join(parts))
    return sorted(out)


def write_probes(out_dir: str, seed: int):
    import os
    import base64
    import tiktoken
    from tiktoken_ext import openai_public

    os.makedirs(out_dir, exist_ok=True)
    probes = probe_strings(seed)
    substrings = set()
    for p in probes:
        b = p.encode("utf-8")
        for i in range(len(b)):
            for j in range(i + 2, len(b) + 1):
                substrings.add(b[i:j])
    ranks = {bytes([i]): i for i in range(256)}
    for sub in sorted(substrings, key=lambda x: (len(x), x)):
        ranks[sub] = len(ranks)
    with open(os.path.join(out_dir, "probe.tiktoken"), "wb") as f:
        for token, rank in ranks.items():
            f.write(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")
    specials = {t: len(ranks) + i for i, t in enumerate(PROBE_SPECIALS)}
    n = 0
    with open(os.path.join(out_dir, "probes.tsv"), "w", encoding="ascii") as f:
        for pattern, ctor in (("cl100k", openai_public.cl100k_base), ("o200k", openai_public.o200k_base)):
            enc = tiktoken.Encoding(f"probe-{pattern}", pat_str=ctor()["pat_str"],
                                    mergeable_ranks=ranks, special_tokens=specials)
            for text in probes:
                hex_text = text.encode("utf-8").hex()
                for mode in ("o", "a"):
                    ids = enc.encode_ordinary(text) if mode == "o" else enc.encode(text, allowed_special="all")
                    f.write(f"probe-{pattern}\t{mode}\t{hex_text}\t{' '.join(map(str, ids))}\n")
                    n += 1
    print(f"wrote {n} probe cases ({len(probes)} strings, vocabulary of {len(ranks)} tokens) to {out_dir}")


# --------------------------------------------------------------------------------------
# Chat token counting (OpenAI cookbook, "How to count tokens with tiktoken")

CHAT_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
]


def num_tokens_from_messages(messages, encoding):
    tokens_per_message = 3
    tokens_per_name = 1
    num_tokens = 0
    for message in messages:
        num_tokens += tokens_per_message
        for key, value in message.items():
            num_tokens += len(encoding.encode(value))
            if key == "name":
                num_tokens += tokens_per_name
    num_tokens += 3  # every reply is primed with <|start|>assistant<|message|>
    return num_tokens


def print_chat():
    import tiktoken

    for name in ENCODINGS:
        print(name, num_tokens_from_messages(CHAT_MESSAGES, tiktoken.get_encoding(name)))


# --------------------------------------------------------------------------------------
# Benchmark corpus: English prose, written for this purpose (no copyright concerns),
# re-assembled at random into ~5 MB so that the text is not one short repeated block.

PROSE = """
The village stood where the river bent twice before it reached the sea, and in the early
years nobody thought it would last. The ground was wet, the winters were long, and the only
road ran north through forty miles of pine and birch before it found another town.
Still, people came. They came because the fishing was good and the land, once drained,
gave more barley than anyone had a right to expect.
By the time the first schoolhouse was built, there were ninety-three families on the
register, a blacksmith, two millers who did not speak to each other, and a doctor who
preferred his garden to his patients.
The doctor's name was Elias Brandt, and he kept careful notes on everything: the height of
the river in spring, the number of swallows that returned each April, the price of salt.
His notebooks, which survive in the county library, are a strange mixture of medicine and
weather, gossip and arithmetic.
"Fever in the Hallam house again," he wrote one March. "River up four inches since Tuesday.
Paid eleven shillings for a new lamp, which is robbery."
Most of the families were farmers, but farming there was never simple. The soil was rich and
heavy, and a wet summer could rot a whole field before the harvest.
Old people said that you could tell a good year by the sound of the wind in the reeds: a dry,
whispering sound meant a dry August, while a low moan meant rain.
Nobody believed this, exactly, but nobody ignored it either.
In the autumn of the great flood, the water rose faster than anyone had seen. It came over the
lower meadow in a single night, filled the cellars along the mill road, and carried away the
footbridge that the children used to reach the school.
For nine days the village was cut in two. Boats went back and forth with bread, lamp oil and
letters, and the doctor rowed himself across twice a day with his bag on his knees.
When the water finally went down, it left a line of grey mud on every wall, about the height
of a man's shoulder. Some families painted over it. Others left it, as a reminder.
The miller on the east bank, a quiet man called Tobias Wren, said that he would rather look at
the mark every morning than forget how high the river could go.
There is a photograph from that winter, taken by a travelling photographer who happened to be
stranded in the inn. It shows a dozen men standing in front of the church, hats in hand,
squinting into a low sun.
Behind them the churchyard wall is broken in three places, and the path is still a river of
mud. Nobody is smiling. At the edge of the picture a small dog is looking the other way, as
if it had something better to do.
Years later, the railway arrived, and with it came everything the old road had kept out:
newspapers that were only a day old, coal, iron ploughs, catalogues of hats and gloves, and
young men from the city who wanted to buy land.
Some of the farmers sold, and some of them regretted it. The ones who stayed learned to grow
sugar beet and to ship their milk to the dairies in the south.
The schoolmistress of those years, Margaret Oyelaran, taught for forty-one years without
missing a single term. She believed in three things: clear handwriting, long walks, and the
importance of reading aloud.
Her pupils remembered her voice more than anything she said. "She could make a shopping list
sound like poetry," one of them wrote, many decades later, "and she made us believe that
every one of us had a story worth telling."
It would be easy to say that nothing much happened in the village, and in a sense that is
true. No battles were fought there. No kings passed through. The great events of the century
arrived late and left early, like guests who had somewhere else to be.
But the people who lived there did not think of their lives as small. They argued about the
price of grain and the color of the new chapel doors; they fell in love, quarrelled, made up,
and buried one another under the same tall elms.
If you walk there today, you can still find the line of the old mill race, though the mill
itself is gone. The river still bends twice before it reaches the sea.
In spring the swallows come back, as they always have, and somebody, somewhere in the
village, is probably writing down the date.
Questions of memory are never simple. What we remember of a place depends on when we saw it,
who we were with, and what we needed from it at the time.
A child remembers the smell of the bakery and the cold of the water; an old man remembers the
names of the people who are no longer there; a visitor remembers the light.
Each of these is true, and none of them is complete.
The historian's task, such as it is, is to gather as many of these partial truths as possible
and to arrange them so that a reader can see, if only for a moment, the shape of something
that no single witness could see whole.
That task is never finished. There is always another letter in an attic, another photograph
in a drawer, another voice that was not asked.
Economists who studied the region in the following decades noted that its population had
fallen by nearly a third, even as its output of grain and milk had doubled.
Machines did the work that had once needed many hands, and the young people who would have
done that work went instead to the factories, the offices and the universities.
Some came back in their old age; most did not. The houses they left were bought by families
from the city who wanted quiet weekends, and who were often surprised to learn how loud the
frogs could be on a warm night in May.
"""


def write_mixed_corpus(path: str, megabytes: float, seed: int):
    """Multilingual text, code and emoji (for information; not the prose benchmark)."""
    rng = random.Random(seed)
    blocks = MULTILINGUAL + CODE + EMOJI + CONTRACTIONS + NUMBERS + [ENGLISH]
    out, size, target = [], 0, int(megabytes * 1_000_000)
    while size < target:
        b = rng.choice(blocks) + rng.choice(["\n", "\n\n", " ", "\r\n"])
        out.append(b)
        size += len(b.encode("utf-8"))
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(out))
    print(f"wrote {size / 1e6:.2f} MB of mixed multilingual text and code to {path}")


def write_corpus(path: str, megabytes: float, seed: int):
    rng = random.Random(seed)
    import re

    text = " ".join(PROSE.split())
    sentences = [m.strip() for m in re.findall(r'.*?[.!?]"?(?=\s+["A-Z]|$)', text) if m.strip()]
    names = ["Elias", "Margaret", "Tobias", "Anna", "Jonas", "Clara", "Samuel", "Ruth", "Peter", "Ida"]
    out = []
    size = 0
    target = int(megabytes * 1_000_000)
    while size < target:
        paragraph = []
        for _ in range(rng.randint(3, 9)):
            s = rng.choice(sentences)
            if rng.random() < 0.2:
                s = s.replace("Elias", rng.choice(names)).replace("Margaret", rng.choice(names))
            if rng.random() < 0.1:
                s = s.replace("forty", str(rng.randint(2, 1999)))
            paragraph.append(s)
        text = " ".join(paragraph) + "\n\n"
        out.append(text)
        size += len(text.encode("utf-8"))
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(out))
    print(f"wrote {size / 1e6:.2f} MB of English prose to {path}")


# White_Space (PropList.txt); unchanged since Unicode 6.3.
WHITE_SPACE = set(range(0x09, 0x0E)) | {0x20, 0x85, 0xA0, 0x1680} | set(range(0x2000, 0x200B)) | {
    0x2028, 0x2029, 0x202F, 0x205F, 0x3000}


def check_unicode(path: str):
    """The split patterns depend only on general category and White_Space. tiktoken's regex
    crate uses Unicode 16.0 tables; compare what the Swift side derives with Unicode 16.0."""
    import unicodedata2

    assert unicodedata2.unidata_version == "16.0.0", unicodedata2.unidata_version
    lines = open(path, encoding="ascii").read().split("\n")
    i = 0
    bad = 0
    for c in range(0x110000):
        if 0xD800 <= c <= 0xDFFF:
            continue
        line = lines[i]
        i += 1
        want = unicodedata2.category(chr(c)) + ("1" if c in WHITE_SPACE else "0")
        if line != want:
            bad += 1
            if bad <= 20:
                print(f"U+{c:04X}: swift {line} unicode16 {want}")
    print(f"unicode: {i} scalars compared, {bad} differences")
    sys.exit(1 if bad else 0)


def main():
    args = sys.argv[1:]
    seed = 20240601
    if "--seed" in args:
        i = args.index("--seed")
        seed = int(args[i + 1])
        del args[i:i + 2]
    mb = 5.0
    if "--mb" in args:
        i = args.index("--mb")
        mb = float(args[i + 1])
        del args[i:i + 2]
    if len(args) == 2 and args[0] == "cases":
        write_cases(args[1], seed)
    elif len(args) == 2 and args[0] == "probes":
        write_probes(args[1], seed)
    elif len(args) == 1 and args[0] == "patterns":
        import tiktoken

        for name in ENCODINGS:
            print(f"{name}\t{tiktoken.get_encoding(name)._pat_str}")
    elif len(args) == 1 and args[0] == "chat":
        print_chat()
    elif len(args) == 2 and args[0] == "unicode":
        check_unicode(args[1])
    elif len(args) == 2 and args[0] == "corpus":
        write_corpus(args[1], mb, seed)
    elif len(args) == 2 and args[0] == "mixed-corpus":
        write_mixed_corpus(args[1], mb, seed)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
