// An edgekit bundle on iOS with Core ML: the steps of consume.py, driven by manifest.json. Add the two
// .mlpackage files to the Xcode project (Xcode compiles them) and manifest.json to the app's resources.
// Not compiled by edgekit's CI (no Swift toolchain installs from the package registries there).
import CoreML
import Foundation

struct SamBundle {
    let manifest: [String: Any]
    let encoder: MLModel
    let decoder: MLModel

    init(manifestURL: URL, encoderURL: URL, decoderURL: URL) throws {
        manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL)) as! [String: Any]
        let config = MLModelConfiguration()
        config.computeUnits = .all
        encoder = try MLModel(contentsOf: MLModel.compileModel(at: encoderURL), configuration: config)
        decoder = try MLModel(contentsOf: MLModel.compileModel(at: decoderURL), configuration: config)
    }

    /// The normalised, bottom-right padded NCHW input from RGB bytes already resized so the long side is
    /// preprocess.resize_longest (resizedW x resizedH).
    func input(rgb: [UInt8], resizedW: Int, resizedH: Int) throws -> MLMultiArray {
        let pre = manifest["preprocess"] as! [String: Any]
        let size = pre["input_size"] as! Int
        let mean = pre["mean"] as! [Double], std = pre["std"] as! [Double]
        let array = try MLMultiArray(shape: [1, 3, NSNumber(value: size), NSNumber(value: size)], dataType: .float32)
        for c in 0..<3 { for y in 0..<size { for x in 0..<size {
            var v: Float = 0
            if y < resizedH && x < resizedW { v = Float((Double(rgb[(y * resizedW + x) * 3 + c]) - mean[c]) / std[c]) }
            array[[0, NSNumber(value: c), NSNumber(value: y), NSNumber(value: x)]] = NSNumber(value: v)
        } } }
        return array
    }

    /// One positive point (in the resized image's pixels) -> low-res logits of the best multimask candidate.
    func segment(image: MLMultiArray, x: Float, y: Float) throws -> MLMultiArray {
        let features = try encoder.prediction(from: MLDictionaryFeatureProvider(dictionary: ["image": image]))
        let prompt = manifest["prompt"] as! [String: Any]
        let coords = try MLMultiArray(shape: [1, 2, 2], dataType: .float32)   // the point, then SAM's pad point
        coords[0] = NSNumber(value: x); coords[1] = NSNumber(value: y); coords[2] = 0; coords[3] = 0
        let labels = try MLMultiArray(shape: [1, 2], dataType: .float32)
        labels[0] = 1; labels[1] = NSNumber(value: prompt["pad_label"] as! Int)
        let post = manifest["postprocess"] as! [String: Any]
        let low = post["low_res_size"] as! Int
        let maskInput = try MLMultiArray(shape: [1, 1, NSNumber(value: low), NSNumber(value: low)], dataType: .float32)
        let hasMask = try MLMultiArray(shape: [1], dataType: .float32)
        hasMask[0] = 0
        let out = try decoder.prediction(from: MLDictionaryFeatureProvider(dictionary: [
            "image_embeddings": features.featureValue(for: "image_embeddings")!.multiArrayValue!,
            "point_coords": coords, "point_labels": labels, "mask_input": maskInput, "has_mask_input": hasMask]))
        return out.featureValue(for: "low_res_masks")!.multiArrayValue!
        // pick multimask_channels by iou_predictions, then the manifest's postprocess steps
    }
}
