// The JNI camera path on the host JVM (scripts/ci-bindings): frames from direct ByteBuffers with
// row strides wider than the width and a short last row, every rotation, crops, against the
// answers runtime_mobile::Classifier gives; the error codes; no allocation per frame.
//   java -Ddev.cnntoolkit.digits.library=/abs/libbindings.so -cp ... \
//       dev.cnntoolkit.digits.jni.JniHostTestKt CASES_DIR MODEL_FILE [--bench N]
package dev.cnntoolkit.digits.jni

import dev.cnntoolkit.digits.hosttest.Case
import dev.cnntoolkit.digits.hosttest.benchRuns
import dev.cnntoolkit.digits.hosttest.compareAll
import dev.cnntoolkit.digits.hosttest.expectCode
import dev.cnntoolkit.digits.hosttest.loadCases
import dev.cnntoolkit.digits.hosttest.q15
import java.io.File
import java.lang.management.ManagementFactory
import java.nio.ByteBuffer
import kotlin.system.exitProcess

private val REASONS = mapOf(
    1 to "no digit found (too little contrast)", 2 to "no digit found (no ink)", 3 to "no digit found (ink too small)",
)

/** The frame exactly as a camera hands it over: a direct buffer holding just the plane's bytes. */
private fun direct(bytes: ByteArray): ByteBuffer = ByteBuffer.allocateDirect(bytes.size).put(bytes).also { it.rewind() }

private class Prepared(val case: Case, val plane: ByteBuffer?, val crop: IntArray)

private fun prepare(case: Case) = Prepared(
    case,
    if (case.isImage) null else direct(case.data),
    case.roi?.let { intArrayOf(it[0], it[1], it[0] + it[2], it[1] + it[3]) } ?: intArrayOf(0, 0, case.width, case.height),
)

private fun classify(c: JniClassifier, p: Prepared, out: FrameResult) {
    val case = p.case
    if (p.plane == null) {
        c.classifyImage(case.data, out)
    } else {
        c.classifyFrame(p.plane, case.width, case.height, case.stride, 1, case.rotation, p.crop[0], p.crop[1], p.crop[2], p.crop[3], out)
    }
}

private fun canonical(r: FrameResult, labels: List<String>, isImage: Boolean): String {
    if (!r.hasDigit) return "none\t${REASONS.getValue(r.noDigitReason)}"
    check(r.noDigitReason == 0 && r.topClasses[0] == r.classIndex && r.topConfidences[0] == r.confidence)
    val top = (0 until 3).joinToString(";") { "${r.topClasses[it]}:${q15(r.topConfidences[it])}" }
    val box = if (isImage) "-" else r.box.joinToString(",")
    return "digit\t${r.classIndex}\t${labels[r.classIndex]}\t${q15(r.confidence)}\t$top\t${r.scores.joinToString(",")}\t$box\t${if (r.inverted) 1 else 0}"
}

private fun codeOf(f: () -> Unit): Int? =
    try {
        f()
        null
    } catch (e: ClassifierException) {
        e.code
    }

private fun checkErrors(c: JniClassifier, frame: Case, out: FrameResult) {
    val (w, h, s) = Triple(frame.width, frame.height, frame.stride)
    val plane = direct(frame.data)
    expectCode(101, "pixelStride 2") { codeOf { c.classifyFrame(plane, w, h, s, 2, 0, 0, 0, w, h, out) } }
    expectCode(103, "heap ByteBuffer") { codeOf { c.classifyFrame(ByteBuffer.wrap(frame.data), w, h, s, 1, 0, 0, 0, w, h, out) } }
    expectCode(25, "capacity one byte short") {
        codeOf { c.classifyFrame(direct(frame.data.copyOf(frame.data.size - 1)), w, h, s, 1, 0, 0, 0, w, h, out) }
    }
    expectCode(24, "rowStride below width") { codeOf { c.classifyFrame(plane, w, h, w - 1, 1, 0, 0, 0, w, h, out) } }
    expectCode(100, "rotation 45") { codeOf { c.classifyFrame(plane, w, h, s, 1, 45, 0, 0, w, h, out) } }
    expectCode(102, "crop right < left") { codeOf { c.classifyFrame(plane, w, h, s, 1, 0, 10, 0, 5, h, out) } }
    expectCode(26, "crop outside the frame") { codeOf { c.classifyFrame(plane, w, h, s, 1, 0, 0, 0, w + 1, h, out) } }
    expectCode(21, "image of 783 bytes") { codeOf { c.classifyImage(ByteArray(783), out) } }
    expectCode(105, "FrameResult for 3 classes") { codeOf { c.classifyImage(ByteArray(784), FrameResult(3)) } }
    expectCode(1, "fromBytes(2 bytes)") { codeOf { JniClassifier.fromBytes(byteArrayOf(1, 2)).close() } }
    val closed = JniClassifier.bundled(Model.MNIST)
    closed.close()
    closed.close() // twice is harmless
    expectCode(104, "closed classifier") { codeOf { closed.classifyImage(ByteArray(784), out) } }
}

/** Bytes the JVM allocated on this thread per call, after warm-up: the least of 5 rounds (a
 *  round can catch a one-off allocation of the JIT or class loading, not of the call). */
private fun allocatedPerCall(calls: Int, call: () -> Unit): Double {
    val mx = ManagementFactory.getThreadMXBean() as com.sun.management.ThreadMXBean
    val id = Thread.currentThread().id
    repeat(calls) { call() }
    return (1..5).minOf {
        val before = mx.getThreadAllocatedBytes(id)
        repeat(calls) { call() }
        (mx.getThreadAllocatedBytes(id) - before).toDouble() / calls
    }
}

fun main(args: Array<String>) {
    val cases = loadCases(args[0])
    val classifiers = mapOf(
        "mnist" to JniClassifier.fromBytes(File(args[1]).readBytes()),
        "fashion-mnist" to JniClassifier.bundled(Model.FASHION_MNIST),
    )
    val mnist = JniClassifier.bundled(Model.MNIST)
    val out = mnist.newResult()
    val frame = prepare(cases.first { it.id == "bench-frame" })
    val image = prepare(cases.first { it.id == "mnist-0" })
    if (args.getOrNull(2) == "--bench") {
        val n = args[3].toInt()
        benchRuns("jni frame640x480", 5, n) { classify(mnist, frame, out) }
        benchRuns("jni image28x28", 5, n) { classify(mnist, image, out) }
        println("bench jni-alloc-bytes frame640x480 ${allocatedPerCall(n) { classify(mnist, frame, out) }}")
        println("bench jni-alloc-bytes image28x28 ${allocatedPerCall(n) { classify(mnist, image, out) }}")
        return
    }
    check(mnist.labels == (0..9).map { it.toString() } && mnist.dataset == "mnist")
    check(classifiers.getValue("fashion-mnist").dataset == "fashion-mnist")
    println("jni: kernels ${mnist.kernels}")
    checkErrors(mnist, cases.first { it.format == "YUV420Y" && it.roi != null }, out)
    // The JNI path takes Y planes (NV21's Y plane is its first part) and 28x28 images.
    val jniCases = cases.filter { it.isImage || it.format == "YUV420Y" || it.format == "NV21" }
    check(jniCases.count { it.format == "YUV420Y" && it.stride > it.width } >= 160) { "too few wide-stride Y planes" }
    check(setOf(0, 90, 180, 270).all { r -> jniCases.any { !it.isImage && it.rotation == r && it.roi != null } })
    val bad = compareAll("jni", jniCases) { case ->
        val c = classifiers.getValue(case.model)
        val result = c.newResult()
        classify(c, prepare(case), result)
        canonical(result, c.labels, case.isImage)
    }
    for ((name, p) in listOf("frame640x480" to frame, "image28x28" to image)) {
        val bytes = allocatedPerCall(2000) { classify(mnist, p, out) }
        println("jni: $name allocates $bytes bytes per call on the JVM side")
        check(bytes == 0.0) { "the JNI $name path allocated $bytes bytes per call" }
    }
    (classifiers.values + mnist).forEach { it.close() }
    exitProcess(if (bad == 0) 0 else 1)
}
