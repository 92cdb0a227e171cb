// The cases and expected answers written by `cargo run -p bindings --example expected_answers`
// (format: bindings/tests/support/cases.rs), shared by the Kotlin tests of both paths.
package dev.cnntoolkit.digits.hosttest

import java.io.File

class Case(
    val id: String, val model: String, val isImage: Boolean, val data: ByteArray,
    val width: Int, val height: Int, val stride: Int, val format: String, val rotation: Int,
    /** left, top, width, height, or null for the whole frame. */
    val roi: IntArray?, val expected: String,
)

fun loadCases(dir: String): List<Case> {
    val blob = File(dir, "inputs.bin").readBytes()
    return File(dir, "cases.tsv").readLines().map { line ->
        val f = line.split('\t')
        val offset = f[3].toInt()
        Case(
            f[0], f[1], f[2] == "image", blob.copyOfRange(offset, offset + f[4].toInt()),
            f[5].toInt(), f[6].toInt(), f[7].toInt(), f[8], f[9].toInt(),
            if (f[10] == "-") null else f[10].split(',').map { it.toInt() }.toIntArray(),
            f.drop(11).joinToString("\t"),
        )
    }
}

/** A Q15 confidence back from its exact f32 fraction (fails if it is not one). */
fun q15(confidence: Float): Int {
    val q = confidence * 32768f
    check(q == Math.rint(q.toDouble()).toFloat()) { "confidence $confidence is not a Q15 value" }
    return q.toInt()
}

/** Compares every case's canonical answer; returns the number of mismatches. */
fun compareAll(label: String, cases: List<Case>, answer: (Case) -> String): Int {
    var bad = 0
    for (case in cases) {
        val got = answer(case)
        if (got != case.expected) {
            bad++
            println("MISMATCH ${case.id}:\n  got      $got\n  expected ${case.expected}")
        }
    }
    val images = cases.count { it.isImage }
    println("$label: ${cases.size - bad}/${cases.size} answers equal the Rust classifier's ($images images, ${cases.size - images} frames)")
    return bad
}

/** Median-free summary: each run's mean microseconds per call, printed for the bench table. */
fun benchRuns(label: String, runs: Int, calls: Int, call: () -> Unit) {
    repeat(calls) { call() } // warm-up (JIT)
    val means = (1..runs).map {
        val start = System.nanoTime()
        repeat(calls) { call() }
        (System.nanoTime() - start) / calls / 1000.0
    }
    println("bench $label " + means.joinToString(" ") { "%.2f".format(it) })
}

fun expectCode(code: Int, what: String, actual: () -> Int?) {
    val got = actual()
    check(got == code) { "$what: expected error code $code, got $got" }
}
