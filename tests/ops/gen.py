#!/usr/bin/env python3
"""Generates the operator cases of `tests/ops_ort.rs`: small ONNX models and onnxruntime's outputs.

Each `cases_<family>.py` beside this file defines `cases()`, returning a list of `Case`. For every
family this writes `<family>/<case>.onnx` and `<family>.json` (inputs and onnxruntime's outputs,
or the error edgefuse must give for a case onnxruntime runs but edgefuse refuses on purpose).
The test compiles each model with edgefuse, runs it, and compares.

Needs numpy, onnx and onnxruntime (`pip install onnx onnxruntime`). Run from anywhere:
    python3 tests/ops/gen.py            # every family
    python3 tests/ops/gen.py nn shape   # some
"""

import glob
import importlib.util
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))

DTYPES = {
    np.dtype("float32"): ("f32", TensorProto.FLOAT),
    np.dtype("int64"): ("i64", TensorProto.INT64),
    np.dtype("int32"): ("i32", TensorProto.INT32),
    np.dtype("uint8"): ("u8", TensorProto.UINT8),
    np.dtype("int8"): ("i8", TensorProto.INT8),
    np.dtype("bool"): ("bool", TensorProto.BOOL),
}


class Case:
    """One model: `nodes` over graph inputs `inputs` (name -> array fed at run time) and
    `consts` (name -> array stored as an initializer); `outputs` names what to compare.
    `atol`/`rtol`: |got - want| <= atol + rtol * |want|. `error`: edgefuse must refuse the
    model with a message containing it (onnxruntime's outputs are not recorded). `domains`:
    other opsets the model imports, e.g. [("com.microsoft", 1)]. `model`: a ready ModelProto
    (e.g. from onnxruntime's quantizer) instead of `nodes`. `fused`: what the compile with the
    rewrite rules must give, {"ops": [op names its graph must hold], "atol": .., "rtol": ..}
    (tolerances for that compile, in place of `atol`/`rtol`)."""

    def __init__(self, name, nodes, inputs, outputs, consts=None, opset=17, atol=1e-5,
                 rtol=1e-5, error=None, domains=(), model=None, fused=None):
        self.name, self.nodes, self.inputs, self.outputs = name, nodes, inputs, outputs
        self.consts = consts or {}
        self.opset, self.atol, self.rtol, self.error = opset, atol, rtol, error
        self.domains, self.model, self.fused = list(domains), model, fused


def single(name, op, inputs, attrs=None, consts=None, outputs=1, **kw):
    """A case of one node `op` whose inputs are `inputs` (fed) and `consts` (initializers), in
    the order given by `order` (default: inputs then consts); `None` in order is an omitted
    optional input."""
    order = kw.pop("order", list(inputs) + list(consts or {}))
    domain = kw.pop("domain", None)
    outs = [f"y{i}" for i in range(outputs)] if isinstance(outputs, int) else outputs
    node = helper.make_node(op, [o or "" for o in order], outs, name=name, domain=domain,
                            **(attrs or {}))
    return Case(name, [node], inputs, outs, consts=consts, **kw)


def rand(seed, shape, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(np.float32)


def ints(seed, shape, lo, hi, dtype=np.int64):
    return np.random.default_rng(seed).integers(lo, hi, size=shape).astype(dtype)


def encode(a):
    """dtype, shape and the little-endian bytes in hex: exact for every value, NaN included."""
    kind, _ = DTYPES[a.dtype]
    data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes().hex()
    return {"dtype": kind, "shape": list(a.shape), "hex": data}


def build(case):
    if case.model is not None:
        return case.model

    def vi(name, a):
        return helper.make_tensor_value_info(name, DTYPES[a.dtype][1], list(a.shape))

    graph = helper.make_graph(
        case.nodes,
        case.name,
        [vi(n, a) for n, a in case.inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in case.outputs],
        initializer=[numpy_helper.from_array(a, n) for n, a in case.consts.items()],
    )
    opsets = [helper.make_opsetid("", case.opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in case.domains]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    # Output types from onnx's shape inference (onnxruntime needs them). A case edgefuse must
    # refuse may be malformed beyond inference: its outputs are declared f32 of unknown shape.
    if case.error is not None:
        try:
            onnx.shape_inference.infer_shapes(model, strict_mode=True)
        except Exception:
            for n in case.outputs:
                model.graph.output.append(
                    helper.make_tensor_value_info(n, TensorProto.FLOAT, None))
            return model
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v for v in inferred.graph.value_info}
    types.update({v.name: v for v in inferred.graph.output})
    del model.graph.output[:]
    for n in case.outputs:
        v = types.get(n)
        if v is None or not v.type.tensor_type.elem_type:
            raise SystemExit(f"{case.name}: no type inferred for output {n}")
        model.graph.output.append(v)
    if not case.domains:
        onnx.checker.check_model(model)
    return model


def run_family(path):
    family = os.path.basename(path)[len("cases_"):-len(".py")]
    spec = importlib.util.spec_from_file_location(f"cases_{family}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, HERE)
    spec.loader.exec_module(mod)
    out_dir = os.path.join(HERE, family)
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "*.onnx")):
        os.remove(old)
    records = []
    for case in mod.cases():
        model = build(case)
        file = os.path.join(out_dir, f"{case.name}.onnx")
        onnx.save(model, file)
        rec = {
            "name": case.name,
            "model": f"{family}/{case.name}.onnx",
            "inputs": [dict(name=n, **encode(a)) for n, a in case.inputs.items()],
            "atol": case.atol,
            "rtol": case.rtol,
        }
        if case.fused is not None:
            rec["fused"] = case.fused
        if case.error is not None:
            rec["error"] = case.error
        else:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            sess = ort.InferenceSession(file, opts, providers=["CPUExecutionProvider"])
            got = sess.run(case.outputs, dict(case.inputs))
            rec["outputs"] = [dict(name=n, **encode(np.asarray(a))) for n, a in zip(case.outputs, got)]
        records.append(rec)
    with open(os.path.join(HERE, f"{family}.json"), "w") as f:
        json.dump({"generated_by": "tests/ops/gen.py", "onnxruntime": ort.__version__,
                   "cases": records}, f, separators=(",", ":"))
        f.write("\n")
    print(f"{family}: {len(records)} cases")


def main():
    wanted = set(sys.argv[1:])
    for path in sorted(glob.glob(os.path.join(HERE, "cases_*.py"))):
        family = os.path.basename(path)[len("cases_"):-len(".py")]
        if not wanted or family in wanted:
            run_family(path)


if __name__ == "__main__":
    main()
