"""INT8 presets for ONNX Runtime static quantization, with the reason beside each choice."""
from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class QuantPreset:
    name: str
    activation_type: str  # "QUInt8" | "QInt8" (onnxruntime.quantization.QuantType member names)
    weight_type: str
    per_channel: bool
    activation_symmetric: bool
    weight_symmetric: bool
    reduce_range: bool
    op_types: tuple[str, ...]  # what gets quantized; everything else stays float between Q/DQ pairs
    float_outputs: tuple[str, ...] = ()  # quantized ops whose OUTPUT stays float (no Q/DQ after them)
    ort_gelu: bool = False  # fuse erf-GELU into com.microsoft.Gelu before quantizing (ONNX Runtime only)
    float_attention: bool = False  # keep activation x activation MatMuls (q·kᵀ, attn·v) in float
    bimodal: bool = False  # PTQ4SAM's sign flip of query/key channels before calibration (quant/bimodal.py)
    reasons: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict:
        """What identifies the preset's output in the artifact store."""
        return {k: v for k, v in self.__dict__.items() if k != "reasons"}


# Conv / MatMul / Gemm carry nearly all the FLOPs of every SAM encoder and decoder. Quantizing the element-wise
# and normalisation ops as well adds a Q/DQ pair around each of them, which costs time on CPUs and accuracy
# (LayerNorm, Softmax and GELU inputs have wide ranges), so they stay float.
_COMPUTE_OPS = ("Conv", "MatMul", "Gemm")

PRESETS: dict[str, QuantPreset] = {
    "x86": QuantPreset(
        name="x86", activation_type="QUInt8", weight_type="QInt8", per_channel=True,
        activation_symmetric=False, weight_symmetric=True, reduce_range=False, op_types=_COMPUTE_OPS,
        float_outputs=("Gemm", "MatMul"), ort_gelu=True,
        reasons={
            "activation_type": "u8 activations x s8 weights is what VNNI's VPDPBUSD multiplies natively (U8S8)",
            "float_outputs": "Gemm/MatMul feed GELU, softmax and residual adds, which run in float: a float output "
                             "(QGemm / MatMulIntegerToFloat) saves a Quantize+Dequantize pass per layer "
                             "(MobileSAM encoder, 1 thread: INT8/FP32 0.69 -> 0.61)",
            "ort_gelu": "ONNX Runtime splits the Dequantize feeding an erf-GELU and then cannot fuse it: fusing first "
                        "keeps one kernel instead of five float passes",
            "reduce_range": "off: 7-bit weights only avoid saturation on pre-VNNI AVX2/AVX-512 CPUs",
            "per_channel": "SAM encoders' conv/linear output channels differ in range by orders of magnitude",
            "activation_symmetric": "asymmetric: post-GELU/ReLU activations are one-sided, a zero point keeps 8 bits",
        },
    ),
    "arm": QuantPreset(
        name="arm", activation_type="QInt8", weight_type="QInt8", per_channel=True,
        activation_symmetric=False, weight_symmetric=True, reduce_range=False, op_types=_COMPUTE_OPS,
        float_outputs=("Gemm", "MatMul"), ort_gelu=True,
        reasons={
            "activation_type": "S8S8 QDQ is ONNX Runtime's recommended default on ARM64 (SDOT/I8MM kernels)",
            "float_outputs": "as on x86: no Quantize/Dequantize pass after layers whose consumers run in float",
            "per_channel": "as on x86: per-channel weight scales keep accuracy at no runtime cost",
        },
    ),
    "tensorrt": QuantPreset(
        name="tensorrt", activation_type="QInt8", weight_type="QInt8", per_channel=True,
        activation_symmetric=True, weight_symmetric=True, reduce_range=False, op_types=_COMPUTE_OPS,
        float_outputs=_COMPUTE_OPS, ort_gelu=False,
        reasons={
            "float_outputs": "TensorRT's explicit quantization wants Q/DQ on the inputs of weighted layers only; it "
                             "chooses output precisions itself",
            "ort_gelu": "standard ONNX ops only: TensorRT fuses the erf-GELU pattern on its own",
            "activation_symmetric": "TensorRT wants symmetric activations (zero point 0) in explicit-quantization QDQ graphs",
            "weight_type": "TensorRT's INT8 is signed, symmetric, per-channel for weights",
        },
    ),
}

# The known SAM recipe: attention's two activation x activation products stay in float (softmax already does).
# Their inputs are the bimodal post-key-linear activations PTQ4SAM describes and the softmax probabilities, whose
# ranges per-tensor int8 serves worst (ExecuTorch's Ethos-U MobileSAM example keeps TinyViT attention at 16 bits;
# ONNX Runtime's CPU kernels have no 16-bit MatMul, so float is the higher precision here).
_SAM_REASON = {"float_attention": "q·kᵀ and attn·v stay in float: per-tensor int8 fits their bimodal / softmax "
                                  "inputs worst, and they carry a small share of the FLOPs"}
PRESETS["x86-sam"] = replace(PRESETS["x86"], name="x86-sam", float_attention=True,
                             reasons={**PRESETS["x86"].reasons, **_SAM_REASON})
PRESETS["arm-sam"] = replace(PRESETS["arm"], name="arm-sam", float_attention=True,
                             reasons={**PRESETS["arm"].reasons, **_SAM_REASON})

# PTQ4SAM's bimodal integration: q·kᵀ stays int8, its keys made one-sided first (an exact rewrite of the float graph)
_PTQ4SAM_REASON = {"bimodal": "query/key channels whose key mean is negative are flipped together (q·kᵀ unchanged), "
                              "so the bimodal post-key-projection activations PTQ4SAM describes fit one int8 range"}
PRESETS["x86-ptq4sam"] = replace(PRESETS["x86"], name="x86-ptq4sam", bimodal=True,
                                 reasons={**PRESETS["x86"].reasons, **_PTQ4SAM_REASON})
PRESETS["arm-ptq4sam"] = replace(PRESETS["arm"], name="arm-ptq4sam", bimodal=True,
                                 reasons={**PRESETS["arm"].reasons, **_PTQ4SAM_REASON})

DEFAULT_PRESET = "x86"
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
