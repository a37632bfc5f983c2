"""Assemble tests/fixtures/miners/<pattern>.jsonl from hand-labelled real outputs and handwritten cases."""
import json, sys
from pathlib import Path
sys.path.insert(0, "/tmp/h10")
import hand

def load(f, n=None):
    return [json.loads(l) for l in open(f)][:n]

S250 = load("/tmp/h10/out250.jsonl")
S1600 = load("/tmp/h10/out1500_plain.jsonl", 40)
RNS = load("/tmp/h10/rand_noslack.jsonl")
RND = load("/tmp/h10/rand.jsonl")
SH = load("/tmp/h10/out1500_shift.jsonl", 40)
VAR250 = {0: "plain", 1: "ctc", 2: "insert", 3: "delete"}

def real(key):
    """'s250:66' | 's1600:14S' / 's1600:14C' | 'rns:23' | 'rnd:23' -> (record, source)."""
    kind, idx = key.split(":")
    if kind == "s250":
        i = int(idx); r = S250[i]; var = VAR250[i // 64]
        edit = {"insert": ", a mask inserted mid-decoding at position 16", "delete": ", position 16 deleted mid-decoding"}.get(var, "")
        return r, f"tiny-ce@step250 (first 4x128 mlp4 run) {r['id'].split('@')[0]}, collapse {'ctc' if var == 'ctc' else 'surface'}{edit}"
    if kind == "s1600":
        i, m = int(idx[:-1]), idx[-1]; r = dict(S1600[i])
        if m == "C":
            r["text"] = r["text_ctc"]
        return r, f"tiny-ce@step1600 {r['id']}, collapse {'ctc' if m == 'C' else 'surface'}"
    i = int(idx)
    if kind == "sh":
        return SH[i], f"tiny-ce@step1600 {SH[i]['id']}: a mask inserted at response position 16 once half the canvas was committed"
    if kind == "rns":
        return RNS[i], f"tiny-random with slack_id unset in its sidecar, T=1, {RNS[i]['id']}"
    return RND[i], f"tiny-random, T=1, {RND[i]['id']}"

def s250(*ix): return [f"s250:{i}" for i in ix]
def s16(spec): return [f"s1600:{x}" for x in spec.split()]

REAL = {
    "trailing-zero": (s16("14S 23S 2C 3C 4C 6C 9C 14C 18C 20C 22C 23C 24C 25C 27C 32C 33C 35C 37C 39C") + s250(66, 82, 102, 111),
                      s16("0S 2S 3S 4S 5S 7S 9S 10S 17S 21S 28S 38S 7C 10C 11C 26C 29C 31C 36C") + s250(64, 67, 68, 69, 86, 109, 125)),
    "repeated-token": (s250(9, 55, 61, 73, 75, 79, 99, 106, 111, 119, 121, 125, 142, 204) + s16("29C"),
                       s16("2S 3S 8S 11S 14S 20S 22S 28S 2C 3C 8C 11C 14C 20C 22C 28C 25C 38C") + s250(2, 14, 0, 1)),
    "misplaced-char": (s16("8S 8C 20S 20C"),
                       s16("0S 4S 5S 6S 7S 9S 10S 13S 15S 16S 17S 19S 21S 24S 26S 27S 30S 31S 32S 33S 34S 36S 37S 0C 4C")),
    "shift-artifact": (s250(2, 11, 35, 130, 139, 194) + s16("2S 12S 16S 5S 6S 17S 23S 2C 3C 25C 36C 38C 39C 26S") + ["sh:11"],
                       s16("0S 3S 4S 7S 9S 10S 13S 14S 28S 35S 38S 0C 13C 16C") + ["sh:12", "sh:14", "sh:18", "sh:28", "sh:31"]),
    "slack-leak": ([f"rns:{i}" for i in (0, 23, 38, 75, 94, 125, 142, 151, 172, 189, 197, 233, 254)],
                   [f"rnd:{i}" for i in (0, 23, 38, 75, 94, 125, 142, 151, 172, 189, 197, 233, 254)] + s16("0S 1S 2S 3S 4S 5S 6S")),
    "eos-truncation": (s250(10, 24, 26, 27, 36, 49, 50, 52, 58, 59, 63, 3) + s16("1S"),
                       s250(0, 1, 2, 4, 5, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18) + s16("0S 2S 0C 2C")),
}
KEEP = ("id", "prompt", "reference", "reference_answer", "text", "raw_text", "output_ids")
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for det, (pos, neg) in REAL.items():
    rows = []
    for keys, lab in ((pos, True), (neg, False)):
        for k in keys:
            r, src = real(k)
            row = {k2: r.get(k2) for k2 in KEEP if k2 != "output_ids" or det in ("slack-leak", "eos-truncation")}
            row.update(source=src, label={det: lab})
            rows.append(row)
    for c in hand.CASES:
        if det in c["label"]:
            rows.append({"id": None, **c})
    for n, row in enumerate(rows):
        row["id"] = f"{det}/{n}"
    with open(out / f"{det}.jsonl", "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(det, len(rows), sum(r["label"][det] for r in rows), "real", sum(not r["source"].startswith("handwritten") for r in rows))
