"""Where int8 ONNX embedding spends its time, and two things that did not shorten it.

    .venv/bin/python bench/int8_profile.py

One batch of 64 RealTime QA texts (title + 150 words, cut to 256 word pieces) through:
- the float32 and int8 exports the project ships (ONNX Runtime's profiler: kernel time per
  operator type);
- an int8 model whose attention is fused first by ONNX Runtime's transformer optimizer
  (Attention -> QAttention when quantised), written to a temporary folder;
- the shipped int8 model as two single-threaded sessions on separate batches at once, against
  one 2-thread session.

Output: a table per model, and bench/results/int8_profile.json.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import environment, finish, log, table  # noqa: E402

from rag.embed.embedder import export_onnx, resolve_model_path  # noqa: E402

ARTICLES = Path("/work/shared/datasets/realtimeqa-2022/articles.jsonl.gz")


def texts(n: int) -> list[str]:
    out: list[str] = []
    with gzip.open(ARTICLES, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            words = record["text"].split()
            for i in range(0, min(len(words), 600), 150):
                out.append(record["title"] + "\n" + " ".join(words[i:i + 150]))
            if len(out) >= n:
                return out[:n]
    return out


def session(path: Path, threads: int, profile: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "int8_profile")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feeds_for(tokenizer, batch: list[str], names: list[str]) -> dict[str, np.ndarray]:
    enc = tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="np")
    return {n: enc[n].astype(np.int64) for n in names}


def chunks_per_second(sess, feeds: dict[str, np.ndarray], runs: int = 3) -> float:
    sess.run(None, feeds)
    best = min(_timed(lambda: sess.run(None, feeds)) for _ in range(runs))
    return len(next(iter(feeds.values()))) / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def op_shares(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, float]:
    sess = session(path, 2, profile=True)
    sess.run(None, feeds)
    sess.run(None, feeds)
    trace = sess.end_profiling()
    by_op: collections.Counter[str] = collections.Counter()
    for event in json.loads(Path(trace).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    os.remove(trace)
    total = sum(by_op.values())
    return {op: round(100 * d / total, 1) for op, d in by_op.most_common(10)}


def fused_int8(float_model: Path, folder: Path) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(str(float_model), model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
    log(f"fused: {fused.get_fused_operator_statistics()}")
    fused.save_model_to_file(str(folder / "fused.onnx"))
    quantize_dynamic(str(folder / "fused.onnx"), str(folder / "fused-int8.onnx"),
                     op_types_to_quantize=["MatMul", "Attention"], per_channel=True, reduce_range=False,
                     weight_type=QuantType.QInt8, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return folder / "fused-int8.onnx"


def main() -> None:
    from transformers import AutoTokenizer

    int8 = export_onnx(None, "onnx-int8")
    float32 = int8.with_name("model.onnx")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None))
    sample = texts(256)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    one = feeds_for(tokenizer, sample[:64], names)
    result = {"environment": environment(), "batch_shape": list(one["input_ids"].shape), "models": {}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = {"float32": float32, "int8": int8, "int8, attention fused": fused_int8(float32, Path(tmp))}
        for name, path in models.items():
            speed = chunks_per_second(session(path, 2), one)
            shares = op_shares(path, one)
            result["models"][name] = {"chunks_per_s": round(speed, 1), "kernel_time_percent": shares}
            rows.append([name, round(speed, 1), ", ".join(f"{op} {p}%" for op, p in list(shares.items())[:6])])
            log(f"{name}: {speed:.1f} chunks/s {shares}")
    table(rows, ["model", "chunks/s", "kernel time by operator (top 6)"])

    batches = [feeds_for(tokenizer, sample[i:i + 32], names) for i in range(0, len(sample), 32)]
    two_threads = session(int8, 2)
    two_threads.run(None, batches[0])
    single = session(int8, 1)
    single.run(None, batches[0])
    one_session = [len(sample) / _timed(lambda: [two_threads.run(None, b) for b in batches]) for _ in range(2)]

    def pair() -> None:
        workers = [threading.Thread(target=lambda part: [single.run(None, b) for b in part], args=(batches[j::2],))
                   for j in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    two_sessions = [len(sample) / _timed(pair) for _ in range(2)]
    result["int8_threads"] = {"one_2_thread_session": [round(x, 1) for x in one_session],
                              "two_1_thread_runs_at_once": [round(x, 1) for x in two_sessions]}
    log(f"int8, 256 texts in batches of 32: {result['int8_threads']}")
    finish("int8_profile", result)


if __name__ == "__main__":
    main()
