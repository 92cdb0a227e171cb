pluginManagement {
    repositories {
        google {
            content {
                includeGroupByRegex("com\\.android.*")
                includeGroupByRegex("com\\.google.*")
                includeGroupByRegex("androidx.*")
            }
        }
        mavenCentral()
        gradlePluginPortal()
    }
}

plugins {
    // Lets a module that asks for a JVM toolchain (jvmToolchain(17)) download one when the
    // machine lacks it; Android Studio's bundled JDK is newer.
    id("org.gradle.toolchains.foojay-resolver-convention") version "0.9.0"
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "digits"

// The sample app, its Android-free logic, and the JNI classifier (a plain Kotlin/JVM module,
// also compiled and tested on the host by the Rust repository's CI).
include(":app", ":logic", ":classifier-jni")
