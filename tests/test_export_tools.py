"""Export building blocks on small real graphs: layer maps, the GELU rewrite, the one-file policy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgekit.attribution import attribute, module_for
from edgekit.exporters.graphs import GraphSignature
from edgekit.exporters.layer_map import TOP_LEVEL, LayerMap, build_layer_map
from edgekit.exporters.rewrite import canonical_gelu
from edgekit.exporters.torch2onnx import export_onnx


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).permute(0, 2, 3, 1)
        return self.fc(nn.functional.gelu(self.norm(x))).permute(0, 3, 1, 2)


class Wrapper(nn.Module):  # mirrors EncoderGraph: the variant sits at `.model`
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.image_encoder = nn.ModuleList([Block(), Block()])
        self.model.image_encoder[1].conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        for block in self.model.image_encoder:
            x = block(x)
        return x * 2


SIG = GraphSignature(inputs=("image",), outputs=("out",), dynamic={})


@pytest.fixture(scope="module", params=["dynamo", "legacy"])
def exported(request, tmp_path_factory) -> tuple[str, Path, object]:
    path = tmp_path_factory.mktemp(request.param) / "tiny.onnx"
    torch.manual_seed(0)
    module = Wrapper().eval()
    result = export_onnx(module, (torch.randn(1, 3, 16, 16),), SIG, path, prefer=request.param)
    return request.param, path, (module, result)


def test_export_matches_torch_and_maps_every_node_to_its_module(exported) -> None:
    kind, path, (module, result) = exported
    assert result.exporter == kind and result.external_data is None and path.is_file()
    x = torch.randn(1, 3, 16, 16)
    y = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    np.testing.assert_allclose(y, module(x).detach().numpy(), atol=1e-5)
    modules = set(result.layer_map.nodes.values())
    assert "image_encoder.0.conv" in modules and "image_encoder.1.fc" in modules
    assert all(not m.startswith("model.") for m in modules)
    conv_nodes = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    assert {result.layer_map.nodes[n.name] for n in conv_nodes} == {"image_encoder.0.conv", "image_encoder.1.conv"}


def test_dynamo_gelu_is_rewritten_so_onnxruntime_fuses_it(exported, tmp_path: Path) -> None:
    kind, path, _ = exported
    if kind != "dynamo":
        pytest.skip("the legacy exporter already writes the fusable order")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert ops.count("Gelu") == 2 and "Erf" not in ops


def test_gelu_rewrite_is_exact() -> None:
    x = torch.linspace(-6, 6, 4097).reshape(1, 1, 1, -1)

    class G(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return nn.functional.gelu(t)

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.onnx"
        torch.onnx.export(G(), (x,), str(path), dynamo=True, opset_version=18, input_names=["t"], output_names=["y"])
        model = onnx.load(str(path))
        before = onnx.reference.ReferenceEvaluator(model).run(None, {"t": x.numpy()})[0]
        assert canonical_gelu(model) == 1
        after = onnx.reference.ReferenceEvaluator(model).run(None, {"t": x.numpy()})[0]
    assert np.array_equal(before, after)  # bit for bit: only the multiplication by 0.5 moved


def test_attribution_follows_runtime_renames() -> None:
    lm = LayerMap(nodes={"node_Conv_3": "image_encoder.0.conv", "/model/a/MatMul": "a", "node_matmul_12": "b.attn"},
                  tensors={"getitem_90": "image_encoder.1", "val_7": "c.norm"})
    assert module_for("node_Conv_3", lm) == "image_encoder.0.conv"
    assert module_for("node_Conv_3_kernel_time", lm) == "image_encoder.0.conv"
    assert module_for("getitem_90_nchwc", lm) == "image_encoder.1"
    assert module_for("node_matmul_12/MatMulScaleFusion/", lm) == "b.attn"
    assert module_for("val_7_QuantizeLinear", lm) == "c.norm"
    assert module_for("SkipLayerNormalization_token_4", lm) == ""
    names = ["ReorderInput_token_1", "node_Conv_3", "ReorderOutput_token_2", "SkipLayerNormalization_token_4"]
    graph = {"SkipLayerNormalization_token_4": (["x"], ["val_7"])}
    assert attribute(names, lm, graph) == ["image_encoder.0.conv"] * 3 + ["c.norm"]


def test_layer_map_round_trip_and_inheritance(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], ["a"], name="/model/enc/Relu"),
             helper.make_node("Neg", ["a"], ["b"], name="slim_made_this")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    lm = build_layer_map(helper.make_model(graph))
    assert lm.nodes == {"/model/enc/Relu": "enc", "slim_made_this": "enc"}
    lm.write(tmp_path / "m.json")
    assert LayerMap.read(tmp_path / "m.json") == lm
    top = build_layer_map(helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["b"], name="/Relu")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])))
    assert top.nodes == {"/Relu": TOP_LEVEL}


def test_large_models_get_one_external_data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above protobuf's limit the weights go to ONE `<name>.data` beside the .onnx (forced here with a 0 limit)."""
    import edgekit.exporters.torch2onnx as t2o

    monkeypatch.setattr(t2o, "_SINGLE_FILE_LIMIT", 0)
    torch.manual_seed(0)
    module = Wrapper().eval()
    result = export_onnx(module, (torch.randn(1, 3, 16, 16),), SIG, tmp_path / "big.onnx", prefer="legacy")
    assert result.external_data == tmp_path / "big.onnx.data" and result.external_data.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]  # nothing else left behind
    x = torch.randn(1, 3, 16, 16)
    y = ort.InferenceSession(str(tmp_path / "big.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    np.testing.assert_allclose(y, module(x).detach().numpy(), atol=1e-5)
