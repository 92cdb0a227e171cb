//! A camera frame through the bindings allocates nothing on the Rust side: the path the JNI
//! native takes (`Engine::classify_frame` + `convert::pack`), counted by a global allocator.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bindings::convert::{self, packed};
use bindings::{Bundled, Engine};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts (a const thread-local `Cell`,
// which never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on as it is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn frame_and_image_paths_allocate_nothing() {
    let e = Engine::bundled(Bundled::Mnist).expect("bundled");
    let case = support::cases::frame_cases().into_iter().find(|c| c.id == "bench-frame").expect("bench frame");
    let args = case.frame_args();
    let image = [0u8; 784];
    let mut out = [0i32; packed::HEADER + packed::MAX_SCORES];
    // Warm-up: std's one-time initialisations (CPU feature cache, clock) are not per frame.
    e.classify_frame(&args, |a| convert::pack(&a, &mut out)).expect("frame").expect("pack");
    e.classify_image(&image, |a| convert::pack(&a, &mut out)).expect("image").expect("pack");
    let before = allocations();
    for _ in 0..20 {
        let n = e.classify_frame(&args, |a| convert::pack(&a, &mut out)).expect("frame").expect("pack");
        assert_eq!(out[packed::HAS_DIGIT], 1);
        assert_eq!(n, packed::HEADER + 10);
        e.classify_image(&image, |a| convert::pack(&a, &mut out)).expect("image").expect("pack");
    }
    assert_eq!(allocations() - before, 0, "allocations in 20 frames and 20 images");
    // The counter does count: an answer for the uniffi boundary allocates (strings, vectors).
    let before = allocations();
    e.classify_image(&image, |a| convert::answer(&a)).expect("image");
    assert!(allocations() > before);
}
