//! `uniffi-bindgen generate <libbindings.so> --language python|kotlin|swift --out-dir DIR`
//! (library mode): the generator at the exact uniffi version the `bindings` crate uses.

fn main() {
    uniffi::uniffi_bindgen_main()
}
