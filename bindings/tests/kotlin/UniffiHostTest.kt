// The uniffi Kotlin bindings (generated, android = false) on the host JVM through JNA, against
// the answers runtime_mobile::Classifier gives. Run by scripts/ci-bindings:
//   java -Djna.library.path=DIR -cp ... dev.cnntoolkit.digits.hosttest.UniffiHostTestKt CASES_DIR MODEL_FILE [--bench N]
package dev.cnntoolkit.digits.hosttest

import dev.cnntoolkit.digits.Answer
import dev.cnntoolkit.digits.BundledModel
import dev.cnntoolkit.digits.Classifier
import dev.cnntoolkit.digits.ClassifierException
import dev.cnntoolkit.digits.PixelFormat
import dev.cnntoolkit.digits.Region
import java.io.File
import kotlin.system.exitProcess

private val FORMATS = mapOf(
    "GRAY8" to PixelFormat.GRAY8, "RGBA8888" to PixelFormat.RGBA8888, "BGRA8888" to PixelFormat.BGRA8888,
    "NV21" to PixelFormat.NV21, "YUV420Y" to PixelFormat.YUV420_Y,
)

private fun canonical(a: Answer): String {
    val d = a.digit ?: run {
        check(a.noDigitReason != null && a.boundingBox == null)
        return "none\t${a.noDigitReason}"
    }
    check(a.noDigitReason == null && d.top[0].classIndex == d.classIndex)
    val top = d.top.joinToString(";") { "${it.classIndex}:${q15(it.confidence)}" }
    val box = a.boundingBox?.let { "${it.left},${it.top},${it.width},${it.height}" } ?: "-"
    return "digit\t${d.classIndex}\t${d.label}\t${q15(d.confidence)}\t$top\t${d.scores.joinToString(",")}\t$box\t${if (a.inverted) 1 else 0}"
}

private fun classify(c: Classifier, case: Case): Answer =
    if (case.isImage) {
        c.classifyImage(case.data)
    } else {
        val roi = case.roi?.let { Region(it[0].toUInt(), it[1].toUInt(), it[2].toUInt(), it[3].toUInt()) }
        c.classifyFrame(
            case.data, case.width.toUInt(), case.height.toUInt(), case.stride.toUInt(),
            FORMATS.getValue(case.format), case.rotation, roi,
        )
    }

private fun codeOf(f: () -> Unit): Int? =
    try {
        f()
        null
    } catch (e: ClassifierException.Model) {
        e.code.toInt()
    } catch (e: ClassifierException.Input) {
        e.code.toInt() + 1000 // input errors are told apart from model errors by +1000
    }

fun main(args: Array<String>) {
    val cases = loadCases(args[0])
    val classifiers = mutableMapOf(
        "mnist" to Classifier.bundled(BundledModel.MNIST),
        "fashion-mnist" to Classifier.bundled(BundledModel.FASHION_MNIST),
    )
    if (args.getOrNull(2) == "--bench") {
        val frame = cases.first { it.id == "bench-frame" }
        val image = cases.first { it.id == "mnist-0" }
        val n = args[3].toInt()
        benchRuns("kotlin-jna frame640x480", 5, n) { classify(classifiers.getValue("mnist"), frame) }
        benchRuns("kotlin-jna image28x28", 5, n) { classify(classifiers.getValue("mnist"), image) }
        return
    }
    val m = classifiers.getValue("mnist")
    check(m.labels() == (0..9).map { it.toString() }) { m.labels() }
    check(m.dataset() == "mnist" && classifiers.getValue("fashion-mnist").dataset() == "fashion-mnist")
    println("kotlin-jna: kernels ${m.kernels()}")
    val frame = cases.first { !it.isImage }
    expectCode(1, "fromBytes(2 bytes)") { codeOf { Classifier.fromBytes(byteArrayOf(1, 2)) } }
    expectCode(1021, "classifyImage(783 bytes)") { codeOf { m.classifyImage(ByteArray(783)) } }
    expectCode(1100, "rotation 45") {
        codeOf { m.classifyFrame(frame.data, frame.width.toUInt(), frame.height.toUInt(), frame.stride.toUInt(), FORMATS.getValue(frame.format), 45, null) }
    }
    expectCode(1025, "buffer one byte short") {
        codeOf { m.classifyFrame(frame.data.copyOf(frame.data.size - 1), frame.width.toUInt(), frame.height.toUInt(), frame.stride.toUInt(), FORMATS.getValue(frame.format), 0, null) }
    }
    classifiers["mnist"] = Classifier.fromBytes(File(args[1]).readBytes())
    val bad = compareAll("kotlin-jna", cases) { canonical(classify(classifiers.getValue(it.model), it)) }
    classifiers.values.forEach { it.close() }
    exitProcess(if (bad == 0) 0 else 1)
}
