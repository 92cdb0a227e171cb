import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

// ---- The Rust library (libbindings.so) for every ABI, built by cargo-ndk -------------------------

/** Android ABIs and the Rust targets cargo-ndk builds for them (README: rustup target add ...). */
val rustAbis: List<String>
    get() = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

/** Where cargo-ndk puts <abi>/libbindings.so; a generated jniLibs folder of the app. */
val rustJniLibs: Provider<Directory> = layout.buildDirectory.dir("rustJniLibs")

/** The Rust workspace: the repository root, one level above android/. */
val rustWorkspace: File = rootProject.projectDir.parentFile

/**
 * cargo, found on PATH or in ~/.cargo/bin (Android Studio started from the Dock or a desktop
 * launcher does not see the shell's PATH); `-Pcargo=/path/to/cargo` overrides both.
 */
val cargoCommand: String = providers.gradleProperty("cargo").orNull
    ?: File(System.getProperty("user.home"), ".cargo/bin/cargo").takeIf { it.canExecute() }?.path
    ?: "cargo"

/** ANDROID_NDK_HOME when set, else the NDK version above inside the SDK AGP uses. */
val ndkHome: Provider<String> = providers.environmentVariable("ANDROID_NDK_HOME").orElse(
    androidComponents.sdkComponents.sdkDirectory.map { it.dir("ndk/${android.ndkVersion}").asFile.path },
)

android {
    namespace = "dev.cnntoolkit.digits.app"
    compileSdk = 35
    // The NDK cargo-ndk links with (README: sdkmanager "ndk;27.2.12479018").
    ndkVersion = "27.2.12479018"

    defaultConfig {
        applicationId = "dev.cnntoolkit.digits"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1"
        ndk {
            abiFilters += rustAbis
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            // A sample: signed with the debug key so that `installRelease` works out of the box.
            signingConfig = signingConfigs.getByName("debug")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    buildFeatures {
        compose = true
    }

    sourceSets["main"].jniLibs.srcDir(rustJniLibs.get().asFile)
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    implementation(project(":classifier-jni"))
    implementation(project(":logic"))

    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.compose)
    implementation(libs.androidx.lifecycle.runtime.compose)
    implementation(libs.androidx.lifecycle.viewmodel.compose)
    implementation(platform(libs.androidx.compose.bom))
    implementation(libs.androidx.compose.ui)
    implementation(libs.androidx.compose.material3)
    implementation(libs.androidx.camera.camera2)
    implementation(libs.androidx.camera.lifecycle)
    implementation(libs.androidx.camera.view)
}

val cargoNdk = tasks.register<Exec>("cargoNdk") {
    description = "Builds libbindings.so for ${rustAbis.joinToString()} with cargo ndk (release)."
    group = "build"
    workingDir = rustWorkspace
    val out = rustJniLibs.get().asFile
    outputs.dir(out)
    // cargo decides itself what is stale; Gradle just runs it every time (a no-op build is fast).
    outputs.upToDateWhen { false }
    val exec = this
    doFirst { exec.environment("ANDROID_NDK_HOME", ndkHome.get()) }
    commandLine(
        listOf(cargoCommand, "ndk") + rustAbis.flatMap { listOf("-t", it) } +
            listOf("-o", out.path, "build", "--release", "-p", "bindings"),
    )
}

// Every variant's merge<Variant>JniLibFolders packs the .so files: build them first.
tasks.matching { it.name.startsWith("merge") && it.name.endsWith("JniLibFolders") }.configureEach {
    dependsOn(cargoNdk)
}
