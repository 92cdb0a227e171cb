//! Semihosting for the QEMU boards: the exit status, and files written on the host (QEMU's
//! working folder). cortex-m-semihosting 0.6 keeps its file API private, hence the raw calls.

use cortex_m_semihosting::nr;
use cortex_m_semihosting::syscall;

use crate::screen::{Framebuffer, HEIGHT, WIDTH};

const SYS_OPEN: usize = nr::OPEN;
const SYS_CLOSE: usize = nr::CLOSE;
const SYS_WRITE: usize = nr::WRITE;
/// Not in cortex-m-semihosting 0.6's `nr`: exit with a status (`SYS_EXIT` has none).
const SYS_EXIT_EXTENDED: usize = 0x20;
const MODE_WB: usize = nr::open::W_TRUNC_BINARY;

/// Ends the QEMU run with `code` as its exit status.
pub fn exit(code: u8) -> ! {
    const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, usize::from(code)];
    // SAFETY: SYS_EXIT_EXTENDED takes a pointer to a two-word block (reason, exit code).
    unsafe { syscall(SYS_EXIT_EXTENDED, &block) };
    // Only reached without a debugger/QEMU to stop us.
    #[allow(clippy::empty_loop)]
    loop {}
}

/// A host file opened for writing.
pub struct HostFile(usize);

/// The host refused to open or write a file.
#[derive(Debug, Clone, Copy)]
pub struct IoError;

impl HostFile {
    /// Creates (or truncates) `name` on the host; `name` must end with a NUL byte.
    pub fn create(name: &[u8]) -> Result<Self, IoError> {
        let len = name.len().checked_sub(1).filter(|_| name.last() == Some(&0)).ok_or(IoError)?;
        let args = [name.as_ptr() as usize, MODE_WB, len];
        // SAFETY: SYS_OPEN reads `len` bytes of the NUL-terminated name the block points to,
        // which lives for the call.
        let handle = unsafe { syscall(SYS_OPEN, &args) };
        if handle == usize::MAX { Err(IoError) } else { Ok(HostFile(handle)) }
    }

    pub fn write(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        let args = [self.0, bytes.as_ptr() as usize, bytes.len()];
        // SAFETY: SYS_WRITE reads `bytes.len()` bytes from the pointer, valid for the call.
        let not_written = unsafe { syscall(SYS_WRITE, &args) };
        if not_written == 0 { Ok(()) } else { Err(IoError) }
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        let args = [self.0];
        // SAFETY: closes the handle SYS_OPEN returned, once.
        unsafe { syscall(SYS_CLOSE, &args) };
    }
}

/// Writes `fb` to the host file `name` (NUL-terminated) as a binary PPM (P6, 8 bits per
/// channel): any image viewer opens it, and the end-to-end test turns it into a PNG.
pub fn write_ppm(name: &[u8], fb: &Framebuffer) -> Result<(), IoError> {
    let mut file = HostFile::create(name)?;
    // "P6\n320 240\n255\n"
    let mut header = [0u8; 32];
    let n = ppm_header(&mut header);
    file.write(header.get(..n).ok_or(IoError)?)?;
    let mut row = [0u8; 3 * WIDTH as usize];
    for y in 0..HEIGHT {
        fb.row_rgb888(y, &mut row);
        file.write(&row)?;
    }
    Ok(())
}

fn ppm_header(out: &mut [u8; 32]) -> usize {
    use core::fmt::Write as _;
    struct Buf<'b>(&'b mut [u8; 32], usize);
    impl core::fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let dst = self.0.get_mut(self.1..self.1 + s.len()).ok_or(core::fmt::Error)?;
            dst.copy_from_slice(s.as_bytes());
            self.1 += s.len();
            Ok(())
        }
    }
    let mut b = Buf(out, 0);
    // 20 bytes at most: cannot overflow the 32.
    let _ = write!(b, "P6\n{WIDTH} {HEIGHT}\n255\n");
    b.1
}
