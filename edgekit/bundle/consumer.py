#!/usr/bin/env python3
"""The reference consumer of an edgekit bundle: segment an image with nothing but the bundle's manifest.json, numpy,
PIL and the platform's runtime (ONNX Runtime for `onnx` bundles, ai_edge_litert for `android`). It is copied into
every bundle as consume.py; an app in another language follows the same steps.

    python consume.py BUNDLE IMAGE --point X,Y [--point X,Y ...] [--negative X,Y] [--box X0,Y0,X1,Y1] --out mask.png

Steps (all from the manifest): resize the long side to `preprocess.resize_longest` (PIL bilinear), normalise with
`mean`/`std`, pad bottom-right with zeros to `input_size`, NCHW float32; run the encoder; scale the prompt to the
resized image's pixels (`prompt.coordinate_space` "input"), append the pad point (label -1) unless there is a box,
pad to a compiled prompt length where the model has fixed ones; run the decoder; take the multimask candidate
with the highest predicted IoU for a point prompt, the single mask for a box; upscale the low-res logits to the
input size, crop the resized image's area, resize to the original size (bilinear, half-pixel centres) and
threshold.
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image


def load_manifest(bundle):
    with open(os.path.join(bundle, "manifest.json")) as handle:
        manifest = json.load(handle)
    if manifest.get("schema") != "edgekit.bundle/1":
        raise SystemExit("not an edgekit.bundle/1 manifest: %s" % manifest.get("schema"))
    return manifest


def preprocess(manifest, rgb):
    """uint8 HxWx3 -> (float32 1x3xSxS, (resized h, resized w))."""
    pre = manifest["preprocess"]
    h, w = rgb.shape[:2]
    scale = pre["resize_longest"] / float(max(h, w))
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    resized = rgb if (nh, nw) == (h, w) else np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR))
    x = resized.transpose(2, 0, 1)[None].astype(np.float32)
    if pre["scale"] == "0-1":
        x = x / np.float32(255.0)
    x = (x - np.asarray(pre["mean"], np.float32).reshape(1, 3, 1, 1)) / np.asarray(pre["std"], np.float32).reshape(1, 3, 1, 1)
    size = pre["input_size"]
    padded = np.zeros((1, 3, size, size), np.float32)
    padded[:, :, :nh, :nw] = x
    return padded, (nh, nw)


def prompt(manifest, original_hw, resized_hw, points, labels, box):
    """Prompt coordinates in the resized image's pixels, SAM's pad point added, padded to a compiled length."""
    spec = manifest["prompt"]
    sy, sx = resized_hw[0] / float(original_hw[0]), resized_hw[1] / float(original_hw[1])
    coords = [[x * sx, y * sy] for x, y in points]
    labs = list(labels)
    if box is not None:
        coords += [[box[0] * sx, box[1] * sy], [box[2] * sx, box[3] * sy]]
        labs += spec["box_labels"]
    else:
        coords.append(list(spec["pad_point"]))
        labs.append(spec["pad_label"])
    lengths = spec.get("point_counts")
    if lengths:
        fit = next((n for n in lengths if n >= len(coords)), None)
        if fit is None:
            raise SystemExit("a prompt of %d points is longer than the model's %d" % (len(coords), lengths[-1]))
        while len(coords) < fit:
            coords.append(list(spec["pad_point"]))
            labs.append(spec["pad_label"])
    return np.asarray([coords], np.float32), np.asarray([labs], np.float32)


class Runtime:
    """One model file of the bundle under its platform's runtime: feeds by input name, outputs by name."""

    def __init__(self, manifest, bundle, part, coords_len=None):
        entry = manifest["models"][part]
        path = os.path.join(bundle, entry["file"])
        self.platform = manifest["platform"]
        if self.platform == "onnx":
            import onnxruntime as ort

            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            self.names = [o.name for o in self.session.get_outputs()]
        elif self.platform == "android":
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=path)
            self.signatures = entry.get("signatures") or {}
        else:
            raise SystemExit("the reference consumer runs onnx and android bundles; %s runs in its app" % self.platform)

    def run(self, feeds):
        if self.platform == "onnx":
            wanted = {i.name for i in self.session.get_inputs()}
            return dict(zip(self.names, self.session.run(None, {k: v for k, v in feeds.items() if k in wanted})))
        name = next(iter(self.interpreter.get_signature_list()))
        if "point_coords" in feeds:  # one signature per prompt length
            name = self.signatures.get(str(feeds["point_coords"].shape[1]), name)
        runner = self.interpreter.get_signature_runner(name)
        wanted = runner.get_input_details()
        out = runner(**{k: v for k, v in feeds.items() if k in wanted})
        return {k: np.asarray(v) for k, v in out.items()}


def bilinear(logits, size):
    """float32 (h, w) -> (H, W) with half-pixel centres (PIL's "F" mode resize)."""
    return np.asarray(Image.fromarray(logits.astype(np.float32), mode="F").resize((size[1], size[0]), Image.BILINEAR))


def postprocess(manifest, low_res, original_hw, resized_hw):
    post = manifest["postprocess"]
    size = manifest["preprocess"]["input_size"]
    up = bilinear(low_res, (size, size))[: resized_hw[0], : resized_hw[1]]
    logits = bilinear(up, original_hw)
    return logits > post["mask_threshold"]


def segment(bundle, rgb, points=(), labels=(), box=None):
    """The mask (H x W bool) and its predicted IoU for one prompt."""
    manifest = load_manifest(bundle)
    x, resized_hw = preprocess(manifest, rgb)
    features = Runtime(manifest, bundle, "encoder").run({"image": x})
    coords, labs = prompt(manifest, rgb.shape[:2], resized_hw, points, labels, box)
    feeds = dict(features)
    feeds.update(point_coords=coords, point_labels=labs)
    low = manifest["postprocess"]["low_res_size"]
    decoder_inputs = [i["name"] for i in manifest["models"]["decoder"]["inputs"]]
    if "mask_input" in decoder_inputs:
        feeds.update(mask_input=np.zeros((1, 1, low, low), np.float32), has_mask_input=np.zeros((1,), np.float32))
    out = Runtime(manifest, bundle, "decoder").run(feeds)
    masks, iou = out["low_res_masks"][0], out["iou_predictions"][0]
    post = manifest["postprocess"]
    if box is None:
        channels = post["multimask_channels"]
        best = channels[int(np.argmax(iou[channels]))]
    else:
        best = post["single_mask_channel"]
    return postprocess(manifest, masks[best], rgb.shape[:2], resized_hw), float(iou[best])


def _pair(text):
    return [float(v) for v in text.split(",")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("image")
    parser.add_argument("--point", action="append", default=[], type=_pair, help="X,Y of a positive point")
    parser.add_argument("--negative", action="append", default=[], type=_pair, help="X,Y of a negative point")
    parser.add_argument("--box", type=_pair, default=None, help="X0,Y0,X1,Y1")
    parser.add_argument("--out", required=True, help="the mask as a PNG")
    args = parser.parse_args(argv)
    rgb = np.asarray(Image.open(args.image).convert("RGB"))
    points = args.point + args.negative
    labels = [1] * len(args.point) + [0] * len(args.negative)
    mask, iou = segment(args.bundle, rgb, points, labels, args.box)
    Image.fromarray((mask * 255).astype(np.uint8)).save(args.out)
    print("mask %dx%d, %d pixels, predicted IoU %.3f -> %s" % (mask.shape[1], mask.shape[0], mask.sum(), iou, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
