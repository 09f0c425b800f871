#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Each seed is a small well-formed input of the target's format (plus a few near-misses), so the
fuzzer starts from inside the grammar. Standard library only; run from anywhere."""
import gzip
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


RATINGS = [("u1", "i1", 5, 978300760), ("u1", "i2", 3, 978302109), ("u2", "i1", 4, 978301968),
           ("u2", "i3", 1, 1046454590)]
TITLES = {"i1": "Toy Story (1995)", "i2": 'Caf\u00e9 "Noir" (2001)', "i3": "\u6625\u5929 \U0001F600"}


def safetensors(tensors, meta=None):
    header, off, blob = {}, 0, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blob += raw
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob


def main():
    put("fuzz_safetensors", "two", safetensors(
        {"a": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "b": ("BF16", [3], b"\0" * 6)},
        {"format": "pt"}))
    put("fuzz_safetensors", "empty_tensor", safetensors({"e": ("I64", [0, 4], b"")}))
    put("fuzz_safetensors", "all_dtypes", safetensors({
        d: (d, [1], b"\0" * s) for d, s in [("F16", 2), ("F64", 8), ("I32", 4), ("I16", 2),
                                             ("I8", 1), ("U8", 1), ("BOOL", 1)]}))

    put("fuzz_config", "cora", json.dumps({
        "method": "cora", "data": {"dir": "d"}, "llm": {"dir": "m", "dtype": "fp32"},
        "cf": {"run": "r"}, "train": {"lr": 1e-3, "epochs": 2, "schedule": "reference"},
        "cora": {"rank": 8, "targets": ["q_proj", "v_proj"]}}) + "\0train.lr=0.5\nseed=3")
    put("fuzz_config", "mf", json.dumps({"method": "mf", "data": {"dir": "d"},
                                         "cf": {"dim": 64}}) + "\0cf.dim=16")
    put("fuzz_config", "prepare", json.dumps({"prepare": {"split": "ratios", "window_start": ""}}))

    items = "iid\ttitle\n1\tToy Story (1995)\n2\tCaf\u00e9 (2001)\n"
    split = ("uid\tiid\tlabel\ttimestamp\tnot_cold\thistory\n"
             "1\t1\t1\t978300760\t1\t\n1\t2\t0\t978302109\t1\t1\n2\t1\t1\t978301968\t0\t1,2\n")
    put("fuzz_split", "small", items + "\0" + split)

    text = "first line\nsecond\r\n\nlast without newline"
    put("fuzz_gzip", "plain", text)
    put("fuzz_gzip", "gzip", gzip.compress(text.encode()))
    put("fuzz_gzip", "two_members", gzip.compress(b"a\nb\n") + gzip.compress(b"c\n"))
    put("fuzz_gzip", "truncated", gzip.compress(text.encode())[:-6])

    def esc(s):
        return json.dumps(s)

    a18 = "".join(f'{{"reviewerID": {esc(u)}, "asin": {esc(i)}, "overall": {r}.0, '
                  f'"reviewText": "a \\"q\\" {{t}}", "style": {{"Format:": " Paperback"}}, '
                  f'"unixReviewTime": {t}}}\n' for u, i, r, t in RATINGS)
    m18 = "".join(f'{{"asin": {esc(i)}, "title": {esc(t)}, "category": ["Books"], '
                  f'"price": "$1.00"}}\n' for i, t in TITLES.items())
    put("fuzz_prepare_amazon2018", "small", a18 + "\0" + m18)
    put("fuzz_prepare_amazon2018", "gzip", gzip.compress(a18.encode()) + b"\0" + m18.encode())

    def py2(s):
        return "".join(c if ord(c) < 0x80 else "".join(f"\\x{b:02x}" for b in c.encode()) for c in s)
    m14 = "".join(f"{{'asin': '{i}', 'categories': [['Books', 'Lit']], 'price': None, "
                  f"'title': '{py2(t)}', 'salesRank': {{'Books': 12}}, 'u': u'x', 'tup': (1, 2.5)}}\n"
                  for i, t in TITLES.items())
    put("fuzz_prepare_amazon2014", "small", a18 + "\0" + m14)

    a23 = "".join(f'{{"rating": {r}.0, "title": "x", "user_id": {esc(u)}, "asin": "B0", '
                  f'"parent_asin": {esc(i)}, "timestamp": {t}999, "images": []}}\n'
                  for u, i, r, t in RATINGS)
    m23 = "".join(f'{{"main_category": "Books", "title": {esc(t)}, "parent_asin": {esc(i)}, '
                  f'"details": {{"a": [1, 2.5e3, true, null]}}}}\n' for i, t in TITLES.items())
    put("fuzz_prepare_amazon2023", "small", a23 + "\0" + m23)

    ml1m = "".join(f"{u[1:]}::{i[1:]}::{r}::{t}\n" for u, i, r, t in RATINGS)
    movies = "".join(f"{i[1:]}::{t}::Drama|Comedy\n" for i, t in TITLES.items())
    put("fuzz_prepare_ml_1m", "small", ml1m + "\0" + movies)
    put("fuzz_prepare_ml_1m", "latin1", ml1m.encode() + b"\0" + b"1::Caf\xe9 (2001)::Drama\n")

    u_data = "".join(f"{u[1:]}\t{i[1:]}\t{r}\t{t}\n" for u, i, r, t in RATINGS)
    u_item = "".join(f"{i[1:]}|{t}|01-Jan-1995||http://x|0|0|0|0|0|1|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
                     for i, t in TITLES.items())
    put("fuzz_prepare_ml_100k", "small", u_data + "\0" + u_item)

    csv_r = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u[1:]},{i[1:]},{r}.5,{t}\n" for u, i, r, t in RATINGS)
    csv_m = "movieId,title,genres\n" + "".join(
        f'{i[1:]},"{t.replace(chr(34), chr(34) * 2)}",Drama|Comedy\n' for i, t in TITLES.items())
    put("fuzz_prepare_movielens_csv", "small", csv_r + "\0" + csv_m)

    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in RATINGS)
    item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\n" + "".join(
        f"{i}\t{t}\t1995\tDrama\n" for i, t in TITLES.items())
    put("fuzz_prepare_recbole", "small", inter + "\0" + item)


if __name__ == "__main__":
    main()
