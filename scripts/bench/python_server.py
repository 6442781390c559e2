"""The Python servers a user would deploy in front of the same fine-tuned model, for the serving benchmark
(scripts/bench/benchmark_serving.py). Reference tooling only: the toolkit never runs Python.

  --backend ort       FastAPI + uvicorn + ONNX Runtime (the .onnx given: fp32, or dynamic int8), each request's
                      texts in one batch; with --batcher, texts of concurrent requests are gathered into batches
                      of up to --max-batch texts (a simple cross-request batcher: whatever waits when the model
                      is free).
  --backend pipeline  FastAPI + uvicorn + a transformers pipeline on the model folder (PyTorch eager).

POST /predict {"inputs": [texts or {"text", "text_pair"}]} answers a list: {"label", "score"} for sequence
classification, {"entities": [{"entity_group", "start", "end", "score", "word"}]} for token classification
(words labelled by their first sub-token, as the pipeline's aggregation "first").
"""
import argparse
import asyncio
import json
import threading
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["ort", "pipeline"], required=True)
    p.add_argument("--model", required=True, help="the Hugging Face folder (tokenizer, config)")
    p.add_argument("--onnx", help="the ONNX file (--backend ort)")
    p.add_argument("--batcher", action="store_true")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class OrtModel:
    """Tokenizer + ONNX Runtime session: texts in, results out."""

    def __init__(self, folder, onnx_file, threads):
        import onnxruntime as ort
        from transformers import AutoConfig, AutoTokenizer
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        config = AutoConfig.from_pretrained(folder)
        self.labels = [config.id2label[i] for i in range(len(config.id2label))]
        self.tokens = "TokenClassification" in config.architectures[0]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx_file, options, providers=["CPUExecutionProvider"])
        self.names = {i.name for i in self.session.get_inputs()}

    def __call__(self, inputs):
        texts = [i if isinstance(i, str) else i["text"] for i in inputs]
        pairs = [None if isinstance(i, str) else i.get("text_pair") for i in inputs]
        encoded = self.tokenizer(texts, pairs if any(p is not None for p in pairs) else None, padding=True, truncation=True,
                                 max_length=128, return_tensors="np", return_offsets_mapping=self.tokens)
        feed = {k: encoded[k].astype(np.int64) for k in ["input_ids", "attention_mask", "token_type_ids"] if k in self.names}
        logits = self.session.run(None, feed)[0]
        if not self.tokens:
            p = softmax(logits)
            return [{"label": self.labels[int(r.argmax())], "score": float(r.max())} for r in p]
        return [self.entities(texts[b], softmax(logits[b]), encoded.word_ids(b), encoded["offset_mapping"][b]) for b in range(len(texts))]

    def entities(self, text, probabilities, word_ids, offsets):
        words, seen = [], set()
        for t, w in enumerate(word_ids):
            if w is None:
                continue
            start, end = int(offsets[t][0]), int(offsets[t][1])
            if w in seen:
                words[-1][2] = end
                continue
            seen.add(w)
            k = int(probabilities[t].argmax())
            words.append([self.labels[k], start, end, float(probabilities[t][k])])
        entities, previous = [], "O"
        for label, start, end, score in words:
            kind = label[2:]
            if label != "O" and label.startswith("I-") and previous[2:] == kind:
                entities[-1]["end"] = end
                entities[-1]["_scores"].append(score)
            elif label != "O":
                entities.append({"entity_group": kind, "start": start, "end": end, "_scores": [score]})
            previous = label
        return {"entities": [{"entity_group": e["entity_group"], "start": e["start"], "end": e["end"],
                              "score": float(np.mean(e["_scores"])), "word": text[e["start"]:e["end"]]} for e in entities]}


class PipelineModel:
    def __init__(self, folder, threads):
        import torch
        from transformers import AutoConfig, pipeline
        torch.set_num_threads(threads)
        config = AutoConfig.from_pretrained(folder)
        self.tokens = "TokenClassification" in config.architectures[0]
        if self.tokens:
            self.pipe = pipeline("token-classification", model=folder, aggregation_strategy="first", device=-1)
        else:
            self.pipe = pipeline("text-classification", model=folder, device=-1)
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            if self.tokens:
                return [{"entities": [{k: (float(v) if k == "score" else v) for k, v in e.items()} for e in found]}
                        for found in self.pipe([i if isinstance(i, str) else i["text"] for i in inputs])]
            records = [i if isinstance(i, str) else {"text": i["text"], "text_pair": i.get("text_pair")} for i in inputs]
            return [{"label": r["label"], "score": float(r["score"])} for r in self.pipe(records, truncation=True)]


def main():
    args = parse()
    model = OrtModel(args.model, args.onnx, args.threads) if args.backend == "ort" else PipelineModel(args.model, args.threads)
    app = FastAPI()

    if args.batcher:
        queue: asyncio.Queue = asyncio.Queue()

        async def batcher():
            loop = asyncio.get_running_loop()
            while True:
                items = [await queue.get()]
                while len(items) < args.max_batch and not queue.empty():
                    items.append(queue.get_nowait())
                results = await loop.run_in_executor(None, model, [i for i, _ in items])
                for (_, future), result in zip(items, results):
                    future.set_result(result)

        @app.on_event("startup")
        async def start():
            asyncio.create_task(batcher())

        @app.post("/predict")
        async def predict_batched(request: Request):
            body = json.loads(await request.body())
            inputs = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
            loop = asyncio.get_running_loop()
            futures = []
            for i in inputs:
                f = loop.create_future()
                futures.append(f)
                await queue.put((i, f))
            return JSONResponse(await asyncio.gather(*futures))
    else:
        @app.post("/predict")
        def predict(body: dict):
            inputs = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
            return JSONResponse(model(inputs))

    @app.get("/health")
    def health():
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
