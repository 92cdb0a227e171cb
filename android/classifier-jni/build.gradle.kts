// The JNI glue of the camera path: plain Kotlin/JVM (no android.* import), so the same classes
// are compiled and tested on the host (scripts/ci-bindings) and used by the app module.
// The Kotlin plugin version comes from the root project's settings; the native library
// (libbindings.so, crate `bindings`) is packaged by the app module (cargo ndk).
plugins {
    kotlin("jvm")
}

kotlin {
    jvmToolchain(17)
}
