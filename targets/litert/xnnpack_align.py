"""Which TFLite node each LiteRT operator event belongs to (pure; no runtime, no files).

With the XNNPACK delegate (LiteRT's default CPU path) the profiler reports XNNPACK *operators*, not TFLite nodes:
the tag is XNNPACK's operator name (`Convolution (NHWC, F32) IGEMM`, `Fully Connected (NC, QS8, QC8W) GEMM`,
`Convert (NC)`, `Static Reshape (NC)`, `Add (ND)` or `Binary Elementwise (ND) Add`, ...) and meta1 is the
operator's index *within its partition* (it restarts at 0 in each delegated partition). XNNPACK creates its
operators in node order, so the events are aligned to the nodes in order by op type, which is a heuristic:
- a node can have no event of its own: XNNPACK fuses it (PAD into the following CONV_2D, a RELU into the conv
  before it); such nodes are reported as unmatched, their time is inside the neighbour's;
- a node can have several events: XNNPACK adds helper operators (a `Static Reshape` before a FULLY_CONNECTED of a
  rank-2 input, transposes around a BATCH_MATMUL); a helper that matches no node is attached to the node of the
  next matched operator (the one it prepares), else the previous one;
- builtin kernels in between (a partly delegated model) come as OPERATOR_INVOKE events whose meta1 is the exact
  node index (meta2 the subgraph index): they anchor the walk, and delegated operators never match their nodes;
- a partly delegated model has several XNNPACK partitions, each one a node of the rewritten graph: a partition
  holds every supported node that does not wait for a builtin one, so the first partition can run nodes far
  beyond the first builtin node, and a later one (meta1 restarts at 0) goes back to the nodes left behind. Each
  partition walks its own nodes in order, from the earliest node no operator has claimed yet.
With `kernel_mode = "builtin"` every event is of that exact kind and the alignment is exact.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

BUILTIN = "OPERATOR_INVOKE"
DELEGATED = "DELEGATE_PROFILED_OPERATOR_INVOKE"
OP_EVENT_TYPES = (BUILTIN, DELEGATED)
WINDOW = 8  # how many nodes ahead an operator may match (the fused nodes it skips)

_RESHAPES = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})
_SPLITS = frozenset({"SPLIT", "SPLIT_V", "UNPACK"})
_UNARY = frozenset({"GELU", "LOGISTIC", "TANH", "ELU", "HARD_SWISH", "LEAKY_RELU", "EXP", "LOG", "SQRT", "RSQRT",
                    "ABS", "NEG", "SQUARE", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "FLOOR", "CEIL", "ROUND",
                    "SIN", "COS", "SIGN"})
# (pattern over the lowercased tag, TFLite builtin ops it can come from); the first pattern that matches wins, so
# the longer names come before the names they contain ("reciprocal square root" before "square root").
_PATTERNS: tuple[tuple[str, frozenset[str]], ...] = tuple((p, frozenset(ops)) for p, ops in (
    (r"^deconvolution", {"TRANSPOSE_CONV"}),
    (r"^convolution.*dwconv|^depthwise", {"DEPTHWISE_CONV_2D", "CONV_2D"}),
    (r"^convolution", {"CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D"}),
    (r"^fully connected", {"FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D"}),
    (r"^batch matrix multiply", {"BATCH_MATMUL", "FULLY_CONNECTED"}),
    (r"^global (average|sum) pooling", {"MEAN", "SUM", "AVERAGE_POOL_2D"}),
    (r"^average pooling", {"AVERAGE_POOL_2D"}),
    (r"^(max|argmax) pooling", {"MAX_POOL_2D"}),
    (r"^softmax", {"SOFTMAX"}),
    (r"^transpose", {"TRANSPOSE"}),
    (r"^(static )?reshape", _RESHAPES),
    (r"^copy", _RESHAPES | _SPLITS | {"CONCATENATION"}),
    (r"^concatenate", {"CONCATENATION", "PACK"}),
    (r"^even split", _SPLITS),
    (r"^(static |strided )?slice", {"SLICE", "STRIDED_SLICE"} | _SPLITS),
    (r"^(constant )?pad", {"PAD", "PADV2", "MIRROR_PAD"}),
    # XNNPACK's name for a unary operator its name table lacks: in static INT8 graphs, a float unary op between a
    # DEQUANTIZE and a QUANTIZE (GELU, sigmoid, ...) that it fuses into one int8 lookup-table operator
    (r"^invalid unary op", _UNARY),
    (r"^convert", {"QUANTIZE", "DEQUANTIZE", "CAST"}),
    (r"^resize bilinear", {"RESIZE_BILINEAR"}),
    (r"^resize nearest|^static resize", {"RESIZE_NEAREST_NEIGHBOR"}),
    (r"^depth to space", {"DEPTH_TO_SPACE"}),
    (r"^space to depth", {"SPACE_TO_DEPTH"}),
    (r"^mean\b", {"MEAN"}),
    (r"^sum\b", {"SUM"}),
    (r"^max \(|^max \w* ?reduce|^reduce max", {"REDUCE_MAX"}),
    (r"^min \(|^reduce min", {"REDUCE_MIN"}),
    (r"squared difference", {"SQUARED_DIFFERENCE"}),
    (r"\badd\b", {"ADD", "ADD_N"}),
    (r"\bsubtract\b", {"SUB"}),
    (r"\bmultiply\b", {"MUL"}),
    (r"\bdivide\b", {"DIV"}),
    (r"\bmaximum\b", {"MAXIMUM", "RELU", "RELU6"}),
    (r"\bminimum\b", {"MINIMUM", "RELU6"}),
    (r"\bpower\b", {"POW"}),
    (r"reciprocal square root", {"RSQRT"}),
    (r"square root", {"SQRT"}),
    (r"\bsquare\b", {"SQUARE", "MUL"}),
    (r"sigmoid", {"LOGISTIC"}),
    (r"\btanh\b", {"TANH"}),
    (r"\bgelu\b", {"GELU"}),
    (r"hardswish|hard swish", {"HARD_SWISH"}),
    (r"leaky relu", {"LEAKY_RELU"}),
    (r"\bprelu\b", {"PRELU"}),
    (r"\belu\b", {"ELU"}),
    (r"\bclamp\b", {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "MINIMUM", "MAXIMUM"}),
    (r"\babs\b|absolute", {"ABS"}),
    (r"\bnegate\b", {"NEG"}),
    (r"\bexp\b|exponential", {"EXP"}),
    (r"\blog\b", {"LOG"}),
    (r"\bfloor\b", {"FLOOR"}),
    (r"\bceiling\b", {"CEIL"}),
    (r"round", {"ROUND"}),
    (r"\bsine\b", {"SIN"}),
    (r"\bcosine\b", {"COS"}),
    (r"\bsign\b", {"SIGN"}),
))
_COMPILED = tuple((re.compile(p), ops) for p, ops in _PATTERNS)
# XNNPACK's layout helpers: operators it adds for a node of another type (a reshape before a rank-2 FC, ...)
_HELPER = re.compile(r"^(static reshape|reshape|copy|transpose|convert)\b")


@dataclass(frozen=True)
class Node:
    index: int  # TFLite node index in subgraph 0 (= execution order there)
    op: str  # builtin op name, as the Interpreter's _get_ops_details() and the builtin profiler events spell it
    outputs: tuple[str, ...] = ()  # output tensor names (litert-torch puts the torch module path in them)
    inputs: tuple[int, ...] | None = None  # input tensor ids (partition order, partitions.py); None: not recorded
    output_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Assignment:
    node: int | None  # TFLite node index, or None when the operator matches no node
    how: str  # "exact" (builtin event), "type" (op type match), "expansion" (one more operator of the previous
    #           node), "helper" (layout helper attached to the node it serves), "none", "nested" (a builtin
    #           event of another subgraph: inside its control-flow node's own time)


@dataclass(frozen=True)
class Alignment:
    assignments: tuple[Assignment, ...]  # one per operator event given, same order
    unmatched_nodes: tuple[int, ...]  # node indices no event was put on (fused away, or never run)


def tflite_ops_for(tag: str) -> frozenset[str]:
    """The TFLite builtin ops an XNNPACK operator name can come from; empty when the name is unknown."""
    text = tag.strip().lower()
    for pattern, ops in _COMPILED:
        if pattern.search(text):
            return ops
    return frozenset()


def is_helper(tag: str) -> bool:
    return _HELPER.match(tag.strip().lower()) is not None


def align(nodes: Sequence[Node], events: Sequence[Mapping[str, object]]) -> Alignment:
    """Assign each operator event (dicts with type, tag, meta1, meta2; in run order) to a node of `nodes`."""
    from edgekit.targets.litert.partitions import delegated_partitions

    position = {node.index: pos for pos, node in enumerate(nodes)}
    # nodes run by builtin kernels (exact, from their own events): no delegated operator belongs to them
    builtin = {position[int(e["meta1"])] for e in events  # type: ignore[arg-type]
               if e.get("type") == BUILTIN and not int(e.get("meta2", 0) or 0) and int(e.get("meta1", -1)) in position}
    partitions = delegated_partitions(nodes, builtin)
    starts = sum(1 for i, e in enumerate(events) if _starts_partition(e, i))
    if partitions is not None and len(partitions) != starts:
        partitions = None  # the events do not tell the partitions the graph says: walk every node in order
    everything = [p for p in range(len(nodes)) if p not in builtin]
    claimed: set[int] = set()
    result: list[Assignment | None] = [None] * len(events)
    order = everything  # the node positions the current partition walks, in its order
    cursor = 0  # index into `order` of the next node an operator may claim
    last: int | None = None  # position of the node the previous operator went to
    partition = 0
    kinds = [tflite_ops_for(str(e.get("tag", ""))) if e.get("type") == DELEGATED else frozenset() for e in events]

    def ahead() -> list[tuple[int, int]]:
        """(index into order, node position) of the next WINDOW nodes a delegated operator may claim."""
        out: list[tuple[int, int]] = []
        for k in range(cursor, len(order)):
            if order[k] not in claimed:
                out.append((k, order[k]))
                if len(out) == WINDOW:
                    break
        return out

    for i, event in enumerate(events):
        if _starts_partition(event, i):
            if partitions is not None:
                order, partition = partitions[partition], partition + 1
                cursor = 0
            elif i > 0:  # another partition, nodes unknown: from the earliest node no operator has claimed
                cursor = next((k for k, p in enumerate(order) if p not in claimed), len(order))
            last = None
        if event.get("type") == BUILTIN:
            if int(event.get("meta2", 0) or 0) != 0:
                result[i] = Assignment(None, "nested")
                continue
            pos = position.get(int(event.get("meta1", -1)))  # type: ignore[arg-type]
            if pos is None:
                result[i] = Assignment(None, "none")
                continue
            result[i] = Assignment(nodes[pos].index, "exact")
            claimed.add(pos)
            if partitions is None:  # walking every node in order: the delegated ones after it come next
                cursor = max(cursor, bisect.bisect_left(order, pos + 1))
            last = pos
            continue
        ops = kinds[i]
        window = ahead()
        found = next(((k, p) for k, p in window if nodes[p].op in ops), None)
        if found is not None and found[0] > cursor and i + 1 < len(events) and is_helper(str(event.get("tag", ""))) \
                and any(nodes[p].op in kinds[i + 1] for k, p in window if k < found[0]):
            # A layout helper whose match lies ahead would skip the very node the next operator matches: it is a
            # helper of that node (XNNPACK's reshape before a FULLY_CONNECTED), not the later node of its own
            # type. (A compute operator skips nodes only because XNNPACK fused them, e.g. the DEQUANTIZE and
            # QUANTIZE around a float GELU that became one int8 lookup-table operator.)
            continue  # attached after the walk
        if found is not None:
            result[i] = Assignment(nodes[found[1]].index, "type")
            claimed.add(found[1])
            cursor, last = found[0] + 1, found[1]
        elif last is not None and nodes[last].op in ops:
            result[i] = Assignment(nodes[last].index, "expansion")
    _attach_helpers(events, result)
    unmatched = tuple(node.index for pos, node in enumerate(nodes) if pos not in claimed)
    return Alignment(tuple(a or Assignment(None, "none") for a in result), unmatched)


def _starts_partition(event: Mapping[str, object], i: int) -> bool:
    """The first operator of an XNNPACK partition: the profiler numbers operators from 0 in each."""
    return event.get("type") == DELEGATED and int(event.get("meta1", 1) or 0) == 0


def _attach_helpers(events: Sequence[Mapping[str, object]], result: list[Assignment | None]) -> None:
    """Unassigned layout helpers go to the node of the next delegated operator of their partition that has one
    (the operator they prepare), else to the previous one's."""
    for i, event in enumerate(events):
        if result[i] is not None or event.get("type") != DELEGATED or not is_helper(str(event.get("tag", ""))):
            continue
        for step in (1, -1):
            j = i + step
            while 0 <= j < len(events) and abs(j - i) <= WINDOW and events[j].get("type") == DELEGATED:
                if step == 1 and int(events[j].get("meta1", 1) or 0) == 0:
                    break  # meta1 restarts at 0: the next partition
                target = result[j]
                if target is not None and target.node is not None and target.how != "helper":
                    result[i] = Assignment(target.node, "helper")
                    break
                if step == -1 and int(events[j].get("meta1", 1) or 0) == 0:
                    break  # the first operator of this partition has been looked at
                j += step
            if result[i] is not None:
                break
