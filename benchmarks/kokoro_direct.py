"""The baseline of ``bench_tts``'s Kokoro speed check: Kokoro's ONNX graph called directly.

What any script would do with the same files: hibari's G2P per sentence, Kokoro's vocab, the
voice pack row for the token count, ``onnxruntime`` on the model, a 16-bit WAV out.

    python benchmarks/kokoro_direct.py MODEL VOCAB PACK OUT.wav "text"
"""

import json
import re
import sys
import wave

import numpy as np
import onnxruntime as ort
from hibari.g2p import G2P


def main() -> None:
    model, vocab_path, pack_path, out, text = sys.argv[1:6]
    with open(vocab_path, encoding="utf-8") as f:
        vocab = json.load(f)["vocab"]
    pack = np.fromfile(pack_path, dtype=np.float32).reshape(-1, 1, 256)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    g2p = G2P(british=False)
    pieces = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        ids = [vocab[p] for p in g2p(sentence) if p in vocab]
        feeds = {
            "tokens": np.array([[0, *ids, 0]], np.int64),
            "style": pack[len(ids)],
            "speed": np.array([1.0], np.float32),
        }
        pieces.append(session.run(None, feeds)[0])
    audio = np.concatenate(pieces)
    with wave.open(out, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(24000)
        f.writeframes((np.clip(audio, -1, 1) * 32767).round().astype("<i2").tobytes())


if __name__ == "__main__":
    main()
