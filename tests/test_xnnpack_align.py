"""The pure alignment of LiteRT profiler events to TFLite nodes (targets/litert/xnnpack_align.py, partitions.py), on
event sequences as XNNPACK emits them for litert-torch models (the shapes seen in MobileSAM's profiles): int8
lookup-table operators that swallow a DEQUANTIZE / GELU / QUANTIZE chain, a reshape helper before a fully
connected layer, and a partly delegated decoder whose first XNNPACK partition runs nodes beyond a builtin one.
"""
from __future__ import annotations

from edgekit.targets.litert.partitions import delegated_partitions
from edgekit.targets.litert.xnnpack_align import BUILTIN, DELEGATED, Node, align


def delegated(*tags: str, start: int = 0) -> list[dict]:
    return [{"type": DELEGATED, "tag": tag, "meta1": start + i, "meta2": 0} for i, tag in enumerate(tags)]


def builtin(node: int, op: str) -> dict:
    return {"type": BUILTIN, "tag": op, "meta1": node, "meta2": 0}


def nodes_of(*ops: str) -> list[Node]:
    return [Node(i, op, (f"t{i}",)) for i, op in enumerate(ops)]


def test_int8_lookup_table_takes_the_float_unary_node_between_its_dequantize_and_quantize() -> None:
    # static INT8: CONV(1x1) -> DEQUANTIZE -> GELU -> QUANTIZE -> DEPTHWISE -> DEQUANTIZE -> GELU -> QUANTIZE -> CONV ...
    nodes = nodes_of("CONV_2D", "DEQUANTIZE", "GELU", "QUANTIZE", "DEPTHWISE_CONV_2D", "DEQUANTIZE", "GELU",
                     "QUANTIZE", "CONV_2D", "DEQUANTIZE", "ADD")
    events = delegated("Fully Connected (NC, QS8, QC8W) GEMM", "Invalid Unary Op", "Convolution (NHWC, QC8) DWConv",
                       "Invalid Unary Op", "Fully Connected (NC, QS8, QC8W) GEMM", "Convert (NC)", "Add (ND)")
    got = align(nodes, events)
    assert [(a.node, a.how) for a in got.assignments] == [(0, "type"), (2, "type"), (4, "type"), (6, "type"),
                                                          (8, "type"), (9, "type"), (10, "type")]
    assert got.unmatched_nodes == (1, 3, 5, 7)  # fused into the lookup tables: their time is inside them


def test_a_reshape_helper_goes_to_the_fully_connected_it_prepares_past_a_fused_quantize() -> None:
    nodes = nodes_of("QUANTIZE", "FULLY_CONNECTED", "DEQUANTIZE", "GELU", "QUANTIZE", "FULLY_CONNECTED",
                     "DEQUANTIZE", "ADD", "RESHAPE")
    events = delegated("Convert (NC)", "Fully Connected (NC, QS8, QC8W) GEMM", "Invalid Unary Op",
                       "Static Reshape (NC)", "Fully Connected (NC, QS8, QC8W) GEMM", "Convert (NC)", "Add (ND)",
                       "Static Reshape (NC)")
    got = align(nodes, events)
    assert [(a.node, a.how) for a in got.assignments] == [(0, "type"), (1, "type"), (3, "type"), (5, "helper"),
                                                          (5, "type"), (6, "type"), (7, "type"), (8, "type")]


def partly_delegated() -> list[Node]:
    """A decoder's shape: point labels compared (EQUAL, SELECT_V2: builtin) while the image path (CONV, RESHAPE) does
    not wait for them; the ADD that joins both runs in a later partition."""
    spec = [("MUL", (0,), (1,)), ("EQUAL", (2,), (3,)), ("SELECT_V2", (3, 1), (4,)), ("CONV_2D", (10, 20), (11,)),
            ("ADD", (4, 11), (12,)), ("RESHAPE", (11,), (13,))]
    return [Node(i, op, (f"t{outs[0]}",), ins, outs) for i, (op, ins, outs) in enumerate(spec)]


def test_partitions_follow_tflite_subsets() -> None:
    nodes = partly_delegated()
    assert delegated_partitions(nodes, builtin={1, 2}) == [[0, 3, 5], [4]]
    assert delegated_partitions(nodes, builtin=set()) == [[0, 1, 2, 3, 4, 5]]
    no_ids = [Node(n.index, n.op, n.outputs) for n in nodes]
    assert delegated_partitions(no_ids, builtin={1, 2}) is None  # an older runner's nodes: no partition order


def test_a_partly_delegated_graph_aligns_each_partition_over_its_own_nodes() -> None:
    nodes = partly_delegated()
    events = [*delegated("Multiply (ND)", "Convolution (NHWC, F32) IGEMM", "Static Reshape (NC)"),
              builtin(1, "EQUAL"), builtin(2, "SELECT_V2"), *delegated("Add (ND)")]
    got = align(nodes, events)
    assert [(a.node, a.how) for a in got.assignments] == [(0, "type"), (3, "type"), (5, "type"), (1, "exact"),
                                                          (2, "exact"), (4, "type")]
    assert got.unmatched_nodes == ()
    # without tensor ids the walk still goes back for the later partition's node
    plain = align([Node(n.index, n.op, n.outputs) for n in nodes], events)
    assert plain.assignments[-1].node == 4
