// An edgekit bundle on Android with LiteRT (or ONNX Runtime Mobile for an onnx bundle): the steps of consume.py,
// driven by manifest.json. Add `com.google.ai.edge.litert:litert` to the app's dependencies and the bundle's files
// to its assets. Not compiled by edgekit's CI (no Kotlin toolchain installs from the package registries there).
package dev.edgekit.sample

import android.graphics.Bitmap
import org.json.JSONObject
import org.tensorflow.lite.Interpreter
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import kotlin.math.roundToInt

class SamBundle(private val dir: File) {
    private val manifest = JSONObject(File(dir, "manifest.json").readText())
    private val pre = manifest.getJSONObject("preprocess")
    private val prompt = manifest.getJSONObject("prompt")
    private val post = manifest.getJSONObject("postprocess")
    private val encoder = Interpreter(File(dir, manifest.getJSONObject("models").getJSONObject("encoder").getString("file")))
    private val decoder = Interpreter(File(dir, manifest.getJSONObject("models").getJSONObject("decoder").getString("file")))
    private val size = pre.getInt("input_size")
    private var resizedH = 0
    private var resizedW = 0

    /** Long side to resize_longest (bilinear), normalise, pad bottom-right with zeros: NCHW float32. */
    fun preprocess(image: Bitmap): ByteBuffer {
        val scale = pre.getInt("resize_longest").toFloat() / maxOf(image.width, image.height)
        resizedH = (image.height * scale + 0.5f).toInt()
        resizedW = (image.width * scale + 0.5f).toInt()
        val resized = Bitmap.createScaledBitmap(image, resizedW, resizedH, true)
        val mean = pre.getJSONArray("mean")
        val std = pre.getJSONArray("std")
        val buffer = ByteBuffer.allocateDirect(4 * 3 * size * size).order(ByteOrder.nativeOrder())
        val pixels = IntArray(resizedW * resizedH)
        resized.getPixels(pixels, 0, resizedW, 0, 0, resizedW, resizedH)
        for (c in 0 until 3) for (y in 0 until size) for (x in 0 until size) {
            val v = if (y < resizedH && x < resizedW) {
                val p = pixels[y * resizedW + x]
                val channel = when (c) { 0 -> (p shr 16) and 255; 1 -> (p shr 8) and 255; else -> p and 255 }
                ((channel - mean.getDouble(c)) / std.getDouble(c)).toFloat()
            } else 0f
            buffer.putFloat(v)
        }
        buffer.rewind()
        return buffer
    }

    /** One positive point in original-image pixels -> the best low-res mask's logits and its channel. */
    fun segment(image: Bitmap, x: Float, y: Float): FloatArray {
        val embeddings = Array(1) { Array(256) { Array(64) { FloatArray(64) } } }
        encoder.runSignature(mapOf("image" to preprocess(image)), mapOf("image_embeddings" to embeddings))
        val sx = resizedW.toFloat() / image.width
        val sy = resizedH.toFloat() / image.height
        // the point, then SAM's pad point: the 2-point signature (prompt.point_counts)
        val coords = arrayOf(arrayOf(floatArrayOf(x * sx, y * sy), floatArrayOf(0f, 0f)))
        val labels = arrayOf(floatArrayOf(1f, prompt.getInt("pad_label").toFloat()))
        val low = post.getInt("low_res_size")
        val masks = Array(1) { Array(4) { Array(low) { FloatArray(low) } } }
        val iou = Array(1) { FloatArray(4) }
        val signature = manifest.getJSONObject("models").getJSONObject("decoder").getJSONObject("signatures").getString("2")
        decoder.runSignature(
            mapOf("image_embeddings" to embeddings, "point_coords" to coords, "point_labels" to labels,
                  "mask_input" to Array(1) { Array(1) { Array(low) { FloatArray(low) } } }, "has_mask_input" to floatArrayOf(0f)),
            mapOf("low_res_masks" to masks, "iou_predictions" to iou), signature)
        val channels = post.getJSONArray("multimask_channels")
        var best = channels.getInt(0)
        for (i in 0 until channels.length()) if (iou[0][channels.getInt(i)] > iou[0][best]) best = channels.getInt(i)
        return FloatArray(low * low) { masks[0][best][it / low][it % low] }
    }
    // postprocess: upscale to input_size, crop resizedH x resizedW, scale to the image, threshold (manifest steps)
}
