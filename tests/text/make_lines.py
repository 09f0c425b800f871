#!/usr/bin/env python3
"""Writes the comparison lines of tests/text/bpe_check.sh to stdout: WordNet glosses, the titles
of the given items.tsv files, and generated Unicode-heavy lines (accents in composed and
decomposed form, CJK, emoji with joiners and skin tones, digit runs, whitespace runs,
contractions, punctuation runs). Deterministic (seed 7); no line holds '\\n' or '\\r'."""
import glob
import random
import sys


def glosses():
    for path in sorted(glob.glob("/usr/share/wordnet/data.*")):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or " | " not in line:
                    continue
                yield line.rstrip("\n").split(" | ", 1)[1].strip()


def titles(paths):
    for p in paths:
        with open(p, encoding="utf-8") as f:
            next(f, None)
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2:
                    yield parts[1]


def generated(n, rng):
    words = ["the", "Yes", "No", "don't", "I'm", "we'll", "they've", "she'd", "it's", "YOU'RE",
             "café", "naïve", "Zoë", "São Paulo", "Ærø", "Łódź", "Straße", "İstanbul", "ﬁnance"]
    cjk = ["日本語", "中文测试", "한국어", "テキスト", "漢字かな交じり", "（全角）", "。、"]
    emoji = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "🤖"]
    spaces = [" ", "  ", "   ", "\t", "\t\t", "\u00a0", "\u3000", "\u2009", " \t "]
    punct = ["...", "!?", "--", "—", "«»", "(", ")", "[", "]", "\"", "'", "’", "“”", "#@$%^&*", "::", "->"]
    combining = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "A\u030a"]
    kinds = [lambda: rng.choice(words), lambda: rng.choice(cjk), lambda: rng.choice(emoji),
             lambda: str(rng.randrange(10 ** rng.randint(1, 12))), lambda: rng.choice(punct),
             lambda: rng.choice(combining), lambda: chr(rng.randrange(0x20, 0x2FF)),
             lambda: chr(rng.choice([rng.randrange(0x370, 0x3FF), rng.randrange(0x400, 0x4FF),
                                     rng.randrange(0x590, 0x6FF), rng.randrange(0x900, 0x97F)]))]
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 14)):
            parts.append(rng.choice(kinds)())
            parts.append(rng.choice(spaces) if rng.random() < 0.6 else "")
        yield "".join(parts)


def main():
    rng = random.Random(7)
    out = sys.stdout
    n = 0
    for s in list(glosses()) + list(titles(sys.argv[1:])) + list(generated(20000, rng)):
        s = s.replace("\r", " ").replace("\n", " ")
        out.write(s + "\n")
        n += 1
    print(f"{n} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
