"""Which nodes each XNNPACK partition of a partly delegated .tflite holds, in the order the delegate was given them
(pure: node tensor ids in, node positions out).

TFLite hands a delegate its supported nodes in *subsets*, each a node of the rewritten graph. It builds them the
way tflite/graph_info.cc does: starting a subset, it sweeps the nodes in order, again and again, adding every node
whose inputs are ready and whose kind (delegated or builtin) is the subset's (the first ready node decides it),
until a sweep adds nothing; then the next subset, of the other kind. So the first XNNPACK partition can hold
nodes far beyond the first builtin node (all those that do not wait for it), and the partition after a builtin
node goes back to the nodes left behind. XNNPACK creates its operators in the order of its partition's nodes, and
the profiler numbers them from 0 in each partition: knowing the partitions, the alignment walks each partition's
operators over that partition's nodes alone (targets/litert/xnnpack_align.py).
"""
from __future__ import annotations

from typing import Protocol, Sequence


class TensorNode(Protocol):
    inputs: tuple[int, ...] | None  # tensor ids read (-1: an omitted optional input); None when not recorded
    output_ids: tuple[int, ...] | None


def delegated_partitions(nodes: Sequence[TensorNode], builtin: set[int]) -> list[list[int]] | None:
    """Positions (into `nodes`) of each delegated subset's nodes, subsets in execution order; `builtin` holds the
    positions of the nodes builtin kernels ran. None when the nodes carry no tensor ids (an older runner) or the
    dependencies cannot be resolved (then the caller falls back to walking all nodes in order)."""
    if not nodes or any(n.inputs is None or n.output_ids is None for n in nodes):
        return None
    produced = {t for n in nodes for t in n.output_ids or ()}
    ready: set[int] = set()  # outputs of the nodes placed so far (graph inputs and constants are always ready)
    placed = [False] * len(nodes)
    subsets: list[tuple[bool, list[int]]] = []
    while not all(placed):
        kind: bool | None = None
        members: list[int] = []
        added = True
        while added:
            added = False
            for p, node in enumerate(nodes):
                if placed[p] or any(t >= 0 and t in produced and t not in ready for t in node.inputs or ()):
                    continue
                delegated = p not in builtin
                if kind is None:
                    kind = delegated
                if delegated != kind:
                    continue
                placed[p] = True
                members.append(p)
                ready.update(node.output_ids or ())
                added = True
        if not members:
            return None  # nothing can run: a cycle, or an input no node of this subgraph produces in time
        subsets.append((bool(kind), members))
    return [members for delegated, members in subsets if delegated]
