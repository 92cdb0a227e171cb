import org.jetbrains.kotlin.gradle.dsl.JvmTarget

// The app's logic that needs no Android: plain Kotlin/JVM, unit-tested with `./gradlew :logic:test`
// (and on the Rust repository's CI machine by scripts/ci-android-logic, without Gradle).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    testImplementation(libs.junit)
}
